//! Releases as Heroku clients read them: by version, with `current`,
//! `eligible_for_rollback` and `user`, and their config vars as they were.

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::app_with_releases;
use crate::helpers::{spawn_app, with_token};

#[tokio::test]
async fn every_release_path_takes_an_id_or_a_version() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 3).await;
    let (_, first) = app
        .call(Method::GET, "/apps/shop-dev/releases/1", None, None)
        .await;
    let id = first["id"].as_str().unwrap().to_owned();
    for reference in ["1", "v1", id.as_str()] {
        for suffix in ["", "/statuses", "/config-vars"] {
            let path = format!("/apps/shop-dev/releases/{reference}{suffix}");
            let (status, body) = app.call(Method::GET, &path, None, None).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    for (reference, expected) in [("9", 404), ("v9", 404), ("x1", 422), ("v", 422), ("0", 422)] {
        for suffix in ["", "/statuses", "/config-vars"] {
            let path = format!("/apps/shop-dev/releases/{reference}{suffix}");
            let (status, body) = app.call(Method::GET, &path, None, None).await;
            assert_eq!(status, expected, "{path}: {body}");
        }
    }
    let grpc = app
        .releases
        .clone()
        .get_release(pipelines::proto::GetReleaseRequest {
            app: "shop-dev".into(),
            release_id: "v2".into(),
        })
        .await
        .expect("a release by version")
        .into_inner();
    assert_eq!(grpc.version, 2);
    // In protected mode the caller is `local`, over both transports.
    let account =
        pipelines::proto::account_service_client::AccountServiceClient::new(app.channel.clone())
            .get_account(pipelines::proto::GetAccountRequest {})
            .await
            .unwrap()
            .into_inner();
    assert_eq!(
        (
            account.id.as_str(),
            account.email.as_str(),
            account.name.as_str()
        ),
        ("", "local", "local")
    );
    let (_, account) = app.call(Method::GET, "/account", None, None).await;
    assert_eq!(
        (&account["id"], &account["email"], &account["name"]),
        (&json!(null), &json!("local"), &json!("local"))
    );
}

#[tokio::test]
async fn a_release_says_whether_it_is_current_eligible_and_who_made_it() {
    let app = spawn_app().await;
    let token = {
        let db = pipelines::store::connect(&app.database.url).await.unwrap();
        let (_, secret) = pipelines::auth::Tokens::new(db)
            .create_with(
                "ci-bot",
                "write",
                pipelines::auth::TokenOptions {
                    email: Some("ci@example.com".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("a token with an email");
        secret
    };
    let (_, account) = app.call(Method::GET, "/users/~", None, Some(&token)).await;
    assert_eq!(account["email"], "ci@example.com");
    assert_eq!(account["name"], "ci-bot");
    let token_id = account["id"].as_str().expect("the token's id").to_owned();
    let (status, _) = app
        .call(
            Method::POST,
            "/apps",
            Some(json!({"name": "shop-dev"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201);
    for image in ["img:1", "img:2"] {
        app.call(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"image": image})),
            Some(&token),
        )
        .await;
    }
    let (_, releases) = app
        .call(Method::GET, "/apps/shop-dev/releases", None, Some(&token))
        .await;
    assert_eq!(releases[0]["current"], false);
    assert_eq!(releases[1]["current"], true);
    for release in releases.as_array().unwrap() {
        assert_eq!(release["eligible_for_rollback"], true);
        assert_eq!(
            release["user"],
            json!({"id": token_id, "email": "ci@example.com"})
        );
    }
    // A rollback is pending until deployed: not current, not eligible yet.
    let (status, rollback) = app
        .call(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"release": "v1"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{rollback}");
    assert_eq!(rollback["user"]["email"], "ci@example.com");
    let grpc = app
        .releases
        .clone()
        .get_release(with_token(
            pipelines::proto::GetReleaseRequest {
                app: "shop-dev".into(),
                release_id: "2".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(grpc.eligible_for_rollback);
    let user = grpc.user.expect("a user");
    assert_eq!(
        (user.id.as_str(), user.email.as_str()),
        (token_id.as_str(), "ci@example.com")
    );
    let account =
        pipelines::proto::account_service_client::AccountServiceClient::new(app.channel.clone())
            .get_account(with_token(pipelines::proto::GetAccountRequest {}, &token))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(
        (
            account.id.as_str(),
            account.email.as_str(),
            account.name.as_str(),
            account.role.as_str()
        ),
        (token_id.as_str(), "ci@example.com", "ci-bot", "write")
    );
}

#[tokio::test]
async fn a_release_keeps_its_config_vars_as_they_were() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 0).await;
    let patch = |body: serde_json::Value| {
        let app = &app;
        async move {
            let (status, answer) = app
                .call(
                    Method::PATCH,
                    "/apps/shop-dev/config-vars",
                    Some(body),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    let release = |image: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/apps/shop-dev/releases",
                Some(json!({"image": image})),
                None,
            )
            .await;
        }
    };
    release("img:1").await;
    patch(json!({"A": "1", "B": "2"})).await;
    release("img:2").await;
    patch(json!({"A": null, "B": "3", "C": "4"})).await;
    release("img:3").await;
    // Many releases without config changes.
    for _ in 0..20 {
        release("img:same").await;
    }
    for (version, expected) in [
        (1, json!({})),
        (2, json!({"A": "1", "B": "2"})),
        (3, json!({"B": "3", "C": "4"})),
        (23, json!({"B": "3", "C": "4"})),
    ] {
        let (status, vars) = app
            .call(
                Method::GET,
                &format!("/apps/shop-dev/releases/v{version}/config-vars"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "v{version}: {vars}");
        assert_eq!(vars, expected, "v{version}");
    }
    // Space grows with config changes, not with releases.
    let db = pipelines::store::connect(&app.database.url).await.unwrap();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM config_var_changes",
        ))
        .await
        .unwrap()
        .unwrap();
    let changes: i64 = row.try_get_by_index(0).unwrap();
    assert_eq!(changes, 5, "A, B; then A removed, B changed, C added");

    // A reader sees the keys, never the values, as for the current config vars.
    let reader = app.create_token("reader", "read").await;
    let (status, vars) = app
        .call(
            Method::GET,
            "/apps/shop-dev/releases/2/config-vars",
            None,
            Some(&reader),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(vars, json!({"A": null, "B": null}));
    let grpc = app
        .releases
        .clone()
        .get_release_config_vars(with_token(
            pipelines::proto::GetReleaseConfigVarsRequest {
                app: "shop-dev".into(),
                release: "v2".into(),
            },
            &reader,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(grpc.values_withheld);
    assert_eq!(grpc.vars.len(), 2);
}

#[tokio::test]
async fn promoted_releases_are_by_the_promotions_creator_and_the_engines_by_system() {
    let app = spawn_app().await;
    let token = app.create_token("release-bot", "admin").await;
    let call = |method: Method, path: String, body: Option<serde_json::Value>| {
        let (app, token) = (&app, token.clone());
        async move { app.call(method, &path, body, Some(&token)).await }
    };
    call(
        Method::POST,
        "/pipelines".into(),
        Some(json!({"name": "shop"})),
    )
    .await;
    for (name, stage, policy) in [
        ("shop-dev", "development", json!({})),
        ("shop-stg", "staging", json!({})),
        ("shop-prod", "production", json!({"auto_promote": true})),
    ] {
        call(Method::POST, "/apps".into(), Some(json!({"name": name}))).await;
        let (status, body) = call(
            Method::POST,
            "/pipeline-couplings".into(),
            Some(json!({"app": name, "pipeline": "shop", "stage": stage, "promotion_policy": policy})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    call(
        Method::POST,
        "/apps/shop-dev/releases".into(),
        Some(json!({"image": "img:1"})),
    )
    .await;
    let (status, promotion) = call(
        Method::POST,
        "/pipeline-promotions".into(),
        Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
    )
    .await;
    assert_eq!(status, 201, "{promotion}");
    // Staging gets the release from the promotion; production from the auto-promotion
    // that staging's new release triggers.
    let newest = |name: &'static str| {
        let call = &call;
        async move {
            let (_, releases) = call(Method::GET, format!("/apps/{name}/releases"), None).await;
            releases
                .as_array()
                .and_then(|all| all.last().cloned())
                .filter(|release| release["status"] == "succeeded")
        }
    };
    let mut prod = None;
    for _ in 0..200 {
        prod = newest("shop-prod").await;
        if prod.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let staging = newest("shop-stg").await.expect("staging's release");
    let (_, account) = call(Method::GET, "/account".into(), None).await;
    assert_eq!(
        staging["user"],
        json!({"id": account["id"], "email": "release-bot"})
    );
    let prod = prod.expect("the auto-promotion delivered to production");
    assert_eq!(prod["user"], json!({"id": null, "email": "system"}));
}

/// A database from before release history was kept: its config vars become the first
/// changes, its releases keep no config and no author, and releases made afterwards have
/// both.
#[tokio::test]
async fn releases_made_before_the_history_say_so() {
    use migration::{Migrator, MigratorTrait};
    let database = crate::helpers::fresh_database().await;
    let db = pipelines::store::connect(&database.url).await.unwrap();
    // Every migration before the one that keeps release history.
    let before_history = Migrator::migrations().len() as u32 - 1;
    Migrator::up(&db, Some(before_history)).await.unwrap();
    let app_id = uuid::Uuid::new_v4();
    let now = pipelines::store::now();
    use sea_orm::{ActiveModelTrait, Set};
    pipelines::store::entities::app::ActiveModel {
        id: Set(app_id),
        name: Set("shop-dev".into()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    pipelines::store::config_vars::set_config_var(&db, app_id, "OLD".into(), "1".into())
        .await
        .unwrap();
    db.execute(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "INSERT INTO releases (id, app_id, version, image, description, status, \
             created_at, updated_at) VALUES ({})",
            pipelines::store::placeholders(db.get_database_backend(), 1, 8)
        ),
        [
            uuid::Uuid::new_v4().into(),
            app_id.into(),
            1i64.into(),
            "img:1".into(),
            "".into(),
            "succeeded".into(),
            now.into(),
            now.into(),
        ],
    ))
    .await
    .unwrap();
    db.close().await.ok();

    let app =
        crate::helpers::spawn_app_with(crate::helpers::settings_for(&database.url), database).await;
    let (status, body) = app
        .call(
            Method::GET,
            "/apps/shop-dev/releases/1/config-vars",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("before config history was kept"),
        "{body}"
    );
    let (_, old) = app
        .call(Method::GET, "/apps/shop-dev/releases/1", None, None)
        .await;
    assert_eq!(old["user"], json!({"id": null, "email": "unknown"}));
    app.call(
        Method::POST,
        "/apps/shop-dev/releases",
        Some(json!({"image": "img:2"})),
        None,
    )
    .await;
    let (status, vars) = app
        .call(
            Method::GET,
            "/apps/shop-dev/releases/2/config-vars",
            None,
            None,
        )
        .await;
    assert_eq!((status, vars), (200, json!({"OLD": "1"})));
}
