//! The soak's load, the webhook receiver the server deploys to, and the final check that
//! every promotion ended with one release per target.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use pipelines::proto::{promotion_service_client::PromotionServiceClient, WatchPromotionRequest};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tonic::{metadata::MetadataValue, transport::Channel};

use super::SoakResult;

const STAGING_APPS: [&str; 3] = ["shop-stg-1", "shop-stg-2", "shop-stg-3"];
const PROMOTE_EVERY: Duration = Duration::from_millis(250);
const BURST_EVERY: Duration = Duration::from_secs(10);
const BURST_SIZE: usize = 40;
const FINAL: [&str; 5] = [
    "successful",
    "failed",
    "partially_failed",
    "canceled",
    "rejected",
];

/// Starts a webhook receiver that answers 200 after `delay`; returns its URL.
pub async fn start_receiver(delay: Duration) -> SoakResult<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let router = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        "deployed"
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{address}/deploy"))
}

pub struct Load {
    http: reqwest::Client,
    base: String,
    token: String,
    channel: Channel,
    requests: AtomicU64,
    server_errors: AtomicU64,
    promotions: Mutex<Vec<String>>,
    watches: Mutex<Vec<JoinHandle<()>>>,
}

/// What the end of the run found.
pub struct Verdict {
    pub promotions: usize,
    pub unfinished: usize,
    pub targets_with_release: usize,
    pub releases_made_by_promotions: usize,
    pub shared_releases: usize,
    pub watches_broken: u64,
}

impl Load {
    pub async fn new(base: &str, token: &str) -> SoakResult<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.to_owned(),
            token: token.to_owned(),
            channel: Channel::from_shared(base.to_owned())?.connect().await?,
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            promotions: Mutex::new(Vec::new()),
            watches: Mutex::new(Vec::new()),
        })
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn server_errors(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> SoakResult<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {status} from {path}");
        }
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn created(&self, path: &str, body: Value) -> SoakResult<Value> {
        let (status, answer) = self.call(Method::POST, path, Some(body)).await?;
        if !(200..300).contains(&status) {
            return Err(format!("POST {path}: {status} {answer}").into());
        }
        Ok(answer)
    }

    /// Pipeline `shop`: `shop-dev`, three staging apps requiring `ci/test`, and
    /// `shop-burst` outside the pipeline for the release bursts.
    pub async fn set_up(&self) -> SoakResult<()> {
        self.created("/pipelines", json!({"name": "shop"})).await?;
        for app in ["shop-dev", "shop-burst"].iter().chain(STAGING_APPS.iter()) {
            self.created("/apps", json!({"name": app})).await?;
        }
        self.created(
            "/pipeline-couplings",
            json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"}),
        )
        .await?;
        for app in STAGING_APPS {
            self.created(
                "/pipeline-couplings",
                json!({"app": app, "pipeline": "shop", "stage": "staging",
                       "required_status_checks": {"contexts": ["ci/test"]}}),
            )
            .await?;
        }
        Ok(())
    }

    /// A release on `shop-dev` with its required status, promoted; every fourth promotion
    /// is canceled at once. Each is watched to its end.
    async fn promote(self: &Arc<Self>, round: u64) -> SoakResult<()> {
        let release = self
            .created(
                "/apps/shop-dev/releases",
                json!({"image": format!("registry/shop:{round}")}),
            )
            .await?;
        let release_id = release["id"].as_str().unwrap_or_default().to_owned();
        self.created(
            &format!("/apps/shop-dev/releases/{release_id}/statuses"),
            json!({"context": "ci/test", "name": "Tests", "state": "success"}),
        )
        .await?;
        let promotion = self
            .created(
                "/pipeline-promotions",
                json!({"pipeline": {"id": "shop"},
                       "source": {"app": {"id": "shop-dev"}, "release": {"id": release_id}}}),
            )
            .await?;
        let id = promotion["id"].as_str().unwrap_or_default().to_owned();
        if round % 4 == 0 {
            let (status, answer) = self
                .call(
                    Method::POST,
                    &format!("/pipeline-promotions/{id}/cancel"),
                    None,
                )
                .await?;
            if status != 200 && status != 409 {
                return Err(format!("cancel: {status} {answer}").into());
            }
        }
        let watching = Arc::clone(self);
        let watched = id.clone();
        let watch = tokio::spawn(async move { watching.watch(watched).await });
        if let Ok(mut watches) = self.watches.lock() {
            watches.retain(|watch| !watch.is_finished());
            watches.push(watch);
        }
        if let Ok(mut promotions) = self.promotions.lock() {
            promotions.push(id);
        }
        Ok(())
    }

    /// Follows a promotion's events over gRPC to its end.
    async fn watch(&self, id: String) {
        let Ok(token) = MetadataValue::try_from(format!("Bearer {}", self.token)) else {
            return;
        };
        let mut client = PromotionServiceClient::with_interceptor(
            self.channel.clone(),
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                Ok(request)
            },
        );
        let watched = client
            .watch_promotion(WatchPromotionRequest {
                id,
                after_sequence: 0,
            })
            .await;
        let Ok(stream) = watched else {
            WATCHES_BROKEN.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut stream = stream.into_inner();
        loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(_) => {
                    WATCHES_BROKEN.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    async fn read(&self, path: &str) -> SoakResult<()> {
        let (status, answer) = self.call(Method::GET, path, None).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {answer}").into());
        }
        Ok(())
    }

    async fn burst(&self, round: u64) -> SoakResult<()> {
        let creates = (0..BURST_SIZE).map(|n| {
            self.created(
                "/apps/shop-burst/releases",
                json!({"image": format!("registry/burst:{round}-{n}")}),
            )
        });
        for created in futures::future::join_all(creates).await {
            created?;
        }
        Ok(())
    }

    /// Waits for every promotion to end, then checks that each target has at most one
    /// release and each release made by a promotion belongs to exactly one target.
    pub async fn finish(&self) -> SoakResult<Verdict> {
        let watches: Vec<JoinHandle<()>> = self
            .watches
            .lock()
            .map(|mut watches| std::mem::take(&mut *watches))
            .unwrap_or_default();
        let ids: Vec<String> = self
            .promotions
            .lock()
            .map(|promotions| promotions.clone())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut unfinished = ids.clone();
        while !unfinished.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for id in unfinished {
                let (_, promotion) = self
                    .call(Method::GET, &format!("/pipeline-promotions/{id}"), None)
                    .await?;
                if !FINAL.contains(&promotion["status"].as_str().unwrap_or_default()) {
                    still.push(id);
                }
            }
            unfinished = still;
            if !unfinished.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for watch in watches {
            let _ = tokio::time::timeout(Duration::from_secs(30), watch).await;
        }
        let mut target_releases = Vec::new();
        for id in &ids {
            let (_, targets) = self
                .call(
                    Method::GET,
                    &format!("/pipeline-promotions/{id}/promotion-targets"),
                    None,
                )
                .await?;
            for target in targets.as_array().into_iter().flatten() {
                if let Some(release) = target["release"]["id"].as_str() {
                    target_releases.push(release.to_owned());
                }
            }
        }
        let distinct: HashSet<&String> = target_releases.iter().collect();
        let mut made = 0;
        for app in STAGING_APPS {
            let (_, releases) = self
                .call(Method::GET, &format!("/apps/{app}/releases"), None)
                .await?;
            made += releases
                .as_array()
                .into_iter()
                .flatten()
                .filter(|release| !release["promoted_from"].is_null())
                .count();
        }
        Ok(Verdict {
            promotions: ids.len(),
            unfinished: unfinished.len(),
            targets_with_release: target_releases.len(),
            releases_made_by_promotions: made,
            shared_releases: target_releases.len() - distinct.len(),
            watches_broken: WATCHES_BROKEN.load(Ordering::Relaxed),
        })
    }
}

static WATCHES_BROKEN: AtomicU64 = AtomicU64::new(0);

/// The load's workers, each running until `deadline`.
pub fn start(load: Arc<Load>, deadline: Instant) -> Vec<JoinHandle<SoakResult<()>>> {
    let mut workers = Vec::new();
    let promoter = Arc::clone(&load);
    workers.push(tokio::spawn(async move {
        let mut round = 0;
        while Instant::now() < deadline {
            round += 1;
            promoter.promote(round).await?;
            tokio::time::sleep(PROMOTE_EVERY).await;
        }
        Ok(())
    }));
    for path in [
        "/pipelines/shop",
        "/pipelines/shop/pipeline-couplings",
        "/pipeline-promotions?pipeline=shop&page_size=20",
        "/apps/shop-dev/releases?page_size=20",
    ] {
        let reader = Arc::clone(&load);
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                reader.read(path).await?;
            }
            Ok(())
        }));
    }
    let burster = Arc::clone(&load);
    workers.push(tokio::spawn(async move {
        let mut round = 0;
        while Instant::now() + BURST_EVERY < deadline {
            tokio::time::sleep(BURST_EVERY).await;
            round += 1;
            burster.burst(round).await?;
        }
        Ok(())
    }));
    workers
}
