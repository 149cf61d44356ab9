//! The one error type of the service layer. It knows its gRPC code; adapters turn it into
//! their wire form in one place each.

use sea_orm::DbErr;

use crate::{
    domain::InvalidField,
    service::views::{CheckVerdict, TargetDrift},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field broke a rule; the message names the field.
    #[error("invalid {}: {}", .0.field, .0.reason)]
    InvalidArgument(InvalidField),
    /// A referenced resource does not exist.
    #[error("{resource} '{key}' not found")]
    NotFound { resource: &'static str, key: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Required status checks are not met on the release to promote.
    #[error("{message}")]
    UnmetStatusChecks {
        message: String,
        unmet: Vec<CheckVerdict>,
    },
    /// Under safe promotion, config keys differ between the source and some targets.
    #[error("{message}")]
    ConfigDrift {
        message: String,
        drift: Vec<TargetDrift>,
    },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// The database could not be reached; the client may retry.
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    /// Anything else. The cause is logged; clients see an opaque message.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(resource: &'static str, key: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            key: key.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument(InvalidField::new(field, reason))
    }

    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Error::InvalidArgument(_) => tonic::Code::InvalidArgument,
            Error::NotFound { .. } => tonic::Code::NotFound,
            Error::AlreadyExists(_) => tonic::Code::AlreadyExists,
            Error::FailedPrecondition(_)
            | Error::UnmetStatusChecks { .. }
            | Error::ConfigDrift { .. } => tonic::Code::FailedPrecondition,
            Error::PermissionDenied(_) => tonic::Code::PermissionDenied,
            Error::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Error::Unavailable(_) => tonic::Code::Unavailable,
            Error::Internal(_) => tonic::Code::Internal,
        }
    }
}

impl From<InvalidField> for Error {
    fn from(field: InvalidField) -> Self {
        Error::InvalidArgument(field)
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(error.to_string()),
            other => Error::Internal(format!("database: {other}")),
        }
    }
}
