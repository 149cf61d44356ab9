//! Real server processes: crash recovery after SIGKILL, and two processes sharing one
//! PostgreSQL under a few hundred concurrent promotions.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    create_promotion_response::Result as Created, pipeline_service_client::PipelineServiceClient,
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreatePromotionRequest,
    CreateReleaseRequest, GetPromotionRequest, ListPromotionTargetsRequest, ListPromotionsRequest,
    ListReleasesRequest, PromotionStatus, Release, ReleaseState, Stage, WatchPromotionRequest,
};
use tonic::transport::Channel;

use crate::helpers::{fresh_database, next_event, rest_of, WebhookReceiver};

const WEBHOOK_SECRET: &str = "process-test";

/// A webhook receiver for the child processes, answering 200 after `delay`.
pub(crate) async fn start_webhook(delay: Duration) -> (String, Arc<WebhookReceiver>) {
    let receiver = WebhookReceiver::start(WEBHOOK_SECRET, delay).await;
    (receiver.url.clone(), receiver)
}

/// A `pipelines serve` child process.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) address: SocketAddr,
    _logs: tempfile::NamedTempFile,
}

impl ServerProcess {
    pub(crate) async fn start(
        database_url: &str,
        webhook_url: &str,
        extra: &[&str],
    ) -> ServerProcess {
        let deployer = [
            "--deployer",
            "webhook",
            "--webhook-url",
            webhook_url,
            "--webhook-secret",
            WEBHOOK_SECRET,
        ];
        Self::start_deploying_with(database_url, &deployer, extra).await
    }

    /// A child process with the embedded `local` deployer.
    pub(crate) async fn start_local(database_url: &str, extra: &[&str]) -> ServerProcess {
        Self::start_deploying_with(database_url, &["--deployer", "local"], extra).await
    }

    async fn start_deploying_with(
        database_url: &str,
        deployer: &[&str],
        extra: &[&str],
    ) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let logs = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec![
            "serve".to_owned(),
            "--listen".into(),
            address.to_string(),
            "--log-format".into(),
            "json".into(),
        ];
        args.extend(deployer.iter().map(|a| a.to_string()));
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_pipelines"))
            .args(&args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(logs.reopen().unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServerProcess {
            child,
            address,
            _logs: logs,
        }
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill(&mut self) {
        // Child::kill sends SIGKILL: no graceful shutdown, no lease release.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pipeline `shop` with `shop-dev` (one release) and `count` staging apps.
async fn setup(channel: Channel, count: usize) -> Vec<String> {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let mut apps = AppServiceClient::new(channel.clone());
    let mut couplings = CouplingServiceClient::new(channel.clone());
    let mut names = Vec::new();
    for (name, stage) in std::iter::once(("shop-dev".to_owned(), Stage::Development))
        .chain((0..count).map(|i| (format!("shop-stg-{i:02}"), Stage::Staging)))
    {
        apps.create_app(CreateAppRequest { name: name.clone() })
            .await
            .unwrap();
        couplings
            .create_coupling(CreateCouplingRequest {
                promotion_policy: None,
                verification: None,
                app: name.clone(),
                pipeline: "shop".into(),
                stage: stage as i32,
                required_status_checks: None,
            })
            .await
            .unwrap();
        if stage == Stage::Staging {
            names.push(name);
        }
    }
    ReleaseServiceClient::new(channel)
        .create_release(CreateReleaseRequest {
            app: "shop-dev".into(),
            image: "registry/shop:9".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    names
}

async fn promote(channel: Channel, targets: Vec<String>) -> String {
    let response = PromotionServiceClient::new(channel)
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            targets,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match response.result {
        Some(Created::Promotion(promotion)) => promotion.id,
        other => panic!("expected a promotion: {other:?}"),
    }
}

async fn wait_until_final(channel: Channel, id: &str, deadline: Duration) -> i32 {
    let started = Instant::now();
    let mut client = PromotionServiceClient::new(channel);
    loop {
        let status = client
            .get_promotion(GetPromotionRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status != PromotionStatus::Pending as i32 && status != PromotionStatus::Running as i32 {
            return status;
        }
        assert!(
            started.elapsed() < deadline,
            "promotion {id} did not finish in {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the webhook has received `count` deployments.
async fn until_delivered(receiver: &WebhookReceiver, count: usize) {
    let started = Instant::now();
    while receiver.total() < count {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of {count} deployments reached the webhook",
            receiver.total()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The app's releases, newest first.
async fn releases_of(channel: &Channel, app: &str) -> Vec<Release> {
    ReleaseServiceClient::new(channel.clone())
        .list_releases(ListReleasesRequest {
            app: app.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list releases")
        .into_inner()
        .releases
}

#[tokio::test]
async fn a_killed_server_is_recovered_by_the_next_one() {
    let database = fresh_database().await;
    let (url, receiver) = start_webhook(Duration::from_millis(150)).await;
    let flags = ["--lease-seconds", "3", "--max-parallel-targets", "2"];
    let mut first = ServerProcess::start(&database.url, &url, &flags).await;
    let channel = first.channel().await;
    let apps = setup(channel.clone(), 6).await;
    let mut promotions = Vec::new();
    for _ in 0..4 {
        promotions.push(promote(channel.clone(), apps.clone()).await);
    }
    // Kill it in the middle of the work.
    until_delivered(&receiver, 5).await;
    first.kill();
    let delivered_before_the_kill = receiver.total();
    assert!(
        delivered_before_the_kill < 24,
        "the kill came before the end"
    );

    let second = ServerProcess::start(&database.url, &url, &flags).await;
    let channel = second.channel().await;
    for id in &promotions {
        let status = wait_until_final(channel.clone(), id, Duration::from_secs(90)).await;
        assert_eq!(status, PromotionStatus::Successful as i32, "promotion {id}");
    }
    for app in &apps {
        let versions: Vec<i64> = releases_of(&channel, app)
            .await
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(
            versions,
            [4, 3, 2, 1],
            "{app}: one release per target, none twice"
        );
    }
    let mut client = PromotionServiceClient::new(channel);
    let mut targets = 0;
    for id in &promotions {
        for target in client
            .list_promotion_targets(ListPromotionTargetsRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .targets
        {
            assert!(target.release.is_some());
            assert!(receiver.per_target().get(&target.id).copied().unwrap_or(0) >= 1);
            targets += 1;
        }
    }
    assert_eq!(targets, 24);
}

/// Targets a webhook process started (running, their releases linked) are not fresh: a
/// process with the `local` deployer resumes them step by step in one transaction, with
/// the releases made before, and finishes the promotion.
#[tokio::test]
async fn targets_started_elsewhere_are_resumed_by_the_local_deployer() {
    let database = fresh_database().await;
    let (url, receiver) = start_webhook(Duration::from_secs(30)).await;
    let mut first = ServerProcess::start(&database.url, &url, &["--lease-seconds", "2"]).await;
    let channel = first.channel().await;
    let apps = setup(channel.clone(), 2).await;
    let id = promote(channel, apps.clone()).await;
    until_delivered(&receiver, 2).await;
    first.kill();

    let second = ServerProcess::start_local(&database.url, &["--lease-seconds", "2"]).await;
    let channel = second.channel().await;
    let status = wait_until_final(channel.clone(), &id, Duration::from_secs(60)).await;
    assert_eq!(status, PromotionStatus::Successful as i32);
    for app in &apps {
        let listed = releases_of(&channel, app).await;
        assert_eq!(listed.len(), 1, "{app}: the release made before is reused");
        assert_eq!(listed[0].status, ReleaseState::Succeeded as i32, "{app}");
    }
    let mut events = PromotionServiceClient::new(channel)
        .watch_promotion(WatchPromotionRequest {
            id: id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = rest_of(&mut events)
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    let count = |name: &str| names.iter().filter(|n| n.as_str() == name).count();
    assert_eq!(count("target.running"), 2, "{names:?}");
    assert_eq!(count("target.release_created"), 2, "{names:?}");
    assert_eq!(count("target.succeeded"), 2, "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("promotion.finished"));
}

#[tokio::test]
async fn two_processes_share_the_work_and_every_event() {
    let database = fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: several processes need PostgreSQL; runs with TEST_DATABASE_URL"
        );
        return;
    }
    const APPS: usize = 10;
    const PROMOTIONS: usize = 200;
    let (url, receiver) = start_webhook(Duration::ZERO).await;
    let flags = ["--max-parallel-targets", "8"];
    let first = ServerProcess::start(&database.url, &url, &flags).await;
    let second = ServerProcess::start(&database.url, &url, &flags).await;
    let channels = [first.channel().await, second.channel().await];
    let apps = setup(channels[0].clone(), APPS).await;

    // 200 concurrent creates, alternating between the processes.
    let creates: Vec<_> = (0..PROMOTIONS)
        .map(|i| {
            let channel = channels[i % 2].clone();
            let target = apps[i % APPS].clone();
            tokio::spawn(async move { (i, promote(channel, vec![target]).await) })
        })
        .collect();
    let mut created = Vec::new();
    for create in creates {
        created.push(create.await.unwrap());
    }
    // Each promotion is watched on the process that did not create it.
    let watches: Vec<_> = created
        .iter()
        .map(|(i, id)| {
            let channel = channels[(i + 1) % 2].clone();
            let id = id.clone();
            tokio::spawn(async move {
                let mut stream = PromotionServiceClient::new(channel)
                    .watch_promotion(WatchPromotionRequest {
                        id: id.clone(),
                        after_sequence: 0,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let events = rest_of(&mut stream).await;
                (id, events)
            })
        })
        .collect();
    let all = async {
        let mut results = Vec::new();
        for watch in watches {
            results.push(watch.await.unwrap());
        }
        results
    };
    let results = tokio::time::timeout(Duration::from_secs(180), all)
        .await
        .expect("every watch ends");
    for (id, events) in &results {
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
        let expected: Vec<i64> = (1..=events.len() as i64).collect();
        assert_eq!(
            sequences, expected,
            "promotion {id}: every event, in order, no gaps"
        );
        let last = events.last().unwrap();
        assert_eq!(last.name, "promotion.finished", "promotion {id}");
        assert_eq!(
            last.promotion_status,
            PromotionStatus::Successful as i32,
            "promotion {id}"
        );
        assert!(events.iter().any(|e| e.name == "target.succeeded"));
    }

    // Each target was executed exactly once, by one of the processes.
    let deliveries = receiver.per_target();
    assert_eq!(deliveries.len(), PROMOTIONS);
    assert!(
        deliveries.values().all(|count| *count == 1),
        "{deliveries:?}"
    );

    // Per app, promotions ran in creation order: the earlier one got the lower version.
    let mut client = PromotionServiceClient::new(channels[0].clone());
    let mut ordered = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_promotions(ListPromotionsRequest {
                pipeline: "shop".into(),
                page_size: 500,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        ordered.extend(page.promotions);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ordered.reverse();
    let mut last_version: HashMap<String, i64> = HashMap::new();
    for promotion in ordered {
        let target = client
            .list_promotion_targets(ListPromotionTargetsRequest {
                id: promotion.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .targets
            .remove(0);
        let app = target.app.unwrap().name;
        let version = target.release.unwrap().version;
        let previous = last_version.insert(app.clone(), version).unwrap_or(0);
        assert_eq!(
            version,
            previous + 1,
            "{app}: promotions ran in creation order"
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_running_targets_and_leaves_the_rest() {
    let database = fresh_database().await;
    let (url, receiver) = start_webhook(Duration::from_millis(700)).await;
    let flags = ["--max-parallel-targets", "1", "--lease-seconds", "3"];
    let mut first = ServerProcess::start(&database.url, &url, &flags).await;
    let channel = first.channel().await;
    let apps = setup(channel.clone(), 3).await;
    let id = promote(channel.clone(), apps.clone()).await;
    // Wait for the first target to be deploying, then ask the process to stop.
    let mut stream = PromotionServiceClient::new(channel.clone())
        .watch_promotion(WatchPromotionRequest {
            id: id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(event) = next_event(&mut stream).await {
        if event.name == "target.release_created" {
            break;
        }
    }
    let pid = first.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "did not stop within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(
        receiver.total(),
        1,
        "the running target finished; nothing new was claimed"
    );

    let second = ServerProcess::start(&database.url, &url, &flags).await;
    let channel = second.channel().await;
    let targets = PromotionServiceClient::new(channel.clone())
        .list_promotion_targets(ListPromotionTargetsRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(
        targets[0].status,
        pipelines::proto::TargetStatus::Succeeded as i32,
        "finished before exit"
    );
    assert_eq!(
        wait_until_final(channel, &id, Duration::from_secs(60)).await,
        PromotionStatus::Successful as i32
    );
    assert_eq!(
        receiver.total(),
        3,
        "the rest was left for the next process, and run once"
    );
}
