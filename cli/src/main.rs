//! `fleets`: the ThingDatas calls of libfleets from the shell, for scripts on devices.
//!
//! Argument handling only: every check of names, JSON, timestamps and the whole HTTP exchange
//! are the library's (`fleets::Client`), so the CLI behaves as the C, Python and Go APIs do.
//! `fleets --help` and cli/README.md describe the command line and the exit status.

mod args;
mod help;
mod spec;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use fleets::{Client, Config, Error, ErrorCode, Event, ReportOptions, Response};

use args::{Call, Options, Parsed};
use spec::Op;

fn main() -> ExitCode {
    // A panic message may quote any value, the secret included: report only where it was.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!("fleets: FLEETS_ERR_PANIC: a bug in fleets{place}");
    }));
    let status = std::panic::catch_unwind(run).unwrap_or(exit_status(ErrorCode::Panic));
    ExitCode::from(status)
}

fn run() -> u8 {
    let args = match utf8_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(error) => return fail(&error),
    };
    match args::parse(&args) {
        Ok(Parsed::Help(topic)) => print(&help::text(&topic)),
        Ok(Parsed::Version) => print(&format!(
            "fleets {} (libfleets {})\n",
            env!("CARGO_PKG_VERSION"),
            fleets::VERSION
        )),
        Ok(Parsed::Call(call)) => execute(*call),
        Err(usage) => {
            let topic = if usage.topic.is_empty() {
                String::new()
            } else {
                format!("{} ", usage.topic)
            };
            eprintln!(
                "fleets: usage: {}\nSee 'fleets {topic}--help'.",
                usage.message
            );
            help::EXIT_USAGE
        }
    }
}

fn utf8_args(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, Error> {
    args.enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|_| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("argument {} is not UTF-8 text", i + 1),
                )
            })
        })
        .collect()
}

fn execute(mut call: Call) -> u8 {
    if call.spec.op == Op::JsonGet {
        return match read_stdin_json(&mut call).and_then(|()| json_get(&call)) {
            Ok(value) => match print(&format!("{value}\n")) {
                0 => 0,
                _ => fail(&Error::new(ErrorCode::Internal, "cannot write to stdout")),
            },
            Err(error) => fail(&error),
        };
    }
    let outcome = read_stdin_json(&mut call)
        .and_then(|()| config(&call.options))
        .and_then(|config| Client::new(&config))
        .and_then(|client| perform(&client, &call));
    match outcome {
        Ok(response) => {
            let status = print_body(response.body());
            if status != 0 {
                let error = Error::new(
                    ErrorCode::Internal,
                    "the call succeeded but its answer could not be written to stdout",
                );
                return fail(&error);
            }
            0
        }
        Err(error) => {
            // A script reads what the server said (e.g. the current version in a 409 body).
            if let Some(body) = error.body() {
                print_body(body);
            }
            fail(&error)
        }
    }
}

/// Prints the error as `fleets: FLEETS_ERR_<NAME>: <message>` and returns the exit status:
/// the hundreds digit of the result code (1xx -> 1, ..., 9xx -> 9).
fn fail(error: &Error) -> u8 {
    eprintln!("fleets: {error}");
    exit_status(error.code())
}

fn exit_status(code: ErrorCode) -> u8 {
    // Codes run from 100 to 999, so the quotient fits.
    u8::try_from(code as u32 / 100).unwrap_or(9)
}

fn print(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(_) => 9,
    }
}

/// A response body on one line of stdout; nothing for an empty body.
fn print_body(body: &str) -> u8 {
    if body.is_empty() {
        return 0;
    }
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    print(&format!("{body}{newline}"))
}

fn read_stdin_json(call: &mut Call) -> Result<(), Error> {
    if !call.reads_stdin() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("cannot read stdin: {e}"),
            )
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorCode::InvalidJson, "stdin is not UTF-8 text"))?;
    call.fill_stdin(text);
    Ok(())
}

/// Environment variables that the connection options stand in for.
const ENDPOINT_VAR: &str = "FLEETS_ENDPOINT";
const API_KEY_VAR: &str = "FLEETS_API_KEY";
const API_SECRET_VAR: &str = "FLEETS_API_SECRET";
const CA_FILE_VAR: &str = "FLEETS_CA_FILE";
const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];

/// The configuration: `Config::from_env`, with each connection option standing in for its
/// environment variable. `from_env` stays the one reading of the environment (its
/// `FLEETS_CA_FILE`, `HTTPS_PROXY` and `NO_PROXY` rules included), so the CLI configures
/// exactly as `fleets_config_from_env` does. Changing this process's own environment is
/// sound here: the program is single-threaded until the client exists, and it starts no
/// other program.
fn config(options: &Options) -> Result<Config, Error> {
    let secret_from_file = options
        .api_secret_file
        .as_deref()
        .map(|path| read_secret(Path::new(path)))
        .transpose()?;
    for (var, value) in [
        (ENDPOINT_VAR, options.endpoint.as_deref()),
        (API_KEY_VAR, options.api_key.as_deref()),
        (API_SECRET_VAR, secret_from_file.as_deref()),
        (CA_FILE_VAR, options.ca_file.as_deref()),
    ] {
        if let Some(value) = value {
            std::env::set_var(var, value);
        }
    }
    if options.proxy.is_some() {
        for var in PROXY_VARS {
            std::env::remove_var(var);
        }
    }
    for (var, how) in [
        (ENDPOINT_VAR, "pass --endpoint URL"),
        (API_KEY_VAR, "pass --api-key KEY"),
        (API_SECRET_VAR, "pass --api-secret-file PATH"),
    ] {
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("{var} is not set: set it or {how}"),
            ));
        }
    }
    let mut config = Config::from_env()?;
    if let Some(proxy) = &options.proxy {
        config.set_proxy(proxy)?;
    }
    let millis = |ms: Option<u64>| Duration::from_millis(ms.unwrap_or(0));
    config.set_timeouts(
        millis(options.connect_timeout_ms),
        millis(options.timeout_ms),
    );
    if let Some(retries) = options.retries {
        config.set_retry(retries + 1, Duration::ZERO, Duration::ZERO)?;
    }
    Ok(config)
}

/// Longest API secret file read; a larger file is not a secret (a wrong path, a device).
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The secret in a file, without the line ending an editor or `echo` leaves. Errors name the
/// file, never what is in it.
fn read_secret(path: &Path) -> Result<String, Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorCode::InvalidConfig,
            format!("API secret file {}: {why}", path.display()),
        )
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SECRET_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(refuse(format!("larger than {MAX_SECRET_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".to_owned()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    // The environment cannot hold a NUL byte; the library refuses other control characters.
    if secret.contains('\0') {
        return Err(refuse("holds a NUL byte".to_owned()));
    }
    Ok(secret.to_owned())
}

/// The value at the pointer: a string unescaped, anything else as its JSON text.
fn json_get(call: &Call) -> Result<String, Error> {
    let (pointer, document) = match call.operands.as_slice() {
        [pointer, document] => (pointer.as_str(), document.as_str()),
        _ => return Err(Error::new(ErrorCode::Internal, "json get operands (a bug)")),
    };
    match fleets::json::get_string(document, pointer) {
        Err(error) if error.code() == ErrorCode::JsonType => {
            fleets::json::get_raw(document, pointer)
        }
        other => other,
    }
}

fn perform(client: &Client, call: &Call) -> Result<Response, Error> {
    let o = &call.options;
    let operand = |i: usize| call.operands.get(i).map_or("", String::as_str);
    let json = |i: usize| call.operands.get(i).map(String::as_str);
    let status = || {
        o.status.ok_or_else(|| {
            Error::new(
                ErrorCode::Internal,
                "--status missing after parsing (a bug)",
            )
        })
    };
    let token = o.client_token.as_deref();
    let details = o.status_details.as_deref();
    match call.spec.op {
        Op::ShadowReport => client.shadow_report(
            operand(0),
            operand(1),
            ReportOptions {
                client_token: token,
                version: o.version.unwrap_or(0),
            },
        ),
        Op::ShadowGet => client.shadow_get(operand(0)),
        Op::EventPublish => client.event_publish(
            operand(0),
            Event {
                event_type: operand(1),
                severity: o.severity,
                timestamp_ms: o.timestamp_ms.unwrap_or(0),
                data_json: json(2),
                app_id: o.app_id.as_deref(),
            },
        ),
        Op::CommandRespond => client.command_respond(
            operand(0),
            operand(1),
            status()?,
            json(2),
            o.timestamp.unwrap_or(0),
        ),
        Op::JobsGetPending => client.jobs_get_pending(operand(0), token),
        Op::JobsStartNext => {
            client.jobs_start_next(operand(0), details, o.step_timeout_min.unwrap_or(0), token)
        }
        Op::JobsDescribe => client.jobs_describe(operand(0), operand(1), token),
        Op::JobsUpdate => client.jobs_update(
            operand(0),
            operand(1),
            status()?,
            details,
            o.expected_version.unwrap_or(0),
            token,
        ),
        Op::JsonGet => Err(Error::new(
            ErrorCode::Internal,
            "json get is not a call (a bug)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_the_hundreds_digit() {
        for code in ErrorCode::ALL {
            let expected = match code as u32 {
                100..=199 => 1,
                200..=299 => 2,
                300..=399 => 3,
                400..=499 => 4,
                _ => 9,
            };
            assert_eq!(exit_status(code), expected, "{code}");
        }
    }
}
