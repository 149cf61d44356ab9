//! Verification after deploy: what a coupling asks of a release once a promotion deployed
//! it (contexts that must reach `success`, built-in HTTP checks, a deadline, and what to do
//! on failure), who may change that, which hosts the checks may reach, and the verdict over
//! a release's statuses.

use super::{access::Role, names::check_required_contexts, quoted, InvalidField};

/// The field every verification rule names its paths under.
pub const FIELD: &str = "verification";
/// The operator's setting that lists the hosts HTTP checks may reach.
pub const HOSTS_SETTING: &str = "--verification-hosts";

pub const DEFAULT_TIMEOUT_SECONDS: u32 = 600;
pub const MIN_TIMEOUT_SECONDS: u32 = 10;
pub const MAX_TIMEOUT_SECONDS: u32 = 86_400;
pub const MAX_HTTP_CHECKS: usize = 5;
pub const DEFAULT_INTERVAL_SECONDS: u32 = 10;
pub const MAX_INTERVAL_SECONDS: u32 = 3_600;
pub const DEFAULT_COUNT: u32 = 3;
pub const MAX_COUNT: u32 = 100;
/// How long one measurement may take before it counts as failed.
pub const MEASUREMENT_TIMEOUT_SECONDS: u64 = 10;
/// The prefix of the release-status context an HTTP check posts its result under.
pub const HTTP_CONTEXT_PREFIX: &str = "http/";

/// What happens to a release whose verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The release is marked failed and the app's previous release is deployed again.
    #[default]
    Rollback,
    /// The release stays current; only the target fails.
    Keep,
}

impl OnFailure {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Keep => "keep",
        }
    }

    pub fn parse(value: &str) -> Option<OnFailure> {
        [OnFailure::Rollback, OnFailure::Keep]
            .into_iter()
            .find(|choice| choice.as_str() == value)
    }
}

/// A built-in probe: `count` GETs of `url`, `interval_seconds` apart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpCheck {
    pub name: String,
    pub url: String,
    pub interval_seconds: u32,
    pub count: u32,
    pub failure_limit: u32,
}

impl HttpCheck {
    /// The release-status context the check posts its result under.
    pub fn context(&self) -> String {
        format!("{HTTP_CONTEXT_PREFIX}{}", self.name)
    }

    /// Whether the measurements pass: at most `failure_limit` failed, and at least one
    /// succeeded. A check with no successful measurement never passes.
    pub fn passes(&self, succeeded: u32, failed: u32) -> bool {
        succeeded > 0 && failed <= self.failure_limit
    }
}

/// A coupling's verification, every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    pub contexts: Vec<String>,
    pub timeout_seconds: u32,
    pub http_checks: Vec<HttpCheck>,
    #[serde(with = "on_failure_text")]
    pub on_failure: OnFailure,
}

mod on_failure_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::OnFailure;

    pub fn serialize<S: Serializer>(value: &OnFailure, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OnFailure, D::Error> {
        let text = String::deserialize(deserializer)?;
        OnFailure::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown on_failure {text}")))
    }
}

/// One HTTP check as a request gives it; parts left out take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpCheckSpec {
    pub name: Option<String>,
    pub url: Option<String>,
    pub interval_seconds: Option<i64>,
    pub count: Option<i64>,
    pub failure_limit: Option<i64>,
}

/// A verification as a request gives it; parts left out take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationSpec {
    pub contexts: Vec<String>,
    pub timeout_seconds: Option<i64>,
    pub http_checks: Vec<HttpCheckSpec>,
    pub on_failure: Option<String>,
}

/// What a request does to a coupling's verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VerificationChange {
    /// Left out: unchanged (on create: none).
    #[default]
    Unchanged,
    /// `null`: none any more.
    Remove,
    /// Replaces the verification whole.
    Set(VerificationSpec),
}

/// A whole number within `min..=max`, or an error naming `field`.
fn bounded(field: &str, value: i64, min: u32, max: u32) -> Result<u32, InvalidField> {
    u32::try_from(value)
        .ok()
        .filter(|value| (min..=max).contains(value))
        .ok_or_else(|| {
            InvalidField::new(field, format!("must be from {min} to {max}, not {value}"))
        })
}

/// The hosts the operator lets HTTP checks reach: exact host names or IP literals, and
/// `*.suffix` patterns that match any name ending in `.suffix`. Empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub fn new(entries: impl IntoIterator<Item = String>) -> Self {
        Self(
            entries
                .into_iter()
                .map(|entry| entry.trim().trim_matches(['[', ']']).to_ascii_lowercase())
                .filter(|entry| !entry.is_empty())
                .collect(),
        )
    }

    /// Whether `host` (a name or an IP literal, without a port) may be probed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.0.iter().any(|entry| match entry.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            None => *entry == host,
        })
    }

    /// The URL's host when the URL is absolute http(s) and its host allowed; otherwise
    /// what is wrong, naming `field` (or the setting, for a host not allowed).
    pub fn check_url(&self, field: &str, url: &str) -> Result<(), InvalidField> {
        let host = probe_host(field, url)?;
        if self.allows(&host) {
            return Ok(());
        }
        let allowed = if self.0.is_empty() {
            "it allows no host".to_owned()
        } else {
            format!("it allows {}", self.0.join(", "))
        };
        Err(InvalidField::new(
            field,
            format!(
                "host {} is not allowed by {HOSTS_SETTING} (PIPELINES_VERIFICATION_HOSTS): {allowed}",
                quoted(&host)
            ),
        ))
    }
}

/// The host of an absolute http(s) URL, or what is wrong with it.
pub fn probe_host(field: &str, url: &str) -> Result<String, InvalidField> {
    let not_absolute = || {
        InvalidField::new(
            field,
            format!("{} must be an absolute http or https URL", quoted(url)),
        )
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(not_absolute());
    }
    let parsed = url::Url::parse(url).map_err(|_| not_absolute())?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() {
        return Err(not_absolute());
    }
    match parsed.host() {
        Some(url::Host::Domain(name)) => Ok(name.to_ascii_lowercase()),
        Some(url::Host::Ipv4(ip)) => Ok(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Ok(ip.to_string()),
        None => Err(not_absolute()),
    }
}

fn check_http_name(field: &str, name: &str) -> Result<(), InvalidField> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && name.len() <= 30 {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            format!("{} must match ^[a-z0-9][a-z0-9-]{{0,29}}$", quoted(name)),
        ))
    }
}

impl HttpCheckSpec {
    fn resolve(
        &self,
        field: &str,
        timeout_seconds: u32,
        hosts: &AllowedHosts,
    ) -> Result<HttpCheck, InvalidField> {
        let name = self
            .name
            .clone()
            .ok_or_else(|| InvalidField::new(format!("{field}.name"), "is required"))?;
        check_http_name(&format!("{field}.name"), &name)?;
        let url = self
            .url
            .clone()
            .ok_or_else(|| InvalidField::new(format!("{field}.url"), "is required"))?;
        hosts.check_url(&format!("{field}.url"), &url)?;
        let interval_seconds = match self.interval_seconds {
            None => DEFAULT_INTERVAL_SECONDS,
            Some(value) => bounded(
                &format!("{field}.interval_seconds"),
                value,
                1,
                MAX_INTERVAL_SECONDS,
            )?,
        };
        let count = match self.count {
            None => DEFAULT_COUNT,
            Some(value) => bounded(&format!("{field}.count"), value, 1, MAX_COUNT)?,
        };
        let failure_limit = match self.failure_limit {
            None => 0,
            Some(value) => bounded(&format!("{field}.failure_limit"), value, 0, count - 1)?,
        };
        let spread = u64::from(count - 1) * u64::from(interval_seconds);
        if spread >= u64::from(timeout_seconds) {
            return Err(InvalidField::new(
                format!("{field}.count"),
                format!(
                    "{count} measurements {interval_seconds} s apart take {spread} s, which does not fit in {FIELD}.timeout_seconds ({timeout_seconds} s)"
                ),
            ));
        }
        Ok(HttpCheck {
            name,
            url,
            interval_seconds,
            count,
            failure_limit,
        })
    }
}

impl VerificationSpec {
    /// The verification with its defaults, or the first bad field by its path. Each HTTP
    /// check's host must be in `hosts`.
    pub fn resolve(&self, hosts: &AllowedHosts) -> Result<Verification, InvalidField> {
        check_required_contexts(&format!("{FIELD}.contexts"), &self.contexts)?;
        let timeout_seconds = match self.timeout_seconds {
            None => DEFAULT_TIMEOUT_SECONDS,
            Some(value) => bounded(
                &format!("{FIELD}.timeout_seconds"),
                value,
                MIN_TIMEOUT_SECONDS,
                MAX_TIMEOUT_SECONDS,
            )?,
        };
        if self.http_checks.len() > MAX_HTTP_CHECKS {
            return Err(InvalidField::new(
                format!("{FIELD}.http_checks"),
                format!(
                    "holds {} checks; at most {MAX_HTTP_CHECKS} are allowed",
                    self.http_checks.len()
                ),
            ));
        }
        let mut http_checks: Vec<HttpCheck> = Vec::with_capacity(self.http_checks.len());
        for (index, spec) in self.http_checks.iter().enumerate() {
            let field = format!("{FIELD}.http_checks[{index}]");
            let check = spec.resolve(&field, timeout_seconds, hosts)?;
            if http_checks.iter().any(|earlier| earlier.name == check.name) {
                return Err(InvalidField::new(
                    format!("{field}.name"),
                    format!("{} is used by an earlier check", quoted(&check.name)),
                ));
            }
            if self.contexts.contains(&check.context()) {
                return Err(InvalidField::new(
                    format!("{field}.name"),
                    format!(
                        "the check posts context {}, which {FIELD}.contexts already lists",
                        quoted(&check.context())
                    ),
                ));
            }
            http_checks.push(check);
        }
        if self.contexts.is_empty() && http_checks.is_empty() {
            return Err(InvalidField::new(
                FIELD,
                "needs at least one context or HTTP check; send null to remove it",
            ));
        }
        let on_failure = match &self.on_failure {
            None => OnFailure::default(),
            Some(value) => OnFailure::parse(value).ok_or_else(|| {
                InvalidField::new(
                    format!("{FIELD}.on_failure"),
                    format!("{} must be rollback or keep", quoted(value)),
                )
            })?,
        };
        Ok(Verification {
            contexts: self.contexts.clone(),
            timeout_seconds,
            http_checks,
            on_failure,
        })
    }
}

impl Verification {
    /// Every context that must reach `success`: the listed ones, then each HTTP check's.
    pub fn all_contexts(&self) -> Vec<String> {
        self.contexts
            .iter()
            .cloned()
            .chain(self.http_checks.iter().map(HttpCheck::context))
            .collect()
    }

    /// Every HTTP check's host must still be allowed: checked again before probing.
    pub fn check_hosts(&self, hosts: &AllowedHosts) -> Result<(), InvalidField> {
        for (index, check) in self.http_checks.iter().enumerate() {
            hosts.check_url(&format!("{FIELD}.http_checks[{index}].url"), &check.url)?;
        }
        Ok(())
    }
}

/// What a change from `current` to `next` weakens, which needs elevated access: removing
/// the verification, dropping a context or check, keeping a failed release, or giving it
/// longer. `None`: the change only adds or tightens, which `write` may do.
pub fn weakening(current: Option<&Verification>, next: Option<&Verification>) -> Option<String> {
    let current = current?;
    let Some(next) = next else {
        return Some("removing the verification".to_owned());
    };
    let dropped: Vec<String> = current
        .all_contexts()
        .into_iter()
        .filter(|context| !next.all_contexts().contains(context))
        .collect();
    if !dropped.is_empty() {
        return Some(format!(
            "removing verification contexts or checks ({})",
            dropped.join(", ")
        ));
    }
    if current.on_failure == OnFailure::Rollback && next.on_failure == OnFailure::Keep {
        return Some("setting verification.on_failure to keep".to_owned());
    }
    if next.timeout_seconds > current.timeout_seconds {
        return Some(format!(
            "raising verification.timeout_seconds from {} to {}",
            current.timeout_seconds, next.timeout_seconds
        ));
    }
    let loosened = next.http_checks.iter().find(|check| {
        current
            .http_checks
            .iter()
            .find(|old| old.name == check.name)
            .is_some_and(|old| {
                check.url != old.url
                    || check.failure_limit > old.failure_limit
                    || check.count < old.count
            })
    });
    loosened.map(|check| {
        format!(
            "loosening HTTP check {} (its url, count or failure_limit)",
            quoted(&check.name)
        )
    })
}

/// The role a verification change needs.
pub fn role_to_change(current: Option<&Verification>, next: Option<&Verification>) -> Role {
    if weakening(current, next).is_some() {
        Role::Admin
    } else {
        Role::Write
    }
}

mod verdict;

pub use verdict::{
    decide, rollback_description, CheckResult, SeenStatus, Verdict, VerificationState, MISSING,
};

#[cfg(test)]
mod tests;
