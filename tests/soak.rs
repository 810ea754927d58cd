//! Soak: one client shared by 8 threads makes 50,000 calls (shadow report and read, event,
//! pending jobs) against the in-process emulator while about 5% of the requests are faulted
//! (HTTP 503/500/429, connection reset, truncated body, non-HTTP bytes, delay). Every call
//! must return `Ok` or one of the error codes a transport or server failure is documented to
//! give, no thread may panic, and the resident set size must stay flat after warm-up.
//!
//! Not a unit test (it takes a few tens of seconds even in release mode):
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use fleets::{Client, Config, ErrorCode, Event, ReportOptions, Severity};
use fleets_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule};

const THREADS: u64 = 8;
const TOTAL_CALLS: u64 = 50_000;
/// RSS is taken as the baseline once this many calls are done. By then the emulator's
/// per-thing logs (shadow history and events, the last 1000 each) are full for both things
/// (10,000 calls / 2 things / 4 operations = 1,250 reports and 1,250 events per thing), so
/// what it keeps no longer grows.
const WARM_UP_CALLS: u64 = 10_000;
/// One injected fault per this many calls, i.e. 5%.
const FAULT_EVERY: u64 = 20;
/// Allowed RSS growth from the end of warm-up to the end of the run.
const MAX_RSS_GROWTH_KIB: u64 = 8 * 1024;
const THINGS: [&str; 2] = ["soak-thing-0", "soak-thing-1"];

/// What a faulted or failed exchange may legitimately give (the documented transport and
/// server failure codes). Anything else, e.g. 400/404 or `Internal`, is a bug.
const EXPECTED_ERRORS: [ErrorCode; 6] = [
    ErrorCode::Server,      // 500, 503 (after the retries)
    ErrorCode::RateLimited, // 429 (after the retries)
    ErrorCode::Io,          // reset, truncated body, non-HTTP bytes
    ErrorCode::Connect,     // a reconnect refused or reset
    ErrorCode::Timeout,     // a delay on a loaded machine
    ErrorCode::BadResponse, // a 2xx body cut short or not JSON
];

/// The faults, used in turn.
fn fault(n: u64) -> FaultRule {
    match n % 8 {
        0 => FaultRule::status("", 503),
        1 => FaultRule::status("", 500),
        2 => FaultRule::status("", 429),
        3 => FaultRule::new(FaultKind::Reset, ""),
        4 => FaultRule::new(FaultKind::Truncate, ""),
        5 => FaultRule {
            body: Some(serde_json::Value::String("NOT HTTP AT ALL\r\n\r\n".into())),
            ..FaultRule::new(FaultKind::Garbage, "")
        },
        6 => FaultRule::new(FaultKind::Delay, "").delay_ms(20),
        _ => FaultRule::status("", 503),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn client(emu: &Emulator) -> Client {
    let mut config = Config::new(emu.endpoint(), emu.api_key(), emu.api_secret()).unwrap();
    config.set_ca_file(emu.ca_file().unwrap()).unwrap();
    config.set_timeouts(Duration::from_secs(5), Duration::from_secs(15));
    // Retries stay on (they are part of what is soaked), with short backoffs so that the run
    // measures the client rather than sleeps.
    config
        .set_retry(3, Duration::from_millis(2), Duration::from_millis(20))
        .unwrap();
    Client::new(&config).unwrap()
}

/// One call; `i` picks the operation.
fn call(client: &Client, thing: &str, i: u64) -> fleets::Result<fleets::Response> {
    match i % 4 {
        0 => {
            let reported = format!(r#"{{"temperature":{},"seq":{i}}}"#, 20 + i % 10);
            client.shadow_report(thing, &reported, ReportOptions::default())
        }
        1 => client.shadow_get(thing),
        2 => client.event_publish(
            thing,
            Event {
                event_type: "soak",
                severity: Some(Severity::Info),
                data_json: Some(r#"{"source":"soak"}"#),
                ..Event::default()
            },
        ),
        _ => client.jobs_get_pending(thing, None),
    }
}

#[test]
#[ignore = "soak: run with cargo test --release --test soak -- --ignored --nocapture"]
fn soak_one_client_eight_threads_with_faults() {
    let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
    for thing in THINGS {
        emu.register_thing(thing);
    }
    emu.create_job(serde_json::json!({"firmware": "2.0.0"}), &THINGS, None);
    let client = client(&emu);

    let done = AtomicU64::new(0);
    let outcomes: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    let unexpected: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut injected = 0u64;
    let started = Instant::now();

    let (rss_warm, rss_end, elapsed) = thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..THREADS {
            let (client, done, outcomes, unexpected) = (&client, &done, &outcomes, &unexpected);
            workers.push(s.spawn(move || {
                let thing = THINGS[(t as usize) % THINGS.len()];
                let mut local: BTreeMap<String, u64> = BTreeMap::new();
                for n in 0..TOTAL_CALLS / THREADS {
                    let i = n * THREADS + t;
                    let key = match call(client, thing, i) {
                        Ok(r) => {
                            if !(200..300).contains(&r.status()) || r.body().is_empty() {
                                unexpected
                                    .lock()
                                    .unwrap()
                                    .push(format!("call {i}: Ok with status {}", r.status()));
                            }
                            "Ok".to_owned()
                        }
                        Err(e) => {
                            if !EXPECTED_ERRORS.contains(&e.code()) {
                                unexpected.lock().unwrap().push(format!("call {i}: {e}"));
                            }
                            e.code().name().to_owned()
                        }
                    };
                    *local.entry(key).or_default() += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                let mut all = outcomes.lock().unwrap();
                for (k, v) in local {
                    *all.entry(k).or_default() += v;
                }
            }));
        }

        // Faults spread over the run: one rule (used by one request) per FAULT_EVERY calls
        // done; the RSS baseline once warm-up is over.
        let mut rss_warm = None;
        while !workers.iter().all(|w| w.is_finished()) {
            let n = done.load(Ordering::Relaxed);
            while injected < n / FAULT_EVERY {
                emu.add_fault(fault(injected));
                injected += 1;
            }
            if rss_warm.is_none() && n >= WARM_UP_CALLS {
                let rss = rss_kib();
                println!(
                    "soak: RSS after warm-up ({n} calls, {:.1} s): {rss} KiB",
                    started.elapsed().as_secs_f64()
                );
                rss_warm = Some(rss);
            }
            thread::sleep(Duration::from_millis(1));
        }
        let mut panics = 0;
        for w in workers {
            if w.join().is_err() {
                panics += 1;
            }
        }
        assert_eq!(panics, 0, "worker threads panicked");
        (rss_warm, rss_kib(), started.elapsed())
    });
    emu.clear_faults();

    let outcomes = outcomes.into_inner().unwrap();
    let unexpected = unexpected.into_inner().unwrap();
    let total: u64 = outcomes.values().sum();
    let requests = emu.stats().total;
    let rss_warm = rss_warm.expect("warm-up RSS taken");
    println!(
        "soak: {total} calls by {THREADS} threads in {:.1} s ({:.0} calls/s); {requests} requests \
         (with retries), {injected} faults injected ({:.1}% of requests)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        injected as f64 * 100.0 / requests as f64
    );
    println!("soak: outcomes {outcomes:?}");
    println!(
        "soak: RSS at the end: {rss_end} KiB ({:+} KiB since warm-up)",
        rss_end as i64 - rss_warm as i64
    );

    assert_eq!(total, TOTAL_CALLS);
    assert!(
        unexpected.is_empty(),
        "{} unexpected outcomes, first ones: {:#?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(20)]
    );
    assert!(
        injected >= TOTAL_CALLS / FAULT_EVERY * 9 / 10,
        "only {injected} faults injected"
    );
    assert!(
        outcomes.get("Ok").copied().unwrap_or(0) >= TOTAL_CALLS * 9 / 10,
        "too few calls succeeded: {outcomes:?}"
    );
    assert!(
        rss_end < rss_warm + MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_warm} KiB to {rss_end} KiB after warm-up"
    );

    // The client still works once the faults are gone.
    for thing in THINGS {
        client.shadow_get(thing).expect("shadow after the soak");
    }
}
