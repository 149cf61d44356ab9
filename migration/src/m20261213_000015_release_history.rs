//! Who made each release, and each release's config vars as they were when it was made.
//!
//! - `releases.created_by_id` and `created_by_email`, and the same on `promotions`: the
//!   token that made it, as `GET /account` answers it (`created_by_id` is null in protected
//!   mode and for the engine's own). Rows made before this migration keep nulls.
//! - `config_var_changes` records every change of a config var, in the writing
//!   transaction, by triggers on `config_vars`: a set records the new value, a removal a
//!   null. It grows with config changes, not with releases.
//! - `releases.config_change_id` is the app's newest change when the release was inserted,
//!   set by a trigger on every insert (0 when the app had none). A release's config vars
//!   are the changes up to it. Releases made before this migration keep a null: their
//!   config was not recorded.
//!
//! Changes of one app are ordered by the app's row lock, which every config write holds,
//! so a release sees exactly the changes committed before it.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Releases {
    Table,
    CreatedById,
    CreatedByEmail,
    ConfigChangeId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Promotions {
    Table,
    CreatedById,
    CreatedByEmail,
}

#[derive(DeriveIden)]
enum ConfigVarChanges {
    Table,
    Id,
    AppId,
    Key,
    Value,
}

const POSTGRES_TRIGGERS: &str = r#"
CREATE FUNCTION record_config_var_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO config_var_changes (app_id, key, value) VALUES (OLD.app_id, OLD.key, NULL);
    ELSIF TG_OP = 'INSERT' OR OLD.value IS DISTINCT FROM NEW.value THEN
        INSERT INTO config_var_changes (app_id, key, value) VALUES (NEW.app_id, NEW.key, NEW.value);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER config_vars_record_changes
AFTER INSERT OR UPDATE OR DELETE ON config_vars
FOR EACH ROW EXECUTE FUNCTION record_config_var_change();

CREATE FUNCTION mark_release_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.config_change_id := COALESCE(
        (SELECT MAX(id) FROM config_var_changes WHERE app_id = NEW.app_id), 0);
    RETURN NEW;
END
$$;

CREATE TRIGGER releases_mark_config
BEFORE INSERT ON releases
FOR EACH ROW EXECUTE FUNCTION mark_release_config();
"#;

const SQLITE_TRIGGERS: [&str; 4] = [
    "CREATE TRIGGER config_vars_record_inserted AFTER INSERT ON config_vars BEGIN \
     INSERT INTO config_var_changes (app_id, key, value) VALUES (NEW.app_id, NEW.key, NEW.value); \
     END",
    "CREATE TRIGGER config_vars_record_updated AFTER UPDATE ON config_vars \
     WHEN OLD.value IS NOT NEW.value BEGIN \
     INSERT INTO config_var_changes (app_id, key, value) VALUES (NEW.app_id, NEW.key, NEW.value); \
     END",
    "CREATE TRIGGER config_vars_record_deleted AFTER DELETE ON config_vars BEGIN \
     INSERT INTO config_var_changes (app_id, key, value) VALUES (OLD.app_id, OLD.key, NULL); \
     END",
    "CREATE TRIGGER releases_mark_config AFTER INSERT ON releases BEGIN \
     UPDATE releases SET config_change_id = COALESCE( \
     (SELECT MAX(id) FROM config_var_changes WHERE app_id = NEW.app_id), 0) \
     WHERE id = NEW.id; END",
];

/// The config vars already stored, as the first change of each.
const BACKFILL: &str = "INSERT INTO config_var_changes (app_id, key, value) \
     SELECT app_id, key, value FROM config_vars ORDER BY app_id, key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let added = [
            (
                Releases::Table.into_iden(),
                ColumnDef::new(Releases::CreatedById).uuid().to_owned(),
            ),
            (
                Releases::Table.into_iden(),
                ColumnDef::new(Releases::CreatedByEmail).text().to_owned(),
            ),
            (
                Releases::Table.into_iden(),
                ColumnDef::new(Releases::ConfigChangeId)
                    .big_integer()
                    .to_owned(),
            ),
            (
                Promotions::Table.into_iden(),
                ColumnDef::new(Promotions::CreatedById).uuid().to_owned(),
            ),
            (
                Promotions::Table.into_iden(),
                ColumnDef::new(Promotions::CreatedByEmail).text().to_owned(),
            ),
        ];
        for (table, mut column) in added {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ConfigVarChanges::Table)
                    .col(
                        ColumnDef::new(ConfigVarChanges::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ConfigVarChanges::AppId).uuid().not_null())
                    .col(ColumnDef::new(ConfigVarChanges::Key).text().not_null())
                    .col(ColumnDef::new(ConfigVarChanges::Value).text())
                    .to_owned(),
            )
            .await?;
        // A release's config: per key, the newest change up to the release.
        manager
            .create_index(
                Index::create()
                    .name("config_var_changes_by_key")
                    .table(ConfigVarChanges::Table)
                    .col(ConfigVarChanges::AppId)
                    .col(ConfigVarChanges::Key)
                    .col(ConfigVarChanges::Id)
                    .to_owned(),
            )
            .await?;
        // A new release: the app's newest change.
        manager
            .create_index(
                Index::create()
                    .name("config_var_changes_by_app")
                    .table(ConfigVarChanges::Table)
                    .col(ConfigVarChanges::AppId)
                    .col(ConfigVarChanges::Id)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(BACKFILL).await?;
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER releases_mark_config ON releases; \
                     DROP FUNCTION mark_release_config(); \
                     DROP TRIGGER config_vars_record_changes ON config_vars; \
                     DROP FUNCTION record_config_var_change();",
                )
                .await?;
            }
            _ => {
                for name in [
                    "config_vars_record_inserted",
                    "config_vars_record_updated",
                    "config_vars_record_deleted",
                    "releases_mark_config",
                ] {
                    db.execute_unprepared(&format!("DROP TRIGGER {name}"))
                        .await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(ConfigVarChanges::Table).to_owned())
            .await?;
        for column in [
            Releases::CreatedById,
            Releases::CreatedByEmail,
            Releases::ConfigChangeId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Releases::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Promotions::CreatedById, Promotions::CreatedByEmail] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Promotions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
