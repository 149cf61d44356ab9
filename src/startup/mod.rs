//! Assembles the server: database, migrations, the gRPC services with health and
//! reflection, the REST gateway, authentication and TLS, all on one listener.

mod grpc;
mod middleware;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic_health::{server::HealthReporter, ServingStatus};

use self::grpc::{grpc_routes, SERVICE_NAMES};
use crate::{
    auth::{Authenticator, Tokens},
    config::Settings,
    deploy::{Deployer, LocalDeployer, WebhookDeployer},
    engine::Engine,
    progress::EventHub,
    read_model::ReadModel,
    rest::{self},
    service::Services,
    store, tls,
};

/// How long in-flight requests may run after a shutdown signal before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// HTTP/2 streams one connection may have open at once (each watch holds one).
const MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// How long a client may take to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {}", store::describe(.0))]
    Database(sea_orm::DbErr),
    #[error("cannot apply migrations: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot read the token table: {0}")]
    Tokens(crate::error::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("deployer: {0}")]
    Deployer(String),
    #[error(
        "refusing to listen on {0} without API tokens: anyone who can reach it would have admin \
         rights. Create a token first (`pipelines tokens create --name NAME --role admin`), \
         listen on a loopback address, or pass --insecure to accept the risk"
    )]
    Unprotected(SocketAddr),
}

/// A built server, bound to its listener but not yet serving.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    db: DatabaseConnection,
    health: HealthReporter,
    /// What the database monitor last saw; `/healthz` answers from it without waiting.
    database_up: Arc<AtomicBool>,
    health_check_interval: Duration,
    resync_interval: Duration,
    audit_retention: Option<chrono::Duration>,
    hub: Arc<EventHub>,
    services: Services,
    engine: Engine,
}

impl Application {
    /// Opens and migrates the database, binds the listener and assembles the services, with
    /// the embedded local deployer.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let deployer: Arc<dyn Deployer> = match &settings.webhook {
            None => Arc::new(LocalDeployer),
            Some(webhook) => {
                Arc::new(WebhookDeployer::new(webhook.clone()).map_err(StartupError::Deployer)?)
            }
        };
        Self::build_with_deployer(settings, deployer).await
    }

    /// Like [`Application::build`], with the given deployer.
    pub async fn build_with_deployer(
        settings: Settings,
        deployer: Arc<dyn Deployer>,
    ) -> Result<Self, StartupError> {
        let db = store::connect(&settings.database_url)
            .await
            .map_err(StartupError::Database)?;
        store::migrate(&db).await.map_err(StartupError::Migration)?;

        let authenticator = protection(&db, &settings).await?;

        let tls = settings
            .tls
            .as_ref()
            .map(tls::acceptor)
            .transpose()
            .map_err(StartupError::Tls)?;

        let (listener, local_addr) = bind(settings.listen).await?;

        crate::metrics::handle();
        // Loaded in the background once serving starts; reads go to the database meanwhile.
        let read_model = ReadModel::new(db.clone());
        let hub = EventHub::new(Arc::clone(&read_model));
        let services = Services::new(
            db.clone(),
            Arc::clone(&hub),
            settings.engine.verification_hosts.clone(),
        );
        let pools = store::with_engine_pool(
            &settings.database_url,
            db.clone(),
            settings.engine.max_parallel_targets,
        )
        .await
        .map_err(StartupError::Database)?;
        let engine = Engine::new(
            pools.engine().clone(),
            Arc::clone(&hub),
            deployer,
            settings.engine.clone(),
        );
        let (health, health_service) = tonic_health::server::health_reporter();
        let database_up = Arc::new(AtomicBool::new(true));
        // The database just answered the migrations, so every service starts SERVING; the
        // monitor takes over from here.
        for name in SERVICE_NAMES {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let grpc = grpc_routes(&services, health_service)?;

        let router = grpc
            .merge(rest::router(
                services.clone(),
                Arc::clone(&database_up),
                pools,
            ))
            .fallback(rest::unknown_path)
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(middleware::Gate {
                    authenticator,
                    limiter: crate::rate_limits::RateLimiter::new(settings.rate_limits),
                }),
                middleware::serve_request,
            ));

        Ok(Self {
            listener,
            local_addr,
            router,
            tls,
            db,
            health,
            database_up,
            health_check_interval: settings.health_check_interval,
            resync_interval: settings.resync_interval,
            audit_retention: settings.audit_retention,
            hub,
            services,
            engine,
        })
    }

    /// This process's event fan-out, for observing watchers.
    pub fn event_hub(&self) -> Arc<EventHub> {
        Arc::clone(&self.hub)
    }

    /// The address the server is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets
    /// in-flight requests finish within a grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(
            address = %self.local_addr,
            tls = self.tls.is_some(),
            "pipelines server listening (gRPC and REST)"
        );
        let monitor = tokio::spawn(monitor_database(
            self.db.clone(),
            self.health.clone(),
            Arc::clone(&self.database_up),
            Arc::clone(&self.hub.read_model),
            self.health_check_interval,
        ));
        let (stop_engine, engine_stopped) = tokio::sync::watch::channel(false);
        let relay = (self.db.get_database_backend() == sea_orm::DbBackend::Postgres).then(|| {
            tokio::spawn(crate::progress::relay_between_processes(
                self.db.clone(),
                Arc::clone(&self.hub),
                Duration::from_secs(1),
                engine_stopped.clone(),
            ))
        });
        let resync = tokio::spawn(
            Arc::clone(&self.hub.read_model)
                .keep_in_sync(self.resync_interval, engine_stopped.clone()),
        );
        let audit_retention = self.audit_retention.map(|retention| {
            tokio::spawn(crate::audit::retention::keep_trimmed(
                self.db.clone(),
                retention,
                engine_stopped.clone(),
            ))
        });
        let pipeline_streams = self.services.keep_pipeline_streams(engine_stopped.clone());
        let pipeline_events_trimmed = tokio::spawn(crate::pipeline_events::keep_trimmed(
            self.db.clone(),
            engine_stopped.clone(),
        ));
        let pipeline_events_numbered =
            tokio::spawn(crate::pipeline_events::sequencer::keep_numbering(
                self.db.clone(),
                Arc::clone(&self.hub),
                engine_stopped.clone(),
            ));
        let engine = tokio::spawn(self.engine.run(engine_stopped));
        let hub = Arc::clone(&self.hub);
        let shutdown = async move {
            shutdown.await;
            // Stop claiming new work and end watches; in-flight calls and targets finish.
            stop_engine.send_replace(true);
            hub.close();
        };
        serve(self.listener, self.router, self.tls, shutdown).await;
        if engine.await.is_err() {
            tracing::warn!("the promotion engine ended abnormally");
        }
        if let Some(relay) = relay {
            relay.abort();
        }
        monitor.abort();
        resync.abort();
        pipeline_streams.abort();
        pipeline_events_trimmed.abort();
        pipeline_events_numbered.abort();
        if let Some(audit_retention) = audit_retention {
            audit_retention.abort();
        }
        self.db.close_by_ref().await.ok();
        tracing::info!("pipelines server stopped");
        Ok(())
    }
}

/// Accepts connections (TLS or cleartext, HTTP/1.1 or HTTP/2) until `shutdown`, then
/// drains them.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Watch streams are long-lived: let one client connection carry many of them.
    builder
        .http2()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically out of file descriptors; back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests still running after the grace period; stopping");
        }
    }
}

/// Whether calls without a token are allowed while none exists (protected mode on
/// loopback, or `--insecure`), refusing to start unprotected anywhere else.
async fn protection(
    db: &DatabaseConnection,
    settings: &Settings,
) -> Result<Authenticator, StartupError> {
    let loopback = settings.listen.ip().is_loopback();
    let tokens_exist = Tokens::new(db.clone())
        .any_exist()
        .await
        .map_err(StartupError::Tokens)?;
    if !tokens_exist {
        if !loopback && !settings.insecure {
            return Err(StartupError::Unprotected(settings.listen));
        }
        tracing::warn!(
            "NO API TOKENS EXIST: every call is allowed with admin rights until one is \
                 created with `pipelines tokens create`{}",
            if loopback {
                " (protected mode: loopback only)"
            } else {
                " (--insecure on a non-loopback address)"
            }
        );
    }
    Ok(Authenticator::new(
        db.clone(),
        loopback || settings.insecure,
    ))
}

/// Binds the listener and reports the address it got.
async fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let failed = |source| StartupError::Listen { address, source };
    let listener = TcpListener::bind(address).await.map_err(failed)?;
    let local_addr = listener.local_addr().map_err(failed)?;
    Ok((listener, local_addr))
}

/// Reports every service SERVING while the database answers and NOT_SERVING while it does
/// not, checking on a fixed interval.
async fn monitor_database(
    db: DatabaseConnection,
    health: HealthReporter,
    database_up: Arc<AtomicBool>,
    read_model: Arc<ReadModel>,
    interval: Duration,
) {
    let mut last = true;
    loop {
        tokio::time::sleep(interval).await;
        let reachable = tokio::time::timeout(
            interval.max(Duration::from_secs(1)),
            store::is_reachable(&db),
        )
        .await
        .unwrap_or(false);
        if last != reachable {
            let status = if reachable {
                tracing::info!("database reachable; serving");
                // Changes made elsewhere during the outage may never have been announced.
                read_model.invalidate_everything();
                ServingStatus::Serving
            } else {
                tracing::warn!("database unreachable; reporting NOT_SERVING");
                ServingStatus::NotServing
            };
            database_up.store(reachable, Ordering::Relaxed);
            for name in SERVICE_NAMES {
                health.set_service_status(name, status).await;
            }
            last = reachable;
        }
    }
}

/// Registers for SIGINT and SIGTERM at once and returns a future that completes on the first
/// of them. Registering before the listener is bound means a signal is never lost to the
/// default handler, which would kill the process without a graceful stop.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminated = async {
                match terminate.as_mut() {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = interrupted => tracing::info!("SIGINT received; shutting down"),
                _ = terminated => tracing::info!("SIGTERM received; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("interrupt received; shutting down");
        }
    }
}
