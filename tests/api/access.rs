//! Access control over gRPC and REST: tokens, roles, revocation, protected mode, and the
//! refusal to run unprotected on a non-loopback address.

use std::process::Command;

use pipelines::{
    proto::{
        CreateAppRequest, CreatePipelineRequest, DeleteAppRequest, DeleteCouplingRequest,
        DeletePipelineRequest, GetConfigVarsRequest, GetPipelineRequest, ListAppsRequest,
        PatchConfigVarsRequest, RequiredStatusChecks, Stage, UpdateCouplingRequest,
    },
    startup::{Application, StartupError},
};
use reqwest::Method;
use serde_json::json;
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use crate::helpers::{assert_status, fresh_database, settings_for, spawn_app, with_token, TestApp};

/// A server with tokens of every role, a pipeline `shop` and an app `shop-dev` coupled
/// at staging with one required context.
struct Secured {
    app: TestApp,
    read: String,
    write: String,
    admin: String,
}

async fn secured() -> Secured {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Staging, &["ci/unit"])
        .await;
    let read = app.create_token("reader", "read").await;
    let write = app.create_token("writer", "write").await;
    let admin = app.create_token("operator", "admin").await;
    // The server trusts its last "no token exists" for under a second; past it, protected
    // mode is over for callers that present no token too.
    tokio::time::sleep(pipelines::auth::TOKEN_RECHECK).await;
    Secured {
        app,
        read,
        write,
        admin,
    }
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let s = secured().await;
    let mut pipelines = s.app.pipelines.clone();
    let get = || GetPipelineRequest {
        pipeline: "shop".into(),
    };
    assert_status(
        pipelines.get_pipeline(get()).await,
        Code::Unauthenticated,
        &["missing"],
    );
    assert_status(
        pipelines
            .get_pipeline(with_token(get(), "plt_unknown"))
            .await,
        Code::Unauthenticated,
        &["unknown or revoked"],
    );
    let mut malformed = tonic::Request::new(get());
    malformed
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_status(
        pipelines.get_pipeline(malformed).await,
        Code::Unauthenticated,
        &["malformed"],
    );

    for header in [
        None,
        Some("Bearer plt_unknown"),
        Some("Bearer "),
        Some("Basic abc"),
    ] {
        let mut request = s.app.rest(Method::GET, "/pipelines/shop");
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{header:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], 16);
    }
}

#[tokio::test]
async fn rest_accepts_bearer_and_bare_tokens() {
    let s = secured().await;
    for header in [
        format!("Bearer {}", s.read),
        format!("bearer {}", s.read),
        s.read.clone(),
    ] {
        let response = s
            .app
            .rest(Method::GET, "/pipelines/shop")
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn grpc_refuses_a_bare_token_that_rest_accepts() {
    let s = secured().await;
    let mut bare = tonic::Request::new(GetPipelineRequest {
        pipeline: "shop".into(),
    });
    bare.metadata_mut()
        .insert("authorization", s.read.parse().unwrap());
    assert_status(
        s.app.pipelines.clone().get_pipeline(bare).await,
        Code::Unauthenticated,
        &["Bearer <token>"],
    );
    let mut bearer = tonic::Request::new(GetPipelineRequest {
        pipeline: "shop".into(),
    });
    bearer.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", s.read).parse().unwrap(),
    );
    s.app
        .pipelines
        .clone()
        .get_pipeline(bearer)
        .await
        .expect("the same token with its scheme is accepted");
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let s = secured().await;
    HealthClient::new(s.app.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a token");
    let (status, _) = s.app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revocation_takes_effect_within_a_second() {
    let s = secured().await;
    let mut pipelines = s.app.pipelines.clone();
    let get = || GetPipelineRequest {
        pipeline: "shop".into(),
    };
    pipelines
        .get_pipeline(with_token(get(), &s.read))
        .await
        .expect("valid");
    // Revoked by the operator command, a separate process.
    let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "tokens",
            "revoke",
            "reader",
            "--database-url",
            &s.app.database.url,
        ])
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    // The server remembers a verified token for less than a second.
    let revoked_at = std::time::Instant::now();
    let refusal = loop {
        match pipelines.get_pipeline(with_token(get(), &s.read)).await {
            Err(status) => break status,
            Ok(_) => {
                assert!(
                    revoked_at.elapsed() < std::time::Duration::from_secs(1),
                    "a revoked token still worked after {:?}",
                    revoked_at.elapsed()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_status(Err::<(), _>(refusal), Code::Unauthenticated, &["revoked"]);
    let (status, _) = s
        .app
        .call(Method::GET, "/pipelines/shop", None, Some(&s.read))
        .await;
    assert_eq!(status, 401);
    // Other tokens keep working.
    pipelines
        .get_pipeline(with_token(get(), &s.write))
        .await
        .expect("still valid");
}

/// Runs each kind of operation over gRPC with `token` and reports which were allowed.
async fn grpc_outcomes(s: &Secured, token: &str, suffix: &str) -> Vec<(&'static str, Code)> {
    let app = &s.app;
    let code =
        |result: Result<(), tonic::Status>| result.map(|_| Code::Ok).unwrap_or_else(|s| s.code());
    let coupling = app
        .couplings
        .clone()
        .get_app_coupling(with_token(
            pipelines::proto::GetAppCouplingRequest {
                app: "shop-dev".into(),
            },
            &s.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut outcomes = Vec::new();
    outcomes.push((
        "read: list apps",
        code(
            app.apps
                .clone()
                .list_apps(with_token(ListAppsRequest::default(), token))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "write: create pipeline",
        code(
            app.pipelines
                .clone()
                .create_pipeline(with_token(
                    CreatePipelineRequest {
                        name: format!("p-{suffix}"),
                        description: String::new(),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "write: patch config vars",
        code(
            app.apps
                .clone()
                .patch_config_vars(with_token(
                    PatchConfigVarsRequest {
                        app: "shop-dev".into(),
                        changes: vec![pipelines::proto::ConfigVarChange {
                            key: "K".into(),
                            value: Some("v".into()),
                        }],
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "write: add a required context",
        code(
            app.couplings
                .clone()
                .update_coupling(with_token(
                    UpdateCouplingRequest {
                        stage: None,
                        promotion_policy: None,
                        verification: None,
                        remove_verification: false,
                        id: coupling.id.clone(),
                        required_status_checks: Some(RequiredStatusChecks {
                            contexts: vec!["ci/unit".into(), format!("extra-{suffix}")],
                        }),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "admin: remove a required context",
        code(
            app.couplings
                .clone()
                .update_coupling(with_token(
                    UpdateCouplingRequest {
                        stage: None,
                        promotion_policy: None,
                        verification: None,
                        remove_verification: false,
                        id: coupling.id.clone(),
                        required_status_checks: Some(RequiredStatusChecks { contexts: vec![] }),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "admin: delete an app",
        code(
            app.apps
                .clone()
                .delete_app(with_token(
                    DeleteAppRequest {
                        app: "victim".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "admin: delete a coupling",
        code(
            app.couplings
                .clone()
                .delete_coupling(with_token(
                    DeleteCouplingRequest {
                        id: coupling.id.clone(),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes.push((
        "admin: delete a pipeline",
        code(
            app.pipelines
                .clone()
                .delete_pipeline(with_token(
                    DeletePipelineRequest {
                        pipeline: "shop".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ()),
        ),
    ));
    outcomes
}

fn expected(allowed_up_to: usize) -> Vec<Code> {
    (0..8)
        .map(|index| {
            if index < allowed_up_to {
                Code::Ok
            } else {
                Code::PermissionDenied
            }
        })
        .collect()
}

#[tokio::test]
async fn each_role_gets_exactly_its_powers_over_grpc() {
    for (role, allowed) in [("read", 1), ("write", 4), ("admin", 8)] {
        let s = secured().await;
        s.app
            .apps
            .clone()
            .create_app(with_token(
                CreateAppRequest {
                    name: "victim".into(),
                },
                &s.admin,
            ))
            .await
            .unwrap();
        let token = match role {
            "read" => s.read.clone(),
            "write" => s.write.clone(),
            _ => s.admin.clone(),
        };
        let outcomes = grpc_outcomes(&s, &token, role).await;
        let codes: Vec<Code> = outcomes.iter().map(|(_, code)| *code).collect();
        assert_eq!(codes, expected(allowed), "role {role}: {outcomes:?}");
    }
}

#[tokio::test]
async fn each_role_gets_exactly_its_powers_over_rest() {
    for (role, allowed) in [("read", 1), ("write", 4), ("admin", 8)] {
        let s = secured().await;
        let app = &s.app;
        app.call(
            Method::POST,
            "/apps",
            Some(json!({"name": "victim"})),
            Some(&s.admin),
        )
        .await;
        let token = match role {
            "read" => s.read.clone(),
            "write" => s.write.clone(),
            _ => s.admin.clone(),
        };
        let (_, coupling) = app
            .call(
                Method::GET,
                "/apps/shop-dev/pipeline-couplings",
                None,
                Some(&s.admin),
            )
            .await;
        let coupling_path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
        let calls: Vec<(Method, String, Option<serde_json::Value>)> = vec![
            (Method::GET, "/apps".into(), None),
            (
                Method::POST,
                "/pipelines".into(),
                Some(json!({"name": format!("p-{role}")})),
            ),
            (
                Method::PATCH,
                "/apps/shop-dev/config-vars".into(),
                Some(json!({"K": "v"})),
            ),
            (
                Method::PATCH,
                coupling_path.clone(),
                Some(json!({"required_status_checks": {"contexts": ["ci/unit", "more"]}})),
            ),
            (
                Method::PATCH,
                coupling_path.clone(),
                Some(json!({"required_status_checks": {"contexts": []}})),
            ),
            (Method::DELETE, "/apps/victim".into(), None),
            (Method::DELETE, coupling_path.clone(), None),
            (Method::DELETE, "/pipelines/shop".into(), None),
        ];
        let mut statuses = Vec::new();
        for (method, path, body) in calls {
            let (status, answer) = app.call(method.clone(), &path, body, Some(&token)).await;
            if status == 403 {
                assert_eq!(answer["code"], 7, "{answer}");
                assert!(
                    answer["message"].as_str().unwrap().contains("role"),
                    "{answer}"
                );
            }
            statuses.push(status);
        }
        let wanted: Vec<u16> = expected(allowed)
            .into_iter()
            .enumerate()
            .map(|(index, code)| match (code, index) {
                (Code::Ok, 1) => 201,
                (Code::Ok, _) => 200,
                _ => 403,
            })
            .collect();
        assert_eq!(statuses, wanted, "role {role}");
    }
}

#[tokio::test]
async fn config_values_are_withheld_from_readers() {
    let s = secured().await;
    s.app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"DATABASE_URL": "postgres://secret"})),
            Some(&s.write),
        )
        .await;
    let (status, vars) = s
        .app
        .call(
            Method::GET,
            "/apps/shop-dev/config-vars",
            None,
            Some(&s.read),
        )
        .await;
    assert_eq!((status, vars), (200, json!({"DATABASE_URL": null})));
    let (_, vars) = s
        .app
        .call(
            Method::GET,
            "/apps/shop-dev/config-vars",
            None,
            Some(&s.write),
        )
        .await;
    assert_eq!(vars, json!({"DATABASE_URL": "postgres://secret"}));

    let request = || GetConfigVarsRequest {
        app: "shop-dev".into(),
    };
    let hidden = s
        .app
        .apps
        .clone()
        .get_config_vars(with_token(request(), &s.read))
        .await
        .unwrap()
        .into_inner();
    assert!(hidden.values_withheld);
    assert_eq!(
        hidden.vars.get("DATABASE_URL").map(String::as_str),
        Some("")
    );
    let shown = s
        .app
        .apps
        .clone()
        .get_config_vars(with_token(request(), &s.admin))
        .await
        .unwrap()
        .into_inner();
    assert!(!shown.values_withheld);
    assert_eq!(
        shown.vars.get("DATABASE_URL").map(String::as_str),
        Some("postgres://secret")
    );
}

#[tokio::test]
async fn protected_mode_allows_everything_on_loopback_until_a_token_exists() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    let (status, _) = app
        .call(Method::DELETE, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 200, "admin rights without a token");
    app.create_token("first", "read").await;
    // The server rechecks "no token exists" at least every second.
    tokio::time::sleep(pipelines::auth::TOKEN_RECHECK).await;
    let (status, _) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(status, 401, "the first token ends protected mode");
}

#[tokio::test]
async fn a_non_loopback_address_without_tokens_is_refused() {
    let database = fresh_database().await;
    let mut settings = settings_for(&database.url);
    settings.listen = "0.0.0.0:0".parse().unwrap();
    match Application::build(settings.clone()).await {
        Err(error @ StartupError::Unprotected(_)) => {
            let message = error.to_string();
            assert!(message.contains("tokens create"), "{message}");
            assert!(message.contains("--insecure"), "{message}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("an unprotected public server must not start"),
    }
    settings.insecure = true;
    assert!(
        Application::build(settings.clone()).await.is_ok(),
        "--insecure starts it"
    );

    settings.insecure = false;
    let db = pipelines::store::connect(&database.url).await.unwrap();
    pipelines::auth::Tokens::new(db)
        .create("ops", "admin")
        .await
        .unwrap();
    assert!(
        Application::build(settings).await.is_ok(),
        "with a token it starts"
    );
}

#[tokio::test]
async fn the_token_commands_create_list_and_revoke() {
    let database = fresh_database().await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pipelines"))
            .args(args)
            .env("DATABASE_URL", &database.url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let created = run(&["tokens", "create", "--name", "ci-bot", "--role", "write"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(secret.starts_with("plt_") && secret.len() > 60, "{secret}");

    let duplicate = run(&["tokens", "create", "--name", "ci-bot", "--role", "read"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    let bad_role = run(&["tokens", "create", "--name", "x-bot", "--role", "root"]);
    assert!(!bad_role.status.success());

    let listed = run(&["tokens", "list"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("ci-bot") && listing.contains("write") && listing.contains("active"));
    assert!(
        !listing.contains(&secret[4..]),
        "the secret is never listed"
    );

    let revoked = run(&["tokens", "revoke", "ci-bot"]);
    assert!(revoked.status.success());
    let listing = String::from_utf8_lossy(&run(&["tokens", "list"]).stdout).into_owned();
    assert!(listing.contains("revoked"), "{listing}");
    let missing = run(&["tokens", "revoke", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nobody"));

    // Only the hash is stored.
    let db = pipelines::store::connect(&database.url).await.unwrap();
    use sea_orm::EntityTrait;
    let rows = pipelines::store::entities::token::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].secret_hash.contains(&secret[4..]));

    // The audit log has the create and the revoke, as the operator, and neither the secret
    // nor its hash; the refused commands left nothing.
    let filter = pipelines::store::audit::AuditFilter::default();
    let entries = pipelines::store::audit::audit_events(&db, &filter, None, 100)
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.resource_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("token.create", "operator", "ci-bot"),
            ("token.revoke", "operator", "ci-bot")
        ]
    );
    let recorded = format!("{entries:?}");
    assert!(!recorded.contains(&secret[4..]) && !recorded.contains(&rows[0].secret_hash));
}
