//! `p2pshare`: the peer a person runs. Parses the command line, starts a peer on the chosen
//! runtime, and either reads commands at the prompt or runs one subcommand.
//!
//! Invariant: every failure reaches the user as one line on stderr and a non-zero exit
//! (2 for bad usage, 1 for everything else); nothing here panics on user or network input.

mod args;
mod commands;
mod format;
mod peer;
mod prompt;

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
        Err(e) => {
            eprintln!("p2pshare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let port = cli.opts.port_opt.or(cli.port);
    match cli.cmd {
        None => prompt::run(&cli.opts, port),
        Some(Cmd::Serve) => commands::serve(&cli.opts, port),
        Some(Cmd::List { wait, json }) => commands::list(&cli.opts, port, wait, json),
        Some(Cmd::Peers { wait, json }) => commands::peers(&cli.opts, port, wait, json),
        Some(Cmd::Get { name, timeout }) => commands::get(&cli.opts, port, &name, timeout),
    }
}
