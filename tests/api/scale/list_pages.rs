//! Lists are read a page at a time in a constant number of statements, whatever the page
//! holds. Batched reads must show exactly what the single reads show, and pages must
//! meet at their boundaries with nothing lost or repeated.

use pipelines::proto::{GetPromotionRequest, ListPromotionsRequest, Promotion, Stage};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, with_token, TestApp};

/// Every promotion of `shop`, `size` at a time, with each page's length.
async fn all_pages(app: &TestApp, size: u32, token: &str) -> (Vec<Promotion>, Vec<usize>) {
    let mut promotions = Vec::new();
    let mut lengths = Vec::new();
    let mut next = String::new();
    loop {
        let page = app
            .promotions
            .clone()
            .list_promotions(with_token(
                ListPromotionsRequest {
                    pipeline: "shop".into(),
                    page_size: size,
                    page_token: next,
                },
                token,
            ))
            .await
            .expect("list promotions")
            .into_inner();
        lengths.push(page.promotions.len());
        promotions.extend(page.promotions);
        if page.next_page_token.is_empty() {
            return (promotions, lengths);
        }
        next = page.next_page_token;
    }
}

#[tokio::test]
async fn promotion_pages_meet_exactly_and_match_single_reads() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    let mut couplings = Vec::new();
    for (name, stage) in [
        ("shop-dev", Stage::Development),
        ("shop-stg", Stage::Staging),
        ("shop-qa", Stage::Staging),
    ] {
        app.create_app(name).await;
        couplings.push(app.couple(name, "shop", stage, &[]).await.id);
    }
    // Promotions into shop-stg wait for two approvals; some get one, from another token.
    let stg = &couplings[1];
    let creator = app.create_token("creator", "admin").await;
    let approver = app.create_token("approver", "write").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/pipeline-couplings/{stg}"),
            Some(json!({"promotion_policy": {"required_approvals": 2}})),
            Some(&creator),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"image": "registry.example/shop:1"})),
            Some(&creator),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut ids = Vec::new();
    for n in 0..7 {
        let target = if n % 2 == 0 { "shop-stg" } else { "shop-qa" };
        let (status, body) = app
            .call(
                Method::POST,
                "/pipeline-promotions",
                Some(json!({
                    "pipeline": {"id": "shop"},
                    "source": {"app": {"id": "shop-dev"}},
                    "targets": [{"app": {"id": target}}],
                })),
                Some(&creator),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        if n % 4 == 0 {
            let (status, body) = app
                .call(
                    Method::POST,
                    &format!("/pipeline-promotions/{id}/approvals"),
                    Some(json!({"comment": format!("approval {n}")})),
                    Some(&approver),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        if target == "shop-qa" {
            app.watch_to_end_as(&id, &creator).await;
        }
        ids.push(id);
    }

    let mut singles = Vec::new();
    for id in ids.iter().rev() {
        singles.push(
            app.promotions
                .clone()
                .get_promotion(with_token(GetPromotionRequest { id: id.clone() }, &creator))
                .await
                .expect("get promotion")
                .into_inner(),
        );
    }
    assert!(
        singles.iter().any(|p| p.approvals.len() == 1),
        "some promotions carry an approval"
    );
    for size in 1..=8 {
        let (listed, lengths) = all_pages(&app, size, &creator).await;
        assert_eq!(
            listed, singles,
            "page size {size}: newest first, as read one by one"
        );
        let full_pages = 7 / size as usize;
        let mut expected = vec![size as usize; full_pages];
        if 7 % size != 0 {
            expected.push(7 % size as usize);
        }
        assert_eq!(lengths, expected, "page size {size}");
    }
    // REST answers the same promotions, newest first, with their approvals.
    let (status, listed) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=shop",
            None,
            Some(&creator),
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().expect("array");
    let ids: Vec<&str> = listed.iter().filter_map(|p| p["id"].as_str()).collect();
    let expected: Vec<&str> = singles.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, expected);
    for (rest, grpc) in listed.iter().zip(&singles) {
        assert_eq!(
            rest["approvals"].as_array().map(Vec::len),
            Some(grpc.approvals.len())
        );
        assert_eq!(rest["source"]["release"]["version"], 1);
        assert_eq!(rest["pipeline"]["name"], "shop");
    }
}
