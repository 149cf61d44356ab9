//! The kinds of change the stream carries beyond releases and statuses: coupling edits,
//! votes, rollbacks, deletions.

use reqwest::Method;
use serde_json::json;

use super::{names, shop, SseReader};
use crate::helpers::spawn_app;

#[tokio::test]
async fn couplings_votes_rollbacks_and_deletions_reach_the_stream() {
    let app = spawn_app().await;
    shop(&app).await;
    let asker = app.create_token("ci-bot", "write").await;
    let voter = app.create_token("alice", "write").await;
    let admin = app.create_token("ops", "admin").await;
    let mut stream = SseReader::open_with_token(&app, "/pipelines/shop/events", &admin).await;

    let (_, coupling) = app
        .call(
            Method::GET,
            "/apps/shop-stg/pipeline-couplings",
            None,
            Some(&admin),
        )
        .await;
    let coupling_path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    let (status, body) = app
        .call(
            Method::PATCH,
            &coupling_path,
            Some(json!({"required_status_checks": {"contexts": []},
                        "promotion_policy": {"required_approvals": 1}})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let release = |image: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let (status, made) = app
                .call(
                    Method::POST,
                    "/apps/shop-dev/releases",
                    Some(json!({"image": image})),
                    Some(&admin),
                )
                .await;
            assert_eq!(status, 201, "{made}");
            made
        }
    };
    let first = release("registry/shop:1").await;
    let (status, promotion) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            Some(&asker),
        )
        .await;
    assert_eq!(status, 201, "{promotion}");
    let id = promotion["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/pipeline-promotions/{id}/approvals"),
            Some(json!({"comment": "ship it"})),
            Some(&voter),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, now) = app
            .call(
                Method::GET,
                &format!("/pipeline-promotions/{id}"),
                None,
                Some(&admin),
            )
            .await;
        if now["status"] == "successful" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    release("registry/shop:2").await;
    let (status, rollback) = app
        .call(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"release": first["id"]})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 201, "{rollback}");

    let events = stream.take(11).await;
    assert_eq!(
        names(&events),
        [
            "coupling.updated",
            "release.created",
            "promotion.created",
            // promotion.awaiting_approval
            "promotion.updated",
            "approval.granted",
            "target.updated",
            "release.created",
            "promotion.updated",
            "release.created",
            "release.created",
            "release.updated",
        ]
    );
    assert_eq!(events[0].data["promotion_policy"]["required_approvals"], 1);
    // Each event carries its resource as it stands when sent, not as it stood then.
    assert_eq!(events[3].data["id"], promotion["id"]);
    assert_eq!(events[4].data["approvals"][0]["by"], "alice");
    assert_eq!(events[9].data["id"], rollback["id"]);
    assert_eq!(events[10].data["id"], rollback["id"]);
    assert_eq!(events[10].data["status"], "succeeded");

    let (status, _) = app
        .call(Method::DELETE, "/apps/shop-stg", None, Some(&admin))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(Method::DELETE, "/pipelines/shop", None, Some(&admin))
        .await;
    assert_eq!(status, 200);
    let gone = stream.take(2).await;
    assert_eq!(names(&gone), ["app.deleted", "pipeline.deleted"]);
    assert_eq!(gone[0].data["app"]["name"], "shop-stg");
    assert!(gone[1].data["id"].is_string());
}
