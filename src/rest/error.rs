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
    /// The body exceeds the gateway's limit.
    BodyTooLarge,
    /// A path parameter or query string could not be read.
    BadRequest(String),
    UnknownPath(String),
    MethodNotAllowed,
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
    /// Machine-readable details: `google.rpc.PreconditionFailure` for unmet status checks,
    /// `pipelines.v1.ConfigDrift` for config drift, each with an `@type`.
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
            ApiError::MalformedJson(reason) => (
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                bounded_message(format!(
                    "malformed JSON body: the body must be a JSON object ({reason})"
                )),
                Vec::new(),
            ),
            ApiError::MissingBody => (
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                "a JSON body is required".into(),
                Vec::new(),
            ),
            ApiError::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                tonic::Code::InvalidArgument,
                "the request body exceeds 1 MiB".into(),
                Vec::new(),
            ),
            ApiError::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                bounded_message(reason),
                Vec::new(),
            ),
            ApiError::UnknownPath(path) => (
                StatusCode::NOT_FOUND,
                tonic::Code::NotFound,
                format!("no such path: {}", quoted(&path)),
                Vec::new(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                tonic::Code::Unimplemented,
                "method not allowed on this path".into(),
                Vec::new(),
            ),
        }
    }
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
    }
}
