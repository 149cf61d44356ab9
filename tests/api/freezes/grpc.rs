//! Freezes over gRPC: CreateFreeze, ListFreezes and DeleteFreeze, the coupling's `frozen`,
//! and CreatePromotion refused with the `pipelines.v1.Frozen` detail, for a promotion and a
//! dry run alike, unless an admin breaks glass.

use pipelines::proto::{
    create_promotion_response::Result as Created, CreateFreezeRequest, CreatePromotionRequest,
    DeleteFreezeRequest, Freeze, GetAppCouplingRequest, ListFreezesRequest, Stage,
};
use prost::Message;
use tonic::{Code, Status};

use super::shop_with_tokens;
use crate::{
    helpers::{spawn_app, with_token, TestApp},
    policies::release,
};

fn in_an_hour() -> prost_types::Timestamp {
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

/// A one-off freeze of production for an hour, changed by `change`.
fn production_for_an_hour(change: impl FnOnce(&mut CreateFreezeRequest)) -> CreateFreezeRequest {
    let mut request = CreateFreezeRequest {
        pipeline: "shop".into(),
        stages: vec![Stage::Production as i32],
        reason: "incident".into(),
        ends_at: Some(in_an_hour()),
        ..Default::default()
    };
    change(&mut request);
    request
}

async fn create_freeze(
    app: &TestApp,
    request: CreateFreezeRequest,
    token: &str,
) -> Result<Freeze, Status> {
    app.pipelines
        .clone()
        .create_freeze(with_token(request, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_freeze(app: &TestApp, id: &str, token: &str) -> Result<Freeze, Status> {
    app.pipelines
        .clone()
        .delete_freeze(with_token(
            DeleteFreezeRequest {
                pipeline: "shop".into(),
                freeze_id: id.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Promotes shop-stg to production, with `safe` and `dry_run` as given.
async fn promote(
    app: &TestApp,
    safe: Option<bool>,
    dry_run: bool,
    token: &str,
) -> Result<Created, Status> {
    app.promotions
        .clone()
        .create_promotion(with_token(
            CreatePromotionRequest {
                pipeline: "shop".into(),
                source_app: "shop-stg".into(),
                safe,
                dry_run,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|answer| answer.into_inner().result.expect("a promotion or a plan"))
}

#[tokio::test]
async fn freezes_over_grpc_stop_promotions_with_the_frozen_detail() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;

    let far_future = prost_types::Timestamp {
        seconds: 1_000_000_000_000,
        nanos: 0,
    };
    let bad_nanos = prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    };
    let refusals = [
        (
            production_for_an_hour(|r| r.stages = vec![Stage::Unspecified as i32]),
            "stages[0]",
        ),
        (
            production_for_an_hour(|r| {
                r.ends_at = None;
                r.freeze_start = "0 18 * * 5".into();
                r.freeze_end = "0 8 * * 1".into();
                r.cron_timezone = "Europe/Nowhere".into();
            }),
            "cron_timezone",
        ),
        (
            production_for_an_hour(|r| r.ends_at = Some(far_future)),
            "ends_at",
        ),
        (
            production_for_an_hour(|r| r.starts_at = Some(bad_nanos)),
            "starts_at",
        ),
        (production_for_an_hour(|r| r.reason.clear()), "reason"),
    ];
    for (request, field) in refusals {
        let refused = create_freeze(&app, request.clone(), &tokens.alice)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{request:?}");
        assert!(refused.message().contains(field), "{}", refused.message());
    }

    let made = create_freeze(&app, production_for_an_hour(|_| {}), &tokens.alice)
        .await
        .expect("a freeze");
    assert!(made.active);
    assert_eq!(made.stages, vec![Stage::Production as i32]);
    assert_eq!(made.created_by, "alice");
    assert!(made.current.is_some() && made.next.is_none());

    let listed = app
        .pipelines
        .clone()
        .list_freezes(with_token(
            ListFreezesRequest {
                pipeline: "shop".into(),
                ..Default::default()
            },
            &tokens.reader,
        ))
        .await
        .expect("the freezes")
        .into_inner();
    assert_eq!(listed.freezes.len(), 1);
    assert_eq!(listed.freezes[0].id, made.id);

    let coupling = app
        .couplings
        .clone()
        .get_app_coupling(with_token(
            GetAppCouplingRequest {
                app: "shop-prod".into(),
            },
            &tokens.reader,
        ))
        .await
        .expect("the coupling")
        .into_inner();
    let frozen = coupling.frozen.expect("the coupling shows the freeze");
    assert_eq!(frozen.freeze_id, made.id);
    assert_eq!(frozen.reason, "incident");
    assert_eq!(frozen.stage, Stage::Production as i32);

    // A promotion and a dry run are refused alike, with the detail.
    for dry_run in [false, true] {
        let refused = promote(&app, None, dry_run, &tokens.alice)
            .await
            .expect_err("frozen");
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "dry run: {dry_run}"
        );
        let status = tonic_types::pb::Status::decode(refused.details()).expect("google.rpc.Status");
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/pipelines.v1.Frozen"
        );
        let detail = pipelines::proto::Frozen::decode(status.details[0].value.as_slice())
            .expect("pipelines.v1.Frozen");
        assert_eq!(detail.freeze_id, made.id);
        assert_eq!(detail.stage, Stage::Production as i32);
        assert_eq!(detail.reason, "incident");
        assert_eq!(detail.until, made.current.as_ref().and_then(|w| w.ends_at));
    }

    // Breaking glass needs elevated access.
    let denied = promote(&app, Some(false), false, &tokens.alice)
        .await
        .expect_err("write cannot break glass");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let Created::Plan(plan) = promote(&app, Some(false), true, &tokens.ops)
        .await
        .expect("an admin's dry run")
    else {
        panic!("a plan, not a promotion");
    };
    assert_eq!(plan.overridden_freezes.len(), 1);
    assert_eq!(plan.overridden_freezes[0].freeze_id, made.id);
    let Created::Promotion(broke) = promote(&app, Some(false), false, &tokens.ops)
        .await
        .expect("an admin breaks glass")
    else {
        panic!("a promotion, not a plan");
    };
    assert_eq!(broke.overridden_freezes.len(), 1);
    assert_eq!(broke.overridden_freezes[0].freeze_id, made.id);
    assert_eq!(broke.overridden_freezes[0].reason, "incident");

    let refused = delete_freeze(&app, &made.id, &tokens.alice)
        .await
        .expect_err("write cannot lift");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let lifted = delete_freeze(&app, &made.id, &tokens.ops)
        .await
        .expect("an admin lifts it");
    assert!(!lifted.active);
    assert_eq!(lifted.lifted_by, "ops");
    assert!(lifted.lifted_at.is_some());
    let again = delete_freeze(&app, &made.id, &tokens.ops)
        .await
        .expect_err("lifted already");
    assert_eq!(again.code(), Code::NotFound);
    let accepted = promote(&app, None, false, &tokens.alice).await;
    assert!(accepted.is_ok(), "{accepted:?}");
}
