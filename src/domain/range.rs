//! Heroku's `Range` header on lists: `<field> [<first>]..[<last>][; max=<n>][, order=o]`.
//!
//! `max` and `order` may come in either order, separated by `,` or `;`, with an optional
//! trailing `;`. `order` defaults to `asc`; `<first>` is where the page starts in that
//! order and `<last>` where the range ends, both included, except that `]` before
//! `<first>` excludes it (as a `Next-Range` says). `max` is 1 to 1,000, 200 by default.

use std::cmp::Ordering;

/// The most items a range may ask for, and how many it gets when it names no `max`.
pub const MOST_IN_A_RANGE: u32 = 1_000;
pub const DEFAULT_RANGE_MAX: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOrder {
    Asc,
    Desc,
}

impl RangeOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOrder::Asc => "asc",
            RangeOrder::Desc => "desc",
        }
    }
}

/// One `Range` header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRange {
    pub field: String,
    /// Where the page starts, in the range's order.
    pub first: Option<String>,
    /// Whether `first` itself is left out (`]first..`).
    pub first_excluded: bool,
    /// Where the range ends, included.
    pub last: Option<String>,
    pub max: u32,
    pub order: RangeOrder,
}

/// A range whose bounds are values of its column, as a store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedRange<V> {
    pub first: Option<V>,
    pub first_excluded: bool,
    pub last: Option<V>,
    pub descending: bool,
    pub max: u32,
}

/// Why a `Range` header cannot be used: `part` names the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableRange {
    pub part: &'static str,
    pub reason: String,
}

impl UnusableRange {
    fn new(part: &'static str, reason: impl Into<String>) -> Self {
        Self {
            part,
            reason: reason.into(),
        }
    }
}

impl ListRange {
    /// Reads a header for a list that ranges by `fields`.
    /// Every refusal names the offending part and the fields the list ranges by.
    pub fn parse(header: &str, fields: &[&str]) -> Result<Self, UnusableRange> {
        Self::read(header, fields).map_err(|mut unusable| {
            if unusable.part != "field" {
                unusable.reason = format!(
                    "{}; this list ranges by {}",
                    unusable.reason,
                    fields.join(", ")
                );
            }
            unusable
        })
    }

    fn read(header: &str, fields: &[&str]) -> Result<Self, UnusableRange> {
        let header = header.trim();
        let (field, rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((header, ""));
        if !fields.contains(&field) {
            return Err(UnusableRange::new(
                "field",
                format!(
                    "{} is not a field this list ranges by; it ranges by {}",
                    super::quoted(field),
                    fields.join(", ")
                ),
            ));
        }
        let mut parts = rest.split([';', ',']).map(str::trim);
        let bounds = parts.next().unwrap_or_default();
        let Some((first, last)) = bounds.split_once("..") else {
            return Err(UnusableRange::new(
                "bounds",
                format!(
                    "{} is not a range such as `{field} ..` or `{field} a..b`",
                    super::quoted(bounds)
                ),
            ));
        };
        let (first, first_excluded) = match first.trim().strip_prefix(']') {
            Some(excluded) => (excluded.trim(), true),
            None => (first.trim(), false),
        };
        let mut range = ListRange {
            field: field.to_owned(),
            first: (!first.is_empty()).then(|| first.to_owned()),
            first_excluded,
            last: Some(last.trim())
                .filter(|last| !last.is_empty())
                .map(str::to_owned),
            max: DEFAULT_RANGE_MAX,
            order: RangeOrder::Asc,
        };
        for part in parts.filter(|part| !part.is_empty()) {
            match part.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("max", value)) => {
                    range.max = value
                        .parse::<u32>()
                        .ok()
                        .filter(|max| (1..=MOST_IN_A_RANGE).contains(max))
                        .ok_or_else(|| {
                            UnusableRange::new(
                                "max",
                                format!(
                                    "max={} is not a number from 1 to {MOST_IN_A_RANGE}",
                                    super::quoted(value)
                                ),
                            )
                        })?;
                }
                Some(("order", "asc")) => range.order = RangeOrder::Asc,
                Some(("order", "desc")) => range.order = RangeOrder::Desc,
                Some(("order", value)) => {
                    return Err(UnusableRange::new(
                        "order",
                        format!("order={} is neither asc nor desc", super::quoted(value)),
                    ))
                }
                _ => {
                    return Err(UnusableRange::new(
                        "parameter",
                        format!(
                            "{} is not a range parameter; the parameters are max and order",
                            super::quoted(part)
                        ),
                    ))
                }
            }
        }
        Ok(range)
    }

    /// The range with its bounds read by `parse`, for a list that reads it from an
    /// indexed column of numbers or ids; `what` names such a value in the refusal.
    pub fn typed<V>(
        &self,
        parse: impl Fn(&str) -> Option<V>,
        what: &str,
    ) -> Result<TypedRange<V>, UnusableRange> {
        let read = |bound: &Option<String>| {
            bound
                .as_deref()
                .map(|text| {
                    parse(text).ok_or_else(|| {
                        UnusableRange::new(
                            "bounds",
                            format!("{} is not {what}", super::quoted(text)),
                        )
                    })
                })
                .transpose()
        };
        Ok(TypedRange {
            first: read(&self.first)?,
            first_excluded: self.first_excluded,
            last: read(&self.last)?,
            descending: self.order == RangeOrder::Desc,
            max: self.max,
        })
    }

    /// Whether `value` of the ranged field lies in the range, in its order.
    pub fn holds(&self, value: &str) -> bool {
        let in_order = |a: &str, b: &str| match self.order {
            RangeOrder::Asc => compare_values(a, b),
            RangeOrder::Desc => compare_values(b, a),
        };
        let after_first = match &self.first {
            None => true,
            Some(first) => match in_order(value, first) {
                Ordering::Greater => true,
                Ordering::Equal => !self.first_excluded,
                Ordering::Less => false,
            },
        };
        let before_last = match &self.last {
            None => true,
            Some(last) => in_order(value, last) != Ordering::Greater,
        };
        after_first && before_last
    }

    /// `Content-Range` of a page that runs from `first` to `last`.
    pub fn content_range(&self, first: &str, last: &str) -> String {
        format!("{} {first}..{last}", self.field)
    }

    /// `Next-Range` after a page whose last value was `last`.
    pub fn next_range(&self, last: &str) -> String {
        let end = self.last.as_deref().unwrap_or_default();
        format!(
            "{} ]{last}..{end}; max={}, order={}",
            self.field,
            self.max,
            self.order.as_str()
        )
    }
}

/// Orders two values of a ranged field: as numbers when both are, else as text.
pub fn compare_values(a: &str, b: &str) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASES: [&str; 2] = ["version", "id"];

    fn parsed(header: &str) -> ListRange {
        ListRange::parse(header, &RELEASES).unwrap()
    }

    fn refused(header: &str) -> UnusableRange {
        ListRange::parse(header, &RELEASES).unwrap_err()
    }

    #[test]
    fn every_form_the_heroku_cli_sends() {
        for header in [
            "version ..; max=15, order=desc",
            "version ..; order=desc,max=15",
            "version ..; order=desc, max=15;",
            "version ..;max=15;order=desc;",
        ] {
            let range = parsed(header);
            assert_eq!((range.max, range.order), (15, RangeOrder::Desc), "{header}");
            assert_eq!((range.first, range.last), (None, None), "{header}");
        }
        let range = parsed("id ..; max=1000;");
        assert_eq!((range.field.as_str(), range.max), ("id", 1000));
        assert_eq!(range.order, RangeOrder::Asc);
        let range = parsed("version ..");
        assert_eq!(
            (range.max, range.order),
            (DEFAULT_RANGE_MAX, RangeOrder::Asc)
        );
    }

    #[test]
    fn bounds_with_and_without_their_ends() {
        let range = parsed("version 3..7");
        assert_eq!(range.first.as_deref(), Some("3"));
        assert_eq!(range.last.as_deref(), Some("7"));
        assert!(!range.first_excluded);
        assert!(range.holds("3") && range.holds("7") && !range.holds("10"));
        let next = parsed("version ]12..; max=5, order=desc");
        assert!(next.first_excluded);
        assert!(!next.holds("12") && next.holds("11") && !next.holds("13"));
        let open_start = parsed("version ..4");
        assert!(open_start.holds("1") && open_start.holds("4") && !open_start.holds("5"));
        // Versions compare as numbers, not as text.
        assert!(parsed("version 9..").holds("10"));
    }

    #[test]
    fn a_next_range_reads_back_as_the_following_page() {
        let range = parsed("version ..; max=2, order=desc");
        let next = range.next_range("8");
        assert_eq!(next, "version ]8..; max=2, order=desc");
        let again = parsed(&next);
        assert!(again.first_excluded && !again.holds("8") && again.holds("7"));
        assert_eq!(range.content_range("9", "8"), "version 9..8");
    }

    #[test]
    fn a_typed_range_reads_its_bounds_or_names_the_bad_one() {
        let range = parsed("version ]12..3; max=5, order=desc");
        let typed = range
            .typed(|text| text.parse::<i64>().ok(), "a version")
            .unwrap();
        assert_eq!(
            typed,
            TypedRange {
                first: Some(12),
                first_excluded: true,
                last: Some(3),
                descending: true,
                max: 5
            }
        );
        let refused = parsed("version 2..x")
            .typed(|text| text.parse::<i64>().ok(), "a version")
            .unwrap_err();
        assert_eq!(refused.part, "bounds");
        assert_eq!(refused.reason, "'x' is not a version");
    }

    #[test]
    fn unusable_ranges_name_their_part() {
        let unknown = refused("name ..");
        assert_eq!(unknown.part, "field");
        assert!(unknown.reason.contains("version, id"), "{}", unknown.reason);
        assert_eq!(
            refused("version ..; max=0").reason,
            "max='0' is not a number from 1 to 1000; this list ranges by version, id"
        );
        for (header, part) in [
            ("version ..; max=0", "max"),
            ("version ..; max=1001", "max"),
            ("version ..; max=ten", "max"),
            ("version ..; order=up", "order"),
            ("version ..; colour=red", "parameter"),
            ("version 3", "bounds"),
            ("version", "bounds"),
            ("", "field"),
        ] {
            assert_eq!(refused(header).part, part, "{header}");
        }
    }
}
