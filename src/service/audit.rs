//! Reading the audit log: newest first, paged, by any combination of filters. Entries are
//! read from the database, so one written by any process shows at once.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::paging::{compound_key, Page, PageRequest};
use crate::{
    audit::AuditEventView,
    domain::{check_storable_time, quoted},
    error::{Error, Result},
    store::{
        self,
        audit::{AuditFilter, AuditPosition, Subject},
        Reference,
    },
};

/// The longest actor name or action a filter takes.
const MAX_FILTER_CHARS: usize = 200;

/// The filters of a list request, as given; `None` or empty means no filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub pipeline: Option<String>,
    pub app: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct AuditLog {
    db: DatabaseConnection,
}

impl AuditLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The entries matching `query`, newest first.
    pub async fn list(
        &self,
        query: AuditQuery,
        page: &PageRequest,
    ) -> Result<Page<AuditEventView>> {
        let filter = AuditFilter {
            pipeline: match given(query.pipeline) {
                Some(pipeline) => Some(self.pipeline_subject(&pipeline).await?),
                None => None,
            },
            app: match given(query.app) {
                Some(app) => Some(self.app_subject(&app).await?),
                None => None,
            },
            actor: given(query.actor)
                .map(|actor| bounded("actor", actor))
                .transpose()?,
            action: given(query.action).map(action_filter).transpose()?,
            since: query
                .since
                .map(|since| check_storable_time("since", since).map(|()| since))
                .transpose()?,
        };
        let after = page.after().map(position_of_key).transpose()?;
        let limit = page.fetch_limit().unwrap_or(u64::MAX);
        let rows = store::audit::audit_events(&self.db, &filter, after, limit).await?;
        let views = rows.into_iter().map(AuditEventView::from).collect();
        Ok(page.finish(views, |view: &AuditEventView| key_of(view.at, view.id)))
    }

    /// A pipeline named by id, or by name: the live pipeline of that name, or else the
    /// name as entries recorded it (a deleted pipeline's).
    async fn pipeline_subject(&self, pipeline: &str) -> Result<Subject> {
        let reference = Reference::parse(pipeline);
        if let Reference::Id(id) = reference {
            return Ok(Subject::Id(id));
        }
        bounded("pipeline", pipeline.to_owned())?;
        let live = store::pipelines::live_pipeline(&self.db, &reference).await?;
        Ok(match live {
            Some(found) => Subject::Id(found.id),
            None => Subject::Name(pipeline.to_owned()),
        })
    }

    /// An app named by id, or by name, like [`AuditLog::pipeline_subject`].
    async fn app_subject(&self, app: &str) -> Result<Subject> {
        if let Ok(id) = Uuid::parse_str(app) {
            return Ok(Subject::Id(id));
        }
        bounded("app", app.to_owned())?;
        let live = store::apps::live_app_by_name(&self.db, app).await?;
        Ok(match live {
            Some(found) => Subject::Id(found.id),
            None => Subject::Name(app.to_owned()),
        })
    }
}

/// A filter's value, trimmed; `None` when absent or empty.
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A name or actor to filter by: one line of at most 200 characters. Nothing longer or
/// with control characters was ever recorded.
fn bounded(field: &str, value: String) -> Result<String> {
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_FILTER_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{} holds a control character", quoted(&value)),
        ));
    }
    Ok(value)
}

/// An action (`promotion.create`), or a kind (`promotion`) standing for all its actions.
fn action_filter(action: String) -> Result<String> {
    let well_formed = {
        let mut parts = action.split('.');
        let word = |part: Option<&str>| {
            part.is_some_and(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
        };
        let kind = word(parts.next());
        let verb = parts.next();
        kind && (verb.is_none() || word(verb)) && parts.next().is_none()
    };
    if !well_formed {
        return Err(Error::invalid(
            "action",
            format!(
                "{} is not an action such as promotion.create, nor a kind such as promotion",
                quoted(&action)
            ),
        ));
    }
    Ok(if action.contains('.') {
        action
    } else {
        format!("{action}.")
    })
}

fn key_of(at: DateTime<Utc>, id: Uuid) -> String {
    compound_key(&[
        &at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &id.to_string(),
    ])
}

fn position_of_key(key: &str) -> Result<AuditPosition> {
    let invalid = || Error::invalid("page_token", "is not a token this server issued");
    let (at, id) = key.split_once('\u{1}').ok_or_else(invalid)?;
    Ok(AuditPosition {
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        id: Uuid::parse_str(id).map_err(|_| invalid())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_kinds_are_told_apart() {
        assert_eq!(
            action_filter("promotion.create".into()).unwrap(),
            "promotion.create"
        );
        assert_eq!(action_filter("config_vars".into()).unwrap(), "config_vars.");
        for bad in [
            "",
            "Promotion",
            "promotion.",
            ".create",
            "a.b.c",
            "promotion create",
        ] {
            let error = action_filter(bad.into()).unwrap_err();
            assert!(error.to_string().contains("action"), "{bad}: {error}");
        }
    }

    #[test]
    fn positions_survive_their_keys() {
        let at = store::now();
        let id = Uuid::new_v4();
        assert_eq!(
            position_of_key(&key_of(at, id)).unwrap(),
            AuditPosition { at, id }
        );
        assert!(position_of_key("nonsense").is_err());
    }
}
