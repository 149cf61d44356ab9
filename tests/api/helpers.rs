//! `spawn_app()` and the fixtures and assertions the tests share.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Once},
    time::Duration,
};

use pipelines::deploy::{DeployError, DeployRequest, Deployer};

use pipelines::{
    config::{LogFormat, Settings},
    domain::access::{Caller, Role},
    proto::{
        app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
        pipeline_service_client::PipelineServiceClient,
        promotion_service_client::PromotionServiceClient,
        release_service_client::ReleaseServiceClient, App, Coupling, CreateAppRequest,
        CreateCouplingRequest, CreatePipelineRequest, CreateReleaseRequest, Pipeline, Release,
        RequiredStatusChecks, Stage,
    },
    service::Services,
    startup::Application,
    store,
};
use sea_orm::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{transport::Channel, Code, Status};

static TRACING: Once = Once::new();

/// Logs stay silent unless `TEST_LOG` is set.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            // The writer lives as long as the test process.
            std::mem::forget(pipelines::telemetry::init(LogFormat::Pretty));
        }
    });
}

/// A database that belongs to one test.
pub struct TestDatabase {
    pub url: String,
    /// Keeps the SQLite file's directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// The same database for a second server; the first handle keeps it alive.
    pub fn another_handle(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            _dir: None,
        }
    }
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut result = format!("{}/{}", &base[..authority_end], name);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// Creates a fresh database: a new PostgreSQL database when `TEST_DATABASE_URL` is set,
/// otherwise an SQLite file in a temporary directory.
pub async fn fresh_database() -> TestDatabase {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("pipelines_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.unwrap_or_else(|error| {
                panic!("TEST_DATABASE_URL is set but PostgreSQL cannot be reached: {error}")
            });
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            TestDatabase {
                url: with_database_name(&admin_url, &name),
                _dir: None,
            }
        }
        _ => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            TestDatabase {
                url,
                _dir: Some(dir),
            }
        }
    }
}

/// A running server and clients connected to it.
pub struct TestApp {
    pub address: std::net::SocketAddr,
    pub hub: Arc<pipelines::progress::EventHub>,
    pub promotions: PromotionServiceClient<Channel>,
    pub http: reqwest::Client,
    pub database: TestDatabase,
    pub pipelines: PipelineServiceClient<Channel>,
    pub couplings: CouplingServiceClient<Channel>,
    pub apps: AppServiceClient<Channel>,
    pub releases: ReleaseServiceClient<Channel>,
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn settings_for(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        database_url: database_url.to_owned(),
        health_check_interval: Duration::from_millis(100),
        resync_interval: Duration::from_secs(30),
        insecure: false,
        audit_retention: Some(chrono::Duration::days(400)),
        tls: None,
        webhook: None,
        rate_limits: Default::default(),
        engine: pipelines::engine::EngineSettings {
            poll_interval: Duration::from_millis(100),
            // The tests' HTTP checks probe servers they start on loopback.
            verification_hosts: pipelines::domain::verification::AllowedHosts::new([
                "127.0.0.1".to_owned(),
                "*.verify.test".to_owned(),
            ]),
            ..Default::default()
        },
    }
}

/// Starts the server on a fresh database.
pub async fn spawn_app() -> TestApp {
    let database = fresh_database().await;
    spawn_app_with(settings_for(&database.url), database).await
}

/// Starts the server with the given settings on an existing test database.
pub async fn spawn_app_with(settings: Settings, database: TestDatabase) -> TestApp {
    init_tracing();
    let application = Application::build(settings).await.expect("server builds");
    serve_application(application, database).await
}

/// Starts the server on a fresh database with a deployer of the test's choosing.
pub async fn spawn_app_deploying_with(deployer: Arc<dyn Deployer>) -> TestApp {
    let database = fresh_database().await;
    spawn_app_with_deployer(settings_for(&database.url), database, deployer).await
}

/// Starts the server with the given settings, database and deployer.
pub async fn spawn_app_with_deployer(
    settings: Settings,
    database: TestDatabase,
    deployer: Arc<dyn Deployer>,
) -> TestApp {
    init_tracing();
    let application = Application::build_with_deployer(settings, deployer)
        .await
        .expect("server builds");
    serve_application(application, database).await
}

async fn serve_application(application: Application, database: TestDatabase) -> TestApp {
    let hub = application.event_hub();
    let address = application.local_addr();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("client connects");
    TestApp {
        address,
        hub,
        promotions: PromotionServiceClient::new(channel.clone()),
        http: reqwest::Client::new(),
        database,
        pipelines: PipelineServiceClient::new(channel.clone()),
        couplings: CouplingServiceClient::new(channel.clone()),
        apps: AppServiceClient::new(channel.clone()),
        releases: ReleaseServiceClient::new(channel.clone()),
        channel,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully and hands back its database.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within 10s")
                .expect("server task")
                .expect("server ran cleanly");
        }
        std::mem::replace(
            &mut self.database,
            TestDatabase {
                url: String::new(),
                _dir: None,
            },
        )
    }

    /// The use cases on the same database, for callers the transport cannot yet express
    /// (a caller without elevated access).
    pub async fn services(&self) -> Services {
        let db = store::connect(&self.database.url).await.expect("connect");
        let read_model = pipelines::read_model::ReadModel::new(db.clone());
        Services::new(
            db,
            pipelines::progress::EventHub::new(read_model),
            Default::default(),
        )
    }

    pub async fn create_pipeline(&self, name: &str) -> Pipeline {
        self.pipelines
            .clone()
            .create_pipeline(CreatePipelineRequest {
                name: name.into(),
                description: String::new(),
            })
            .await
            .expect("create pipeline")
            .into_inner()
    }

    pub async fn create_app(&self, name: &str) -> App {
        self.apps
            .clone()
            .create_app(CreateAppRequest { name: name.into() })
            .await
            .expect("create app")
            .into_inner()
    }

    pub async fn couple(
        &self,
        app: &str,
        pipeline: &str,
        stage: Stage,
        contexts: &[&str],
    ) -> Coupling {
        self.try_couple(app, pipeline, stage, contexts)
            .await
            .expect("create coupling")
    }

    pub async fn try_couple(
        &self,
        app: &str,
        pipeline: &str,
        stage: Stage,
        contexts: &[&str],
    ) -> Result<Coupling, Status> {
        self.couplings
            .clone()
            .create_coupling(CreateCouplingRequest {
                promotion_policy: None,
                verification: None,
                app: app.into(),
                pipeline: pipeline.into(),
                stage: stage as i32,
                required_status_checks: Some(RequiredStatusChecks {
                    contexts: contexts.iter().map(|c| c.to_string()).collect(),
                }),
            })
            .await
            .map(|response| response.into_inner())
    }

    pub async fn create_release(&self, app: &str, image: &str) -> Release {
        self.releases
            .clone()
            .create_release(CreateReleaseRequest {
                app: app.into(),
                image: image.into(),
                description: String::new(),
            })
            .await
            .expect("create release")
            .into_inner()
    }
}

impl TestApp {
    /// A REST request to the server's own port.
    pub fn rest(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("http://{}{}", self.address, path))
    }

    /// Sends a REST request and returns its status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.rest(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("REST call");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    /// Creates an API token on the server's database and returns its secret.
    pub async fn create_token(&self, name: &str, role: &str) -> String {
        let db = store::connect(&self.database.url).await.expect("connect");
        let (_, secret) = pipelines::auth::Tokens::new(db)
            .create(name, role)
            .await
            .expect("create token");
        secret
    }
}

/// A gRPC request carrying a bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn writer() -> Caller {
    Caller::new("ci", Role::Write)
}

pub fn admin() -> Caller {
    Caller::new("ops", Role::Admin)
}

/// Asserts a gRPC error's code and that its message contains every fragment.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    fragments: &[&str],
) {
    let status = result.expect_err("expected an error");
    assert_eq!(
        status.code(),
        code,
        "unexpected code; message: {}",
        status.message()
    );
    for fragment in fragments {
        assert!(
            status.message().contains(fragment),
            "message {:?} lacks {:?}",
            status.message(),
            fragment
        );
    }
}

/// Asserts a service error's gRPC code and message fragments.
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, pipelines::error::Error>,
    code: Code,
    fragments: &[&str],
) {
    assert_status(result.map_err(Status::from), code, fragments);
}

/// A deployer for tests. It refuses the apps it is told to fail, with a message naming
/// them, and can hold every deployment until the test opens its gate, so that a test
/// decides exactly when targets finish.
#[derive(Default)]
pub struct TestDeployer {
    failing: Mutex<HashSet<String>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Deploys within the database, as the embedded deployer does: the engine runs each
    /// batch in one transaction.
    within_the_database: bool,
    /// Apps whose deployment began, before any gate.
    pub arrived: Mutex<Vec<String>>,
    pub deployed: Mutex<Vec<String>>,
}

impl TestDeployer {
    pub fn failing(apps: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            failing: Mutex::new(apps.iter().map(|a| a.to_string()).collect()),
            ..Default::default()
        })
    }

    /// Like [`TestDeployer::failing`], deploying within the database.
    pub fn failing_within_the_database(apps: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            failing: Mutex::new(apps.iter().map(|a| a.to_string()).collect()),
            within_the_database: true,
            ..Default::default()
        })
    }

    /// Every deployment waits for a permit from the returned gate.
    pub fn gated() -> (Arc<Self>, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        (
            Arc::new(Self {
                gate: Some(Arc::clone(&gate)),
                ..Default::default()
            }),
            gate,
        )
    }

    /// Deploys within the database, each deployment waiting for a permit from the
    /// returned gate.
    pub fn gated_within_the_database() -> (Arc<Self>, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        (
            Arc::new(Self {
                gate: Some(Arc::clone(&gate)),
                within_the_database: true,
                ..Default::default()
            }),
            gate,
        )
    }

    /// Waits until a deployment to `app` has begun `times` times.
    pub async fn until_arrived(&self, app: &str, times: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.lock().unwrap().clone();
            if arrived.iter().filter(|name| *name == app).count() >= times {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no deployment to {app} began (arrived: {arrived:?})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn deployments(&self) -> Vec<String> {
        self.deployed.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Deployer for TestDeployer {
    fn deploys_within_the_database(&self) -> bool {
        self.within_the_database
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<(), DeployError> {
        self.arrived.lock().unwrap().push(request.app_name.clone());
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        self.deployed.lock().unwrap().push(request.app_name.clone());
        if self.failing.lock().unwrap().contains(&request.app_name) {
            return Err(DeployError(format!(
                "test deployer refuses '{}'",
                request.app_name
            )));
        }
        Ok(())
    }
}

/// The next event of a watch, within 20 seconds; `None` when the stream ended.
pub async fn next_event(
    stream: &mut tonic::Streaming<pipelines::proto::PromotionEvent>,
) -> Option<pipelines::proto::PromotionEvent> {
    use tokio_stream::StreamExt;
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the next event, or the end, arrives within 20s")
        .map(|event| event.expect("an event, not an error"))
}

/// The stream after its first event named `name`.
async fn skip_until(
    mut stream: tonic::Streaming<pipelines::proto::PromotionEvent>,
    name: &str,
) -> tonic::Streaming<pipelines::proto::PromotionEvent> {
    loop {
        let event = next_event(&mut stream)
            .await
            .unwrap_or_else(|| panic!("the stream ended before {name}"));
        if event.name == name {
            return stream;
        }
    }
}

/// Every event left on a watch, up to its end.
pub async fn rest_of(
    stream: &mut tonic::Streaming<pipelines::proto::PromotionEvent>,
) -> Vec<pipelines::proto::PromotionEvent> {
    let mut events = Vec::new();
    while let Some(event) = next_event(stream).await {
        events.push(event);
    }
    events
}

impl TestApp {
    /// Opens a watch on a promotion after `after_sequence`.
    pub async fn watch(
        &self,
        id: &str,
        after_sequence: i64,
    ) -> tonic::Streaming<pipelines::proto::PromotionEvent> {
        self.promotions
            .clone()
            .watch_promotion(pipelines::proto::WatchPromotionRequest {
                id: id.into(),
                after_sequence,
            })
            .await
            .expect("watch")
            .into_inner()
    }

    /// Watches a promotion from its start over gRPC with a token.
    pub async fn watch_as(
        &self,
        id: &str,
        token: &str,
    ) -> tonic::Streaming<pipelines::proto::PromotionEvent> {
        self.promotions
            .clone()
            .watch_promotion(with_token(
                pipelines::proto::WatchPromotionRequest {
                    id: id.into(),
                    after_sequence: 0,
                },
                token,
            ))
            .await
            .expect("watch")
            .into_inner()
    }

    /// Watches a promotion to its end over gRPC with a token, and returns every event.
    pub async fn watch_to_end_as(
        &self,
        id: &str,
        token: &str,
    ) -> Vec<pipelines::proto::PromotionEvent> {
        rest_of(&mut self.watch_as(id, token).await).await
    }

    /// Watches a promotion to its end over gRPC and returns every event.
    pub async fn watch_to_end(&self, id: &str) -> Vec<pipelines::proto::PromotionEvent> {
        rest_of(&mut self.watch(id, 0).await).await
    }

    /// Watches a promotion from its start up to the first event named `name`, and hands
    /// back the stream for the rest.
    pub async fn watch_until(
        &self,
        id: &str,
        name: &str,
    ) -> tonic::Streaming<pipelines::proto::PromotionEvent> {
        skip_until(self.watch(id, 0).await, name).await
    }

    /// Like [`Self::watch_until`], with a token.
    pub async fn watch_until_as(
        &self,
        id: &str,
        name: &str,
        token: &str,
    ) -> tonic::Streaming<pipelines::proto::PromotionEvent> {
        skip_until(self.watch_as(id, token).await, name).await
    }

    /// The promotion's targets, in order.
    pub async fn targets_of(&self, promotion_id: &str) -> Vec<pipelines::proto::PromotionTarget> {
        self.promotions
            .clone()
            .list_promotion_targets(pipelines::proto::ListPromotionTargetsRequest {
                id: promotion_id.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list the promotion's targets")
            .into_inner()
            .targets
    }

    /// The app's releases, newest first.
    pub async fn releases_of(&self, app: &str) -> Vec<pipelines::proto::Release> {
        self.releases
            .clone()
            .list_releases(pipelines::proto::ListReleasesRequest {
                app: app.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list the app's releases")
            .into_inner()
            .releases
    }

    /// Waits until the promotion is final and returns it.
    pub async fn finished_promotion(&self, id: &str) -> pipelines::proto::Promotion {
        self.watch_to_end(id).await;
        self.promotions
            .clone()
            .get_promotion(pipelines::proto::GetPromotionRequest { id: id.into() })
            .await
            .expect("get promotion")
            .into_inner()
    }
}

/// One POST the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The target app's name, from the payload.
    pub app: String,
    /// `X-Pipelines-Delivery`: the promotion target the deploy is for.
    pub target: String,
    /// Whether `X-Pipelines-Signature` matched the body under the receiver's secret.
    pub signed: bool,
    pub payload: serde_json::Value,
}

/// A real HTTP server that plays the deploy webhook. It answers by the app's name:
/// `slow-*` too late for the deployer's timeout, `flaky-*` 503 on the first delivery then
/// 200, `reject-*` 404, anything else 200 after `delay`. A delivery whose signature does
/// not verify is refused with 401.
pub struct WebhookReceiver {
    pub url: String,
    secret: String,
    delay: Duration,
    deliveries: Mutex<Vec<Delivery>>,
}

impl WebhookReceiver {
    pub async fn start(secret: &str, delay: Duration) -> Arc<Self> {
        use axum::routing::post;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let receiver = Arc::new(Self {
            url: format!("http://{}/deploy", listener.local_addr().expect("address")),
            secret: secret.to_owned(),
            delay,
            deliveries: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/deploy", post(Self::receive))
            .with_state(Arc::clone(&receiver));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        receiver
    }

    async fn receive(
        axum::extract::State(receiver): axum::extract::State<Arc<Self>>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, &'static str) {
        use axum::http::StatusCode;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let app = payload["app"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let signed = header("x-pipelines-signature")
            == pipelines::deploy::webhook::signature(&receiver.secret, &body);
        let attempt = {
            let mut deliveries = receiver.deliveries.lock().unwrap();
            deliveries.push(Delivery {
                app: app.clone(),
                target: header("x-pipelines-delivery"),
                signed,
                payload,
            });
            deliveries.iter().filter(|d| d.app == app).count()
        };
        if !signed {
            return (StatusCode::UNAUTHORIZED, "bad signature");
        }
        if app.starts_with("slow-") {
            tokio::time::sleep(Duration::from_secs(2)).await;
            (StatusCode::OK, "late")
        } else if app.starts_with("flaky-") && attempt == 1 {
            (StatusCode::SERVICE_UNAVAILABLE, "warming up")
        } else if app.starts_with("reject-") {
            (StatusCode::NOT_FOUND, "no such app in this cluster")
        } else {
            tokio::time::sleep(receiver.delay).await;
            (StatusCode::OK, "deployed")
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Deliveries to one app.
    pub fn to_app(&self, app: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.app == app)
            .collect()
    }

    /// How many deliveries each promotion target got.
    pub fn per_target(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for delivery in self.deliveries() {
            *counts.entry(delivery.target).or_default() += 1;
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.deliveries.lock().unwrap().len()
    }
}
