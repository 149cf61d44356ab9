//! Freezes over gRPC: CreateFreeze, ListFreezes and DeleteFreeze, the coupling's `frozen`,
//! and CreatePromotion refused with the `pipelines.v1.Frozen` detail.

use pipelines::proto::{
    CreateFreezeRequest, CreatePromotionRequest, DeleteFreezeRequest, GetAppCouplingRequest,
    ListFreezesRequest, Stage,
};
use prost::Message;
use tonic::Code;

use super::shop_with_tokens;
use crate::{
    helpers::{spawn_app, with_token},
    policies::release,
};

fn in_an_hour() -> prost_types::Timestamp {
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

#[tokio::test]
async fn freezes_over_grpc_stop_promotions_with_the_frozen_detail() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;
    let mut pipelines = app.pipelines.clone();

    let refused = pipelines
        .create_freeze(with_token(
            CreateFreezeRequest {
                pipeline: "shop".into(),
                stages: vec![Stage::Unspecified as i32],
                reason: "incident".into(),
                ends_at: Some(in_an_hour()),
                ..Default::default()
            },
            &tokens.alice,
        ))
        .await
        .expect_err("an unspecified stage");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("stages[0]"),
        "{}",
        refused.message()
    );

    let refused = pipelines
        .create_freeze(with_token(
            CreateFreezeRequest {
                pipeline: "shop".into(),
                stages: vec![Stage::Production as i32],
                reason: "incident".into(),
                freeze_start: "0 18 * * 5".into(),
                freeze_end: "0 8 * * 1".into(),
                cron_timezone: "Europe/Nowhere".into(),
                ..Default::default()
            },
            &tokens.alice,
        ))
        .await
        .expect_err("an unknown zone");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("cron_timezone"),
        "{}",
        refused.message()
    );

    let made = pipelines
        .create_freeze(with_token(
            CreateFreezeRequest {
                pipeline: "shop".into(),
                stages: vec![Stage::Production as i32],
                reason: "incident".into(),
                ends_at: Some(in_an_hour()),
                ..Default::default()
            },
            &tokens.alice,
        ))
        .await
        .expect("a freeze")
        .into_inner();
    assert!(made.active);
    assert_eq!(made.stages, vec![Stage::Production as i32]);
    assert_eq!(made.created_by, "alice");
    assert!(made.current.is_some() && made.next.is_none());

    let listed = pipelines
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

    let refused = app
        .promotions
        .clone()
        .create_promotion(with_token(
            CreatePromotionRequest {
                pipeline: "shop".into(),
                source_app: "shop-stg".into(),
                ..Default::default()
            },
            &tokens.alice,
        ))
        .await
        .expect_err("frozen");
    assert_eq!(refused.code(), Code::FailedPrecondition);
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

    let broke = app
        .promotions
        .clone()
        .create_promotion(with_token(
            CreatePromotionRequest {
                pipeline: "shop".into(),
                source_app: "shop-stg".into(),
                safe: Some(false),
                ..Default::default()
            },
            &tokens.ops,
        ))
        .await
        .expect("an admin breaks glass")
        .into_inner();
    let Some(pipelines::proto::create_promotion_response::Result::Promotion(broke)) = broke.result
    else {
        panic!("a promotion");
    };
    assert_eq!(broke.overridden_freezes.len(), 1);
    assert_eq!(broke.overridden_freezes[0].freeze_id, made.id);
    assert_eq!(broke.overridden_freezes[0].reason, "incident");

    let refused = pipelines
        .delete_freeze(with_token(
            DeleteFreezeRequest {
                pipeline: "shop".into(),
                freeze_id: made.id.clone(),
            },
            &tokens.alice,
        ))
        .await
        .expect_err("write cannot lift");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let lifted = pipelines
        .delete_freeze(with_token(
            DeleteFreezeRequest {
                pipeline: "shop".into(),
                freeze_id: made.id.clone(),
            },
            &tokens.ops,
        ))
        .await
        .expect("an admin lifts it")
        .into_inner();
    assert!(!lifted.active);
    assert_eq!(lifted.lifted_by, "ops");
    assert!(lifted.lifted_at.is_some());
    let accepted = app
        .promotions
        .clone()
        .create_promotion(with_token(
            CreatePromotionRequest {
                pipeline: "shop".into(),
                source_app: "shop-stg".into(),
                ..Default::default()
            },
            &tokens.alice,
        ))
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");
}
