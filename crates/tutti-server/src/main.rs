//! `tutti`: the tutti media server's command line.

mod mixdown;

use clap::{Parser, Subcommand};

/// tutti, a real-time audio conferencing media server.
#[derive(Parser, Debug)]
#[command(name = "tutti", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mix WAV files as if each were a caller in one room: write what each caller hears and the
    /// room recording, and print the talk events.
    Mixdown(mixdown::MixdownArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Mixdown(args) => mixdown::run(args),
    }
}
