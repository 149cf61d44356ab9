//! The batch's in-memory moves, checked without a database.

use super::*;

fn batch_of_one_pending_target() -> (TargetBatch, promotion_target::Model, ResourceRef) {
    let now = store::now();
    let promotion = promotion::Model {
        id: Uuid::new_v4(),
        pipeline_id: Uuid::new_v4(),
        source_app_id: Uuid::new_v4(),
        source_release_id: Uuid::new_v4(),
        status: PromotionStatus::Pending.as_str().to_owned(),
        safe: false,
        created_by: "ops".to_owned(),
        overridden_checks: "[]".to_owned(),
        request_id: None,
        request_fingerprint: None,
        event_count: 1,
        created_at: now,
        updated_at: now,
        finished_at: None,
        cancel_requested_at: None,
        required_approvals: 0,
        triggered_by: None,
        overridden_freezes: "[]".to_owned(),
        created_by_id: None,
        created_by_email: Some("ops".to_owned()),
    };
    let app = ResourceRef {
        id: Uuid::new_v4(),
        name: "shop-stg".to_owned(),
    };
    let target = promotion_target::Model {
        id: Uuid::new_v4(),
        promotion_id: promotion.id,
        app_id: app.id,
        position: 0,
        status: TargetStatus::Pending.as_str().to_owned(),
        release_id: None,
        error_message: String::new(),
        queued_behind: None,
        lease_owner: Some("worker".to_owned()),
        lease_expires_at: None,
        attempts: 1,
        app_deleted: false,
        queued_at: Some(now),
        verification: None,
        verification_state: None,
        verification_deadline: None,
        verification_results: None,
        rollback_release_id: None,
        freeze_exempt: false,
        waiting_for_freeze: None,
        created_at: now,
        updated_at: now,
    };
    let batch = TargetBatch {
        subject: Subject {
            promotion_id: promotion.id,
            pipeline: ResourceRef {
                id: promotion.pipeline_id,
                name: "shop".to_owned(),
            },
            source_app: ResourceRef {
                id: promotion.source_app_id,
                name: "shop-dev".to_owned(),
            },
            source_release: crate::lifecycle::SourceRelease {
                id: promotion.source_release_id,
                version: 3,
                image: "shop:3".to_owned(),
            },
            author: crate::domain::access::Author::stored(None, Some("ops".to_owned())),
        },
        worker: "worker".to_owned(),
        promotion,
        targets: vec![target.clone()],
        apps: [(app.id, app.clone())].into_iter().collect(),
        claimed: vec![target.id],
        live_apps: [app.id].into_iter().collect(),
        verifications: HashMap::new(),
        feeding_auto_promotion: Some(HashSet::new()),
        unwritten: Unwritten::default(),
    };
    (batch, target, app)
}

#[test]
fn a_move_the_table_does_not_hold_is_refused() {
    let (mut batch, target, _) = batch_of_one_pending_target();
    let refused = batch.move_target(target.id, TargetStatus::Succeeded, None, None);
    assert!(refused.is_err());
    assert!(batch.unwritten.moves.is_empty());
    assert!(batch
        .move_promotion(PromotionStatus::Successful, true)
        .is_err());
}

/// A start and an outcome in one batch are written as one move per target, from the
/// state it was read in, with its release stored once in its final state, and with
/// every event of both steps.
#[test]
fn a_start_and_an_outcome_in_one_batch_write_one_move() {
    let (mut batch, target, app) = batch_of_one_pending_target();
    batch
        .move_promotion(PromotionStatus::Running, false)
        .unwrap();
    batch
        .move_target(target.id, TargetStatus::Running, None, None)
        .unwrap();
    let news = [batch.subject.new_release(&app, &target)];
    let newest = [(app.id, 7)].into_iter().collect();
    let release = number_releases(news.iter(), &newest).remove(0);
    assert_eq!(release.version, 8);
    let running = batch.targets[0].clone();
    batch.link_new_release(&running, &app, &release).unwrap();
    let run = Run {
        target: running,
        app,
        release: release.clone(),
    };
    let recorded = batch
        .record_outcomes(vec![(run, DeployOutcome::Deployed)])
        .unwrap();
    assert_eq!(recorded, [OutcomeRecorded::Recorded]);

    let unwritten = &batch.unwritten;
    assert_eq!(unwritten.moves.len(), 1);
    let only = &unwritten.moves[0];
    assert_eq!(
        (only.from, only.to, only.link_release),
        (
            TargetStatus::Pending,
            TargetStatus::Succeeded,
            Some(release.id)
        )
    );
    assert_eq!(unwritten.new_releases.len(), 1);
    assert_eq!(unwritten.new_releases[0].status, "succeeded");
    assert!(unwritten.release_states.is_empty());
    let change = unwritten.promotion.expect("the promotion ends");
    assert_eq!(change.status, PromotionStatus::Successful);
    assert!(change.finished);
    let kinds: Vec<EventKind> = unwritten.events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::TargetReleaseCreated,
            EventKind::TargetSucceeded,
            EventKind::PromotionFinished
        ]
    );
}

/// An outcome that arrives after the target was canceled, or after another worker took
/// it, is not recorded, and says which.
#[test]
fn an_outcome_for_a_target_canceled_or_taken_meanwhile_says_which() {
    for (status, owner, expected) in [
        (
            TargetStatus::Canceled,
            Some("worker"),
            OutcomeRecorded::Canceled,
        ),
        (
            TargetStatus::Running,
            Some("another"),
            OutcomeRecorded::TakenOver,
        ),
        (TargetStatus::Running, None, OutcomeRecorded::TakenOver),
    ] {
        let (mut batch, target, app) = batch_of_one_pending_target();
        let news = [batch.subject.new_release(&app, &target)];
        let release = number_releases(news.iter(), &HashMap::new()).remove(0);
        batch.targets[0].status = status.as_str().to_owned();
        batch.targets[0].lease_owner = owner.map(str::to_owned);
        batch.targets[0].release_id = Some(release.id);
        let run = Run {
            target: batch.targets[0].clone(),
            app,
            release,
        };
        let recorded = batch
            .record_outcomes(vec![(run, DeployOutcome::Deployed)])
            .unwrap();
        assert_eq!(recorded, [expected], "{status:?} held by {owner:?}");
        assert!(batch.unwritten.moves.is_empty());
    }
}
