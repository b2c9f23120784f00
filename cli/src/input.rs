//! The prompt's input: lines read on a thread of their own, so that the main loop can keep
//! watching signals and notices while the user types.
//!
//! On a terminal, lines are edited with rustyline: history (↑/↓), Emacs keys, Tab completion
//! of the names other peers share after `get` (paths one folder at a time), and notices printed above the line being typed
//! ([`Input::print`]). Anywhere else (a pipe, a script) lines are read as they come, and the
//! prompt is printed as is.
//!
//! Invariant: one line is read per [`Input::ask`], after the previous command's output, so
//! the prompt always follows what the command printed.

use std::io::{BufRead, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

/// What the user did at the prompt.
#[derive(Debug)]
pub enum Line {
    /// A line of text.
    Text(String),
    /// Ctrl-C while typing.
    Interrupted,
    /// Ctrl-D, or the end of input.
    Eof,
    /// Reading failed.
    Failed(String),
}

/// Completes the names other peers share, after `get`.
struct Names(Arc<Mutex<Vec<String>>>);

impl Completer for Names {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        if !before.starts_with("get ") && !before.starts_with("list ") {
            return Ok((pos, Vec::new()));
        }
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        let names = self.0.lock().map(|n| n.clone()).unwrap_or_default();
        Ok((start, complete_paths(&names, word)))
    }
}

/// What Tab offers for `word` among `names` (sorted paths): one component at a time, so
/// `ph` gives `photos/` and `photos/` gives `photos/2024/` and `photos/b.jpg`, not every
/// file of the tree.
pub fn complete_paths(names: &[String], word: &str) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(word))
        .map(|n| match n[word.len()..].find('/') {
            Some(i) => n[..word.len() + i + 1].to_owned(),
            None => n.clone(),
        })
        .collect();
    out.dedup();
    out
}

impl Hinter for Names {
    type Hint = String;
}
impl Highlighter for Names {}
impl Validator for Names {}
impl Helper for Names {}

/// The prompt's line reader.
pub struct Input {
    ask: Sender<String>,
    lines: Receiver<Line>,
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    names: Arc<Mutex<Vec<String>>>,
    tty: bool,
}

impl Input {
    /// A reader on stdin: rustyline when stdin and stdout are terminals, plain lines otherwise.
    pub fn start() -> Result<Input, String> {
        let (ask, asked) = mpsc::channel::<String>();
        let (tx, lines) = mpsc::channel();
        let names = Arc::new(Mutex::new(Vec::new()));
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdin())
            && std::io::IsTerminal::is_terminal(&std::io::stdout());
        let mut printer: Option<Box<dyn ExternalPrinter + Send>> = None;
        let spawned = if tty {
            let mut rl: Editor<Names, DefaultHistory> =
                Editor::new().map_err(|e| format!("cannot set up the terminal: {e}"))?;
            rl.set_helper(Some(Names(names.clone())));
            if let Ok(p) = rl.create_external_printer() {
                printer = Some(Box::new(p));
            }
            std::thread::Builder::new()
                .name("p2pshare-input".into())
                .spawn(move || {
                    for prompt in asked {
                        let line = match rl.readline(&prompt) {
                            Ok(l) => {
                                if !l.trim().is_empty() {
                                    let _ = rl.add_history_entry(l.as_str());
                                }
                                Line::Text(l)
                            }
                            Err(ReadlineError::Interrupted) => Line::Interrupted,
                            Err(ReadlineError::Eof) => Line::Eof,
                            Err(e) => Line::Failed(e.to_string()),
                        };
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                })
        } else {
            std::thread::Builder::new()
                .name("p2pshare-input".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    let mut lines = stdin.lock().lines();
                    for prompt in asked {
                        print!("{prompt}");
                        let _ = std::io::stdout().flush();
                        let line = match lines.next() {
                            Some(Ok(l)) => Line::Text(l),
                            Some(Err(e)) => Line::Failed(e.to_string()),
                            None => Line::Eof,
                        };
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                })
        };
        spawned.map_err(|e| format!("cannot start the input thread: {e}"))?;
        Ok(Input {
            ask,
            lines,
            printer,
            names,
            tty,
        })
    }

    /// Shows `prompt` and reads the next line (collect it with [`Input::line`]).
    pub fn ask(&self, prompt: &str) {
        let _ = self.ask.send(prompt.to_owned());
    }

    /// The line asked for, if it came within `wait`.
    pub fn line(&self, wait: Duration) -> Option<Line> {
        match self.lines.recv_timeout(wait) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Line::Eof),
        }
    }

    /// True when lines are edited (and Tab completes names: keep them fresh with
    /// [`Input::set_names`]).
    pub fn completes(&self) -> bool {
        self.tty
    }

    /// True when notices can be printed above the line being typed.
    pub fn prints_above(&self) -> bool {
        self.printer.is_some()
    }

    /// Prints `msg` above the line being typed (on a terminal), else on stderr.
    pub fn print(&mut self, msg: String) {
        match &mut self.printer {
            Some(p) => {
                let _ = p.print(format!("{msg}\n"));
            }
            None => eprintln!("{msg}"),
        }
    }

    /// The names Tab completes after `get`.
    pub fn set_names(&self, names: Vec<String>) {
        if let Ok(mut n) = self.names.lock() {
            *n = names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_one_component_at_a_time() {
        let names: Vec<String> = [
            "photos/2024/a.jpg",
            "photos/2024/b.jpg",
            "photos/c.jpg",
            "top.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(complete_paths(&names, "ph"), ["photos/"]);
        assert_eq!(
            complete_paths(&names, "photos/"),
            ["photos/2024/", "photos/c.jpg"]
        );
        assert_eq!(
            complete_paths(&names, "photos/2024/"),
            ["photos/2024/a.jpg", "photos/2024/b.jpg"]
        );
        assert_eq!(complete_paths(&names, ""), ["photos/", "top.txt"]);
        assert!(complete_paths(&names, "x").is_empty());
    }
}
