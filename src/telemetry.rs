//! Structured logging with `tracing`: pretty or JSON lines on stderr, level from
//! `RUST_LOG`. Stdout is left to command output, such as a newly created token.
//!
//! Lines are handed to a writer thread that batches them into few writes, so a request
//! never waits on the terminal or the log collector. If that thread falls more than
//! [`BUFFERED_LINES`] lines behind, further lines are dropped rather than stalling requests.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines waiting for the writer thread at most. The queue is allocated up front, so it is
/// kept small; a writer this far behind means the log destination is stalled.
pub const BUFFERED_LINES: usize = 16_384;

/// Installs the global subscriber. Later calls are ignored, so tests may call it freely.
/// Keep the returned guard until the process ends: dropping it flushes the last lines.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    // Colour codes only for a person at a terminal; collectors get plain lines.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}
