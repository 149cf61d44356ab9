//! Parameters for statements written out by hand.

use sea_orm::{DbBackend, Value};

/// Numbered parameters, bound in the order they are written into the statement
/// (PostgreSQL).
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

/// The `n`th parameter: `$n` on PostgreSQL, `?` elsewhere. SQLite numbers `?` by position,
/// so a statement must bind its values in the order their placeholders appear.
pub fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// `count` placeholders from the `first`, separated by commas, for an `IN (…)` list.
pub fn placeholders(backend: DbBackend, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| placeholder(backend, n))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_and_positional_elsewhere() {
        assert_eq!(placeholders(DbBackend::Postgres, 3, 2), "$3, $4");
        assert_eq!(placeholders(DbBackend::Sqlite, 3, 2), "?, ?");
        assert_eq!(placeholders(DbBackend::Postgres, 1, 0), "");
    }
}
