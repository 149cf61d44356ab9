//! Numbered parameters for statements written out by hand (PostgreSQL).

use sea_orm::Value;

/// Numbered parameters, bound in the order they are written into the statement.
#[derive(Default)]
pub struct Parameters {
    pub values: Vec<Value>,
}

impl Parameters {
    /// `$n::ty` for the next value.
    pub fn bind(&mut self, value: impl Into<Value>, ty: &str) -> String {
        self.values.push(value.into());
        format!("${}::{ty}", self.values.len())
    }
}
