//! Parsing of the exec command line a client asks the gateway to run.
//!
//! Only the receive commands exist. The Python ostree-push sends its command unquoted
//! (`ostree-receive-1 -n REPO URL REF…`), so plain whitespace splitting must work; simple
//! single/double quoting is honoured for clients that do quote.

/// Exit status for "no such command", which ostree-push uses to try its next candidate.
pub const EXIT_UNKNOWN_COMMAND: u32 = 127;
/// Exit status for malformed arguments (argparse's convention).
pub const EXIT_USAGE: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ostree-receive-1` / `ostree-receive`: the classic tunnel flow.
    Receive(ReceiveArgs),
    /// `ostree-gateway-receive`: the native stream protocol (see the `wire` crate).
    Native,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiveArgs {
    /// Do not regenerate the summary after the update.
    pub no_update: bool,
    /// Transfer and check everything, move no ref.
    pub dry_run: bool,
    /// Ask for non-fast-forward updates (allowed only where policy grants `force`).
    pub force: bool,
    /// -1 quiet, 0 normal, >0 verbose.
    pub verbosity: i8,
    pub repo: String,
    pub url: String,
    pub refs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command \"{0}\": this gateway only runs ostree-receive-1 and ostree-receive")]
    Unknown(String),
    #[error("empty command: this gateway only runs ostree-receive-1 and ostree-receive")]
    Empty,
    #[error("the legacy ostree-receive v0 protocol (--repo …) is not supported: upgrade ostree-push to 1.x")]
    LegacyProtocol,
    #[error("{0}\nusage: ostree-receive-1 [--no-update] [-n] [-f] [-q|-v] REPO URL [REF...]")]
    Usage(String),
    #[error("usage: ostree-receive-1 [--no-update] [-n] [-f] [-q|-v] REPO URL [REF...]")]
    Help,
}

impl CommandError {
    pub fn exit_status(&self) -> u32 {
        match self {
            CommandError::Unknown(_) | CommandError::Empty => EXIT_UNKNOWN_COMMAND,
            CommandError::LegacyProtocol => 1,
            CommandError::Usage(_) => EXIT_USAGE,
            CommandError::Help => 0,
        }
    }
}

/// Splits on whitespace, honouring '…' and "…" quoting and backslash escapes outside quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(CommandError::Usage("unterminated ' quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err(CommandError::Usage("unterminated \" quote".into())),
                        },
                        Some(c) => word.push(c),
                        None => return Err(CommandError::Usage("unterminated \" quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Parses an exec request's bytes.
pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(bytes)
        .map_err(|_| CommandError::Unknown(String::from_utf8_lossy(bytes).into()))?;
    if line.contains('\0') {
        return Err(CommandError::Unknown(line.replace('\0', "\\0")));
    }
    let words = split_words(line)?;
    let Some((program, args)) = words.split_first() else {
        return Err(CommandError::Empty);
    };
    // Accept a full path (`/usr/bin/ostree-receive-1`) as ostree-push's --command allows.
    let name = program.rsplit('/').next().unwrap_or(program);
    match name {
        "ostree-receive-1" | "ostree-receive" => parse_receive(args).map(Command::Receive),
        wire::COMMAND if args.is_empty() => Ok(Command::Native),
        wire::COMMAND => Err(CommandError::Usage(format!(
            "{} takes no arguments",
            wire::COMMAND
        ))),
        _ => Err(CommandError::Unknown(program.chars().take(200).collect())),
    }
}

fn parse_receive(args: &[String]) -> Result<ReceiveArgs, CommandError> {
    if args.iter().any(|a| a.starts_with("--repo")) {
        return Err(CommandError::LegacyProtocol);
    }
    let mut out = ReceiveArgs::default();
    let mut positional = Vec::new();
    let mut options_done = false;
    for arg in args {
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        match arg.as_str() {
            "--" => options_done = true,
            "--no-update" => out.no_update = true,
            "--dry-run" => out.dry_run = true,
            "--force" => out.force = true,
            "--quiet" => out.verbosity = -1,
            "--verbose" => out.verbosity = out.verbosity.max(0).saturating_add(1),
            "--help" => return Err(CommandError::Help),
            long if long.starts_with("--") => {
                return Err(CommandError::Usage(format!("unrecognized option {long}")));
            }
            short => {
                for flag in short.chars().skip(1) {
                    match flag {
                        'n' => out.dry_run = true,
                        'f' => out.force = true,
                        'q' => out.verbosity = -1,
                        'v' => out.verbosity = out.verbosity.max(0).saturating_add(1),
                        'h' => return Err(CommandError::Help),
                        other => return Err(CommandError::Usage(format!("unrecognized option -{other}"))),
                    }
                }
            }
        }
    }
    let mut positional = positional.into_iter();
    out.repo = positional
        .next()
        .ok_or_else(|| CommandError::Usage("missing REPO and URL".into()))?;
    out.url = positional
        .next()
        .ok_or_else(|| CommandError::Usage("missing URL".into()))?;
    out.refs = positional.collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(line: &str) -> ReceiveArgs {
        match parse(line.as_bytes()).unwrap() {
            Command::Receive(args) => args,
            Command::Native => panic!("not a receive"),
        }
    }

    #[test]
    fn python_client_form() {
        let args = receive("ostree-receive-1 -n /srv/repo http://127.0.0.1:4321 app/a app/b");
        assert!(args.dry_run && !args.force);
        assert_eq!(args.repo, "/srv/repo");
        assert_eq!(args.url, "http://127.0.0.1:4321");
        assert_eq!(args.refs, ["app/a", "app/b"]);
    }

    #[test]
    fn flags_combined_and_long() {
        let args = receive("/usr/bin/ostree-receive -nfv --no-update r http://localhost:1/x");
        assert!(args.dry_run && args.force && args.no_update);
        assert_eq!(args.verbosity, 1);
        assert!(args.refs.is_empty());
        assert_eq!(receive("ostree-receive -q r u").verbosity, -1);
    }

    #[test]
    fn quoting() {
        let args = receive("ostree-receive-1 'my repo' \"http://127.0.0.1:1\" -- -odd");
        assert_eq!(args.repo, "my repo");
        assert_eq!(args.refs, ["-odd"]);
    }

    #[test]
    fn native_command() {
        assert_eq!(parse(b"ostree-gateway-receive").unwrap(), Command::Native);
        assert_eq!(
            parse(b"ostree-gateway-receive x").unwrap_err().exit_status(),
            EXIT_USAGE
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"bash -i").unwrap_err().exit_status(), EXIT_UNKNOWN_COMMAND);
        assert_eq!(parse(b"").unwrap_err(), CommandError::Empty);
        assert_eq!(
            parse(b"ostree-receive --repo=/x").unwrap_err(),
            CommandError::LegacyProtocol
        );
        assert_eq!(
            parse(b"ostree-receive-1 r").unwrap_err().exit_status(),
            EXIT_USAGE
        );
        assert_eq!(
            parse(b"ostree-receive-1 --bogus r u").unwrap_err().exit_status(),
            EXIT_USAGE
        );
        assert_eq!(
            parse(b"ostree-receive-1 'r u").unwrap_err().exit_status(),
            EXIT_USAGE
        );
        assert!(matches!(
            parse(b"ostree-receive-1\0 r u"),
            Err(CommandError::Unknown(_))
        ));
        assert!(matches!(parse(&[0xff, 0xfe]), Err(CommandError::Unknown(_))));
    }
}
