//! A small HTTPS file server for the download tests: `GET /files/{name}` with `Range`,
//! `ETag` and `If-Range`, per-file switches (no range support, credentials required, a body
//! cut after N bytes, a slow body) and a log of every request with the bytes it was sent.
//! `GET /redirect?to=URL` answers 302 to URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::raw_server::{self, Conn, Issued, RawServer};

/// A file and how it is served.
#[derive(Clone, Default)]
pub struct ServedFile {
    pub data: Arc<Vec<u8>>,
    pub etag: String,
    /// Honour `Range` (default true through [`FileServer::put`]).
    pub ranges: bool,
    /// Answer 401 to a request without `Authorization`.
    pub auth: bool,
    /// Cut the next `times` bodies after `bytes` bytes (the connection is closed mid-body).
    pub cut_after: Option<(u64, u32)>,
    /// Pause this long after every 16 KiB of body.
    pub chunk_delay: Option<Duration>,
}

/// One request, as the server saw it.
#[derive(Debug, Clone)]
pub struct Served {
    pub path: String,
    pub range_start: Option<u64>,
    pub if_range: Option<String>,
    pub authorization: bool,
    pub status: u16,
    /// Body bytes written to the connection (final once `done`).
    pub body_bytes: u64,
    /// The response is over (sent, cut, or the client went away).
    pub done: bool,
}

pub struct FileServer {
    pub server: RawServer,
    pub ca: Arc<Issued>,
    files: Arc<Mutex<HashMap<String, ServedFile>>>,
    log: Arc<Mutex<Vec<Served>>>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic pseudo-random content.
pub fn content(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

impl FileServer {
    /// A server with its own CA.
    pub fn start() -> FileServer {
        FileServer::start_with_ca(Arc::new(raw_server::ca("file server CA")))
    }

    /// A server whose certificate `ca` signs (two servers, one CA: two origins one client trusts).
    pub fn start_with_ca(ca: Arc<Issued>) -> FileServer {
        let leaf = raw_server::server_cert(&ca);
        let files: Arc<Mutex<HashMap<String, ServedFile>>> = Arc::default();
        let log: Arc<Mutex<Vec<Served>>> = Arc::default();
        let (f, l) = (files.clone(), log.clone());
        let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), move |conn| {
            serve(conn, &f, &l)
        });
        FileServer {
            server,
            ca,
            files,
            log,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.https_endpoint()
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/files/{name}", self.endpoint())
    }

    /// Serves `data` as `name` with range support; returns its URL and SHA-256.
    pub fn put(&self, name: &str, data: Vec<u8>) -> (String, String) {
        let sha = sha256_hex(&data);
        self.set(
            name,
            ServedFile {
                etag: format!("\"{}\"", &sha[..16]),
                data: Arc::new(data),
                ranges: true,
                ..ServedFile::default()
            },
        );
        (self.url(name), sha)
    }

    pub fn set(&self, name: &str, file: ServedFile) {
        self.files.lock().unwrap().insert(name.to_owned(), file);
    }

    pub fn update(&self, name: &str, change: impl FnOnce(&mut ServedFile)) {
        change(
            self.files
                .lock()
                .unwrap()
                .get_mut(name)
                .expect("file exists"),
        );
    }

    pub fn log(&self) -> Vec<Served> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    /// A client configuration for this server as the endpoint, trusting its CA.
    pub fn config(&self) -> fleets::Config {
        let mut config =
            fleets::Config::new(&self.endpoint(), "ak_files", "files-secret").expect("config");
        config.set_ca_pem(&self.ca.cert_pem).expect("CA");
        config
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(conn: &mut Conn, files: &Mutex<HashMap<String, ServedFile>>, log: &Mutex<Vec<Served>>) {
    while let Some(head) = conn.read_request() {
        let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let authorization = header(&head, "authorization").is_some();
        let mut record = Served {
            path: target.clone(),
            range_start: None,
            if_range: header(&head, "if-range").map(str::to_owned),
            authorization,
            status: 0,
            body_bytes: 0,
            done: true,
        };
        if let Some(to) = target.strip_prefix("/redirect?to=") {
            record.status = 302;
            log.lock().unwrap().push(record);
            conn.send(
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            );
            continue;
        }
        let name = target.strip_prefix("/files/").unwrap_or("");
        let file = {
            let mut files = files.lock().unwrap();
            files.get_mut(name).map(|f| {
                let served = f.clone();
                if let Some((_, times)) = &mut f.cut_after {
                    *times = times.saturating_sub(1);
                }
                served
            })
        };
        let Some(file) = file else {
            record.status = 404;
            log.lock().unwrap().push(record);
            conn.respond(404, "", r#"{"code":"NotFound","message":"no such file"}"#);
            continue;
        };
        if file.auth && !authorization {
            record.status = 401;
            log.lock().unwrap().push(record);
            conn.respond(
                401,
                "WWW-Authenticate: Basic\r\n",
                r#"{"code":"Unauthorized"}"#,
            );
            continue;
        }
        let len = file.data.len() as u64;
        let range = header(&head, "range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, _)| s.parse::<u64>().ok());
        record.range_start = range;
        let if_range_ok = record.if_range.as_deref().is_none_or(|v| v == file.etag);
        let common = format!(
            "ETag: {}\r\nContent-Type: application/octet-stream\r\n{}",
            file.etag,
            if file.ranges {
                "Accept-Ranges: bytes\r\n"
            } else {
                ""
            }
        );
        let (status, start) = match range {
            Some(start) if file.ranges && if_range_ok && start >= len => {
                record.status = 416;
                log.lock().unwrap().push(record);
                conn.send(
                    format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n{common}\r\n")
                        .as_bytes(),
                );
                continue;
            }
            Some(start) if file.ranges && if_range_ok => (206, start),
            _ => (200, 0),
        };
        let head = if status == 206 {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\n{common}\r\n",
                len - 1,
                len - start
            )
        } else {
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{common}\r\n")
        };
        // Logged before the body, so that a test sees the request at once.
        record.status = status;
        record.done = false;
        let index = {
            let mut log = log.lock().unwrap();
            log.push(record);
            log.len() - 1
        };
        conn.send(head.as_bytes());
        let body = &file.data[start as usize..];
        let cut = file
            .cut_after
            .filter(|(_, times)| *times > 0)
            .map(|(bytes, _)| bytes as usize);
        let limit = cut.map_or(body.len(), |c| c.min(body.len()));
        let mut written = 0;
        let mut failed = false;
        for piece in body[..limit].chunks(16 * 1024) {
            if conn.stream.write_all(piece).is_err() {
                failed = true;
                break;
            }
            written += piece.len();
            if let Some(entry) = log.lock().unwrap().get_mut(index) {
                entry.body_bytes = written as u64;
            }
            if let Some(delay) = file.chunk_delay {
                let _ = conn.stream.flush();
                std::thread::sleep(delay);
            }
        }
        let _ = conn.stream.flush();
        if let Some(entry) = log.lock().unwrap().get_mut(index) {
            entry.body_bytes = written as u64;
            entry.done = true;
        }
        if failed || cut.is_some_and(|c| c < body.len()) {
            // A clean close (FIN) mid-body: the client reads every byte sent, then the end.
            return;
        }
    }
}
