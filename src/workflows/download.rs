//! Resumable, verified downloads (firmware images and other large files).
//!
//! `Client::download` fetches a URL into `dest` through the client's own HTTP agent (same
//! TLS trust, client certificate, proxy and timeouts; TLS verification cannot be turned off):
//! - the bytes go to `<dest>.part`, with `<dest>.part.meta` remembering which content they
//!   belong to (the expected SHA-256 and the server's validators); after an interruption, the
//!   next call re-reads what is there and asks for the rest with `Range` (and `If-Range`);
//! - memory stays bounded: one fixed [`DOWNLOAD_CHUNK_BYTES`] buffer, whatever the size;
//! - the SHA-256 is checked before `<dest>.part` is synced and renamed over `dest` and the
//!   directory is synced: `dest` holds its old content or the complete verified new one;
//! - credentials go only to the configured endpoint's origin (or, when asked, to the URL the
//!   caller gave), never to a host a redirect points at.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ring::digest;
use serde::{Deserialize, Serialize};
use ureq::http::{header, HeaderValue, Uri};

use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::logging::{self, LogLevel};
use crate::response::{self, ResponseHeaders};
use crate::retry;
use crate::stats::Counters;
use crate::workflows::storage;

/// Size of the one buffer a download reads into, hashes and writes from. At most this much
/// that was received but not yet written is lost when the process dies.
pub const DOWNLOAD_CHUNK_BYTES: usize = 64 * 1024;
/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;
/// Times a download may start over from byte 0 within one call (the server ignored `Range`,
/// the file changed, or a resumed file did not verify).
const MAX_RESTARTS: u32 = 2;
/// Error bodies are read up to this size for the message.
const ERROR_BODY_LIMIT: usize = 8 * 1024;
/// `<dest>.part.meta` is tiny; anything larger is not ours.
const META_LIMIT: u64 = 16 * 1024;

/// How [`Client::download`] may behave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Send the API key and secret to the URL's host even when it is not the configured
    /// endpoint's (scheme, host and port). Never sent to a host reached by a redirect.
    pub send_credentials: bool,
    /// Fail with `RangeNotSupported` instead of starting over from byte 0 when a resumed
    /// download meets a server that answers `Range` with the whole file.
    pub no_restart: bool,
}

/// What a successful [`Client::download`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Size of the verified file.
    pub size: u64,
    /// Body bytes received over the network by this call.
    pub fetched: u64,
    /// Bytes of an earlier, interrupted download that this call kept (0: started afresh).
    pub resumed_from: u64,
    /// Times this call started over from byte 0.
    pub restarts: u32,
    /// `dest` already held the expected content: nothing was fetched.
    pub already_present: bool,
}

/// What `<dest>.part.meta` records about the partial file next to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct PartMeta {
    /// Lower-case hex SHA-256 the content must have.
    sha256: String,
    /// Total size announced by the server, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
}

impl PartMeta {
    /// The `If-Range` validator: a strong ETag, else the Last-Modified date.
    fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(tag) if !tag.starts_with("W/") => Some(tag),
            _ => self.last_modified.as_deref(),
        }
    }
}

/// `scheme://host:port`, what decides where credentials may go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        let port = authority.port_u16().unwrap_or(match scheme.as_str() {
            "http" => 80,
            _ => 443,
        });
        Some(Origin {
            host: authority.host().to_ascii_lowercase(),
            scheme,
            port,
        })
    }

    fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare == "localhost"
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// A URL a download may fetch: `https://`, or `http://` to a loopback host (as for the
/// endpoint), without credentials in it.
fn checked_url(text: &str, what: &str) -> Result<(Uri, Origin)> {
    let bad = |why: &str| Error::invalid_argument(format!("{what} {why}"));
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be printable ASCII without spaces"));
    }
    let uri: Uri = text.parse().map_err(|_| bad("is not a URL"))?;
    let origin = Origin::of(&uri).ok_or_else(|| bad("must be an absolute https:// URL"))?;
    if origin.host.is_empty() {
        return Err(bad("has no host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("must not carry credentials"));
    }
    match origin.scheme.as_str() {
        "https" => {}
        "http" if origin.is_loopback() => {}
        "http" => {
            return Err(bad(
                "uses http://, which is allowed only for loopback hosts",
            ))
        }
        _ => return Err(bad("must use https://")),
    }
    Ok((uri, origin))
}

/// The expected SHA-256 from 64 hex digits (either case).
fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    let bad =
        || Error::invalid_argument("expected_sha256_hex must be 64 hexadecimal digits (a SHA-256)");
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).ok_or_else(bad);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a stream, computed on a helper thread while the next chunk is received: the
/// hash is the largest CPU cost of a download (about 1 GB/s even with the SHA extensions),
/// and with a second core it then costs no time. Two chunk buffers circulate: the one being
/// filled and the one being hashed, so memory stays bounded.
struct HashPipe {
    to_worker: Option<mpsc::SyncSender<(Vec<u8>, usize)>>,
    from_worker: mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<digest::Context>>,
    spare: Option<Vec<u8>>,
    /// The second buffer has been made (on the first chunk).
    started: bool,
}

impl HashPipe {
    /// A pipe that goes on from `state` (the hash of what the partial file holds already).
    fn start(state: digest::Context) -> Result<HashPipe> {
        let (to_worker, jobs) = mpsc::sync_channel::<(Vec<u8>, usize)>(1);
        let (done, from_worker) = mpsc::sync_channel::<Vec<u8>>(2);
        let worker = std::thread::Builder::new()
            .name("fleets-sha256".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut state = state;
                for (buffer, n) in jobs {
                    state.update(&buffer[..n]);
                    if done.send(buffer).is_err() {
                        break;
                    }
                }
                state
            })
            .map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("cannot start the hashing thread: {e}"),
                )
            })?;
        Ok(HashPipe {
            to_worker: Some(to_worker),
            from_worker,
            worker: Some(worker),
            spare: None,
            started: false,
        })
    }

    /// Hands `buffer[..n]` to the worker and returns a buffer to fill next.
    fn submit(&mut self, buffer: Vec<u8>, n: usize) -> Result<Vec<u8>> {
        let gone = || Error::new(ErrorCode::Internal, "the hashing thread stopped");
        self.to_worker
            .as_ref()
            .ok_or_else(gone)?
            .send((buffer, n))
            .map_err(|_| gone())?;
        if !self.started {
            self.started = true;
            self.spare = Some(vec![0u8; DOWNLOAD_CHUNK_BYTES]);
        }
        match self.spare.take() {
            Some(buffer) => Ok(buffer),
            None => self.from_worker.recv().map_err(|_| gone()),
        }
    }

    /// The hash of everything submitted.
    fn finish(mut self) -> Result<digest::Digest> {
        drop(self.to_worker.take());
        self.worker
            .take()
            .and_then(|worker| worker.join().ok())
            .map(digest::Context::finish)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "the hashing thread failed"))
    }
}

/// The partial file being written, with the hash of what it holds.
struct Part {
    file: File,
    path: PathBuf,
    offset: u64,
    /// `None` once finished (by `verify`).
    hash: Option<HashPipe>,
    /// Some of the bytes came from before a resume: a hash mismatch may be the mixing of two
    /// versions (or a torn write after a power cut) rather than a bad file.
    resumed: bool,
}

impl Part {
    /// Empties the file: the download starts over from byte 0.
    fn reset(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| storage::failure("truncating", &self.path, &e))?;
        self.offset = 0;
        self.hash = Some(HashPipe::start(digest::Context::new(&digest::SHA256))?);
        self.resumed = false;
        Ok(())
    }

    /// Writes `buffer[..n]`, hands it to the hash and puts a buffer to fill next in its place.
    fn append(&mut self, buffer: &mut Vec<u8>, n: usize) -> Result<()> {
        self.file
            .write_all(&buffer[..n])
            .map_err(|e| storage::failure("writing", &self.path, &e))?;
        self.offset += n as u64;
        let hash = self
            .hash
            .as_mut()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "the hash was already finished"))?;
        *buffer = hash.submit(std::mem::take(buffer), n)?;
        Ok(())
    }
}

/// How a fetch ended when it did not fail.
enum Fetched {
    /// The body ended at the expected size (or at its end when the size is unknown).
    Complete,
    /// The partial file was emptied: request again from byte 0.
    Restart,
}

/// One download in progress.
struct Download<'c, P> {
    client: &'c Client,
    url: Uri,
    url_origin: Origin,
    endpoint_origin: Option<Origin>,
    expected: [u8; 32],
    expected_hex: String,
    dest: PathBuf,
    meta_path: PathBuf,
    options: DownloadOptions,
    progress: P,
    report: DownloadReport,
    meta: PartMeta,
    buffer: Vec<u8>,
}

impl Client {
    /// Downloads `url` into `dest`, verified against `expected_sha256_hex`, resuming an
    /// earlier interrupted download of the same content. See the module documentation.
    ///
    /// `progress(received, total)` is called when the transfer starts (with what an earlier
    /// call already had) and after every chunk written; `total` is 0 when the server did not
    /// say. Returning `false` stops the download with `Canceled` (the partial file stays).
    ///
    /// Transient failures (connection lost, timeout, 429, 502-504) are resumed within the
    /// call, up to the client's retry attempts in a row without progress. Each read waits at
    /// most the client's request timeout; there is no deadline for the whole download.
    ///
    /// Errors: `InvalidArgument` (URL, hash, path), `HashMismatch` (after one fresh download
    /// when the file had been resumed), `RangeNotSupported` (with
    /// [`DownloadOptions::no_restart`]), `DiskFull`, `Storage`, `Canceled`, and the codes of
    /// the transport and of HTTP statuses.
    pub fn download(
        &self,
        url: &str,
        expected_sha256_hex: &str,
        dest: &Path,
        options: DownloadOptions,
        progress: impl FnMut(u64, u64) -> bool,
    ) -> Result<DownloadReport> {
        let (url, url_origin) = checked_url(url, "url")?;
        let expected = parse_sha256(expected_sha256_hex)?;
        if dest.as_os_str().is_empty() || dest.file_name().is_none() {
            return Err(Error::invalid_argument("dest_path must name a file"));
        }
        let endpoint_origin = self
            .endpoint_base()
            .parse::<Uri>()
            .ok()
            .and_then(|u| Origin::of(&u));
        let mut download = Download {
            client: self,
            url,
            url_origin,
            endpoint_origin,
            expected,
            expected_hex: to_hex(&expected),
            dest: dest.to_owned(),
            meta_path: storage::with_suffix(dest, ".part.meta"),
            options,
            progress,
            report: DownloadReport::default(),
            meta: PartMeta::default(),
            buffer: vec![0u8; DOWNLOAD_CHUNK_BYTES],
        };
        // Counted as one call, like a ThingDatas call, whatever the requests it takes.
        let started = std::time::Instant::now();
        let counters = self.counters();
        Counters::add(&counters.calls, 1);
        let outcome = download.run().map_err(|e| self.clean_error(e));
        counters.last_latency_ns.store(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        match &outcome {
            Ok(report) => logging::log(
                LogLevel::Debug,
                format_args!(
                    "download {}: {} bytes verified ({} fetched, {} kept from before) in {:.1} ms",
                    download.url.path(),
                    report.size,
                    report.fetched,
                    report.resumed_from,
                    started.elapsed().as_secs_f64() * 1000.0
                ),
            ),
            Err(error) => {
                Counters::add(&counters.failures, 1);
                logging::log(
                    LogLevel::Warn,
                    format_args!("download {} failed: {error}", download.url.path()),
                );
            }
        }
        outcome
    }
}

impl<P: FnMut(u64, u64) -> bool> Download<'_, P> {
    fn run(&mut self) -> Result<DownloadReport> {
        if let Some(size) = self.already_in_place()? {
            storage::remove(&storage::with_suffix(&self.dest, ".part"))?;
            storage::remove(&self.meta_path)?;
            self.report.size = size;
            self.report.already_present = true;
            self.notify(size, size)?;
            return Ok(self.report.clone());
        }
        let mut part = self.open_part()?;
        self.report.resumed_from = part.offset;
        if part.offset > 0 && self.meta.size == Some(part.offset) {
            // Complete before an interruption: only the rename was missing.
            if self.verify(&mut part)? {
                return self.finish(part);
            }
        }
        let mut failures = 0u32;
        let mut fresh_connection = false;
        let mut resent_after_stale = false;
        loop {
            let before = part.offset;
            match self.fetch(&mut part, fresh_connection) {
                Ok(Fetched::Complete) => {
                    if self.verify(&mut part)? {
                        return self.finish(part);
                    }
                }
                Ok(Fetched::Restart) => {
                    fresh_connection = false;
                    continue;
                }
                Err(error) => {
                    fresh_connection = false;
                    if error.is_stale_connection() && !resent_after_stale {
                        Counters::add(&self.client.counters().stale_resends, 1);
                        resent_after_stale = true;
                        fresh_connection = true;
                        continue;
                    }
                    if !retryable(&error) {
                        return Err(error);
                    }
                    if part.offset > before {
                        failures = 0;
                    }
                    failures += 1;
                    let policy = self.client.retry_policy();
                    if failures >= policy.max_attempts() {
                        return Err(error.after_attempts(failures));
                    }
                    let wait = policy.delay(failures, error.retry_after());
                    Counters::add(&self.client.counters().retries, 1);
                    if logging::enabled(LogLevel::Info) {
                        let error = self.client.clean_error(error);
                        logging::log(
                            LogLevel::Info,
                            format_args!(
                                "download {}: {error}; resuming at byte {} in {} ms",
                                self.url.path(),
                                part.offset,
                                wait.as_millis()
                            ),
                        );
                    }
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// `Some(size)` when `dest` already holds the expected content.
    fn already_in_place(&mut self) -> Result<Option<u64>> {
        let mut file = match File::open(&self.dest) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage::failure("opening", &self.dest, &e)),
        };
        if !file
            .metadata()
            .map_err(|e| storage::failure("reading", &self.dest, &e))?
            .is_file()
        {
            return Err(Error::invalid_argument(format!(
                "dest_path {} is not a regular file",
                self.dest.display()
            )));
        }
        let mut hasher = digest::Context::new(&digest::SHA256);
        let size = hash_file(&mut file, &self.dest, &mut hasher, &mut self.buffer)?;
        Ok((hasher.finish().as_ref() == self.expected).then_some(size))
    }

    /// Opens `<dest>.part`, keeping its content when the meta file says it is a prefix of the
    /// expected content, and hashes what is kept.
    fn open_part(&mut self) -> Result<Part> {
        let path = storage::with_suffix(&self.dest, ".part");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| storage::failure("opening", &path, &e))?;
        let meta = storage::read_small(&self.meta_path, META_LIMIT)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<PartMeta>(&bytes).ok());
        let mut state = digest::Context::new(&digest::SHA256);
        let mut length = 0;
        let mut file = file;
        let kept = match meta {
            Some(meta) if meta.sha256 == self.expected_hex => {
                self.meta = meta;
                length = hash_file(&mut file, &path, &mut state, &mut self.buffer)?;
                self.meta.size.is_none_or(|size| length <= size)
            }
            _ => false,
        };
        if !kept {
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
                .map_err(|e| storage::failure("truncating", &path, &e))?;
            state = digest::Context::new(&digest::SHA256);
            length = 0;
        }
        Ok(Part {
            file,
            path,
            offset: length,
            hash: Some(HashPipe::start(state)?),
            resumed: length > 0,
        })
    }

    /// Checks the hash of a complete part. On a mismatch after a resume, empties the part so
    /// that the caller downloads it once more from the start; otherwise a mismatch is final.
    fn verify(&mut self, part: &mut Part) -> Result<bool> {
        let actual = part
            .hash
            .take()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "the hash was already finished"))?
            .finish()?;
        if actual.as_ref() == self.expected {
            return Ok(true);
        }
        if part.resumed && !self.options.no_restart && self.report.restarts < MAX_RESTARTS {
            self.restart(part)?;
            return Ok(false);
        }
        let size = part.offset;
        storage::remove(&part.path)?;
        storage::remove(&self.meta_path)?;
        Err(Error::new(
            ErrorCode::HashMismatch,
            format!(
                "downloaded file ({size} bytes) has SHA-256 {}, expected {}; it was discarded",
                to_hex(actual.as_ref()),
                self.expected_hex
            ),
        ))
    }

    fn restart(&mut self, part: &mut Part) -> Result<()> {
        if self.report.restarts >= MAX_RESTARTS {
            return Err(Error::new(
                ErrorCode::BadResponse,
                format!("the download started over {MAX_RESTARTS} times; giving up"),
            ));
        }
        self.report.restarts += 1;
        storage::remove(&self.meta_path)?;
        self.meta = PartMeta::default();
        part.reset()
    }

    /// Syncs the verified part, renames it over `dest` and syncs the directory.
    fn finish(&mut self, part: Part) -> Result<DownloadReport> {
        part.file
            .sync_all()
            .map_err(|e| storage::failure("syncing", &part.path, &e))?;
        std::fs::rename(&part.path, &self.dest)
            .map_err(|e| storage::failure("renaming into", &self.dest, &e))?;
        storage::sync_dir(storage::parent_dir(&self.dest))?;
        storage::remove(&self.meta_path)?;
        self.report.size = part.offset;
        Ok(self.report.clone())
    }

    /// One request (following redirects) and its body into the part.
    fn fetch(&mut self, part: &mut Part, fresh_connection: bool) -> Result<Fetched> {
        let mut response = self.request(part.offset, fresh_connection)?;
        let status = response.status().as_u16();
        let total = match status {
            206 if part.offset > 0 => {
                let (start, total) = content_range(response.headers()).ok_or_else(|| {
                    Error::new(
                        ErrorCode::BadResponse,
                        "HTTP 206 without a usable Content-Range header",
                    )
                })?;
                if start != part.offset {
                    return Err(Error::new(
                        ErrorCode::BadResponse,
                        format!(
                            "asked for bytes from {}, the server sent bytes from {start}",
                            part.offset
                        ),
                    ));
                }
                if total.is_some() && self.meta.size.is_some() && total != self.meta.size {
                    // Another file behind the same URL (a server without validators).
                    self.restart_or_refuse(part, "the file's size changed")?;
                    return Ok(Fetched::Restart);
                }
                part.resumed = true;
                total
            }
            206 => {
                return Err(Error::new(
                    ErrorCode::BadResponse,
                    "HTTP 206 partial content to a request without Range",
                ))
            }
            200 => {
                if part.offset > 0 {
                    // No range support, or If-Range found the file changed: this response
                    // is the whole file, so start over with it.
                    self.restart_or_refuse(
                        part,
                        "the server answered the Range request with the whole file",
                    )?;
                }
                response.body().content_length()
            }
            416 if part.offset > 0 => {
                self.restart_or_refuse(part, "the server could not serve the rest (HTTP 416)")?;
                return Ok(Fetched::Restart);
            }
            _ => return Err(error_response(&mut response)),
        };
        if part.offset == 0 {
            self.meta = PartMeta {
                sha256: self.expected_hex.clone(),
                size: total,
                etag: header_text(response.headers(), header::ETAG),
                last_modified: header_text(response.headers(), header::LAST_MODIFIED),
            };
            let bytes = serde_json::to_vec(&self.meta).map_err(|e| {
                Error::new(ErrorCode::Internal, format!("encoding download state: {e}"))
            })?;
            storage::write_atomic(&self.meta_path, &bytes)?;
        }
        self.notify(part.offset, total.unwrap_or(0))?;
        let mut reader = response.body_mut().as_reader();
        loop {
            let mut filled = 0;
            while filled < self.buffer.len() {
                match reader.read(&mut self.buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // Keep what arrived before the failure.
                        self.report.fetched += filled as u64;
                        part.append(&mut self.buffer, filled)?;
                        return Err(response::transport_error(ureq::Error::from(e), usize::MAX));
                    }
                }
            }
            if filled == 0 {
                break;
            }
            self.report.fetched += filled as u64;
            part.append(&mut self.buffer, filled)?;
            if total.is_some_and(|total| part.offset > total) {
                return Err(Error::new(
                    ErrorCode::BadResponse,
                    "the server sent more bytes than the file's announced size",
                ));
            }
            self.notify(part.offset, total.unwrap_or(0))?;
        }
        match total {
            Some(total) if part.offset < total => Err(Error::new(
                ErrorCode::Io,
                format!(
                    "connection: the body ended after {} of {total} bytes",
                    part.offset
                ),
            )),
            _ => Ok(Fetched::Complete),
        }
    }

    fn restart_or_refuse(&mut self, part: &mut Part, why: &str) -> Result<()> {
        if self.options.no_restart {
            return Err(Error::new(
                ErrorCode::RangeNotSupported,
                format!(
                    "cannot resume the download at byte {}: {why}; the partial file is kept",
                    part.offset
                ),
            ));
        }
        self.restart(part)
    }

    fn notify(&mut self, received: u64, total: u64) -> Result<()> {
        if (self.progress)(received, total) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Canceled,
                format!("download canceled by the progress callback at byte {received}"),
            ))
        }
    }

    /// A GET for the rest of the file, following redirects.
    fn request(
        &self,
        offset: u64,
        fresh_connection: bool,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut uri = self.url.clone();
        let mut origin = self.url_origin.clone();
        for hop in 0..=MAX_REDIRECTS {
            let credentials = self.endpoint_origin.as_ref() == Some(&origin)
                || (hop == 0 && self.options.send_credentials);
            let response = self.get(&uri, &origin, credentials, offset, fresh_connection)?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) || hop == MAX_REDIRECTS {
                return Ok(response);
            }
            let Some(location) = header_text(response.headers(), header::LOCATION) else {
                return Ok(response);
            };
            drop(response);
            let next = resolve_location(&uri, &location)?;
            (uri, origin) = checked_url(&next, "redirect target")?;
            if self.url_origin.scheme == "https" && origin.scheme != "https" {
                return Err(Error::new(
                    ErrorCode::Http,
                    format!("redirect from https:// to {next} refused"),
                ));
            }
        }
        unreachable!("the loop returns on its last hop")
    }

    fn get(
        &self,
        uri: &Uri,
        origin: &Origin,
        credentials: bool,
        offset: u64,
        fresh_connection: bool,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let client = self.client;
        // Only the path goes to the log: a query may hold a presigned URL's signature.
        Counters::add(&client.counters().requests, 1);
        logging::log(
            LogLevel::Debug,
            format_args!("GET {} from byte {offset}", uri.path()),
        );
        let mut request = client
            .agent()
            .get(uri.clone())
            .header(header::ACCEPT, "*/*");
        if credentials {
            request = request.header(header::AUTHORIZATION, client.authorization().clone());
        }
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
            if let Some(validator) = self.meta.if_range() {
                if let Ok(value) = HeaderValue::from_str(validator) {
                    request = request.header(header::IF_RANGE, value);
                }
            }
        }
        // No deadline for the whole transfer (a large file on a slow link takes what it
        // takes); instead every read and write must make progress within the request timeout.
        let stall = client.request_timeout();
        let mut config = request
            .config()
            .https_only(origin.scheme == "https")
            .timeout_global(None)
            .timeout_per_read(Some(stall))
            .timeout_per_write(Some(stall))
            .max_idle_age(if fresh_connection {
                Duration::ZERO
            } else {
                crate::MAX_IDLE_AGE
            });
        if origin.is_loopback() {
            // As for the endpoint: a proxy would resolve a loopback name on its own host.
            config = config.proxy(None);
        }
        config
            .build()
            .call()
            .map_err(|e| response::transport_error(e, client.max_response_bytes()))
    }
}

fn retryable(error: &Error) -> bool {
    matches!(
        error.code(),
        ErrorCode::Connect | ErrorCode::Timeout | ErrorCode::Io
    ) || error.is_transient()
}

/// Reads the whole file into `hasher` through `buffer`; returns its length.
fn hash_file(
    file: &mut File,
    path: &Path,
    hasher: &mut digest::Context,
    buffer: &mut [u8],
) -> Result<u64> {
    let mut length = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => return Ok(length),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                length += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(storage::failure("reading", path, &e)),
        }
    }
}

fn header_text(headers: &ureq::http::HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`): the start and the total.
fn content_range(headers: &ureq::http::HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some((start, total))
}

/// An absolute URL for a `Location` header: absolute, or absolute-path on the same origin.
fn resolve_location(base: &Uri, location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.to_owned());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme = base.scheme_str().unwrap_or("https");
        let authority = base.authority().map_or("", |a| a.as_str());
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    Err(Error::new(
        ErrorCode::Http,
        format!("redirect to a relative location {location:?} is not supported"),
    ))
}

/// The error for a status that is neither the file nor a redirect we follow.
fn error_response(response: &mut ureq::http::Response<ureq::Body>) -> Error {
    let status = response.status().as_u16();
    let headers = ResponseHeaders {
        location: header_text(response.headers(), header::LOCATION),
        retry_after: header_text(response.headers(), header::RETRY_AFTER)
            .as_deref()
            .and_then(retry::parse_retry_after),
    };
    let mut body = Vec::new();
    let _ = response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT as u64)
        .reader()
        .take(ERROR_BODY_LIMIT as u64)
        .read_to_end(&mut body);
    match response::classify(status, &headers, body) {
        Err(error) => error,
        Ok(_) => Error::new(
            ErrorCode::Http,
            format!("HTTP {status}: not a file download response"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_endpoint_rules() {
        assert!(checked_url("https://cdn.example.com/fw.bin?sig=abc", "url").is_ok());
        assert!(checked_url("http://127.0.0.1:8080/fw.bin", "url").is_ok());
        for bad in [
            "http://cdn.example.com/fw.bin",
            "ftp://cdn.example.com/fw.bin",
            "https://user:pw@cdn.example.com/fw.bin",
            "/relative/fw.bin",
            "https://cdn.example.com/a b",
            "",
        ] {
            let err = checked_url(bad, "url").unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}");
            assert!(!err.message().contains("pw"), "{err}");
        }
        let (_, a) = checked_url("https://Host.example/x", "url").unwrap();
        let (_, b) = checked_url("https://host.example:443/y", "url").unwrap();
        assert_eq!(a, b, "same origin: case and default port");
        let (_, c) = checked_url("https://host.example:8443/x", "url").unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn sha256_hex_is_strict() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let parsed = parse_sha256(hex).unwrap();
        assert_eq!(parsed, parse_sha256(&hex.to_uppercase()).unwrap());
        assert_eq!(to_hex(&parsed), hex);
        for bad in ["", "e3b0", &format!("{hex}0"), &hex.replace('e', "g")] {
            assert_eq!(
                parse_sha256(bad).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
        }
    }

    #[test]
    fn content_range_forms() {
        let mut headers = ureq::http::HeaderMap::new();
        let mut with = |value: &str| {
            headers.insert(header::CONTENT_RANGE, value.parse().unwrap());
            content_range(&headers)
        };
        assert_eq!(with("bytes 100-199/1000"), Some((100, Some(1000))));
        assert_eq!(with("bytes 100-199/*"), Some((100, None)));
        assert_eq!(with("bytes 100-99/1000"), None);
        assert_eq!(with("bytes 100-1000/1000"), None);
        assert_eq!(with("bytes */1000"), None);
        assert_eq!(with("items 1-2/3"), None);
    }

    #[test]
    fn locations_resolve_on_the_same_origin_only() {
        let base: Uri = "https://a.example:8443/files/x?y".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "/other").unwrap(),
            "https://a.example:8443/other"
        );
        assert_eq!(
            resolve_location(&base, "https://b.example/z").unwrap(),
            "https://b.example/z"
        );
        assert!(resolve_location(&base, "relative").is_err());
        assert!(resolve_location(&base, "//b.example/z").is_err());
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        let meta = |etag: Option<&str>, lm: Option<&str>| PartMeta {
            etag: etag.map(str::to_owned),
            last_modified: lm.map(str::to_owned),
            ..PartMeta::default()
        };
        assert_eq!(meta(Some("\"a\""), Some("d")).if_range(), Some("\"a\""));
        assert_eq!(meta(Some("W/\"a\""), Some("d")).if_range(), Some("d"));
        assert_eq!(meta(None, None).if_range(), None);
    }
}
