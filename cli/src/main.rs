//! `p2pshare`: the peer a person runs. Parses the command line, starts a peer on the chosen
//! runtime, and either reads commands at the prompt or runs one subcommand.
//!
//! Invariant: every failure reaches the user as one line on stderr and a non-zero exit
//! (2 for bad usage, 1 for everything else); nothing here panics on user or network input.

mod add_peer;
mod args;
mod commands;
mod control;
mod download;
mod folder;
mod format;
mod get_link;
mod input;
mod link;
mod meter;
mod pair;
mod peer;
mod progress;
mod prompt;
mod signals;
mod web;

use std::process::ExitCode;

use clap::Parser as _;

use args::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's first line says what is wrong; the rest is a usage reminder.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            eprintln!(
                "p2pshare: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Msg(e)) => {
            eprintln!("p2pshare: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Signal(sig)) => {
            eprintln!(
                "p2pshare: stopped by {}; said goodbye to the peers",
                signals::name(sig)
            );
            ExitCode::from(signals::exit_status(sig))
        }
    }
}

/// Why the program ends without success.
#[derive(Debug)]
pub enum Failure {
    /// An error, printed as one line; exit status 1.
    Msg(String),
    /// SIGINT or SIGTERM: the peer said goodbye; exit status 128 + the signal.
    Signal(i32),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Msg(e)
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let port = cli.opts.port_opt.or(cli.port);
    let opts = &cli.opts;
    match cli.cmd {
        None => prompt::run(opts, port, &signals::Signals::install()?),
        Some(Cmd::Serve) => commands::serve(opts, port, &signals::Signals::install()?),
        Some(Cmd::Id) => Ok(commands::id(opts)?),
        Some(Cmd::Pair { code, timeout }) => Ok(pair::run(opts, code.as_deref(), timeout)?),
        Some(Cmd::List {
            folder,
            all,
            wait,
            json,
        }) => Ok(commands::list(opts, port, folder, all, wait, json)?),
        Some(Cmd::Link { name, at, json }) => Ok(link::run(opts, port, &name, &at, json)?),
        Some(Cmd::Peers {
            action: Some(args::PeersAction::Add { spec }),
            ..
        }) => Ok(add_peer::run(opts, &spec)?),
        Some(Cmd::Peers {
            action: None,
            wait,
            json,
        }) => Ok(commands::peers(opts, port, wait, json)?),
        Some(Cmd::Status { json }) => Ok(commands::status(opts, json)?),
        Some(Cmd::Get {
            name,
            timeout,
            json,
            yes,
        }) => commands::get(
            opts,
            port,
            &name,
            (timeout, json, yes),
            &signals::Signals::install()?,
        ),
    }
}
