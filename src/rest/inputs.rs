//! Pieces of request bodies that several resources accept.

use serde::Deserialize;

/// A reference in a request body: a plain string (`"shop"`) or an object
/// (`{"id": "shop"}`, `{"name": "shop"}`); `id` accepts a UUID or a name.
#[derive(Debug, Deserialize)]
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
