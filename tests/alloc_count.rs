//! Heap allocations per steady-state shadow report (issue 16): a counting global allocator,
//! counting only on the thread that makes the calls (the in-process emulator's threads are
//! not counted), over a loop of reports on one kept-alive connection.
//!
//! The ceilings are the measured values: a change that allocates more per report fails
//! here. `cargo test --release --test alloc_count -- --nocapture` prints the counts (bench/
//! reads them from that output for its allocation row).
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CString};

use fleets::ffi::*;
use fleets::ReportOptions;

struct Counting;

/// What one thread allocated while it was counting (tests run in parallel: per thread).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    on: bool,
    allocs: u64,
    reallocs: u64,
    bytes: u64,
}

thread_local! {
    // const-initialised, no destructor: using it never allocates.
    static COUNTS: Cell<Counts> = const {
        Cell::new(Counts { on: false, allocs: 0, reallocs: 0, bytes: 0 })
    };
}

fn count(allocs: u64, reallocs: u64, bytes: usize) {
    let _ = COUNTS.try_with(|c| {
        let mut n = c.get();
        if n.on {
            n.allocs += allocs;
            n.reallocs += reallocs;
            n.bytes += bytes as u64;
            c.set(n);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are atomics and the thread-local flag is read without allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, 0, layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1, 0, layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(0, 1, new_size.saturating_sub(layout.size()));
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 20;
const REPORTS: u64 = 200;
const REPORTED: &str = r#"{"temperature":21.5,"humidity":58,"firmware":"2.0.0","uptime":123456}"#;
const TOKEN: &str = "tok-001";

#[derive(Debug, Clone, Copy)]
struct PerReport {
    allocs: f64,
    reallocs: f64,
    bytes: f64,
}

/// Counts what `report` allocates per call on this thread, after a warm-up (connection,
/// TLS handshake, thread-locals and pools set up).
fn measure(mut report: impl FnMut()) -> PerReport {
    for _ in 0..WARM_UP {
        report();
    }
    COUNTS.with(|c| {
        c.set(Counts {
            on: true,
            ..Counts::default()
        })
    });
    for _ in 0..REPORTS {
        report();
    }
    let n = COUNTS.with(|c| c.replace(Counts::default()));
    let per = |v: u64| v as f64 / REPORTS as f64;
    PerReport {
        allocs: per(n.allocs),
        reallocs: per(n.reallocs),
        bytes: per(n.bytes),
    }
}

/// Ceilings: the values measured (deterministic: a fresh emulator per test, so the same
/// responses every run). Lower them when a change allocates less. Through the C ABI the
/// previous response's buffer is reused (one allocation less); it is regrown when a response
/// is longer than the last one (the shadow version gaining a digit: 2 reallocations in 200).
const MAX_ALLOCS_RUST: f64 = 35.0;
const MAX_REALLOCS_RUST: f64 = 1.0;
const MAX_ALLOCS_C: f64 = 34.0;
const MAX_REALLOCS_C: f64 = 1.01;

#[test]
fn rust_api_steady_state_report() {
    let emu = common::emulator();
    let client = common::client(&emu);
    let options = ReportOptions {
        client_token: Some(TOKEN),
        version: 0,
    };
    let m = measure(|| {
        let response = client
            .shadow_report(common::THING, REPORTED, options)
            .expect("report");
        assert_eq!(response.status(), 200);
    });
    println!(
        "alloc_count rust: {:.2} allocs, {:.2} reallocs, {:.0} bytes allocated per report",
        m.allocs, m.reallocs, m.bytes
    );
    assert_eq!(client.stats().connections, 1, "one kept-alive connection");
    assert!(m.allocs <= MAX_ALLOCS_RUST, "{m:?}");
    assert!(m.reallocs <= MAX_REALLOCS_RUST, "{m:?}");
}

#[test]
fn c_abi_steady_state_report() {
    let emu = common::emulator();
    let c = |s: &str| CString::new(s).unwrap();
    let (thing, reported, token) = (c(common::THING), c(REPORTED), c(TOKEN));
    let client = common::c_client(&emu);
    let mut out = [0 as c_char; 4096];
    let mut len = 0usize;
    let m = measure(|| {
        let code = unsafe {
            fleets_shadow_report(
                client,
                thing.as_ptr(),
                reported.as_ptr(),
                token.as_ptr(),
                0,
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        assert_eq!(code, FLEETS_OK);
    });
    println!(
        "alloc_count c: {:.2} allocs, {:.2} reallocs, {:.0} bytes allocated per report",
        m.allocs, m.reallocs, m.bytes
    );
    unsafe { fleets_client_free(client) };
    assert!(m.allocs <= MAX_ALLOCS_C, "{m:?}");
    assert!(m.reallocs <= MAX_REALLOCS_C, "{m:?}");
}
