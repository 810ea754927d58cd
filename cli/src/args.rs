//! The command line, parsed by hand (no parser crate: the binary must stay small on devices).
//!
//! Grammar: `fleets WORDS... OPERANDS... [OPTIONS]`, options anywhere, `--name VALUE` or
//! `--name=VALUE`, `--` ends the options, `-` is an operand (stdin for a JSON one). `-h` /
//! `--help` anywhere asks for the help of the command named so far.

use fleets::{ExecutionStatus, Severity, MAX_ATTEMPTS_LIMIT};

use crate::spec::{self, CommandSpec, Op, COMMANDS};

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Help on a topic: `[]` (everything), `["jobs"]` (a group) or a command's words.
    Help(Vec<String>),
    Version,
    Call(Box<Call>),
}

/// A command line that could not be understood: the message, and the help topic to point to.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage {
    pub message: String,
    pub topic: String,
}

/// A command with its operands and options, checked and converted.
#[derive(Debug)]
pub struct Call {
    pub spec: &'static CommandSpec,
    /// Required operands then the optional one when given; a JSON operand may be `-`.
    pub operands: Vec<String>,
    pub options: Options,
}

/// Option values; `None` when not given.
#[derive(Debug, Default)]
pub struct Options {
    pub endpoint: Option<String>,
    pub api_key: Option<String>,
    pub api_secret_file: Option<String>,
    pub ca_file: Option<String>,
    pub proxy: Option<String>,
    pub timeout_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    pub version: Option<u64>,
    pub client_token: Option<String>,
    pub severity: Option<Severity>,
    pub timestamp_ms: Option<i64>,
    pub app_id: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub timestamp: Option<i64>,
    pub status_details: Option<String>,
    pub step_timeout_min: Option<u32>,
    pub expected_version: Option<u64>,
}

impl Call {
    /// Whether some JSON input is `-`: read from stdin.
    pub fn reads_stdin(&self) -> bool {
        self.options.status_details.as_deref() == Some("-") || self.json_operand_index().is_some()
    }

    /// Puts the text read from stdin where `-` stood.
    pub fn fill_stdin(&mut self, text: String) {
        if let Some(i) = self.json_operand_index() {
            self.operands[i] = text;
        } else if self.options.status_details.as_deref() == Some("-") {
            self.options.status_details = Some(text);
        }
    }

    fn json_operand_index(&self) -> Option<usize> {
        (0..self.operands.len()).find(|&i| self.spec.operand_is_json(i) && self.operands[i] == "-")
    }
}

fn usage(message: impl Into<String>, topic: &[&str]) -> Usage {
    Usage {
        message: message.into(),
        topic: topic.join(" "),
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Parsed, Usage> {
    if let [only] = args {
        if only == "--version" || only == "-V" {
            return Ok(Parsed::Version);
        }
    }
    let mut positionals: Vec<&str> = Vec::new();
    let mut options: Vec<(&str, &str)> = Vec::new();
    let mut help = false;
    let mut rest = args.iter().map(String::as_str);
    while let Some(arg) = rest.next() {
        if arg == "--" {
            positionals.extend(rest.by_ref());
            break;
        }
        if arg == "-h" || arg == "--help" {
            help = true;
        } else if let Some(option) = arg.strip_prefix("--") {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (option, None),
            };
            if name == "api-secret" {
                // Never echo the value: it is the secret.
                return Err(usage(
                    "--api-secret is not accepted: a secret on the command line shows in ps; \
                     set FLEETS_API_SECRET or pass --api-secret-file PATH",
                    &[],
                ));
            }
            if spec::option(name).is_none() {
                return Err(usage(format!("unknown option --{name}"), &[]));
            }
            let value = match value.or_else(|| rest.next()) {
                Some(value) => value,
                None if help => continue,
                None => return Err(usage(format!("--{name} needs a value"), &[])),
            };
            options.push((name, value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            return Err(usage(format!("unknown option {arg}"), &[]));
        } else {
            positionals.push(arg);
        }
    }

    if positionals.first() == Some(&"help") {
        return Ok(Parsed::Help(topic(&positionals[1..])));
    }
    if positionals.first() == Some(&"version") && positionals.len() == 1 {
        return Ok(Parsed::Version);
    }
    if help {
        return Ok(Parsed::Help(topic(&positionals)));
    }
    let Some(spec) = COMMANDS.iter().find(|c| positionals.starts_with(c.words)) else {
        return Err(unknown_command(&positionals));
    };
    let name = spec.words;
    let operands = &positionals[spec.words.len()..];
    let max = spec.operands.len() + usize::from(spec.optional_operand.is_some());
    if operands.len() < spec.operands.len() {
        let missing = spec.operands[operands.len()];
        return Err(usage(format!("{} needs {missing}", spec.name()), name));
    }
    if operands.len() > max {
        return Err(usage(
            format!(
                "{} takes at most {max} operands, got {}",
                spec.name(),
                operands.len()
            ),
            name,
        ));
    }

    let mut call = Call {
        spec,
        operands: operands.iter().map(|s| (*s).to_owned()).collect(),
        options: Options::default(),
    };
    if spec.op == Op::JsonGet && call.operands.len() == 1 {
        // A filter: without a document, read it from stdin.
        call.operands.push("-".to_owned());
    }
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in options {
        let allowed = (spec.network && spec::CONNECTION_OPTIONS.iter().any(|o| o.name == name))
            || spec.options.contains(&name);
        if !allowed {
            return Err(usage(
                format!("{} does not take --{name}", spec.name()),
                spec.words,
            ));
        }
        if seen.contains(&name) {
            return Err(usage(format!("--{name} given twice"), spec.words));
        }
        seen.push(name);
        set_option(&mut call.options, name, value).map_err(|m| usage(m, spec.words))?;
    }
    for required in spec.required_options {
        if !seen.contains(required) {
            let value = spec::option(required).map_or("VALUE", |o| o.value);
            return Err(usage(
                format!("{} needs --{required} {value}", spec.name()),
                spec.words,
            ));
        }
    }
    Ok(Parsed::Call(Box::new(call)))
}

/// The help topic for the words given: the longest command or group they start with.
fn topic(words: &[&str]) -> Vec<String> {
    let known = (1..=words.len().min(2))
        .rev()
        .find(|&n| spec::is_group(&words[..n]) || COMMANDS.iter().any(|c| c.words == &words[..n]));
    words[..known.unwrap_or(0)]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

fn unknown_command(positionals: &[&str]) -> Usage {
    match positionals {
        [] => usage("no command given", &[]),
        [group, ..] if spec::is_group(&[group]) => match positionals.get(1) {
            Some(sub) => usage(format!("unknown command '{group} {sub}'"), &[group]),
            None => usage(format!("'{group}' needs a subcommand"), &[group]),
        },
        [first, ..] => usage(format!("unknown command '{first}'"), &[]),
    }
}

fn set_option(o: &mut Options, name: &str, value: &str) -> Result<(), String> {
    let text = || Some(value.to_owned());
    match name {
        "endpoint" => o.endpoint = text(),
        "api-key" => o.api_key = text(),
        "api-secret-file" => o.api_secret_file = text(),
        "ca-file" => o.ca_file = text(),
        "proxy" => o.proxy = text(),
        "timeout-ms" => o.timeout_ms = Some(number(name, value)?),
        "connect-timeout-ms" => o.connect_timeout_ms = Some(number(name, value)?),
        "retries" => {
            let retries: u32 = number(name, value)?;
            if retries >= MAX_ATTEMPTS_LIMIT {
                return Err(format!(
                    "--retries must be at most {}",
                    MAX_ATTEMPTS_LIMIT - 1
                ));
            }
            o.retries = Some(retries);
        }
        "version" => o.version = Some(number(name, value)?),
        "client-token" => o.client_token = text(),
        "severity" => {
            o.severity = Some(match value {
                "info" => Severity::Info,
                "warn" => Severity::Warn,
                "error" => Severity::Error,
                _ => {
                    return Err(format!(
                        "--severity must be info, warn or error, not '{value}'"
                    ))
                }
            })
        }
        "timestamp-ms" => o.timestamp_ms = Some(number(name, value)?),
        "app-id" => o.app_id = text(),
        "status" => {
            o.status = Some(match value {
                "IN_PROGRESS" => ExecutionStatus::InProgress,
                "SUCCEEDED" => ExecutionStatus::Succeeded,
                "FAILED" => ExecutionStatus::Failed,
                "REJECTED" => ExecutionStatus::Rejected,
                _ => {
                    return Err(format!(
                        "--status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED, not '{value}'"
                    ))
                }
            })
        }
        "timestamp" => o.timestamp = Some(number(name, value)?),
        "status-details" => o.status_details = text(),
        "step-timeout-min" => o.step_timeout_min = Some(number(name, value)?),
        "expected-version" => o.expected_version = Some(number(name, value)?),
        // Every name in spec.rs is handled above; the unit tests check that.
        _ => return Err(format!("--{name} is not handled (a bug in fleets)")),
    }
    Ok(())
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{name} needs a whole number in range, not '{value}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Parsed, Usage> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    fn call(line: &str) -> Call {
        match parse_str(line) {
            Ok(Parsed::Call(call)) => *call,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> Usage {
        match parse_str(line) {
            Err(usage) => usage,
            other => panic!("{line}: expected a usage error, got {other:?}"),
        }
    }

    fn help(line: &str) -> Vec<String> {
        match parse_str(line) {
            Ok(Parsed::Help(topic)) => topic,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn commands_operands_and_options() {
        let c = call("shadow report t1 {\"a\":1} --version 7 --client-token=tok");
        assert_eq!(c.spec.op, Op::ShadowReport);
        assert_eq!(c.operands, ["t1", "{\"a\":1}"]);
        assert_eq!(c.options.version, Some(7));
        assert_eq!(c.options.client_token.as_deref(), Some("tok"));

        // Options before, between and after the words.
        let c = call("--timeout-ms 500 jobs --retries 0 update t1 j1 --status SUCCEEDED");
        assert_eq!(c.spec.op, Op::JobsUpdate);
        assert_eq!(c.operands, ["t1", "j1"]);
        assert_eq!(c.options.timeout_ms, Some(500));
        assert_eq!(c.options.retries, Some(0));
        assert_eq!(c.options.status, Some(ExecutionStatus::Succeeded));

        let c = call("event t1 boot");
        assert_eq!((c.spec.op, c.operands.len()), (Op::EventPublish, 2));
        let c = call("event t1 boot {} --severity warn --timestamp-ms 5");
        assert_eq!(c.options.severity, Some(Severity::Warn));
        assert_eq!(c.options.timestamp_ms, Some(5));
        let c = call("command respond t1 e1 --status REJECTED");
        assert_eq!(c.spec.op, Op::CommandRespond);
        assert_eq!(c.options.status, Some(ExecutionStatus::Rejected));
        assert_eq!(call("jobs get t1").spec.op, Op::JobsGetPending);
        assert_eq!(call("jobs next t1").spec.op, Op::JobsStartNext);
        assert_eq!(call("jobs describe t1 j1").spec.op, Op::JobsDescribe);
        assert_eq!(call("shadow get t1").spec.op, Op::ShadowGet);

        // A negative number is a value, not an option; `--` ends the options.
        assert_eq!(
            call("event t1 x --timestamp-ms -5").options.timestamp_ms,
            Some(-5)
        );
        assert_eq!(call("shadow get -- --odd").operands, ["--odd"]);
    }

    #[test]
    fn stdin() {
        let mut c = call("shadow report t1 -");
        assert!(c.reads_stdin());
        c.fill_stdin("{\"x\":1}".into());
        assert_eq!(c.operands[1], "{\"x\":1}");

        let mut c = call("jobs update t1 j1 --status FAILED --status-details -");
        assert!(c.reads_stdin());
        c.fill_stdin("{}".into());
        assert_eq!(c.options.status_details.as_deref(), Some("{}"));

        // json get reads stdin without a document, or with `-`.
        assert!(call("json get /a").reads_stdin());
        assert!(call("json get /a -").reads_stdin());
        assert!(!call("json get /a {}").reads_stdin());
        assert_eq!(call("json get /a {}").operands, ["/a", "{}"]);

        // `-` as a thing name is only a name.
        assert!(!call("shadow get -").reads_stdin());
        assert!(!call("event - x").reads_stdin());
    }

    #[test]
    fn usage_errors() {
        for (line, message, topic) in [
            ("", "no command given", ""),
            ("frobnicate", "unknown command 'frobnicate'", ""),
            ("jobs", "'jobs' needs a subcommand", "jobs"),
            ("jobs launch t1", "unknown command 'jobs launch'", "jobs"),
            (
                "shadow report t1",
                "shadow report needs JSON",
                "shadow report",
            ),
            ("shadow get", "shadow get needs THING", "shadow get"),
            (
                "shadow get t1 t2",
                "shadow get takes at most 1 operands, got 2",
                "shadow get",
            ),
            ("shadow get t1 --bogus 1", "unknown option --bogus", ""),
            ("shadow get t1 -x", "unknown option -x", ""),
            (
                "shadow get t1 --version 3",
                "shadow get does not take --version",
                "shadow get",
            ),
            (
                "shadow get t1 --timeout-ms",
                "--timeout-ms needs a value",
                "",
            ),
            (
                "shadow get t1 --timeout-ms 1 --timeout-ms 2",
                "--timeout-ms given twice",
                "shadow get",
            ),
            (
                "shadow get t1 --timeout-ms soon",
                "--timeout-ms needs a whole number in range, not 'soon'",
                "shadow get",
            ),
            (
                "shadow get t1 --retries 10",
                "--retries must be at most 9",
                "shadow get",
            ),
            (
                "shadow report t1 {} --version -1",
                "--version needs a whole number in range, not '-1'",
                "shadow report",
            ),
            (
                "jobs update t1 j1",
                "jobs update needs --status STATUS",
                "jobs update",
            ),
            (
                "jobs update t1 j1 --status done",
                "--status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED, not 'done'",
                "jobs update",
            ),
            (
                "event t1 x --severity loud",
                "--severity must be info, warn or error, not 'loud'",
                "event",
            ),
            (
                "json get /a --endpoint https://h",
                "json get does not take --endpoint",
                "json get",
            ),
            ("json get", "json get needs POINTER", "json get"),
        ] {
            let e = error(line);
            assert_eq!(
                (e.message.as_str(), e.topic.as_str()),
                (message, topic),
                "{line}"
            );
        }
    }

    #[test]
    fn secret_on_the_command_line_is_refused_without_echo() {
        for line in [
            "shadow get t1 --api-secret hunter2",
            "--api-secret=hunter2 shadow get t1",
        ] {
            let e = error(line);
            assert!(e.message.contains("FLEETS_API_SECRET"), "{e:?}");
            assert!(!e.message.contains("hunter2"), "{e:?}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(help("--help"), Vec::<String>::new());
        assert_eq!(help("-h"), Vec::<String>::new());
        assert_eq!(help("help"), Vec::<String>::new());
        assert_eq!(help("jobs --help"), ["jobs"]);
        assert_eq!(help("help jobs update"), ["jobs", "update"]);
        assert_eq!(help("shadow report --help"), ["shadow", "report"]);
        // Help wins over what is wrong or missing in the rest of the line.
        assert_eq!(help("shadow report --help --version"), ["shadow", "report"]);
        assert_eq!(help("jobs update --help t1"), ["jobs", "update"]);
        assert_eq!(help("nonsense --help"), Vec::<String>::new());
        assert_eq!(help("event --help"), ["event"]);
        assert!(matches!(parse_str("--version"), Ok(Parsed::Version)));
        assert!(matches!(parse_str("-V"), Ok(Parsed::Version)));
        assert!(matches!(parse_str("version"), Ok(Parsed::Version)));
    }

    #[test]
    fn every_option_is_handled() {
        for option in spec::CONNECTION_OPTIONS.iter().chain(spec::COMMAND_OPTIONS) {
            let value = match option.name {
                "severity" => "info",
                "status" => "FAILED",
                _ => "1",
            };
            let mut options = Options::default();
            assert_eq!(
                set_option(&mut options, option.name, value),
                Ok(()),
                "--{}",
                option.name
            );
        }
    }
}
