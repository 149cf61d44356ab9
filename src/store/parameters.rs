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

/// Which apps a read is about: listed by id, or every app whose id lies in an inclusive
/// range (a full reload reads the catalog a range at a time, with two parameters per
/// statement however many apps the range holds).
#[derive(Debug, Clone, Copy)]
pub enum AppIds<'a> {
    Listed(&'a [uuid::Uuid]),
    Between(uuid::Uuid, uuid::Uuid),
}

impl AppIds<'_> {
    /// Nothing can match.
    pub fn is_empty(self) -> bool {
        matches!(self, AppIds::Listed(ids) if ids.is_empty())
    }

    /// The condition on `column` for sea-orm queries.
    pub fn condition(self, column: impl sea_orm::ColumnTrait) -> sea_orm::Condition {
        let condition = sea_orm::Condition::all();
        match self {
            AppIds::Listed(ids) => condition.add(column.is_in(ids.iter().copied())),
            AppIds::Between(first, last) => condition.add(column.between(first, last)),
        }
    }

    /// The condition on `column` written out, with its values, its placeholders numbered
    /// from `first`.
    pub fn sql(self, backend: DbBackend, column: &str, first: usize) -> (String, Vec<Value>) {
        match self {
            AppIds::Listed(ids) => (
                format!("{column} IN ({})", placeholders(backend, first, ids.len())),
                ids.iter().map(|id| Value::from(*id)).collect(),
            ),
            AppIds::Between(low, high) => (
                format!(
                    "{column} BETWEEN {} AND {}",
                    placeholder(backend, first),
                    placeholder(backend, first + 1)
                ),
                vec![Value::from(low), Value::from(high)],
            ),
        }
    }
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
