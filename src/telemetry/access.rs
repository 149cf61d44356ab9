//! The access-log line: one per request, so it is written by hand.
//!
//! `tracing-subscriber` formats an event through a generic field visitor, looks up its
//! span's formatted fields and formats the time through a general calendar routine; on
//! the cheapest endpoint that was a tenth of the server's CPU. The line here is the same
//! line, byte for byte in layout (pretty or JSON), built straight into a per-thread buffer
//! and handed to the log writer.
//!
//! The hand-written path is taken when the level filter is static and the output is not a
//! terminal. Otherwise (filters on spans or fields, which need the span in scope, or
//! colour for a person) the line goes through `tracing` as an ordinary event.

use std::{
    cell::RefCell,
    io::Write as _,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::batched::BatchedWriter;
use crate::config::LogFormat;

/// The target of the span every request is served in: the request layer's module.
const SPAN_TARGET: &str = "pipelines::startup::middleware";

/// The target the access line is logged under, below the span's, so that a filter on the
/// request layer covers both and `RUST_LOG=info,pipelines::startup::middleware::access=off`
/// turns off the access line alone.
pub const TARGET: &str = "pipelines::startup::middleware::access";

/// What the access line says about one request.
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    /// The caller's name; `None` for the paths open to all and refused requests.
    pub caller: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// The gRPC status sent in the response headers, or `""`.
    pub grpc_status: &'a str,
    pub elapsed: Duration,
}

impl AccessRecord<'_> {
    /// The latency in milliseconds, to the microsecond.
    fn elapsed_ms(&self) -> f64 {
        // Microseconds fit an f64 exactly for 285 years.
        self.elapsed.as_micros() as f64 / 1000.0
    }

    /// [`Self::elapsed_ms`] as `{:?}` writes it (`0.412`, `1.5`, `3000.0`), without
    /// floating-point formatting.
    fn write_elapsed_ms(&self, line: &mut Vec<u8>) {
        let micros = self.elapsed.as_micros();
        let (whole, mut fraction) = (micros / 1000, (micros % 1000) as u64);
        write_integer(line, u64::try_from(whole).unwrap_or(u64::MAX));
        line.push(b'.');
        if fraction == 0 {
            line.push(b'0');
            return;
        }
        let mut digits = 3;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        write_padded(line, fraction, digits);
    }
}

/// Where access lines go when they skip `tracing`.
pub(super) enum Sink {
    /// The filter turns the access line off.
    Off,
    Lines {
        writer: BatchedWriter,
        format: LogFormat,
    },
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub(super) fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

/// The span a request is served in: every line logged while serving it carries the
/// request's id and its caller.
pub fn request_span(request_id: &str, caller: Option<&str>) -> tracing::Span {
    match caller {
        Some(caller) => {
            tracing::info_span!(target: SPAN_TARGET, "request", request_id = %request_id, caller)
        }
        None => tracing::info_span!(target: SPAN_TARGET, "request", request_id = %request_id),
    }
}

/// Logs the access line of a request served in `span`.
pub fn log(record: &AccessRecord<'_>, span: &tracing::Span) {
    match SINK.get() {
        Some(Sink::Off) => {}
        Some(Sink::Lines { writer, format }) => LINE.with(|line| {
            // A line being built cannot be re-entered: nothing here logs.
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            line.clear();
            match format {
                LogFormat::Pretty => write_pretty(&mut line, record),
                LogFormat::Json => write_json(&mut line, record),
            }
            writer.write_line(&line);
        }),
        None => span.in_scope(|| {
            tracing::info!(
                target: TARGET,
                method = %record.method,
                path = %record.path,
                status = record.status,
                grpc_status = record.grpc_status,
                elapsed_ms = record.elapsed_ms(),
                "request"
            );
        }),
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The formatted date and time to the second, for the second last formatted.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-11-27T10:59:36.940297Z`, as `tracing-subscriber` writes it.
fn write_timestamp(line: &mut Vec<u8>) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let time = chrono::DateTime::from_timestamp(second as i64, 0).unwrap_or_default();
            cached.1 = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            cached.0 = second;
        }
        line.extend_from_slice(cached.1.as_bytes());
    });
    let micros = since_epoch.subsec_micros();
    line.push(b'.');
    write_padded(line, u64::from(micros), 6);
    line.push(b'Z');
}

/// The line of `tracing-subscriber`'s full format without colour.
fn write_pretty(line: &mut Vec<u8>, record: &AccessRecord<'_>) {
    write_timestamp(line);
    line.extend_from_slice(b"  INFO request{request_id=");
    line.extend_from_slice(record.request_id.as_bytes());
    if let Some(caller) = record.caller {
        line.extend_from_slice(b" caller=");
        debug_string(line, caller);
    }
    line.extend_from_slice(b"}: ");
    line.extend_from_slice(TARGET.as_bytes());
    line.extend_from_slice(b": request method=");
    line.extend_from_slice(record.method.as_bytes());
    line.extend_from_slice(b" path=");
    line.extend_from_slice(record.path.as_bytes());
    line.extend_from_slice(b" status=");
    write_integer(line, u64::from(record.status));
    line.extend_from_slice(b" grpc_status=");
    debug_string(line, record.grpc_status);
    line.extend_from_slice(b" elapsed_ms=");
    record.write_elapsed_ms(line);
    line.push(b'\n');
}

/// `value` as `{:?}` writes it: quoted, escaped where it needs escaping.
fn debug_string(line: &mut Vec<u8>, value: &str) {
    let plain = value
        .bytes()
        .all(|byte| (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\');
    if plain {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{value:?}");
    }
}

/// A decimal integer in exactly `width` digits, zero-padded (`value` must fit).
fn write_padded(line: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = line.len();
    line.resize(start + width, b'0');
    for position in (start..start + width).rev() {
        line[position] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A decimal integer.
fn write_integer(line: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    line.extend_from_slice(&digits[start..]);
}

/// The line of `tracing-subscriber`'s JSON format with the event's fields flattened.
fn write_json(line: &mut Vec<u8>, record: &AccessRecord<'_>) {
    line.extend_from_slice(br#"{"timestamp":""#);
    write_timestamp(line);
    line.extend_from_slice(br#"","level":"INFO","message":"request","method":"#);
    json_string(line, record.method);
    line.extend_from_slice(br#","path":"#);
    json_string(line, record.path);
    line.extend_from_slice(br#","status":"#);
    write_integer(line, u64::from(record.status));
    line.extend_from_slice(br#","grpc_status":"#);
    json_string(line, record.grpc_status);
    line.extend_from_slice(br#","elapsed_ms":"#);
    record.write_elapsed_ms(line);
    line.extend_from_slice(br#","target":""#);
    line.extend_from_slice(TARGET.as_bytes());
    line.extend_from_slice(br#"","span":"#);
    let span_start = line.len();
    line.push(b'{');
    if let Some(caller) = record.caller {
        line.extend_from_slice(br#""caller":"#);
        json_string(line, caller);
        line.push(b',');
    }
    line.extend_from_slice(br#""request_id":"#);
    json_string(line, record.request_id);
    line.extend_from_slice(br#","name":"request"}"#);
    let span = line[span_start..].to_vec();
    line.extend_from_slice(br#","spans":["#);
    line.extend_from_slice(&span);
    line.extend_from_slice(b"]}\n");
}

/// `value` as a JSON string, escaped.
fn json_string(line: &mut Vec<u8>, value: &str) {
    // Writing a string into a vector cannot fail.
    let _ = serde_json::to_writer(&mut *line, value);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn record<'a>(caller: Option<&'a str>, path: &'a str) -> AccessRecord<'a> {
        AccessRecord {
            request_id: "deploy-7f3a",
            caller,
            method: "GET",
            path,
            status: 200,
            grpc_status: "",
            elapsed: Duration::from_micros(412),
        }
    }

    /// The line `tracing-subscriber` writes for the access event, in `format`.
    fn through_tracing(format: LogFormat, record: &AccessRecord<'_>) -> Vec<u8> {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let lines = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer);
        let subscriber: Box<dyn tracing::Subscriber + Send + Sync> = match format {
            LogFormat::Pretty => Box::new(tracing_subscriber::registry().with(lines)),
            LogFormat::Json => {
                Box::new(tracing_subscriber::registry().with(lines.json().flatten_event(true)))
            }
        };
        tracing::subscriber::with_default(subscriber, || {
            let span = request_span(record.request_id, record.caller);
            log(record, &span);
        });
        let line = captured.0.lock().unwrap().clone();
        line
    }

    fn by_hand(format: LogFormat, record: &AccessRecord<'_>) -> Vec<u8> {
        let mut line = Vec::new();
        match format {
            LogFormat::Pretty => write_pretty(&mut line, record),
            LogFormat::Json => write_json(&mut line, record),
        }
        line
    }

    /// The line with its timestamp (27 characters) cut out, after checking it is one.
    fn without_timestamp(line: &[u8]) -> String {
        let line = String::from_utf8(line.to_vec()).unwrap();
        let start = line.find("20").unwrap();
        let time = &line[start..start + 27];
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "a timestamp: {line}"
        );
        format!("{}{}", &line[..start], &line[start + 27..])
    }

    #[test]
    fn the_line_written_by_hand_is_the_line_tracing_writes() {
        let quoted = "bot \"quoted\" \\ \n";
        for format in [LogFormat::Pretty, LogFormat::Json] {
            for record in [
                record(Some("ci-bot"), "/pipelines"),
                record(None, "/healthz"),
                record(Some(quoted), "/pipelines/a\"b"),
                record(Some("café bot"), "/pipelines/caf%C3%A9"),
                AccessRecord {
                    status: 200,
                    grpc_status: "5",
                    elapsed: Duration::from_secs(3),
                    ..record(Some("ci-bot"), "/pipelines.v1.PipelineService/GetPipeline")
                },
            ]
            .into_iter()
            .chain(
                [0, 1, 10, 100, 999, 1_000, 1_500, 1_050, 12_345_678].map(|micros| AccessRecord {
                    elapsed: Duration::from_micros(micros),
                    ..record(Some("ci-bot"), "/pipelines")
                }),
            ) {
                assert_eq!(
                    without_timestamp(&by_hand(format, &record)),
                    without_timestamp(&through_tracing(format, &record)),
                    "{format:?}"
                );
            }
        }
    }

    #[test]
    fn the_json_line_is_one_escaped_object_with_the_span_fields() {
        let line = by_hand(
            LogFormat::Json,
            &record(Some("bot \"q\"\n"), "/pipelines/a\"b"),
        );
        assert_eq!(line.last(), Some(&b'\n'));
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["path"], "/pipelines/a\"b");
        assert_eq!(value["elapsed_ms"], 0.412);
        assert_eq!(value["span"]["caller"], "bot \"q\"\n");
        assert_eq!(value["spans"][0], value["span"]);
    }
}
