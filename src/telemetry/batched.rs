//! A log writer that batches lines in memory and writes them from its own thread.
//!
//! Writing a line costs a request a short lock and a copy: nothing wakes the writer thread
//! but the first line after it has written, and it then waits [`BATCH_WINDOW`] for more
//! before one write. Under load that is one write and one wake-up per batch rather than per
//! line. If the destination stalls and [`MAX_BUFFERED_LINES`] lines wait, further lines are
//! dropped, counted in `pipelines_log_lines_dropped_total`, rather than stalling requests.

use std::{
    io::Write,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

/// Lines waiting for the writer thread at most.
pub const MAX_BUFFERED_LINES: usize = 16_384;

/// How long the writer thread collects lines after the first one before it writes them.
pub const BATCH_WINDOW: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    dropped: u64,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    arrived: Condvar,
}

impl Shared {
    /// The pending lines. A thread that panicked while holding the lock left whole lines
    /// behind (lines are appended in one call), so the buffer stays usable.
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Hands lines to the writer thread; a `MakeWriter` for `tracing-subscriber`.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes the last lines and stops the writer thread when dropped.
pub struct BatchedWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer to `destination`, and the guard that flushes it.
pub fn batched(
    destination: impl Write + Send + 'static,
) -> std::io::Result<(BatchedWriter, BatchedWriterGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_batches(&shared, destination)
        })?;
    Ok((
        BatchedWriter {
            shared: Arc::clone(&shared),
        },
        BatchedWriterGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_batches(shared: &Shared, mut destination: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.pending();
        while pending.lines == 0 && !pending.closing {
            pending = shared
                .arrived
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if !pending.closing {
            // Let the lines of a burst gather into one write.
            drop(pending);
            std::thread::sleep(BATCH_WINDOW);
            pending = shared.pending();
        }
        std::mem::swap(&mut batch, &mut pending.bytes);
        pending.lines = 0;
        let dropped = std::mem::take(&mut pending.dropped);
        let closing = pending.closing;
        drop(pending);
        if dropped > 0 {
            metrics::counter!("pipelines_log_lines_dropped_total").increment(dropped);
        }
        // A destination that fails loses these lines; there is nowhere to report it.
        let _ = destination
            .write_all(&batch)
            .and_then(|()| destination.flush());
        batch.clear();
        if closing {
            return;
        }
    }
}

impl BatchedWriter {
    /// Queues one whole line (with its newline) for the writer thread.
    pub fn write_line(&self, line: &[u8]) {
        let mut pending = self.shared.pending();
        if pending.closing {
            return;
        }
        if pending.lines >= MAX_BUFFERED_LINES {
            pending.dropped += 1;
            return;
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        let first = pending.lines == 1;
        drop(pending);
        if first {
            self.shared.arrived.notify_one();
        }
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.write_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for BatchedWriterGuard {
    fn drop(&mut self) {
        self.shared.pending().closing = true;
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination the test can read back.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<u8>>>);

    impl Write for Collected {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_and_the_guard_writes_the_last_ones() {
        let destination = Collected::default();
        let (writer, guard) = batched(destination.clone()).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|thread| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for line in 0..500 {
                        writer
                            .write_all(format!("{thread} {line}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in writers {
            thread.join().unwrap();
        }
        drop(guard);
        let written = String::from_utf8(destination.0.lock().unwrap().clone()).unwrap();
        for thread in 0..4 {
            let lines: Vec<usize> = written
                .lines()
                .filter_map(|line| line.strip_prefix(&format!("{thread} ")))
                .map(|line| line.parse().unwrap())
                .collect();
            assert_eq!(lines, (0..500).collect::<Vec<_>>(), "thread {thread}");
        }
    }

    #[test]
    fn lines_beyond_the_bound_are_dropped_while_the_destination_stalls() {
        /// Blocks every write until the test lets it go.
        struct Stalled(Arc<Mutex<()>>, Collected);
        impl Write for Stalled {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let _wait = self.0.lock().unwrap();
                self.1.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let collected = Collected::default();
        let (mut writer, guard) = batched(Stalled(Arc::clone(&gate), collected.clone())).unwrap();
        // The first line is taken by the writer thread, which then stalls on the gate.
        writer.write_all(b"first\n").unwrap();
        while writer.shared.pending().lines > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for line in 0..MAX_BUFFERED_LINES + 100 {
            writer.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
        assert_eq!(writer.shared.pending().lines, MAX_BUFFERED_LINES);
        assert_eq!(writer.shared.pending().dropped, 100);
        drop(held);
        drop(guard);
        let written = String::from_utf8(collected.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 1 + MAX_BUFFERED_LINES);
        assert_eq!(written.lines().last(), Some("16383"));
    }
}
