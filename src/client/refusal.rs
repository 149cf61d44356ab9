//! A server's refusal, readably: its message, then what its details say (the unmet
//! status checks, the config keys that differ, the freeze that holds the stage).

use prost::Message;
use tonic::Status;

use crate::proto;

const PRECONDITION_FAILURE: &str = "type.googleapis.com/google.rpc.PreconditionFailure";
const CONFIG_DRIFT: &str = "type.googleapis.com/pipelines.v1.ConfigDrift";
const FROZEN: &str = "type.googleapis.com/pipelines.v1.Frozen";

/// The refusal's message, and one indented line per detail.
pub fn describe(status: &Status) -> String {
    let mut text = format!("refused ({:?}): {}", status.code(), status.message());
    let Ok(details) = tonic_types::pb::Status::decode(status.details()) else {
        return text;
    };
    for detail in details.details {
        match detail.type_url.as_str() {
            PRECONDITION_FAILURE => {
                if let Ok(failure) =
                    tonic_types::pb::PreconditionFailure::decode(detail.value.as_slice())
                {
                    text.push_str("\n  unmet required status checks (app/stage/context):");
                    for violation in failure.violations {
                        text.push_str(&format!(
                            "\n    {}: {}",
                            violation.subject, violation.description
                        ));
                    }
                }
            }
            CONFIG_DRIFT => {
                if let Ok(drift) = proto::ConfigDrift::decode(detail.value.as_slice()) {
                    text.push_str("\n  config var keys that differ:");
                    for target in drift.targets {
                        let app = target.app.map(|app| app.name).unwrap_or_default();
                        if !target.missing_on_target.is_empty() {
                            text.push_str(&format!(
                                "\n    {app} lacks {}",
                                target.missing_on_target.join(", ")
                            ));
                        }
                        if !target.missing_on_source.is_empty() {
                            text.push_str(&format!(
                                "\n    {app} has, and the source lacks, {}",
                                target.missing_on_source.join(", ")
                            ));
                        }
                    }
                }
            }
            FROZEN => {
                if let Ok(frozen) = proto::Frozen::decode(detail.value.as_slice()) {
                    text.push_str(&format!(
                        "\n  frozen: {}",
                        super::print::frozen_line(frozen.stage, &frozen)
                    ));
                }
            }
            _ => {}
        }
    }
    text
}
