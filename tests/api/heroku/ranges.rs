//! Heroku's `Range` header on every list: the forms the CLI sends, paging to the end with
//! `Next-Range`, and each unusable form.

use reqwest::Method;
use serde_json::{json, Value};

use super::{app_with_releases, call_with, header};
use crate::helpers::spawn_app;

fn versions(body: &Value) -> Vec<i64> {
    body.as_array()
        .expect("an array")
        .iter()
        .map(|release| release["version"].as_i64().expect("a version"))
        .collect()
}

#[tokio::test]
async fn releases_range_by_version_in_every_form_the_cli_sends() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 20).await;
    let path = "/apps/shop-dev/releases";
    // Each range, what its first page holds, and the Next-Range when more remain.
    for (range, expected, next) in [
        (
            "version ..; max=15, order=desc",
            (6..=20).rev().collect::<Vec<i64>>(),
            Some("version ]6..; max=15, order=desc"),
        ),
        (
            "version ..; order=desc,max=1",
            vec![20],
            Some("version ]20..; max=1, order=desc"),
        ),
        (
            "version ..; max=1, order=desc;",
            vec![20],
            Some("version ]20..; max=1, order=desc"),
        ),
        ("version ..; order=desc", (1..=20).rev().collect(), None),
        ("version ..", (1..=20).collect(), None),
        ("version 5..7", vec![5, 6, 7], None),
        ("version ..3", vec![1, 2, 3], None),
        ("version 18..", vec![18, 19, 20], None),
        ("version ]18..", vec![19, 20], None),
        ("version 7..5; order=desc", vec![7, 6, 5], None),
        (
            "version 3..9; max=2",
            vec![3, 4],
            Some("version ]4..9; max=2, order=asc"),
        ),
    ] {
        let (status, headers, body) =
            call_with(&app, Method::GET, path, &[("range", range)], None).await;
        assert_eq!(status, if next.is_some() { 206 } else { 200 }, "{range}");
        assert_eq!(versions(&body), expected, "{range}");
        assert_eq!(header(&headers, "accept-ranges"), Some("version, id"));
        assert_eq!(header(&headers, "next-range"), next, "{range}");
        let content_range = format!("version {}..{}", expected[0], expected[expected.len() - 1]);
        assert_eq!(
            header(&headers, "content-range"),
            Some(content_range.as_str())
        );
    }
    // Without a Range: Akkeris's order, whole.
    let (status, headers, body) = call_with(&app, Method::GET, path, &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(versions(&body), (1..=20).collect::<Vec<i64>>());
    assert_eq!(header(&headers, "content-range"), None);
}

#[tokio::test]
async fn next_range_pages_to_the_end_in_either_order() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 7).await;
    for (order, expected) in [
        ("desc", vec![7, 6, 5, 4, 3, 2, 1]),
        ("asc", (1..=7).collect()),
    ] {
        let mut range = format!("version ..; max=3, order={order}");
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (status, headers, body) = call_with(
                &app,
                Method::GET,
                "/apps/shop-dev/releases",
                &[("range", &range)],
                None,
            )
            .await;
            pages += 1;
            let page = versions(&body);
            let content_range = header(&headers, "content-range").expect("Content-Range");
            assert_eq!(
                content_range,
                format!("version {}..{}", page[0], page[page.len() - 1])
            );
            seen.extend(page);
            match header(&headers, "next-range") {
                Some(next) => {
                    assert_eq!(status, 206, "{body}");
                    range = next.to_owned();
                }
                None => {
                    assert_eq!(status, 200);
                    break;
                }
            }
        }
        assert_eq!(seen, expected, "{order}");
        assert_eq!(pages, 3, "{order}");
    }
}

#[tokio::test]
async fn releases_range_by_id_and_other_lists_by_id_and_name() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 4).await;
    let (_, _, all) = call_with(&app, Method::GET, "/apps/shop-dev/releases", &[], None).await;
    let mut ids: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|release| release["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let (status, headers, body) = call_with(
        &app,
        Method::GET,
        "/apps/shop-dev/releases",
        &[("range", "id ..; max=3")],
        None,
    )
    .await;
    assert_eq!(status, 206, "{body}");
    let page: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|release| release["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        page,
        ids[..3].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        header(&headers, "next-range"),
        Some(format!("id ]{}..; max=3, order=asc", ids[2]).as_str())
    );

    for name in ["alpha", "bravo", "charlie"] {
        app.call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": name})),
            None,
        )
        .await;
    }
    let (status, headers, body) = call_with(
        &app,
        Method::GET,
        "/pipelines",
        &[("range", "name ..; max=2, order=desc")],
        None,
    )
    .await;
    assert_eq!(status, 206, "{body}");
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|pipeline| pipeline["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["charlie", "bravo"]);
    assert_eq!(header(&headers, "accept-ranges"), Some("id, name"));
    assert_eq!(
        header(&headers, "next-range"),
        Some("name ]bravo..; max=2, order=desc")
    );
    let (status, _, body) = call_with(
        &app,
        Method::GET,
        "/pipelines",
        &[("range", "name ]bravo..; max=2, order=desc")],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "alpha");
    // Every list answers Accept-Ranges, even without a Range.
    let (_, headers, _) = call_with(&app, Method::GET, "/apps", &[], None).await;
    assert_eq!(header(&headers, "accept-ranges"), Some("id, name"));
    // A route whose answer is not a list ignores Range, as HTTP allows.
    let (status, headers, _) = call_with(
        &app,
        Method::GET,
        "/pipelines/alpha",
        &[("range", "colour ..")],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "accept-ranges"), None);
}

#[tokio::test]
async fn an_unusable_range_is_416_naming_its_part() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 2).await;
    for (range, part, fragment) in [
        ("name ..", "Range.field", "it ranges by version, id"),
        ("version ..; max=0", "Range.max", "from 1 to 1000"),
        ("version ..; max=1001", "Range.max", "from 1 to 1000"),
        (
            "version ..; order=sideways",
            "Range.order",
            "neither asc nor desc",
        ),
        ("version ..; colour=red", "Range.parameter", "max and order"),
        ("version 7", "Range.bounds", "not a range"),
        ("version abc..", "Range.bounds", "not a version"),
    ] {
        let (status, headers, body) = call_with(
            &app,
            Method::GET,
            "/apps/shop-dev/releases",
            &[("range", range)],
            None,
        )
        .await;
        assert_eq!(status, 416, "{range}: {body}");
        assert_eq!(body["code"], 3, "{range}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{range}: {message}");
        if range != "version abc.." {
            assert!(
                message.contains("ranges by version, id"),
                "{range}: {message}"
            );
        }
        assert_eq!(
            body["details"][0]["field_violations"][0]["field"], part,
            "{range}"
        );
        assert_eq!(header(&headers, "accept-ranges"), Some("version, id"));
    }
    // A range together with paging parameters is 422.
    for query in ["page_size=2", "page_token=1"] {
        let (status, _, body) = call_with(
            &app,
            Method::GET,
            &format!("/pipelines?{query}"),
            &[("range", "id ..")],
            None,
        )
        .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("Range"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn promotions_range_by_id_past_the_lists_default_page() {
    let app = spawn_app().await;
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "shop"})),
        None,
    )
    .await;
    for (name, stage) in [("shop-dev", "development"), ("shop-stg", "staging")] {
        app.call(Method::POST, "/apps", Some(json!({"name": name})), None)
            .await;
        app.call(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": name, "pipeline": "shop", "stage": stage})),
            None,
        )
        .await;
    }
    app.call(
        Method::POST,
        "/apps/shop-dev/releases",
        Some(json!({"image": "img:1"})),
        None,
    )
    .await;
    // More than the list's default page of 100.
    let mut made = Vec::new();
    for _ in 0..105 {
        let (status, promotion) = app
            .call(
                Method::POST,
                "/pipeline-promotions",
                Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{promotion}");
        made.push(promotion["id"].as_str().unwrap().to_owned());
    }
    made.sort();
    let mut range = "id ..; max=40".to_owned();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (status, headers, body) = call_with(
            &app,
            Method::GET,
            "/pipeline-promotions?pipeline=shop",
            &[("range", &range)],
            None,
        )
        .await;
        seen.extend(
            body.as_array()
                .unwrap()
                .iter()
                .map(|promotion| promotion["id"].as_str().unwrap().to_owned()),
        );
        match header(&headers, "next-range") {
            Some(next) => {
                assert_eq!(status, 206);
                range = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, made, "every promotion once, by id");
    let (status, _, body) = call_with(
        &app,
        Method::GET,
        "/pipeline-promotions",
        &[("range", "id not-an-id..")],
        None,
    )
    .await;
    assert_eq!(status, 416, "{body}");
}

/// Every GET route whose answer is a JSON array, read from the served document, so that a
/// new list is tested the moment it is routed.
#[tokio::test]
async fn every_list_route_honours_a_range_and_refuses_an_unusable_one() {
    let app = spawn_app().await;
    app_with_releases(&app, "shop-dev", 2).await;
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "shop"})),
        None,
    )
    .await;
    let (_, document) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut lists = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        if schema["type"] != "array" {
            continue;
        }
        lists += 1;
        let path = template
            .replace("{pipeline}", "shop")
            .replace("{app}", "shop-dev")
            .replace("{release}", "1")
            .replace("{id}", "00000000-0000-4000-8000-000000000001");
        let path = if path == "/releases" {
            "/releases?image=img:1".to_owned()
        } else {
            path
        };
        let (status, headers, body) =
            call_with(&app, Method::GET, &path, &[("range", "colour ..")], None).await;
        assert_eq!(status, 416, "{path}: {body}");
        let accepted = header(&headers, "accept-ranges")
            .expect("Accept-Ranges")
            .to_owned();
        let field = accepted.split(", ").next().unwrap();
        let range = format!("{field} ..; max=1");
        let (status, headers, body) =
            call_with(&app, Method::GET, &path, &[("range", &range)], None).await;
        assert!(
            [200, 206, 404].contains(&status),
            "{path} with {range}: {status} {body}"
        );
        assert_eq!(
            header(&headers, "accept-ranges"),
            Some(accepted.as_str()),
            "{path}"
        );
        if status != 404 {
            assert!(body.as_array().unwrap().len() <= 1, "{path}: {body}");
        }
    }
    assert!(lists >= 8, "only {lists} lists found in the document");
}
