//! Per-request series: a counter and a latency histogram for every REST request and gRPC
//! call. Label values come from closed sets (route templates, the gRPC methods the server
//! serves, standard HTTP methods, status codes), so clients cannot create series at will.
//!
//! Looking a series up in the recorder builds its key and hashes its labels; a request
//! should not pay that. Each worker thread keeps the handles of the series it has recorded
//! to, by label values, so a request costs two map lookups and two atomic updates.

use std::{cell::RefCell, collections::HashMap, sync::OnceLock, time::Duration};

use metrics::{counter, histogram, Counter, Histogram};
use prost::Message;

/// The two series one request records to.
#[derive(Clone)]
struct RequestSeries {
    requests: Counter,
    duration: Histogram,
}

/// Handles by the first label (route or gRPC method), then the rest, which take few values.
type SeriesByLabels<K> = HashMap<Box<str>, Vec<(K, RequestSeries)>>;

thread_local! {
    static HTTP_SERIES: RefCell<SeriesByLabels<(&'static str, u16)>> = RefCell::new(HashMap::new());
    static GRPC_SERIES: RefCell<SeriesByLabels<&'static str>> = RefCell::new(HashMap::new());
}

/// Finds the handles for `(first, rest)` in this thread's cache, or makes them.
fn series_for<K: Copy + PartialEq>(
    cache: &'static std::thread::LocalKey<RefCell<SeriesByLabels<K>>>,
    first: &str,
    rest: K,
    make: impl FnOnce() -> RequestSeries,
) -> RequestSeries {
    cache.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache
            .get(first)
            .and_then(|known| known.iter().find(|(key, _)| *key == rest))
        {
            return found.1.clone();
        }
        let made = make();
        cache
            .entry(first.into())
            .or_default()
            .push((rest, made.clone()));
        made
    })
}

/// An HTTP method as a label: the standard ones by name, anything else as `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        axum::http::Method::CONNECT => "CONNECT",
        axum::http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// One REST request: `route` is the matched route template, or `unmatched`.
pub fn record_http(route: &str, method: &axum::http::Method, status: u16, elapsed: Duration) {
    let method = method_label(method);
    let series = series_for(&HTTP_SERIES, route, (method, status), || RequestSeries {
        requests: counter!(
            "pipelines_http_requests_total",
            "route" => route.to_owned(),
            "method" => method,
            "status" => status.to_string()
        ),
        duration: histogram!(
            "pipelines_http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method
        ),
    });
    series.requests.increment(1);
    series.duration.record(elapsed.as_secs_f64());
}

/// gRPC status codes by number, as labels.
const GRPC_CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// A `grpc-status` value as a label; anything but a known code is `unknown`.
fn grpc_code_label(code: &str) -> &'static str {
    code.parse::<usize>()
        .ok()
        .and_then(|number| GRPC_CODES.get(number).copied())
        .unwrap_or("unknown")
}

/// One gRPC call: `path` is the request's path, labelled as itself when it names a method
/// the server serves, else `unknown` (whatever the answer, even UNAUTHENTICATED).
pub fn record_grpc(path: &str, code: &str, elapsed: Duration) {
    let method = grpc_method_label(path);
    let code = grpc_code_label(code);
    let series = series_for(&GRPC_SERIES, method, code, || RequestSeries {
        requests: counter!(
            "pipelines_grpc_requests_total",
            "method" => method.to_owned(),
            "code" => code
        ),
        duration: histogram!(
            "pipelines_grpc_request_duration_seconds",
            "method" => method.to_owned()
        ),
    });
    series.requests.increment(1);
    series.duration.record(elapsed.as_secs_f64());
}

/// The path as a label when it is a method the server serves, else `unknown`.
pub(super) fn grpc_method_label(path: &str) -> &str {
    if served_grpc_methods().contains(path) {
        path
    } else {
        "unknown"
    }
}

/// `/package.Service/Method` for every method of the services this server registers:
/// its own, health and reflection.
fn served_grpc_methods() -> &'static std::collections::HashSet<String> {
    static METHODS: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    METHODS.get_or_init(|| {
        [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .filter_map(|encoded| prost_types::FileDescriptorSet::decode(encoded).ok())
        .flat_map(|set| set.file)
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.into_iter().flat_map(move |service| {
                let prefix = format!("/{package}.{}/", service.name());
                service
                    .method
                    .into_iter()
                    .map(move |method| format!("{prefix}{}", method.name()))
            })
        })
        .collect()
    })
}
