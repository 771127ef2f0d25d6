//! The exec command line a client sends (`ostree_gateway::command::parse`): arbitrary bytes
//! never panic, and only `ostree-receive-1` / `ostree-receive` / `ostree-gateway-receive`
//! (possibly behind a path) are ever accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostree_gateway::command::{parse, split_words, Command, CommandError, EXIT_UNKNOWN_COMMAND};

fuzz_target!(|data: &[u8]| {
    let result = parse(data);
    if let Err(e) = &result {
        // Messages and statuses are total.
        let _ = e.to_string();
        let _ = e.exit_status();
    }
    let Ok(line) = std::str::from_utf8(data) else {
        assert!(matches!(result, Err(CommandError::Unknown(_))));
        return;
    };
    let program = split_words(line)
        .ok()
        .and_then(|w| w.first().map(|p| p.rsplit('/').next().unwrap_or(p).to_string()));
    let receive = matches!(program.as_deref(), Some("ostree-receive-1" | "ostree-receive"));
    let native = program.as_deref() == Some(wire::COMMAND);
    match &result {
        Ok(Command::Receive(args)) => {
            assert!(receive, "accepted {line:?} as a receive command");
            assert!(!line.contains('\0'));
            let words = split_words(line).unwrap();
            assert!(words.len() >= 3, "REPO and URL are required: {line:?}");
            assert!(args.refs.len() <= words.len() - 3);
        }
        Ok(Command::Native) => {
            assert!(native, "accepted {line:?} as the native command");
            assert_eq!(split_words(line).unwrap().len(), 1);
        }
        Err(e) if e.exit_status() == EXIT_UNKNOWN_COMMAND => {
            assert!(!(receive || native) || line.contains('\0'), "{line:?}: {e}");
        }
        Err(CommandError::Help) => assert!(receive, "{line:?}"),
        Err(_) => {}
    }
});
