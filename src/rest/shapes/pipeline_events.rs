//! A pipeline event as the stream's `data`: `{sequence, kind, at}`, then the fields of the
//! changed resource's REST shape.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    Coupling, Freeze, NamedRef, Pipeline, Promotion, PromotionTarget, Release, ReleaseStatus,
};
use crate::pipeline_events::render::{PipelineEventView, PipelineSubject};

fn fields_of(shape: impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(shape) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// The JSON of one pipeline event.
pub fn pipeline_event_json(event: &PipelineEventView) -> Value {
    let mut json = Map::new();
    json.insert("sequence".into(), serde_json::json!(event.sequence));
    json.insert("kind".into(), serde_json::json!(event.kind));
    json.insert("at".into(), serde_json::json!(event.at));
    let fields = match event.subject.clone() {
        PipelineSubject::Pipeline(view) => fields_of(Pipeline::from(view)),
        PipelineSubject::Coupling(view) => fields_of(Coupling::from(view)),
        PipelineSubject::Release(view) => fields_of(Release::from(view)),
        PipelineSubject::Status { app, status } => {
            let mut fields = fields_of(ReleaseStatus::from(status));
            fields.insert("app".into(), serde_json::json!(NamedRef::from(app)));
            fields
        }
        PipelineSubject::Promotion(view) => fields_of(Promotion::from(view)),
        PipelineSubject::Target(view) => fields_of(PromotionTarget::from(view)),
        PipelineSubject::Freeze(view) => fields_of(Freeze::from(view)),
        PipelineSubject::App(app) => {
            let mut fields = Map::new();
            fields.insert("id".into(), serde_json::json!(app.id));
            fields.insert("app".into(), serde_json::json!(NamedRef::from(app)));
            fields
        }
        PipelineSubject::Gone { id, app } => {
            let mut fields = Map::new();
            fields.insert("id".into(), serde_json::json!(id));
            if let Some(app) = app {
                fields.insert("app".into(), serde_json::json!(NamedRef::from(app)));
            }
            fields
        }
    };
    json.extend(fields);
    Value::Object(json)
}
