//! Settings: each comes from a flag, then an environment variable, then a default.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::store::DEFAULT_DATABASE_URL;

#[derive(Debug, Parser)]
#[command(
    name = "pipelines",
    version,
    about = "Release-promotion service: pipelines, couplings and promotions over gRPC and REST"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Database to use: `sqlite://FILE?mode=rwc` (embedded) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Log output format. The level is set with RUST_LOG (default: info).
    #[arg(long, env = "PIPELINES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC (and, on the same port, REST).
    #[arg(
        long,
        env = "PIPELINES_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub listen: SocketAddr,

    /// How often, in milliseconds, the database is checked for the health service.
    #[arg(
        long,
        env = "PIPELINES_HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2000,
        global = true
    )]
    pub health_check_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, multi-field lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub health_check_interval: Duration,
}

impl Settings {
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            listen: cli.serve.listen,
            database_url: cli.database_url.clone(),
            health_check_interval: Duration::from_millis(
                cli.serve.health_check_interval_ms.max(50),
            ),
        }
    }
}
