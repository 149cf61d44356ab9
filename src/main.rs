use std::process::ExitCode;

use clap::Parser;
use pipelines::{
    config::{Cli, Command, Settings},
    startup::{self, Application},
    store, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(Settings::from_cli(&cli)).await,
        Some(Command::Migrate) => migrate(&cli.database_url).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("pipelines: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings)
        .await
        .map_err(|error| error.to_string())?;
    app.run_until_stopped(startup::shutdown_signal())
        .await
        .map_err(|error| error.to_string())
}

async fn migrate(database_url: &str) -> Result<(), String> {
    let db = store::connect(database_url)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    store::migrate(&db)
        .await
        .map_err(|error| format!("migration failed: {error}"))?;
    tracing::info!("migrations applied");
    Ok(())
}
