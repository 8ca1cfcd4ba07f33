//! `tutti`: the tutti media server's command line.

mod cluster;
mod config;
mod media;
mod mixdown;
mod prompts;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// tutti, a real-time audio conferencing media server.
#[derive(Parser, Debug)]
#[command(name = "tutti", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the HTTP API and the media plane.
    Serve(ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Mix WAV files as if each were a caller in one room: write what each caller hears and the
    /// room recording, and print the talk events.
    Mixdown(mixdown::MixdownArgs),
}

/// Settings shared by the commands that read the configuration.
#[derive(Args, Debug)]
struct ConfigArgs {
    /// TOML configuration (see deploy/tutti.example.toml); also TUTTI_CONFIG.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The SQLite database (overrides storage.path).
    #[arg(long)]
    database: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// HTTP listen address (overrides http.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum AccountsCommand {
    /// Create an account; prints its id and API key (the key is shown only once).
    Create {
        /// The account's name.
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// The configuration, and warnings about it to log once logging runs.
fn load(args: &ConfigArgs) -> anyhow::Result<(Config, Vec<String>)> {
    let path = serve::config_path(args.config.clone());
    let (mut config, warnings) = Config::load(path.as_deref(), std::env::vars())?;
    if let Some(database) = &args.database {
        config.storage.path = database.clone();
    }
    Ok((config, warnings))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let (mut config, warnings) = load(&args.config)?;
            if let Some(listen) = args.listen {
                config.http.listen = listen;
            }
            serve::serve(config, &warnings)
        }
        Command::Accounts(AccountsCommand::Create { name, config }) => {
            let (config, warnings) = load(&config)?;
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            serve::create_account(config, &name)
        }
        Command::Mixdown(args) => mixdown::run(args),
    }
}
