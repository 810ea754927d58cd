//! The aarch64 release build of `fleets` (what ships to devices), run under qemu-user against
//! the in-process emulator on loopback. Skipped, with a message saying what is missing, only
//! when the cross toolchain is absent; CI installs it (.ci/run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleets_emulator::{Emulator, EmulatorOptions};
use serde_json::Value;

const TARGET: &str = "aarch64-unknown-linux-gnu";
const GCC: &str = "aarch64-linux-gnu-gcc";
const AR: &str = "aarch64-linux-gnu-ar";
const QEMU: &str = "qemu-aarch64";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const THING: &str = "gateway-arm64";

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn rust_target_installed(cargo: &str) -> bool {
    let rustc = Path::new(cargo).with_file_name("rustc");
    let rustc = if rustc.is_file() {
        rustc
    } else {
        PathBuf::from("rustc")
    };
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir())
}

/// What is missing to build and run the aarch64 binary, if anything.
fn missing_toolchain(cargo: &str) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !on_path(GCC) {
        missing.push("aarch64-linux-gnu-gcc (apt: gcc-aarch64-linux-gnu)");
    }
    if !Path::new(SYSROOT).join("lib").is_dir() {
        missing.push("/usr/aarch64-linux-gnu (apt: libc6-dev-arm64-cross)");
    }
    if !on_path(QEMU) {
        missing.push("qemu-aarch64 (apt: qemu-user)");
    }
    if !rust_target_installed(cargo) {
        missing.push("the Rust target (rustup target add aarch64-unknown-linux-gnu)");
    }
    missing
}

/// `cargo build --release --target aarch64-unknown-linux-gnu -p fleets-cli`, linked as
/// cmake/toolchains/aarch64-linux-gnu.cmake does, in this build's target directory (a no-op
/// when it is up to date).
fn build(cargo: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // CARGO_TARGET_TMPDIR is <target dir>/tmp.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let triple_env = TARGET.replace('-', "_");
    let mut command = Command::new(cargo);
    // What cargo set for this test process is not for the build: ring's build script tracks
    // CARGO_MANIFEST_DIR, so leaving it would rebuild everything here and again in the next
    // plain cross build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_PKG_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref())
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "fleets-cli",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .env(
            format!("CARGO_TARGET_{}_LINKER", triple_env.to_uppercase()),
            GCC,
        )
        .env(format!("CC_{triple_env}"), GCC)
        .env(format!("AR_{triple_env}"), AR)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "aarch64 cross build failed");
    target_dir.join(TARGET).join("release").join("fleets")
}

fn run(binary: &Path, emu: &Emulator, args: &[&str]) -> Output {
    Command::new(QEMU)
        .arg("-L")
        .arg(SYSROOT)
        .arg(binary)
        .args(args)
        .env("FLEETS_ENDPOINT", emu.endpoint())
        .env("FLEETS_API_KEY", emu.api_key())
        .env("FLEETS_API_SECRET", emu.api_secret())
        .env("FLEETS_CA_FILE", emu.ca_file().expect("generated CA"))
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .expect("qemu runs")
}

#[test]
fn aarch64_release_binary_under_qemu() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let missing = missing_toolchain(&cargo);
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED aarch64_release_binary_under_qemu: cross toolchain absent: {}",
            missing.join(", ")
        );
        return;
    }
    let binary = build(&cargo);
    let elf = std::fs::read(&binary).expect("binary");
    // e_machine 183 = EM_AARCH64: the binary really is the cross build.
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);

    let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
    emu.register_thing(THING);

    let out = run(
        &binary,
        &emu,
        &["shadow", "report", THING, r#"{"arch":"aarch64"}"#],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["version"], 1);

    let out = run(&binary, &emu, &["shadow", "get", THING]);
    assert_eq!(out.status.code(), Some(0));
    let shadow: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(shadow["reported"]["arch"], "aarch64");

    // Exit status and stderr of an HTTP error come through qemu unchanged.
    let out = run(&binary, &emu, &["shadow", "get", "unknown-thing"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fleets: FLEETS_ERR_NOT_FOUND: "));
}
