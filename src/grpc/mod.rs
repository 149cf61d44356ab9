//! The gRPC adapters: tonic service implementations that translate protobuf requests into
//! use-case calls and views back into protobuf messages. They decide nothing themselves.

mod apps;
pub mod codec;
mod convert;
mod couplings;
mod pipelines;
mod promotions;
mod releases;

pub use apps::AppGrpc;
pub use couplings::CouplingGrpc;
pub use pipelines::PipelineGrpc;
pub use promotions::PromotionGrpc;
pub use releases::ReleaseGrpc;

use prost::Message;
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
        let code = error.grpc_code();
        let message = error.client_message();
        let details = match error {
            Error::UnmetStatusChecks { unmet, .. } => Some(pack(
                "type.googleapis.com/google.rpc.PreconditionFailure",
                tonic_types::pb::PreconditionFailure {
                    violations: unmet
                        .into_iter()
                        .map(|verdict| tonic_types::pb::precondition_failure::Violation {
                            r#type: "STATUS_CHECK".into(),
                            subject: verdict.subject(),
                            description: verdict.describe(),
                        })
                        .collect(),
                }
                .encode_to_vec(),
            )),
            Error::ConfigDrift { drift, .. } => Some(pack(
                "type.googleapis.com/pipelines.v1.ConfigDrift",
                crate::proto::ConfigDrift {
                    targets: drift.into_iter().map(convert::target_drift).collect(),
                }
                .encode_to_vec(),
            )),
            _ => None,
        };
        match details {
            None => Status::new(code, message),
            Some(detail) => {
                let status = tonic_types::pb::Status {
                    code: code as i32,
                    message: message.clone(),
                    details: vec![detail],
                };
                Status::with_details(code, message, status.encode_to_vec().into())
            }
        }
    }
}

fn pack(type_url: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url.to_owned(),
        value,
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
