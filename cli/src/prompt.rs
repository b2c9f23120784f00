//! The interactive prompt of the original program:
//! `Command (list / peers / get [filename] / quit): `.
//!
//! Invariant: a bad command prints one line and the prompt goes on; only `quit`, `q` or the end
//! of input end the program (with exit 0), or SIGINT/SIGTERM at an idle prompt (after the
//! goodbye, with 130/143). SIGINT during a `get` cancels that download (its partial file is
//! kept) and the prompt goes on.

use std::time::{Duration, Instant};

use p2pshare_host::{Handle, Snapshot};
use p2pshare_proto::share_link::ShareLink;

use crate::Failure;
use crate::args::Opts;
use crate::commands::{self, Ambiguity, Pick, Unresolved};
use crate::download::{self, Stop};
use crate::folder;
use crate::format;
use crate::get_link::{self, Resolved, Wanted};
use crate::input::{Input, Line};
use crate::peer;
use crate::signals::{self, Signals};

/// `link`'s arguments at the prompt: the name, then any `--at ADDR` (a name may hold spaces:
/// everything before the first ` --at` word).
fn link_args(arg: &str) -> Result<(&str, Vec<String>), String> {
    let flag = arg
        .match_indices(" --at")
        .map(|(i, _)| i)
        .find(|&i| arg[i + 5..].chars().next().is_none_or(char::is_whitespace));
    let Some((name, rest)) = flag.map(|i| (&arg[..i], &arg[i + 5..])) else {
        return Ok((arg, Vec::new()));
    };
    let mut at = Vec::new();
    let mut words = std::iter::once("--at").chain(rest.split_whitespace());
    while let Some(w) = words.next() {
        match (w, words.next()) {
            ("--at", Some(a)) => at.push(a.to_owned()),
            _ => return Err("Usage: link NAME [--at ADDR]...".into()),
        }
    }
    Ok((name.trim_end(), at))
}

/// The names Tab completes: every name of the files other peers share that we do not have,
/// sorted and distinct, walked from the node's view (no grouped copy of every file).
fn completions(view: &dyn p2pshare_proto::Walk) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    view.walk(&mut |f| {
        if !f.local {
            names.extend(f.names.iter().map(|n| (*n).to_owned()));
        }
    });
    names.sort_unstable();
    names.dedup();
    names
}

/// The file the user chose among several of one name: by number in the list, or by id
/// prefix; `None` for anything else (an empty answer included).
fn choose(a: &Ambiguity, answer: &str) -> Option<Pick> {
    if let Ok(n) = answer.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| a.choices.get(i)).cloned();
    }
    let prefix = answer.to_ascii_lowercase();
    let mut matching = a
        .choices
        .iter()
        .filter(|p| !prefix.is_empty() && p.content.to_hex().starts_with(&prefix));
    match (matching.next(), matching.next()) {
        (Some(p), None) => Some(p.clone()),
        _ => None,
    }
}

/// The prompt, exactly as the original program printed it.
pub const PROMPT: &str = "Command (list / peers / get [filename] / quit): ";

/// What `help` prints.
const HELP: &str = "\
list, l          files other peers share that you do not have, folders in one row each
list FOLDER/     what lies under a folder (`list --all`: every path)
peers            known peers (ip:port; with -v, the interface and how each was found)
peers add LINK|KEY@ADDRESS
                 keep a peer no broadcast reaches (dialled now, and looked for at every start)
get NAME...      download one or more files at once (Tab completes names; Ctrl-C cancels,
                 the partial file is kept and `get` resumes it)
get FOLDER/      download every file under a folder as one job (into dl_FOLDER/)
get LINK         download what a p2pshare:// link names, from its peers (and the LAN's)
status           this peer: its id, peers, shared files, downloads, counters
link NAME [--at ADDR]...
                 a link to a file or folder you share, for someone on another network
                 (--at: an address of yours no interface shows, e.g. a forwarded port)
help             this
quit, q          say goodbye and exit (so do Ctrl-D and Ctrl-C at an idle prompt)";

/// How the prompt reads an answer to a question (see `run`).
type Read<'a> = &'a dyn Fn(&str, &mut Input) -> Result<Option<String>, Failure>;

/// `get FOLDER/` at the prompt, as `snap` lists the folder: shown, asked about when big,
/// refused without room, then fetched as one job. `Err` only when reading the answer ended
/// the program (a signal).
fn get_folder(
    opts: &Opts,
    handle: &Handle,
    snap: &Snapshot,
    name: &str,
    (input, read): (&mut Input, Read<'_>),
    signals: &Signals,
) -> Result<(), Failure> {
    let job = folder::plan(snap, &opts.shared, name);
    if job.totals().files == 0 {
        println!("no peer shares a folder named {name:?} (see `list`)");
        return Ok(());
    }
    // What it is about to fetch, and whether it fits (issue 27, item 7).
    let preview = folder::preview(snap, &opts.shared, name, &job);
    println!("{}", preview.line());
    if let Err(e) = preview.room(&opts.shared) {
        println!("{e}; nothing downloaded.");
        return Ok(());
    }
    if preview.big() {
        let answer = read("Fetch it? [y/N] ", input)?.unwrap_or_default();
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("Nothing downloaded.");
            return Ok(());
        }
    }
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    match folder::run(opts, handle, name, job, far, signals) {
        Ok(Ok(done) | Err(done)) => println!("{}", done.line),
        Err(Stop::Failed(e)) => println!("{e}"),
        Err(Stop::Interrupted(_)) => println!("Download cancelled; {}.", download::RESUME),
    }
    Ok(())
}

/// `get LINK` at the prompt: its peers dialled and waited for (Ctrl-C stops the wait); a
/// folder fetched at once as `get FOLDER/` is; a file given back, to download with the other
/// names of the line. What went wrong is printed; `Err` only when reading an answer ended the
/// program.
fn get_link(
    opts: &Opts,
    handle: &Handle,
    text: &str,
    asked: (&mut Input, Read<'_>),
    signals: &Signals,
) -> Result<Option<(Pick, String)>, Failure> {
    let w = match Wanted::read(text) {
        Ok(w) => w,
        Err(e) => {
            println!("{e}");
            return Ok(None);
        }
    };
    let grace = get_link::grace(opts.interval);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let resolved = get_link::resolve(
        &handle.controller(),
        &w,
        grace,
        far,
        Some(signals),
        &mut |line| println!("{line}"),
    );
    match resolved {
        Ok(Resolved::Content(content)) => {
            let pick = Pick {
                content,
                name: None,
            };
            return Ok(Some((pick, w.label())));
        }
        Ok(Resolved::Folder(path, snap)) => get_folder(opts, handle, &snap, &path, asked, signals)?,
        Ok(Resolved::Have(m)) => println!("{m}"),
        Err((_, Some(_))) => println!("Nothing downloaded."),
        Err((e, None)) => println!("{e}"),
    }
    Ok(None)
}

/// Runs a peer and its prompt until `quit`, end of input, or a signal.
pub fn run(opts: &Opts, port: Option<u16>, signals: &Signals) -> Result<(), Failure> {
    let (handle, _control) = peer::start_sharing(opts, port)?;
    let mut input = Input::start()?;
    // Reads a line for `question`, showing notices meanwhile (above the line being typed on
    // a terminal); `None` at the end of input. A signal, or Ctrl-C while typing, ends the
    // program (after the goodbye).
    let read = |question: &str, input: &mut Input| -> Result<Option<String>, Failure> {
        input.ask(question);
        let mut next_names = Instant::now();
        loop {
            if let Some(sig) = signals.take() {
                return Err(Failure::Signal(sig));
            }
            if input.prints_above() {
                while let Ok(Some(n)) = handle.next_notice(Duration::ZERO) {
                    if let Some(line) = commands::notice_line(opts, &n) {
                        input.print(line);
                    }
                }
            }
            if input.completes()
                && Instant::now() >= next_names
                && let Ok(v) = handle.remote()
            {
                next_names = Instant::now() + Duration::from_secs(1);
                input.set_names(completions(&v));
            }
            match input.line(signals::POLL) {
                None => {}
                Some(Line::Text(l)) => return Ok(Some(l)),
                Some(Line::Eof) => return Ok(None),
                Some(Line::Interrupted) => return Err(Failure::Signal(signals::SIGINT)),
                Some(Line::Failed(e)) => {
                    return Err(format!("cannot read the command: {e}").into());
                }
            }
        }
    };
    loop {
        let line = match read(PROMPT, &mut input) {
            Ok(line) => line,
            Err(e) => {
                println!();
                handle.shutdown();
                return Err(e);
            }
        };
        let Some(line) = line else {
            println!();
            break;
        };
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
            "help" | "h" | "?" => println!("{HELP}"),
            "list" | "l" => match handle.remote() {
                Ok(v) => {
                    let all = arg.split_whitespace().any(|a| a == "--all");
                    let folder = arg.split_whitespace().find(|a| *a != "--all");
                    println!("{}", format::list_under(&v, folder, all))
                }
                Err(e) => return Err(e.to_string().into()),
            },
            "status" => match handle.state() {
                Ok(s) => println!("{}", format::status(&s)),
                Err(e) => return Err(e.to_string().into()),
            },
            "peers" if arg.split_whitespace().next() == Some("add") => {
                let spec = arg["add".len()..].trim();
                let kept = crate::add_peer::parse(spec)
                    .and_then(|p| crate::add_peer::keep_running(&handle.controller(), &p));
                match kept {
                    Ok(line) | Err(line) => println!("{line}"),
                }
            }
            "peers" => match handle.state() {
                Ok(s) if opts.verbose > 0 => println!("{}", format::peers_verbose(&s)),
                Ok(s) => println!("{}", format::peers(&s)),
                Err(e) => return Err(e.to_string().into()),
            },
            "link" if arg.is_empty() => println!("Usage: link NAME (a file or folder you share)"),
            "link" => match handle.state() {
                Ok(s) => match link_args(arg)
                    .and_then(|(name, at)| crate::link::of_snapshot(&s, name, &at))
                {
                    Ok(made) => {
                        println!("{}", made.text());
                        if let Some(note) = made.note() {
                            println!("({note})");
                        }
                    }
                    Err(e) => println!("{e}"),
                },
                Err(e) => return Err(e.to_string().into()),
            },
            "get" if arg.is_empty() => println!("Usage: get FILENAME... (see `list`)"),
            "get" => {
                // Only the files these names could mean: resolving a name on a LAN of a
                // hundred thousand files needs no view of all of them.
                let snap = handle
                    .snapshot_where(|n, c| {
                        arg.split_whitespace()
                            .any(|q| commands::could_mean(q, n, c))
                    })
                    .map_err(|e| e.to_string())?;
                let mut picks: Vec<(Pick, String)> = Vec::new();
                for name in arg.split_whitespace() {
                    if ShareLink::looks_like(name) {
                        let asked: (&mut Input, Read<'_>) = (&mut input, &read);
                        match get_link(opts, &handle, name, asked, signals) {
                            Ok(Some(p)) if !picks.iter().any(|(q, _)| q.content == p.0.content) => {
                                picks.push(p)
                            }
                            Ok(_) => {}
                            Err(e) => {
                                handle.shutdown();
                                return Err(e);
                            }
                        }
                        continue;
                    }
                    if folder::is_folder(&snap, name) {
                        let asked: (&mut Input, Read<'_>) = (&mut input, &read);
                        if let Err(e) = get_folder(opts, &handle, &snap, name, asked, signals) {
                            handle.shutdown();
                            return Err(e);
                        }
                        continue;
                    }
                    let picked = match commands::content_by_name(&snap, name, &opts.shared) {
                        Ok(pick) => Some(pick),
                        Err(Unresolved::Unknown(m)) => {
                            let found = commands::through_dht(
                                &handle.controller(),
                                &opts.shared,
                                name,
                                &mut |line| println!("{line}"),
                                &|| signals.take().is_some(),
                            );
                            if found.is_none() {
                                println!("{m}");
                            }
                            found
                        }
                        Err(Unresolved::Have(m)) => {
                            println!("{m}");
                            None
                        }
                        Err(Unresolved::Ambiguous(a)) => {
                            println!("{}:\n{}", a.what, a.list);
                            let q = "Which one? (number or id prefix; empty: none): ";
                            let answer = match read(q, &mut input) {
                                Ok(answer) => answer.unwrap_or_default(),
                                Err(e) => {
                                    handle.shutdown();
                                    return Err(e);
                                }
                            };
                            let chosen = choose(&a, answer.trim());
                            if chosen.is_none() {
                                println!("Nothing downloaded.");
                            }
                            chosen
                        }
                    };
                    if let Some(p) = picked
                        && !picks.iter().any(|(q, _)| q.content == p.content)
                    {
                        picks.push((p, name.to_owned()));
                    }
                }
                // The view (every file of every peer) is not kept for the download's length.
                drop(snap);
                if picks.is_empty() {
                    continue;
                }
                let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                match download::download_many(opts, &handle, &picks, far, signals) {
                    Ok(outcomes) => {
                        for o in outcomes {
                            match o {
                                Ok(done) => println!("{}", done.line),
                                Err(e) => println!("{e}"),
                            }
                        }
                    }
                    Err(Stop::Failed(e)) => println!("{e}"),
                    Err(Stop::Interrupted(_)) => {
                        println!("Download cancelled; {}.", download::RESUME)
                    }
                }
            }
            other => println!(
                "Unknown command {other:?}: use list, peers, get FILENAME, link NAME, status or quit (help lists them)."
            ),
        }
    }
    handle.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_takes_a_name_with_spaces_then_at_addresses() {
        assert_eq!(link_args("a b.txt"), Ok(("a b.txt", vec![])));
        assert_eq!(
            link_args("a b.txt --at 203.0.113.7:4000 --at 198.51.100.1"),
            Ok((
                "a b.txt",
                vec!["203.0.113.7:4000".to_owned(), "198.51.100.1".to_owned()]
            ))
        );
        assert!(link_args("a --at").is_err());
        assert!(link_args("a --at 1.2.3.4 extra").is_err());
    }
}
