//! Assembles the server: database, migrations, the gRPC services with health and
//! reflection, and the listener they share.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{extract::Request, middleware::Next, response::Response};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic_health::{server::HealthReporter, ServingStatus};

use crate::{
    config::Settings,
    domain::access::{Caller, Role},
    grpc::{AppGrpc, CouplingGrpc, PipelineGrpc, ReleaseGrpc},
    proto::{
        app_service_server::AppServiceServer, coupling_service_server::CouplingServiceServer,
        pipeline_service_server::PipelineServiceServer,
        release_service_server::ReleaseServiceServer,
    },
    service::Services,
    store,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(sea_orm::DbErr),
    #[error("cannot apply migrations: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
}

/// Every gRPC service whose health is reported, by its fully qualified name.
const SERVICE_NAMES: [&str; 5] = [
    "",
    <PipelineServiceServer<PipelineGrpc> as NamedService>::NAME,
    <CouplingServiceServer<CouplingGrpc> as NamedService>::NAME,
    <AppServiceServer<AppGrpc> as NamedService>::NAME,
    <ReleaseServiceServer<ReleaseGrpc> as NamedService>::NAME,
];

/// A built server, bound to its listener but not yet serving.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    db: DatabaseConnection,
    health: HealthReporter,
    health_check_interval: Duration,
}

impl Application {
    /// Opens and migrates the database, binds the listener and assembles the services.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db = store::connect(&settings.database_url)
            .await
            .map_err(StartupError::Database)?;
        store::migrate(&db).await.map_err(StartupError::Migration)?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    address: settings.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: settings.listen,
                source,
            })?;

        let services = Services::new(db.clone());
        let (health, health_service) = tonic_health::server::health_reporter();
        // The database just answered the migrations, so every service starts SERVING; the
        // monitor takes over from here.
        for name in SERVICE_NAMES {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection()
            .build_v1()
            .map_err(|error| StartupError::Reflection(error.to_string()))?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(|error| StartupError::Reflection(error.to_string()))?;

        let grpc = tonic::service::Routes::new(PipelineServiceServer::new(PipelineGrpc::new(
            services.clone(),
        )))
        .add_service(CouplingServiceServer::new(CouplingGrpc::new(
            services.clone(),
        )))
        .add_service(AppServiceServer::new(AppGrpc::new(services.clone())))
        .add_service(ReleaseServiceServer::new(ReleaseGrpc::new(services)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare()
        .into_axum_router();

        let router = grpc
            .layer(axum::middleware::from_fn(attach_caller))
            .layer(axum::middleware::from_fn(log_request));

        Ok(Self {
            listener,
            local_addr,
            router,
            db,
            health,
            health_check_interval: settings.health_check_interval,
        })
    }

    /// The address the server is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr, "pipelines server listening");
        let monitor = tokio::spawn(monitor_database(
            self.db.clone(),
            self.health.clone(),
            self.health_check_interval,
        ));
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        monitor.abort();
        self.db.close_by_ref().await.ok();
        tracing::info!("pipelines server stopped");
        served
    }
}

/// Reports every service SERVING while the database answers and NOT_SERVING while it does
/// not, checking on a fixed interval.
async fn monitor_database(db: DatabaseConnection, health: HealthReporter, interval: Duration) {
    let mut last = Some(true);
    loop {
        tokio::time::sleep(interval).await;
        let reachable = tokio::time::timeout(
            interval.max(Duration::from_secs(1)),
            store::is_reachable(&db),
        )
        .await
        .unwrap_or(false);
        if last != Some(reachable) {
            let status = if reachable {
                tracing::info!("database reachable; serving");
                ServingStatus::Serving
            } else {
                tracing::warn!("database unreachable; reporting NOT_SERVING");
                ServingStatus::NotServing
            };
            for name in SERVICE_NAMES {
                health.set_service_status(name, status).await;
            }
            last = Some(reachable);
        }
    }
}

/// Attaches the caller to each request. Without configured tokens the server runs in
/// protected mode on loopback, where every call acts with admin rights.
async fn attach_caller(mut request: Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(Caller::new("local", Role::Admin));
    next.run(request).await
}

/// One structured log line per request, with its outcome and latency.
async fn log_request(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        grpc_status = grpc_status.as_deref().unwrap_or(""),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received; shutting down"),
        _ = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
