//! Fault injection rules for reliability tests.
//!
//! A rule applies to the next `times` device-API requests (`/api/v1/...`) whose path starts
//! with `path_prefix` (and whose method equals `method`, when given). Rules are checked in the
//! order they were added; the first match consumes one use. Faulted requests are still counted
//! in the stats. Admin requests are never faulted.
//!
//! | kind | effect |
//! |---|---|
//! | `delay` | wait `delay_ms`, then handle the request normally |
//! | `status` | answer `status` (default 503) with a JSON error body (or `body`) and an optional `Retry-After`; state untouched |
//! | `reset` | abort the TCP connection with RST (SO_LINGER 0) before any response byte; state untouched |
//! | `truncate` | send a status line and headers with a `Content-Length` larger than the body bytes that follow, then close; state untouched |
//! | `garbage` | send bytes that are not HTTP (inside TLS in HTTPS mode), then close; state untouched |
//! | `stall` | read the request and never answer: hold the connection until the client leaves (or for `delay_ms`, then close); state untouched |
//!
//! Rules match requests on the device port: `/api/v1/...` and `/files/...`. With `after_bytes`,
//! `reset`, `truncate` and `stall` act in the middle of the response body instead: the request
//! is handled normally, its status line, headers and first `after_bytes` body bytes are sent,
//! then the connection is reset, closed cleanly, or goes silent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest delay or stall a rule may ask for (10 minutes).
pub const MAX_DELAY_MS: u64 = 600_000;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Wait `delay_ms`, then answer normally.
    Delay,
    /// Answer an HTTP error status.
    #[default]
    Status,
    /// TCP RST before any response byte.
    Reset,
    /// Headers promise more body bytes than are sent.
    Truncate,
    /// Non-HTTP bytes, then close.
    Garbage,
    /// Never answer.
    Stall,
}

fn one() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A fault injection rule; the JSON form is what `POST /admin/v1/faults` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Requests whose path starts with this prefix match ("" matches every `/api/v1` request).
    #[serde(default)]
    pub path_prefix: String,
    /// The fault.
    pub kind: FaultKind,
    /// `delay`: how long to wait (required). `stall`: close after this long (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `status`: the status to answer (default 503). `truncate`: the status line (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `status`: add `Retry-After` with this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// `status`: send `Retry-After` as an HTTP-date (now + `retry_after_s`) instead of seconds.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_after_date: bool,
    /// `status`/`truncate`: response body (a JSON string is sent as raw text/plain bytes, any
    /// other JSON value as application/json). `garbage`: the bytes to send, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How many matching requests this rule applies to; 0 = every one until cleared.
    #[serde(default = "one")]
    pub times: u32,
    /// Only requests with this HTTP method match (any method when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `reset`/`truncate`/`stall`: handle the request normally and act after this many body
    /// bytes of the response instead of before the response (a shorter body is sent complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<u64>,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            path_prefix: String::new(),
            kind: FaultKind::Status,
            delay_ms: None,
            status: None,
            retry_after_s: None,
            retry_after_date: false,
            body: None,
            times: 1,
            method: None,
            after_bytes: None,
        }
    }
}

impl FaultRule {
    /// A rule of `kind` for the next request under `path_prefix`.
    pub fn new(kind: FaultKind, path_prefix: &str) -> Self {
        FaultRule {
            kind,
            path_prefix: path_prefix.to_owned(),
            ..Default::default()
        }
    }

    /// A `status` rule answering `status` for the next request under `path_prefix`.
    pub fn status(path_prefix: &str, status: u16) -> Self {
        FaultRule {
            status: Some(status),
            ..Self::new(FaultKind::Status, path_prefix)
        }
    }

    /// Sets `times`.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Sets `delay_ms`.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Sets `retry_after_s`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_s = Some(secs);
        self
    }

    /// Sets `after_bytes`.
    pub fn after_bytes(mut self, n: u64) -> Self {
        self.after_bytes = Some(n);
        self
    }

    /// Checks the rule's parameters.
    pub fn validate(&self) -> Result<(), String> {
        if self.after_bytes.is_some()
            && !matches!(
                self.kind,
                FaultKind::Reset | FaultKind::Truncate | FaultKind::Stall
            )
        {
            return Err("after_bytes applies to kinds reset, truncate and stall only".into());
        }
        if self.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
            return Err(format!("delay_ms must be at most {MAX_DELAY_MS}"));
        }
        match self.kind {
            FaultKind::Delay if self.delay_ms.is_none() => {
                return Err("kind delay needs delay_ms".into())
            }
            FaultKind::Status | FaultKind::Truncate => {
                if let Some(s) = self.status {
                    if !(200..=599).contains(&s) {
                        return Err("status must be within 200..=599".into());
                    }
                }
            }
            FaultKind::Garbage if self.body.as_ref().is_some_and(|b| !b.is_string()) => {
                return Err("garbage body must be a string".into());
            }
            _ => {}
        }
        if self.retry_after_date && self.retry_after_s.is_none() {
            return Err("retry_after_date needs retry_after_s".into());
        }
        Ok(())
    }

    /// True when this rule applies to the request.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

/// The active rules with their remaining uses.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    rules: Vec<(FaultRule, u32)>,
}

impl Faults {
    /// Adds a rule at the end.
    pub fn add(&mut self, rule: FaultRule) {
        let n = rule.times;
        self.rules.push((rule, n));
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The active rules, `times` showing the remaining uses.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules
            .iter()
            .map(|(r, left)| FaultRule {
                times: *left,
                ..r.clone()
            })
            .collect()
    }

    /// Consumes one use of the first matching rule and returns it.
    pub fn take(&mut self, method: &str, path: &str) -> Option<FaultRule> {
        let i = self
            .rules
            .iter()
            .position(|(r, _)| r.matches(method, path))?;
        let rule = self.rules[i].0.clone();
        if rule.times != 0 {
            self.rules[i].1 -= 1;
            if self.rules[i].1 == 0 {
                self.rules.remove(i);
            }
        }
        Some(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_form_round_trips() {
        let r: FaultRule = serde_json::from_value(json!({
            "path_prefix": "/api/v1/thing-datas/events", "kind": "status", "status": 429,
            "retry_after_s": 2, "retry_after_date": true, "times": 3
        }))
        .unwrap();
        assert_eq!(r.kind, FaultKind::Status);
        assert_eq!(
            (r.status, r.retry_after_s, r.retry_after_date, r.times),
            (Some(429), Some(2), true, 3)
        );
        let back: FaultRule = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let d: FaultRule = serde_json::from_value(json!({"kind": "reset"})).unwrap();
        assert_eq!((d.times, d.path_prefix.as_str()), (1, ""));
        assert!(serde_json::from_value::<FaultRule>(json!({"kind": "explode"})).is_err());
        assert!(serde_json::from_value::<FaultRule>(json!({"kind": "reset", "typo": 1})).is_err());
    }

    #[test]
    fn validation() {
        assert!(FaultRule::new(FaultKind::Delay, "").validate().is_err());
        assert!(FaultRule::new(FaultKind::Delay, "")
            .delay_ms(5)
            .validate()
            .is_ok());
        assert!(FaultRule::status("", 100).validate().is_err());
        assert!(FaultRule::status("", 200).validate().is_ok());
        assert!(FaultRule::new(FaultKind::Stall, "")
            .delay_ms(MAX_DELAY_MS + 1)
            .validate()
            .is_err());
        let mut g = FaultRule::new(FaultKind::Garbage, "");
        g.body = Some(json!(1));
        assert!(g.validate().is_err());
        let mut ra = FaultRule::status("", 503);
        ra.retry_after_date = true;
        assert!(ra.validate().is_err());
        for k in [FaultKind::Reset, FaultKind::Truncate, FaultKind::Stall] {
            assert!(FaultRule::new(k, "/files/")
                .after_bytes(0)
                .validate()
                .is_ok());
        }
        for k in [FaultKind::Delay, FaultKind::Status, FaultKind::Garbage] {
            let r = FaultRule::new(k, "/files/").delay_ms(1).after_bytes(10);
            assert!(r.validate().is_err(), "{k:?}");
        }
    }

    #[test]
    fn take_consumes_in_order() {
        let mut f = Faults::default();
        f.add(FaultRule::status("/api/v1/thing-datas/events", 500).times(2));
        f.add(FaultRule::new(FaultKind::Reset, "/api/v1/"));
        assert_eq!(
            f.take("POST", "/api/v1/thing-datas/events").unwrap().status,
            Some(500)
        );
        assert_eq!(f.list()[0].times, 1);
        assert_eq!(
            f.take("POST", "/api/v1/thing-datas/events").unwrap().status,
            Some(500)
        );
        assert_eq!(
            f.take("POST", "/api/v1/thing-datas/events").unwrap().kind,
            FaultKind::Reset
        );
        assert!(f.take("POST", "/api/v1/thing-datas/events").is_none());
        assert!(f.list().is_empty());
    }

    #[test]
    fn unlimited_and_method_filter() {
        let mut f = Faults::default();
        let mut r = FaultRule::status("/api/v1/thing-datas/jobs", 503).times(0);
        r.method = Some("post".into());
        f.add(r);
        for _ in 0..5 {
            assert!(f.take("POST", "/api/v1/thing-datas/jobs/get").is_some());
        }
        assert!(f.take("GET", "/api/v1/thing-datas/jobs/get").is_none());
        assert!(f.take("POST", "/api/v1/thing-datas/events").is_none());
        f.clear();
        assert!(f.take("POST", "/api/v1/thing-datas/jobs/get").is_none());
    }
}
