//! Freezes: stopping the line for some stages of a pipeline, reading where each freeze
//! stands, and lifting one early. Which stages are frozen, for the gate of a new promotion,
//! is read from the database here too.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::{
    authorize,
    lookup::find_pipeline,
    paging::{compound_key, Page, PageRequest},
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        freeze::{check_reason, check_stages, frozen_stages, FrozenStage, Schedule},
        stage::Stage,
    },
    error::{Error, Result},
    progress::EventHub,
    read_model::Key,
    store::{self, entities::freeze},
    views::{freeze_of_row, FreezeView, ResourceRef},
};

/// A freeze as a client asked for it: a one-off window (`ends_at`, and `starts_at` or now),
/// or a recurring one (`freeze_start`, `freeze_end` and `cron_timezone`, UTC by default).
#[derive(Debug, Clone, Default)]
pub struct NewFreeze {
    pub pipeline: String,
    pub stages: Vec<String>,
    pub reason: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub freeze_start: Option<String>,
    pub freeze_end: Option<String>,
    pub cron_timezone: Option<String>,
}

impl NewFreeze {
    /// The schedule the request describes, in one of its two forms and never both.
    fn schedule(&self, now: DateTime<Utc>) -> Result<Schedule> {
        let present =
            |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
        let recurring = present(&self.freeze_start)
            || present(&self.freeze_end)
            || present(&self.cron_timezone);
        if !recurring {
            // Stored to the microsecond, as every backend keeps times.
            let stored = |time: Option<DateTime<Utc>>| time.map(|time| time.trunc_subsecs(6));
            return Ok(Schedule::one_off(
                stored(self.starts_at),
                stored(self.ends_at),
                now,
            )?);
        }
        if let Some(field) = [("starts_at", self.starts_at), ("ends_at", self.ends_at)]
            .into_iter()
            .find_map(|(field, value)| value.map(|_| field))
        {
            return Err(Error::invalid(
                field,
                "a freeze is either one-off (starts_at, ends_at) or recurring (freeze_start, freeze_end, cron_timezone), not both",
            ));
        }
        let required = |field: &str, value: &Option<String>| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        "is required for a recurring freeze, as a five-field cron expression",
                    )
                })
        };
        let start = required("freeze_start", &self.freeze_start)?;
        let end = required("freeze_end", &self.freeze_end)?;
        let zone = self
            .cron_timezone
            .clone()
            .filter(|zone| !zone.trim().is_empty())
            .unwrap_or_else(|| "UTC".to_owned());
        Ok(Schedule::recurring(&start, &end, &zone, now)?)
    }
}

#[derive(Clone)]
pub struct Freezes {
    db: DatabaseConnection,
    hub: Arc<EventHub>,
}

impl Freezes {
    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Self {
        Self { db, hub }
    }

    /// Stops the line: anyone who may promote may freeze.
    pub async fn create(&self, request: NewFreeze, caller: &Caller) -> Result<FreezeView> {
        authorize(caller, Role::Write, "creating a freeze")?;
        let pipeline = find_pipeline(&self.db, "pipeline", &request.pipeline).await?;
        let stages = check_stages(&request.stages)?;
        let reason = check_reason(&request.reason)?;
        let now = store::now();
        let schedule = request.schedule(now)?;
        let (starts_at, ends_at, freeze_start, freeze_end, cron_timezone) = match &schedule {
            Schedule::OneOff(window) => (
                Some(window.starts_at),
                Some(window.ends_at),
                None,
                None,
                None,
            ),
            Schedule::Recurring(recurrence) => (
                None,
                None,
                Some(recurrence.start.as_str().to_owned()),
                Some(recurrence.end.as_str().to_owned()),
                Some(recurrence.zone.name().to_owned()),
            ),
        };
        let names: Vec<&str> = stages.iter().map(|stage| stage.as_str()).collect();
        let row = freeze::Model {
            id: Uuid::new_v4(),
            pipeline_id: pipeline.id,
            stages: serde_json::to_string(&names)
                .map_err(|error| Error::Internal(error.to_string()))?,
            reason,
            created_by: caller.name.clone(),
            starts_at,
            ends_at,
            freeze_start,
            freeze_end,
            cron_timezone,
            created_at: now,
            lifted_at: None,
            lifted_by: None,
        };
        let txn = self.db.begin().await?;
        let stored = store::freezes::insert_freeze(&txn, row).await?;
        let stages = names.join(", ");
        let summary = format!("froze {stages} of {}: {}", pipeline.name, stored.reason);
        freeze_entry("freeze.create", &stored, &pipeline.name, summary)
            .change("freeze", &None, &Some(freeze_definition(&stored, &names)))
            .record(&txn, &Actor::of(caller))
            .await?;
        txn.commit().await?;
        self.changed(pipeline.id).await;
        Ok(FreezeView::at(
            freeze_of_row(&stored)?,
            ResourceRef {
                id: pipeline.id,
                name: pipeline.name,
            },
            None,
            store::now(),
        ))
    }

    /// The pipeline's freezes that are active or still to come, oldest first.
    pub async fn list(&self, pipeline: &str, page: &PageRequest) -> Result<Page<FreezeView>> {
        let now = store::now();
        let remembered = self.hub.read_model.read(|catalog| {
            let found = catalog.pipeline(pipeline)?;
            Some((
                ResourceRef {
                    id: found.id,
                    name: found.name.clone(),
                },
                catalog.freezes_of_pipeline(found.id),
            ))
        });
        let (pipeline, freezes) = match remembered.await {
            Some(found) => found,
            None => {
                let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
                let rows = store::freezes::live_freezes(&self.db, Some(&[found.id]), now).await?;
                let freezes = rows.iter().map(freeze_of_row).collect::<Result<Vec<_>>>()?;
                (
                    ResourceRef {
                        id: found.id,
                        name: found.name,
                    },
                    freezes,
                )
            }
        };
        let views: Vec<FreezeView> = freezes
            .into_iter()
            .filter(|freeze| freeze.schedule.is_live(now))
            .map(|freeze| FreezeView::at(freeze, pipeline.clone(), None, now))
            .collect();
        Ok(page.page_of_sorted(views, freeze_order))
    }

    /// One freeze of a pipeline, lifted or not, as it stands now.
    pub async fn get(&self, pipeline_id: Uuid, id: Uuid) -> Result<FreezeView> {
        let not_found = || Error::not_found("freeze", &id.to_string());
        let row = store::freezes::freeze_of_pipeline(&self.db, pipeline_id, id)
            .await?
            .ok_or_else(not_found)?;
        let pipeline = store::pipelines::pipelines_by_id(&self.db, vec![pipeline_id])
            .await?
            .pop()
            .ok_or_else(not_found)?;
        let lifted = row.lifted_at.zip(row.lifted_by.clone());
        Ok(FreezeView::at(
            freeze_of_row(&row)?,
            ResourceRef {
                id: pipeline.id,
                name: pipeline.name,
            },
            lifted,
            store::now(),
        ))
    }

    /// Lifts a freeze early: restarting the line needs elevated access.
    pub async fn lift(&self, pipeline: &str, id: &str, caller: &Caller) -> Result<FreezeView> {
        authorize(caller, Role::Admin, "lifting a freeze")?;
        let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
        let not_found = || Error::not_found("freeze", id);
        let freeze_id = Uuid::parse_str(id.trim()).map_err(|_| not_found())?;
        let row = store::freezes::freeze_of_pipeline(&self.db, found.id, freeze_id)
            .await?
            .filter(|row| row.lifted_at.is_none())
            .ok_or_else(not_found)?;
        let now = store::now();
        let txn = self.db.begin().await?;
        if !store::freezes::lift_freeze(&txn, freeze_id, &caller.name, now).await? {
            return Err(not_found());
        }
        let freeze = freeze_of_row(&row)?;
        let names: Vec<&str> = freeze.stages.iter().map(|stage| stage.as_str()).collect();
        let summary = format!(
            "lifted the freeze of {} in {}: {}",
            names.join(", "),
            found.name,
            row.reason
        );
        freeze_entry("freeze.delete", &row, &found.name, summary)
            .change("freeze", &Some(freeze_definition(&row, &names)), &None)
            .record(&txn, &Actor::of(caller))
            .await?;
        txn.commit().await?;
        self.changed(found.id).await;
        Ok(FreezeView::at(
            freeze_of_row(&row)?,
            ResourceRef {
                id: found.id,
                name: found.name,
            },
            Some((now, caller.name.clone())),
            now,
        ))
    }

    /// Every process learns of the change; the engine here looks again at once.
    async fn changed(&self, pipeline: Uuid) {
        self.hub
            .read_model
            .changed(&[Key::Pipeline(pipeline)])
            .await;
        self.hub.signal_work();
    }
}

/// An entry about a freeze, in its pipeline.
fn freeze_entry(
    action: &'static str,
    row: &freeze::Model,
    pipeline: &str,
    summary: String,
) -> AuditEntry {
    AuditEntry::new(action, "freeze", row.id, &row.reason, summary)
        .in_pipeline(row.pipeline_id, pipeline)
}

/// What a freeze holds, as the audit log records it.
fn freeze_definition(row: &freeze::Model, stages: &[&str]) -> serde_json::Value {
    let mut definition = serde_json::json!({ "stages": stages, "reason": row.reason });
    let times = [("starts_at", row.starts_at), ("ends_at", row.ends_at)];
    for (field, time) in times {
        if let Some(time) = time {
            definition[field] = time.to_rfc3339_opts(SecondsFormat::Micros, true).into();
        }
    }
    let crons = [
        ("freeze_start", &row.freeze_start),
        ("freeze_end", &row.freeze_end),
        ("cron_timezone", &row.cron_timezone),
    ];
    for (field, value) in crons {
        if let Some(value) = value {
            definition[field] = value.as_str().into();
        }
    }
    definition
}

/// Freezes sort by when they were made, then by id.
fn freeze_order(view: &FreezeView) -> String {
    compound_key(&[
        &view
            .freeze
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        &view.freeze.id.to_string(),
    ])
}

/// The stages of each of `pipelines` frozen at `now`, read from the database: a gate
/// never trusts memory.
pub(crate) async fn frozen_stages_of(
    db: &impl ConnectionTrait,
    pipelines: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, BTreeMap<Stage, FrozenStage>>> {
    let rows = store::freezes::live_freezes(db, Some(pipelines), now).await?;
    let freezes = rows.iter().map(freeze_of_row).collect::<Result<Vec<_>>>()?;
    Ok(pipelines
        .iter()
        .map(|pipeline| {
            let own = freezes
                .iter()
                .filter(|freeze| freeze.pipeline_id == *pipeline);
            (*pipeline, frozen_stages(own, now))
        })
        .collect())
}
