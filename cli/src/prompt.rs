//! The interactive prompt of the original program:
//! `Command (list / peers / get [filename] / quit): `.
//!
//! Invariant: a bad command prints one line and the prompt goes on; only `quit`, `q` or the end
//! of input end the program (with exit 0).

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use crate::args::Opts;
use crate::commands::{self, Unresolved};
use crate::format;
use crate::peer;

/// The prompt, exactly as the original program printed it.
pub const PROMPT: &str = "Command (list / peers / get [filename] / quit): ";

/// Runs a peer and its prompt until `quit` or end of input.
pub fn run(opts: &Opts, port: Option<u16>) -> Result<(), String> {
    let handle = peer::start_sharing(opts, port)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("{PROMPT}");
        let _ = std::io::stdout().flush();
        let Some(line) = lines.next() else {
            println!();
            break;
        };
        let line = line.map_err(|e| format!("cannot read the command: {e}"))?;
        // Show what happened while the prompt waited.
        while let Ok(Some(n)) = handle.next_notice(Duration::ZERO) {
            commands::report(opts, &n);
        }
        let line = line.trim();
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match cmd {
            "" => {}
            "quit" | "q" => break,
            "list" | "l" => match handle.snapshot() {
                Ok(s) => println!("{}", format::list(&s)),
                Err(e) => return Err(e.to_string()),
            },
            "peers" => match handle.snapshot() {
                Ok(s) => println!("{}", format::peers(&s)),
                Err(e) => return Err(e.to_string()),
            },
            "get" if arg.is_empty() => println!("Usage: get FILENAME (see `list`)"),
            "get" => {
                let snap = handle.snapshot().map_err(|e| e.to_string())?;
                match commands::content_by_name(&snap, arg) {
                    Ok(pick) => {
                        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                        match commands::download(opts, &handle, pick, far) {
                            Ok(line) => println!("{line}"),
                            Err(e) => println!("{e}"),
                        }
                    }
                    Err(
                        Unresolved::Unknown(m) | Unresolved::Ambiguous(m) | Unresolved::Have(m),
                    ) => {
                        println!("{m}")
                    }
                }
            }
            other => println!("Unknown command {other:?}: use list, peers, get FILENAME or quit."),
        }
    }
    handle.shutdown();
    Ok(())
}
