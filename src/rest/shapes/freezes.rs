//! Freezes, and the frozen stages couplings, promotions and events name.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::NamedRef;
use crate::{
    domain::freeze::{FrozenStage, Schedule, Window},
    views,
};

/// Why a coupling's stage takes no new deploys now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Frozen {
    pub reason: String,
    /// The latest end among the active freezes covering the stage.
    pub until: DateTime<Utc>,
    pub freeze_id: Uuid,
}

impl From<FrozenStage> for Frozen {
    fn from(frozen: FrozenStage) -> Self {
        Self {
            reason: frozen.reason,
            until: frozen.until,
            freeze_id: frozen.freeze_id,
        }
    }
}

/// A frozen stage at one moment: what a target waits for, or what a promotion broke glass
/// through.
#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeRef {
    pub freeze_id: Uuid,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub stage: &'static str,
    pub reason: String,
    pub until: DateTime<Utc>,
}

impl From<views::FreezeRef> for FreezeRef {
    fn from(freeze: views::FreezeRef) -> Self {
        Self {
            freeze_id: freeze.freeze_id,
            stage: freeze.stage.as_str(),
            reason: freeze.reason,
            until: freeze.until,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeWindow {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl From<Window> for FreezeWindow {
    fn from(window: Window) -> Self {
        Self {
            starts_at: window.starts_at,
            ends_at: window.ends_at,
        }
    }
}

/// A freeze: one-off (`starts_at`, `ends_at`) or recurring (`freeze_start` to the next
/// `freeze_end`, read in `cron_timezone`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Freeze {
    pub id: Uuid,
    pub pipeline: NamedRef,
    #[schema(value_type = Vec<crate::rest::openapi::StageName>)]
    pub stages: Vec<&'static str>,
    pub reason: String,
    pub created_by: String,
    /// It holds now.
    pub active: bool,
    /// The occurrence in effect now.
    pub current: Option<FreezeWindow>,
    /// The first occurrence that starts after now.
    pub next: Option<FreezeWindow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron_timezone: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it was lifted early, and by which token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<String>,
}

impl From<views::FreezeView> for Freeze {
    fn from(view: views::FreezeView) -> Self {
        let active = view.active();
        let freeze = view.freeze;
        let mut shape = Self {
            id: freeze.id,
            pipeline: view.pipeline.into(),
            stages: freeze.stages.iter().map(|stage| stage.as_str()).collect(),
            reason: freeze.reason,
            created_by: freeze.created_by,
            active,
            current: view.current.map(FreezeWindow::from),
            next: view.next.map(FreezeWindow::from),
            starts_at: None,
            ends_at: None,
            freeze_start: None,
            freeze_end: None,
            cron_timezone: None,
            created_at: freeze.created_at,
            lifted_at: view.lifted_at,
            lifted_by: view.lifted_by,
        };
        match freeze.schedule {
            Schedule::OneOff(window) => {
                shape.starts_at = Some(window.starts_at);
                shape.ends_at = Some(window.ends_at);
            }
            Schedule::Recurring(recurrence) => {
                shape.freeze_start = Some(recurrence.start.as_str().to_owned());
                shape.freeze_end = Some(recurrence.end.as_str().to_owned());
                shape.cron_timezone = Some(recurrence.zone.name().to_owned());
            }
        }
        shape
    }
}
