//! The gRPC adapters: tonic service implementations that translate protobuf requests into
//! use-case calls and views back into protobuf messages. They decide nothing themselves.

mod account;
mod apps;
mod audit;
pub mod codec;
pub mod convert;
mod couplings;
mod pipelines;
mod promotions;
mod releases;

/// The largest request message the gRPC services decode: tonic's default, named here so
/// that refusals can quote it.
pub const MAX_REQUEST_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

pub use account::AccountGrpc;
pub use apps::AppGrpc;
pub use audit::AuditGrpc;
pub use couplings::CouplingGrpc;
pub use pipelines::PipelineGrpc;
pub use promotions::PromotionGrpc;
pub use releases::ReleaseGrpc;

use prost::Message;
use tonic::{Request, Status};

use crate::{
    domain::access::Caller,
    error::{Error, ErrorDetail},
};

/// The one place a service error becomes a `tonic::Status`. Internal causes are logged
/// and replaced by an opaque message.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        error.log_cause();
        let code = error.grpc_code();
        let message = error.client_message();
        let detail = error.details().map(|detail| {
            let value = match detail {
                ErrorDetail::UnmetStatusChecks(unmet) => tonic_types::pb::PreconditionFailure {
                    violations: unmet
                        .iter()
                        .map(|verdict| tonic_types::pb::precondition_failure::Violation {
                            r#type: "STATUS_CHECK".into(),
                            subject: verdict.subject(),
                            description: verdict.describe(),
                        })
                        .collect(),
                }
                .encode_to_vec(),
                ErrorDetail::ConfigDrift(drift) => crate::proto::ConfigDrift {
                    targets: drift.iter().cloned().map(convert::target_drift).collect(),
                }
                .encode_to_vec(),
                ErrorDetail::Frozen(frozen) => convert::frozen(frozen).encode_to_vec(),
                ErrorDetail::BadRequest(invalid) => bad_request(invalid).encode_to_vec(),
                ErrorDetail::RetryInfo(delay) => tonic_types::pb::RetryInfo {
                    retry_delay: Some(prost_types::Duration {
                        seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                        nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
                    }),
                }
                .encode_to_vec(),
            };
            pack(detail.type_url(), value)
        });
        match detail {
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

/// A `google.rpc.BadRequest` naming one field and what was wrong with it.
pub fn bad_request(invalid: &crate::domain::InvalidField) -> tonic_types::pb::BadRequest {
    tonic_types::pb::BadRequest {
        field_violations: vec![tonic_types::pb::bad_request::FieldViolation {
            field: invalid.field.clone(),
            description: crate::domain::bounded_message(invalid.reason.clone()),
            ..Default::default()
        }],
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

/// The page a list request asks for: bounded, whatever the client sent.
fn page_of(page_size: u32, page_token: &str) -> Result<crate::service::PageRequest, tonic::Status> {
    Ok(crate::service::PageRequest::bounded(
        u64::from(page_size),
        page_token,
    )?)
}

/// An absent token for the last page, as protobuf has no null strings.
fn token_or_empty(token: Option<String>) -> String {
    token.unwrap_or_default()
}
