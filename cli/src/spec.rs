//! What the command line accepts: the commands, their operands and options, in one table that
//! both the parser and the help texts read.

/// The library call a command makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ShadowReport,
    ShadowGet,
    EventPublish,
    CommandRespond,
    JobsGetPending,
    JobsStartNext,
    JobsDescribe,
    JobsUpdate,
    /// Not a call: reads a value out of a JSON document (`fleets::json`).
    JsonGet,
}

/// One command: the words that name it, its operands, the options it takes.
#[derive(Debug)]
pub struct CommandSpec {
    pub op: Op,
    /// E.g. `["shadow", "report"]`.
    pub words: &'static [&'static str],
    /// Required operands, in order.
    pub operands: &'static [&'static str],
    /// An optional last operand (always a JSON object).
    pub optional_operand: Option<&'static str>,
    /// Options of this command besides the connection options (names without `--`).
    pub options: &'static [&'static str],
    /// Options that must be given.
    pub required_options: &'static [&'static str],
    /// Whether it talks to the server (and so takes the connection options).
    pub network: bool,
    /// One line for the command list.
    pub summary: &'static str,
    /// What it does, for its `--help`.
    pub description: &'static str,
}

impl CommandSpec {
    /// `"shadow report"`.
    pub fn name(&self) -> String {
        self.words.join(" ")
    }

    /// Whether operand `index` is a JSON object (which may be `-`, stdin).
    pub fn operand_is_json(&self, index: usize) -> bool {
        let name = self.operands.get(index).copied().or(self
            .optional_operand
            .filter(|_| index == self.operands.len()));
        name == Some("JSON")
    }
}

/// An option: `--name VALUE`.
#[derive(Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub value: &'static str,
    pub help: &'static str,
}

/// Options every command takes: how to reach and authenticate to the server. Each one
/// overrides the environment variable named in its help.
pub const CONNECTION_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "endpoint",
        value: "URL",
        help: "https://host[:port][/base] (FLEETS_ENDPOINT)",
    },
    OptionSpec {
        name: "api-key",
        value: "KEY",
        help: "Deployment API key (FLEETS_API_KEY)",
    },
    OptionSpec {
        name: "api-secret-file",
        value: "PATH",
        help: "file holding the API secret, trailing newlines\n\
               ignored (else FLEETS_API_SECRET). Never the\n\
               secret itself as an argument: ps would show it",
    },
    OptionSpec {
        name: "ca-file",
        value: "PATH",
        help: "trust only the PEM certificates in PATH\n\
               (FLEETS_CA_FILE; default: bundled Mozilla roots)",
    },
    OptionSpec {
        name: "proxy",
        value: "URL",
        help: "HTTP CONNECT proxy http://[user:pw@]host:port\n\
               (HTTPS_PROXY, honouring NO_PROXY)",
    },
    OptionSpec {
        name: "timeout-ms",
        value: "MS",
        help: "whole-call deadline, retries included (30000)",
    },
    OptionSpec {
        name: "connect-timeout-ms",
        value: "MS",
        help: "DNS + TCP + TLS handshake deadline (10000)",
    },
    OptionSpec {
        name: "retries",
        value: "N",
        help: "retries after a transient failure, 0 to 9 (2);\n\
               only calls safe to repeat: shadow and jobs,\n\
               never event or command respond",
    },
];

/// Options some commands take.
pub const COMMAND_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "version",
        value: "N",
        help: "report only if the shadow is at version N,\n\
               else HTTP 409 (exit 3)",
    },
    OptionSpec {
        name: "client-token",
        value: "TOKEN",
        help: "echoed back by the server, at most 64 printable\n\
               ASCII characters (one is generated when none\n\
               is given and retries are on)",
    },
    OptionSpec {
        name: "severity",
        value: "LEVEL",
        help: "info, warn or error (default: none sent)",
    },
    OptionSpec {
        name: "timestamp-ms",
        value: "MS",
        help: "when it happened, Unix milliseconds (default: now)",
    },
    OptionSpec {
        name: "app-id",
        value: "ID",
        help: "application identifier for multi-app deployments",
    },
    OptionSpec {
        name: "status",
        value: "STATUS",
        help: "IN_PROGRESS, SUCCEEDED, FAILED or REJECTED",
    },
    OptionSpec {
        name: "timestamp",
        value: "SECONDS",
        help: "when it was executed, Unix seconds (default: now)",
    },
    OptionSpec {
        name: "status-details",
        value: "JSON",
        help: "a JSON object of details, or - to read it from stdin",
    },
    OptionSpec {
        name: "step-timeout-min",
        value: "N",
        help: "minutes the job may stay IN_PROGRESS before it\n\
               times out (default: no limit)",
    },
    OptionSpec {
        name: "expected-version",
        value: "N",
        help: "update only if the execution is at version N,\n\
               else HTTP 409 (exit 3)",
    },
];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        op: Op::ShadowReport,
        words: &["shadow", "report"],
        operands: &["THING", "JSON"],
        optional_operand: None,
        options: &["version", "client-token"],
        required_options: &[],
        network: true,
        summary: "report state: JSON is merged into the reported state",
        description: "Merges the JSON object into the thing's reported state\n\
                      (POST /api/v1/thing-datas/shadow/reported) and prints the answer:\n\
                      {\"state\":{\"reported\":...},\"version\":N,\"timestamp\":...}.\n\
                      On a version conflict (--version) the 409 body on stdout holds\n\
                      the current \"version\".",
    },
    CommandSpec {
        op: Op::ShadowGet,
        words: &["shadow", "get"],
        operands: &["THING"],
        optional_operand: None,
        options: &[],
        required_options: &[],
        network: true,
        summary: "print the shadow: reported, desired, delta, version",
        description: "Prints the thing's shadow (GET /api/v1/thing-datas/THING/shadow):\n\
                      {\"reported\":...,\"desired\":...,\"delta\":...,\"version\":N,...}.\n\
                      A non-empty \"delta\" holds desired values not reported yet.",
    },
    CommandSpec {
        op: Op::EventPublish,
        words: &["event"],
        operands: &["THING", "TYPE"],
        optional_operand: Some("JSON"),
        options: &["severity", "timestamp-ms", "app-id"],
        required_options: &[],
        network: true,
        summary: "publish an event of TYPE, with JSON data",
        description: "Publishes an event (POST /api/v1/thing-datas/events), e.g.\n  \
                      fleets event thermostat-001 highTemperature \\\n      \
                      '{\"currentTemp\":45.2}' --severity warn\n\
                      Never repeated after a failure: a repeat could record it twice.",
    },
    CommandSpec {
        op: Op::CommandRespond,
        words: &["command", "respond"],
        operands: &["THING", "EXECUTION_ID"],
        optional_operand: Some("JSON"),
        options: &["status", "timestamp"],
        required_options: &["status"],
        network: true,
        summary: "answer a command execution, with a JSON result",
        description: "Submits the response to a command received over MQTT\n\
                      (POST /api/v1/thing-datas/command/response), with an optional\n\
                      JSON result. Never repeated after a failure.",
    },
    CommandSpec {
        op: Op::JobsGetPending,
        words: &["jobs", "get"],
        operands: &["THING"],
        optional_operand: None,
        options: &["client-token"],
        required_options: &[],
        network: true,
        summary: "list the in-progress and queued jobs",
        description: "Prints the thing's pending job executions\n\
                      (POST /api/v1/thing-datas/jobs/get):\n\
                      {\"inProgressJobs\":[...],\"queuedJobs\":[...]}.",
    },
    CommandSpec {
        op: Op::JobsStartNext,
        words: &["jobs", "next"],
        operands: &["THING"],
        optional_operand: None,
        options: &["status-details", "step-timeout-min", "client-token"],
        required_options: &[],
        network: true,
        summary: "start the next pending job, if there is one",
        description: "Starts the next pending job execution\n\
                      (POST /api/v1/thing-datas/jobs/start-next) and prints it with its\n\
                      job document: {\"execution\":{...}}; no \"execution\" when nothing\n\
                      is pending.",
    },
    CommandSpec {
        op: Op::JobsDescribe,
        words: &["jobs", "describe"],
        operands: &["THING", "JOB_ID"],
        optional_operand: None,
        options: &["client-token"],
        required_options: &[],
        network: true,
        summary: "print one job execution with its document",
        description: "Prints one job execution with its job document\n\
                      (POST /api/v1/thing-datas/jobs/JOB_ID/get).",
    },
    CommandSpec {
        op: Op::JobsUpdate,
        words: &["jobs", "update"],
        operands: &["THING", "JOB_ID"],
        optional_operand: None,
        options: &[
            "status",
            "status-details",
            "expected-version",
            "client-token",
        ],
        required_options: &["status"],
        network: true,
        summary: "report a job execution's status",
        description: "Reports the status of a job execution\n\
                      (POST /api/v1/thing-datas/jobs/JOB_ID/update). On a version conflict\n\
                      (--expected-version) or a finished execution, the 409 body on\n\
                      stdout holds the current \"executionState\".",
    },
    CommandSpec {
        op: Op::JsonGet,
        words: &["json", "get"],
        operands: &["POINTER"],
        optional_operand: Some("JSON"),
        options: &[],
        required_options: &[],
        network: false,
        summary: "print the value at POINTER in JSON (default: stdin), for shells without jq",
        description: "Prints the value that a JSON Pointer (RFC 6901) names in a JSON document,\n\
                      given as an argument or read from stdin, e.g.\n  \
                      fleets shadow get thermostat-001 | fleets json get /delta/targetTemperature\n\
                      Strings are printed unescaped, without quotes; other values as their\n\
                      JSON text. \"\" is the whole document; /a~1b names key \"a/b\". No value there:\n\
                      exit 1, FLEETS_ERR_JSON_NO_VALUE. Nothing is sent anywhere.",
    },
];

/// The option named `name`, connection options first.
pub fn option(name: &str) -> Option<&'static OptionSpec> {
    CONNECTION_OPTIONS
        .iter()
        .chain(COMMAND_OPTIONS)
        .find(|o| o.name == name)
}

/// Whether some command starts with these words (`["jobs"]`), for group help.
pub fn is_group(words: &[&str]) -> bool {
    !words.is_empty()
        && COMMANDS
            .iter()
            .any(|c| c.words.len() > words.len() && c.words.starts_with(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_option_exists_once() {
        let all: Vec<&str> = CONNECTION_OPTIONS
            .iter()
            .chain(COMMAND_OPTIONS)
            .map(|o| o.name)
            .collect();
        for (i, name) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(name), "--{name} defined twice");
        }
        for command in COMMANDS {
            for name in command.options.iter().chain(command.required_options) {
                assert!(
                    COMMAND_OPTIONS.iter().any(|o| o.name == *name),
                    "{}: --{name} is not a command option",
                    command.name()
                );
            }
            for name in command.required_options {
                assert!(command.options.contains(name), "{name} required, not taken");
            }
            // One JSON input at most, so that `-` (stdin) is never ambiguous.
            let json_inputs = (0..=command.operands.len())
                .filter(|&i| command.operand_is_json(i))
                .count()
                + usize::from(command.options.contains(&"status-details"));
            assert!(json_inputs <= 1, "{}", command.name());
        }
    }

    #[test]
    fn defaults_in_the_help_are_the_librarys() {
        let help = |name| option(name).unwrap().help;
        let ms = |d: std::time::Duration| format!("({})", d.as_millis());
        assert!(help("timeout-ms").contains(&ms(fleets::DEFAULT_REQUEST_TIMEOUT)));
        assert!(help("connect-timeout-ms").contains(&ms(fleets::DEFAULT_CONNECT_TIMEOUT)));
        let retries = format!(
            "0 to {} ({})",
            fleets::MAX_ATTEMPTS_LIMIT - 1,
            fleets::DEFAULT_MAX_ATTEMPTS - 1
        );
        assert!(help("retries").contains(&retries), "{}", help("retries"));
    }

    #[test]
    fn command_names_are_unique_and_not_prefixes_of_each_other() {
        for (i, a) in COMMANDS.iter().enumerate() {
            for b in &COMMANDS[i + 1..] {
                assert!(!a.words.starts_with(b.words) && !b.words.starts_with(a.words));
            }
        }
    }

    #[test]
    fn json_operands() {
        let report = &COMMANDS[0];
        assert!(!report.operand_is_json(0));
        assert!(report.operand_is_json(1));
        assert!(!report.operand_is_json(2));
        let event = COMMANDS.iter().find(|c| c.op == Op::EventPublish).unwrap();
        assert!(!event.operand_is_json(1));
        assert!(event.operand_is_json(2));
        assert!(!event.operand_is_json(3));
        assert!(is_group(&["jobs"]) && is_group(&["shadow"]) && !is_group(&["event"]));
        assert!(!is_group(&[]) && !is_group(&["jobs", "get"]));
    }
}
