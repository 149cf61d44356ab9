//! The one error type of the service layer. It knows its gRPC code; adapters turn it into
//! their wire form in one place each.

use http::StatusCode;
use sea_orm::DbErr;

use crate::domain::{
    bounded_message, freeze::FrozenStage, promotion::TargetDrift, quoted, status::CheckVerdict,
    InvalidField,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field broke a rule; the message names the field.
    #[error("invalid {}: {}", .0.field, .0.reason)]
    InvalidArgument(InvalidField),
    /// A referenced resource does not exist.
    #[error("{0}")]
    NotFound(String),
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
    /// The stage a promotion goes into is frozen.
    #[error("{message}")]
    Frozen {
        message: String,
        frozen: FrozenStage,
    },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// A request body or message beyond the size the server reads; the message names the
    /// limit.
    #[error("{0}")]
    TooLarge(String),
    /// The caller's token has used up its rate limit for now.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The database could not be reached; the client may retry.
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    /// Anything else. The cause is logged; clients see an opaque message.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// "`resource` 'key' not found", quoting at most the start of a long key.
    pub fn not_found(resource: &str, key: &str) -> Self {
        Error::NotFound(format!("{resource} {} not found", quoted(key)))
    }

    /// The message a client sees: bounded in size whatever it echoes.
    pub fn client_message(&self) -> String {
        bounded_message(self.to_string())
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument(InvalidField::new(field, reason))
    }

    /// The one table of what each kind of error is on either transport: its gRPC code
    /// and its HTTP status.
    pub fn codes(&self) -> (tonic::Code, StatusCode) {
        use tonic::Code;
        match self {
            Error::InvalidArgument(_) => (Code::InvalidArgument, StatusCode::UNPROCESSABLE_ENTITY),
            Error::NotFound(_) => (Code::NotFound, StatusCode::NOT_FOUND),
            Error::AlreadyExists(_) => (Code::AlreadyExists, StatusCode::CONFLICT),
            Error::FailedPrecondition(_) => (Code::FailedPrecondition, StatusCode::CONFLICT),
            Error::UnmetStatusChecks { .. } => (Code::FailedPrecondition, StatusCode::CONFLICT),
            Error::Frozen { .. } => (Code::FailedPrecondition, StatusCode::CONFLICT),
            Error::ConfigDrift { .. } => {
                (Code::FailedPrecondition, StatusCode::UNPROCESSABLE_ENTITY)
            }
            Error::PermissionDenied(_) => (Code::PermissionDenied, StatusCode::FORBIDDEN),
            Error::Unauthenticated(_) => (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            Error::TooLarge(_) => (Code::ResourceExhausted, StatusCode::PAYLOAD_TOO_LARGE),
            Error::RateLimited { .. } => (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
            Error::Unavailable(_) => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            Error::Internal(_) => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        self.codes().0
    }

    pub fn http_status(&self) -> StatusCode {
        self.codes().1
    }

    /// The machine-readable details the error carries, for each transport to encode.
    pub fn details(&self) -> Option<ErrorDetail<'_>> {
        match self {
            Error::UnmetStatusChecks { unmet, .. } => Some(ErrorDetail::UnmetStatusChecks(unmet)),
            Error::ConfigDrift { drift, .. } => Some(ErrorDetail::ConfigDrift(drift)),
            Error::Frozen { frozen, .. } => Some(ErrorDetail::Frozen(frozen)),
            Error::InvalidArgument(field) => Some(ErrorDetail::BadRequest(field)),
            Error::RateLimited { retry_after, .. } => Some(ErrorDetail::RetryInfo(*retry_after)),
            _ => None,
        }
    }

    /// Logs what the client will not see: the cause of an internal error, and why the
    /// database was unavailable. Every transport calls this once per failed request.
    pub fn log_cause(&self) {
        match self {
            Error::Internal(cause) => tracing::error!(%cause, "internal error"),
            Error::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
    }
}

/// Details attached to an error, in the `google.rpc` and `pipelines.v1` message types.
pub enum ErrorDetail<'a> {
    /// `google.rpc.PreconditionFailure`, one `STATUS_CHECK` violation per unmet check.
    UnmetStatusChecks(&'a [CheckVerdict]),
    /// `pipelines.v1.ConfigDrift`, the missing keys per target and side.
    ConfigDrift(&'a [TargetDrift]),
    /// `pipelines.v1.Frozen`: the stage, the freeze, its reason and until when.
    Frozen(&'a FrozenStage),
    /// `google.rpc.BadRequest`, one field violation: the field and what was wrong with it.
    BadRequest(&'a InvalidField),
    /// `google.rpc.RetryInfo`: how long to wait before calling again.
    RetryInfo(std::time::Duration),
}

impl ErrorDetail<'_> {
    pub fn type_url(&self) -> &'static str {
        match self {
            ErrorDetail::UnmetStatusChecks(_) => {
                "type.googleapis.com/google.rpc.PreconditionFailure"
            }
            ErrorDetail::ConfigDrift(_) => "type.googleapis.com/pipelines.v1.ConfigDrift",
            ErrorDetail::Frozen(_) => "type.googleapis.com/pipelines.v1.Frozen",
            ErrorDetail::BadRequest(_) => "type.googleapis.com/google.rpc.BadRequest",
            ErrorDetail::RetryInfo(_) => "type.googleapis.com/google.rpc.RetryInfo",
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
        if is_connection_failure(&error) {
            Error::Unavailable(error.to_string())
        } else {
            Error::Internal(format!("database: {error}"))
        }
    }
}

/// Whether a database error means the database went away or could not take the work
/// (a restart, a dropped connection, an exhausted pool, a transaction aborted to break a
/// conflict), so that the same request may succeed when retried.
fn is_connection_failure(error: &DbErr) -> bool {
    use sea_orm::{sqlx::Error as SqlxError, RuntimeErr};
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx) => match sqlx {
            SqlxError::Io(_)
            | SqlxError::Tls(_)
            | SqlxError::Protocol(_)
            | SqlxError::PoolTimedOut
            | SqlxError::PoolClosed
            | SqlxError::WorkerCrashed => true,
            SqlxError::Database(database) => database.code().is_some_and(|code| {
                // 08: connection exception; 57P01-03: the server is shutting down or
                // starting; 40001 and 40P01: serialization failure and deadlock, which
                // PostgreSQL resolves by aborting one transaction that may be retried.
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
            }),
            _ => false,
        },
        // sea-orm reports a connection it could not use this way.
        RuntimeErr::Internal(message) => message.contains("connection"),
    }
}
