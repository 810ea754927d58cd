//! C programs under tests/c, compiled with the `cc` crate's compiler detection as strict C99
//! and linked against the freshly built libfleets, run against the emulator.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

/// Directory holding the libfleets built for this test run (target/<profile>).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn compile(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = library_dir();
    assert!(
        lib_dir.join("libfleets.so").exists(),
        "libfleets.so not found in {}: run `cargo build -p fleets --lib` first (make test does)",
        lib_dir.display()
    );
    // The library's SONAME is libfleets.so.0; cargo only writes libfleets.so, so the
    // programs load it through a symlink in their own directory.
    let run_dir = lib_dir.join("c-tests");
    std::fs::create_dir_all(&run_dir).unwrap();
    let soname = run_dir.join("libfleets.so.0");
    if !soname.exists() {
        if let Err(e) = std::os::unix::fs::symlink(lib_dir.join("libfleets.so"), &soname) {
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
        .arg(root.join("tests/c").join(format!("{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", run_dir.display()))
        .arg("-lfleets")
        .status()
        .expect("C compiler runs");
    assert!(status.success(), "{name}.c failed to compile");
    exe
}

fn run(exe: &Path, emu: &fleets_emulator::Emulator, extra: &[(&str, &str)]) -> String {
    let output = Command::new(exe)
        .env("FLEETS_ENDPOINT", emu.endpoint())
        .env("FLEETS_API_KEY", emu.api_key())
        .env("FLEETS_API_SECRET", emu.api_secret())
        .env("FLEETS_CA_FILE", emu.ca_file().unwrap())
        .env("FLEETS_TEST_THING", common::THING)
        .envs(extra.iter().copied())
        .output()
        .expect("test program runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        exe.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn c_device_flow() {
    let exe = compile("device_flow");
    let emu = common::emulator();
    emu.set_desired(common::THING, json!({"targetTemperature": 24}))
        .unwrap();
    let execution = emu.create_command(common::THING, "setTarget", json!({"target": 24}), 600);
    let job = emu.create_job(json!({"firmware": "2.0.0"}), &[common::THING], None);
    let out = run(&exe, &emu, &[("FLEETS_TEST_EXECUTION_ID", &execution)]);
    assert!(out.contains("all steps passed"), "{out}");

    // The outcome as the server saw it.
    let shadow = emu.shadow(common::THING).unwrap();
    assert_eq!(shadow["reported"]["targetTemperature"], 24);
    assert_eq!(shadow["delta"], json!({}));
    assert_eq!(emu.events(common::THING)[0]["eventType"], "highTemperature");
    assert_eq!(
        emu.command(common::THING, &execution).unwrap()["status"],
        "SUCCEEDED"
    );
    let execution_state = emu.job_execution(&job, common::THING).unwrap();
    assert_eq!(execution_state["status"], "SUCCEEDED");
    assert_eq!(
        execution_state["statusDetails"]["installedVersion"],
        "2.0.0"
    );
}

#[test]
fn c_error_paths() {
    let exe = compile("error_paths");
    let emu = common::emulator();
    let out = run(&exe, &emu, &[]);
    assert!(out.contains("all checks passed"), "{out}");
}

#[test]
fn c_workflows() {
    let exe = compile("workflows");
    let emu = common::emulator();
    emu.set_desired(
        common::THING,
        json!({"targetTemperature": 24, "mode": "eco"}),
    )
    .unwrap();
    let succeeded = emu.create_job(json!({"action": "probe"}), &[common::THING], None);
    let failed = emu.create_job(json!({"action": "probe"}), &[common::THING], None);
    let rejected = emu.create_job(json!({"action": "unknown"}), &[common::THING], None);
    let state_dir = std::env::temp_dir().join(format!("fleets-c-workflows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    std::fs::create_dir_all(&state_dir).unwrap();
    let out = run(
        &exe,
        &emu,
        &[("FLEETS_TEST_STATE_DIR", state_dir.to_str().unwrap())],
    );
    assert!(out.contains("all checks passed"), "{out}");
    let shadow = emu.shadow(common::THING).unwrap();
    assert_eq!(shadow["reported"], json!({"targetTemperature": 24}));
    assert_eq!(shadow["delta"], json!({"mode": "eco"}));
    let job = |id: &str| emu.job_execution(id, common::THING).unwrap();
    assert_eq!(job(&succeeded)["status"], "SUCCEEDED");
    assert_eq!(
        job(&succeeded)["statusDetails"],
        json!({"step": 0, "attempt": 2})
    );
    assert_eq!(job(&failed)["status"], "FAILED");
    assert_eq!(
        job(&failed)["statusDetails"]["reason"],
        "the handler returned 42, which is not a fleets_job_step_result"
    );
    assert_eq!(job(&rejected)["status"], "REJECTED");
    std::fs::remove_dir_all(state_dir).unwrap();
}
