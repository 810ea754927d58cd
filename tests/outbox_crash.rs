//! Crash and power-cut tests of the outbox.
//!
//! A child process (this test binary again, running `crash_child`) enqueues events, reports,
//! command responses and job updates and flushes them to the in-process emulator of the
//! parent, sometimes through a client whose server is down so that a backlog builds up. It
//! prints `ACK <round> <seq>` after each enqueue that returned Ok, and the outbox notes the
//! synced length of a segment file in a trace file after every sync it completes. The parent
//! SIGKILLs the child at a random moment, then:
//!
//! - crash: reopens the outbox (it must open; no record may be damaged) and starts the next
//!   child on the same directory;
//! - power cut: first drops what was not synced, as a power cut would: each segment is cut
//!   at its synced length, or at a random point after it, or keeps its length with a random
//!   stretch after it zeroed or garbled (pages written back out of order).
//!
//! At the end the parent drains the outbox and checks every acknowledged record against the
//! emulator: delivered (events and command responses by their `seq`, reports by their key in
//! the shadow history, job updates by the execution's version), duplicates only where a
//! client token makes them recognisable (reports) or at most one per kill otherwise; with
//! `SyncPolicy::Batch` and a power cut, only the newest `max_records` acknowledged records of
//! a round may be missing.
//!
//! `cargo test --test outbox_crash` runs a short form (60 kills, 40 power cuts); the full run
//! is `cargo test --release --test outbox_crash -- --ignored --nocapture` (1,000 kills and
//! 1,000 power cuts, or `FLEETS_OUTBOX_KILLS=N`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleets::{
    Client, Config, Event, ExecutionStatus, Outbox, OutboxOptions, ReportOptions, Severity,
    SyncPolicy,
};
use fleets_emulator::{Emulator, EmulatorOptions};
use serde_json::json;

const CHILD_ENV: &str = "FLEETS_OUTBOX_CRASH_CHILD";
const BATCH_RECORDS: u32 = 8;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn options(batch: bool) -> OutboxOptions {
    OutboxOptions {
        sync: if batch {
            SyncPolicy::Batch {
                max_delay: Duration::from_millis(50),
                max_records: BATCH_RECORDS,
            }
        } else {
            SyncPolicy::Always
        },
        // Small segments, so that rotation and deletion happen under the kills too.
        max_bytes: 256 * 1024,
        ..OutboxOptions::default()
    }
}

fn thing(round: u64) -> String {
    format!("crash-{round}")
}

/// The child: enqueue and flush until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |name: &str| std::env::var(name).expect(name);
    let round: u64 = var("CRASH_ROUND").parse().unwrap();
    let batch = var("CRASH_BATCH") == "1";
    let mut rng = Rng(var("CRASH_SEED").parse::<u64>().unwrap() | 1);
    let mut config = Config::new(
        &var("CRASH_ENDPOINT"),
        &var("CRASH_KEY"),
        &var("CRASH_SECRET"),
    )
    .unwrap();
    config.set_ca_file(Path::new(&var("CRASH_CA"))).unwrap();
    config.set_timeouts(Duration::from_secs(5), Duration::from_secs(5));
    let client = Client::new(&config).unwrap();
    let mut offline = Config::new(&var("CRASH_OFFLINE"), "key", "secret").unwrap();
    offline.set_ca_file(Path::new(&var("CRASH_CA"))).unwrap();
    let offline = Client::new(&offline).unwrap();
    let outbox = Outbox::open(&dir, &options(batch)).unwrap();
    outbox
        .trace_syncs_for_tests(Path::new(&var("CRASH_TRACE")))
        .unwrap();
    let thing = thing(round);
    let command = var("CRASH_COMMAND");
    let job = var("CRASH_JOB");
    let out = std::io::stdout();
    let mut seq = 0u64;
    loop {
        for _ in 0..=rng.below(8) {
            let data = format!(r#"{{"round":{round},"seq":{seq}}}"#);
            match seq % 4 {
                0 => outbox.enqueue_event(
                    &thing,
                    Event {
                        event_type: "tick",
                        severity: Some(Severity::Info),
                        timestamp_ms: 0,
                        data_json: Some(&data),
                        app_id: None,
                    },
                ),
                1 => outbox.enqueue_report(
                    &thing,
                    &format!(r#"{{"k{seq}":{seq}}}"#),
                    ReportOptions::default(),
                ),
                2 => outbox.enqueue_command_response(
                    &thing,
                    &command,
                    ExecutionStatus::InProgress,
                    Some(&data),
                    0,
                ),
                _ => outbox.enqueue_job_update(
                    &thing,
                    &job,
                    ExecutionStatus::InProgress,
                    Some(&data),
                    0,
                    None,
                ),
            }
            .unwrap();
            let mut out = out.lock();
            writeln!(out, "ACK {round} {seq}").unwrap();
            out.flush().unwrap();
            seq += 1;
        }
        let via = if rng.below(10) < 3 { &offline } else { &client };
        let _ = outbox.flush(via, Some(Duration::from_millis(300)));
    }
}

/// One round's child output, parsed.
#[derive(Default)]
struct Seen {
    acked: Vec<u64>,
    /// The last synced length of each segment file, from the outbox's sync trace.
    synced: HashMap<PathBuf, u64>,
}

struct Harness {
    emu: Emulator,
    dir: PathBuf,
    offline: String,
    rng: Rng,
    rounds: Vec<Round>,
    kills: u64,
    torn_bytes: u64,
    corrupt_records: u64,
}

struct Round {
    batch: bool,
    command: String,
    job: String,
    acked: Vec<u64>,
    power_cut: bool,
}

impl Harness {
    fn new(tag: &str, seed: u64) -> Harness {
        let emu = Emulator::start(EmulatorOptions {
            auto_register: true,
            ..EmulatorOptions::default()
        })
        .unwrap();
        let dir = std::env::temp_dir().join(format!("fleets-outbox-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Harness {
            emu,
            dir,
            offline: format!("https://127.0.0.1:{port}"),
            rng: Rng(seed),
            rounds: Vec::new(),
            kills: 0,
            torn_bytes: 0,
            corrupt_records: 0,
        }
    }

    /// Runs one child and kills it after a random time; returns what it printed.
    fn run_child(&mut self, batch: bool, power_cut: bool) -> Seen {
        let round = self.rounds.len() as u64;
        let thing = thing(round);
        self.emu.register_thing(&thing);
        let command = self.emu.create_command(&thing, "collect", json!({}), 0);
        let job = self
            .emu
            .create_job(json!({"op": "crash"}), &[thing.as_str()], None);
        let trace = self.dir.with_extension(format!("trace-{round}"));
        let _ = fs::remove_file(&trace);
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &self.dir)
            .env("CRASH_ROUND", round.to_string())
            .env("CRASH_BATCH", if batch { "1" } else { "0" })
            .env("CRASH_SEED", self.rng.next().to_string())
            .env("CRASH_ENDPOINT", self.emu.endpoint())
            .env("CRASH_KEY", self.emu.api_key())
            .env("CRASH_SECRET", self.emu.api_secret())
            .env("CRASH_CA", self.emu.ca_file().unwrap())
            .env("CRASH_OFFLINE", &self.offline)
            .env("CRASH_COMMAND", &command)
            .env("CRASH_JOB", &job)
            .env("CRASH_TRACE", &trace)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    // Only whole lines: the last one may have been cut by the kill.
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if !line.ends_with('\n') => break,
                        Ok(_) => {}
                    }
                    if let Some(rest) = line.trim_end().strip_prefix("ACK ") {
                        let seq = rest.split(' ').nth(1).unwrap().parse().unwrap();
                        seen.lock().unwrap().acked.push(seq);
                    }
                }
            })
        };
        // Children take ~20 ms to start; kill anywhere from before the first enqueue to deep
        // in a flush of a backlog.
        let delay = 5 + self.rng.below(250);
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            !status.success() && !stderr.contains("panicked"),
            "the child failed on its own: {status}\n{stderr}"
        );
        self.kills += 1;
        let mut seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
        // Whole lines only: the kill may have cut the last one.
        let text = fs::read_to_string(&trace).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for line in whole.lines() {
            let (path, len) = line.rsplit_once(' ').unwrap();
            seen.synced
                .insert(PathBuf::from(path), len.parse().unwrap());
        }
        let _ = fs::remove_file(&trace);
        self.rounds.push(Round {
            batch,
            command,
            job,
            acked: seen.acked.clone(),
            power_cut,
        });
        seen
    }

    /// Drops what a power cut would: bytes after each segment's synced length.
    fn cut_power(&mut self, synced: &HashMap<PathBuf, u64>) {
        for item in fs::read_dir(&self.dir).unwrap() {
            let path = item.unwrap().path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let len = fs::metadata(&path).unwrap().len();
            // A segment whose creation (header, synced) was not traced yet: nothing else was
            // written to it.
            let Some(&durable) = synced.get(&path) else {
                continue;
            };
            let durable = durable.min(len);
            if durable == len {
                continue;
            }
            let mut bytes = fs::read(&path).unwrap();
            let unsynced = len - durable;
            match self.rng.below(3) {
                0 => bytes.truncate(durable as usize),
                1 => bytes.truncate((durable + self.rng.below(unsynced + 1)) as usize),
                _ => {
                    let start = durable + self.rng.below(unsynced);
                    let end = (start + 1 + self.rng.below(4096)).min(len);
                    let zero = self.rng.below(2) == 0;
                    for b in &mut bytes[start as usize..end as usize] {
                        *b = if zero { 0 } else { self.rng.next() as u8 };
                    }
                }
            }
            fs::write(&path, &bytes).unwrap();
        }
    }

    /// Reopens the outbox as the next process would: it must open, with no damaged record
    /// after a plain crash.
    fn reopen(&mut self, after_power_cut: bool, batch: bool) {
        let outbox = Outbox::open(&self.dir, &options(batch)).expect("the outbox reopens");
        let stats = outbox.stats().unwrap();
        self.torn_bytes += stats.torn_bytes;
        self.corrupt_records += stats.corrupt_records;
        if !after_power_cut {
            assert_eq!(
                stats.corrupt_records, 0,
                "a crash damaged a record: {stats:?}"
            );
        }
        outbox.close().unwrap();
    }

    /// Delivers whatever is still queued and checks every round.
    fn drain_and_check(&mut self) -> Report {
        let outbox = Outbox::open(&self.dir, &options(false)).unwrap();
        let mut config = Config::new(
            self.emu.endpoint(),
            self.emu.api_key(),
            self.emu.api_secret(),
        )
        .unwrap();
        config.set_ca_file(self.emu.ca_file().unwrap()).unwrap();
        let client = Client::new(&config).unwrap();
        let flushed = outbox.flush(&client, None);
        flushed.result.unwrap();
        let stats = outbox.stats().unwrap();
        assert_eq!(stats.queued_records, 0, "{stats:?}");
        assert_eq!(stats.dead_lettered_records, 0, "{stats:?}");
        outbox.close().unwrap();
        let _ = fs::remove_dir_all(&self.dir);

        let mut report = Report::default();
        for (round, r) in self.rounds.iter().enumerate() {
            let thing = thing(round as u64);
            report.acked += r.acked.len() as u64;
            let mut delivered: BTreeMap<u64, u64> = BTreeMap::new(); // seq -> copies
            for e in self.emu.events(&thing) {
                *delivered
                    .entry(e["data"]["seq"].as_u64().unwrap())
                    .or_default() += 1;
            }
            let command = self.emu.command(&thing, &r.command).unwrap();
            for response in command["responses"].as_array().unwrap() {
                *delivered
                    .entry(response["result"]["seq"].as_u64().unwrap())
                    .or_default() += 1;
            }
            let mut report_keys: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new(); // seq -> tokens
            let mut report_copies: BTreeMap<u64, u64> = BTreeMap::new();
            for entry in self.emu.shadow_history(&thing) {
                let token = entry["clientToken"].as_str().unwrap_or("").to_owned();
                for key in entry["state"]["reported"].as_object().unwrap().keys() {
                    let seq = key[1..].parse().unwrap();
                    report_keys.entry(seq).or_default().insert(token.clone());
                    *report_copies.entry(seq).or_default() += 1;
                }
            }
            let execution = self.emu.job_execution(&r.job, &thing).unwrap();
            let job_updates_applied = execution["versionNumber"].as_u64().unwrap() - 1;
            let last_job_seq = execution["statusDetails"]["seq"].as_u64();

            let mut missing = Vec::new();
            let mut acked_jobs = 0;
            for &seq in &r.acked {
                let found = match seq % 4 {
                    0 | 2 => delivered.contains_key(&seq),
                    1 => report_keys.contains_key(&seq),
                    _ => {
                        acked_jobs += 1;
                        last_job_seq.is_some_and(|last| last >= seq)
                    }
                };
                if !found {
                    missing.push(seq);
                }
            }
            assert!(
                job_updates_applied >= acked_jobs
                    || (r.batch && r.power_cut && acked_jobs - job_updates_applied <= u64::from(BATCH_RECORDS)),
                "round {round}: {acked_jobs} job updates acknowledged, {job_updates_applied} applied"
            );
            if r.batch && r.power_cut {
                // Only the newest records, those not yet synced, may be lost.
                let newest: BTreeSet<u64> = r
                    .acked
                    .iter()
                    .rev()
                    .take(BATCH_RECORDS as usize)
                    .copied()
                    .collect();
                assert!(
                    missing.iter().all(|s| newest.contains(s)),
                    "round {round}: lost {missing:?}, only the newest {BATCH_RECORDS} may be: {newest:?}"
                );
                report.lost_unsynced += missing.len() as u64;
            } else {
                assert!(
                    missing.is_empty(),
                    "round {round} lost acknowledged records {missing:?}"
                );
            }
            report.duplicates_untokened += delivered.values().map(|c| c - 1).sum::<u64>();
            for (seq, tokens) in &report_keys {
                let copies = report_copies[seq];
                if copies == 1 {
                    continue;
                }
                if tokens.len() == 1 {
                    report.duplicates_tokened += copies - 1;
                } else if r.batch && r.power_cut {
                    // Pages written back out of order can lose an unsynced report and keep a
                    // later one, so the repeat of a group starts at another record.
                    report.duplicates_retokened += copies - 1;
                } else {
                    let history: Vec<String> = self
                        .emu
                        .shadow_history(&thing)
                        .iter()
                        .map(|h| {
                            let keys: Vec<&String> =
                                h["state"]["reported"].as_object().unwrap().keys().collect();
                            format!("v{} {} {keys:?}", h["version"], h["clientToken"])
                        })
                        .collect();
                    panic!(
                        "round {round}: report k{seq} was sent {copies} times under different tokens {tokens:?}; history:\n{}",
                        history.join("\n")
                    );
                }
            }
        }
        if !self.rounds.iter().any(|r| r.power_cut) {
            // A kill interrupts at most one request whose acknowledgement was not written.
            assert!(
                report.duplicates_untokened <= self.kills,
                "{} duplicate events/command responses for {} kills",
                report.duplicates_untokened,
                self.kills
            );
        }
        report
    }
}

#[derive(Debug, Default)]
struct Report {
    acked: u64,
    lost_unsynced: u64,
    duplicates_untokened: u64,
    duplicates_tokened: u64,
    duplicates_retokened: u64,
}

fn kills(default: u64) -> u64 {
    std::env::var("FLEETS_OUTBOX_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn crash_run(rounds: u64) {
    let start = Instant::now();
    let mut h = Harness::new("crash", 0x5EED_0001);
    for round in 0..rounds {
        let batch = round % 2 == 1;
        h.run_child(batch, false);
        h.reopen(false, batch);
    }
    let report = h.drain_and_check();
    println!(
        "crash: {} SIGKILLs (always and batch alternating), {} records acknowledged, none lost; \
         {} duplicate events/command responses, {} repeated reports (same client token); \
         {} torn bytes cut off; {:.1} s",
        h.kills,
        report.acked,
        report.duplicates_untokened,
        report.duplicates_tokened,
        h.torn_bytes,
        start.elapsed().as_secs_f64()
    );
}

fn power_cut_run(rounds: u64) {
    let start = Instant::now();
    let mut h = Harness::new("powercut", 0x5EED_0002);
    for round in 0..rounds {
        let batch = round % 2 == 1;
        let seen = h.run_child(batch, true);
        h.cut_power(&seen.synced);
        h.reopen(true, batch);
    }
    let report = h.drain_and_check();
    println!(
        "power cut: {} cuts (always and batch alternating), {} records acknowledged, {} lost \
         (batch, not yet synced; none with always); {} damaged stretches skipped, {} torn bytes \
         cut off; {} duplicate events/command responses, {} repeated reports with the same \
         token and {} under another (batch); {:.1} s",
        h.kills,
        report.acked,
        report.lost_unsynced,
        h.corrupt_records,
        h.torn_bytes,
        report.duplicates_untokened,
        report.duplicates_tokened,
        report.duplicates_retokened,
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn crash_kills_short() {
    crash_run(kills(60));
}

#[test]
fn power_cuts_short() {
    power_cut_run(kills(40));
}

#[test]
#[ignore = "long: 1,000 kills; run with --ignored --nocapture"]
fn crash_kills_full() {
    crash_run(kills(1000));
}

#[test]
#[ignore = "long: 1,000 power cuts; run with --ignored --nocapture"]
fn power_cuts_full() {
    power_cut_run(kills(1000));
}
