//! Pieces of request bodies that several resources accept.

use serde::Deserialize;

use crate::{
    domain::policy::{PolicyChange, MAX_REQUIRED_APPROVALS},
    error::Error,
};

/// A reference in a request body: a plain string (`"shop"`) or an object
/// (`{"id": "shop"}`, `{"name": "shop"}`); `id` accepts a UUID or a name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "must be a name or an object such as {\"id\": \"...\"}"
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
