//! The gRPC adapters: tonic service implementations that translate protobuf requests into
//! use-case calls and views back into protobuf messages. They decide nothing themselves.

mod apps;
mod convert;
mod couplings;
mod pipelines;
mod releases;

pub use apps::AppGrpc;
pub use couplings::CouplingGrpc;
pub use pipelines::PipelineGrpc;
pub use releases::ReleaseGrpc;

use tonic::{Request, Status};

use crate::{domain::access::Caller, error::Error};

/// The one place a service error becomes a `tonic::Status`. Internal causes are logged
/// here and replaced by an opaque message.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match &error {
            Error::Internal(cause) => tracing::error!(%cause, "internal error"),
            Error::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        Status::new(error.grpc_code(), error.to_string())
    }
}

/// The caller the authentication layer attached to the request. A request without one
/// never reaches a use case.
fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}
