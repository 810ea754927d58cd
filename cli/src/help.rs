//! The `--help` texts, built from the command table so that they cannot drift from the parser.

use std::fmt::Write as _;

use crate::spec::{self, CommandSpec, OptionSpec, COMMANDS, CONNECTION_OPTIONS};

/// Exit status of a command line that could not be parsed (BSD sysexits `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

const EXIT_STATUS: &str = "\
Exit status: the hundreds digit of the result code named on stderr.
  0   success: the server's JSON answer is on stdout
  1   1xx: an argument or the configuration was refused; nothing was sent
  2   2xx: transport: no connection (200) or TLS (201): nothing was sent;
      timeout (202) or I/O (203): the server may have got the request
  3   3xx: the server answered an HTTP error status (its body is on
      stdout), or an answer that could not be used (309)
  4   4xx: local storage (reserved, not used yet)
  9   9xx: a bug in fleets, or resource exhaustion
  64  the command line could not be parsed (fleets: usage: ...)
";

const OUTPUT: &str = "\
Output: the server's JSON answer on stdout, then a newline. Errors on stderr:
  fleets: FLEETS_ERR_<NAME>: <message>
When the server answered an error status, its body is on stdout as well
(a 409 carries the current version). The API secret is never shown.
";

/// The help for a topic: `[]`, a group (`["jobs"]`) or a command's words.
pub fn text(topic: &[String]) -> String {
    let words: Vec<&str> = topic.iter().map(String::as_str).collect();
    if let Some(command) = COMMANDS.iter().find(|c| c.words == words.as_slice()) {
        return command_help(command);
    }
    if spec::is_group(&words) {
        return group_help(&words);
    }
    top_help()
}

fn synopsis(command: &CommandSpec) -> String {
    let mut line = format!("fleets {}", command.name());
    for operand in command.operands {
        let _ = write!(line, " {operand}");
    }
    if let Some(operand) = command.optional_operand {
        let _ = write!(line, " [{operand}]");
    }
    for required in command.required_options {
        let value = spec::option(required).map_or("VALUE", |o| o.value);
        let _ = write!(line, " --{required} {value}");
    }
    line
}

fn option_lines(out: &mut String, options: &[&OptionSpec]) {
    for option in options {
        let head = format!("--{} {}", option.name, option.value);
        let help = option.help.replace('\n', "\n                            ");
        let _ = writeln!(out, "  {head:<26}{help}");
    }
}

fn top_help() -> String {
    let mut out = String::from(
        "fleets: command-line client of the EMQX Fleets ThingDatas HTTPS API (libfleets)\n\n\
         Usage: fleets COMMAND OPERANDS... [OPTIONS]\n\nCommands:\n",
    );
    for command in COMMANDS {
        let _ = writeln!(out, "  {}\n      {}", synopsis(command), command.summary);
    }
    out.push_str(
        "  fleets help [COMMAND], fleets COMMAND --help\n      this text, or a command's\n  \
         fleets --version\n      print the version\n\n\
         JSON: a JSON object as one argument, or - to read it from stdin.\n\n\
         Connection options of every command (each overrides its environment variable):\n",
    );
    option_lines(&mut out, &CONNECTION_OPTIONS.iter().collect::<Vec<_>>());
    out.push('\n');
    out.push_str(OUTPUT);
    out.push('\n');
    out.push_str(EXIT_STATUS);
    out
}

fn group_help(words: &[&str]) -> String {
    let mut out = format!("Commands of fleets {}:\n", words.join(" "));
    for command in COMMANDS.iter().filter(|c| c.words.starts_with(words)) {
        let _ = writeln!(out, "  {}\n      {}", synopsis(command), command.summary);
    }
    out.push_str("\nfleets COMMAND --help for one of them, fleets --help for everything.\n");
    out
}

fn command_help(command: &CommandSpec) -> String {
    let mut out = format!("Usage: {}\n\n{}\n", synopsis(command), command.description);
    if command.network && (0..=command.operands.len()).any(|i| command.operand_is_json(i)) {
        out.push_str("\nJSON: a JSON object, or - to read it from stdin.\n");
    }
    if !command.options.is_empty() {
        out.push_str("\nOptions:\n");
        let options: Vec<&OptionSpec> = command
            .options
            .iter()
            .filter_map(|n| spec::option(n))
            .collect();
        option_lines(&mut out, &options);
    }
    if command.network {
        out.push_str("\nConnection options (each overrides its environment variable):\n");
        option_lines(&mut out, &CONNECTION_OPTIONS.iter().collect::<Vec<_>>());
        out.push('\n');
        out.push_str(OUTPUT);
    }
    out.push('\n');
    out.push_str(EXIT_STATUS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_command_has_help_naming_its_options() {
        for command in COMMANDS {
            let help = text(&topic(command.words));
            assert!(
                help.starts_with(&format!("Usage: fleets {}", command.name())),
                "{help}"
            );
            let connection: &[&str] = if command.network {
                &["endpoint", "retries"]
            } else {
                &[]
            };
            for option in command.options.iter().chain(connection) {
                assert!(
                    help.contains(&format!("--{option} ")),
                    "{}: --{option}",
                    command.name()
                );
            }
            assert!(help.contains("64  the command line"), "{help}");
        }
    }

    #[test]
    fn top_and_group_help() {
        let top = text(&[]);
        for command in COMMANDS {
            assert!(top.contains(&synopsis(command)), "{}", command.name());
        }
        assert!(top.contains("FLEETS_API_SECRET") && top.contains("3xx"));
        let jobs = text(&topic(&["jobs"]));
        assert!(jobs.contains("fleets jobs update THING JOB_ID --status STATUS"));
        assert!(!jobs.contains("shadow"));
    }

    #[test]
    fn lines_fit_a_terminal() {
        let topics = COMMANDS.iter().map(|c| topic(c.words));
        for topic in topics.chain([vec![], topic(&["jobs"])]) {
            for line in text(&topic).lines() {
                assert!(line.len() <= 80, "too long: {line}");
            }
        }
    }
}
