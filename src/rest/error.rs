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
    error::Error,
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

#[derive(Serialize)]
struct ErrorBody {
    code: i32,
    message: String,
    details: Vec<serde_json::Value>,
}

/// The HTTP status of a service error.
pub fn http_status(error: &Error) -> StatusCode {
    match error {
        Error::InvalidArgument(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::AlreadyExists(_) => StatusCode::CONFLICT,
        Error::FailedPrecondition(_) | Error::UnmetStatusChecks { .. } => StatusCode::CONFLICT,
        Error::ConfigDrift { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    fn parts(self) -> (StatusCode, tonic::Code, String, Vec<serde_json::Value>) {
        match self {
            ApiError::Service(error) => {
                match &error {
                    Error::Internal(cause) => tracing::error!(%cause, "internal error"),
                    Error::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
                    _ => {}
                }
                let details = details_of(&error);
                (
                    http_status(&error),
                    error.grpc_code(),
                    error.client_message(),
                    details,
                )
            }
            ApiError::MalformedJson(reason) => (
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                bounded_message(format!("malformed JSON body: {reason}")),
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

/// Machine-readable details, in the JSON form of the same google.rpc and pipelines.v1
/// messages the gRPC API attaches.
fn details_of(error: &Error) -> Vec<serde_json::Value> {
    match error {
        Error::UnmetStatusChecks { unmet, .. } => vec![serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
            "violations": unmet.iter().map(|verdict| serde_json::json!({
                "type": "STATUS_CHECK",
                "subject": verdict.subject(),
                "description": verdict.describe(),
                "app": {"id": verdict.check.app_id, "name": verdict.check.app_name},
                "stage": verdict.check.stage.as_str(),
                "context": verdict.check.context,
                "state": verdict.state.map(|state| state.as_str()),
            })).collect::<Vec<_>>(),
        })],
        Error::ConfigDrift { drift, .. } => vec![serde_json::json!({
            "@type": "type.googleapis.com/pipelines.v1.ConfigDrift",
            "targets": drift.iter().map(|target| serde_json::json!({
                "app": {"id": target.app.id, "name": target.app.name},
                "missing_on_target": target.missing_on_target,
                "missing_on_source": target.missing_on_source,
            })).collect::<Vec<_>>(),
        })],
        _ => Vec::new(),
    }
}
