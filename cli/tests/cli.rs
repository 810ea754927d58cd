//! The built `fleets` binary against the in-process emulator over HTTPS on loopback: every
//! command, the help texts, bad usage, the exit status of each result group, JSON from stdin,
//! and the API secret never in the output.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fleets_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule};
use serde_json::{json, Value};

const THING: &str = "thermostat-001";
/// Distinctive, so that any trace of it in the output is found.
const SECRET: &str = "cli-Test-Secret-7f3a91";

/// Every variable the binary reads, so that the caller's environment cannot leak in.
const ENV_VARS: &[&str] = &[
    "FLEETS_ENDPOINT",
    "FLEETS_API_KEY",
    "FLEETS_API_SECRET",
    "FLEETS_CA_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn emulator() -> Emulator {
    let emu = Emulator::start(EmulatorOptions {
        api_secret: SECRET.to_owned(),
        ..EmulatorOptions::default()
    })
    .expect("emulator starts");
    emu.register_thing(THING);
    emu
}

/// The binary with an empty configuration environment.
fn bare() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleets"));
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command
}

/// The binary configured for `emu` through the environment, as a device script would be.
fn fleets(emu: &Emulator) -> Command {
    let mut command = bare();
    command
        .env("FLEETS_ENDPOINT", emu.endpoint())
        .env("FLEETS_API_KEY", emu.api_key())
        .env("FLEETS_API_SECRET", emu.api_secret())
        .env("FLEETS_CA_FILE", emu.ca_file().expect("generated CA"));
    command
}

#[derive(Debug)]
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Exit 0, JSON on stdout, nothing on stderr.
    fn ok(self) -> Value {
        assert_eq!((self.status, self.stderr.as_str()), (0, ""), "{self:?}");
        assert!(self.stdout.ends_with('\n'), "{self:?}");
        self.json()
    }

    /// Exit `status`, and stderr is one `fleets: NAME: message` line.
    fn failed(self, status: i32, name: &str) -> Run {
        assert_eq!(self.status, status, "{self:?}");
        let prefix = format!("fleets: {name}: ");
        assert!(self.stderr.starts_with(&prefix), "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:?}");
        self
    }

    /// Exit 64 with a usage message, nothing on stdout.
    fn usage(self) -> Run {
        assert_eq!(self.status, 64, "{self:?}");
        assert!(self.stderr.starts_with("fleets: usage: "), "{self:?}");
        assert!(self.stderr.contains("--help"), "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        self
    }
}

fn run_with(command: &mut Command, args: &[&str], stdin: Option<&str>) -> Run {
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("fleets runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("fleets exits");
    let run = Run {
        status: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "the secret is in the output: {run:?}"
    );
    run
}

fn run(command: &mut Command, args: &[&str]) -> Run {
    run_with(command, args, None)
}

/// A file in a fresh directory under the target's tmp dir.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        name.replace('.', "-")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("temp file");
    path
}

#[test]
fn every_command_against_the_emulator() {
    let emu = emulator();

    let out = run(
        &mut fleets(&emu),
        &[
            "shadow",
            "report",
            THING,
            r#"{"temperature":21.5}"#,
            "--client-token",
            "tok-1",
        ],
    )
    .ok();
    assert_eq!(
        (out["version"].clone(), out["clientToken"].clone()),
        (json!(1), json!("tok-1"))
    );
    assert_eq!(
        emu.shadow(THING).unwrap()["reported"],
        json!({"temperature": 21.5})
    );

    let out = run(
        &mut fleets(&emu),
        &[
            "shadow",
            "report",
            THING,
            r#"{"humidity":58}"#,
            "--version",
            "1",
        ],
    )
    .ok();
    assert_eq!(out["version"], 2);

    emu.set_desired(THING, json!({"targetTemperature": 24}))
        .unwrap();
    let out = run(&mut fleets(&emu), &["shadow", "get", THING]).ok();
    assert_eq!(
        out["reported"],
        json!({"temperature": 21.5, "humidity": 58})
    );
    assert_eq!(out["delta"], json!({"targetTemperature": 24}));

    let out = run(
        &mut fleets(&emu),
        &[
            "event",
            THING,
            "highTemperature",
            r#"{"currentTemp":45.2}"#,
            "--severity",
            "warn",
            "--timestamp-ms",
            "1748390400000",
            "--app-id",
            "hvac",
        ],
    )
    .ok();
    assert!(out["eventId"].is_string(), "{out}");
    run(&mut fleets(&emu), &["event", THING, "boot"]).ok();
    let events = emu.events(THING);
    assert_eq!(events.len(), 2);
    assert_eq!(
        (
            &events[0]["eventType"],
            &events[0]["severity"],
            &events[0]["timestamp"],
            &events[0]["appId"]
        ),
        (
            &json!("highTemperature"),
            &json!("warn"),
            &json!(1748390400000u64),
            &json!("hvac")
        )
    );
    assert_eq!(events[0]["data"], json!({"currentTemp": 45.2}));
    assert_eq!(
        (events[1]["eventType"].clone(), events[1].get("data")),
        (json!("boot"), None)
    );

    let execution = emu.create_command(THING, "setTemperature", json!({"target": 24}), 0);
    run(
        &mut fleets(&emu),
        &[
            "command",
            "respond",
            THING,
            &execution,
            r#"{"currentTemperature":24}"#,
            "--status",
            "SUCCEEDED",
            "--timestamp",
            "1748390405",
        ],
    )
    .ok();
    let command = emu.command(THING, &execution).unwrap();
    assert_eq!(
        (&command["status"], &command["result"]),
        (&json!("SUCCEEDED"), &json!({"currentTemperature": 24}))
    );

    let job = emu.create_job(
        json!({"operation": "firmwareUpdate", "version": "2.0.0"}),
        &[THING],
        None,
    );
    let out = run(&mut fleets(&emu), &["jobs", "get", THING]).ok();
    assert_eq!(out["queuedJobs"][0]["jobId"], json!(job));
    let out = run(
        &mut fleets(&emu),
        &[
            "jobs",
            "next",
            THING,
            "--status-details",
            r#"{"step":"download"}"#,
            "--step-timeout-min",
            "5",
        ],
    )
    .ok();
    assert_eq!(
        (
            &out["execution"]["jobId"],
            &out["execution"]["status"],
            &out["execution"]["jobDocument"]["version"]
        ),
        (&json!(job), &json!("IN_PROGRESS"), &json!("2.0.0"))
    );
    let version = out["execution"]["versionNumber"].as_u64().unwrap();
    let out = run(
        &mut fleets(&emu),
        &["jobs", "describe", THING, &job, "--client-token", "d-1"],
    )
    .ok();
    assert_eq!(
        out["execution"]["statusDetails"],
        json!({"step": "download"})
    );
    run(
        &mut fleets(&emu),
        &[
            "jobs",
            "update",
            THING,
            &job,
            "--status",
            "SUCCEEDED",
            "--status-details",
            r#"{"installedVersion":"2.0.0"}"#,
            "--expected-version",
            &version.to_string(),
        ],
    )
    .ok();
    let execution = emu.job_execution(&job, THING).unwrap();
    assert_eq!(
        (&execution["status"], &execution["statusDetails"]),
        (&json!("SUCCEEDED"), &json!({"installedVersion": "2.0.0"}))
    );
    // Nothing pending any more: no "execution" (and no generated client token without retries).
    assert_eq!(
        run(&mut fleets(&emu), &["jobs", "next", THING])
            .ok()
            .get("execution"),
        None
    );
    assert_eq!(
        run(
            &mut fleets(&emu),
            &["jobs", "next", THING, "--retries", "0"]
        )
        .ok(),
        json!({})
    );
}

#[test]
fn json_from_stdin() {
    let emu = emulator();
    let out = run_with(
        &mut fleets(&emu),
        &["shadow", "report", THING, "-"],
        Some("{\"fromStdin\": true}\n"),
    )
    .ok();
    assert_eq!(out["state"]["reported"], json!({"fromStdin": true}));

    run_with(
        &mut fleets(&emu),
        &["event", THING, "log", "-"],
        Some(r#"{"line":"x"}"#),
    )
    .ok();
    assert_eq!(emu.events(THING)[0]["data"], json!({"line": "x"}));

    let job = emu.create_job(json!({"op": "x"}), &[THING], None);
    run_with(
        &mut fleets(&emu),
        &[
            "jobs",
            "update",
            THING,
            &job,
            "--status",
            "FAILED",
            "--status-details",
            "-",
        ],
        Some(r#"{"reason":"disk full"}"#),
    )
    .ok();
    assert_eq!(
        emu.job_execution(&job, THING).unwrap()["statusDetails"],
        json!({"reason": "disk full"})
    );

    // Not JSON on stdin: refused before sending, as an argument is.
    let before = emu.stats().total;
    run_with(
        &mut fleets(&emu),
        &["shadow", "report", THING, "-"],
        Some("not json"),
    )
    .failed(1, "FLEETS_ERR_INVALID_JSON");
    assert_eq!(emu.stats().total, before);
}

#[test]
fn help_of_each_command() {
    let top = run(&mut bare(), &["--help"]);
    assert_eq!((top.status, top.stderr.as_str()), (0, ""));
    for words in [
        "shadow report",
        "shadow get",
        "event",
        "command respond",
        "jobs get",
        "jobs next",
        "jobs describe",
        "jobs update",
        "json get",
    ] {
        let mut args: Vec<&str> = words.split(' ').collect();
        assert!(
            top.stdout.contains(&format!("fleets {words} ")),
            "{words} missing from --help"
        );
        args.push("--help");
        let help = run(&mut bare(), &args);
        assert_eq!((help.status, help.stderr.as_str()), (0, ""), "{words}");
        assert!(
            help.stdout.starts_with(&format!("Usage: fleets {words} ")),
            "{help:?}"
        );
        assert!(help.stdout.contains("Exit status"), "{words}");
        // `help WORDS` and `-h` say the same.
        args.pop();
        let mut help_words = vec!["help"];
        help_words.extend(&args);
        assert_eq!(run(&mut bare(), &help_words).stdout, help.stdout, "{words}");
        args.push("-h");
        assert_eq!(run(&mut bare(), &args).stdout, help.stdout, "{words}");
    }
    for group in ["shadow", "jobs", "command", "json"] {
        let help = run(&mut bare(), &[group, "--help"]);
        assert_eq!(help.status, 0);
        assert!(
            help.stdout
                .starts_with(&format!("Commands of fleets {group}:")),
            "{help:?}"
        );
    }
    let version = run(&mut bare(), &["--version"]);
    assert_eq!(version.status, 0);
    assert!(version.stdout.starts_with("fleets 0."), "{version:?}");
}

#[test]
fn bad_usage_exits_64_and_sends_nothing() {
    let emu = emulator();
    for args in [
        &[][..],
        &["frobnicate"],
        &["shadow"],
        &["shadow", "report", THING],
        &["shadow", "get", THING, "extra"],
        &["shadow", "get", THING, "--version", "3"],
        &["shadow", "get", THING, "--no-such-option", "1"],
        &["shadow", "get", THING, "--timeout-ms"],
        &["shadow", "get", THING, "--timeout-ms", "soon"],
        &["jobs", "update", THING, "j1"],
        &["jobs", "update", THING, "j1", "--status", "DONE"],
        &["event", THING, "x", "--severity", "loud"],
    ] {
        let out = run(&mut fleets(&emu), args).usage();
        assert!(!out.stderr.contains("FLEETS_ERR"), "{out:?}");
    }
    assert_eq!(emu.stats().total, 0);
}

#[test]
fn exit_status_of_argument_and_configuration_errors_is_1() {
    let emu = emulator();
    run(&mut fleets(&emu), &["shadow", "get", "bad name!"])
        .failed(1, "FLEETS_ERR_INVALID_ARGUMENT");
    run(&mut fleets(&emu), &["shadow", "report", THING, "[1,2]"])
        .failed(1, "FLEETS_ERR_INVALID_JSON");
    run(
        &mut fleets(&emu),
        &["event", THING, "x", "--timestamp-ms", "-5"],
    )
    .failed(1, "FLEETS_ERR_INVALID_ARGUMENT");
    run(
        &mut fleets(&emu),
        &["shadow", "get", THING, "--ca-file", "/nonexistent/ca.pem"],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    run(
        &mut fleets(&emu),
        &[
            "shadow",
            "get",
            THING,
            "--endpoint",
            "http://fleets.example.com",
        ],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    run(
        &mut fleets(&emu),
        &["shadow", "get", THING, "--proxy", "socks5://127.0.0.1:1"],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    let out = run(&mut bare(), &["shadow", "get", THING]).failed(1, "FLEETS_ERR_INVALID_CONFIG");
    assert!(
        out.stderr
            .contains("FLEETS_ENDPOINT is not set: set it or pass --endpoint URL"),
        "{out:?}"
    );
    assert_eq!(emu.stats().total, 0);
}

#[test]
fn exit_status_of_transport_errors_is_2() {
    let emu = emulator();
    // Connection refused: a port that was just free.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run(
        &mut fleets(&emu),
        &[
            "shadow",
            "get",
            THING,
            "--endpoint",
            &format!("https://127.0.0.1:{port}"),
        ],
    )
    .failed(2, "FLEETS_ERR_CONNECT");
    // TLS: the bundled roots do not know the emulator's throwaway CA.
    let mut untrusting = fleets(&emu);
    untrusting.env_remove("FLEETS_CA_FILE");
    run(&mut untrusting, &["shadow", "get", THING]).failed(2, "FLEETS_ERR_TLS");
    // Timeout: the server never answers.
    emu.add_fault(FaultRule::new(FaultKind::Stall, "").times(0));
    let out = run(
        &mut fleets(&emu),
        &[
            "shadow",
            "get",
            THING,
            "--timeout-ms",
            "300",
            "--retries",
            "0",
        ],
    )
    .failed(2, "FLEETS_ERR_TIMEOUT");
    assert_eq!(out.stdout, "");
}

#[test]
fn exit_status_of_http_errors_is_3_with_the_body_on_stdout() {
    let emu = emulator();
    let out = run(&mut fleets(&emu), &["shadow", "get", "unknown-thing"])
        .failed(3, "FLEETS_ERR_NOT_FOUND");
    assert_eq!(out.json()["code"], "ResourceNotFound", "{out:?}");

    // A script reads the current version from the 409 body.
    run(&mut fleets(&emu), &["shadow", "report", THING, "{\"a\":1}"]).ok();
    let out = run(
        &mut fleets(&emu),
        &["shadow", "report", THING, "{\"a\":2}", "--version", "7"],
    )
    .failed(3, "FLEETS_ERR_CONFLICT");
    assert_eq!(
        (out.json()["code"].clone(), out.json()["version"].clone()),
        (json!("VersionConflict"), json!(1))
    );

    let wrong = temp_file("wrong-secret", "not-the-secret\n");
    run(
        &mut fleets(&emu),
        &[
            "shadow",
            "get",
            THING,
            "--api-secret-file",
            wrong.to_str().unwrap(),
        ],
    )
    .failed(3, "FLEETS_ERR_UNAUTHORIZED");

    // --retries 0: the first 503 is final; by default the call is retried and succeeds.
    emu.add_fault(FaultRule::status("", 503));
    run(
        &mut fleets(&emu),
        &["shadow", "get", THING, "--retries", "0"],
    )
    .failed(3, "FLEETS_ERR_SERVER");
    emu.add_fault(FaultRule::status("", 503));
    run(&mut fleets(&emu), &["shadow", "get", THING]).ok();
}

#[test]
fn exit_status_9_when_the_answer_cannot_be_written() {
    let emu = emulator();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut command = fleets(&emu);
    command
        .args(["shadow", "get", THING])
        .stdout(full)
        .stderr(Stdio::piped());
    let output = command.output().expect("fleets runs");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.starts_with("fleets: FLEETS_ERR_INTERNAL: the call succeeded"),
        "{stderr}"
    );
}

#[test]
fn flags_override_the_environment() {
    let emu = emulator();
    let secret = temp_file("secret", &format!("{SECRET}\r\n"));
    let ca = emu.ca_file().unwrap().to_str().unwrap().to_owned();
    let flags = [
        "--endpoint",
        emu.endpoint(),
        "--api-key",
        emu.api_key(),
        "--api-secret-file",
        secret.to_str().unwrap(),
        "--ca-file",
        &ca,
    ];
    // No environment at all.
    let mut args = vec!["shadow", "get", THING];
    args.extend(flags);
    run(&mut bare(), &args).ok();
    // A wrong environment, overridden.
    let mut wrong = bare();
    wrong
        .env("FLEETS_ENDPOINT", "https://127.0.0.1:1")
        .env("FLEETS_API_KEY", "ak_wrong")
        .env("FLEETS_API_SECRET", "wrong")
        .env("FLEETS_CA_FILE", "/nonexistent");
    run(&mut wrong, &args).ok();
    // An unreadable secret file is a configuration error that names the file.
    let out = run(
        &mut bare(),
        &[
            "shadow",
            "get",
            THING,
            "--endpoint",
            emu.endpoint(),
            "--api-key",
            "k",
            "--api-secret-file",
            "/nonexistent/secret",
        ],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    assert!(
        out.stderr.contains("/nonexistent/secret: cannot read it"),
        "{out:?}"
    );
}

#[test]
fn the_secret_never_appears() {
    let emu = emulator();
    // `run` checks every output for the secret; these are the likeliest places for a leak.
    let out = run(
        &mut fleets(&emu),
        &["shadow", "get", THING, &format!("--api-secret={SECRET}")],
    )
    .usage();
    assert!(out.stderr.contains("FLEETS_API_SECRET"), "{out:?}");
    run(
        &mut fleets(&emu),
        &["--api-secret", SECRET, "shadow", "get", THING],
    )
    .usage();
    // A server that echoes the credentials in an error body.
    emu.add_fault(FaultRule {
        body: Some(json!({"code": "Oops", "message": format!("bad secret {SECRET}")})),
        ..FaultRule::status("", 400)
    });
    let out = run(&mut fleets(&emu), &["shadow", "get", THING]).failed(3, "FLEETS_ERR_BAD_REQUEST");
    assert!(out.stdout.contains("<redacted>"), "{out:?}");
    // Every kind of failure with the secret configured.
    run(&mut fleets(&emu), &["shadow", "get", "bad name!"])
        .failed(1, "FLEETS_ERR_INVALID_ARGUMENT");
    let mut untrusting = fleets(&emu);
    untrusting.env_remove("FLEETS_CA_FILE");
    run(&mut untrusting, &["shadow", "get", THING]).failed(2, "FLEETS_ERR_TLS");
}

#[test]
fn json_get_reads_answers_without_jq() {
    let emu = emulator();
    emu.set_desired(THING, json!({"targetTemperature": 24, "mode": "eco"}))
        .unwrap();
    let shadow = run(&mut fleets(&emu), &["shadow", "get", THING]);
    assert_eq!(shadow.status, 0, "{shadow:?}");
    let get = |pointer: &str, document: &str| {
        run_with(&mut bare(), &["json", "get", pointer], Some(document))
    };
    assert_eq!(
        get("/delta/targetTemperature", &shadow.stdout).ok(),
        json!(24)
    );
    // Strings come out unquoted, for `mode=$(...)`.
    let mode = get("/delta/mode", &shadow.stdout);
    assert_eq!((mode.status, mode.stdout.as_str()), (0, "eco\n"));
    assert_eq!(
        get("/delta", &shadow.stdout).ok(),
        json!({"targetTemperature": 24, "mode": "eco"})
    );

    // The current version out of a 409 body, as a retry loop in a script needs it.
    let current =
        run(&mut fleets(&emu), &["shadow", "report", THING, "{}"]).ok()["version"].clone();
    let conflict = run(
        &mut fleets(&emu),
        &["shadow", "report", THING, "{}", "--version", "9"],
    )
    .failed(3, "FLEETS_ERR_CONFLICT");
    let version = run(&mut bare(), &["json", "get", "/version", &conflict.stdout]);
    assert_eq!(
        (version.status, version.stdout),
        (0, format!("{current}\n"))
    );

    get("/nope", "{}").failed(1, "FLEETS_ERR_JSON_NO_VALUE");
    get("/a", "not json").failed(1, "FLEETS_ERR_INVALID_JSON");
    get("a", "{}").failed(1, "FLEETS_ERR_INVALID_ARGUMENT");
    // Never a connection, so no configuration is needed.
    run(&mut bare(), &["json", "get", "", "[1]"]).ok();
}

#[test]
fn a_malformed_secret_file_is_refused_without_showing_it() {
    let emu = emulator();
    // A NUL byte cannot go into the environment; the error must not quote the file.
    let nul = temp_file("secret-nul", &format!("{SECRET}\0x\n"));
    let out = run(
        &mut bare(),
        &[
            "shadow",
            "get",
            THING,
            "--endpoint",
            emu.endpoint(),
            "--api-key",
            emu.api_key(),
            "--api-secret-file",
            nul.to_str().unwrap(),
        ],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    assert!(out.stderr.contains("secret-nul"), "{out:?}");
    // Not a secret but a large file read by mistake: refused without reading it all.
    let big = temp_file("secret-big", &"x".repeat(64 * 1024));
    run(
        &mut bare(),
        &[
            "shadow",
            "get",
            THING,
            "--endpoint",
            emu.endpoint(),
            "--api-key",
            emu.api_key(),
            "--api-secret-file",
            big.to_str().unwrap(),
        ],
    )
    .failed(1, "FLEETS_ERR_INVALID_CONFIG");
    assert_eq!(emu.stats().total, 0);
}
