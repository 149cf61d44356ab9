//! Freezes on the wire: a freeze request in, freezes and frozen stages out.

use chrono::{DateTime, Utc};

use super::{resource_ref, stage_from_proto, stage_to_proto, timestamp};
use crate::{
    domain::{
        freeze::{FrozenStage, Schedule, Window},
        InvalidField,
    },
    proto,
    service::NewFreeze,
    views,
};

/// A request's optional time; one outside what a timestamp can hold names its field.
pub fn time_from_proto(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, InvalidField> {
    let Some(value) = value else {
        return Ok(None);
    };
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .map(Some)
        .ok_or_else(|| InvalidField::new(field, "is not a valid timestamp"))
}

/// A freeze request: its stages by name, its times as UTC instants.
pub fn new_freeze(request: proto::CreateFreezeRequest) -> Result<NewFreeze, InvalidField> {
    let stages = request
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            stage_from_proto(&format!("stages[{index}]"), *stage).map(|s| s.as_str().to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = |value: String| Some(value).filter(|value| !value.is_empty());
    Ok(NewFreeze {
        pipeline: request.pipeline,
        stages,
        reason: request.reason,
        starts_at: time_from_proto("starts_at", request.starts_at)?,
        ends_at: time_from_proto("ends_at", request.ends_at)?,
        freeze_start: text(request.freeze_start),
        freeze_end: text(request.freeze_end),
        cron_timezone: text(request.cron_timezone),
    })
}

/// A frozen stage: a coupling's, and the detail of a promotion refused for it.
pub fn frozen(frozen: &FrozenStage) -> proto::Frozen {
    freeze_ref(&views::FreezeRef::from(frozen))
}

pub fn freeze_ref(freeze: &views::FreezeRef) -> proto::Frozen {
    proto::Frozen {
        stage: stage_to_proto(freeze.stage) as i32,
        reason: freeze.reason.clone(),
        until: timestamp(freeze.until),
        freeze_id: freeze.freeze_id.to_string(),
    }
}

pub fn freeze(view: views::FreezeView) -> proto::Freeze {
    let window = |window: Window| proto::FreezeWindow {
        starts_at: timestamp(window.starts_at),
        ends_at: timestamp(window.ends_at),
    };
    let active = view.active();
    let freeze = view.freeze;
    let (starts_at, ends_at, freeze_start, freeze_end, cron_timezone) = match freeze.schedule {
        Schedule::OneOff(one_off) => (
            timestamp(one_off.starts_at),
            timestamp(one_off.ends_at),
            String::new(),
            String::new(),
            String::new(),
        ),
        Schedule::Recurring(recurrence) => (
            None,
            None,
            recurrence.start.as_str().to_owned(),
            recurrence.end.as_str().to_owned(),
            recurrence.zone.name().to_owned(),
        ),
    };
    proto::Freeze {
        id: freeze.id.to_string(),
        pipeline: resource_ref(view.pipeline),
        stages: freeze
            .stages
            .iter()
            .map(|stage| stage_to_proto(*stage) as i32)
            .collect(),
        reason: freeze.reason,
        created_by: freeze.created_by,
        active,
        current: view.current.map(window),
        next: view.next.map(window),
        starts_at,
        ends_at,
        freeze_start,
        freeze_end,
        cron_timezone,
        created_at: timestamp(freeze.created_at),
        lifted_at: view.lifted_at.and_then(timestamp),
        lifted_by: view.lifted_by.unwrap_or_default(),
    }
}
