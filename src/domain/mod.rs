//! Pure business rules: stages, names, states and status-check verdicts. Nothing here does
//! I/O, so every rule is a plain function with its unit tests beside it.

pub mod access;
pub mod config_vars;
pub mod freeze;
pub mod names;
pub mod policy;
pub mod promotion;
pub mod range;
pub mod rate_limit;
pub mod stage;
pub mod status;
pub mod verification;

use std::fmt;

use uuid::Uuid;

/// A pointer to a named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub id: Uuid,
    pub name: String,
}

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

/// The most characters of a client's value that an error message quotes.
pub const QUOTED_VALUE_MAX_CHARS: usize = 200;
/// The most bytes an error message holds in all; details carry the complete lists.
pub const MESSAGE_MAX_BYTES: usize = 1024;

/// Refuses a time outside the years 1 to 9999: what every backend stores and compares.
pub fn check_storable_time(
    field: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> Result<(), InvalidField> {
    use chrono::Datelike;
    if (1..=9999).contains(&time.year()) {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            "must fall between the years 1 and 9999",
        ))
    }
}

/// A client's value as an error message quotes it: in single quotes, cut after
/// [`QUOTED_VALUE_MAX_CHARS`] characters, so that an echo can never outgrow the message.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_VALUE_MAX_CHARS) {
        None => format!("'{value}'"),
        Some((cut, _)) => format!("'{}…'", &value[..cut]),
    }
}

/// Cuts a message to at most [`MESSAGE_MAX_BYTES`] bytes, on a character boundary.
pub fn bounded_message(mut message: String) -> String {
    if message.len() <= MESSAGE_MAX_BYTES {
        return message;
    }
    let mut cut = MESSAGE_MAX_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    message.push('…');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_cuts_long_values_on_a_character_boundary() {
        assert_eq!(quoted("shop"), "'shop'");
        let long = "é".repeat(500);
        let quoted = quoted(&long);
        assert_eq!(quoted.chars().count(), QUOTED_VALUE_MAX_CHARS + 3);
        assert!(quoted.ends_with("…'"));
    }

    #[test]
    fn messages_are_bounded_in_bytes() {
        assert_eq!(bounded_message("short".into()), "short");
        let bounded = bounded_message("ü".repeat(2000));
        assert!(bounded.len() <= MESSAGE_MAX_BYTES);
        assert!(bounded.ends_with('…'));
    }
}

/// How a path or body names a release of a known app: by id, or by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReference {
    Id(uuid::Uuid),
    /// `7` or `v7`.
    Version(i64),
}

impl ReleaseReference {
    /// A UUID, a version `N` or `vN` (N at least 1); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('v').unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return digits
                .parse::<i64>()
                .ok()
                .filter(|version| *version >= 1)
                .map(Self::Version);
        }
        uuid::Uuid::parse_str(text).ok().map(Self::Id)
    }
}

#[cfg(test)]
mod release_reference_tests {
    use super::ReleaseReference;

    #[test]
    fn versions_ids_and_everything_else() {
        assert_eq!(
            ReleaseReference::parse("7"),
            Some(ReleaseReference::Version(7))
        );
        assert_eq!(
            ReleaseReference::parse("v12"),
            Some(ReleaseReference::Version(12))
        );
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            ReleaseReference::parse(&id.to_string()),
            Some(ReleaseReference::Id(id))
        );
        for refused in [
            "",
            "v",
            "0",
            "v0",
            "-1",
            "+3",
            "V3",
            "3.0",
            "v 3",
            "latest",
            "99999999999999999999",
        ] {
            assert_eq!(ReleaseReference::parse(refused), None, "{refused:?}");
        }
    }
}
