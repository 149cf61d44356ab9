use std::collections::HashMap;

use pipelines::proto::{
    ConfigVarChange, CreateAppRequest, DeleteAppRequest, GetAppCouplingRequest, GetAppRequest,
    GetConfigVarsRequest, ListAppsRequest, PatchConfigVarsRequest, Stage,
};
use tonic::Code;

use crate::helpers::{assert_status, spawn_app};

fn set(key: &str, value: &str) -> ConfigVarChange {
    ConfigVarChange {
        key: key.into(),
        value: Some(value.into()),
    }
}

fn unset(key: &str) -> ConfigVarChange {
    ConfigVarChange {
        key: key.into(),
        value: None,
    }
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn apps_are_created_fetched_and_listed() {
    let app = spawn_app().await;
    let web = app.create_app("shop-web").await;
    app.create_app("shop-api").await;
    assert_eq!(web.name, "shop-web");
    assert!(web.created_at.is_some());
    for reference in [web.id.clone(), "shop-web".to_owned()] {
        let fetched = app
            .apps
            .clone()
            .get_app(GetAppRequest { app: reference })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fetched, web);
    }
    let names: Vec<String> = app
        .apps
        .clone()
        .list_apps(ListAppsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .apps
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["shop-api", "shop-web"]);
}

#[tokio::test]
async fn app_names_follow_their_pattern_and_are_unique() {
    let app = spawn_app().await;
    for bad in ["", "ab", "Shop", "9shop", "shop.web", &"a".repeat(64)] {
        let result = app
            .apps
            .clone()
            .create_app(CreateAppRequest { name: bad.into() })
            .await;
        assert_status(result, Code::InvalidArgument, &["name"]);
    }
    let longest = "a".repeat(63);
    app.create_app(&longest).await;
    app.create_app("shop-web").await;
    let result = app
        .apps
        .clone()
        .create_app(CreateAppRequest {
            name: "shop-web".into(),
        })
        .await;
    assert_status(result, Code::AlreadyExists, &["shop-web"]);
}

#[tokio::test]
async fn unknown_apps_are_not_found() {
    let app = spawn_app().await;
    let result = app
        .apps
        .clone()
        .get_app(GetAppRequest {
            app: "ghost".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["app", "ghost"]);
    let result = app
        .apps
        .clone()
        .get_config_vars(GetConfigVarsRequest {
            app: "ghost".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["ghost"]);
}

#[tokio::test]
async fn deleting_an_app_uncouples_it_and_frees_its_name() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    let dev = app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    let deleted = app
        .apps
        .clone()
        .delete_app(DeleteAppRequest {
            app: "shop-dev".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.id, dev.id);
    assert_status(
        app.apps
            .clone()
            .get_app(GetAppRequest {
                app: dev.id.clone(),
            })
            .await,
        Code::NotFound,
        &["app"],
    );
    let fresh = app.create_app("shop-dev").await;
    assert_ne!(fresh.id, dev.id);
    assert_status(
        app.couplings
            .clone()
            .get_app_coupling(GetAppCouplingRequest {
                app: "shop-dev".into(),
            })
            .await,
        Code::NotFound,
        &["shop-dev"],
    );
}

#[tokio::test]
async fn config_vars_are_set_replaced_and_deleted() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let mut client = app.apps.clone();
    let empty = client
        .get_config_vars(GetConfigVarsRequest {
            app: "shop-dev".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.vars.is_empty());

    let patched = client
        .patch_config_vars(PatchConfigVarsRequest {
            app: "shop-dev".into(),
            changes: vec![set("DATABASE_URL", "postgres://db"), set("_DEBUG", "1")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        patched.vars,
        vars(&[("DATABASE_URL", "postgres://db"), ("_DEBUG", "1")])
    );

    let patched = client
        .patch_config_vars(PatchConfigVarsRequest {
            app: "shop-dev".into(),
            changes: vec![
                set("DATABASE_URL", "postgres://other"),
                unset("_DEBUG"),
                unset("NEVER_SET"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(patched.vars, vars(&[("DATABASE_URL", "postgres://other")]));

    let stored = client
        .get_config_vars(GetConfigVarsRequest {
            app: "shop-dev".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.vars, patched.vars);
}

#[tokio::test]
async fn a_bad_change_rejects_the_whole_patch() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let mut client = app.apps.clone();
    client
        .patch_config_vars(PatchConfigVarsRequest {
            app: "shop-dev".into(),
            changes: vec![set("KEEP", "1")],
        })
        .await
        .unwrap();
    for (changes, fragments) in [
        (
            vec![set("NEW", "x"), set("1BAD", "y")],
            vec!["config_vars", "1BAD"],
        ),
        (
            vec![set("NEW", "x"), set("BAD-KEY", "y")],
            vec!["config_vars", "BAD-KEY"],
        ),
        (vec![set("NEW", "x"), set("", "y")], vec!["config_vars"]),
        (vec![set("NEW", "x"), unset("NEW")], vec!["NEW", "twice"]),
        (
            vec![set("HUGE", &"v".repeat(64 * 1024 + 1))],
            vec!["config_vars.HUGE"],
        ),
    ] {
        let result = client
            .patch_config_vars(PatchConfigVarsRequest {
                app: "shop-dev".into(),
                changes,
            })
            .await;
        assert_status(result, Code::InvalidArgument, &fragments);
    }
    let stored = client
        .get_config_vars(GetConfigVarsRequest {
            app: "shop-dev".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.vars, vars(&[("KEEP", "1")]), "nothing was written");
    let result = client
        .patch_config_vars(PatchConfigVarsRequest {
            app: "ghost".into(),
            changes: vec![set("A", "1")],
        })
        .await;
    assert_status(result, Code::NotFound, &["ghost"]);
}
