//! Who is calling and what their role lets them do.

use std::fmt;

/// A caller's role. Each role includes the powers of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Get, list and watch.
    Read,
    /// Adds create, update and promote.
    Write,
    /// Adds elevated access: deleting couplings and pipelines, removing required contexts
    /// and bypassing status checks.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        [Role::Read, Role::Write, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The name of the token that authenticated the call, recorded on what it creates.
    pub name: String,
    pub role: Role,
    /// The `x-request-id` of the request it made, which the audit log records.
    pub request_id: Option<String>,
    /// The stable id of the token that authenticated the call; `None` in protected mode.
    pub token_id: Option<uuid::Uuid>,
    /// The token's own rate limits, where it has any.
    pub limits: super::rate_limit::TokenLimits,
    /// The email address given with the token, if any.
    pub email: Option<String>,
}

/// The caller's name in protected mode, when no token exists and the server listens on
/// loopback only.
pub const PROTECTED_MODE_CALLER: &str = "protected-mode";

/// Who made a release or a promotion, as `GET /account` answers for its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The token's stable id; `None` in protected mode and for the engine's own.
    pub id: Option<uuid::Uuid>,
    /// The token's email address, else its name; `local` in protected mode, `system` for
    /// the engine's own.
    pub email: String,
}

impl Author {
    /// The engine itself: auto-promotions and automatic rollbacks.
    pub fn system() -> Self {
        Self {
            id: None,
            email: "system".to_owned(),
        }
    }

    /// As stored; a row made before authors were recorded has no email and answers
    /// `unknown`.
    pub fn stored(id: Option<uuid::Uuid>, email: Option<String>) -> Self {
        Self {
            id,
            email: email.unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

impl Caller {
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            request_id: None,
            token_id: None,
            limits: Default::default(),
            email: None,
        }
    }

    /// Whether this is protected mode's caller rather than a token's.
    pub fn is_protected_mode(&self) -> bool {
        self.token_id.is_none() && self.name == PROTECTED_MODE_CALLER
    }

    /// The name the caller answers to: the token's name, or `local` in protected mode.
    pub fn display_name(&self) -> &str {
        if self.is_protected_mode() {
            "local"
        } else {
            &self.name
        }
    }

    /// The caller as the author of what it makes.
    pub fn author(&self) -> Author {
        Author {
            id: self.token_id,
            email: self
                .email
                .clone()
                .unwrap_or_else(|| self.display_name().to_owned()),
        }
    }

    /// The same caller, whose token was given this email address.
    pub fn with_email(mut self, email: Option<String>) -> Self {
        self.email = email;
        self
    }

    /// The same caller, authenticated by the token with this id.
    pub fn with_token_id(mut self, id: uuid::Uuid) -> Self {
        self.token_id = Some(id);
        self
    }

    /// The same caller, limited by its token's own rate limits.
    pub fn with_limits(mut self, limits: super::rate_limit::TokenLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same caller, making the request named `request_id`.
    pub fn making(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// Whether the caller may take elevated (break-glass) actions.
    pub fn is_elevated(&self) -> bool {
        self.role >= Role::Admin
    }

    pub fn has_role(&self, needed: Role) -> bool {
        self.role >= needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_is_elevated() {
        assert!(!Caller::new("ci", Role::Read).is_elevated());
        assert!(!Caller::new("ci", Role::Write).is_elevated());
        assert!(Caller::new("ops", Role::Admin).is_elevated());
    }

    #[test]
    fn roles_include_lower_roles() {
        let writer = Caller::new("ci", Role::Write);
        assert!(writer.has_role(Role::Read));
        assert!(writer.has_role(Role::Write));
        assert!(!writer.has_role(Role::Admin));
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
