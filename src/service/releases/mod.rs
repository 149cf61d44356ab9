//! Recording releases on apps, rolling them back, and reading them; the status checks CI
//! systems post on them are in [`statuses`].

mod numbering;
mod statuses;

pub use statuses::{NewReleaseStatus, ReleaseStatusChanges};

use std::sync::Arc;

use futures_util::Stream;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::{
    authorize,
    lookup::{app_ref, find_app, find_release_of_app, parse_uuid, release_views},
    paging::{Page, PageRequest},
    views::{ReleaseStatusView, ReleaseStatusesView, ReleaseView, VisibleConfigVars},
};

use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        names::{check_context, check_description, check_image, check_label, check_optional_url},
        range::TypedRange,
        status::{combined_state, ReleaseState, StatusState},
    },
    error::{Error, Result},
    lifecycle::{self, Transaction, Trigger},
    progress::EventHub,
    read_model::Key,
    store::{
        self,
        entities::{app, release, release_status},
        insert_release_with_next_version, is_unique_violation, NewRelease,
    },
};

/// Releases read at a time by a whole list: one range of the `(app_id, version)` index.
pub const RELEASES_PER_READ: u64 = 500;

#[derive(Clone)]
pub struct Releases {
    pub(super) db: DatabaseConnection,
    hub: Arc<EventHub>,
    numbering: Arc<numbering::NumberingQueues>,
}

impl Releases {
    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Self {
        Self {
            db,
            hub,
            numbering: Arc::new(numbering::NumberingQueues::new()),
        }
    }

    async fn view_of(&self, owner: &app::Model, model: release::Model) -> Result<ReleaseView> {
        release_views(&self.db, owner, vec![model])
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("release view went missing".into()))
    }

    /// Records a release built elsewhere. It is `succeeded` at once, so it becomes the app's
    /// current release.
    pub async fn create(
        &self,
        app: &str,
        image: &str,
        description: &str,
        caller: &Caller,
    ) -> Result<ReleaseView> {
        authorize(caller, Role::Write, "creating a release")?;
        check_image("image", image)?;
        check_description("description", description)?;
        let owner = find_app(&self.db, "app", app).await?;
        let _turn = self.numbering.wait_turn(owner.id).await;
        // The app stays locked live until the release commits: a deleted app never gets one.
        let txn = self.db.begin().await?;
        crate::store::lock_live::<crate::store::entities::app::Entity>(&txn, owner.id)
            .await?
            .ok_or_else(|| Error::not_found("app", app))?;
        let model = insert_release_with_next_version(
            &txn,
            NewRelease {
                app_id: owner.id,
                image: image.to_owned(),
                description: description.to_owned(),
                status: ReleaseState::Succeeded.as_str(),
                promoted_from_app_id: None,
                promoted_from_release_id: None,
                promoted_from_promotion_id: None,
                promotion_target_id: None,
                created_by_id: caller.token_id,
                created_by_email: caller.author().email,
            },
        )
        .await?;
        let triggered = lifecycle::record_triggers(
            &txn,
            vec![Trigger {
                app_id: owner.id,
                release_id: model.id,
                triggered_by: caller.name.clone(),
                reason: format!("release v{} created by '{}'", model.version, caller.name),
            }],
        )
        .await?;
        AuditEntry::about_release(
            &txn,
            "release.create",
            (model.id, model.version),
            (owner.id, &owner.name),
            format!("released v{} of {}: {image}", model.version, owner.name),
        )
        .await?
        .with("image", image)
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.hub.read_model.changed(&[Key::App(owner.id)]).await;
        if triggered {
            self.hub.signal_work();
        }
        self.view_of(&owner, model).await
    }

    /// Rolls an app back to an earlier release, named by id or version (`7` or `v7`): a new
    /// release with that image and the next version, `pending` until the engine has
    /// deployed it, queued on the app like a promotion target. Only a release that
    /// succeeded can be rolled back to.
    pub async fn rollback(&self, app: &str, to: &str, caller: &Caller) -> Result<ReleaseView> {
        authorize(caller, Role::Write, "rolling back a release")?;
        let owner = find_app(&self.db, "app", app).await?;
        let earlier = find_release_of_app(&self.db, &app_ref(&owner), "release", to).await?;
        if earlier.status != ReleaseState::Succeeded.as_str() {
            return Err(Error::invalid(
                "release",
                format!(
                    "release v{} of app '{}' is {}; only a succeeded release can be rolled back to",
                    earlier.version, owner.name, earlier.status
                ),
            ));
        }
        let _turn = self.numbering.wait_turn(owner.id).await;
        let mut tx = Transaction::begin(&self.db, &self.hub).await?;
        let created = lifecycle::create_rollback(&mut tx, &owner, &earlier, caller).await?;
        AuditEntry::about_release(
            tx.connection(),
            "release.rollback",
            (created.id, created.version),
            (owner.id, &owner.name),
            format!(
                "rolled {} back to v{} as v{}",
                owner.name, earlier.version, created.version
            ),
        )
        .await?
        .with("to_version", earlier.version)
        .with("image", &created.image)
        .record_in(&mut tx, &Actor::of(caller))
        .await?;
        tx.commit().await?;
        self.hub.signal_work();
        self.view_of(&owner, created).await
    }

    pub async fn get(&self, app: &str, release_id: &str) -> Result<ReleaseView> {
        let owner = find_app(&self.db, "app", app).await?;
        let model =
            find_release_of_app(&self.db, &app_ref(&owner), "release_id", release_id).await?;
        self.view_of(&owner, model).await
    }

    /// The app's config vars as they were when `release` was made. Values are withheld
    /// from a reader, as for the app's current config vars.
    pub async fn config_vars(
        &self,
        app: &str,
        release: &str,
        caller: &Caller,
    ) -> Result<VisibleConfigVars> {
        let owner = find_app(&self.db, "app", app).await?;
        let model = find_release_of_app(&self.db, &app_ref(&owner), "release", release).await?;
        let Some(change_id) = model.config_change_id else {
            return Err(Error::NotFound(format!(
                "config vars of release v{} of app '{}' were not recorded: it was made before \
                 config history was kept",
                model.version, owner.name
            )));
        };
        let vars = store::config_vars::config_vars_as_of(&self.db, owner.id, change_id).await?;
        Ok(super::apps::visible_to(caller, vars))
    }

    /// A page of the app's releases in a range of versions, in the range's order, and
    /// whether more follow it.
    pub async fn in_version_range(
        &self,
        app: &str,
        range: TypedRange<i64>,
    ) -> Result<(Vec<ReleaseView>, bool)> {
        let owner = find_app(&self.db, "app", app).await?;
        let max = range.max as usize;
        let mut rows =
            store::releases::releases_in_version_range(&self.db, owner.id, range.into()).await?;
        let more = rows.len() > max;
        rows.truncate(max);
        Ok((release_views(&self.db, &owner, rows).await?, more))
    }

    /// The app's releases, newest first.
    pub async fn list(&self, app: &str, page: &PageRequest) -> Result<Page<ReleaseView>> {
        let owner = find_app(&self.db, "app", app).await?;
        let before =
            match page.after() {
                Some(after) => Some(after.parse::<i64>().map_err(|_| {
                    Error::invalid("page_token", "is not a token this server issued")
                })?),
                None => None,
            };
        let rows =
            store::releases::releases_newest_first(&self.db, owner.id, before, page.fetch_limit())
                .await?;
        let views = release_views(&self.db, &owner, rows).await?;
        Ok(page.finish(views, |view| view.version.to_string()))
    }

    /// The app's releases oldest first, the order Akkeris clients read: the last one is the
    /// newest. With `newest`, only that many of the newest, still oldest first; 0 is no
    /// limit, as a page size of 0 is elsewhere. The app is found at once (an unknown one is
    /// an error here); its releases are read [`RELEASES_PER_READ`] at a time as the
    /// stream is consumed, so a long history is never held whole.
    pub async fn oldest_first(
        &self,
        app: &str,
        newest: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Vec<ReleaseView>>> + Send + 'static> {
        let owner = find_app(&self.db, "app", app).await?;
        // Databases take a signed 64-bit offset; any larger one means "all" anyway.
        let after = match newest.filter(|limit| *limit > 0 && *limit <= i64::MAX as u64) {
            Some(limit) => store::releases::nth_newest_version(&self.db, owner.id, limit)
                .await?
                .map(|version| version - 1),
            None => None,
        };
        let db = self.db.clone();
        Ok(futures_util::stream::try_unfold(Some(after), move |next| {
            let (db, owner) = (db.clone(), owner.clone());
            async move {
                let Some(after) = next else {
                    return Ok(None);
                };
                let rows =
                    store::releases::releases_oldest_first(&db, owner.id, after, RELEASES_PER_READ)
                        .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let last = rows.last().map(|row| row.version);
                let more = rows.len() as u64 == RELEASES_PER_READ;
                let views = release_views(&db, &owner, rows).await?;
                Ok(Some((views, more.then_some(last))))
            }
        }))
    }
}
