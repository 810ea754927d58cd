//! The one operating-system call the library needs that std does not wrap on our minimum
//! Rust version: an advisory file lock (`flock`) for the outbox directory. It is a C function,
//! so it lives here with the rest of the unsafe code. (`File::try_lock` does the same from
//! Rust 1.89; the crate's minimum is 1.85.)

use std::fs::File;
use std::io;

/// Takes an exclusive lock on `file` without waiting: `Ok(true)` when taken, `Ok(false)`
/// when another open file description (in this process or another) holds it. The kernel
/// releases it when the file is closed or its process dies, however it dies.
#[cfg(unix)]
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// Without POSIX locks the directory is not protected against a second opener.
#[cfg(not(unix))]
pub(crate) fn try_lock_exclusive(_file: &File) -> io::Result<bool> {
    Ok(true)
}
