//! `tutti`: the tutti media server's command line.

mod cluster;
mod config;
mod health;
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
    /// Ask a running server whether it is up (GET /healthz): exit 0 when it answers `ok`.
    Health(HealthArgs),
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

#[derive(Args, Debug)]
struct HealthArgs {
    /// TOML configuration, whose http.listen names the server (also TUTTI_CONFIG and the
    /// TUTTI_* variables, as for serve).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The URL to ask instead (e.g. http://127.0.0.1:8000/healthz).
    #[arg(long)]
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
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
        Command::Health(args) => {
            let url = match args.url {
                Some(url) => url,
                None => {
                    let path = serve::config_path(args.config);
                    let (config, _) = Config::load(path.as_deref(), std::env::vars())?;
                    health::url_for(config.http.listen)
                }
            };
            health::check(&url, std::time::Duration::from_secs(args.timeout))
        }
    }
}
