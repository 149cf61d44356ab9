//! The gRPC services, with health and reflection, as routes beside the REST gateway's.

use tonic::server::NamedService;

use super::StartupError;
use crate::{
    grpc::{
        AccountGrpc, AppGrpc, AuditGrpc, CouplingGrpc, PipelineGrpc, PromotionGrpc, ReleaseGrpc,
    },
    proto::{
        account_service_server::AccountServiceServer, app_service_server::AppServiceServer,
        audit_service_server::AuditServiceServer, coupling_service_server::CouplingServiceServer,
        pipeline_service_server::PipelineServiceServer,
        promotion_service_server::PromotionServiceServer,
        release_service_server::ReleaseServiceServer,
    },
    service::Services,
};

/// Every gRPC service whose health is reported, by its fully qualified name.
pub(super) const SERVICE_NAMES: [&str; 8] = [
    "",
    <PipelineServiceServer<PipelineGrpc> as NamedService>::NAME,
    <CouplingServiceServer<CouplingGrpc> as NamedService>::NAME,
    <AppServiceServer<AppGrpc> as NamedService>::NAME,
    <ReleaseServiceServer<ReleaseGrpc> as NamedService>::NAME,
    <PromotionServiceServer<PromotionGrpc> as NamedService>::NAME,
    <AuditServiceServer<AuditGrpc> as NamedService>::NAME,
    <AccountServiceServer<AccountGrpc> as NamedService>::NAME,
];

/// The gRPC services, health and reflection, as routes beside REST's.
pub(super) fn grpc_routes(
    services: &Services,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<axum::Router, StartupError> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|error| StartupError::Reflection(error.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|error| StartupError::Reflection(error.to_string()))?;

    Ok(
        tonic::service::Routes::new(PipelineServiceServer::new(PipelineGrpc::new(
            services.clone(),
        )))
        .add_service(CouplingServiceServer::new(CouplingGrpc::new(
            services.clone(),
        )))
        .add_service(AppServiceServer::new(AppGrpc::new(services.clone())))
        .add_service(ReleaseServiceServer::new(ReleaseGrpc::new(
            services.clone(),
        )))
        .add_service(PromotionServiceServer::new(PromotionGrpc::new(
            services.clone(),
        )))
        .add_service(AuditServiceServer::new(AuditGrpc::new(services.clone())))
        .add_service(AccountServiceServer::new(AccountGrpc))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare()
        .into_axum_router(),
    )
}
