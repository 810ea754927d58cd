//! The eight ThingDatas endpoints over real HTTPS on loopback, with their error paths.

mod common;

use common::{basic, Client};
use fleets_emulator::{EmulatorOptions, Stats};
use serde_json::{json, Value};

const T: &str = "thermostat-001";

fn setup() -> (fleets_emulator::Emulator, Client) {
    let emu = common::start();
    emu.register_thing(T);
    let c = Client::new(&emu);
    (emu, c)
}

#[test]
fn seed_report_and_shadow_examples() {
    let (emu, c) = setup();
    // Exactly the seed document's body.
    let r = c
        .post_raw(
            "/api/v1/thing-datas/shadow/reported",
            r#"{
    "thingName": "thermostat-001",
    "state": {
      "reported": {
        "temperature": 21.5,
        "humidity": 58
      }
    },
    "clientToken": "tok-001",
    "version": 0
  }"#,
        )
        .ok();
    assert_eq!(
        r["state"],
        json!({"reported": {"temperature": 21.5, "humidity": 58}})
    );
    assert_eq!(r["version"], json!(1));
    assert_eq!(r["clientToken"], json!("tok-001"));
    assert!(r["timestamp"].as_u64().unwrap() > 1_700_000_000);

    emu.set_desired(T, json!({"targetTemperature": 24}))
        .unwrap();
    let s = c.shadow(T);
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["delta", "desired", "reported", "updatedAt", "version"]
    );
    assert_eq!(s["reported"], json!({"temperature": 21.5, "humidity": 58}));
    assert_eq!(s["desired"], json!({"targetTemperature": 24}));
    assert_eq!(s["delta"], json!({"targetTemperature": 24}));
    assert_eq!(s["version"], json!(2));
    let at = s["updatedAt"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && &at[10..11] == "T",
        "{at}"
    );
    assert_eq!(
        emu.shadow(T).unwrap(),
        s,
        "in-process view equals the HTTP view"
    );
}

#[test]
fn report_versions_merge_and_conflict() {
    let (emu, c) = setup();
    let rep = |reported: Value, version: Option<u64>| {
        let mut b = json!({"thingName": T, "state": {"reported": reported}});
        if let Some(v) = version {
            b["version"] = json!(v);
        }
        c.post("/api/v1/thing-datas/shadow/reported", &b)
    };
    assert_eq!(
        rep(json!({"a": 1, "n": {"x": 1, "y": 2}}), None).ok()["version"],
        json!(1)
    );
    let r = rep(json!({"a": null, "n": {"x": null}}), Some(1)).ok();
    assert_eq!(r["version"], json!(2));
    assert!(r.get("clientToken").is_none());
    assert_eq!(c.shadow(T)["reported"], json!({"n": {"y": 2}}));
    // stale version -> 409 VersionConflict, nothing changes
    let e = rep(json!({"z": 1}), Some(1)).err(409, "VersionConflict");
    assert_eq!(e["version"], json!(2));
    let mut b = json!({"thingName": T, "state": {"reported": {"z": 1}}, "version": 7, "clientToken": "c-9"});
    let e = c
        .post("/api/v1/thing-datas/shadow/reported", &b)
        .err(409, "VersionConflict");
    assert_eq!(
        e["clientToken"],
        json!("c-9"),
        "errors echo the clientToken"
    );
    b["version"] = json!(2);
    assert_eq!(
        c.post("/api/v1/thing-datas/shadow/reported", &b).ok()["version"],
        json!(3)
    );
    assert_eq!(emu.shadow_history(T).len(), 3);
}

#[test]
fn delta_rules_over_http() {
    let (emu, c) = setup();
    emu.set_desired(
        T,
        json!({"cfg": {"mode": "eco", "limits": {"lo": 18, "hi": 26}}, "fans": [1, 2], "t": 24}),
    )
    .unwrap();
    c.post(
        "/api/v1/thing-datas/shadow/reported",
        &json!({"thingName": T, "state": {"reported": {"cfg": {"mode": "eco", "limits": {"lo": 18, "hi": 25}}, "fans": [1], "t": 24.0, "extra": true}}}),
    )
    .ok();
    assert_eq!(
        c.shadow(T)["delta"],
        json!({"cfg": {"limits": {"hi": 26}}, "fans": [1, 2]})
    );
    c.post(
        "/api/v1/thing-datas/shadow/reported",
        &json!({"thingName": T, "state": {"reported": {"cfg": {"limits": {"hi": 26}}, "fans": [1, 2]}}}),
    )
    .ok();
    assert_eq!(c.shadow(T)["delta"], json!({}), "in sync -> empty object");
    // null deletes a desired key (admin HTTP API)
    c.admin(
        "PUT",
        &format!("/admin/v1/things/{T}/shadow/desired"),
        Some(&json!({"t": 30, "cfg": null})),
    )
    .ok();
    let s = c.shadow(T);
    assert_eq!(s["desired"], json!({"fans": [1, 2], "t": 30}));
    assert_eq!(s["delta"], json!({"t": 30}));
    // a reported null deletes the key, which brings it back into the delta
    c.post(
        "/api/v1/thing-datas/shadow/reported",
        &json!({"thingName": T, "state": {"reported": {"fans": null}}}),
    )
    .ok();
    assert_eq!(c.shadow(T)["delta"], json!({"fans": [1, 2], "t": 30}));
}

#[test]
fn report_and_shadow_errors() {
    let (_emu, c) = setup();
    let p = "/api/v1/thing-datas/shadow/reported";
    c.post(p, &json!({"state": {"reported": {}}}))
        .err(400, "InvalidRequest");
    c.post(p, &json!({"thingName": T}))
        .err(400, "InvalidRequest");
    c.post(p, &json!({"thingName": T, "state": {"reported": []}}))
        .err(400, "InvalidRequest");
    c.post(
        p,
        &json!({"thingName": T, "state": {"reported": {}}, "clientToken": "x".repeat(65)}),
    )
    .err(400, "InvalidRequest");
    c.post(
        p,
        &json!({"thingName": T, "state": {"reported": {}}, "version": -3}),
    )
    .err(400, "InvalidRequest");
    c.post(p, &json!([1, 2])).err(400, "InvalidRequest");
    c.post_raw(p, "{\"thingName\": ").err(400, "InvalidJson");
    c.post_raw(p, "").err(400, "InvalidJson");
    c.post_raw(p, "\u{0}\u{1}garbage").err(400, "InvalidJson");
    c.post(
        p,
        &json!({"thingName": "unknown-thing", "state": {"reported": {}}}),
    )
    .err(404, "ResourceNotFound");
    c.get("/api/v1/thing-datas/unknown-thing/shadow")
        .err(404, "ResourceNotFound");
    c.get("/api/v1/thing-datas/bad%20name/shadow")
        .err(400, "InvalidRequest");
}

#[test]
fn events_seed_example_and_errors() {
    let (emu, c) = setup();
    let r = c
        .post_raw(
            "/api/v1/thing-datas/events",
            r#"{
    "thingName": "thermostat-001",
    "eventType": "highTemperature",
    "severity": "warn",
    "timestamp": 1748390400000,
    "data": { "currentTemp": 45.2 }
  }"#,
        )
        .ok();
    assert!(r["eventId"].is_string());
    let ev = emu.events(T);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["eventType"], json!("highTemperature"));
    assert_eq!(ev[0]["timestamp"], json!(1748390400000u64));
    assert_eq!(ev[0]["data"], json!({"currentTemp": 45.2}));
    c.post(
        "/api/v1/thing-datas/events",
        &json!({"thingName": T, "eventType": "boot", "timestamp": 1, "appId": "app-7"}),
    )
    .ok();
    let listed = c
        .admin("GET", &format!("/admin/v1/things/{T}/events"), None)
        .ok();
    assert_eq!(listed["events"].as_array().unwrap().len(), 2);
    assert_eq!(listed["events"][1]["appId"], json!("app-7"));

    let p = "/api/v1/thing-datas/events";
    for bad in [
        json!({"thingName": T, "eventType": "x"}),
        json!({"thingName": T, "timestamp": 1}),
        json!({"eventType": "x", "timestamp": 1}),
        json!({"thingName": T, "eventType": "x", "timestamp": 1.5}),
        json!({"thingName": T, "eventType": "x", "timestamp": "1748390400000"}),
        json!({"thingName": T, "eventType": "x", "timestamp": 1, "severity": "critical"}),
        json!({"thingName": T, "eventType": "x", "timestamp": 1, "data": "text"}),
        json!({"thingName": T, "eventType": "x", "timestamp": 1, "appId": 3}),
    ] {
        c.post(p, &bad).err(400, "InvalidRequest");
    }
    c.post(
        p,
        &json!({"thingName": "ghost", "eventType": "x", "timestamp": 1}),
    )
    .err(404, "ResourceNotFound");
    assert_eq!(emu.events(T).len(), 2, "rejected events are not stored");
}

#[test]
fn command_response_seed_example_and_errors() {
    let (emu, c) = setup();
    // the seed's fixed execution id, created through the admin HTTP API
    let created = c
        .admin(
            "POST",
            &format!("/admin/v1/things/{T}/commands"),
            Some(&json!({"action": "setTemperature", "params": {"target": 24}, "ttl": 60, "executionId": "8d88790c-9171-4526-8637-e6d6168bce22"})),
        )
        .ok();
    assert_eq!(
        created["executionId"],
        json!("8d88790c-9171-4526-8637-e6d6168bce22")
    );
    let seed = r#"{
    "thingName": "thermostat-001",
    "executionId": "8d88790c-9171-4526-8637-e6d6168bce22",
    "status": "SUCCEEDED",
    "result": { "currentTemperature": 24 },
    "timestamp": 1748390405
  }"#;
    let r = c
        .post_raw("/api/v1/thing-datas/command/response", seed)
        .ok();
    assert_eq!(r["status"], json!("SUCCEEDED"));
    let cmd = emu
        .command(T, "8d88790c-9171-4526-8637-e6d6168bce22")
        .unwrap();
    assert_eq!(cmd["status"], json!("SUCCEEDED"));
    assert_eq!(cmd["result"], json!({"currentTemperature": 24}));
    assert_eq!(cmd["timestamp"], json!(1748390405));
    assert_eq!(cmd["action"], json!("setTemperature"));
    assert_eq!(cmd["params"], json!({"target": 24}));
    let via_http = c
        .admin(
            "GET",
            &format!("/admin/v1/things/{T}/commands/8d88790c-9171-4526-8637-e6d6168bce22"),
            None,
        )
        .ok();
    assert_eq!(via_http, cmd);
    // answered already -> 409
    c.post_raw("/api/v1/thing-datas/command/response", seed)
        .err(409, "InvalidStateTransition");

    let p = "/api/v1/thing-datas/command/response";
    c.post(
        p,
        &json!({"thingName": T, "executionId": "does-not-exist", "status": "SUCCEEDED"}),
    )
    .err(404, "ResourceNotFound");
    let id = emu.create_command(T, "reboot", json!({}), 30);
    for bad in [
        json!({"thingName": T, "executionId": id, "status": "DONE"}),
        json!({"thingName": T, "executionId": id}),
        json!({"thingName": T, "executionId": id, "status": "SUCCEEDED", "result": [1]}),
        json!({"thingName": T, "executionId": id, "status": "SUCCEEDED", "timestamp": "now"}),
        json!({"thingName": T, "status": "SUCCEEDED"}),
    ] {
        c.post(p, &bad).err(400, "InvalidRequest");
    }
    // a command of another thing is not found for this one
    emu.register_thing("other");
    c.post(
        p,
        &json!({"thingName": "other", "executionId": id, "status": "SUCCEEDED"}),
    )
    .err(404, "ResourceNotFound");
    // IN_PROGRESS keeps it pending; ttl expiry (virtual clock) -> 409
    c.post(
        p,
        &json!({"thingName": T, "executionId": id, "status": "IN_PROGRESS"}),
    )
    .ok();
    emu.advance_clock(31);
    assert_eq!(emu.command(T, &id).unwrap()["status"], json!("TIMED_OUT"));
    c.post(
        p,
        &json!({"thingName": T, "executionId": id, "status": "SUCCEEDED"}),
    )
    .err(409, "InvalidStateTransition");
}

#[test]
fn jobs_full_cycle() {
    let (emu, c) = setup();
    let j1 = emu.create_job(
        json!({"operation": "ota", "version": "2.0.0"}),
        &[T],
        Some("OTA 2.0.0"),
    );
    emu.advance_clock(1);
    let j2 = c
        .admin(
            "POST",
            "/admin/v1/jobs",
            Some(&json!({"document": {"operation": "reboot"}, "targets": {"thingNames": [T]}, "description": "reboot"})),
        )
        .ok()["jobId"]
        .as_str()
        .unwrap()
        .to_owned();

    // seed example: jobs/get
    let r = c
        .post_raw(
            "/api/v1/thing-datas/jobs/get",
            r#"{"thingName": "thermostat-001", "clientToken": "req-1"}"#,
        )
        .ok();
    assert_eq!(r["clientToken"], json!("req-1"));
    assert_eq!(r["inProgressJobs"], json!([]));
    let q = r["queuedJobs"].as_array().unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0]["jobId"], json!(j1));
    assert_eq!(q[1]["jobId"], json!(j2));
    for k in [
        "queuedAt",
        "lastUpdatedAt",
        "versionNumber",
        "executionNumber",
    ] {
        assert!(q[0][k].is_u64(), "{k} in {}", q[0]);
    }

    // start-next: oldest queued first
    let e = c
        .post(
            "/api/v1/thing-datas/jobs/start-next",
            &json!({"thingName": T, "statusDetails": {"phase": "download"}, "clientToken": "sn-1"}),
        )
        .ok();
    let ex = &e["execution"];
    assert_eq!(ex["jobId"], json!(j1));
    assert_eq!(ex["thingName"], json!(T));
    assert_eq!(ex["status"], json!("IN_PROGRESS"));
    assert_eq!(ex["statusDetails"], json!({"phase": "download"}));
    assert_eq!(ex["versionNumber"], json!(2));
    assert_eq!(ex["executionNumber"], json!(1));
    assert_eq!(
        ex["jobDocument"],
        json!({"operation": "ota", "version": "2.0.0"})
    );
    for k in ["queuedAt", "startedAt", "lastUpdatedAt"] {
        assert!(ex[k].is_u64(), "{k}");
    }
    assert_eq!(e["clientToken"], json!("sn-1"));
    // in-progress first on the next call
    assert_eq!(
        c.post(
            "/api/v1/thing-datas/jobs/start-next",
            &json!({"thingName": T})
        )
        .ok()["execution"]["jobId"],
        json!(j1)
    );
    let r = c
        .post("/api/v1/thing-datas/jobs/get", &json!({"thingName": T}))
        .ok();
    assert_eq!(r["inProgressJobs"][0]["jobId"], json!(j1));
    assert_eq!(r["queuedJobs"][0]["jobId"], json!(j2));

    // describe
    let d = c
        .post(
            &format!("/api/v1/thing-datas/jobs/{j1}/get"),
            &json!({"thingName": T, "clientToken": "d"}),
        )
        .ok();
    assert_eq!(d["execution"]["status"], json!("IN_PROGRESS"));
    assert_eq!(d["execution"]["jobDocument"]["operation"], json!("ota"));
    c.post(
        "/api/v1/thing-datas/jobs/not-a-job/get",
        &json!({"thingName": T}),
    )
    .err(404, "ResourceNotFound");

    // update: stale expectedVersion -> 409 VersionMismatch with the current state
    let upd = format!("/api/v1/thing-datas/jobs/{j1}/update");
    let e = c
        .post(&upd, &json!({"thingName": T, "status": "SUCCEEDED", "expectedVersion": 1, "clientToken": "req-3"}))
        .err(409, "VersionMismatch");
    assert_eq!(
        e["executionState"],
        json!({"status": "IN_PROGRESS", "statusDetails": {"phase": "download"}, "versionNumber": 2})
    );
    assert_eq!(e["clientToken"], json!("req-3"));
    let ok = c
        .post(&upd, &json!({"thingName": T, "status": "SUCCEEDED", "statusDetails": {"installedVersion": "2.0.0"}, "expectedVersion": 2, "clientToken": "req-3"}))
        .ok();
    assert_eq!(
        ok["executionState"],
        json!({"status": "SUCCEEDED", "statusDetails": {"installedVersion": "2.0.0"}, "versionNumber": 3})
    );
    assert_eq!(
        ok["jobDocument"],
        json!({"operation": "ota", "version": "2.0.0"})
    );
    assert_eq!(ok["clientToken"], json!("req-3"));
    // terminal states cannot be left
    for s in ["IN_PROGRESS", "FAILED", "SUCCEEDED", "REJECTED"] {
        let e = c
            .post(&upd, &json!({"thingName": T, "status": s}))
            .err(409, "InvalidStateTransition");
        assert_eq!(e["executionState"]["status"], json!("SUCCEEDED"));
    }
    assert_eq!(
        emu.job_execution(&j1, T).unwrap()["versionNumber"],
        json!(3)
    );

    // second job: REJECTED straight from QUEUED, then nothing pending -> {}
    c.post(
        &format!("/api/v1/thing-datas/jobs/{j2}/update"),
        &json!({"thingName": T, "status": "REJECTED", "expectedVersion": 1}),
    )
    .ok();
    assert_eq!(
        c.post(
            "/api/v1/thing-datas/jobs/start-next",
            &json!({"thingName": T})
        )
        .ok(),
        json!({})
    );
    assert_eq!(
        c.post("/api/v1/thing-datas/jobs/get", &json!({"thingName": T}))
            .ok(),
        json!({"inProgressJobs": [], "queuedJobs": []})
    );
}

#[test]
fn seed_job_update_example_as_written() {
    let (emu, c) = setup();
    let job = emu.create_job(json!({"operation": "ota"}), &[T], None);
    let body = r#"{
    "thingName": "thermostat-001",
    "status": "SUCCEEDED",
    "statusDetails": { "installedVersion": "2.0.0" },
    "expectedVersion": 1,
    "clientToken": "req-3"
  }"#;
    let r = c
        .post_raw(&format!("/api/v1/thing-datas/jobs/{job}/update"), body)
        .ok();
    assert_eq!(r["executionState"]["status"], json!("SUCCEEDED"));
}

#[test]
fn step_timeout_expires_to_timed_out() {
    let (emu, c) = setup();
    let job = emu.create_job(json!({"op": "slow"}), &[T], None);
    let e = c
        .post(
            "/api/v1/thing-datas/jobs/start-next",
            &json!({"thingName": T, "stepTimeoutInMinutes": 2}),
        )
        .ok();
    assert_eq!(
        e["execution"]["approximateSecondsBeforeTimedOut"],
        json!(120)
    );
    emu.advance_clock(60);
    // still in progress; an update with a new step timeout restarts the timer
    c.post(
        &format!("/api/v1/thing-datas/jobs/{job}/update"),
        &json!({"thingName": T, "status": "IN_PROGRESS", "stepTimeoutInMinutes": 1}),
    )
    .ok();
    emu.advance_clock(59);
    assert_eq!(
        emu.job_execution(&job, T).unwrap()["status"],
        json!("IN_PROGRESS")
    );
    c.admin(
        "POST",
        "/admin/v1/clock/advance",
        Some(&json!({"seconds": 1})),
    )
    .ok();
    let d = c
        .post(
            &format!("/api/v1/thing-datas/jobs/{job}/get"),
            &json!({"thingName": T}),
        )
        .ok();
    assert_eq!(d["execution"]["status"], json!("TIMED_OUT"));
    let e = c
        .post(
            &format!("/api/v1/thing-datas/jobs/{job}/update"),
            &json!({"thingName": T, "status": "SUCCEEDED"}),
        )
        .err(409, "InvalidStateTransition");
    assert_eq!(e["executionState"]["status"], json!("TIMED_OUT"));
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": T, "stepTimeoutInMinutes": 0}),
    )
    .err(400, "InvalidRequest");
}

#[test]
fn canceled_job_refuses_updates() {
    let (emu, c) = setup();
    let job = emu.create_job(json!({}), &[T], None);
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": T}),
    )
    .ok();
    let r = c
        .admin("POST", &format!("/admin/v1/jobs/{job}/cancel"), None)
        .ok();
    assert_eq!(r["status"], json!("CANCELED"));
    assert_eq!(
        emu.job_execution(&job, T).unwrap()["status"],
        json!("CANCELED")
    );
    c.post(
        &format!("/api/v1/thing-datas/jobs/{job}/update"),
        &json!({"thingName": T, "status": "SUCCEEDED", "expectedVersion": 3}),
    )
    .err(409, "InvalidStateTransition");
    assert!(!emu.cancel_job("no-such-job"));
    c.admin("POST", "/admin/v1/jobs/no-such-job/cancel", None)
        .err(404, "ResourceNotFound");
}

#[test]
fn job_errors() {
    let (emu, c) = setup();
    let job = emu.create_job(json!({}), &[T], None);
    emu.register_thing("other");
    let upd = format!("/api/v1/thing-datas/jobs/{job}/update");
    c.post(&upd, &json!({"thingName": "other", "status": "SUCCEEDED"}))
        .err(404, "ResourceNotFound");
    c.post(&upd, &json!({"thingName": "ghost", "status": "SUCCEEDED"}))
        .err(404, "ResourceNotFound");
    c.post(&upd, &json!({"thingName": T, "status": "QUEUED"}))
        .err(400, "InvalidRequest");
    c.post(&upd, &json!({"thingName": T, "status": "CANCELED"}))
        .err(400, "InvalidRequest");
    c.post(&upd, &json!({"thingName": T}))
        .err(400, "InvalidRequest");
    c.post(
        &upd,
        &json!({"thingName": T, "status": "SUCCEEDED", "statusDetails": 5}),
    )
    .err(400, "InvalidRequest");
    c.post(
        &upd,
        &json!({"thingName": T, "status": "SUCCEEDED", "expectedVersion": "1"}),
    )
    .err(400, "InvalidRequest");
    c.post("/api/v1/thing-datas/jobs/get", &json!({}))
        .err(400, "InvalidRequest");
    c.post(
        "/api/v1/thing-datas/jobs/get",
        &json!({"thingName": "ghost"}),
    )
    .err(404, "ResourceNotFound");
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": T, "statusDetails": []}),
    )
    .err(400, "InvalidRequest");
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": "ghost"}),
    )
    .err(404, "ResourceNotFound");
    c.post(
        &format!("/api/v1/thing-datas/jobs/{job}/get"),
        &json!({"thingName": "other"}),
    )
    .err(404, "ResourceNotFound");
}

#[test]
fn authentication() {
    let (emu, c) = setup();
    let p = "/api/v1/thing-datas/shadow/reported";
    let body = json!({"thingName": T, "state": {"reported": {"a": 1}}}).to_string();
    let ct = ("Content-Type", "application/json");
    let r = c.post_with(p, &[ct], &body);
    r.err(401, "Unauthorized");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let wrong_secret = basic(emu.api_key(), "nope");
    c.post_with(p, &[ct, ("Authorization", &wrong_secret)], &body)
        .err(401, "Unauthorized");
    let wrong_key = basic("ak_other", emu.api_secret());
    c.post_with(p, &[ct, ("Authorization", &wrong_key)], &body)
        .err(401, "Unauthorized");
    c.post_with(
        p,
        &[ct, ("Authorization", "Bearer emulator-admin-token")],
        &body,
    )
    .err(401, "Unauthorized");
    c.post_with(p, &[ct, ("Authorization", "Basic %%%")], &body)
        .err(401, "Unauthorized");
    c.get_with("/api/v1/thing-datas/thermostat-001/shadow", &[])
        .err(401, "Unauthorized");
    assert_eq!(
        emu.shadow(T).unwrap()["version"],
        json!(0),
        "nothing was applied"
    );
    // 401 comes before routing and validation
    c.post_with("/api/v1/thing-datas/nope", &[ct], "{")
        .err(401, "Unauthorized");
}

#[test]
fn custom_credentials_and_auto_register() {
    let emu = common::start_with(EmulatorOptions {
        api_key: "ak_custom".into(),
        api_secret: "s3cr3t:with:colons".into(),
        auto_register: true,
        ..Default::default()
    });
    let c = Client::new(&emu);
    assert_eq!(c.auth, basic("ak_custom", "s3cr3t:with:colons"));
    c.post(
        "/api/v1/thing-datas/shadow/reported",
        &json!({"thingName": "fresh-1", "state": {"reported": {"x": 1}}}),
    )
    .ok();
    assert_eq!(c.shadow("fresh-2")["version"], json!(0));
    let things = c.admin("GET", "/admin/v1/things", None).ok();
    assert_eq!(things["things"], json!(["fresh-1", "fresh-2"]));
}

#[test]
fn protocol_errors_are_json() {
    let (emu, c) = setup();
    let p = "/api/v1/thing-datas/events";
    let auth = c.auth.clone();
    // 415: wrong or missing content type
    c.post_with(
        p,
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "{}",
    )
    .err(415, "UnsupportedMediaType");
    c.post_with(p, &[("Authorization", &auth)], "{}")
        .err(415, "UnsupportedMediaType");
    c.post_with(
        p,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        r#"{"thingName":"thermostat-001","eventType":"a","timestamp":1}"#,
    )
    .ok();
    // 405 with Allow
    let r = c.get(p);
    r.err(405, "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = c.post("/api/v1/thing-datas/thermostat-001/shadow", &json!({}));
    r.err(405, "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("GET"));
    // 404 for unknown routes, inside and outside the API
    c.post(
        p.to_owned()
            .as_str()
            .trim_end_matches("events")
            .to_owned()
            .as_str(),
        &json!({}),
    )
    .err(404, "NotFound");
    c.post("/api/v1/thing-datas/events/extra", &json!({}))
        .err(404, "NotFound");
    c.get("/").err(404, "NotFound");
    c.get("/api/v2/x").err(404, "NotFound");
    // 413 over the limit (default 256 KiB), fine just under it
    let big = format!(
        r#"{{"thingName":"thermostat-001","eventType":"a","timestamp":1,"data":{{"pad":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    c.post_raw(p, &big).err(413, "PayloadTooLarge");
    let fits = format!(
        r#"{{"thingName":"thermostat-001","eventType":"a","timestamp":1,"data":{{"pad":"{}"}}}}"#,
        "x".repeat(200 * 1024)
    );
    c.post_raw(p, &fits).ok();
    // deeply nested JSON is refused, not a crash
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    c.post_raw(p, &deep).err(400, "InvalidJson");
    // every response had a JSON content type; the server is still healthy
    assert_eq!(c.get(p).header("content-type"), Some("application/json"));
    assert_eq!(emu.events(T).len(), 2);
}

#[test]
fn small_body_limit() {
    let emu = common::start_with(EmulatorOptions {
        max_body_bytes: 64,
        ..Default::default()
    });
    emu.register_thing(T);
    let c = Client::new(&emu);
    c.post(
        "/api/v1/thing-datas/events",
        &json!({"thingName": T, "eventType": "a", "timestamp": 1}),
    )
    .ok();
    c.post(
        "/api/v1/thing-datas/events",
        &json!({"thingName": T, "eventType": "a".repeat(60), "timestamp": 1}),
    )
    .err(413, "PayloadTooLarge");
}

#[test]
fn stats_count_every_api_request() {
    let (emu, c) = setup();
    assert_eq!(emu.stats(), Stats::default());
    c.shadow(T);
    c.get("/api/v1/thing-datas/ghost/shadow"); // 404
    c.get_with("/api/v1/thing-datas/thermostat-001/shadow", &[]); // 401
    c.post_raw("/api/v1/thing-datas/shadow/reported", "{"); // 400
    c.post("/api/v1/thing-datas/jobs/j-1/update", &json!({})); // 400
    c.post("/api/v1/thing-datas/jobs/j-2/get", &json!({})); // 400
    c.post("/api/v1/thing-datas/nope", &json!({})); // 404
    c.admin("GET", "/admin/v1/stats", None).ok(); // not counted
    let s = emu.stats();
    assert_eq!(s.total, 7);
    assert_eq!(
        s.by_endpoint["GET /api/v1/thing-datas/{thingName}/shadow"],
        3
    );
    assert_eq!(s.by_endpoint["POST /api/v1/thing-datas/shadow/reported"], 1);
    assert_eq!(
        s.by_endpoint["POST /api/v1/thing-datas/jobs/{jobId}/update"],
        1
    );
    assert_eq!(
        s.by_endpoint["POST /api/v1/thing-datas/jobs/{jobId}/get"],
        1
    );
    assert_eq!(s.by_endpoint["POST <unknown>"], 1);
    let http = c.admin("GET", "/admin/v1/stats", None).ok();
    assert_eq!(http["total"], json!(7));
    assert_eq!(
        http["by_endpoint"],
        serde_json::to_value(&s.by_endpoint).unwrap()
    );
    assert_eq!(http["admin_total"], json!(2));
}

#[test]
fn keep_alive_connection_serves_many_requests() {
    let (emu, c) = setup();
    for i in 0..200 {
        c.post(
            "/api/v1/thing-datas/shadow/reported",
            &json!({"thingName": T, "state": {"reported": {"i": i}}}),
        )
        .ok();
    }
    assert_eq!(emu.shadow(T).unwrap()["version"], json!(200));
}
