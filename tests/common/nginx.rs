//! A real nginx (Debian's package) as a TLS reverse proxy in front of the emulator, for the
//! keep-alive behaviour devices meet behind real servers.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

/// The nginx binary: `$FLEETS_NGINX`, else `nginx` on PATH or in /usr/sbin.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEETS_NGINX") {
        return PathBuf::from(path);
    }
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
    {
        let candidate = dir.join("nginx");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("nginx is not installed (Debian: apt-get install nginx-light; `make setup` does it)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// Starts nginx serving TLS with `cert_pem`/`key_pem` and proxying every request to
    /// `upstream` (an `https://` URL, not verified: the upstream is our own loopback emulator).
    /// `http_directives` go into the `http` block, e.g. `keepalive_timeout 150ms;`.
    pub fn start(cert_pem: &str, key_pem: &str, upstream: &str, http_directives: &str) -> Nginx {
        let nginx = binary();
        let dir = std::env::temp_dir().join(format!(
            "fleets-nginx-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), key_pem).unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            // As root, nginx would switch its worker to `nobody`, which cannot read our
            // files; without root the directive is ignored with a warning.
            "user root;
worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr error;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {http_directives}
    upstream emulator {{ server {upstream_host}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location / {{
            proxy_pass https://emulator;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_ssl_verify off;
        }}
    }}
}}
",
            upstream_host = upstream.trim_start_matches("https://"),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
        let mut server = Nginx { port, child, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "nginx did not listen in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
