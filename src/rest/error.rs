//! The one mapping from errors to HTTP: each service error's status, and the
//! `{"code", "message", "details"}` body every error response carries.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::{
    domain::{bounded_message, quoted},
    error::{Error, ErrorDetail},
};

/// Everything a REST call can fail with: a service error, or a request the gateway could
/// not read.
#[derive(Debug)]
pub enum ApiError {
    Service(Error),
    /// The body is not JSON at all.
    MalformedJson(String),
    /// A body was required and none came.
    MissingBody,
    /// A path parameter, query string or body could not be read: `part` names which.
    BadRequest {
        part: &'static str,
        reason: String,
    },
    UnknownPath(String),
    MethodNotAllowed,
    /// A `Range` header that cannot be used: 416.
    UnusableRange(crate::domain::range::UnusableRange),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::Service(error)
    }
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The gRPC status code number, as the gRPC API would answer.
    code: i32,
    /// What went wrong, for people; it names the field, quoting at most 200 characters.
    message: String,
    /// Machine-readable details, each with an `@type`: `google.rpc.BadRequest` naming the
    /// field on every INVALID_ARGUMENT, `google.rpc.PreconditionFailure` for unmet status
    /// checks, `pipelines.v1.ConfigDrift` for config drift, `pipelines.v1.Frozen` for a
    /// frozen stage, `google.rpc.RetryInfo` when rate limited.
    details: Vec<serde_json::Value>,
}

impl ApiError {
    fn parts(self) -> (StatusCode, tonic::Code, String, Vec<serde_json::Value>) {
        match self {
            ApiError::Service(error) => {
                error.log_cause();
                let details = error.details().map(detail_json).into_iter().collect();
                (
                    error.http_status(),
                    error.grpc_code(),
                    error.client_message(),
                    details,
                )
            }
            ApiError::MalformedJson(reason) => unreadable(
                "body",
                format!("malformed JSON body: the body must be a JSON object ({reason})"),
            ),
            ApiError::MissingBody => unreadable("body", "a JSON body is required".into()),
            ApiError::BadRequest { part, reason } => unreadable(part, reason),
            ApiError::UnknownPath(path) => (
                StatusCode::NOT_FOUND,
                tonic::Code::NotFound,
                format!("no such path: {}", quoted(&path)),
                Vec::new(),
            ),
            ApiError::UnusableRange(unusable) => {
                let message =
                    bounded_message(format!("unusable Range header: {}", unusable.reason));
                let detail = bad_request_json(&format!("Range.{}", unusable.part), &message);
                (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    tonic::Code::InvalidArgument,
                    message,
                    vec![detail],
                )
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                tonic::Code::Unimplemented,
                "method not allowed on this path".into(),
                Vec::new(),
            ),
        }
    }
}

/// A request part the gateway could not read: 400, INVALID_ARGUMENT, with a
/// `google.rpc.BadRequest` naming the part.
fn unreadable(
    part: &str,
    reason: String,
) -> (StatusCode, tonic::Code, String, Vec<serde_json::Value>) {
    let message = bounded_message(reason);
    let detail = bad_request_json(part, &message);
    (
        StatusCode::BAD_REQUEST,
        tonic::Code::InvalidArgument,
        message,
        vec![detail],
    )
}

/// `google.rpc.BadRequest` in JSON, with one field violation.
fn bad_request_json(field: &str, description: &str) -> serde_json::Value {
    serde_json::json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"field": field, "description": bounded_message(description.to_owned())}],
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details) = self.parts();
        let body = ErrorBody {
            code: code as i32,
            message,
            details,
        };
        (status, Json(body)).into_response()
    }
}

/// The JSON form of an error's details: the same `google.rpc` and `pipelines.v1` messages
/// the gRPC API attaches, with each violation's check spelled out.
fn detail_json(detail: ErrorDetail<'_>) -> serde_json::Value {
    let type_url = detail.type_url();
    match detail {
        ErrorDetail::UnmetStatusChecks(unmet) => serde_json::json!({
            "@type": type_url,
            "violations": unmet.iter().map(|verdict| serde_json::json!({
                "type": "STATUS_CHECK",
                "subject": verdict.subject(),
                "description": verdict.describe(),
                "app": {"id": verdict.check.app_id, "name": verdict.check.app_name},
                "stage": verdict.check.stage.as_str(),
                "context": verdict.check.context,
                "state": verdict.state.map(|state| state.as_str()),
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::ConfigDrift(drift) => serde_json::json!({
            "@type": type_url,
            "targets": drift.iter().map(|target| serde_json::json!({
                "app": {"id": target.app.id, "name": target.app.name},
                "missing_on_target": target.missing_on_target,
                "missing_on_source": target.missing_on_source,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::Frozen(frozen) => serde_json::json!({
            "@type": type_url,
            "stage": frozen.stage.as_str(),
            "reason": frozen.reason,
            "until": frozen.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "freeze_id": frozen.freeze_id,
        }),
        ErrorDetail::BadRequest(invalid) => bad_request_json(&invalid.field, &invalid.reason),
        ErrorDetail::RetryInfo(delay) => serde_json::json!({
            "@type": type_url,
            "retry_delay": format!("{}.{:03}s", delay.as_secs(), delay.subsec_millis()),
        }),
    }
}
