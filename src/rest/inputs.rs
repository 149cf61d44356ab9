//! Pieces of requests that several resources accept.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    domain::{
        policy::{PolicyChange, MAX_REQUIRED_APPROVALS},
        quoted,
        verification::{HttpCheckSpec, VerificationChange, VerificationSpec, FIELD},
    },
    error::Error,
};

/// A reference in a request body: a plain string (`"shop"`) or an object
/// (`{"id": "shop"}`, `{"name": "shop"}`); `id` accepts a UUID or a name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "must be a name or an object such as {\"id\": \"...\"}",
    deny_unknown_fields
)]
pub enum ReferenceInput {
    Plain(String),
    Object {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
    },
}

impl ReferenceInput {
    pub fn into_reference(self) -> String {
        match self {
            ReferenceInput::Plain(value) => value,
            ReferenceInput::Object { id, name } => id.or(name).unwrap_or_default(),
        }
    }
}

/// A coupling's `promotion_policy` in a request body; parts left out are not set.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(
    expecting = "an object such as {\"auto_promote\": true, \"required_approvals\": 2}",
    deny_unknown_fields
)]
pub struct PromotionPolicyInput {
    #[serde(default)]
    auto_promote: Option<bool>,
    /// Read as any JSON value, so that a wrong one is refused in the service's words.
    #[serde(default)]
    #[schema(value_type = Option<u32>, maximum = 5)]
    required_approvals: Option<serde_json::Value>,
}

impl PromotionPolicyInput {
    pub fn into_change(self) -> Result<PolicyChange, Error> {
        let required_approvals = match self.required_approvals {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|count| u32::try_from(count).ok())
                    .ok_or_else(|| {
                        Error::invalid(
                            "promotion_policy.required_approvals",
                            format!(
                                "must be a whole number from 0 to {MAX_REQUIRED_APPROVALS}, not {value}"
                            ),
                        )
                    })?,
            ),
        };
        Ok(PolicyChange {
            auto_promote: self.auto_promote,
            required_approvals,
        })
    }
}

/// Reads a field that is present, `null` included, so that a body can tell "left out"
/// (the field's default, `None`) from `null`.
pub fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// A coupling's `verification` in a request body: left out (unchanged), `null` (none), or
/// an object that replaces it whole. Every wrong value is refused by its path.
pub fn verification_change(value: Option<serde_json::Value>) -> Result<VerificationChange, Error> {
    use serde_json::Value;
    let object = match value {
        None => return Ok(VerificationChange::Unchanged),
        Some(Value::Null) => return Ok(VerificationChange::Remove),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err(Error::invalid(
                FIELD,
                "must be an object such as {\"contexts\": [\"smoke/checkout\"]}, or null",
            ))
        }
    };
    refuse_unknown(
        FIELD,
        &object,
        &["contexts", "timeout_seconds", "http_checks", "on_failure"],
    )?;
    let contexts = match object.get("contexts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    Error::invalid(format!("{FIELD}.contexts[{index}]"), "must be a string")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Error::invalid(
                format!("{FIELD}.contexts"),
                "must be an array of strings",
            ))
        }
    };
    let http_checks = match object.get("http_checks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| http_check_spec(&format!("{FIELD}.http_checks[{index}]"), item))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Error::invalid(
                format!("{FIELD}.http_checks"),
                "must be an array of checks",
            ))
        }
    };
    Ok(VerificationChange::Set(VerificationSpec {
        contexts,
        timeout_seconds: whole_number(&object, FIELD, "timeout_seconds")?,
        http_checks,
        on_failure: text(&object, FIELD, "on_failure")?,
    }))
}

fn http_check_spec(field: &str, value: &serde_json::Value) -> Result<HttpCheckSpec, Error> {
    let Some(object) = value.as_object() else {
        return Err(Error::invalid(
            field,
            "must be an object such as {\"name\": \"health\", \"url\": \"http://…\"}",
        ));
    };
    refuse_unknown(
        field,
        object,
        &["name", "url", "interval_seconds", "count", "failure_limit"],
    )?;
    Ok(HttpCheckSpec {
        name: text(object, field, "name")?,
        url: text(object, field, "url")?,
        interval_seconds: whole_number(object, field, "interval_seconds")?,
        count: whole_number(object, field, "count")?,
        failure_limit: whole_number(object, field, "failure_limit")?,
    })
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn refuse_unknown(field: &str, object: &JsonObject, known: &[&str]) -> Result<(), Error> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(Error::invalid(
            format!(
                "{field}.{}",
                crate::domain::quoted(unknown).trim_matches('\'')
            ),
            format!("is not a field here; expected {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn whole_number(object: &JsonObject, field: &str, key: &str) -> Result<Option<i64>, Error> {
    match object.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            Error::invalid(
                format!("{field}.{key}"),
                format!("must be a whole number, not {value}"),
            )
        }),
    }
}

fn text(object: &JsonObject, field: &str, key: &str) -> Result<Option<String>, Error> {
    match object.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(Error::invalid(format!("{field}.{key}"), "must be a string")),
    }
}

/// An RFC 3339 time from a request, or a refusal naming its field.
pub(super) fn time_field(
    field: &str,
    value: Option<String>,
) -> Result<Option<DateTime<Utc>>, Error> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text.trim())
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| {
                    Error::invalid(
                        field,
                        format!(
                            "{} is not an RFC 3339 time such as 2026-12-24T18:00:00Z",
                            quoted(&text)
                        ),
                    )
                })
        })
        .transpose()
}
