//! The durable outbox against the in-process emulator over HTTPS: ordered delivery,
//! coalescing of reports, outages, dead letters, the full and TTL policies, recovery of
//! damaged files, the directory lock, and several threads at once.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{client, emulator, json, THING};
use fleets::{
    Client, ErrorCode, Event, ExecutionStatus, FullPolicy, Outbox, OutboxOptions, ReportOptions,
    Severity, SyncPolicy,
};
use fleets_emulator::Emulator;
use serde_json::Value;

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "fleets-outbox-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> Outbox {
    Outbox::open(dir.path(), &OutboxOptions::default()).expect("outbox opens")
}

fn event(kind: &str, data: &str) -> Event<'static> {
    Event {
        event_type: Box::leak(kind.to_owned().into_boxed_str()),
        severity: Some(Severity::Info),
        timestamp_ms: 0,
        data_json: Some(Box::leak(data.to_owned().into_boxed_str())),
        app_id: None,
    }
}

fn event_seqs(emu: &Emulator, thing: &str) -> Vec<i64> {
    emu.events(thing)
        .iter()
        .map(|e| e["data"]["seq"].as_i64().expect("seq"))
        .collect()
}

/// A client for a port where nothing listens: every request fails with a connect error.
fn offline_client(emu: &Emulator) -> Client {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = fleets::Config::new(
        &format!("https://127.0.0.1:{port}"),
        emu.api_key(),
        emu.api_secret(),
    )
    .unwrap();
    config.set_ca_file(emu.ca_file().unwrap()).unwrap();
    config.set_timeouts(Duration::from_secs(2), Duration::from_secs(2));
    Client::new(&config).unwrap()
}

#[test]
fn every_kind_is_delivered_in_order() {
    let emu = emulator();
    let command = emu.create_command(THING, "reboot", json("{}"), 0);
    let job = emu.create_job(json(r#"{"op":"update"}"#), &[THING], None);
    let dir = TempDir::new("kinds");
    let outbox = open(&dir);
    for seq in 0..5 {
        outbox
            .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
            .unwrap();
    }
    outbox
        .enqueue_report(THING, r#"{"temperature":21.5}"#, ReportOptions::default())
        .unwrap();
    outbox
        .enqueue_command_response(
            THING,
            &command,
            ExecutionStatus::Succeeded,
            Some(r#"{"ok":true}"#),
            0,
        )
        .unwrap();
    outbox
        .enqueue_job_update(
            THING,
            &job,
            ExecutionStatus::Succeeded,
            Some(r#"{"progress":100}"#),
            0,
            Some("job-token-1"),
        )
        .unwrap();
    assert_eq!(outbox.stats().unwrap().queued_records, 8);
    assert!(
        emu.events(THING).is_empty(),
        "nothing is sent by an enqueue"
    );

    let flushed = outbox.flush(&client(&emu), Some(Duration::from_secs(30)));
    flushed.result.unwrap();
    assert_eq!(flushed.delivered, 8);
    assert_eq!(event_seqs(&emu, THING), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        emu.shadow(THING).unwrap()["reported"],
        json(r#"{"temperature":21.5}"#)
    );
    let history = emu.shadow_history(THING);
    let token = history[0]["clientToken"]
        .as_str()
        .expect("a generated token");
    assert!(token.starts_with("fleets-"), "{token}");
    assert_eq!(emu.command(THING, &command).unwrap()["status"], "SUCCEEDED");
    let execution = emu.job_execution(&job, THING).unwrap();
    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(execution["statusDetails"], json(r#"{"progress":100}"#));
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.queued_records, 0);
    assert_eq!(stats.delivered_records, 8);
    assert_eq!(stats.oldest_age, None);
    assert!(stats.last_error.is_none());
}

#[test]
fn reports_of_one_thing_are_coalesced_into_one_request() {
    let emu = emulator();
    emu.register_thing("other-thing");
    let dir = TempDir::new("coalesce");
    let outbox = open(&dir);
    outbox
        .enqueue_report(
            THING,
            r#"{"a":1,"gone":true,"nested":{"x":1,"y":1}}"#,
            ReportOptions {
                client_token: Some("first-token"),
                version: 0,
            },
        )
        .unwrap();
    for i in 0..200 {
        outbox
            .enqueue_report(
                THING,
                &format!(r#"{{"a":{i},"b{}":true}}"#, i % 3),
                ReportOptions::default(),
            )
            .unwrap();
        if i % 50 == 0 {
            outbox
                .enqueue_report(
                    "other-thing",
                    &format!(r#"{{"n":{i}}}"#),
                    ReportOptions::default(),
                )
                .unwrap();
            outbox
                .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{i}}}"#)))
                .unwrap();
        }
    }
    outbox
        .enqueue_report(
            THING,
            r#"{"gone":null,"nested":{"y":null,"z":2}}"#,
            ReportOptions::default(),
        )
        .unwrap();
    let before = emu.stats().total;
    let flushed = outbox.flush(&client(&emu), None);
    flushed.result.unwrap();
    assert_eq!(flushed.delivered, 1 + 200 + 4 + 4 + 1);
    // One report per thing plus the four events.
    assert_eq!(emu.stats().total - before, 1 + 1 + 4);
    let history = emu.shadow_history(THING);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["clientToken"], "first-token");
    assert_eq!(
        emu.shadow(THING).unwrap()["reported"],
        json(r#"{"a":199,"b0":true,"b1":true,"b2":true,"nested":{"x":1,"z":2}}"#)
    );
    assert_eq!(
        emu.shadow("other-thing").unwrap()["reported"],
        json(r#"{"n":150}"#)
    );
    assert_eq!(emu.shadow_history("other-thing").len(), 1);
}

#[test]
fn a_versioned_report_or_an_unmergeable_one_is_sent_on_its_own() {
    let emu = emulator();
    let dir = TempDir::new("versioned");
    let outbox = open(&dir);
    let report = |json: &str, version| {
        outbox
            .enqueue_report(
                THING,
                json,
                ReportOptions {
                    client_token: None,
                    version,
                },
            )
            .unwrap()
    };
    report(r#"{"a":1}"#, 0);
    report(r#"{"b":2}"#, 0);
    // Expects the version after the first report, which carries both of the above: coalescing
    // changes how often the shadow version moves.
    report(r#"{"c":3}"#, 1);
    report(r#"{"mode":"eco"}"#, 0);
    report(r#"{"mode":{"level":2}}"#, 0); // replaces a scalar by an object: not mergeable
    let flushed = outbox.flush(&client(&emu), None);
    flushed.result.unwrap();
    assert_eq!(flushed.delivered, 5);
    let history = emu.shadow_history(THING);
    let reported: Vec<&Value> = history.iter().map(|h| &h["state"]["reported"]).collect();
    assert_eq!(
        reported,
        [
            &json(r#"{"a":1,"b":2}"#),
            &json(r#"{"c":3}"#),
            &json(r#"{"mode":"eco"}"#),
            &json(r#"{"mode":{"level":2}}"#)
        ]
    );
    assert_eq!(
        emu.shadow(THING).unwrap()["reported"],
        json(r#"{"a":1,"b":2,"c":3,"mode":{"level":2}}"#)
    );
}

#[test]
fn an_outage_stops_the_flush_and_keeps_everything_in_order() {
    let emu = emulator();
    let dir = TempDir::new("outage");
    let outbox = open(&dir);
    let offline = offline_client(&emu);
    for seq in 0..20 {
        outbox
            .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
            .unwrap();
        if seq % 5 == 4 {
            let flushed = outbox.flush(&offline, Some(Duration::from_secs(5)));
            assert_eq!(flushed.delivered, 0);
            let error = flushed.result.unwrap_err();
            assert_eq!(error.code(), ErrorCode::Connect, "{error}");
        }
    }
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.queued_records, 20);
    assert_eq!(stats.last_error.unwrap().code(), ErrorCode::Connect);
    assert!(stats.oldest_age.is_some());
    // The network is back.
    let flushed = outbox.flush(&client(&emu), None);
    flushed.result.unwrap();
    assert_eq!(flushed.delivered, 20);
    assert_eq!(event_seqs(&emu, THING), (0..20).collect::<Vec<_>>());
}

#[test]
fn every_outage_mode_keeps_the_queue_until_the_server_is_back() {
    use fleets_emulator::OfflineMode;
    let emu = emulator();
    let mut config = common::config(&emu);
    config.set_timeouts(Duration::from_secs(1), Duration::from_secs(2));
    let client = Client::new(&config).unwrap();
    let dir = TempDir::new("outage-modes");
    let outbox = open(&dir);
    let mut seq = 0;
    for (mode, expected) in [
        (
            OfflineMode::Refuse,
            [ErrorCode::Connect, ErrorCode::Connect],
        ),
        (
            OfflineMode::Blackhole,
            [ErrorCode::Timeout, ErrorCode::Timeout],
        ),
        (OfflineMode::Reset, [ErrorCode::Io, ErrorCode::Connect]),
    ] {
        // A kept-alive connection from the last delivery is open when the outage starts.
        outbox
            .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
            .unwrap();
        seq += 1;
        outbox.flush(&client, None).result.unwrap();
        emu.set_offline(mode).unwrap();
        for _ in 0..3 {
            outbox
                .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
                .unwrap();
            seq += 1;
            let flushed = outbox.flush(&client, Some(Duration::from_millis(1500)));
            assert_eq!(flushed.delivered, 0, "{mode:?}");
            let code = flushed.result.unwrap_err().code();
            assert!(expected.contains(&code), "{mode:?}: {code}");
        }
        assert_eq!(outbox.stats().unwrap().queued_records, 3, "{mode:?}");
        emu.set_online().unwrap();
        let flushed = outbox.flush(&client, None);
        flushed.result.unwrap();
        assert_eq!(flushed.delivered, 3, "{mode:?}");
    }
    // Every event once, in order: nothing sent into an outage was handled.
    assert_eq!(event_seqs(&emu, THING), (0..seq).collect::<Vec<_>>());
}

#[test]
fn server_errors_stop_the_flush_and_rejections_are_dead_lettered() {
    let emu = emulator();
    let dir = TempDir::new("deadletter");
    let outbox = open(&dir);
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":0}"#))
        .unwrap();
    outbox
        .enqueue_event("unknown-thing", event("tick", r#"{"seq":1}"#))
        .unwrap();
    outbox
        .enqueue_job_update(THING, "no-such-job", ExecutionStatus::Failed, None, 0, None)
        .unwrap();
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":3}"#))
        .unwrap();
    // A 503 on the first request stops the flush before anything is acknowledged.
    emu.add_fault(fleets_emulator::FaultRule::status(
        "/api/v1/thing-datas/events",
        503,
    ));
    let flushed = outbox.flush(&client(&emu), None);
    assert_eq!(flushed.delivered, 0);
    assert_eq!(flushed.result.unwrap_err().code(), ErrorCode::Server);
    assert_eq!(outbox.stats().unwrap().queued_records, 4);
    // Then: the 404s are dead-lettered and the flush goes on.
    let flushed = outbox.flush(&client(&emu), None);
    flushed.result.unwrap();
    assert_eq!(flushed.delivered, 2);
    assert_eq!(event_seqs(&emu, THING), vec![0, 3]);
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.queued_records, 0);
    assert_eq!(stats.dead_lettered_records, 2);
    assert_eq!(stats.delivered_records, 2);
    let last = stats.last_error.unwrap();
    assert_eq!(last.code(), ErrorCode::NotFound);
    assert_eq!(last.http_status(), 404);
    assert!(
        last.message().contains("dead-lettered"),
        "{}",
        last.message()
    );
}

#[test]
fn bad_credentials_stop_the_flush_instead_of_dead_lettering() {
    let emu = emulator();
    let dir = TempDir::new("auth");
    let outbox = open(&dir);
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":0}"#))
        .unwrap();
    let mut config = fleets::Config::new(emu.endpoint(), emu.api_key(), "wrong-secret").unwrap();
    config.set_ca_file(emu.ca_file().unwrap()).unwrap();
    let wrong = Client::new(&config).unwrap();
    let flushed = outbox.flush(&wrong, None);
    assert_eq!(flushed.result.unwrap_err().code(), ErrorCode::Unauthorized);
    assert_eq!(outbox.stats().unwrap().queued_records, 1);
    assert_eq!(outbox.stats().unwrap().dead_lettered_records, 0);
}

#[test]
fn arguments_are_checked_before_anything_is_stored() {
    let dir = TempDir::new("args");
    let outbox = open(&dir);
    let code = |r: fleets::Result<()>| r.unwrap_err().code();
    assert_eq!(
        code(outbox.enqueue_report("bad thing", "{}", ReportOptions::default())),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(outbox.enqueue_report(THING, "[1]", ReportOptions::default())),
        ErrorCode::InvalidJson
    );
    assert_eq!(
        code(outbox.enqueue_report(
            THING,
            "{}",
            ReportOptions {
                client_token: Some("tab\there"),
                version: 0
            }
        )),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(outbox.enqueue_event(THING, event("", "{}"))),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(outbox.enqueue_event(THING, event("x", "not json"))),
        ErrorCode::InvalidJson
    );
    assert_eq!(
        code(outbox.enqueue_command_response(THING, "a/b", ExecutionStatus::Failed, None, 0)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(outbox.enqueue_command_response(THING, "id", ExecutionStatus::Failed, None, -1)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(outbox.enqueue_job_update(THING, "..", ExecutionStatus::Failed, None, 0, None)),
        ErrorCode::InvalidArgument
    );
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.queued_records, 0);
    assert_eq!(
        stats.syncs, 2,
        "only the first segment's creation was synced (file, directory)"
    );
}

#[test]
fn a_second_opener_gets_a_clear_error_until_the_first_closes() {
    let dir = TempDir::new("lock");
    let first = open(&dir);
    let err = Outbox::open(dir.path(), &OutboxOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutboxLocked);
    assert!(
        err.message().contains("open in another outbox handle"),
        "{err}"
    );
    assert!(
        err.message()
            .contains(&format!("process {}", std::process::id())),
        "{err}"
    );
    first.close().unwrap();
    open(&dir);
}

#[test]
fn records_survive_a_reopen() {
    let emu = emulator();
    let dir = TempDir::new("reopen");
    {
        let outbox = open(&dir);
        for seq in 0..10 {
            outbox
                .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
                .unwrap();
        }
        let flushed = outbox.flush(&client(&emu), Some(Duration::ZERO));
        assert_eq!(flushed.delivered, 0, "no time to send anything");
    }
    let outbox = open(&dir);
    assert_eq!(outbox.stats().unwrap().queued_records, 10);
    outbox.flush(&client(&emu), None).result.unwrap();
    drop(outbox);
    let outbox = open(&dir);
    assert_eq!(outbox.stats().unwrap().queued_records, 0);
    assert_eq!(event_seqs(&emu, THING), (0..10).collect::<Vec<_>>());
}

fn segments(dir: &TempDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_torn_tail_is_cut_off_and_a_damaged_record_skipped() {
    let emu = emulator();
    let dir = TempDir::new("damage");
    {
        let outbox = open(&dir);
        for seq in 0..10 {
            outbox
                .enqueue_event(
                    THING,
                    event(
                        "tick",
                        &format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "x".repeat(40)),
                    ),
                )
                .unwrap();
        }
    }
    let segment = segments(&dir).pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let len = bytes.len();
    // Damage one byte inside the fifth record's body, then add half a frame at the end.
    let fifth = find(&bytes, br#""seq":4"#);
    bytes[fifth] ^= 0x20;
    let half_frame = bytes[len - 60..len - 20].to_vec();
    bytes.extend_from_slice(&half_frame);
    fs::write(&segment, &bytes).unwrap();

    let outbox = open(&dir);
    let stats = outbox.stats().unwrap();
    assert_eq!(stats.queued_records, 9);
    assert_eq!(stats.corrupt_records, 1);
    assert_eq!(stats.torn_bytes, 40);
    assert_eq!(fs::metadata(&segment).unwrap().len(), len as u64);
    // Appending goes on after the last good record.
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":10}"#))
        .unwrap();
    outbox.flush(&client(&emu), None).result.unwrap();
    assert_eq!(event_seqs(&emu, THING), vec![0, 1, 2, 3, 5, 6, 7, 8, 9, 10]);
    drop(outbox);
    // Nothing is damaged any more: the old segment went once all its records were delivered.
    let outbox = open(&dir);
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.queued_records, stats.corrupt_records), (0, 1));
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn files_of_a_newer_format_are_refused_and_left_alone() {
    let dir = TempDir::new("format");
    drop(open(&dir));
    let segment = segments(&dir).pop().unwrap();
    // A header frame saying format 2 (tag 1, format 2, segment 1) with a valid CRC.
    let payload = [1u8, 2, 1];
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = !0u32;
    for b in len.iter().chain(payload.iter()) {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    let mut frame = vec![0xF1, 0xEE, 0x75, 0xB0];
    frame.extend_from_slice(&len);
    frame.extend_from_slice(&(!crc).to_le_bytes());
    frame.extend_from_slice(&payload);
    fs::write(&segment, &frame).unwrap();
    let err = Outbox::open(dir.path(), &OutboxOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutboxCorrupt, "{err}");
    assert_eq!(fs::read(&segment).unwrap(), frame);
}

#[test]
fn when_full_the_oldest_events_go_first_and_other_records_stay() {
    let emu = emulator();
    let job = emu.create_job(json("{}"), &[THING], None);
    let dir = TempDir::new("full");
    let options = OutboxOptions {
        max_bytes: 64 * 1024,
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(dir.path(), &options).unwrap();
    outbox
        .enqueue_job_update(THING, &job, ExecutionStatus::InProgress, None, 0, None)
        .unwrap();
    let pad = "p".repeat(200);
    for seq in 0..1000 {
        outbox
            .enqueue_event(
                THING,
                event("tick", &format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#)),
            )
            .unwrap();
    }
    let stats = outbox.stats().unwrap();
    assert!(stats.queued_bytes <= 64 * 1024, "{stats:?}");
    assert!(stats.dropped_records > 700, "{stats:?}");
    assert_eq!(stats.queued_records + stats.dropped_records, 1001);
    assert!(stats.disk_bytes <= 64 * 1024 + 2 * 16 * 1024, "{stats:?}");
    outbox.flush(&client(&emu), None).result.unwrap();
    assert_eq!(
        emu.job_execution(&job, THING).unwrap()["status"],
        "IN_PROGRESS"
    );
    let seqs = event_seqs(&emu, THING);
    assert_eq!(*seqs.last().unwrap(), 999, "the newest are kept");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a contiguous tail"
    );
    assert_eq!(seqs.len() as u64, stats.queued_records - 1);

    // Refuse: nothing is dropped, the new record is refused.
    let dir = TempDir::new("refuse");
    let options = OutboxOptions {
        max_bytes: 64 * 1024,
        when_full: FullPolicy::Refuse,
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(dir.path(), &options).unwrap();
    let mut refused = None;
    for seq in 0..1000 {
        if let Err(e) = outbox.enqueue_event(
            THING,
            event("tick", &format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#)),
        ) {
            refused = Some((seq, e));
            break;
        }
    }
    let (seq, error) = refused.expect("the outbox fills up");
    assert_eq!(error.code(), ErrorCode::OutboxFull);
    assert!(error.message().contains("outbox full"), "{error}");
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.queued_records, stats.dropped_records), (seq, 0));
}

#[test]
fn records_older_than_the_ttl_are_dropped() {
    let emu = emulator();
    let dir = TempDir::new("ttl");
    let options = OutboxOptions {
        ttl: Some(Duration::from_millis(300)),
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(dir.path(), &options).unwrap();
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":0}"#))
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    outbox
        .enqueue_event(THING, event("tick", r#"{"seq":1}"#))
        .unwrap();
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.queued_records, stats.dropped_records), (1, 1));
    outbox.flush(&client(&emu), None).result.unwrap();
    assert_eq!(event_seqs(&emu, THING), vec![1]);
}

#[test]
fn batch_policy_syncs_per_batch_and_within_the_delay() {
    let dir = TempDir::new("batch");
    let options = OutboxOptions {
        sync: SyncPolicy::Batch {
            max_delay: Duration::from_millis(200),
            max_records: 50,
        },
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(dir.path(), &options).unwrap();
    let start = outbox.stats().unwrap().syncs;
    for seq in 0..120 {
        outbox
            .enqueue_event(THING, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
            .unwrap();
    }
    assert_eq!(outbox.stats().unwrap().syncs - start, 2, "at 50 and 100");
    let unsynced = |o: &Outbox| {
        o.synced_lengths_for_tests()
            .iter()
            .map(|(path, synced)| fs::metadata(path).unwrap().len() - synced)
            .sum::<u64>()
    };
    assert!(unsynced(&outbox) > 0);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(unsynced(&outbox), 0, "the syncer ran within the delay");
    assert_eq!(outbox.stats().unwrap().syncs - start, 3);
}

#[test]
fn enqueues_from_many_threads_while_flushing() {
    let emu = emulator();
    let dir = TempDir::new("threads");
    let outbox = open(&dir);
    let client = client(&emu);
    let things: Vec<String> = (0..4).map(|t| format!("thread-thing-{t}")).collect();
    for thing in &things {
        emu.register_thing(thing);
    }
    std::thread::scope(|s| {
        for thing in &things {
            let outbox = &outbox;
            s.spawn(move || {
                for seq in 0..50 {
                    outbox
                        .enqueue_event(thing, event("tick", &format!(r#"{{"seq":{seq}}}"#)))
                        .unwrap();
                }
            });
        }
        let outbox = &outbox;
        let client = &client;
        s.spawn(move || {
            for _ in 0..20 {
                outbox.flush(client, None).result.unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    });
    outbox.flush(&client, None).result.unwrap();
    for thing in &things {
        assert_eq!(
            event_seqs(&emu, thing),
            (0..50).collect::<Vec<_>>(),
            "{thing}"
        );
    }
    assert_eq!(outbox.stats().unwrap().delivered_records, 200);
}

#[test]
fn old_segments_are_deleted_once_delivered() {
    let emu = emulator();
    let dir = TempDir::new("segments");
    let options = OutboxOptions {
        max_bytes: 128 * 1024, // 16 KiB segments
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open(dir.path(), &options).unwrap();
    let pad = "p".repeat(500);
    for seq in 0..150 {
        outbox
            .enqueue_event(
                THING,
                event("tick", &format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#)),
            )
            .unwrap();
    }
    assert!(segments(&dir).len() >= 4, "{:?}", segments(&dir));
    outbox.flush(&client(&emu), None).result.unwrap();
    assert_eq!(segments(&dir).len(), 1);
    assert_eq!(event_seqs(&emu, THING).len(), 150);
}
