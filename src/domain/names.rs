//! Validated names and free-text fields. Each type can only hold a value that passed its
//! rule, so code past the edge never checks a name again.

use super::{quoted, InvalidField};

const DESCRIPTION_MAX_CHARS: usize = 1000;
const CONTEXT_MAX_CHARS: usize = 255;
const IMAGE_MAX_CHARS: usize = 1000;
const URL_MAX_CHARS: usize = 2000;
const CONFIG_KEY_MAX_CHARS: usize = 255;
const CONFIG_VALUE_MAX_BYTES: usize = 64 * 1024;

/// `^[a-z][a-z0-9-]{min_rest,max_rest}$`: the shape shared by pipeline and app names.
fn check_slug(field: &str, value: &str, max_len: usize) -> Result<(), InvalidField> {
    let pattern = format!("^[a-z][a-z0-9-]{{2,{}}}$", max_len - 1);
    let mut chars = value.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let len = value.chars().count();
    if value.is_empty() {
        return Err(InvalidField::new(field, "is required"));
    }
    if !starts_with_letter || !rest_ok || len < 3 || len > max_len {
        return Err(InvalidField::new(
            field,
            format!("{} must match {pattern}", quoted(value)),
        ));
    }
    Ok(())
}

/// A pipeline name: `^[a-z][a-z0-9-]{2,29}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineName(String);

impl PipelineName {
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidField> {
        check_slug(field, value, 30)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An app name: `^[a-z][a-z0-9-]{2,62}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidField> {
        check_slug(field, value, 63)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A config var key: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters.
pub fn check_config_key(field: &str, key: &str) -> Result<(), InvalidField> {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || key.len() > CONFIG_KEY_MAX_CHARS {
        return Err(InvalidField::new(
            field,
            format!("{} must match ^[A-Za-z_][A-Za-z0-9_]*$ and be at most {CONFIG_KEY_MAX_CHARS} characters", quoted(key)),
        ));
    }
    Ok(())
}

/// Text may hold anything but NUL, which PostgreSQL cannot store (and SQLite would
/// store differently): refusing it keeps both backends alike.
fn check_no_nul(field: &str, value: &str) -> Result<(), InvalidField> {
    if value.contains('\0') {
        return Err(InvalidField::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// A config var value: any text up to 64 KiB, without NUL.
pub fn check_config_value(field: &str, value: &str) -> Result<(), InvalidField> {
    check_no_nul(field, value)?;
    if value.len() > CONFIG_VALUE_MAX_BYTES {
        return Err(InvalidField::new(
            field,
            format!("must be at most {CONFIG_VALUE_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Optional free text of bounded length, without NUL.
pub fn check_description(field: &str, value: &str) -> Result<(), InvalidField> {
    check_no_nul(field, value)?;
    if value.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(InvalidField::new(
            field,
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A required single token of text: non-empty, bounded, without whitespace or control
/// characters. Used for status contexts and release images.
fn check_token(field: &str, value: &str, max_chars: usize) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::new(field, "is required"));
    }
    if value.chars().count() > max_chars {
        return Err(InvalidField::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidField::new(
            field,
            format!("{} must not contain whitespace", quoted(value)),
        ));
    }
    Ok(())
}

/// A release-status context, such as `ci/unit-tests`.
pub fn check_context(field: &str, value: &str) -> Result<(), InvalidField> {
    check_token(field, value, CONTEXT_MAX_CHARS)
}

/// A release image reference, such as `registry.example.com/shop:1.4.2`.
pub fn check_image(field: &str, value: &str) -> Result<(), InvalidField> {
    check_token(field, value, IMAGE_MAX_CHARS)
}

/// A required human-readable label, such as a release status's name.
pub fn check_label(field: &str, value: &str) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(InvalidField::new(field, "is required"));
    }
    if value.chars().count() > CONTEXT_MAX_CHARS || value.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            format!("must be at most {CONTEXT_MAX_CHARS} characters without control characters"),
        ));
    }
    Ok(())
}

/// An optional link: empty, or an absolute http(s) URL.
pub fn check_optional_url(field: &str, value: &str) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Ok(());
    }
    let has_scheme = value.starts_with("https://") || value.starts_with("http://");
    let host_present = value
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !has_scheme || !host_present || value.len() > URL_MAX_CHARS {
        return Err(InvalidField::new(
            field,
            format!("{} must be an absolute http or https URL", quoted(value)),
        ));
    }
    check_token(field, value, URL_MAX_CHARS)
}

/// The required-status-check contexts of a coupling: each a valid context, none repeated.
pub fn check_required_contexts(field: &str, contexts: &[String]) -> Result<(), InvalidField> {
    for (index, context) in contexts.iter().enumerate() {
        check_context(&format!("{field}[{index}]"), context)?;
        if contexts[..index].contains(context) {
            return Err(InvalidField::new(
                format!("{field}[{index}]"),
                format!("{} is listed twice", quoted(context)),
            ));
        }
    }
    Ok(())
}

/// An app name the Akkeris way: `<app>-<space>`, split at the first `-`. A name with no
/// `-`, or nothing after it, is the whole app in the space `default`.
pub fn akkeris_app_and_space(name: &str) -> (&str, &str) {
    match name.split_once('-') {
        Some((app, space)) if !app.is_empty() && !space.is_empty() => (app, space),
        _ => (name, "default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn akkeris_names_split_at_the_first_dash() {
        assert_eq!(akkeris_app_and_space("blog-dev"), ("blog", "dev"));
        assert_eq!(akkeris_app_and_space("shop-stg-a"), ("shop", "stg-a"));
        assert_eq!(akkeris_app_and_space("blog"), ("blog", "default"));
        assert_eq!(akkeris_app_and_space("blog-"), ("blog-", "default"));
    }

    #[test]
    fn pipeline_names_follow_the_pattern() {
        for ok in ["abc", "my-test-pipeline", "a1-", &"a".repeat(30)] {
            assert!(PipelineName::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "1abc",
            "-abc",
            "Abc",
            "ab_c",
            "ab c",
            "äbc",
            &"a".repeat(31),
        ] {
            let error = PipelineName::parse("name", bad).unwrap_err();
            assert_eq!(error.field, "name", "{bad}");
        }
    }

    #[test]
    fn pipeline_pattern_is_reported() {
        let error = PipelineName::parse("name", "Bad").unwrap_err();
        assert!(error.reason.contains("^[a-z][a-z0-9-]{2,29}$"), "{error}");
    }

    #[test]
    fn app_names_allow_63_characters() {
        assert!(AppName::parse("name", &"a".repeat(63)).is_ok());
        assert!(AppName::parse("name", &"a".repeat(64)).is_err());
        let error = AppName::parse("name", "x").unwrap_err();
        assert!(error.reason.contains("{2,62}"), "{error}");
    }

    #[test]
    fn config_keys_follow_the_pattern() {
        for ok in ["A", "_", "DATABASE_URL", "a1_b2"] {
            assert!(check_config_key("key", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", &"A".repeat(256)] {
            assert!(check_config_key("key", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contexts_are_single_tokens_without_duplicates() {
        let ok = vec!["ci/unit".to_owned(), "ci/e2e".to_owned()];
        assert!(check_required_contexts("contexts", &ok).is_ok());
        let duplicated = vec!["ci/unit".to_owned(), "ci/unit".to_owned()];
        let error = check_required_contexts("contexts", &duplicated).unwrap_err();
        assert_eq!(error.field, "contexts[1]");
        let empty = vec![String::new()];
        assert_eq!(
            check_required_contexts("contexts", &empty)
                .unwrap_err()
                .field,
            "contexts[0]"
        );
        assert!(check_context("context", "has space").is_err());
        assert!(check_context("context", &"c".repeat(256)).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_optional_url("target_url", "").is_ok());
        assert!(check_optional_url("target_url", "https://ci.example.com/run/1").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "ci.example.com",
            "https:///path",
            "http://a b",
        ] {
            assert!(check_optional_url("target_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_and_labels_are_required() {
        assert!(check_image("image", "").is_err());
        assert!(check_image("image", "registry/shop:1.0").is_ok());
        assert!(check_label("name", "  ").is_err());
        assert!(check_label("name", "Unit tests").is_ok());
        assert!(check_description("description", &"d".repeat(1001)).is_err());
        assert!(check_description("description", "a\0b").is_err());
        assert!(check_config_value("config_vars.K", "a\0b").is_err());
        assert!(check_config_value("config_vars.K", "multi\nline ok").is_ok());
    }
}
