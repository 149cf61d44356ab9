//! The pipeline event stream: every change in a pipeline, numbered per pipeline in commit
//! order, over SSE and gRPC, resumed exactly, with a reset when resumed from too far back.

mod diff;
mod kinds;
mod lineage;
mod replicas;

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// One server-sent event: its id, name and data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub name: String,
    pub data: Value,
}

/// Reads a Server-Sent Events response as it arrives.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    pub async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Self {
        Self::open_as(app, path, last_event_id, None).await
    }

    pub async fn open_with_token(app: &TestApp, path: &str, token: &str) -> Self {
        Self::open_as(app, path, None, Some(token)).await
    }

    async fn open_as(
        app: &TestApp,
        path: &str,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> Self {
        let mut request = app.rest(Method::GET, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("open the stream");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when none arrives within `wait`. Keep-alive comments are
    /// skipped.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(&format!("{name}:")))
                        .map(|value| value.trim().to_owned())
                };
                let Some(data) = field("data") else { continue };
                return Some(SseEvent {
                    id: field("id").unwrap_or_default().parse().unwrap_or(-1),
                    name: field("event").unwrap_or_default(),
                    data: serde_json::from_str(&data).expect("JSON data"),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
        }
    }

    /// The next `count` events, each within 5 s.
    pub async fn take(&mut self, count: usize) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while events.len() < count {
            match self.next_within(Duration::from_secs(5)).await {
                Some(event) => events.push(event),
                None => panic!(
                    "only {} of {count} events arrived: {events:?}",
                    events.len()
                ),
            }
        }
        events
    }
}

/// A pipeline `shop` with `shop-dev` and `shop-stg` (requiring `ci/test`), once its three
/// events (the pipeline and two couplings) are numbered: numbering runs moments after each
/// commit, and a stream opened without `Last-Event-ID` starts after what is numbered.
pub async fn shop(app: &TestApp) {
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "shop"})),
        None,
    )
    .await;
    for (name, stage, contexts) in [
        ("shop-dev", "development", json!([])),
        ("shop-stg", "staging", json!(["ci/test"])),
    ] {
        app.call(Method::POST, "/apps", Some(json!({"name": name})), None)
            .await;
        let (status, body) = app
            .call(
                Method::POST,
                "/pipeline-couplings",
                Some(json!({"app": name, "pipeline": "shop", "stage": stage,
                            "required_status_checks": {"contexts": contexts}})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut from_the_start = SseReader::open(app, "/pipelines/shop/events", Some("0")).await;
    from_the_start.take(3).await;
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|event| event.name.as_str()).collect()
}

#[tokio::test]
async fn every_change_in_a_pipeline_reaches_its_stream_in_order_with_the_resource() {
    let app = spawn_app().await;
    shop(&app).await;
    let mut stream = SseReader::open(&app, "/pipelines/shop/events", None).await;

    let (_, release) = app
        .call(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"image": "registry/shop:1"})),
            None,
        )
        .await;
    let release_id = release["id"].as_str().unwrap().to_owned();
    let statuses = format!("/apps/shop-dev/releases/{release_id}/statuses");
    let (_, status) = app
        .call(
            Method::POST,
            &statuses,
            Some(json!({"context": "ci/test", "name": "CI", "state": "pending"})),
            None,
        )
        .await;
    let status_id = status["id"].as_str().unwrap();
    app.call(
        Method::PATCH,
        &format!("{statuses}/{status_id}"),
        Some(json!({"state": "success"})),
        None,
    )
    .await;
    app.call(
        Method::PATCH,
        "/apps/shop-stg/config-vars",
        Some(json!({"API_KEY": "very-secret-value"})),
        None,
    )
    .await;
    let (_, freeze) = app
        .call(
            Method::POST,
            "/pipelines/shop/freezes",
            Some(json!({"stages": ["production"], "ends_at": "2999-01-01T00:00:00Z", "reason": "audit week"})),
            None,
        )
        .await;
    let (status, promotion) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{promotion}");

    let events = stream.take(9).await;
    assert_eq!(
        names(&events),
        [
            "release.created",
            "status.created",
            "status.updated",
            "config_vars.updated",
            "freeze.created",
            "promotion.created",
            "target.updated",
            "release.created",
            "promotion.updated",
        ]
    );
    // Numbered one after the other, after the pipeline's earlier events (its creation and
    // its two couplings).
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, (4..=12).collect::<Vec<_>>());
    for event in &events {
        assert_eq!(event.data["sequence"], event.id, "{:?}", event.data);
        assert_eq!(event.data["kind"], event.name.as_str());
        assert!(event.data["at"].is_string());
    }
    assert_eq!(events[0].data["image"], "registry/shop:1");
    assert_eq!(events[0].data["app"]["name"], "shop-dev");
    assert_eq!(events[1].data["context"], "ci/test");
    assert_eq!(events[1].data["app"]["name"], "shop-dev");
    assert_eq!(events[2].data["state"], "success", "sent as it stands");
    assert_eq!(events[3].data["app"]["name"], "shop-stg");
    assert!(
        !events[3].data.to_string().contains("very-secret-value"),
        "config var values never travel on the stream"
    );
    assert_eq!(events[4].data["id"], freeze["id"]);
    assert_eq!(events[4].data["reason"], "audit week");
    assert_eq!(events[5].data["id"], promotion["id"]);
    assert_eq!(events[6].data["pipeline_promotion"]["id"], promotion["id"]);
    assert_eq!(events[6].data["app"]["name"], "shop-stg");
    assert_eq!(events[7].data["app"]["name"], "shop-stg");
    assert_eq!(events[7].data["promoted_from"]["app"]["name"], "shop-dev");
    assert_eq!(events[8].data["status"], "successful");

    // Resumed after event 6, the stream sends exactly what came after, then goes live.
    let mut resumed = SseReader::open(&app, "/pipelines/shop/events", Some("6")).await;
    let replayed = resumed.take(6).await;
    let replayed_ids: Vec<i64> = replayed.iter().map(|event| event.id).collect();
    assert_eq!(replayed_ids, (7..=12).collect::<Vec<_>>());
    assert_eq!(names(&replayed), names(&events[3..]));
    app.call(
        Method::DELETE,
        &format!("/pipelines/shop/freezes/{}", freeze["id"].as_str().unwrap()),
        None,
        None,
    )
    .await;
    let live = resumed.take(1).await;
    assert_eq!((live[0].id, live[0].name.as_str()), (13, "freeze.deleted"));
    assert_eq!(live[0].data["id"], freeze["id"]);
    let same = stream.take(1).await;
    assert_eq!((same[0].id, same[0].name.as_str()), (13, "freeze.deleted"));
}

#[tokio::test]
async fn a_stream_without_last_event_id_starts_at_the_present() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_release("shop-dev", "registry/shop:1").await;
    // Numbered moments after its commit: wait for it to be.
    let mut numbered = SseReader::open(&app, "/pipelines/shop/events", Some("3")).await;
    assert_eq!(numbered.take(1).await[0].id, 4);
    let mut stream = SseReader::open(&app, "/pipelines/shop/events", None).await;
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "history is sent only to a client that resumes"
    );
    app.create_release("shop-dev", "registry/shop:2").await;
    let events = stream.take(1).await;
    assert_eq!(events[0].name, "release.created");
    assert_eq!(events[0].data["image"], "registry/shop:2");
    assert_eq!(events[0].id, 5);
}

#[tokio::test]
async fn a_resume_from_events_no_longer_kept_or_never_sent_starts_with_a_reset() {
    let app = spawn_app().await;
    shop(&app).await;
    for version in 1..=4 {
        app.create_release("shop-dev", &format!("registry/shop:{version}"))
            .await;
    }
    // Keep only the last two events of each pipeline (the server keeps 1,000).
    let db = sea_orm::Database::connect(&app.database.url).await.unwrap();
    pipelines::store::pipeline_events::trim(&db, 2, 1000)
        .await
        .unwrap();
    for too_old in ["0", "3"] {
        let mut stream = SseReader::open(&app, "/pipelines/shop/events", Some(too_old)).await;
        let first = stream.take(1).await;
        assert_eq!(first[0].name, "reset", "after {too_old}");
        assert_eq!(first[0].id, 7);
        assert_eq!(first[0].data["sequence"], 7);
    }
    // Event 5 is still kept: resuming after 5 misses nothing.
    let mut stream = SseReader::open(&app, "/pipelines/shop/events", Some("5")).await;
    let kept = stream.take(2).await;
    assert_eq!(names(&kept), ["release.created", "release.created"]);
    assert_eq!(kept[0].id, 6);
    // A sequence this pipeline never reached (another server's, or a wiped database).
    let mut stream = SseReader::open(&app, "/pipelines/shop/events", Some("999")).await;
    let first = stream.take(1).await;
    assert_eq!((first[0].name.as_str(), first[0].id), ("reset", 7));
    app.create_release("shop-dev", "registry/shop:5").await;
    let next = stream.take(1).await;
    assert_eq!((next[0].name.as_str(), next[0].id), ("release.created", 8));
}

#[tokio::test]
async fn a_stream_refuses_an_unknown_pipeline_a_bad_last_event_id_and_query_parameters() {
    let app = spawn_app().await;
    shop(&app).await;
    let (status, body) = app
        .call(Method::GET, "/pipelines/nope/events", None, None)
        .await;
    assert_eq!(status, 404, "{body}");
    for bad in ["abc", "-1", "1.5"] {
        let response = app
            .rest(Method::GET, "/pipelines/shop/events")
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("Last-Event-ID"),
            "{body}"
        );
    }
    let (status, body) = app
        .call(Method::GET, "/pipelines/shop/events?after=3", None, None)
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_read_token_may_watch_and_a_missing_token_may_not() {
    let app = spawn_app().await;
    shop(&app).await;
    let reader = app.create_token("board", "read").await;
    // Protected mode ends within a second of the first token.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = app
            .rest(Method::GET, "/pipelines/shop/events")
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no token still watches"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = app
        .rest(Method::GET, "/pipelines/shop/events")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn watch_pipeline_over_grpc_streams_the_same_events_and_resumes() {
    use pipelines::proto::{pipeline_event::Resource, WatchPipelineRequest};
    let app = spawn_app().await;
    shop(&app).await;
    let mut pipelines = app.pipelines.clone();
    let mut live = pipelines
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "shop".into(),
            after_sequence: None,
        })
        .await
        .unwrap()
        .into_inner();
    let release = app.create_release("shop-dev", "registry/shop:1").await;
    let event = tokio::time::timeout(Duration::from_secs(5), live.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.sequence, event.kind.as_str()),
        (4, "release.created")
    );
    match event.resource {
        Some(Resource::Release(sent)) => assert_eq!(sent.id, release.id),
        other => panic!("not a release: {other:?}"),
    }

    let mut resumed = pipelines
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "shop".into(),
            after_sequence: Some(1),
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), resumed.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        kinds.push((event.sequence, event.kind));
    }
    assert_eq!(
        kinds,
        [
            (2, "coupling.created".to_owned()),
            (3, "coupling.created".to_owned()),
            (4, "release.created".to_owned())
        ]
    );

    let mut ahead = pipelines
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "shop".into(),
            after_sequence: Some(40),
        })
        .await
        .unwrap()
        .into_inner();
    let reset = ahead.message().await.unwrap().unwrap();
    assert_eq!(reset.kind, "reset");
    assert!(matches!(reset.resource, Some(Resource::Reset(r)) if r.last_sequence == 4));

    let unknown = pipelines
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "nope".into(),
            after_sequence: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let negative = pipelines
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "shop".into(),
            after_sequence: Some(-2),
        })
        .await
        .unwrap_err();
    assert_eq!(negative.code(), tonic::Code::InvalidArgument);
    assert!(negative.message().contains("after_sequence"));
}
