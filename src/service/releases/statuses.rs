//! The status checks CI systems post on releases: recording, changing and listing them,
//! and the auto-promotion trigger a success writes.

use super::*;

/// A status check result to attach to a release. `state` is `None` when the request left
/// it out.
#[derive(Debug, Clone, Default)]
pub struct NewReleaseStatus {
    pub context: String,
    pub name: String,
    pub state: Option<StatusState>,
    pub description: String,
    pub target_url: String,
    pub image_url: String,
}

/// Changes to a release status; `None` leaves a field as it is. `context` may only repeat
/// the current context, since contexts are immutable.
#[derive(Debug, Clone, Default)]
pub struct ReleaseStatusChanges {
    pub context: Option<String>,
    pub name: Option<String>,
    /// `Some(None)`: a state was sent that names none (protobuf's unspecified), refused.
    pub state: Option<Option<StatusState>>,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub image_url: Option<String>,
}

fn status_view(model: release_status::Model) -> Result<ReleaseStatusView> {
    let state = StatusState::parse("state", &model.state)
        .map_err(|error| Error::Internal(format!("release status {}: {error}", model.id)))?;
    Ok(ReleaseStatusView {
        id: model.id,
        release_id: model.release_id,
        context: model.context,
        name: model.name,
        state,
        description: model.description,
        target_url: model.target_url,
        image_url: model.image_url,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

impl Releases {
    /// Writes an auto-promotion trigger when a status turned `success`: the release may
    /// have become eligible. The engine checks the rest.
    async fn trigger_on_success(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        owner: &app::Model,
        release: &release::Model,
        status: &release_status::Model,
        caller: &Caller,
    ) -> Result<bool> {
        if status.state != StatusState::Success.as_str() {
            return Ok(false);
        }
        lifecycle::record_triggers(
            db,
            vec![Trigger {
                app_id: owner.id,
                release_id: release.id,
                triggered_by: caller.name.clone(),
                reason: format!(
                    "status '{}' turned success on v{}, posted by '{}'",
                    status.context, release.version, caller.name
                ),
            }],
        )
        .await
    }

    /// One release status, by id.
    pub async fn status(&self, id: Uuid) -> Result<ReleaseStatusView> {
        store::release_statuses::status_by_id(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found("release status", &id.to_string()))
            .and_then(status_view)
    }

    pub async fn create_status(
        &self,
        app: &str,
        release_id: &str,
        status: NewReleaseStatus,
        caller: &Caller,
    ) -> Result<ReleaseStatusView> {
        authorize(caller, Role::Write, "posting a release status")?;
        check_context("context", &status.context)?;
        check_label("name", &status.name)?;
        let state = status
            .state
            .ok_or_else(|| Error::invalid("state", "is required"))?;
        check_description("description", &status.description)?;
        check_optional_url("target_url", &status.target_url)?;
        check_optional_url("image_url", &status.image_url)?;
        let owner = find_app(&self.db, "app", app).await?;
        let target =
            find_release_of_app(&self.db, &app_ref(&owner), "release_id", release_id).await?;
        let now = crate::store::now();
        let row = release_status::Model {
            id: Uuid::new_v4(),
            release_id: target.id,
            context: status.context.clone(),
            name: status.name,
            state: state.as_str().to_owned(),
            description: status.description,
            target_url: status.target_url,
            image_url: status.image_url,
            created_at: now,
            updated_at: now,
        };
        let txn = self.db.begin().await?;
        match store::release_statuses::insert_status(&txn, row).await {
            Ok(model) => {
                let triggered = self
                    .trigger_on_success(&txn, &owner, &target, &model, caller)
                    .await?;
                AuditEntry::about_status(&txn, "status.create", &owner, &target, &model)
                    .await?
                    .change("state", &None, &Some(&model.state))
                    .record(&txn, &Actor::of(caller))
                    .await?;
                txn.commit().await?;
                self.hub.read_model.changed(&[Key::App(owner.id)]).await;
                if triggered {
                    self.hub.signal_work();
                }
                // The status may decide a verification of this release.
                self.hub.signal_verification();
                status_view(model)
            }
            Err(error) if is_unique_violation(&error) => Err(Error::AlreadyExists(format!(
                "release {} already has a status with context '{}'",
                target.id, status.context
            ))),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn update_status(
        &self,
        app: &str,
        release_id: &str,
        status_id: &str,
        changes: ReleaseStatusChanges,
        caller: &Caller,
    ) -> Result<ReleaseStatusView> {
        authorize(caller, Role::Write, "updating a release status")?;
        if let Some(name) = &changes.name {
            check_label("name", name)?;
        }
        if changes.state == Some(None) {
            return Err(Error::invalid("state", "must name a state when given"));
        }
        if let Some(description) = &changes.description {
            check_description("description", description)?;
        }
        if let Some(url) = &changes.target_url {
            check_optional_url("target_url", url)?;
        }
        if let Some(url) = &changes.image_url {
            check_optional_url("image_url", url)?;
        }
        let owner = find_app(&self.db, "app", app).await?;
        let target =
            find_release_of_app(&self.db, &app_ref(&owner), "release_id", release_id).await?;
        let status_uuid = parse_uuid("status_id", status_id)?;
        let existing = store::release_statuses::status_of_release(&self.db, target.id, status_uuid)
            .await?
            .ok_or_else(|| Error::not_found("release status", status_id))?;
        if let Some(context) = &changes.context {
            if *context != existing.context {
                return Err(Error::invalid(
                    "context",
                    format!(
                        "is immutable; this status's context is '{}'",
                        existing.context
                    ),
                ));
            }
        }
        let state_before = existing.state.clone();
        let mut row = existing;
        if let Some(name) = changes.name {
            row.name = name;
        }
        if let Some(Some(state)) = changes.state {
            row.state = state.as_str().to_owned();
        }
        if let Some(description) = changes.description {
            row.description = description;
        }
        if let Some(url) = changes.target_url {
            row.target_url = url;
        }
        if let Some(url) = changes.image_url {
            row.image_url = url;
        }
        row.updated_at = crate::store::now();
        let txn = self.db.begin().await?;
        let updated = store::release_statuses::update_status(&txn, row).await?;
        let triggered = self
            .trigger_on_success(&txn, &owner, &target, &updated, caller)
            .await?;
        AuditEntry::about_status(&txn, "status.update", &owner, &target, &updated)
            .await?
            .change("state", &state_before, &updated.state)
            .record(&txn, &Actor::of(caller))
            .await?;
        txn.commit().await?;
        self.hub.read_model.changed(&[Key::App(owner.id)]).await;
        if triggered {
            self.hub.signal_work();
        }
        self.hub.signal_verification();
        status_view(updated)
    }

    /// The release, a page of its statuses ordered by context, and the combined state of
    /// all of them.
    pub async fn list_statuses(
        &self,
        app: &str,
        release_id: &str,
        page: &PageRequest,
    ) -> Result<ReleaseStatusesView> {
        let owner = find_app(&self.db, "app", app).await?;
        let target =
            find_release_of_app(&self.db, &app_ref(&owner), "release_id", release_id).await?;
        let statuses = store::release_statuses::statuses_of_release(&self.db, target.id)
            .await?
            .into_iter()
            .map(status_view)
            .collect::<Result<Vec<_>>>()?;
        let state = combined_state(statuses.iter().map(|status| status.state));
        let page = page.page_of_sorted(statuses, |status| status.context.clone());
        Ok(ReleaseStatusesView {
            state,
            release: self.view_of(&owner, target).await?,
            statuses: page.items,
            next_page_token: page.next_page_token,
        })
    }
}
