//! The workflows' local files: atomic replacement (write a temporary file, fsync it, rename
//! it over the old one, fsync the directory) so that a crash or power cut leaves the old or
//! the new content, never a mix; and I/O failures mapped to `DiskFull` or `Storage`.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorCode, Result};

/// Whether an I/O failure means the storage is full (or the user's quota is).
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// `DiskFull` or `Storage` for a failed file operation, naming the action and the file.
pub(crate) fn failure(action: &str, path: &Path, e: &io::Error) -> Error {
    let code = if is_disk_full(e) {
        ErrorCode::DiskFull
    } else {
        ErrorCode::LocalFile
    };
    Error::new(code, format!("{action} {}: {e}", path.display()))
}

/// `path` with `suffix` appended to its file name (`firmware.bin` -> `firmware.bin.part`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes a rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let handle = File::open(dir).map_err(|e| failure("opening directory", dir, &e))?;
        handle
            .sync_all()
            .map_err(|e| failure("syncing directory", dir, &e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = with_suffix(path, ".tmp");
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(|e| failure("creating", &temporary, &e))?;
        file.write_all(bytes)
            .map_err(|e| failure("writing", &temporary, &e))?;
        file.sync_all()
            .map_err(|e| failure("syncing", &temporary, &e))?;
        fs::rename(&temporary, path).map_err(|e| failure("renaming into", path, &e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_dir(parent_dir(path))
}

/// The content of a small file, `None` when it does not exist. A file over `limit` bytes is
/// not one of ours: `Storage`.
pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failure("opening", path, &e)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failure("reading", path, &e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::new(
            ErrorCode::LocalFile,
            format!(
                "{} is larger than {limit} bytes: not a libfleets state file",
                path.display()
            ),
        ));
    }
    Ok(Some(bytes))
}

/// Removes a file; a missing file is fine.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failure("removing", path, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fleets-storage-{name}-{}-{}",
            std::process::id(),
            crate::retry::random_u64()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = scratch("atomic");
        let path = dir.join("state.json");
        assert_eq!(read_small(&path, 100).unwrap(), None);
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(read_small(&path, 100).unwrap().unwrap(), b"two");
        assert!(!with_suffix(&path, ".tmp").exists());
        assert_eq!(
            read_small(&path, 2).unwrap_err().code(),
            ErrorCode::LocalFile
        );
        remove(&path).unwrap();
        remove(&path).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failures_name_the_file_and_the_kind() {
        let missing = Path::new("/nonexistent-dir-of-fleets/state.json");
        let err = write_atomic(missing, b"x").unwrap_err();
        assert_eq!(err.code(), ErrorCode::LocalFile);
        assert!(err.message().contains("nonexistent-dir-of-fleets"), "{err}");
        let full = io::Error::from_raw_os_error(28); // ENOSPC on Linux
        if cfg!(target_os = "linux") {
            assert_eq!(
                failure("writing", missing, &full).code(),
                ErrorCode::DiskFull
            );
        }
        assert_eq!(parent_dir(Path::new("file")), Path::new("."));
        assert_eq!(
            with_suffix(Path::new("a/b.bin"), ".part"),
            Path::new("a/b.bin.part")
        );
    }
}
