//! `AuditService/ListAuditEvents` over a real gRPC connection.

use pipelines::proto::{
    audit_service_client::AuditServiceClient, ConfigVarChange, CreatePipelineRequest,
    ListAuditEventsRequest, PatchConfigVarsRequest,
};
use prost_types::value::Kind;
use reqwest::Method;
use serde_json::json;
use tonic::Code;

use super::entries;
use crate::{
    helpers::{assert_status, spawn_app, with_token},
    policies::{call_ok, shop, tokens},
};

#[tokio::test]
async fn grpc_lists_filters_and_pages_the_same_entries_as_rest() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/tests"]}}),
        json!({}),
    )
    .await;
    let mut request = with_token(
        CreatePipelineRequest {
            name: "other".into(),
            description: String::new(),
        },
        &tokens.alice,
    );
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-call-1".parse().unwrap());
    app.pipelines
        .clone()
        .create_pipeline(request)
        .await
        .unwrap();
    let patch = PatchConfigVarsRequest {
        app: "shop-dev".into(),
        changes: vec![ConfigVarChange {
            key: "API_KEY".into(),
            value: Some("grpc-secret-value".into()),
        }],
    };
    app.apps
        .clone()
        .patch_config_vars(with_token(patch, &tokens.ci))
        .await
        .unwrap();

    let mut client = AuditServiceClient::new(app.channel.clone());
    let list = |request: ListAuditEventsRequest| {
        let mut client = client.clone();
        let token = tokens.reader.clone();
        async move {
            client
                .list_audit_events(with_token(request, &token))
                .await
                .map(|answer| answer.into_inner())
        }
    };
    let created = list(ListAuditEventsRequest {
        action: "pipeline.create".into(),
        actor: "alice".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(created.audit_events.len(), 1);
    let entry = &created.audit_events[0];
    assert_eq!(entry.request_id, "grpc-call-1");
    assert_eq!(entry.role, "write");
    assert_eq!(entry.pipeline.as_ref().unwrap().name, "other");
    assert_eq!(entry.resource.as_ref().unwrap().kind, "pipeline");

    // The changes of a coupling arrive as a Struct.
    let coupled = list(ListAuditEventsRequest {
        app: "shop-stg".into(),
        action: "coupling.create".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let changes = coupled.audit_events[0].changes.as_ref().unwrap();
    let Some(Kind::StructValue(checks)) = &changes.fields["required_status_checks"].kind else {
        panic!("before and after: {changes:?}");
    };
    let Some(Kind::ListValue(after)) = &checks.fields["after"].kind else {
        panic!("a list of contexts: {checks:?}");
    };
    assert_eq!(
        after.values[0].kind,
        Some(Kind::StringValue("ci/tests".into()))
    );
    assert_eq!(checks.fields["before"].kind, Some(Kind::NullValue(0)));
    assert!(
        !changes.fields.contains_key("verification"),
        "no verification before or after is no change: {changes:?}"
    );

    // Pages of three hold what REST lists, in the same order.
    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list(ListAuditEventsRequest {
            page_size: 3,
            page_token: page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        ids.extend(page.audit_events.iter().map(|entry| entry.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let rest: Vec<String> = entries(&app, "", &tokens.reader)
        .await
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, rest);
    let since = list(ListAuditEventsRequest {
        since: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() + 60,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(since.audit_events.is_empty());

    // No value of a config var, over gRPC either.
    let everything = list(ListAuditEventsRequest {
        page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!format!("{everything:?}").contains("grpc-secret-value"));

    for seconds in [-100_000_000_000, 1_000_000_000_000] {
        assert_status(
            list(ListAuditEventsRequest {
                since: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            &["since", "9999"],
        );
    }
    assert_status(
        list(ListAuditEventsRequest {
            action: "Not An Action".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        &["action"],
    );
    assert_status(
        client
            .list_audit_events(tonic::Request::new(ListAuditEventsRequest::default()))
            .await,
        Code::Unauthenticated,
        &[],
    );
}

#[tokio::test]
async fn protected_mode_is_the_actor_until_a_token_exists() {
    let app = spawn_app().await;
    app.pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let token = app.create_token("ops", "admin").await;
    call_ok(
        &app,
        Method::POST,
        "/apps",
        json!({"name": "shop-dev"}),
        &token,
    )
    .await;
    let all = entries(&app, "", &token).await;
    let who: Vec<(&str, &str, &str)> = all
        .iter()
        .rev()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap(),
                entry["actor"].as_str().unwrap(),
                entry["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            ("pipeline.create", "protected-mode", "admin"),
            ("token.create", "operator", "operator"),
            ("app.create", "ops", "admin"),
        ]
    );
}
