use pipelines::proto::{
    CreateReleaseRequest, CreateReleaseStatusRequest, GetReleaseRequest,
    ListReleaseStatusesRequest, ListReleasesRequest, ReleaseState, StatusState,
    UpdateReleaseStatusRequest,
};
use tonic::Code;

use crate::helpers::{assert_status, spawn_app};

fn status(
    app: &str,
    release_id: &str,
    context: &str,
    state: StatusState,
) -> CreateReleaseStatusRequest {
    CreateReleaseStatusRequest {
        app: app.into(),
        release_id: release_id.into(),
        context: context.into(),
        name: format!("check {context}"),
        state: state as i32,
        description: String::new(),
        target_url: String::new(),
        image_url: String::new(),
    }
}

#[tokio::test]
async fn releases_get_increasing_versions_and_succeed() {
    let app = spawn_app().await;
    let dev = app.create_app("shop-dev").await;
    let first = app
        .releases
        .clone()
        .create_release(CreateReleaseRequest {
            app: "shop-dev".into(),
            image: "registry.example.com/shop:1.0.0".into(),
            description: "first cut".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.version, 1);
    assert_eq!(first.status, ReleaseState::Succeeded as i32);
    assert_eq!(first.image, "registry.example.com/shop:1.0.0");
    assert_eq!(first.description, "first cut");
    assert_eq!(first.app.clone().unwrap().id, dev.id);
    assert!(first.promoted_from.is_none());
    let second = app
        .create_release(&dev.id, "registry.example.com/shop:1.0.1")
        .await;
    assert_eq!(second.version, 2);

    let listed: Vec<i64> = app
        .releases
        .clone()
        .list_releases(ListReleasesRequest {
            app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .releases
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(listed, [2, 1], "newest first");

    let fetched = app
        .releases
        .clone()
        .get_release(GetReleaseRequest {
            app: "shop-dev".into(),
            release_id: first.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // The second release is now the current one.
    assert_eq!(
        fetched,
        pipelines::proto::Release {
            current: false,
            ..first
        }
    );
}

#[tokio::test]
async fn release_input_is_validated() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let mut client = app.releases.clone();
    for (image, description, field) in [
        ("", "", "image"),
        ("has space", "", "image"),
        ("shop:1", &"d".repeat(1001) as &str, "description"),
    ] {
        let result = client
            .create_release(CreateReleaseRequest {
                app: "shop-dev".into(),
                image: image.into(),
                description: description.into(),
            })
            .await;
        assert_status(result, Code::InvalidArgument, &[field]);
    }
    let result = client
        .create_release(CreateReleaseRequest {
            app: "ghost".into(),
            image: "shop:1".into(),
            description: String::new(),
        })
        .await;
    assert_status(result, Code::NotFound, &["ghost"]);
    let listed = client
        .list_releases(ListReleasesRequest {
            app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.releases.is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_release_belongs_to_its_app() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    app.create_app("blog-dev").await;
    let blog = app.create_release("blog-dev", "blog:1").await;
    let mut client = app.releases.clone();
    let result = client
        .get_release(GetReleaseRequest {
            app: "shop-dev".into(),
            release_id: blog.id.clone(),
        })
        .await;
    assert_status(result, Code::NotFound, &["release", &blog.id, "shop-dev"]);
    let result = client
        .get_release(GetReleaseRequest {
            app: "shop-dev".into(),
            release_id: "v1".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["release v1", "shop-dev"]);
    let result = client
        .create_release_status(status(
            "shop-dev",
            &blog.id,
            "ci/unit",
            StatusState::Success,
        ))
        .await;
    assert_status(result, Code::NotFound, &["release"]);
}

#[tokio::test]
async fn concurrent_releases_on_one_app_get_distinct_versions() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            let mut client = app.releases.clone();
            tokio::spawn(async move {
                client
                    .create_release(CreateReleaseRequest {
                        app: "shop-dev".into(),
                        image: format!("shop:{n}"),
                        description: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner().version)
            })
        })
        .collect();
    let mut versions = Vec::new();
    for attempt in attempts {
        versions.push(attempt.await.unwrap().expect("every release is recorded"));
    }
    versions.sort();
    assert_eq!(versions, (1..=12).collect::<Vec<i64>>());
}

#[tokio::test]
async fn statuses_are_posted_listed_and_updated() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let mut client = app.releases.clone();
    let posted = client
        .create_release_status(CreateReleaseStatusRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            context: "ci/unit".into(),
            name: "Unit tests".into(),
            state: StatusState::Pending as i32,
            description: "running".into(),
            target_url: "https://ci.example.com/runs/1".into(),
            image_url: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posted.context, "ci/unit");
    assert_eq!(posted.state, StatusState::Pending as i32);
    assert_eq!(posted.release_id, release.id);
    client
        .create_release_status(status(
            "shop-dev",
            &release.id,
            "ci/e2e",
            StatusState::Failure,
        ))
        .await
        .unwrap();

    let updated = client
        .update_release_status(UpdateReleaseStatusRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            status_id: posted.id.clone(),
            state: Some(StatusState::Success as i32),
            description: Some("all green".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.state, StatusState::Success as i32);
    assert_eq!(updated.description, "all green");
    assert_eq!(updated.name, "Unit tests", "unset fields are kept");
    assert_eq!(updated.target_url, "https://ci.example.com/runs/1");
    assert_eq!(updated.context, "ci/unit");

    let listed = client
        .list_release_statuses(ListReleaseStatusesRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .statuses;
    let summary: Vec<(String, i32)> = listed.into_iter().map(|s| (s.context, s.state)).collect();
    assert_eq!(
        summary,
        vec![
            ("ci/e2e".to_owned(), StatusState::Failure as i32),
            ("ci/unit".to_owned(), StatusState::Success as i32),
        ]
    );
}

#[tokio::test]
async fn a_context_is_unique_per_release() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let first = app.create_release("shop-dev", "shop:1").await;
    let second = app.create_release("shop-dev", "shop:2").await;
    let mut client = app.releases.clone();
    client
        .create_release_status(status(
            "shop-dev",
            &first.id,
            "ci/unit",
            StatusState::Success,
        ))
        .await
        .unwrap();
    let result = client
        .create_release_status(status(
            "shop-dev",
            &first.id,
            "ci/unit",
            StatusState::Failure,
        ))
        .await;
    assert_status(result, Code::AlreadyExists, &["ci/unit"]);
    // The same context on another release is fine.
    client
        .create_release_status(status(
            "shop-dev",
            &second.id,
            "ci/unit",
            StatusState::Success,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn status_input_is_validated() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let mut client = app.releases.clone();
    let base = status("shop-dev", &release.id, "ci/unit", StatusState::Success);
    let cases = [
        (
            CreateReleaseStatusRequest {
                context: String::new(),
                ..base.clone()
            },
            "context",
        ),
        (
            CreateReleaseStatusRequest {
                context: "ci unit".into(),
                ..base.clone()
            },
            "context",
        ),
        (
            CreateReleaseStatusRequest {
                name: " ".into(),
                ..base.clone()
            },
            "name",
        ),
        (
            CreateReleaseStatusRequest {
                state: StatusState::Unspecified as i32,
                ..base.clone()
            },
            "state",
        ),
        (
            CreateReleaseStatusRequest {
                state: 17,
                ..base.clone()
            },
            "state",
        ),
        (
            CreateReleaseStatusRequest {
                target_url: "ci.example.com".into(),
                ..base.clone()
            },
            "target_url",
        ),
        (
            CreateReleaseStatusRequest {
                image_url: "ftp://x/y.png".into(),
                ..base.clone()
            },
            "image_url",
        ),
        (
            CreateReleaseStatusRequest {
                description: "d".repeat(1001),
                ..base.clone()
            },
            "description",
        ),
    ];
    for (request, field) in cases {
        let result = client.create_release_status(request).await;
        assert_status(result, Code::InvalidArgument, &[field]);
    }
    let listed = client
        .list_release_statuses(ListReleaseStatusesRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.statuses.is_empty(), "nothing was written");
}

#[tokio::test]
async fn status_updates_are_validated() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let other = app.create_release("shop-dev", "shop:2").await;
    let mut client = app.releases.clone();
    let posted = client
        .create_release_status(status(
            "shop-dev",
            &release.id,
            "ci/unit",
            StatusState::Pending,
        ))
        .await
        .unwrap()
        .into_inner();
    let update = |state: Option<i32>| UpdateReleaseStatusRequest {
        app: "shop-dev".into(),
        release_id: release.id.clone(),
        status_id: posted.id.clone(),
        state,
        ..Default::default()
    };
    assert_status(
        client.update_release_status(update(Some(0))).await,
        Code::InvalidArgument,
        &[
            "state",
            "0 (STATUS_STATE_UNSPECIFIED) means unset",
            "STATUS_STATE_PENDING, STATUS_STATE_SUCCESS, STATUS_STATE_FAILURE, STATUS_STATE_ERROR",
        ],
    );
    assert_status(
        client
            .update_release_status(UpdateReleaseStatusRequest {
                target_url: Some("nope".into()),
                ..update(None)
            })
            .await,
        Code::InvalidArgument,
        &["target_url"],
    );
    assert_status(
        client
            .update_release_status(UpdateReleaseStatusRequest {
                status_id: uuid::Uuid::new_v4().to_string(),
                ..update(Some(StatusState::Success as i32))
            })
            .await,
        Code::NotFound,
        &["release status"],
    );
    // A status is reached only through its own release.
    assert_status(
        client
            .update_release_status(UpdateReleaseStatusRequest {
                release_id: other.id.clone(),
                ..update(Some(StatusState::Success as i32))
            })
            .await,
        Code::NotFound,
        &["release status"],
    );
    let listed = client
        .list_release_statuses(ListReleaseStatusesRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.statuses[0].state,
        StatusState::Pending as i32,
        "unchanged"
    );
}

#[tokio::test]
async fn a_status_context_cannot_change() {
    let app = spawn_app().await;
    app.create_app("shop-dev").await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let services = app.services().await;
    let posted = services
        .releases
        .create_status(
            "shop-dev",
            &release.id,
            pipelines::service::NewReleaseStatus {
                context: "ci/unit".into(),
                name: "Unit".into(),
                state: Some(pipelines::domain::status::StatusState::Pending),
                ..Default::default()
            },
            &crate::helpers::writer(),
        )
        .await
        .unwrap();
    let result = services
        .releases
        .update_status(
            "shop-dev",
            &release.id,
            &posted.id.to_string(),
            pipelines::service::ReleaseStatusChanges {
                context: Some("ci/other".into()),
                ..Default::default()
            },
            &crate::helpers::writer(),
        )
        .await;
    crate::helpers::assert_error(result, Code::InvalidArgument, &["context", "immutable"]);
    let same = services
        .releases
        .update_status(
            "shop-dev",
            &release.id,
            &posted.id.to_string(),
            pipelines::service::ReleaseStatusChanges {
                context: Some("ci/unit".into()),
                state: Some(Some(pipelines::domain::status::StatusState::Success)),
                ..Default::default()
            },
            &crate::helpers::writer(),
        )
        .await
        .unwrap();
    assert_eq!(same.context, "ci/unit");
}
