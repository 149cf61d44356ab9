//! Pure business rules: stages, names, states and status-check verdicts. Nothing here does
//! I/O, so every rule is a plain function with its unit tests beside it.

pub mod access;
pub mod names;
pub mod promotion;
pub mod stage;
pub mod status;

use std::fmt;

/// A request field that broke a rule. It names the field so that the client can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub field: String,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for InvalidField {}
