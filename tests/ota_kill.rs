//! The kill test: `examples-c/job_agent.c` (the OTA agent) runs firmware jobs and is
//! SIGKILLed at random points, then started again, until each job is over. Checked after
//! every run:
//! - the installed image is the old one or the complete verified new one;
//! - no handler step runs again once its completion was recorded in the state directory
//!   (the agent's journal against the state file read after each kill);
//! - a resumed download asks for the bytes from the length of the partial file left by the
//!   killed process, and re-fetches at most what was in flight (the file server's log);
//! - every job ends in a terminal status at the emulator.
//!
//! Short form in the normal suite (`FLEETS_KILLS`, default 30 kills); the long form, 200
//! kills: `cargo test --test ota_kill -- --ignored --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::file_server::{content, sha256_hex, FileServer};
use fleets_emulator::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

const THING: &str = "ota-device-001";
const IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The agent's download buffer: what a killed process can have received and not written.
const CHUNK: u64 = fleets::DOWNLOAD_CHUNK_BYTES as u64;
/// Bytes the file server may have handed to its socket that never reached the killed agent.
const IN_FLIGHT_ALLOWANCE: u64 = 64 * 1024;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default, Debug)]
struct Tally {
    kills: u32,
    runs: u32,
    jobs: u32,
    succeeded: u32,
    other_terminal: BTreeMap<String, u32>,
    resumed_downloads: u32,
    refetched_max: u64,
    refetched_total: u64,
    kills_by_step: BTreeMap<String, u32>,
}

struct Bench {
    emu: Emulator,
    files: FileServer,
    agent: PathBuf,
    ca_bundle: PathBuf,
    root: PathBuf,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
        emu.register_thing(THING);
        let files = FileServer::start();
        let root = std::env::temp_dir().join(format!("fleets-ota-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // The agent trusts the emulator's CA and the file server's.
        let ca_bundle = root.join("ca-bundle.pem");
        std::fs::write(
            &ca_bundle,
            format!("{}{}", emu.ca_pem().unwrap(), files.ca.cert_pem),
        )
        .unwrap();
        let agent = common::c_build::compile("examples-c/job_agent.c", "ota_job_agent");
        Bench {
            emu,
            files,
            agent,
            ca_bundle,
            root,
        }
    }

    fn spawn(&self, dir: &Path) -> Child {
        Command::new(&self.agent)
            .args(["--thing", THING, "--state-dir"])
            .arg(dir.join("state"))
            .arg("--firmware-dir")
            .arg(dir.join("fw"))
            .arg("--journal")
            .arg(dir.join("journal.log"))
            .env("FLEETS_ENDPOINT", self.emu.endpoint())
            .env("FLEETS_API_KEY", self.emu.api_key())
            .env("FLEETS_API_SECRET", self.emu.api_secret())
            .env("FLEETS_CA_FILE", &self.ca_bundle)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent starts")
    }
}

fn state_of(dir: &Path) -> Option<Value> {
    let bytes = std::fs::read(dir.join("state").join(format!("fleets-job-{THING}.json"))).ok()?;
    Some(serde_json::from_slice(&bytes).expect("the state file is always whole JSON"))
}

fn journal_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run_kill_test(kills_wanted: u32) -> Tally {
    let bench = Bench::new(&format!("kill{kills_wanted}"));
    let mut rng = Rng(std::env::var("FLEETS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234));
    let mut tally = Tally::default();
    let mut job_number = 0u64;
    let started = Instant::now();
    while tally.kills < kills_wanted {
        job_number += 1;
        tally.jobs += 1;
        let dir = bench.root.join(format!("job-{job_number}"));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("fw")).unwrap();
        // Jobs differ in size and pace, so that kills land in every step, not only in long
        // downloads.
        let size = [IMAGE_BYTES / 8, IMAGE_BYTES / 2, IMAGE_BYTES][rng.below(3) as usize];
        let pace = [None, Some(Duration::from_millis(4))][rng.below(2) as usize];
        let old = content(IMAGE_BYTES / 2, job_number * 2);
        let new = content(size, job_number * 2 + 1);
        std::fs::write(dir.join("fw/firmware.bin"), &old).unwrap();
        let (old_sha, new_sha) = (sha256_hex(&old), sha256_hex(&new));
        let name = format!("fw-{job_number}.bin");
        let (url, _) = bench.files.put(&name, new);
        bench.files.update(&name, |f| f.chunk_delay = pace);
        let version = format!("2.{job_number}.0");
        let job = bench.emu.create_job(
            json!({"action": "updateFirmware",
                   "params": {"version": version, "url": url, "sha256": new_sha}}),
            &[THING],
            None,
        );

        let mut floor = 0u64; // every step below it was recorded as complete
        let mut journal_seen = 0;
        let mut part_after_kill: Option<u64> = None;
        let mut requests_seen = 0;
        let mut runs_of_job = 0;
        loop {
            runs_of_job += 1;
            assert!(runs_of_job < 200, "job {job}: the agent does not finish");
            tally.runs += 1;
            let mut child = bench.spawn(&dir);
            let kill_at = if tally.kills >= kills_wanted {
                None
            } else if rng.below(2) == 0 {
                Some(Duration::from_millis(rng.below(150)))
            } else {
                Some(Duration::from_millis(rng.below(900)))
            };
            let t0 = Instant::now();
            let mut killed = false;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if kill_at.is_some_and(|k| t0.elapsed() >= k) {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                    break child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            if !killed {
                assert!(
                    matches!(status.code(), Some(0) | Some(3)),
                    "agent exited {status:?}\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }

            // 1. The installed image: old, or new and complete.
            let installed = sha256_hex(&std::fs::read(dir.join("fw/firmware.bin")).unwrap());
            assert!(
                installed == old_sha || installed == new_sha,
                "job {job}: the installed image is neither the old nor the new one"
            );

            // 2. No step began again below the recorded floor.
            let journal = journal_lines(&dir);
            for line in &journal[journal_seen..] {
                let fields: Vec<&str> = line.split(' ').collect();
                if fields[0] == "begin" {
                    let step: u64 = fields[2].parse().unwrap();
                    assert!(
                        step >= floor,
                        "job {job}: step {step} began again after step {floor} was recorded\n{journal:#?}"
                    );
                }
            }
            journal_seen = journal.len();
            let state = state_of(&dir);
            if let Some(state) = &state {
                assert_eq!(state["jobId"], job.as_str());
                let step = state["step"].as_u64().unwrap();
                assert!(step >= floor, "the recorded step never goes back");
                floor = step;
            }
            if killed {
                tally.kills += 1;
                let at = match &state {
                    None => "no state".to_owned(),
                    Some(s) if s.get("finalStatus").is_some() => "final status".to_owned(),
                    Some(s) => format!("step {}", s["step"]),
                };
                *tally.kills_by_step.entry(at).or_default() += 1;
            }

            // 3. Resumed downloads start where the partial file ends.
            assert!(
                bench.files.wait_responses_done(Duration::from_secs(10)),
                "the file server notices the killed agent"
            );
            let log: Vec<_> = bench
                .files
                .log()
                .into_iter()
                .filter(|r| r.path.ends_with(&name))
                .collect();
            if let (Some(part), Some(first_new)) = (part_after_kill, log.get(requests_seen)) {
                if part > 0 && part < size as u64 {
                    assert_eq!(
                        first_new.range_start,
                        Some(part),
                        "job {job}: the resumed request starts at the partial file's end"
                    );
                }
            }
            for pair in log[requests_seen.saturating_sub(1)..].windows(2) {
                let previous_end = pair[0].range_start.unwrap_or(0) + pair[0].body_bytes;
                let start = pair[1].range_start.unwrap_or(0);
                if pair[1].range_start.is_some() {
                    tally.resumed_downloads += 1;
                }
                let refetched = previous_end.saturating_sub(start);
                if pace.is_none() {
                    // Unpaced, the server's count includes whole socket buffers that never
                    // reached the agent: not a measure of what the agent dropped.
                    continue;
                }
                // The agent loses at most its unwritten chunk; the server also counts what was
                // still in its socket and TLS buffers when the agent died (up to 64 KiB here).
                assert!(
                    refetched < CHUNK + IN_FLIGHT_ALLOWANCE,
                    "job {job}: {refetched} bytes fetched again"
                );
                if std::env::var_os("FLEETS_KILL_VERBOSE").is_some() {
                    eprintln!(
                        "resume: previous {:?}+{} (done {}), now {:?}: re-fetched {refetched}",
                        pair[0].range_start, pair[0].body_bytes, pair[0].done, pair[1].range_start
                    );
                }
                tally.refetched_max = tally.refetched_max.max(refetched);
                tally.refetched_total += refetched;
            }
            requests_seen = log.len();
            part_after_kill = std::fs::metadata(dir.join("fw/firmware.new.part"))
                .ok()
                .map(|m| m.len());

            // 4. Done when the job is terminal at the emulator and the agent said so.
            let execution = bench.emu.job_execution(&job, THING).unwrap();
            let status_text = execution["status"].as_str().unwrap().to_owned();
            let terminal = !matches!(status_text.as_str(), "QUEUED" | "IN_PROGRESS");
            if terminal && state.is_none() {
                if status_text == "SUCCEEDED" {
                    tally.succeeded += 1;
                    assert_eq!(installed, new_sha, "SUCCEEDED with the new image installed");
                    assert_eq!(
                        execution["statusDetails"]["installedVersion"],
                        version.as_str()
                    );
                } else {
                    // The one other end a kill loop may bring: a step started too often.
                    let reason = execution["statusDetails"]["reason"].as_str().unwrap_or("");
                    assert!(
                        status_text == "FAILED"
                            && reason.contains("did not complete in 10 attempts"),
                        "job {job} ended {status_text}: {}",
                        execution["statusDetails"]
                    );
                    eprintln!(
                        "job {job} ended {status_text}: {}",
                        execution["statusDetails"]
                    );
                    *tally.other_terminal.entry(status_text).or_default() += 1;
                }
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "kill test: {} kills over {} runs of the agent, {} jobs ({} SUCCEEDED, other terminal {:?}), {:.1} s",
        tally.kills,
        tally.runs,
        tally.jobs,
        tally.succeeded,
        tally.other_terminal,
        elapsed.as_secs_f64()
    );
    eprintln!(
        "kill test: where the kills landed: {:?}",
        tally.kills_by_step
    );
    eprintln!(
        "kill test: {} resumed downloads (paced ones measured); re-fetched per resume: max {} bytes, total {} bytes \
         (chunk {CHUNK}; the server counts bytes handed to its socket, some never reached the killed agent)",
        tally.resumed_downloads, tally.refetched_max, tally.refetched_total
    );
    let _ = std::fs::remove_dir_all(&bench.root);
    tally
}

#[test]
fn the_ota_agent_survives_random_kills() {
    let kills = std::env::var("FLEETS_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let tally = run_kill_test(kills);
    assert!(
        tally.resumed_downloads > 0,
        "some kills interrupted downloads"
    );
    assert!(tally.succeeded * 10 >= tally.jobs * 8, "{tally:?}");
}

#[test]
#[ignore = "long form: 200 kills (about 2 minutes)"]
fn the_ota_agent_survives_200_random_kills() {
    let tally = run_kill_test(200);
    assert!(tally.succeeded * 10 >= tally.jobs * 8, "{tally:?}");
}

/// Deterministic: the agent is killed while a partial chunk sits in its buffer (the server
/// stalls after 3 chunks and 12,345 bytes, which the agent has read): the partial file holds
/// the 3 whole chunks, and the restarted agent asks for the rest from there, so exactly the
/// 12,345 buffered bytes are fetched again.
#[test]
fn a_killed_download_fetches_again_only_the_unwritten_part_of_a_chunk() {
    let bench = Bench::new("stall");
    let dir = bench.root.join("stall");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::create_dir_all(dir.join("fw")).unwrap();
    std::fs::write(dir.join("fw/firmware.bin"), b"old").unwrap();
    let image = content(IMAGE_BYTES, 99);
    let sha = sha256_hex(&image);
    let (url, _) = bench.files.put("stall.bin", image);
    let stall_at = 3 * CHUNK + 12_345;
    bench
        .files
        .update("stall.bin", |f| f.stall_after = Some((stall_at, 1)));
    let job = bench.emu.create_job(
        json!({"action": "updateFirmware", "params": {"version": "3.0.0", "url": url, "sha256": sha}}),
        &[THING],
        None,
    );
    let mut child = bench.spawn(&dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bench.files.log().first().map(|r| r.body_bytes) != Some(stall_at) {
        assert!(Instant::now() < deadline, "the download reaches the stall");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300)); // the agent reads what was sent
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(bench.files.wait_responses_done(Duration::from_secs(10)));
    let part = std::fs::metadata(dir.join("fw/firmware.new.part"))
        .unwrap()
        .len();
    assert_eq!(
        part,
        3 * CHUNK,
        "whole chunks are on disk, the partial one was in memory"
    );

    for _ in 0..3 {
        let out = bench.spawn(&dir).wait_with_output().unwrap();
        if out.status.code() == Some(0) {
            break;
        }
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let log = bench.files.log();
    assert_eq!(log[1].range_start, Some(3 * CHUNK));
    let refetched = stall_at - 3 * CHUNK;
    assert!(refetched < CHUNK);
    eprintln!("kill during a stalled download: {refetched} bytes fetched again (chunk {CHUNK})");
    assert_eq!(
        bench.emu.job_execution(&job, THING).unwrap()["status"],
        "SUCCEEDED"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(dir.join("fw/firmware.bin")).unwrap()),
        sha
    );
    let _ = std::fs::remove_dir_all(&bench.root);
}
