//! Request extractors whose every rejection is an [`ApiError`], so that malformed input
//! gets the gateway's error body and a 4xx, never a bare text response.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::{domain::access::Caller, error::Error};

/// The largest request body the gateway reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Syntax errors are 400; a body of the wrong shape is 422 naming the field.
/// The content type is not checked, since Akkeris clients do not always send one.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::Service(Error::TooLarge(format!(
                        "the request body exceeds {} MiB",
                        MAX_BODY_BYTES / (1024 * 1024)
                    )))
                } else {
                    ApiError::BadRequest {
                        part: "body",
                        reason: rejection.body_text(),
                    }
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MissingBody);
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON object body, telling syntax errors (400) from shape errors (422 naming
/// the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::Service(Error::invalid(
            "body",
            "must be a JSON object",
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let reason = strip_position(&error.into_inner().to_string());
        // serde names an unknown field in the path when it is nested, and not at the top.
        let field = match (unknown_field(&reason), path.as_str()) {
            (Some(unknown), ".") => unknown.to_owned(),
            (Some(unknown), nested) if !nested.ends_with(unknown) => format!("{nested}.{unknown}"),
            (None, ".") => "body".to_owned(),
            _ => path.clone(),
        };
        ApiError::Service(Error::invalid(field, reason))
    })
}

/// The name in serde's "unknown field `colour`, expected ..." message: a body field that
/// the request does not take is named as the field at fault.
fn unknown_field(reason: &str) -> Option<&str> {
    reason
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// serde_json appends " at line 1 column 12" to messages; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Path parameters, with a 400 in the gateway's shape when they cannot be read.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParams(value))
            .map_err(|rejection| ApiError::BadRequest {
                part: "path",
                reason: rejection.body_text(),
            })
    }
}

/// Query parameters, with a 400 in the gateway's shape when they cannot be read.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| QueryParams(value))
            .map_err(|rejection| ApiError::BadRequest {
                part: "query",
                reason: rejection.body_text(),
            })
    }
}

/// The caller the authentication layer attached to the request.
pub struct AuthenticatedCaller(pub Caller);

impl<S> FromRequestParts<S> for AuthenticatedCaller
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(AuthenticatedCaller)
            .ok_or_else(|| {
                ApiError::Service(Error::Unauthenticated("no authenticated caller".into()))
            })
    }
}

/// The `Last-Event-ID` header of a stream that resumes: a sequence number, if given.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|sequence| *sequence >= 0)
                .ok_or_else(|| {
                    ApiError::Service(crate::error::Error::invalid(
                        "Last-Event-ID",
                        "must be an event sequence number, 0 or more",
                    ))
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":\"a\"} x"),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn shape_errors_name_the_field() {
        match parse_json::<Body>(b"{\"name\": 5}") {
            Err(ApiError::Service(Error::InvalidArgument(field))) => {
                assert_eq!(field.field, "name");
                assert!(!field.reason.contains("line"), "{}", field.reason);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The words a client reads promotion and target statuses in: Heroku's when its `Accept`
/// names `application/vnd.heroku+json`, else the full statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    Full,
    Heroku,
}

impl<S> FromRequestParts<S> for Vocabulary
where
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let heroku = parts
            .headers
            .get_all(axum::http::header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains("application/vnd.heroku+json"));
        Ok(if heroku {
            Vocabulary::Heroku
        } else {
            Vocabulary::Full
        })
    }
}
