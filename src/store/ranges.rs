//! A range of one indexed column, read from where it starts: what a Heroku `Range` on a
//! list asks of the database.

use crate::domain::range::TypedRange;
use sea_orm::{
    sea_query::Value, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

/// From `first` (left out when `first_excluded`) to `last`, in the range's order, at most
/// `limit` rows. In descending order `first` is the highest value.
#[derive(Debug, Clone)]
pub struct KeyRange<V> {
    pub first: Option<V>,
    pub first_excluded: bool,
    pub last: Option<V>,
    pub descending: bool,
    pub limit: u64,
}

impl<V> From<TypedRange<V>> for KeyRange<V> {
    /// The rows of a page, and one more, which tells whether more follow it.
    fn from(range: TypedRange<V>) -> Self {
        Self {
            first: range.first,
            first_excluded: range.first_excluded,
            last: range.last,
            descending: range.descending,
            limit: u64::from(range.max) + 1,
        }
    }
}

/// `query` narrowed to `range` of `column`, ordered along it.
pub fn in_key_range<E, C, V>(mut query: Select<E>, column: C, range: KeyRange<V>) -> Select<E>
where
    E: EntityTrait,
    C: ColumnTrait,
    V: Into<Value>,
{
    query = match (range.descending, range.first, range.first_excluded) {
        (_, None, _) => query,
        (false, Some(first), false) => query.filter(column.gte(first)),
        (false, Some(first), true) => query.filter(column.gt(first)),
        (true, Some(first), false) => query.filter(column.lte(first)),
        (true, Some(first), true) => query.filter(column.lt(first)),
    };
    query = match (range.descending, range.last) {
        (_, None) => query,
        (false, Some(last)) => query.filter(column.lte(last)),
        (true, Some(last)) => query.filter(column.gte(last)),
    };
    let query = if range.descending {
        query.order_by_desc(column)
    } else {
        query.order_by_asc(column)
    };
    query.limit(range.limit)
}
