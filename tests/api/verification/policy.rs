//! A coupling's verification as a policy: its defaults, each bad field refused by its path
//! over REST and gRPC, the host allowlist, and the roles that tighten or weaken it.

use super::*;

#[tokio::test]
async fn a_coupling_shows_its_verification_with_defaults_and_refuses_each_bad_field_by_its_path() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &t.ops,
    )
    .await;
    for name in ["shop-rev", "shop-stg", "shop-x"] {
        call_ok(&app, Method::POST, "/apps", json!({"name": name}), &t.ops).await;
    }
    let couple = |app_name: &str, stage: &str, verification: Value| json!({"app": app_name, "pipeline": "shop", "stage": stage, "verification": verification});
    let good = json!({"contexts": ["smoke/checkout"],
        "http_checks": [{"name": "health", "url": "http://127.0.0.1:9/healthz"}]});
    let coupling = call_ok(
        &app,
        Method::POST,
        "/pipeline-couplings",
        couple("shop-stg", "staging", good.clone()),
        &t.ci,
    )
    .await;
    assert_eq!(
        coupling["verification"],
        json!({"contexts": ["smoke/checkout"], "timeout_seconds": 600,
            "http_checks": [{"name": "health", "url": "http://127.0.0.1:9/healthz",
                "interval_seconds": 10, "count": 3, "failure_limit": 0}],
            "on_failure": "rollback"})
    );
    let id = coupling["id"].as_str().unwrap().to_owned();

    let refused = |mut bad: Value, edit: &dyn Fn(&mut Value)| {
        edit(&mut bad);
        bad
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            refused(good.clone(), &|v| v["timeout_seconds"] = json!(9)),
            "verification.timeout_seconds",
        ),
        (
            refused(good.clone(), &|v| v["timeout_seconds"] = json!("ten")),
            "verification.timeout_seconds",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["url"] = json!("ftp://127.0.0.1/")
            }),
            "verification.http_checks[0].url",
        ),
        (
            refused(good.clone(), &|v| v["http_checks"][0]["count"] = json!(0)),
            "verification.http_checks[0].count",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["failure_limit"] = json!(3)
            }),
            "verification.http_checks[0].failure_limit",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["interval_seconds"] = json!(0)
            }),
            "verification.http_checks[0].interval_seconds",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["name"] = json!("Bad Name")
            }),
            "verification.http_checks[0].name",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["colour"] = json!("red")
            }),
            "verification.http_checks[0].colour",
        ),
        (
            refused(good.clone(), &|v| v["on_failure"] = json!("retry")),
            "verification.on_failure",
        ),
        (
            refused(good.clone(), &|v| v["contexts"] = json!([1])),
            "verification.contexts[0]",
        ),
        (json!({"contexts": []}), "verification"),
        (json!("yes"), "verification"),
    ];
    for (bad, field) in cases {
        let body = json!({"verification": bad});
        let (status, answer) = app
            .call(
                Method::PATCH,
                &format!("/pipeline-couplings/{id}"),
                Some(body),
                Some(&t.ops),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert_eq!(answer["code"], 3);
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid {field}:")),
            "{field} named in: {message}"
        );
    }

    // A host outside --verification-hosts is refused, naming the setting.
    let outside = json!({"http_checks": [{"name": "health", "url": "http://example.com:8080/"}]});
    let (status, answer) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(couple("shop-x", "staging", outside)),
            Some(&t.ops),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("verification.http_checks[0].url"),
        "{message}"
    );
    assert!(message.contains("--verification-hosts"), "{message}");

    // Nothing is promoted into review.
    let (status, answer) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(couple("shop-rev", "review", good.clone())),
            Some(&t.ops),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid verification:"),
        "{answer}"
    );

    // Nothing changed by the refusals; null removes it (elevated access).
    let unchanged = get(&app, &format!("/pipeline-couplings/{id}"), &t.ci).await;
    assert_eq!(unchanged["verification"], coupling["verification"]);
    let removed = call_ok(
        &app,
        Method::PATCH,
        &format!("/pipeline-couplings/{id}"),
        json!({"verification": null}),
        &t.ops,
    )
    .await;
    assert_eq!(removed["verification"], Value::Null);

    // Over gRPC: the same rule names the same path.
    let mut couplings = app.couplings.clone();
    let refused = couplings
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                stage: None,
                id: id.clone(),
                required_status_checks: None,
                promotion_policy: None,
                verification: Some(pipelines::proto::Verification {
                    contexts: vec!["smoke".into()],
                    timeout_seconds: Some(5),
                    ..Default::default()
                }),
                remove_verification: false,
            },
            &t.ops,
        ))
        .await
        .expect_err("a timeout below 10 s is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("invalid verification.timeout_seconds:"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn tightening_a_verification_needs_write_and_weakening_it_needs_elevated_access() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 300, "rollback"),
        true,
    )
    .await;
    let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
    let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    // Tighter: another context and a shorter timeout.
    let tighter = json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "rollback")});
    call_ok(&app, Method::PATCH, &path, tighter, &t.ci).await;
    for (weaker, what) in [
        (
            json!({"verification": contexts(&["smoke"], 120, "rollback")}),
            "removing verification contexts",
        ),
        (
            json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "keep")}),
            "on_failure to keep",
        ),
        (
            json!({"verification": contexts(&["smoke", "monitor/errors"], 900, "rollback")}),
            "timeout_seconds",
        ),
        (json!({"verification": null}), "removing the verification"),
    ] {
        let (status, answer) = app
            .call(Method::PATCH, &path, Some(weaker.clone()), Some(&t.ci))
            .await;
        assert_eq!(status, 403, "{weaker}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(what),
            "{what}: {answer}"
        );
        call_ok(&app, Method::PATCH, &path, weaker, &t.ops).await;
        // Back to the tight one for the next case.
        let tight =
            json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "rollback")});
        call_ok(&app, Method::PATCH, &path, tight, &t.ops).await;
    }
    // gRPC: removing it from a write token is PERMISSION_DENIED.
    let denied = app
        .couplings
        .clone()
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                stage: None,
                id: coupling["id"].as_str().unwrap().into(),
                required_status_checks: None,
                promotion_policy: None,
                verification: None,
                remove_verification: true,
            },
            &t.ci,
        ))
        .await
        .expect_err("a write token cannot remove a verification");
    assert_eq!(denied.code(), Code::PermissionDenied);
}
