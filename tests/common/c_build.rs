//! Compiles a C program (a test program or an example) as strict C99 against the freshly
//! built libfleets, as tests/c_programs.rs does for tests/c.

use std::path::{Path, PathBuf};

/// Directory holding the libfleets built for this test run (target/<profile>).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Compiles `source` (relative to the repository root) into `<target>/<profile>/c-tests/<name>`.
pub fn compile(source: &str, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = library_dir();
    assert!(
        lib_dir.join("libfleets.so").exists(),
        "libfleets.so not found in {}: run `cargo build -p fleets --lib` first (make test does)",
        lib_dir.display()
    );
    // The SONAME is libfleets.so.0; cargo writes only libfleets.so.
    let run_dir = lib_dir.join("c-tests");
    std::fs::create_dir_all(&run_dir).unwrap();
    // A target directory copied from another checkout keeps a link to that checkout's
    // library: point it at this one.
    let soname = run_dir.join("libfleets.so.0");
    let library = lib_dir.join("libfleets.so");
    if std::fs::read_link(&soname).ok().as_deref() != Some(library.as_path()) {
        let _ = std::fs::remove_file(&soname);
        if let Err(e) = std::os::unix::fs::symlink(&library, &soname) {
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        }
    }
    let exe = run_dir.join(name);
    let compiler = cc::Build::new()
        .target(env!("FLEETS_BUILD_TARGET"))
        .host(env!("FLEETS_BUILD_TARGET"))
        .opt_level(0)
        .cargo_metadata(false)
        .get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-g",
        ])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", run_dir.display()))
        .arg("-lfleets")
        .status()
        .expect("C compiler runs");
    assert!(status.success(), "{source} failed to compile");
    exe
}
