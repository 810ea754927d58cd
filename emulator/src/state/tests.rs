use super::*;
use crate::faults::FaultKind;

const T0: u64 = 1_779_876_000;

fn st() -> State {
    let mut s = State::with_fixed_clock(false, T0);
    s.register("thermostat-001");
    s
}

fn obj(v: Value) -> Obj {
    v.as_object().unwrap().clone()
}

#[test]
fn seed_report_body_is_accepted() {
    let mut s = st();
    let r = s
        .report(&obj(json!({
            "thingName": "thermostat-001",
            "state": {"reported": {"temperature": 21.5, "humidity": 58}},
            "clientToken": "tok-001",
            "version": 0
        })))
        .unwrap();
    assert_eq!(
        r,
        json!({"state": {"reported": {"temperature": 21.5, "humidity": 58}}, "version": 1, "timestamp": T0, "clientToken": "tok-001"})
    );
    let sh = s.get_shadow("thermostat-001").unwrap();
    assert_eq!(sh["reported"], json!({"temperature": 21.5, "humidity": 58}));
    assert_eq!(sh["delta"], json!({}));
    assert_eq!(sh["version"], json!(1));
    assert_eq!(sh["updatedAt"], json!("2026-05-27T10:00:00Z"));
    assert_eq!(s.history("thermostat-001").unwrap().len(), 1);
}

#[test]
fn report_merges_with_null_deletes_and_versions() {
    let mut s = st();
    let rep = |v: Value| obj(json!({"thingName": "thermostat-001", "state": {"reported": v}}));
    s.report(&rep(json!({"a": 1, "n": {"x": 1, "y": 2}})))
        .unwrap();
    let r = s
        .report(&rep(json!({"a": null, "n": {"x": null, "z": 3}})))
        .unwrap();
    assert_eq!(r["version"], json!(2));
    assert!(r.get("clientToken").is_none());
    assert_eq!(
        s.get_shadow("thermostat-001").unwrap()["reported"],
        json!({"n": {"y": 2, "z": 3}})
    );
    // explicit version must equal the current one
    let mut b = rep(json!({"b": 1}));
    b.insert("version".into(), json!(2));
    assert_eq!(s.report(&b).unwrap()["version"], json!(3));
    let err = s.report(&b).unwrap_err();
    assert_eq!((err.status, err.code), (409, "VersionConflict"));
    assert_eq!(err.extra["version"], json!(3));
    assert_eq!(
        s.get_shadow("thermostat-001").unwrap()["version"],
        json!(3),
        "a refused report changes nothing"
    );
}

#[test]
fn report_validation() {
    let mut s = st();
    let bad = [
        json!({}),
        json!({"thingName": "thermostat-001"}),
        json!({"thingName": "thermostat-001", "state": {}}),
        json!({"thingName": "thermostat-001", "state": {"reported": 5}}),
        json!({"thingName": "thermostat-001", "state": []}),
        json!({"thingName": "thermostat-001", "state": {"reported": {}, "desired": {}}}),
        json!({"thingName": "thermostat-001", "state": {"reported": {}}, "version": -1}),
        json!({"thingName": "thermostat-001", "state": {"reported": {}}, "version": "1"}),
        json!({"thingName": "thermostat-001", "state": {"reported": {}}, "clientToken": "x".repeat(65)}),
        json!({"thingName": "bad/name", "state": {"reported": {}}}),
        json!({"thingName": 7, "state": {"reported": {}}}),
    ];
    for b in bad {
        let e = s.report(&obj(b.clone())).unwrap_err();
        assert_eq!(e.status, 400, "{b}");
    }
    let ok = obj(
        json!({"thingName": "thermostat-001", "state": {"reported": {}}, "clientToken": "x".repeat(64)}),
    );
    assert!(s.report(&ok).is_ok());
    let e = s
        .report(&obj(
            json!({"thingName": "nobody", "state": {"reported": {}}}),
        ))
        .unwrap_err();
    assert_eq!(e.status, 404);
}

#[test]
fn auto_register() {
    let mut s = State::with_fixed_clock(true, T0);
    assert!(s
        .report(&obj(
            json!({"thingName": "new-1", "state": {"reported": {"x": 1}}})
        ))
        .is_ok());
    assert!(s.get_shadow("new-2").is_ok());
    assert_eq!(s.thing_names(), vec!["new-1", "new-2"]);
}

#[test]
fn desired_and_delta() {
    let mut s = st();
    s.set_desired(
        "thermostat-001",
        &json!({"targetTemperature": 24, "cfg": {"mode": "eco", "fan": [1, 2]}}),
    )
    .unwrap();
    s.report(&obj(json!({"thingName": "thermostat-001", "state": {"reported": {"temperature": 21.5, "cfg": {"mode": "eco", "fan": [1]}}}})))
        .unwrap();
    let sh = s.get_shadow("thermostat-001").unwrap();
    assert_eq!(
        sh["delta"],
        json!({"targetTemperature": 24, "cfg": {"fan": [1, 2]}})
    );
    assert_eq!(
        sh["version"],
        json!(2),
        "desired updates bump the version too"
    );
    s.report(&obj(json!({"thingName": "thermostat-001", "state": {"reported": {"targetTemperature": 24.0, "cfg": {"fan": [1, 2]}}}})))
        .unwrap();
    assert_eq!(s.get_shadow("thermostat-001").unwrap()["delta"], json!({}));
    s.set_desired("thermostat-001", &json!({"cfg": null}))
        .unwrap();
    let sh = s.get_shadow("thermostat-001").unwrap();
    assert_eq!(sh["desired"], json!({"targetTemperature": 24}));
    assert!(s.set_desired("thermostat-001", &json!([1])).is_err());
    let h = s.history("thermostat-001").unwrap();
    assert_eq!(h.len(), 4);
    assert_eq!(h[0]["source"], json!("admin"));
    assert_eq!(h[1]["source"], json!("device"));
}

#[test]
fn history_is_bounded() {
    let mut s = st();
    for i in 0..(HISTORY_LIMIT + 5) {
        s.report(&obj(
            json!({"thingName": "thermostat-001", "state": {"reported": {"i": i}}}),
        ))
        .unwrap();
    }
    let h = s.history("thermostat-001").unwrap();
    assert_eq!(h.len(), HISTORY_LIMIT);
    assert_eq!(h[0]["state"]["reported"]["i"], json!(5));
}

#[test]
fn events() {
    let mut s = st();
    let seed = obj(json!({
        "thingName": "thermostat-001", "eventType": "highTemperature", "severity": "warn",
        "timestamp": 1748390400000u64, "data": {"currentTemp": 45.2}
    }));
    let r = s.publish_event(&seed).unwrap();
    assert!(r["eventId"].is_string());
    let ev = s.events("thermostat-001").unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"], json!({"currentTemp": 45.2}));
    assert_eq!(ev[0]["eventId"], r["eventId"]);
    let base = json!({"thingName": "thermostat-001", "eventType": "e", "timestamp": 1});
    assert!(s.publish_event(&obj(base.clone())).is_ok());
    let with = |k: &str, v: Value| {
        let mut o = obj(base.clone());
        o.insert(k.into(), v);
        o
    };
    for (k, v) in [
        ("severity", json!("fatal")),
        ("severity", json!(1)),
        ("timestamp", json!(1.5)),
        ("timestamp", json!("1")),
        ("timestamp", json!(-1)),
        ("timestamp", Value::Null),
        ("eventType", json!("")),
        ("eventType", json!(3)),
        ("data", json!([1])),
        ("appId", json!(5)),
    ] {
        assert_eq!(
            s.publish_event(&with(k, v.clone())).unwrap_err().status,
            400,
            "{k}={v}"
        );
    }
    assert!(s.publish_event(&with("appId", json!("app-1"))).is_ok());
    assert!(s.publish_event(&with("severity", json!("info"))).is_ok());
    assert_eq!(
        s.publish_event(&with("thingName", json!("ghost")))
            .unwrap_err()
            .status,
        404
    );
}

#[test]
fn commands() {
    let mut s = st();
    let id = s
        .create_command(
            "thermostat-001",
            "setTemp",
            json!({"t": 24}),
            60,
            Some("8d88790c-9171-4526-8637-e6d6168bce22"),
        )
        .unwrap();
    assert_eq!(id, "8d88790c-9171-4526-8637-e6d6168bce22");
    let seed = obj(json!({
        "thingName": "thermostat-001", "executionId": id, "status": "SUCCEEDED",
        "result": {"currentTemperature": 24}, "timestamp": 1748390405
    }));
    assert_eq!(
        s.command_response(&seed).unwrap()["status"],
        json!("SUCCEEDED")
    );
    let c = s.command("thermostat-001", &id).unwrap();
    assert_eq!(
        (c["status"].clone(), c["timestamp"].clone()),
        (json!("SUCCEEDED"), json!(1748390405))
    );
    assert_eq!(c["result"], json!({"currentTemperature": 24}));
    assert_eq!(s.command_response(&seed).unwrap_err().status, 409);
    // unknown id / other thing -> 404
    let mut other = seed.clone();
    other.insert("executionId".into(), json!("nope"));
    assert_eq!(s.command_response(&other).unwrap_err().status, 404);
    s.register("other");
    let mut wrong_thing = seed.clone();
    wrong_thing.insert("thingName".into(), json!("other"));
    assert_eq!(s.command_response(&wrong_thing).unwrap_err().status, 404);
    // duplicate id refused
    assert_eq!(
        s.create_command("thermostat-001", "x", Value::Null, 0, Some(&id))
            .unwrap_err()
            .status,
        409
    );
    // ttl expiry via the virtual clock
    let id2 = s
        .create_command("thermostat-001", "reboot", json!({}), 30, None)
        .unwrap();
    assert_eq!(id2.len(), 36);
    s.advance_clock(30);
    assert_eq!(
        s.command("thermostat-001", &id2).unwrap()["status"],
        json!("TIMED_OUT")
    );
    let mut late = seed.clone();
    late.insert("executionId".into(), json!(id2));
    assert_eq!(
        s.command_response(&late).unwrap_err().code,
        "InvalidStateTransition"
    );
    // validation
    let id3 = s
        .create_command("thermostat-001", "x", Value::Null, 0, None)
        .unwrap();
    for (k, v) in [
        ("status", json!("DONE")),
        ("status", json!("SENT")),
        ("result", json!(1)),
        ("timestamp", json!(-5)),
    ] {
        let mut b = seed.clone();
        b.insert("executionId".into(), json!(id3));
        b.insert(k.into(), v);
        assert_eq!(s.command_response(&b).unwrap_err().status, 400, "{k}");
    }
    let mut ip = seed.clone();
    ip.insert("executionId".into(), json!(id3));
    ip.insert("status".into(), json!("IN_PROGRESS"));
    assert!(s.command_response(&ip).is_ok());
    ip.insert("status".into(), json!("FAILED"));
    assert!(s.command_response(&ip).is_ok());
}

#[test]
fn jobs_flow() {
    let mut s = st();
    let j1 = s
        .create_job(
            json!({"op": "ota", "v": "2.0.0"}),
            &["thermostat-001"],
            Some("ota"),
            Some("job-1"),
            None,
        )
        .unwrap();
    s.advance_clock(1);
    let j2 = s
        .create_job(
            json!({"op": "reboot"}),
            &["thermostat-001"],
            None,
            None,
            None,
        )
        .unwrap();
    let get = obj(json!({"thingName": "thermostat-001", "clientToken": "req-1"}));
    let r = s.jobs_get(&get).unwrap();
    assert_eq!(r["clientToken"], json!("req-1"));
    assert_eq!(r["inProgressJobs"], json!([]));
    let q = r["queuedJobs"].as_array().unwrap();
    assert_eq!(
        (q[0]["jobId"].clone(), q[1]["jobId"].clone()),
        (json!(j1), json!(j2.clone()))
    );
    assert_eq!(q[0]["versionNumber"], json!(1));
    assert!(q[0].get("startedAt").is_none());

    let sn = obj(json!({"thingName": "thermostat-001", "statusDetails": {"step": "dl"}}));
    let e = s.jobs_start_next(&sn).unwrap();
    assert_eq!(e["execution"]["jobId"], json!("job-1"));
    assert_eq!(e["execution"]["status"], json!("IN_PROGRESS"));
    assert_eq!(e["execution"]["versionNumber"], json!(2));
    assert_eq!(
        e["execution"]["jobDocument"],
        json!({"op": "ota", "v": "2.0.0"})
    );
    assert_eq!(e["execution"]["statusDetails"], json!({"step": "dl"}));
    // in-progress comes first again
    assert_eq!(
        s.jobs_start_next(&sn).unwrap()["execution"]["jobId"],
        json!("job-1")
    );
    let r = s.jobs_get(&get).unwrap();
    assert_eq!(r["inProgressJobs"][0]["jobId"], json!("job-1"));
    assert!(r["inProgressJobs"][0]["startedAt"].is_u64());
    assert_eq!(r["queuedJobs"][0]["jobId"], json!(j2));

    // describe
    let d = s
        .job_describe("job-1", &obj(json!({"thingName": "thermostat-001"})))
        .unwrap();
    assert_eq!(d["execution"]["thingName"], json!("thermostat-001"));
    let d = s
        .job_describe(
            "job-1",
            &obj(json!({"thingName": "thermostat-001", "includeJobDocument": false})),
        )
        .unwrap();
    assert!(d["execution"].get("jobDocument").is_none());
    assert_eq!(
        s.job_describe("nope", &obj(json!({"thingName": "thermostat-001"})))
            .unwrap_err()
            .status,
        404
    );

    // update: stale expectedVersion, then success, then terminal refused
    let upd = |st: &str, ev: u64| {
        obj(
            json!({"thingName": "thermostat-001", "status": st, "statusDetails": {"installedVersion": "2.0.0"}, "expectedVersion": ev, "clientToken": "req-3"}),
        )
    };
    let err = s.job_update("job-1", &upd("SUCCEEDED", 1)).unwrap_err();
    assert_eq!((err.status, err.code), (409, "VersionMismatch"));
    assert_eq!(err.extra["executionState"]["versionNumber"], json!(2));
    assert_eq!(err.extra["executionState"]["status"], json!("IN_PROGRESS"));
    let ok = s.job_update("job-1", &upd("SUCCEEDED", 2)).unwrap();
    assert_eq!(
        ok["executionState"],
        json!({"status": "SUCCEEDED", "statusDetails": {"installedVersion": "2.0.0"}, "versionNumber": 3})
    );
    assert_eq!(ok["jobDocument"]["op"], json!("ota"));
    assert_eq!(ok["clientToken"], json!("req-3"));
    let err = s.job_update("job-1", &upd("IN_PROGRESS", 3)).unwrap_err();
    assert_eq!((err.status, err.code), (409, "InvalidStateTransition"));
    assert_eq!(s.job("job-1").unwrap()["status"], json!("COMPLETED"));

    // next job, then nothing
    assert_eq!(
        s.jobs_start_next(&sn).unwrap()["execution"]["jobId"],
        json!(j2)
    );
    s.job_update(&j2, &upd("FAILED", 2)).unwrap();
    assert_eq!(
        s.jobs_start_next(&obj(json!({"thingName": "thermostat-001"})))
            .unwrap(),
        json!({})
    );
    assert_eq!(
        s.jobs_start_next(&obj(
            json!({"thingName": "thermostat-001", "clientToken": "c"})
        ))
        .unwrap(),
        json!({"clientToken": "c"})
    );
}

#[test]
fn seed_job_update_on_queued_execution() {
    // The seed's update example uses expectedVersion 1: a freshly queued execution.
    let mut s = st();
    let j = s
        .create_job(json!({"op": "x"}), &["thermostat-001"], None, None, None)
        .unwrap();
    let r = s
        .job_update(
            &j,
            &obj(json!({"thingName": "thermostat-001", "status": "SUCCEEDED", "statusDetails": {"installedVersion": "2.0.0"}, "expectedVersion": 1, "clientToken": "req-3"})),
        )
        .unwrap();
    assert_eq!(r["executionState"]["versionNumber"], json!(2));
}

#[test]
fn job_update_validation_and_404() {
    let mut s = st();
    let j = s
        .create_job(json!({}), &["thermostat-001"], None, None, None)
        .unwrap();
    s.register("other");
    let base = json!({"thingName": "thermostat-001", "status": "IN_PROGRESS"});
    for (k, v) in [
        ("status", json!("QUEUED")),
        ("status", json!("CANCELED")),
        ("status", json!("TIMED_OUT")),
        ("status", Value::Null),
        ("statusDetails", json!("x")),
        ("expectedVersion", json!(-1)),
        ("stepTimeoutInMinutes", json!(0)),
        ("stepTimeoutInMinutes", json!(10081)),
        ("clientToken", json!(1)),
    ] {
        let mut b = obj(base.clone());
        b.insert(k.into(), v);
        assert_eq!(s.job_update(&j, &b).unwrap_err().status, 400, "{k}");
    }
    let mut other = obj(base.clone());
    other.insert("thingName".into(), json!("other"));
    assert_eq!(s.job_update(&j, &other).unwrap_err().status, 404);
    assert_eq!(
        s.job_update("missing", &obj(base.clone()))
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(s.job_update("bad id", &obj(base)).unwrap_err().status, 400);
}

#[test]
fn step_timeout_and_job_default_timeout() {
    let mut s = st();
    s.create_job(json!({}), &["thermostat-001"], None, Some("a"), None)
        .unwrap();
    s.jobs_start_next(&obj(
        json!({"thingName": "thermostat-001", "stepTimeoutInMinutes": 1}),
    ))
    .unwrap();
    s.advance_clock(59);
    assert_eq!(
        s.job_execution("a", "thermostat-001").unwrap()["status"],
        json!("IN_PROGRESS")
    );
    s.advance_clock(1);
    let e = s.job_execution("a", "thermostat-001").unwrap();
    assert_eq!(
        (e["status"].clone(), e["versionNumber"].clone()),
        (json!("TIMED_OUT"), json!(3))
    );
    let err = s
        .job_update(
            "a",
            &obj(json!({"thingName": "thermostat-001", "status": "SUCCEEDED"})),
        )
        .unwrap_err();
    assert_eq!(err.code, "InvalidStateTransition");
    assert_eq!(err.extra["executionState"]["status"], json!("TIMED_OUT"));

    s.create_job(json!({}), &["thermostat-001"], None, Some("b"), Some(2))
        .unwrap();
    s.job_update(
        "b",
        &obj(json!({"thingName": "thermostat-001", "status": "IN_PROGRESS"})),
    )
    .unwrap();
    s.advance_clock(120);
    assert_eq!(
        s.job_execution("b", "thermostat-001").unwrap()["status"],
        json!("TIMED_OUT")
    );
    assert_eq!(s.job("b").unwrap()["status"], json!("COMPLETED"));
}

#[test]
fn cancel_job() {
    let mut s = st();
    s.register("t2");
    s.create_job(json!({}), &["thermostat-001", "t2"], None, Some("c"), None)
        .unwrap();
    s.job_update("c", &obj(json!({"thingName": "t2", "status": "SUCCEEDED"})))
        .unwrap();
    assert!(s.cancel_job("c"));
    assert!(!s.cancel_job("zz"));
    assert_eq!(
        s.job_execution("c", "thermostat-001").unwrap()["status"],
        json!("CANCELED")
    );
    assert_eq!(
        s.job_execution("c", "t2").unwrap()["status"],
        json!("SUCCEEDED")
    );
    let err = s
        .job_update(
            "c",
            &obj(json!({"thingName": "thermostat-001", "status": "IN_PROGRESS"})),
        )
        .unwrap_err();
    assert_eq!(err.code, "InvalidStateTransition");
    let r = s
        .jobs_get(&obj(json!({"thingName": "thermostat-001"})))
        .unwrap();
    assert_eq!(r, json!({"inProgressJobs": [], "queuedJobs": []}));
    assert_eq!(s.job("c").unwrap()["status"], json!("CANCELED"));
    assert_eq!(s.job_list().len(), 1);
}

#[test]
fn stats_faults_reset() {
    let mut s = st();
    s.add_fault(FaultRule::new(
        FaultKind::Reset,
        "/api/v1/thing-datas/events",
    ));
    assert!(s
        .begin_api_request(
            "POST /api/v1/thing-datas/shadow/reported",
            "POST",
            "/api/v1/thing-datas/shadow/reported"
        )
        .is_none());
    assert!(s
        .begin_api_request(
            "POST /api/v1/thing-datas/events",
            "POST",
            "/api/v1/thing-datas/events"
        )
        .is_some());
    assert!(s
        .begin_api_request(
            "POST /api/v1/thing-datas/events",
            "POST",
            "/api/v1/thing-datas/events"
        )
        .is_none());
    let st = s.stats();
    assert_eq!(st.total, 3);
    assert_eq!(st.by_endpoint["POST /api/v1/thing-datas/events"], 2);
    s.count_admin_request();
    assert_eq!(s.admin_requests(), 1);
    s.add_fault(FaultRule::status("", 500));
    s.advance_clock(100);
    s.reset();
    assert_eq!(s.stats().total, 0);
    assert!(s.faults().is_empty());
    assert!(s.thing_names().is_empty());
    assert_eq!(s.now(), T0);
}

#[test]
fn uuids() {
    let a = new_uuid();
    let b = new_uuid();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    assert!(crate::validate::is_identifier(&a));
}

#[test]
fn extreme_values_do_not_overflow() {
    let mut s = st();
    let id = s
        .create_command("thermostat-001", "x", Value::Null, u64::MAX, None)
        .unwrap();
    s.advance_clock(u64::MAX);
    s.advance_clock(u64::MAX);
    assert_eq!(s.now(), u64::MAX);
    assert_eq!(s.now_ms(), u64::MAX);
    assert!(s.command("thermostat-001", &id).is_some());
    s.report(&obj(
        json!({"thingName": "thermostat-001", "state": {"reported": {"a": 1}}}),
    ))
    .unwrap();
    assert!(s.get_shadow("thermostat-001").unwrap()["updatedAt"].is_string());
    s.create_job(json!({}), &["thermostat-001"], None, Some("j"), Some(10080))
        .unwrap();
    s.jobs_start_next(&obj(json!({"thingName": "thermostat-001"})))
        .unwrap();
    // the timer saturates at the end of time: no panic is all that is asked
    assert!(s.job_execution("j", "thermostat-001").unwrap()["status"].is_string());
}
