//! The audit log on the wire: entries out, with their changes as a `google.protobuf.Struct`.

use prost_types::{value::Kind, ListValue, Struct, Value};

use super::timestamp;
use crate::{audit::AuditEventView, proto};

pub fn audit_event(view: AuditEventView) -> proto::AuditEvent {
    let named = |named: crate::audit::NamedAt| proto::ResourceRef {
        id: named.id.to_string(),
        name: named.name,
    };
    proto::AuditEvent {
        id: view.id.to_string(),
        at: timestamp(view.at),
        actor: view.actor,
        role: view.role,
        action: view.action,
        resource: Some(proto::AuditResource {
            kind: view.resource.kind,
            id: view.resource.id,
            name: view.resource.name,
        }),
        pipeline: view.pipeline.map(named),
        app: view.app.map(named),
        request_id: view.request_id.unwrap_or_default(),
        summary: view.summary,
        changes: match json_value(view.changes).kind {
            Some(Kind::StructValue(fields)) => Some(fields),
            _ => Some(Struct::default()),
        },
    }
}

/// A JSON value as a protobuf `Value`. Numbers become doubles, as `Struct` holds them.
fn json_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(key, value)| (key, json_value(value)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_keeps_its_shape() {
        let json = serde_json::json!({"a": {"before": [1, "x"], "after": null}, "b": true});
        let Some(Kind::StructValue(fields)) = json_value(json).kind else {
            panic!("an object becomes a Struct");
        };
        let Some(Kind::StructValue(a)) = &fields.fields["a"].kind else {
            panic!("a nested object stays one");
        };
        let Some(Kind::ListValue(before)) = &a.fields["before"].kind else {
            panic!("an array becomes a list");
        };
        assert_eq!(before.values[0].kind, Some(Kind::NumberValue(1.0)));
        assert_eq!(a.fields["after"].kind, Some(Kind::NullValue(0)));
        assert_eq!(fields.fields["b"].kind, Some(Kind::BoolValue(true)));
    }
}
