use std::process::ExitCode;

use clap::Parser;
use pipelines::{
    auth::{TokenOptions, Tokens},
    client,
    config::{Cli, Command, Settings, TokensCommand},
    domain::rate_limit::{RateLimit, TokenLimits},
    startup::{self, Application},
    store, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_writer = telemetry::init(cli.log_format);
    let outcome = match cli.command {
        None | Some(Command::Serve(_)) => serve(Settings::from_cli(&cli)).await,
        Some(Command::Migrate) => migrate(&cli.database_url).await,
        Some(Command::Tokens { ref command }) => tokens(&cli.database_url, command).await,
        Some(Command::Promote(args)) => return client::promote(args).await,
        Some(Command::Watch(args)) => return client::watch(args).await,
        Some(Command::Status(args)) => return client::status(args).await,
        Some(Command::Diff(args)) => return client::diff(args).await,
        Some(Command::Freeze(args)) => return client::freeze(args).await,
        Some(Command::Unfreeze(args)) => return client::unfreeze(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pipelines: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let shutdown = startup::shutdown_signal();
    let app = Application::build(settings)
        .await
        .map_err(|error| error.to_string())?;
    app.run_until_stopped(shutdown)
        .await
        .map_err(|error| error.to_string())
}

async fn open_database(database_url: &str) -> Result<sea_orm::DatabaseConnection, String> {
    let db = store::connect(database_url)
        .await
        .map_err(|error| format!("cannot open the database: {}", store::describe(&error)))?;
    store::migrate(&db)
        .await
        .map_err(|error| format!("migration failed: {error}"))?;
    Ok(db)
}

async fn migrate(database_url: &str) -> Result<(), String> {
    open_database(database_url).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Writes command output to stdout. A reader that went away (`| head`) ends the output
/// quietly instead of failing the command.
fn print_line(line: std::fmt::Arguments<'_>) -> Result<(), String> {
    use std::io::Write;
    match writeln!(std::io::stdout(), "{line}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the output: {error}"))
        }
        _ => Ok(()),
    }
}

async fn tokens(database_url: &str, command: &TokensCommand) -> Result<(), String> {
    let tokens = Tokens::new(open_database(database_url).await?);
    match command {
        TokensCommand::Create {
            name,
            role,
            email,
            rate_limit_read,
            rate_limit_write,
        } => {
            let options = TokenOptions {
                email: email.clone(),
                limits: TokenLimits {
                    read: *rate_limit_read,
                    write: *rate_limit_write,
                },
            };
            let (info, secret) = tokens
                .create_with(name, role, options)
                .await
                .map_err(|error| error.to_string())?;
            eprintln!(
                "Created token '{}' with role {}. It is shown only this once:",
                info.name, info.role
            );
            print_line(format_args!("{secret}"))?;
        }
        TokensCommand::List => {
            let all = tokens.list().await.map_err(|error| error.to_string())?;
            print_line(format_args!(
                "{:<36} {:<32} {:<6} {:<12} {:<12} {:<25} {:<24} STATE",
                "ID", "NAME", "ROLE", "READ LIMIT", "WRITE LIMIT", "EMAIL", "CREATED"
            ))?;
            let limit = |own: Option<RateLimit>| {
                own.map_or_else(|| "default".to_owned(), |limit| limit.to_string())
            };
            for token in all {
                let state = match token.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                print_line(format_args!(
                    "{:<36} {:<32} {:<6} {:<12} {:<12} {:<25} {:<24} {state}",
                    token.id,
                    token.name,
                    token.role.as_str(),
                    limit(token.limits.read),
                    limit(token.limits.write),
                    token.email.as_deref().unwrap_or("-"),
                    token.created_at.format("%Y-%m-%dT%H:%M:%SZ")
                ))?;
            }
        }
        TokensCommand::Revoke { name } => {
            let info = tokens
                .revoke(name)
                .await
                .map_err(|error| error.to_string())?;
            print_line(format_args!("Revoked token '{}'.", info.name))?;
        }
    }
    Ok(())
}
