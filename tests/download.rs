//! `Client::download`: resumable, verified downloads over real HTTPS on loopback, from the
//! emulator's `/files` (ranges, ETag/If-Range, mid-body faults, request log), and from a
//! purpose-built server (tests/common/file_server.rs) for what the emulator does not do: a
//! second host, redirects, a paced body.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::file_server::{content, sha256_hex, FileServer};
use fleets::{Client, DownloadOptions, ErrorCode, DOWNLOAD_CHUNK_BYTES};
use fleets_emulator::{Emulator, FaultKind, FaultRule, FileOptions, FileRequest};

const MIB: usize = 1024 * 1024;

fn scratch(name: &str) -> common::scratch::Scratch {
    common::scratch::Scratch::new(&format!("download-{name}"))
}

fn part(dest: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", dest.display()))
}

fn meta(dest: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part.meta", dest.display()))
}

fn no_progress(_: u64, _: u64) -> bool {
    true
}

/// Serves `data` as `name` (ranges on); returns its URL and SHA-256.
fn put(emu: &Emulator, name: &str, data: Vec<u8>) -> (String, String) {
    let info = emu.put_file(name, data, FileOptions::default()).unwrap();
    (info.url, info.sha256)
}

fn client_without_retries(emu: &Emulator) -> Client {
    let mut config = common::config(emu);
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    Client::new(&config).unwrap()
}

/// Cuts the next `times` bodies of `name` cleanly after `bytes` bytes.
fn cut(emu: &Emulator, name: &str, bytes: u64, times: u32) {
    emu.add_fault(
        FaultRule::new(FaultKind::Truncate, &format!("/files/{name}"))
            .after_bytes(bytes)
            .times(times),
    );
}

/// Where a logged request asked to start (`Range: bytes=N-`).
fn range_start(request: &FileRequest) -> Option<u64> {
    request
        .range
        .as_deref()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

#[test]
fn downloads_verifies_and_renames_into_place() {
    let emu = common::emulator();
    let data = content(MIB + 123, 1);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    let client = common::client(&emu);
    let dir = scratch("fresh");
    let dest = dir.join("fw.bin");
    std::fs::write(&dest, b"old firmware").unwrap();

    let mut seen = Vec::new();
    let report = client
        .download(
            &url,
            &sha,
            &dest,
            DownloadOptions::default(),
            |got, total| {
                seen.push((got, total));
                true
            },
        )
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(!part(&dest).exists() && !meta(&dest).exists());
    assert_eq!(report.size, data.len() as u64);
    assert_eq!(report.fetched, data.len() as u64);
    assert_eq!((report.resumed_from, report.restarts), (0, 0));
    assert_eq!(seen.first(), Some(&(0, data.len() as u64)));
    assert_eq!(seen.last(), Some(&(data.len() as u64, data.len() as u64)));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "progress grows");
    assert!(
        seen.windows(2)
            .all(|w| w[1].0 - w[0].0 <= DOWNLOAD_CHUNK_BYTES as u64),
        "one callback per chunk at most"
    );
    let log = emu.file_requests("fw.bin");
    assert_eq!(log.len(), 1);
    assert!(
        log[0].authorization_present,
        "the endpoint's own host gets credentials"
    );
    let stats = client.stats();
    assert_eq!((stats.calls, stats.requests, stats.failures), (1, 1, 0));

    // Already there: nothing is fetched.
    let again = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert!(again.already_present);
    assert_eq!(again.fetched, 0);
    assert_eq!(emu.file_requests("fw.bin").len(), 1);
}

#[test]
fn an_interrupted_download_resumes_with_range_where_it_stopped() {
    let emu = common::emulator();
    let data = content(2 * MIB, 2);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    cut(&emu, "fw.bin", 700_000, 1);
    let client = client_without_retries(&emu);
    let dir = scratch("resume");
    let dest = dir.join("fw.bin");

    let err = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert!(!dest.exists());
    let kept = std::fs::metadata(part(&dest)).unwrap().len();
    assert_eq!(kept, 700_000, "every byte received was kept");

    let report = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(report.resumed_from, kept);
    assert_eq!(report.fetched, data.len() as u64 - kept);
    let log = emu.file_requests("fw.bin");
    assert_eq!(log.len(), 2);
    assert_eq!(range_start(&log[1]), Some(kept));
    assert_eq!(log[1].status, 206);
    assert_eq!(log[1].if_range, Some(emu.file("fw.bin").unwrap().etag));
}

#[test]
fn cuts_are_resumed_within_one_call_when_retries_are_on() {
    let emu = common::emulator();
    let data = content(MIB, 3);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    cut(&emu, "fw.bin", 200_000, 3);
    let client = common::client(&emu); // 3 attempts in a row without progress
    let dir = scratch("within");
    let dest = dir.join("fw.bin");
    let report = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(report.fetched, data.len() as u64, "nothing fetched twice");
    let starts: Vec<_> = emu
        .file_requests("fw.bin")
        .iter()
        .map(range_start)
        .collect();
    assert_eq!(
        starts,
        [None, Some(200_000), Some(400_000), Some(600_000)],
        "each cut resumed where it stopped"
    );
    let stats = client.stats();
    assert_eq!(
        (stats.calls, stats.requests, stats.retries, stats.failures),
        (1, 4, 3, 0)
    );
}

#[test]
fn a_server_without_ranges_means_starting_over_unless_refused() {
    let emu = common::emulator();
    let data = content(MIB, 4);
    let info = emu
        .put_file(
            "fw.bin",
            data.clone(),
            FileOptions {
                ranges: false,
                ..FileOptions::default()
            },
        )
        .unwrap();
    cut(&emu, "fw.bin", 300_000, 1);
    let client = client_without_retries(&emu);
    let dir = scratch("noranges");
    let dest = dir.join("fw.bin");
    client
        .download(
            &info.url,
            &info.sha256,
            &dest,
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(std::fs::metadata(part(&dest)).unwrap().len(), 300_000);

    let refuse = DownloadOptions {
        no_restart: true,
        ..DownloadOptions::default()
    };
    let err = client
        .download(&info.url, &info.sha256, &dest, refuse, no_progress)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RangeNotSupported, "{err}");
    assert_eq!(
        std::fs::metadata(part(&dest)).unwrap().len(),
        300_000,
        "kept for a server that may support ranges later"
    );

    let report = client
        .download(
            &info.url,
            &info.sha256,
            &dest,
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(report.restarts, 1);
    assert_eq!(report.fetched, data.len() as u64);
    assert_eq!(
        emu.file_requests("fw.bin").len(),
        3,
        "the 200 answer to the Range request is used as the fresh download"
    );
}

#[test]
fn a_changed_file_is_not_spliced_onto_the_old_part() {
    let emu = common::emulator();
    let (url, sha_old) = put(&emu, "fw.bin", content(MIB, 5));
    let old_etag = emu.file("fw.bin").unwrap().etag;
    cut(&emu, "fw.bin", 400_000, 1);
    let client = client_without_retries(&emu);
    let dir = scratch("changed");
    let dest = dir.join("fw.bin");
    client
        .download(
            &url,
            &sha_old,
            &dest,
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();

    // Another file under the same name: If-Range sees another ETag and the server sends the
    // whole new file, which does not match the expected hash.
    put(&emu, "fw.bin", content(MIB, 6));
    let err = client
        .download(
            &url,
            &sha_old,
            &dest,
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HashMismatch, "{err}");
    assert!(err.message().contains(&sha_old), "{err}");
    assert!(!dest.exists() && !part(&dest).exists() && !meta(&dest).exists());
    let log = emu.file_requests("fw.bin");
    assert_eq!(log[1].if_range, Some(old_etag));
    assert_eq!(log[1].status, 200);
}

#[test]
fn a_torn_part_file_is_downloaded_again_once() {
    let emu = common::emulator();
    let data = content(MIB, 7);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    cut(&emu, "fw.bin", 500_000, 1);
    let client = client_without_retries(&emu);
    let dir = scratch("torn");
    let dest = dir.join("fw.bin");
    client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap_err();
    // As after a power cut: the file's length survived, its last block did not.
    let mut bytes = std::fs::read(part(&dest)).unwrap();
    let n = bytes.len();
    bytes[n - 4096..].fill(0);
    std::fs::write(part(&dest), bytes).unwrap();

    let report = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(report.restarts, 1);
    let starts: Vec<_> = emu
        .file_requests("fw.bin")
        .iter()
        .map(range_start)
        .collect();
    assert_eq!(starts, [None, Some(500_000), None]);
}

#[test]
fn a_wrong_file_is_refused_and_nothing_is_installed() {
    let emu = common::emulator();
    let (url, _) = put(&emu, "fw.bin", content(300_000, 8));
    let client = common::client(&emu);
    let dir = scratch("wrong");
    let dest = dir.join("fw.bin");
    std::fs::write(&dest, b"old").unwrap();
    let wrong = sha256_hex(b"something else");
    let err = client
        .download(&url, &wrong, &dest, DownloadOptions::default(), no_progress)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HashMismatch);
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert!(!part(&dest).exists() && !meta(&dest).exists());
    assert_eq!(
        emu.file_requests("fw.bin").len(),
        1,
        "a fresh download that fails is not repeated"
    );
    assert_eq!(client.stats().failures, 1);
}

#[test]
fn files_that_need_credentials_get_them_from_the_endpoint() {
    let emu = common::emulator();
    let info = emu
        .put_file(
            "private.bin",
            content(10_000, 13),
            FileOptions {
                auth: true,
                ..FileOptions::default()
            },
        )
        .unwrap();
    let dir = scratch("private");
    let dest = dir.join("private.bin");
    common::client(&emu)
        .download(
            &info.url,
            &info.sha256,
            &dest,
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap();
    assert!(emu.file_requests("private.bin")[0].authorization_present);

    // The same credentials, wrong: 401, and the secret stays out of the message.
    let mut config = fleets::Config::new(emu.endpoint(), emu.api_key(), "not-the-secret").unwrap();
    config.set_ca_pem(emu.ca_pem().unwrap()).unwrap();
    let err = Client::new(&config)
        .unwrap()
        .download(
            &info.url,
            &info.sha256,
            &scratch("private2").join("p"),
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized, "{err}");
    assert!(!err.message().contains("not-the-secret"));
}

/// Two origins (two purpose-built servers under one CA): credentials go to the endpoint's
/// origin, to another one only when asked, never across a redirect.
#[test]
fn credentials_go_only_to_the_endpoint_unless_asked() {
    let endpoint = FileServer::start();
    let other = FileServer::start_with_ca(Arc::clone(&endpoint.ca));
    let data = content(100_000, 9);
    let (url, sha) = other.put("fw.bin", data.clone());
    let client = Client::new(&endpoint.config()).unwrap();
    let dir = scratch("creds");

    client
        .download(
            &url,
            &sha,
            &dir.join("a"),
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap();
    assert!(!other.log()[0].authorization);

    let ask = DownloadOptions {
        send_credentials: true,
        ..DownloadOptions::default()
    };
    client
        .download(&url, &sha, &dir.join("b"), ask, no_progress)
        .unwrap();
    assert!(other.log()[1].authorization);

    // A redirect from the endpoint to the other host: credentials to the endpoint only, even
    // when asked for (they were asked for the URL given, not for where it points).
    let redirect = format!("{}/redirect?to={url}", endpoint.endpoint());
    client
        .download(&redirect, &sha, &dir.join("c"), ask, no_progress)
        .unwrap();
    assert!(endpoint.log()[0].authorization);
    assert!(!other.log()[2].authorization);
    assert_eq!(std::fs::read(dir.join("c")).unwrap(), data);

    // A file that needs credentials on a host that does not get them.
    other.update("fw.bin", |f| f.auth = true);
    let err = client
        .download(
            &url,
            &sha,
            &dir.join("d"),
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized, "{err}");
    assert!(!err.message().contains("files-secret"));
}

#[test]
fn http_statuses_and_arguments() {
    let emu = common::emulator();
    let client = common::client(&emu);
    let dir = scratch("statuses");
    let sha = sha256_hex(b"");
    let missing = format!("{}/files/missing", emu.endpoint());
    let err = client
        .download(
            &missing,
            &sha,
            &dir.join("x"),
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(err.http_status(), 404);

    let before = emu.stats().total;
    for (url, sha, dest) in [
        ("http://example.com/fw.bin", sha.as_str(), dir.join("y")),
        (missing.as_str(), "abc", dir.join("y")),
        (missing.as_str(), sha.as_str(), PathBuf::new()),
    ] {
        let err = client
            .download(url, sha, &dest, DownloadOptions::default(), no_progress)
            .unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::InvalidArgument,
            "{url} {sha} {dest:?}: {err}"
        );
    }
    assert_eq!(emu.stats().total, before, "refused arguments send nothing");

    let (url, sha) = put(&emu, "f", content(10, 1));
    let err = client
        .download(
            &url,
            &sha,
            Path::new("/nonexistent-fleets-dir/f"),
            DownloadOptions::default(),
            no_progress,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LocalFile, "{err}");
    assert!(
        err.message().contains("/nonexistent-fleets-dir/f.part"),
        "{err}"
    );
}

#[test]
fn the_progress_callback_can_stop_a_download_that_then_resumes() {
    let emu = common::emulator();
    let data = content(MIB, 10);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    let client = common::client(&emu);
    let dir = scratch("cancel");
    let dest = dir.join("fw.bin");
    let err = client
        .download(&url, &sha, &dest, DownloadOptions::default(), |got, _| {
            got < 300_000
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Canceled);
    let kept = std::fs::metadata(part(&dest)).unwrap().len();
    assert!(
        (300_000..300_000 + DOWNLOAD_CHUNK_BYTES as u64).contains(&kept),
        "{kept}"
    );
    let report = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(report.resumed_from, kept);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

/// A full disk is `DiskFull`, and the partial file stays for when space is freed. Needs a
/// small tmpfs (root); skipped with a note otherwise.
#[test]
fn a_full_disk_is_disk_full_and_resumes_after_space_is_freed() {
    let dir = scratch("diskfull");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&*dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a 1 MiB tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.to_path_buf());
    let emu = common::emulator();
    let data = content(800_000, 11);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    let client = common::client(&emu);
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![1u8; 600_000]).unwrap();
    let dest = dir.join("fw.bin");
    let err = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DiskFull, "{err}");
    assert!(part(&dest).exists());
    std::fs::remove_file(filler).unwrap();
    let report = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert!(report.resumed_from > 0);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[test]
fn a_stalled_transfer_times_out_and_keeps_what_arrived() {
    let emu = common::emulator();
    let data = content(MIB, 12);
    let (url, sha) = put(&emu, "fw.bin", data.clone());
    emu.add_fault(FaultRule::new(FaultKind::Stall, "/files/fw.bin").after_bytes(250_000));
    let mut config = common::config(&emu);
    config.set_timeouts(Duration::ZERO, Duration::from_millis(300));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    let client = Client::new(&config).unwrap();
    let dir = scratch("stall");
    let dest = dir.join("fw.bin");
    let started = std::time::Instant::now();
    let err = client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::metadata(part(&dest)).unwrap().len(), 250_000);
    client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

/// A slow body (a paced purpose-built server) that takes longer than the request timeout in
/// all: the transfer as a whole has no deadline, each read has.
#[test]
fn a_slow_body_has_no_overall_deadline_only_a_stall_timeout() {
    let server = FileServer::start();
    let data = content(200_000, 12);
    let (url, sha) = server.put("slow.bin", data.clone());
    server.update("slow.bin", |f| {
        f.chunk_delay = Some(Duration::from_millis(20))
    });
    let mut config = server.config();
    config.set_timeouts(Duration::ZERO, Duration::from_millis(150));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    let client = Client::new(&config).unwrap();
    let dir = scratch("slow");
    let dest = dir.join("slow.bin");
    // 13 pieces 20 ms apart: 260 ms, over the 150 ms request timeout.
    client
        .download(&url, &sha, &dest, DownloadOptions::default(), no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}
