//! Settings: each comes from a flag, then an environment variable, then a default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    deploy::WebhookSettings, domain::rate_limit::RateLimit, engine::EngineSettings,
    store::DEFAULT_DATABASE_URL,
};

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

    /// The server's settings when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The server settings that apply: those given after `serve`, or, with no subcommand,
    /// those given on their own.
    pub fn serve_args(&self) -> &ServeArgs {
        match &self.command {
            Some(Command::Serve(args)) => args,
            _ => &self.serve,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage API tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Create a promotion and follow it to its end (exit codes: see --help).
    #[command(after_help = EXIT_CODES_HELP)]
    Promote(PromoteArgs),
    /// Follow a promotion to its end, with the same view and exit codes as promote.
    #[command(after_help = EXIT_CODES_HELP)]
    Watch(WatchArgs),
    /// Show a pipeline's stages, apps, current releases and required checks.
    Status(StatusArgs),
    /// Show what promoting from a stage would change; exit 0 when every target is
    /// promotable, 1 when one is not (20 refused, 21 unreachable).
    Diff(DiffArgs),
    /// Stop the line: no new deploy starts into the stage until the freeze ends.
    Freeze(FreezeArgs),
    /// Restart the line: lift a freeze early (admin tokens only).
    Unfreeze(UnfreezeArgs),
}

/// How the client commands end, for scripts.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  the promotion ended successful (with --dry-run: it would be accepted)
  10  failed: every target failed
  11  partially_failed: some targets failed
  12  canceled
  13  rejected by an approver
  20  refused by the server (a gate, bad input, permissions, or the token)
  21  the server could not be reached, or stopped answering
 130  interrupted (Ctrl-C): the promotion goes on; follow it again with `pipelines watch ID`";

/// Where the client commands find the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's address.
    #[arg(
        long,
        env = "PIPELINES_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// An API token (`pipelines tokens create`); none in protected mode.
    #[arg(long, env = "PIPELINES_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// text: a live view in a terminal, else one plain line per event; json: one JSON
    /// object per event, for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    /// The pipeline (name or id).
    #[arg(long)]
    pub pipeline: String,
    /// The source app (name or id), whose release is promoted to the next stage.
    #[arg(long)]
    pub from: String,
    /// Target apps, comma-separated; default: every app at the next stage.
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<String>,
    /// The release to promote (id); default: the source app's current release.
    #[arg(long)]
    pub release: Option<String>,
    /// Refuse when config var keys differ between the source and a target.
    #[arg(long, conflicts_with = "unsafe_promotion")]
    pub safe: bool,
    /// Bypass unmet required status checks (admin tokens only); recorded on the promotion.
    #[arg(long = "unsafe")]
    pub unsafe_promotion: bool,
    /// Print the plan and exit 0 when the promotion would be accepted; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// The promotion's id.
    pub promotion_id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The pipeline (name or id).
    pub pipeline: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The pipeline (name or id).
    pub pipeline: String,
    /// The stage promoted from.
    #[arg(long)]
    pub from: String,
    /// The stage promoted into (the one after --from, the default).
    #[arg(long)]
    pub to: Option<String>,
    /// The app promoted from, when --from has several.
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FreezeArgs {
    /// The pipeline (name or id).
    pub pipeline: String,
    /// The stage to freeze; repeat it, or separate stages with commas, to freeze several.
    #[arg(long = "stage", required = true, value_delimiter = ',')]
    pub stages: Vec<String>,
    /// Until when: an RFC 3339 time (2026-12-24T18:00:00Z) or a duration from now such as
    /// 90m, 2h or 1d.
    #[arg(long)]
    pub until: String,
    /// Why the line stops (at most 200 characters).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UnfreezeArgs {
    /// The pipeline (name or id).
    pub pipeline: String,
    /// The freeze's id, as `pipelines freeze` and `pipelines status` print it.
    pub freeze_id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it once. Only its hash is stored.
    Create {
        /// A name for the token, recorded on what its caller creates (^[a-z][a-z0-9-]{2,62}$).
        #[arg(long)]
        name: String,
        /// read: get, list, watch; write: adds create, update, promote; admin: adds elevated
        /// access (deleting couplings and pipelines, removing required checks, bypasses).
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
        /// The address `GET /account` answers with (Heroku clients show it); else the name.
        #[arg(long)]
        email: Option<String>,
        /// This token's own read limit, as <per second>/<burst> or 0 for none; else the
        /// server's --rate-limit-read.
        #[arg(long, value_parser = rate_limit_flag)]
        rate_limit_read: Option<RateLimit>,
        /// This token's own write limit, as --rate-limit-read.
        #[arg(long, value_parser = rate_limit_flag)]
        rate_limit_write: Option<RateLimit>,
    },
    /// List tokens with their roles and states, never their secrets.
    List,
    /// Revoke a token by name. It stops working at once, on every server process.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC (and, on the same port, REST).
    #[arg(long, env = "PIPELINES_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// How often, in milliseconds, the database is checked for the health service.
    #[arg(
        long,
        env = "PIPELINES_HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2000
    )]
    pub health_check_interval_ms: u64,

    /// How often, in milliseconds, the in-memory read model reloads everything. Changes
    /// reach it at once; this bounds the harm of a change notification that was lost.
    #[arg(long, env = "PIPELINES_RESYNC_INTERVAL_MS", default_value_t = 30_000)]
    pub resync_interval_ms: u64,

    /// How many promotion targets this process deploys at the same time.
    #[arg(long, env = "PIPELINES_MAX_PARALLEL_TARGETS", default_value_t = 8)]
    pub max_parallel_targets: usize,

    /// How a promotion target's release is deployed: `local` records it as current (the
    /// service is the system of record); `webhook` POSTs it to --webhook-url.
    #[arg(long, env = "PIPELINES_DEPLOYER", value_enum, default_value_t = DeployerKind::Local)]
    pub deployer: DeployerKind,

    /// The URL the webhook deployer POSTs each release to.
    #[arg(long, env = "PIPELINES_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// The key of the HMAC-SHA256 signature in the X-Pipelines-Signature header.
    #[arg(long, env = "PIPELINES_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Bound on each webhook request, in milliseconds.
    #[arg(long, env = "PIPELINES_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Retries after a network error or a 5xx answer, with doubling backoff from 500 ms.
    #[arg(long, env = "PIPELINES_WEBHOOK_RETRIES", default_value_t = 3)]
    pub webhook_retries: u32,

    /// How long, in seconds, a process's claim on a target lasts without renewal. After it,
    /// another process takes over the target of a process that died.
    #[arg(long, env = "PIPELINES_LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u64,

    /// Hosts that coupling verifications' HTTP checks may probe, comma-separated: exact
    /// host names or IP literals, or `*.suffix` patterns. Default: none, so no coupling
    /// can have an HTTP check.
    #[arg(long, env = "PIPELINES_VERIFICATION_HOSTS", value_delimiter = ',')]
    pub verification_hosts: Vec<String>,

    /// Audit log entries older than this many days are deleted in the background; 0 keeps
    /// them forever.
    #[arg(long, env = "PIPELINES_AUDIT_RETENTION_DAYS", default_value_t = 400)]
    pub audit_retention_days: u32,

    /// Each token's reads (gets, lists, watches) in this process, as <per second>/<burst>,
    /// or 0 for no limit. A token's own limit overrides it.
    #[arg(long, env = "PIPELINES_RATE_LIMIT_READ", default_value = "200/400", value_parser = rate_limit_flag)]
    pub rate_limit_read: RateLimit,

    /// Each token's writes in this process, as --rate-limit-read.
    #[arg(long, env = "PIPELINES_RATE_LIMIT_WRITE", default_value = "50/100", value_parser = rate_limit_flag)]
    pub rate_limit_write: RateLimit,

    /// Allow unauthenticated calls on a non-loopback address while no token exists.
    /// Without it the server refuses to start there until a token is created.
    #[arg(long, env = "PIPELINES_INSECURE")]
    pub insecure: bool,

    /// PEM certificate chain; enables TLS (with --tls-key).
    #[arg(long, env = "PIPELINES_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "PIPELINES_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    #[arg(long, env = "PIPELINES_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// A rate limit flag's value, `<per second>/<burst>` or `0`.
fn rate_limit_flag(text: &str) -> Result<RateLimit, String> {
    RateLimit::parse("rate limit", text).map_err(|invalid| invalid.reason)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeployerKind {
    /// The release becomes current in this service, which is the system of record.
    Local,
    /// Each release is POSTed, signed, to --webhook-url.
    Webhook,
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
    pub resync_interval: Duration,
    pub insecure: bool,
    /// How long audit log entries are kept; `None` keeps them forever.
    pub audit_retention: Option<chrono::Duration>,
    pub tls: Option<TlsSettings>,
    pub engine: EngineSettings,
    /// `None` for the local deployer.
    pub webhook: Option<WebhookSettings>,
    /// The rate limits of tokens that have none of their own.
    pub rate_limits: crate::rate_limits::DefaultLimits,
}

/// Where the server's TLS material lives.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl Settings {
    pub fn from_cli(cli: &Cli) -> Self {
        let serve = cli.serve_args();
        Self {
            listen: serve.listen,
            database_url: cli.database_url.clone(),
            health_check_interval: Duration::from_millis(serve.health_check_interval_ms.max(50)),
            resync_interval: Duration::from_millis(serve.resync_interval_ms.max(100)),
            insecure: serve.insecure,
            audit_retention: (serve.audit_retention_days > 0)
                .then(|| chrono::Duration::days(i64::from(serve.audit_retention_days))),
            webhook: (serve.deployer == DeployerKind::Webhook).then(|| WebhookSettings {
                url: serve.webhook_url.clone().unwrap_or_default(),
                secret: serve.webhook_secret.clone().unwrap_or_default(),
                timeout: Duration::from_millis(serve.webhook_timeout_ms.max(1)),
                retries: serve.webhook_retries,
                backoff: Duration::from_millis(500),
            }),
            engine: EngineSettings {
                max_parallel_targets: serve.max_parallel_targets.max(1),
                lease_ttl: Duration::from_secs(serve.lease_seconds.max(3)),
                verification_hosts: crate::domain::verification::AllowedHosts::new(
                    serve.verification_hosts.iter().cloned(),
                ),
                ..EngineSettings::default()
            },
            rate_limits: crate::rate_limits::DefaultLimits {
                read: serve.rate_limit_read,
                write: serve.rate_limit_write,
            },
            tls: match (&serve.tls_cert, &serve.tls_key) {
                (Some(cert), Some(key)) => Some(TlsSettings {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: serve.tls_client_ca.clone(),
                }),
                _ => None,
            },
        }
    }
}
