//! Creating, reading and deleting apps, and their config vars.

use std::{collections::HashSet, sync::Arc};

use sea_orm::{DatabaseConnection, TransactionTrait};

use super::{
    authorize,
    lookup::{self, app_view, find_app},
    paging::{Page, PageRequest},
    views::{AppView, ConfigVars, VisibleConfigVars},
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        config_vars::ConfigKeyChanges,
        names::{check_config_key, check_config_value, AppName},
    },
    error::{Error, Result},
    lifecycle::{self, Transaction},
    progress::EventHub,
    read_model::Key,
    store::{self, entities::app},
};

/// The most apps one filter may ask for.
pub const MOST_APPS_FILTERED: usize = 1_000;

/// One change to an app's config vars: a new value, or `None` to delete the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVarChange {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Clone)]
pub struct Apps {
    db: DatabaseConnection,
    hub: Arc<EventHub>,
}

impl Apps {
    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Self {
        Self { db, hub }
    }

    pub async fn create(&self, name: &str, caller: &Caller) -> Result<AppView> {
        authorize(caller, Role::Write, "creating an app")?;
        let name = AppName::parse("name", name)?;
        let txn = self.db.begin().await?;
        let model = store::apps::insert_app(&txn, name.as_str())
            .await
            .map_err(|error| {
                store::taken_or(error, || format!("app '{}' already exists", name.as_str()))
            })?;
        AuditEntry::new(
            "app.create",
            "app",
            model.id,
            &model.name,
            format!("created app {}", model.name),
        )
        .about_known_app(model.id, &model.name)
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.hub.read_model.changed(&[Key::App(model.id)]).await;
        Ok(app_view(model))
    }

    /// The live apps among `references` (ids or names), in their order, each once; those
    /// that do not exist are left out. At most [`MOST_APPS_FILTERED`] references.
    pub async fn filter(&self, field: &str, references: &[String]) -> Result<Vec<AppView>> {
        if references.len() > MOST_APPS_FILTERED {
            return Err(Error::invalid(
                field,
                format!(
                    "holds {} apps; at most {MOST_APPS_FILTERED} may be asked for at once",
                    references.len()
                ),
            ));
        }
        let named: Vec<(String, &str)> = references
            .iter()
            .map(|reference| (field.to_owned(), reference.as_str()))
            .collect();
        let mut seen = HashSet::new();
        Ok(lookup::find_apps(&self.db, &named)
            .await?
            .into_iter()
            .filter_map(|found| found.ok().flatten())
            .filter(|app| seen.insert(app.id))
            .map(app_view)
            .collect())
    }

    pub async fn get(&self, app: &str) -> Result<AppView> {
        let remembered = self
            .hub
            .read_model
            .read(|catalog| Some(catalog.app(app)?.app.clone()));
        if let Some(view) = remembered.await {
            return Ok(view);
        }
        Ok(app_view(find_app(&self.db, "app", app).await?))
    }

    /// Live apps, sorted by name.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<AppView>> {
        let by_name = |view: &AppView| view.name.clone();
        if let Some(all) = self
            .hub
            .read_model
            .read(|catalog| Some(catalog.apps()))
            .await
        {
            return Ok(page.page_of_sorted(all, by_name));
        }
        let rows =
            store::apps::live_apps_by_name(&self.db, page.after(), page.fetch_limit()).await?;
        Ok(page.finish(rows.into_iter().map(app_view).collect(), by_name))
    }

    /// Deletes an app: it leaves its pipeline, its config vars are erased, and its
    /// unfinished promotion targets are canceled. The row and its releases are kept, marked
    /// deleted, so that past promotions stay readable; the name becomes free again.
    ///
    /// Marking the row deleted comes first and takes its lock, so writes racing the delete
    /// (a coupling, config vars, a release) either commit before it and are removed with
    /// the app, or wait and then find no app.
    pub async fn delete(&self, app: &str, caller: &Caller) -> Result<AppView> {
        authorize(caller, Role::Admin, "deleting an app (and its coupling)")?;
        let found = find_app(&self.db, "app", app).await?;
        let mut tx = Transaction::begin(&self.db, &self.hub).await?;
        if !store::mark_deleted::<app::Entity>(tx.connection(), found.id).await? {
            return Err(Error::not_found("app", app));
        }
        AuditEntry::new(
            "app.delete",
            "app",
            found.id,
            &found.name,
            format!("deleted app {}", found.name),
        )
        .about_app(tx.connection(), found.id, &found.name)
        .await?
        .record_in(&mut tx, &Actor::of(caller))
        .await?;
        store::couplings::delete_couplings_of_app(tx.connection(), found.id).await?;
        store::config_vars::remove_config_vars_of(tx.connection(), found.id).await?;
        lifecycle::cancel_targets_of_deleted_app(&mut tx, found.id, &caller.name).await?;
        lifecycle::cancel_rollbacks_of_deleted_app(&mut tx, found.id).await?;
        let canceled_targets = tx.wrote_events();
        tx.commit().await?;
        self.hub.read_model.changed(&[Key::App(found.id)]).await;
        if canceled_targets {
            // Targets queued behind the canceled ones may run now.
            self.hub.signal_work();
        }
        Ok(app_view(found))
    }

    /// The app's config vars. Values can be secrets, so only a caller who may write sees
    /// them; a reader gets the keys with every value withheld (`None`).
    pub async fn config_vars(&self, app: &str, caller: &Caller) -> Result<VisibleConfigVars> {
        let found = find_app(&self.db, "app", app).await?;
        let vars = store::config_vars::config_vars_of(&self.db, found.id).await?;
        Ok(visible_to(caller, vars))
    }

    /// Applies all changes together, or none when one of them is invalid.
    pub async fn patch_config_vars(
        &self,
        app: &str,
        changes: Vec<ConfigVarChange>,
        caller: &Caller,
    ) -> Result<ConfigVars> {
        authorize(caller, Role::Write, "changing config vars")?;
        let mut seen = HashSet::new();
        for change in &changes {
            check_config_key("config_vars", &change.key)?;
            if let Some(value) = &change.value {
                check_config_value(&format!("config_vars.{}", change.key), value)?;
            }
            if !seen.insert(change.key.as_str()) {
                return Err(Error::invalid(
                    "config_vars",
                    format!("'{}' is changed twice", change.key),
                ));
            }
        }
        let found = find_app(&self.db, "app", app).await?;
        let txn = self.db.begin().await?;
        // Held until commit: a delete of the app waits, then erases these vars with it.
        store::lock_live::<app::Entity>(&txn, found.id)
            .await?
            .ok_or_else(|| Error::not_found("app", app))?;
        let before = store::config_vars::config_vars_of(&txn, found.id).await?;
        for change in changes {
            match change.value {
                Some(value) => {
                    store::config_vars::set_config_var(&txn, found.id, change.key, value).await?
                }
                None => store::config_vars::remove_config_var(&txn, found.id, change.key).await?,
            }
        }
        let result = store::config_vars::config_vars_of(&txn, found.id).await?;
        let keys = ConfigKeyChanges::between(&before, &result);
        if !keys.is_empty() {
            AuditEntry::new(
                "config_vars.update",
                "app",
                found.id,
                &found.name,
                format!("changed config vars of {}: {}", found.name, keys.describe()),
            )
            .about_app(&txn, found.id, &found.name)
            .await?
            .with("added", &keys.added)
            .with("changed", &keys.changed)
            .with("removed", &keys.removed)
            .record(&txn, &Actor::of(caller))
            .await?;
        }
        txn.commit().await?;
        if !keys.is_empty() {
            self.hub.read_model.pipeline_events_committed();
        }
        Ok(result)
    }
}

/// Config vars as `caller` may see them: values can be secrets, so only a caller who may
/// write sees them; a reader gets the keys with every value withheld (`None`).
pub(super) fn visible_to(caller: &Caller, vars: ConfigVars) -> VisibleConfigVars {
    let withhold = !caller.has_role(Role::Write);
    vars.into_iter()
        .map(|(key, value)| (key, (!withhold).then_some(value)))
        .collect()
}
