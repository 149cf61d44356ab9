//! The catalog's indexes as loads and reloads change them, without a database.

use super::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    crate::store::now()
}

fn pipeline(name: &str) -> PipelineView {
    PipelineView {
        id: Uuid::new_v4(),
        name: name.into(),
        description: String::new(),
        created_at: now(),
        updated_at: now(),
    }
}

fn app(name: &str, pipeline: Option<Uuid>, contexts: &[(&str, &str)]) -> AppEntry {
    AppEntry {
        app: AppView {
            id: Uuid::new_v4(),
            name: name.into(),
            created_at: now(),
            updated_at: now(),
        },
        coupling: pipeline.map(|pipeline_id| CouplingRow {
            id: Uuid::new_v4(),
            pipeline_id,
            stage: Stage::Staging,
            required_contexts: vec![],
            policy: Default::default(),
            verification: None,
            created_at: now(),
            updated_at: now(),
        }),
        current_release: None,
        status_contexts: contexts
            .iter()
            .map(|(c, n)| (Arc::from(*c), Arc::from(*n)))
            .collect(),
    }
}

#[test]
fn couplings_and_statuses_follow_the_apps_of_a_pipeline() {
    let shop = pipeline("shop");
    let stg = app("shop-stg", Some(shop.id), &[("ci/test", "Tests")]);
    let prd = app("shop-prd", Some(shop.id), &[("ci/lint", "Lint")]);
    let loose = app("loose", None, &[("ci/other", "Other")]);
    let catalog = Catalog::from_loaded(Loaded {
        freezes: Vec::new(),
        pipelines: vec![shop.clone()],
        apps: vec![stg.clone(), prd.clone(), loose.clone()],
    });
    assert_eq!(catalog.couplings_of_pipeline(shop.id).len(), 2);
    let contexts: Vec<String> = catalog
        .status_contexts(shop.id)
        .into_iter()
        .map(|c| c.context)
        .collect();
    assert_eq!(contexts, ["ci/lint", "ci/test"]);
    assert_eq!(catalog.pipeline("shop").map(|p| p.id), Some(shop.id));
    assert_eq!(
        catalog.pipeline(&shop.id.to_string()).map(|p| p.id),
        Some(shop.id)
    );
    assert!(catalog
        .coupling_of_app("loose")
        .is_some_and(|(_, c)| c.is_none()));
}

#[test]
fn applying_a_load_removes_what_was_not_found() {
    let shop = pipeline("shop");
    let stg = app("shop-stg", Some(shop.id), &[]);
    let mut catalog = Catalog::from_loaded(Loaded {
        freezes: Vec::new(),
        pipelines: vec![shop.clone()],
        apps: vec![stg.clone()],
    });
    let coupling_id = stg.coupling.as_ref().unwrap().id;
    // The pipeline was deleted: its couplings went with it.
    catalog.apply(&[shop.id], &[], Loaded::default());
    assert!(catalog.pipeline("shop").is_none());
    assert!(catalog.coupling(coupling_id).is_none());
    assert!(catalog.app("shop-stg").is_some());
    assert_eq!(catalog.coupling_count(), 0);
    // The app was deleted; its name is free.
    catalog.apply(&[], &[stg.app.id], Loaded::default());
    assert!(catalog.app("shop-stg").is_none());
    assert_eq!(catalog.app_count(), 0);
}

#[test]
fn a_reloaded_app_moves_between_pipelines() {
    let first = pipeline("first");
    let second = pipeline("second");
    let moving = app("moving", Some(first.id), &[]);
    let mut catalog = Catalog::from_loaded(Loaded {
        freezes: Vec::new(),
        pipelines: vec![first.clone(), second.clone()],
        apps: vec![moving.clone()],
    });
    let mut moved = moving.clone();
    moved.coupling = Some(CouplingRow {
        pipeline_id: second.id,
        ..moving.coupling.clone().unwrap()
    });
    catalog.apply(
        &[],
        &[moving.app.id],
        Loaded {
            freezes: Vec::new(),
            pipelines: vec![],
            apps: vec![moved],
        },
    );
    assert!(catalog.couplings_of_pipeline(first.id).is_empty());
    assert_eq!(catalog.couplings_of_pipeline(second.id).len(), 1);
}
