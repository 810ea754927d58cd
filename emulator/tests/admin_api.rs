//! The admin API over HTTPS, and its equivalence with the in-process API.

mod common;

use common::Client;
use fleets_emulator::{FaultRule, Stats};
use serde_json::{json, Value};

const T: &str = "thermostat-001";

fn setup() -> (fleets_emulator::Emulator, Client) {
    let emu = common::start();
    let c = Client::new(&emu);
    (emu, c)
}

#[test]
fn bearer_token_required() {
    let (emu, c) = setup();
    let r = c.admin_as("", "GET", "/admin/v1/stats", None);
    r.err(401, "Unauthorized");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    c.admin_as("Bearer wrong", "PUT", "/admin/v1/things/x", None)
        .err(401, "Unauthorized");
    c.admin_as(&c.auth.clone(), "PUT", "/admin/v1/things/x", None)
        .err(401, "Unauthorized");
    assert!(emu.shadow("x").is_none());
    c.admin_as(
        &format!("bearer {}", emu.admin_token()),
        "PUT",
        "/admin/v1/things/x",
        None,
    )
    .ok();
    assert!(emu.shadow("x").is_some());
}

#[test]
fn things_register_get_and_list() {
    let (emu, c) = setup();
    assert_eq!(
        c.admin("PUT", &format!("/admin/v1/things/{T}"), None).ok(),
        json!({"thingName": T, "created": true})
    );
    assert_eq!(
        c.admin("PUT", &format!("/admin/v1/things/{T}"), None).ok()["created"],
        json!(false)
    );
    c.admin("PUT", "/admin/v1/things/bad%20name", None)
        .err(400, "InvalidRequest");
    c.admin("PUT", "/admin/v1/things/..", None)
        .err(400, "InvalidRequest");
    assert_eq!(
        c.admin("GET", "/admin/v1/things", None).ok()["things"],
        json!([T])
    );
    let t = c.admin("GET", &format!("/admin/v1/things/{T}"), None).ok();
    assert_eq!(t["shadow"]["version"], json!(0));
    assert_eq!(
        c.admin("GET", &format!("/admin/v1/things/{T}/shadow"), None)
            .ok(),
        emu.shadow(T).unwrap()
    );
    c.admin("GET", "/admin/v1/things/ghost", None)
        .err(404, "ResourceNotFound");
    c.admin("GET", "/admin/v1/things/ghost/shadow", None)
        .err(404, "ResourceNotFound");
    c.admin("GET", "/admin/v1/things/ghost/shadow/history", None)
        .err(404, "ResourceNotFound");
    c.admin("GET", "/admin/v1/things/ghost/events", None)
        .err(404, "ResourceNotFound");
    c.admin("GET", "/admin/v1/things/ghost/commands", None)
        .err(404, "ResourceNotFound");
    c.admin("DELETE", &format!("/admin/v1/things/{T}"), None)
        .err(405, "MethodNotAllowed");
}

#[test]
fn desired_state_and_history() {
    let (emu, c) = setup();
    emu.register_thing(T);
    let p = format!("/admin/v1/things/{T}/shadow/desired");
    let s = c
        .admin(
            "PUT",
            &p,
            Some(&json!({"targetTemperature": 24, "mode": {"fan": "auto"}})),
        )
        .ok();
    assert_eq!(
        s["desired"],
        json!({"targetTemperature": 24, "mode": {"fan": "auto"}})
    );
    assert_eq!(s["delta"], s["desired"]);
    let s = c
        .admin("PUT", &p, Some(&json!({"mode": {"fan": null}})))
        .ok();
    assert_eq!(s["desired"], json!({"targetTemperature": 24, "mode": {}}));
    c.admin("PUT", &p, Some(&json!([1])))
        .err(400, "InvalidRequest");
    c.admin("POST", &p, Some(&json!({})))
        .err(405, "MethodNotAllowed");
    c.post_with(
        &p,
        &[
            ("Authorization", &c.admin_auth.clone()),
            ("Content-Type", "application/json"),
        ],
        "{",
    )
    .err(405, "MethodNotAllowed");
    // history via HTTP equals the in-process history
    c.post("/api/v1/thing-datas/shadow/reported", &json!({"thingName": T, "state": {"reported": {"targetTemperature": 24}}, "clientToken": "a"}))
        .ok();
    let h = c
        .admin("GET", &format!("/admin/v1/things/{T}/shadow/history"), None)
        .ok();
    assert_eq!(h["history"], Value::Array(emu.shadow_history(T)));
    let h = emu.shadow_history(T);
    assert_eq!(h.len(), 3);
    assert_eq!(h[2]["source"], json!("device"));
    assert_eq!(h[2]["state"]["reported"], json!({"targetTemperature": 24}));
    assert_eq!(h[2]["clientToken"], json!("a"));
    assert_eq!(h[2]["version"], json!(3));
    // in-process set_desired works on unknown things and refuses non-objects
    emu.set_desired("new-thing", json!({"a": 1})).unwrap();
    assert!(emu.set_desired("new-thing", json!("x")).is_err());
}

#[test]
fn commands_admin() {
    let (emu, c) = setup();
    emu.register_thing(T);
    let p = format!("/admin/v1/things/{T}/commands");
    let id = c.admin("POST", &p, Some(&json!({"action": "reboot"}))).ok()["executionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cmd = c.admin("GET", &format!("{p}/{id}"), None).ok();
    assert_eq!(cmd["status"], json!("SENT"));
    assert_eq!(cmd["params"], json!({}));
    assert_eq!(cmd["ttl"], json!(fleets_emulator::DEFAULT_COMMAND_TTL_SECS));
    assert_eq!(cmd["result"], Value::Null);
    c.admin("POST", &p, Some(&json!({"params": {}})))
        .err(400, "InvalidRequest");
    c.admin("POST", &p, Some(&json!({"action": "x", "params": [1]})))
        .err(400, "InvalidRequest");
    c.admin("POST", &p, Some(&json!({"action": "x", "ttl": -1})))
        .err(400, "InvalidRequest");
    c.admin(
        "POST",
        &p,
        Some(&json!({"action": "x", "executionId": "bad id"})),
    )
    .err(400, "InvalidRequest");
    c.admin("POST", &p, Some(&json!({"action": "x", "executionId": id})))
        .err(409, "ResourceAlreadyExists");
    c.admin("GET", &format!("{p}/nope"), None)
        .err(404, "ResourceNotFound");
    let list = c.admin("GET", &p, None).ok();
    assert_eq!(list["commands"].as_array().unwrap().len(), 1);
    // in-process create + HTTP read
    let id2 = emu.create_command(T, "setTemp", json!({"t": 21}), 0);
    assert_eq!(
        c.admin("GET", &format!("{p}/{id2}"), None).ok(),
        emu.command(T, &id2).unwrap()
    );
    assert_eq!(emu.command(T, &id2).unwrap()["expiresAt"], Value::Null);
}

#[test]
fn jobs_admin() {
    let (emu, c) = setup();
    let bad = [
        json!({"targets": {"thingNames": [T]}}),
        json!({"document": {}, "targets": {"thingNames": []}}),
        json!({"document": {}, "targets": {}}),
        json!({"document": {}}),
        json!({"document": [], "targets": {"thingNames": [T]}}),
        json!({"document": {}, "targets": {"thingNames": [5]}}),
        json!({"document": {}, "targets": {"thingNames": ["bad name"]}}),
        json!({"document": {}, "targets": {"thingNames": [T]}, "timeoutConfig": {"inProgressTimeoutInMinutes": 0}}),
    ];
    for b in bad {
        c.admin("POST", "/admin/v1/jobs", Some(&b))
            .err(400, "InvalidRequest");
    }
    let r = c
        .admin(
            "POST",
            "/admin/v1/jobs",
            Some(&json!({"jobId": "ota-42", "document": {"op": "ota"}, "targets": {"thingNames": [T, "t-2", T]}, "description": "d", "timeoutConfig": {"inProgressTimeoutInMinutes": 5}})),
        )
        .ok();
    assert_eq!(r, json!({"jobId": "ota-42"}));
    assert!(emu.shadow("t-2").is_some(), "job targets are registered");
    c.admin(
        "POST",
        "/admin/v1/jobs",
        Some(&json!({"jobId": "ota-42", "document": {}, "targets": {"thingNames": [T]}})),
    )
    .err(409, "ResourceAlreadyExists");
    let job = c.admin("GET", "/admin/v1/jobs/ota-42", None).ok();
    assert_eq!(job["status"], json!("IN_PROGRESS"));
    assert_eq!(job["targets"]["thingNames"], json!([T, "t-2"]));
    assert_eq!(job["executionCounts"], json!({"QUEUED": 2}));
    assert_eq!(
        c.admin("GET", "/admin/v1/jobs", None).ok()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let ex = c
        .admin("GET", &format!("/admin/v1/jobs/ota-42/things/{T}"), None)
        .ok();
    assert_eq!(ex, emu.job_execution("ota-42", T).unwrap());
    assert_eq!(ex["status"], json!("QUEUED"));
    assert_eq!(ex["jobDocument"], json!({"op": "ota"}));
    c.admin("GET", "/admin/v1/jobs/ota-42/things/ghost", None)
        .err(404, "ResourceNotFound");
    c.admin("GET", "/admin/v1/jobs/nope", None)
        .err(404, "ResourceNotFound");
    // the job's default in-progress timeout applies when the device starts it
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": T}),
    )
    .ok();
    emu.advance_clock(300);
    assert_eq!(
        emu.job_execution("ota-42", T).unwrap()["status"],
        json!("TIMED_OUT")
    );
    // cancel
    let r = c.admin("POST", "/admin/v1/jobs/ota-42/cancel", None).ok();
    assert_eq!(r["status"], json!("CANCELED"));
    assert_eq!(r["executionCounts"], json!({"CANCELED": 1, "TIMED_OUT": 1}));
    c.admin("GET", "/admin/v1/jobs/ota-42/cancel", None)
        .err(405, "MethodNotAllowed");
}

#[test]
fn clock_stats_reset_and_unknown_routes() {
    let (emu, c) = setup();
    emu.register_thing(T);
    let before = c.admin("GET", "/admin/v1/clock", None).ok()["now"]
        .as_u64()
        .unwrap();
    let after = c
        .admin(
            "POST",
            "/admin/v1/clock/advance",
            Some(&json!({"seconds": 3600})),
        )
        .ok()["now"]
        .as_u64()
        .unwrap();
    assert!(after >= before + 3600);
    c.admin(
        "POST",
        "/admin/v1/clock/advance",
        Some(&json!({"seconds": "x"})),
    )
    .err(400, "InvalidRequest");
    c.admin("POST", "/admin/v1/clock/advance", None)
        .err(400, "InvalidRequest");
    // shadow timestamps follow the virtual clock
    let r = c
        .post(
            "/api/v1/thing-datas/shadow/reported",
            &json!({"thingName": T, "state": {"reported": {}}}),
        )
        .ok();
    assert!(r["timestamp"].as_u64().unwrap() >= before + 3600);
    emu.add_fault(FaultRule::status("", 500).times(0));
    c.admin("POST", "/admin/v1/reset", None).ok();
    assert_eq!(emu.stats(), Stats::default());
    assert!(emu.shadow(T).is_none());
    assert_eq!(
        c.admin("GET", "/admin/v1/faults", None).ok()["faults"],
        json!([])
    );
    let now = c.admin("GET", "/admin/v1/clock", None).ok()["now"]
        .as_u64()
        .unwrap();
    assert!(now < before + 3600, "the clock offset is reset too");
    c.admin("GET", "/admin/v1/nope", None).err(404, "NotFound");
    c.admin("GET", "/admin/v1/", None).err(404, "NotFound");
    c.admin("PATCH", "/admin/v1/stats", None)
        .err(405, "MethodNotAllowed");
    c.admin("GET", "/admin/v1/reset", None)
        .err(405, "MethodNotAllowed");
    // admin bodies follow the same parsing rules
    c.post_with(
        "/admin/v1/faults",
        &[
            ("Authorization", &c.admin_auth.clone()),
            ("Content-Type", "text/plain"),
        ],
        "{}",
    )
    .err(415, "UnsupportedMediaType");
    c.post_with(
        "/admin/v1/faults",
        &[
            ("Authorization", &c.admin_auth.clone()),
            ("Content-Type", "application/json"),
        ],
        "{x",
    )
    .err(400, "InvalidJson");
    // in-process reset
    emu.register_thing(T);
    emu.reset();
    assert!(emu.shadow(T).is_none());
}

#[test]
fn accessors_and_ready_line() {
    let (emu, _c) = setup();
    assert!(emu.endpoint().starts_with("https://127.0.0.1:"));
    assert_eq!(emu.endpoint(), format!("https://{}", emu.local_addr()));
    let ready: Value = serde_json::from_str(&emu.ready_line()).unwrap();
    assert_eq!(ready["event"], json!("ready"));
    assert_eq!(ready["endpoint"], json!(emu.endpoint()));
    assert_eq!(
        ready["ca_file"],
        json!(emu.ca_file().unwrap().to_str().unwrap())
    );
    assert!(emu
        .ready_line()
        .starts_with(r#"{"event":"ready","endpoint":"#));
    let pem = std::fs::read_to_string(emu.ca_file().unwrap()).unwrap();
    assert_eq!(Some(pem.as_str()), emu.ca_pem());
    let dir = emu.ca_file().unwrap().parent().unwrap().to_owned();
    drop(emu);
    assert!(
        !dir.exists(),
        "the temporary CA directory is removed on drop"
    );
}

#[test]
fn ipv6_loopback() {
    let Ok(emu) = fleets_emulator::Emulator::start(fleets_emulator::EmulatorOptions {
        listen: "[::1]:0".parse().unwrap(),
        ..Default::default()
    }) else {
        eprintln!("skipping: no IPv6 loopback");
        return;
    };
    assert!(emu.endpoint().starts_with("https://[::1]:"));
    let c = Client::new(&emu);
    c.admin("PUT", "/admin/v1/things/v6", None).ok();
}

#[test]
fn handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<fleets_emulator::Emulator>();
    assert_send_sync::<FaultRule>();
    // usable from many threads at once
    let emu = std::sync::Arc::new(common::start());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let emu = emu.clone();
            std::thread::spawn(move || {
                let c = Client::new(&emu);
                for j in 0..25 {
                    let name = format!("t-{i}-{j}");
                    emu.register_thing(&name);
                    c.post(
                        "/api/v1/thing-datas/shadow/reported",
                        &json!({"thingName": name, "state": {"reported": {"j": j}}}),
                    )
                    .ok();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(emu.stats().total, 100);
}
