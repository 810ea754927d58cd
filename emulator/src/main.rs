//! `fleets-emulator` binary: starts the emulator, prints one JSON ready line on stdout and runs
//! until SIGINT or SIGTERM (exit 0).

#![forbid(unsafe_code)]

use fleets_emulator::{Emulator, EmulatorOptions, TlsMode, DEFAULT_CLI_LISTEN};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
fleets-emulator: a local EMQX Fleets ThingDatas-compatible HTTPS server

USAGE: fleets-emulator [OPTIONS]

OPTIONS:
  --listen ADDR:PORT       listen address (default 127.0.0.1:8443; port 0 picks a free port)
  --ca-out PATH            write the generated CA certificate (PEM) here
                           (default: ca.pem in a fresh temporary directory, removed on exit)
  --tls-cert PATH          serve this PEM certificate chain instead of a generated one
  --tls-key PATH           private key (PEM) for --tls-cert
  --plain-http             serve plain HTTP instead of HTTPS
  --api-key KEY            HTTP Basic user for /api/v1/thing-datas (default ak_emulator_demo)
  --api-secret SECRET      HTTP Basic password (default emulator-demo-secret)
  --admin-token TOKEN      Bearer token for /admin/v1 (default emulator-admin-token)
  --auto-register          register unknown things on first use instead of answering 404
  --max-body-bytes N       request body limit, larger bodies get 413 (default 262144)
  --admin-listen ADDR:PORT admin-only listener that stays up during outages
                           (default 127.0.0.1:0; see admin_endpoint in the ready line)
  --no-tls-resumption      every TLS handshake is full (no tickets, no session-id cache)
  --idle-timeout-ms N      close device connections idle for N ms (default: off)
  --requests-per-connection N
                           close a device connection after N responses (default: off)
  -h, --help               print this help
  -V, --version            print the version

When ready it prints exactly one JSON line on stdout:
  {\"event\":\"ready\",\"endpoint\":...,\"ca_file\":...,\"api_key\":...,\"api_secret\":...,\"admin_token\":...,\"admin_endpoint\":...}
";

#[derive(Debug, PartialEq)]
enum Cli {
    Run(Box<EmulatorOptions>),
    Help,
    Version,
}

fn parse(args: &[String]) -> Result<Cli, String> {
    let mut opts = EmulatorOptions {
        listen: DEFAULT_CLI_LISTEN.parse().expect("valid default"),
        ..EmulatorOptions::default()
    };
    let (mut cert, mut key, mut plain) = (None, None, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let value = |it: &mut std::slice::Iter<'_, String>| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Cli::Help),
            "-V" | "--version" => return Ok(Cli::Version),
            "--listen" => {
                let v = value(&mut it)?;
                opts.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: `{v}` is not ADDR:PORT"))?;
            }
            "--ca-out" => opts.ca_out = Some(PathBuf::from(value(&mut it)?)),
            "--tls-cert" => cert = Some(PathBuf::from(value(&mut it)?)),
            "--tls-key" => key = Some(PathBuf::from(value(&mut it)?)),
            "--plain-http" => plain = true,
            "--api-key" => opts.api_key = value(&mut it)?,
            "--api-secret" => opts.api_secret = value(&mut it)?,
            "--admin-token" => opts.admin_token = value(&mut it)?,
            "--auto-register" => opts.auto_register = true,
            "--max-body-bytes" => {
                let v = value(&mut it)?;
                opts.max_body_bytes =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--max-body-bytes: `{v}` is not a positive integer")
                    })?;
            }
            "--admin-listen" => {
                let v = value(&mut it)?;
                opts.admin_listen = v
                    .parse()
                    .map_err(|_| format!("--admin-listen: `{v}` is not ADDR:PORT"))?;
            }
            "--no-tls-resumption" => opts.tls_resumption = false,
            "--idle-timeout-ms" => {
                let v = value(&mut it)?;
                let ms: u64 =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--idle-timeout-ms: `{v}` is not a positive integer")
                    })?;
                opts.idle_timeout = Some(Duration::from_millis(ms));
            }
            "--requests-per-connection" => {
                let v = value(&mut it)?;
                opts.requests_per_connection =
                    Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--requests-per-connection: `{v}` is not a positive integer")
                    })?);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    if opts.api_key.is_empty() || opts.api_key.contains(':') {
        return Err("--api-key must be non-empty and must not contain ':'".into());
    }
    if opts.admin_token.is_empty() {
        return Err("--admin-token must not be empty".into());
    }
    opts.tls = match (cert, key, plain) {
        (None, None, false) => TlsMode::Generated,
        (None, None, true) => TlsMode::PlainHttp,
        (Some(cert), Some(key), false) => TlsMode::Files { cert, key },
        (_, _, true) => {
            return Err("--plain-http cannot be combined with --tls-cert/--tls-key".into())
        }
        _ => return Err("--tls-cert and --tls-key must be given together".into()),
    };
    if opts.ca_out.is_some() && opts.tls != TlsMode::Generated {
        return Err("--ca-out only applies to the generated certificate".into());
    }
    Ok(Cli::Run(Box::new(opts)))
}

fn wait_for_signal() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Cli::Run(o)) => *o,
        Ok(Cli::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Version) => {
            println!("fleets-emulator {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fleets-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let emu = match Emulator::start(opts) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fleets-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", emu.ready_line());
        let _ = out.flush();
    }
    eprintln!(
        "fleets-emulator: serving {} (Ctrl-C to stop)",
        emu.endpoint()
    );
    let r = wait_for_signal();
    drop(emu);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleets-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Cli, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run(a: &[&str]) -> EmulatorOptions {
        match p(a).unwrap() {
            Cli::Run(o) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert_eq!(o.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(o.tls, TlsMode::Generated);
        assert!(!o.auto_register);
        assert_eq!(o.admin_listen.to_string(), "127.0.0.1:0");
        assert!(o.tls_resumption);
        assert_eq!((o.idle_timeout, o.requests_per_connection), (None, None));
    }

    #[test]
    fn options() {
        let o = run(&[
            "--listen",
            "127.0.0.1:0",
            "--api-key=k",
            "--api-secret",
            "s",
            "--admin-token",
            "t",
            "--auto-register",
            "--ca-out",
            "/tmp/x.pem",
            "--max-body-bytes",
            "10",
            "--admin-listen",
            "127.0.0.1:9999",
            "--no-tls-resumption",
            "--idle-timeout-ms",
            "250",
            "--requests-per-connection=3",
        ]);
        assert_eq!(o.admin_listen.port(), 9999);
        assert!(!o.tls_resumption);
        assert_eq!(o.idle_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.requests_per_connection, Some(3));
        assert_eq!(o.listen.port(), 0);
        assert_eq!(
            (
                o.api_key.as_str(),
                o.api_secret.as_str(),
                o.admin_token.as_str()
            ),
            ("k", "s", "t")
        );
        assert!(o.auto_register);
        assert_eq!(o.ca_out, Some(PathBuf::from("/tmp/x.pem")));
        assert_eq!(o.max_body_bytes, 10);
        assert_eq!(run(&["--plain-http"]).tls, TlsMode::PlainHttp);
        assert_eq!(
            run(&["--tls-cert", "c", "--tls-key", "k"]).tls,
            TlsMode::Files {
                cert: "c".into(),
                key: "k".into()
            }
        );
        assert_eq!(p(&["--help"]).unwrap(), Cli::Help);
        assert_eq!(p(&["-V"]).unwrap(), Cli::Version);
    }

    #[test]
    fn errors() {
        for bad in [
            &["--listen", "nope"][..],
            &["--listen"],
            &["--tls-cert", "c"],
            &["--plain-http", "--tls-cert", "c", "--tls-key", "k"],
            &["--plain-http", "--ca-out", "x"],
            &["--max-body-bytes", "0"],
            &["--api-key", "a:b"],
            &["--admin-token", ""],
            &["--admin-listen", "x"],
            &["--idle-timeout-ms", "0"],
            &["--idle-timeout-ms", "-5"],
            &["--requests-per-connection", "0"],
            &["--requests-per-connection", "lots"],
            &["--bogus"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
