//! Structured logging with `tracing`: pretty or JSON lines on stderr, level from
//! `RUST_LOG`. Stdout is left to command output, such as a newly created token.
//!
//! Lines are handed to a writer thread that batches them into few writes (see
//! [`batched`]), so a request never waits on the terminal or the log collector.

pub mod access;
mod batched;

use tracing_subscriber::{
    filter::Targets, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer,
};

pub use self::batched::{BatchedWriterGuard, BATCH_WINDOW, MAX_BUFFERED_LINES};
use crate::config::LogFormat;

/// The level filter from `RUST_LOG` (default `info`).
enum Filter {
    /// Plain `target=level` lists, the usual form: decided per call site, nothing per span.
    Static(Box<Targets>),
    /// Directives on spans or fields, which track every span.
    Dynamic(Box<EnvFilter>),
}

fn filter_from_env() -> Filter {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let directives = if directives.trim().is_empty() {
        "info".to_owned()
    } else {
        directives
    };
    if !directives.contains(['[', '{']) {
        if let Ok(targets) = directives.parse::<Targets>() {
            return Filter::Static(Box::new(targets));
        }
    }
    Filter::Dynamic(Box::new(
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info")),
    ))
}

/// Installs the global subscriber. Later calls are ignored, so tests may call it freely.
/// Keep the returned guard until the process ends: dropping it flushes the last lines.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> Option<BatchedWriterGuard> {
    let (writer, guard) = match batched::batched(std::io::stderr()) {
        Ok(started) => started,
        Err(error) => {
            eprintln!("pipelines: cannot start the log writer thread: {error}");
            return None;
        }
    };
    // Colour codes only for a person at a terminal; collectors get plain lines.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let filter = filter_from_env();
    // The access line skips `tracing` when its filter is fixed and nobody needs colour.
    let access = match &filter {
        Filter::Static(targets) if !terminal => Some(
            if targets.would_enable(access::TARGET, &tracing::Level::INFO) {
                access::Sink::Lines {
                    writer: writer.clone(),
                    format,
                }
            } else {
                access::Sink::Off
            },
        ),
        _ => None,
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(terminal)
        .with_writer(writer);
    let lines = match format {
        LogFormat::Pretty => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    let filter = match filter {
        Filter::Static(targets) => targets.boxed(),
        Filter::Dynamic(env_filter) => env_filter.boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init();
    if let (Ok(()), Some(access)) = (installed, access) {
        access::install(access);
    }
    Some(guard)
}
