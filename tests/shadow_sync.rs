//! `Client::shadow_sync` against the emulator (real HTTPS on loopback), a property test of
//! random interleavings, and a scripted server that replays stale shadows.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{client, emulator, json, raw_server, THING};
use fleets::{Client, ErrorCode, SHADOW_SYNC_MAX_ROUNDS};
use serde_json::{json, Value};

#[test]
fn applies_the_delta_and_reports_it_with_the_version() {
    let emu = emulator();
    let client = client(&emu);
    emu.set_desired(
        THING,
        json!({"targetTemperature": 24, "led": {"color": "red"}}),
    )
    .unwrap();
    let version_before = emu.shadow(THING).unwrap()["version"].as_u64().unwrap();

    let mut applied = 0;
    let mut offered = Vec::new();
    let report = client
        .shadow_sync(THING, &mut applied, |key, value| {
            offered.push((key.to_owned(), json(value)));
            true
        })
        .unwrap();
    assert_eq!(
        offered,
        [
            ("led".to_owned(), json!({"color": "red"})),
            ("targetTemperature".to_owned(), json!(24))
        ]
    );
    let shadow = emu.shadow(THING).unwrap();
    assert_eq!(shadow["delta"], json!({}));
    assert_eq!(
        shadow["reported"],
        json!({"targetTemperature": 24, "led": {"color": "red"}})
    );
    assert_eq!(report.version, version_before + 1);
    assert_eq!(
        applied, version_before,
        "the version whose values were applied"
    );
    assert_eq!((report.accepted, report.declined, report.rounds), (2, 0, 1));

    // In sync: nothing offered, one read.
    let before = emu.stats().total;
    let report = client
        .shadow_sync(THING, &mut applied, |_, _| panic!("nothing to offer"))
        .unwrap();
    assert_eq!((report.rounds, report.accepted), (1, 0));
    assert_eq!(emu.stats().total - before, 1);
}

#[test]
fn a_declined_value_is_offered_again_by_the_next_sync() {
    let emu = emulator();
    let client = client(&emu);
    emu.set_desired(THING, json!({"mode": "eco", "fan": 2}))
        .unwrap();
    let mut applied = 0;
    let report = client
        .shadow_sync(THING, &mut applied, |key, _| key == "fan")
        .unwrap();
    assert_eq!((report.accepted, report.declined), (1, 1));
    assert_eq!(emu.shadow(THING).unwrap()["delta"], json!({"mode": "eco"}));

    // Declined again, with nothing else to do: no report, the same version next time.
    let mut offered = Vec::new();
    for _ in 0..2 {
        let report = client
            .shadow_sync(THING, &mut applied, |key, value| {
                offered.push(format!("{key}={value}"));
                false
            })
            .unwrap();
        assert!(!report.stale);
    }
    assert_eq!(offered, ["mode=\"eco\"", "mode=\"eco\""]);

    emu.set_desired(THING, json!({"fan": 3})).unwrap();
    offered.clear();
    client
        .shadow_sync(THING, &mut applied, |key, value| {
            offered.push(format!("{key}={value}"));
            true
        })
        .unwrap();
    assert_eq!(offered, ["fan=3", "mode=\"eco\""]);
    assert_eq!(emu.shadow(THING).unwrap()["delta"], json!({}));
}

#[test]
fn a_desired_change_during_the_sync_is_a_conflict_that_is_resolved() {
    let emu = emulator();
    let client = client(&emu);
    emu.set_desired(THING, json!({"targetTemperature": 20}))
        .unwrap();
    let mut applied = 0;
    let mut offered = Vec::new();
    let report = client
        .shadow_sync(THING, &mut applied, |key, value| {
            offered.push(format!("{key}={value}"));
            if offered.len() == 1 {
                // The operator changes the setpoint while the device applies the old one.
                emu.set_desired(THING, json!({"targetTemperature": 22}))
                    .unwrap();
            }
            true
        })
        .unwrap();
    assert_eq!(offered, ["targetTemperature=20", "targetTemperature=22"]);
    assert_eq!(report.rounds, 2);
    let shadow = emu.shadow(THING).unwrap();
    assert_eq!(shadow["reported"]["targetTemperature"], json!(22));
    assert_eq!(shadow["delta"], json!({}));
    assert_eq!(applied + 1, shadow["version"].as_u64().unwrap());
}

#[test]
fn a_desired_state_that_keeps_changing_ends_in_conflict_after_bounded_rounds() {
    let emu = emulator();
    let client = client(&emu);
    emu.set_desired(THING, json!({"n": 0})).unwrap();
    let mut applied = 0;
    let mut n = 0;
    let err = client
        .shadow_sync(THING, &mut applied, |_, _| {
            n += 1;
            emu.set_desired(THING, json!({ "n": n })).unwrap();
            true
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(n, SHADOW_SYNC_MAX_ROUNDS);
    assert_eq!(applied, 0, "a failed sync leaves the applied version");
}

#[test]
fn the_state_file_keeps_the_applied_version() {
    let emu = emulator();
    let client = client(&emu);
    let dir = std::env::temp_dir().join(format!("fleets-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("shadow.json");
    let _ = std::fs::remove_file(&state);
    emu.set_desired(THING, json!({"a": 1, "b": 2})).unwrap();
    let report = client
        .shadow_sync_with_state_file(THING, &state, |key, _| key == "a")
        .unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved, json!({"appliedVersion": report.applied_version}));
    // A restarted device gets "b" again, and a stale read is refused with the kept version.
    let mut offered = Vec::new();
    client
        .shadow_sync_with_state_file(THING, &state, |key, _| {
            offered.push(key.to_owned());
            true
        })
        .unwrap();
    assert_eq!(offered, ["b"]);
    let kept = report.applied_version + 1;
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved, json!({"appliedVersion": kept}));
    std::fs::write(&state, format!(r#"{{"appliedVersion":{}}}"#, kept + 100)).unwrap();
    emu.set_desired(THING, json!({"c": 3})).unwrap();
    let stale = client
        .shadow_sync_with_state_file(THING, &state, |key, _| panic!("{key}"))
        .unwrap();
    assert!(stale.stale);

    std::fs::write(&state, b"not json").unwrap();
    let err = client
        .shadow_sync_with_state_file(THING, &state, |_, _| true)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LocalFile);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Random interleavings of operator updates, device syncs (accepting or declining, with
/// operator updates racing inside the sync), other device reports and device restarts; the
/// device reads its shadow through a replica that answers one read in four with an older
/// shadow it saw before. Invariants: the applied version never goes back; a sync offers values only from a shadow
/// newer than the applied version (checked against the emulator's history); and once the
/// operator stops, one sync converges: reported equals desired and the delta is empty.
#[test]
fn random_interleavings_converge_without_applying_stale_versions() {
    let emu = emulator();
    let upstream = Arc::new(client(&emu));
    let replica = StaleReplica::start(upstream);
    let client = replica.client();
    let dir = std::env::temp_dir().join(format!("fleets-sync-prop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("shadow.json");
    let seeds: u64 = std::env::var("FLEETS_SYNC_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut syncs = 0;
    let mut conflicts_resolved = 0;
    for seed in 1..=seeds {
        emu.reset();
        emu.register_thing(THING);
        replica.forget();
        let _ = std::fs::remove_file(&state);
        let mut rng = Rng(seed * 7919);
        let mut device: BTreeMap<String, Value> = BTreeMap::new();
        let mut last_applied = 0u64;
        for _ in 0..60 {
            match rng.below(10) {
                0..=2 => emu.set_desired(THING, random_patch(&mut rng)).unwrap(),
                3 => {
                    // Another part of the device reports without a version check.
                    let patch = random_patch(&mut rng);
                    client
                        .shadow_report(THING, &patch.to_string(), Default::default())
                        .unwrap();
                }
                4 => device.clear(), // a reboot: the device forgets its runtime values
                _ => {
                    let applied_before = last_applied;
                    let accept_percent = rng.below(100);
                    let race = rng.below(4) == 0;
                    let mut offered = 0;
                    let mut offers = Vec::new();
                    let result = client.shadow_sync_with_state_file(THING, &state, |key, value| {
                        offered += 1;
                        offers.push((key.to_owned(), json(value)));
                        if race && offered == 1 {
                            emu.set_desired(THING, random_patch(&mut Rng(seed + offered)))
                                .unwrap();
                        }
                        if rng.below(100) < accept_percent {
                            device.insert(key.to_owned(), json(value));
                            true
                        } else {
                            false
                        }
                    });
                    let report = match result {
                        Ok(report) => report,
                        Err(e) if e.code() == ErrorCode::Conflict => continue,
                        Err(e) => panic!("seed {seed}: {e}"),
                    };
                    syncs += 1;
                    conflicts_resolved += u64::from(report.rounds > 1);
                    assert!(report.applied_version >= applied_before, "seed {seed}");
                    // Each offered value is the desired value of a version newer than the
                    // applied one (replayed from the emulator's history).
                    let states = desired_by_version(&emu);
                    for (key, value) in &offers {
                        let from_newer = states.iter().any(|(v, desired)| {
                            *v > applied_before
                                && desired.get(key).is_some_and(|d| leaves_of(value, d))
                        });
                        assert!(
                            from_newer,
                            "seed {seed}: {key}={value} is not from a newer version"
                        );
                    }
                    last_applied = report.applied_version;
                }
            }
        }
        // The operator stops, the replica catches up, the device accepts everything.
        replica.stale_percent.store(0, Ordering::SeqCst);
        client
            .shadow_sync_with_state_file(THING, &state, |key, value| {
                device.insert(key.to_owned(), json(value));
                true
            })
            .unwrap();
        let shadow = emu.shadow(THING).unwrap();
        assert_eq!(shadow["delta"], json!({}), "seed {seed}: {shadow}");
        for (key, value) in shadow["desired"].as_object().unwrap() {
            assert_eq!(&shadow["reported"][key], value, "seed {seed} {key}");
        }
        replica.stale_percent.store(25, Ordering::SeqCst);
    }
    let stale_served = replica.stale_served.load(Ordering::SeqCst);
    eprintln!("the replica served {stale_served} stale shadows");
    assert!(stale_served > 0);
    eprintln!("{seeds} seeds, {syncs} syncs, {conflicts_resolved} with a resolved conflict");
    assert!(conflicts_resolved > 0, "the races produced conflicts");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A TLS server in front of the emulator that forwards shadow reads and reports, and answers
/// `stale_percent` of the reads with an older shadow it served before (a replica that is
/// behind, a cache, a replayed response).
struct StaleReplica {
    server: raw_server::RawServer,
    ca: raw_server::Issued,
    seen: Arc<Mutex<Vec<String>>>,
    stale_percent: Arc<AtomicU64>,
    stale_served: Arc<AtomicU64>,
}

impl StaleReplica {
    fn start(upstream: Arc<Client>) -> StaleReplica {
        let ca = raw_server::ca("replica CA");
        let leaf = raw_server::server_cert(&ca);
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let stale_percent = Arc::new(AtomicU64::new(25));
        let stale_served = Arc::new(AtomicU64::new(0));
        let counter = AtomicU64::new(0);
        let (s, p, n) = (seen.clone(), stale_percent.clone(), stale_served.clone());
        let server = raw_server::RawServer::start(
            Some(raw_server::tls_config(&[&leaf], &leaf)),
            move |conn| {
                while let Some(request) = conn.read_request() {
                    let answer = if request.starts_with("GET ") {
                        let draw = counter
                            .fetch_add(1, Ordering::SeqCst)
                            .wrapping_mul(2654435761)
                            % 100;
                        let mut seen = s.lock().unwrap();
                        if draw < p.load(Ordering::SeqCst) && !seen.is_empty() {
                            n.fetch_add(1, Ordering::SeqCst);
                            let i = (draw as usize) % seen.len();
                            Ok(seen[i].clone())
                        } else {
                            let fresh = upstream.shadow_get(THING).map(|r| r.into_body());
                            if let Ok(body) = &fresh {
                                seen.push(body.clone());
                            }
                            fresh
                        }
                    } else {
                        let body: Value =
                            serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap())
                                .unwrap();
                        let options = fleets::ReportOptions {
                            client_token: None,
                            version: body["version"].as_u64().unwrap_or(0),
                        };
                        upstream
                            .shadow_report(THING, &body["state"]["reported"].to_string(), options)
                            .map(|r| r.into_body())
                    };
                    match answer {
                        Ok(body) => conn.respond(200, "", &body),
                        Err(e) => conn.respond(e.http_status(), "", e.body().unwrap_or("{}")),
                    }
                }
            },
        );
        StaleReplica {
            server,
            ca,
            seen,
            stale_percent,
            stale_served,
        }
    }

    fn client(&self) -> Client {
        let mut config = fleets::Config::new(&self.server.https_endpoint(), "k", "s").unwrap();
        config.set_ca_pem(&self.ca.cert_pem).unwrap();
        Client::new(&config).unwrap()
    }

    fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// Whether every leaf of `part` (a delta value: only the differing leaves of an object) has
/// the same value in `whole`.
fn leaves_of(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(part), Value::Object(whole)) => part
            .iter()
            .all(|(k, v)| whole.get(k).is_some_and(|w| leaves_of(v, w))),
        _ => part == whole,
    }
}

/// The desired document after each version, replayed from the shadow history (merge: objects
/// recursively, `null` deletes).
fn desired_by_version(
    emu: &fleets_emulator::Emulator,
) -> Vec<(u64, serde_json::Map<String, Value>)> {
    fn merge(into: &mut serde_json::Map<String, Value>, patch: &Value) {
        for (key, value) in patch.as_object().unwrap() {
            match value {
                Value::Null => {
                    into.remove(key);
                }
                Value::Object(_) => {
                    let slot = into
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Default::default()));
                    if !slot.is_object() {
                        *slot = Value::Object(Default::default());
                    }
                    merge(slot.as_object_mut().unwrap(), value);
                }
                other => {
                    into.insert(key.clone(), other.clone());
                }
            }
        }
    }
    let mut desired = serde_json::Map::new();
    let mut states = Vec::new();
    for entry in emu.shadow_history(THING) {
        if let Some(patch) = entry["state"].get("desired") {
            merge(&mut desired, patch);
        }
        states.push((entry["version"].as_u64().unwrap(), desired.clone()));
    }
    states
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn random_patch(rng: &mut Rng) -> Value {
    let mut patch = serde_json::Map::new();
    for _ in 0..=rng.below(2) {
        let key = format!("k{}", rng.below(5));
        let value = match rng.below(6) {
            0 => Value::Null,
            1 => json!({"on": rng.below(2) == 1, "level": rng.below(4)}),
            _ => json!(rng.below(5)),
        };
        patch.insert(key, value);
    }
    Value::Object(patch)
}

/// A server that answers shadow reads from a script, including stale versions (a replica
/// behind, a replayed response), and accepts reports: the device must ignore what is not
/// newer than what it applied.
#[test]
fn a_stale_shadow_is_never_applied() {
    let script: Arc<Mutex<Vec<(u64, &'static str)>>> = Arc::new(Mutex::new(vec![
        (5, r#"{"t":20}"#),
        (3, r#"{"t":18}"#), // older than what was applied
        (5, r#"{"t":20}"#), // the same version again (a replayed response)
        (9, r#"{"t":25}"#),
    ]));
    let reads = Arc::new(AtomicUsize::new(0));
    let reported_version = Arc::new(AtomicU64::new(0));
    let ca = raw_server::ca("stale CA");
    let leaf = raw_server::server_cert(&ca);
    let (s, r, v) = (script.clone(), reads.clone(), reported_version.clone());
    let server = raw_server::RawServer::start(
        Some(raw_server::tls_config(&[&leaf], &leaf)),
        move |conn| {
            while let Some(request) = conn.read_request() {
                if request.starts_with("GET ") {
                    let i = r.fetch_add(1, Ordering::SeqCst);
                    let (version, delta) = s.lock().unwrap()[i];
                    let body = format!(
                        r#"{{"reported":{{}},"desired":{delta},"delta":{delta},"version":{version},"updatedAt":"2026-05-27T10:05:00Z"}}"#
                    );
                    conn.respond(200, "", &body);
                } else {
                    let body = request.split("\r\n\r\n").nth(1).unwrap_or("");
                    let sent: Value = serde_json::from_str(body).unwrap();
                    let version = sent["version"].as_u64().unwrap();
                    v.store(version, Ordering::SeqCst);
                    conn.respond(200, "", &format!(r#"{{"version":{}}}"#, version + 1));
                }
            }
        },
    );
    let mut config = fleets::Config::new(&server.https_endpoint(), "k", "s").unwrap();
    config.set_ca_pem(&ca.cert_pem).unwrap();
    let client = Client::new(&config).unwrap();
    let mut applied = 0;
    let mut seen = Vec::new();
    for _ in 0..4 {
        client
            .shadow_sync(THING, &mut applied, |_, value| {
                seen.push(value.to_owned());
                true
            })
            .unwrap();
    }
    assert_eq!(
        seen,
        ["20", "25"],
        "versions 3 and 5 (again) were not applied"
    );
    assert_eq!(reported_version.load(Ordering::SeqCst), 9);
    assert_eq!(applied, 9);
}
