//! Each app's distinct status contexts, kept by the database as statuses are written, so
//! that reading them costs the number of contexts, not the number of statuses.
//!
//! `app_status_contexts` counts, per app and `(context, name)` pair, the statuses on the
//! app's releases that carry the pair. Triggers on `release_statuses` keep the counts in
//! the writing transaction: an insert counts its pair, a change of name moves the count
//! from the old pair to the new, a delete uncounts it. A pair whose count reaches zero
//! stays as a row with `statuses = 0`, and readers skip it.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AppStatusContexts {
    Table,
    AppId,
    Context,
    Name,
    Statuses,
}

/// PostgreSQL: one function adds to a pair's count. A change of name touches two pairs,
/// always in the pairs' order, so that two changes in opposite directions cannot deadlock.
const POSTGRES_TRIGGERS: &str = r#"
CREATE FUNCTION count_status_context(owner uuid, counted_context text, counted_name text, delta bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO app_status_contexts AS counted (app_id, context, name, statuses)
    VALUES (owner, counted_context, counted_name, delta)
    ON CONFLICT (app_id, context, name) DO UPDATE SET statuses = counted.statuses + delta
$$;

CREATE FUNCTION count_release_status_contexts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT app_id INTO owner FROM releases WHERE id = NEW.release_id;
        PERFORM count_status_context(owner, NEW.context, NEW.name, 1);
    ELSIF TG_OP = 'DELETE' THEN
        SELECT app_id INTO owner FROM releases WHERE id = OLD.release_id;
        PERFORM count_status_context(owner, OLD.context, OLD.name, -1);
    ELSIF (OLD.context, OLD.name) IS DISTINCT FROM (NEW.context, NEW.name) THEN
        SELECT app_id INTO owner FROM releases WHERE id = NEW.release_id;
        IF (OLD.context, OLD.name) < (NEW.context, NEW.name) THEN
            PERFORM count_status_context(owner, OLD.context, OLD.name, -1);
            PERFORM count_status_context(owner, NEW.context, NEW.name, 1);
        ELSE
            PERFORM count_status_context(owner, NEW.context, NEW.name, 1);
            PERFORM count_status_context(owner, OLD.context, OLD.name, -1);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER release_statuses_count_contexts
AFTER INSERT OR UPDATE OF context, name OR DELETE ON release_statuses
FOR EACH ROW EXECUTE FUNCTION count_release_status_contexts();
"#;

/// SQLite: writers are serialized, so plain statements in each trigger suffice.
const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER release_statuses_count_inserted AFTER INSERT ON release_statuses BEGIN \
     INSERT INTO app_status_contexts (app_id, context, name, statuses) \
     SELECT app_id, NEW.context, NEW.name, 1 FROM releases WHERE id = NEW.release_id \
     ON CONFLICT (app_id, context, name) DO UPDATE SET statuses = statuses + 1; END",
    "CREATE TRIGGER release_statuses_count_renamed AFTER UPDATE OF context, name \
     ON release_statuses WHEN OLD.context <> NEW.context OR OLD.name <> NEW.name BEGIN \
     INSERT INTO app_status_contexts (app_id, context, name, statuses) \
     SELECT app_id, NEW.context, NEW.name, 1 FROM releases WHERE id = NEW.release_id \
     ON CONFLICT (app_id, context, name) DO UPDATE SET statuses = statuses + 1; \
     UPDATE app_status_contexts SET statuses = statuses - 1 \
     WHERE app_id = (SELECT app_id FROM releases WHERE id = OLD.release_id) \
     AND context = OLD.context AND name = OLD.name; END",
    "CREATE TRIGGER release_statuses_count_deleted AFTER DELETE ON release_statuses BEGIN \
     UPDATE app_status_contexts SET statuses = statuses - 1 \
     WHERE app_id = (SELECT app_id FROM releases WHERE id = OLD.release_id) \
     AND context = OLD.context AND name = OLD.name; END",
];

/// The counts of the statuses already stored.
const BACKFILL: &str = "INSERT INTO app_status_contexts (app_id, context, name, statuses) \
     SELECT r.app_id, s.context, s.name, COUNT(*) FROM release_statuses s \
     JOIN releases r ON r.id = s.release_id GROUP BY r.app_id, s.context, s.name";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AppStatusContexts::Table)
                    .col(ColumnDef::new(AppStatusContexts::AppId).uuid().not_null())
                    .col(ColumnDef::new(AppStatusContexts::Context).text().not_null())
                    .col(ColumnDef::new(AppStatusContexts::Name).text().not_null())
                    .col(
                        ColumnDef::new(AppStatusContexts::Statuses)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AppStatusContexts::AppId)
                            .col(AppStatusContexts::Context)
                            .col(AppStatusContexts::Name),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_TRIGGERS).await?;
            }
            _ => {
                for trigger in SQLITE_TRIGGERS {
                    db.execute_unprepared(trigger).await?;
                }
            }
        }
        db.execute_unprepared(BACKFILL).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER release_statuses_count_contexts ON release_statuses; \
                     DROP FUNCTION count_release_status_contexts(); \
                     DROP FUNCTION count_status_context(uuid, text, text, bigint);",
                )
                .await?;
            }
            _ => {
                for name in ["inserted", "renamed", "deleted"] {
                    db.execute_unprepared(&format!("DROP TRIGGER release_statuses_count_{name}"))
                        .await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(AppStatusContexts::Table).to_owned())
            .await
    }
}
