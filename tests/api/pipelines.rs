use pipelines::proto::{
    CreatePipelineRequest, CreateReleaseStatusRequest, DeletePipelineRequest, GetPipelineRequest,
    ListPipelineCouplingsRequest, ListPipelineStatusesRequest, ListPipelinesRequest,
    ListStagesRequest, Stage, StatusState,
};
use tonic::Code;

use crate::helpers::{admin, assert_error, assert_status, spawn_app, writer};

fn create(name: &str) -> CreatePipelineRequest {
    CreatePipelineRequest {
        name: name.into(),
        description: String::new(),
    }
}

#[tokio::test]
async fn create_returns_the_stored_pipeline() {
    let app = spawn_app().await;
    let created = app
        .pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: "the web shop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "shop");
    assert_eq!(created.description, "the web shop");
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert!(created.created_at.is_some());
    assert_eq!(created.created_at, created.updated_at);

    let fetched = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn names_that_break_the_pattern_are_invalid_argument() {
    let app = spawn_app().await;
    for bad in [
        "",
        "ab",
        "Shop",
        "1shop",
        "-shop",
        "shop_web",
        "shop web",
        &"a".repeat(31),
    ] {
        let result = app.pipelines.clone().create_pipeline(create(bad)).await;
        assert_status(result, Code::InvalidArgument, &["name"]);
    }
    let listed = app
        .pipelines
        .clone()
        .list_pipelines(ListPipelinesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.pipelines.is_empty(), "nothing is stored");
}

#[tokio::test]
async fn thirty_character_names_are_accepted() {
    let app = spawn_app().await;
    let name = format!("a{}", "b-9".repeat(9) + "zz");
    assert_eq!(name.len(), 30);
    assert_eq!(app.create_pipeline(&name).await.name, name);
}

#[tokio::test]
async fn an_overlong_description_is_invalid_argument() {
    let app = spawn_app().await;
    let result = app
        .pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: "d".repeat(1001),
        })
        .await;
    assert_status(result, Code::InvalidArgument, &["description"]);
}

#[tokio::test]
async fn a_taken_name_is_already_exists() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    let result = app.pipelines.clone().create_pipeline(create("shop")).await;
    assert_status(result, Code::AlreadyExists, &["shop"]);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_yield_exactly_one_pipeline() {
    let app = spawn_app().await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.pipelines.clone();
            tokio::spawn(async move { client.create_pipeline(create("race")).await })
        })
        .collect();
    let mut created = 0;
    let mut already_exists = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) if status.code() == Code::AlreadyExists => already_exists += 1,
            Err(status) => panic!("unexpected error: {status:?}"),
        }
    }
    assert_eq!((created, already_exists), (1, 7));
    let listed = app
        .pipelines
        .clone()
        .list_pipelines(ListPipelinesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.pipelines.len(), 1);
}

#[tokio::test]
async fn get_accepts_id_or_name_and_reports_unknown_ones() {
    let app = spawn_app().await;
    let created = app.create_pipeline("shop").await;
    for reference in [created.id.clone(), "shop".to_owned()] {
        let fetched = app
            .pipelines
            .clone()
            .get_pipeline(GetPipelineRequest {
                pipeline: reference,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fetched.id, created.id);
    }
    let unknown_id = uuid::Uuid::new_v4().to_string();
    for missing in ["nope", unknown_id.as_str()] {
        let result = app
            .pipelines
            .clone()
            .get_pipeline(GetPipelineRequest {
                pipeline: missing.into(),
            })
            .await;
        assert_status(result, Code::NotFound, &["pipeline", missing]);
    }
    let result = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: String::new(),
        })
        .await;
    assert_status(result, Code::InvalidArgument, &["pipeline", "required"]);
}

#[tokio::test]
async fn list_is_sorted_by_name() {
    let app = spawn_app().await;
    for name in ["web", "api", "jobs"] {
        app.create_pipeline(name).await;
    }
    let names: Vec<String> = app
        .pipelines
        .clone()
        .list_pipelines(ListPipelinesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .pipelines
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["api", "jobs", "web"]);
}

#[tokio::test]
async fn delete_removes_the_couplings_and_frees_the_name() {
    let app = spawn_app().await;
    let pipeline = app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;

    let deleted = app
        .pipelines
        .clone()
        .delete_pipeline(DeletePipelineRequest {
            pipeline: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.id, pipeline.id);

    let result = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: pipeline.id.clone(),
        })
        .await;
    assert_status(result, Code::NotFound, &["pipeline"]);
    let result = app
        .pipelines
        .clone()
        .delete_pipeline(DeletePipelineRequest {
            pipeline: pipeline.id.clone(),
        })
        .await;
    assert_status(result, Code::NotFound, &["pipeline"]);

    // The app left with its pipeline, so it can be coupled again, and the name is free.
    let again = app.create_pipeline("shop").await;
    assert_ne!(again.id, pipeline.id);
    let couplings = app
        .couplings
        .clone()
        .list_pipeline_couplings(ListPipelineCouplingsRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(couplings.couplings.is_empty());
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
}

#[tokio::test]
async fn deleting_a_pipeline_needs_elevated_access() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    let services = app.services().await;
    assert_error(
        services.pipelines.delete("shop", &writer()).await,
        Code::PermissionDenied,
        &["elevated"],
    );
    assert!(services.pipelines.get("shop").await.is_ok(), "still there");
    // These services hold a second connection to the server's SQLite file: a write of the
    // server's own (numbering the pipeline's events) may end this one's snapshot first,
    // which is UNAVAILABLE, and retried as clients retry it.
    let mut deleted = services.pipelines.delete("shop", &admin()).await;
    for _ in 0..3 {
        if !matches!(deleted, Err(pipelines::error::Error::Unavailable(_))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        deleted = services.pipelines.delete("shop", &admin()).await;
    }
    assert!(deleted.is_ok(), "{deleted:?}");
}

#[tokio::test]
async fn the_stage_graph_runs_review_to_production() {
    let app = spawn_app().await;
    let stages = app
        .pipelines
        .clone()
        .list_stages(ListStagesRequest {})
        .await
        .unwrap()
        .into_inner()
        .stages;
    let edges: Vec<(i32, Option<i32>)> = stages.iter().map(|s| (s.stage, s.next)).collect();
    assert_eq!(
        edges,
        vec![
            (Stage::Review as i32, Some(Stage::Development as i32)),
            (Stage::Development as i32, Some(Stage::Staging as i32)),
            (Stage::Staging as i32, Some(Stage::Production as i32)),
            (Stage::Production as i32, None),
        ]
    );
}

#[tokio::test]
async fn statuses_are_the_distinct_sorted_contexts_of_coupled_apps() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    for name in ["shop-dev", "shop-stg", "other-app"] {
        app.create_app(name).await;
    }
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    let post =
        |app_name: &'static str, release_id: String, context: &'static str, name: &'static str| {
            let mut client = app.releases.clone();
            async move {
                client
                    .create_release_status(CreateReleaseStatusRequest {
                        app: app_name.into(),
                        release_id,
                        context: context.into(),
                        name: name.into(),
                        state: StatusState::Success as i32,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
        };
    let dev1 = app.create_release("shop-dev", "shop:1").await;
    let dev2 = app.create_release("shop-dev", "shop:2").await;
    let stg = app.create_release("shop-stg", "shop:1").await;
    let other = app.create_release("other-app", "other:1").await;
    post("shop-dev", dev1.id.clone(), "ci/unit", "Unit tests").await;
    post("shop-dev", dev2.id.clone(), "ci/unit", "Unit tests").await;
    post("shop-dev", dev2.id.clone(), "ci/e2e", "End to end").await;
    post("shop-stg", stg.id.clone(), "ci/unit", "Unit").await;
    post("other-app", other.id.clone(), "ci/other", "Not coupled").await;

    let statuses = app
        .pipelines
        .clone()
        .list_pipeline_statuses(ListPipelineStatusesRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .statuses;
    let pairs: Vec<(String, String)> = statuses.into_iter().map(|s| (s.context, s.name)).collect();
    assert_eq!(
        pairs,
        vec![
            ("ci/e2e".to_owned(), "End to end".to_owned()),
            ("ci/unit".to_owned(), "Unit".to_owned()),
            ("ci/unit".to_owned(), "Unit tests".to_owned()),
        ]
    );

    let result = app
        .pipelines
        .clone()
        .list_pipeline_statuses(ListPipelineStatusesRequest {
            pipeline: "missing".into(),
            ..Default::default()
        })
        .await;
    assert_status(result, Code::NotFound, &["missing"]);
}

#[tokio::test]
async fn a_nul_character_names_nothing_over_grpc() {
    let app = spawn_app().await;
    let result = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: "a\0b".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["pipeline"]);
    let result = app
        .pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: "\0".into(),
        })
        .await;
    assert_status(result, Code::InvalidArgument, &["description", "NUL"]);
}
