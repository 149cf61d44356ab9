use std::{
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use pipelines::proto::{GetPipelineRequest, ListAppsRequest, ListReleasesRequest, Stage};
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::helpers::{fresh_database, settings_for, spawn_app, spawn_app_with, with_database_name};

async fn health_of(app: &crate::helpers::TestApp, service: &str) -> ServingStatus {
    let response = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    ServingStatus::try_from(response.status).expect("known status")
}

async fn wait_for_health(app: &crate::helpers::TestApp, wanted: ServingStatus) {
    for _ in 0..100 {
        if health_of(app, "").await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health never became {wanted:?}");
}

#[tokio::test]
async fn health_reports_every_service_serving() {
    let app = spawn_app().await;
    wait_for_health(&app, ServingStatus::Serving).await;
    for service in [
        "pipelines.v1.PipelineService",
        "pipelines.v1.CouplingService",
        "pipelines.v1.AppService",
        "pipelines.v1.ReleaseService",
    ] {
        assert_eq!(
            health_of(&app, service).await,
            ServingStatus::Serving,
            "{service}"
        );
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore.
struct CuttableProxy {
    port: u16,
    down: watch::Sender<bool>,
    refusing: Arc<AtomicBool>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, _) = watch::channel(false);
        let refusing = Arc::new(AtomicBool::new(false));
        let cut = down.clone();
        let refuse = refusing.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self {
            port,
            down,
            refusing,
        }
    }

    fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.down.send_replace(true);
    }

    fn restore(&self) {
        self.down.send_replace(false);
        self.refusing.store(false, Ordering::SeqCst);
    }
}

/// host:port of a PostgreSQL URL.
fn postgres_host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let authority = after_scheme.split('/').next().unwrap_or(after_scheme);
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, hp)| hp)
        .unwrap_or(authority);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

#[tokio::test]
async fn health_follows_the_database_down_and_back_up() {
    let database = fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: an embedded database file cannot go away; runs on PostgreSQL"
        );
        return;
    }
    let upstream = postgres_host_port(&database.url);
    let proxy = CuttableProxy::start(upstream.clone()).await;
    let proxied_url = database
        .url
        .replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
    let app = spawn_app_with(settings_for(&proxied_url), database).await;
    wait_for_health(&app, ServingStatus::Serving).await;

    proxy.cut();
    wait_for_health(&app, ServingStatus::NotServing).await;
    assert_eq!(
        health_of(&app, "pipelines.v1.PipelineService").await,
        ServingStatus::NotServing
    );
    let result = app.apps.clone().list_apps(ListAppsRequest::default()).await;
    let status = result.expect_err("no database, no answer");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let asked = std::time::Instant::now();
    let (http_status, body) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(http_status, 503, "{body}");
    // It answers from the monitor's last check instead of waiting on the database (which
    // took 2 s and more); the bound is loose so that a busy machine cannot fail it.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "/healthz took {:?} while the database was down",
        asked.elapsed()
    );
    let (http_status, body) = app.call(reqwest::Method::GET, "/apps", None, None).await;
    assert_eq!(http_status, 503, "{body}");
    assert_eq!(body["code"], 14);

    proxy.restore();
    wait_for_health(&app, ServingStatus::Serving).await;
    app.apps
        .clone()
        .list_apps(ListAppsRequest::default())
        .await
        .expect("answers again");
    let (http_status, _) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(http_status, 200);
}

#[tokio::test]
async fn reflection_serves_v1_and_v1alpha() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::{v1, v1alpha};

    let app = spawn_app().await;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "pipelines.v1.PipelineService",
        "pipelines.v1.CouplingService",
        "pipelines.v1.AppService",
        "pipelines.v1.ReleaseService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "pipelines.v1.CouplingService".into(),
            ),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    assert!(matches!(
        response.message_response,
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
            if !files.file_descriptor_proto.is_empty()
    ));
}

#[tokio::test]
async fn a_restarted_server_keeps_all_data() {
    let app = spawn_app().await;
    let pipeline = app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Development, &["ci/unit"])
        .await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let database = app.stop().await;

    let settings = settings_for(&database.url);
    let app = spawn_app_with(settings, database).await;
    let fetched = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, pipeline);
    let releases = app
        .releases
        .clone()
        .list_releases(ListReleasesRequest {
            app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .releases;
    assert_eq!(releases, vec![release]);
    assert!(app.create_release("shop-dev", "shop:2").await.version == 2);
}

#[test]
fn help_documents_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for wanted in [
        "serve",
        "migrate",
        "--listen",
        "PIPELINES_LISTEN",
        "127.0.0.1:50051",
        "--database-url",
        "DATABASE_URL",
        "--log-format",
        "RUST_LOG",
    ] {
        assert!(help.contains(wanted), "--help lacks {wanted}:\n{help}");
    }
}

#[test]
fn a_bad_flag_is_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[tokio::test]
async fn migrate_prepares_the_schema_and_exits() {
    let database = fresh_database().await;
    let output = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .arg("migrate")
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let db = pipelines::store::connect(&database.url).await.unwrap();
    let read_model = pipelines::read_model::ReadModel::new(db.clone());
    let services = pipelines::service::Services::new(
        db,
        pipelines::progress::EventHub::new(read_model),
        Default::default(),
    );
    assert!(
        services
            .pipelines
            .list(&pipelines::service::PageRequest::everything())
            .await
            .unwrap()
            .items
            .is_empty(),
        "tables exist"
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let database = fresh_database().await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut connected = false;
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected, "server came up");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(code) = child.try_wait().unwrap() {
            exited = Some(code);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("server did not stop on SIGTERM");
    });
    assert!(code.success(), "exit status {code:?}");
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(
        logs.lines()
            .all(|line| line.trim().is_empty() || line.starts_with('{')),
        "JSON lines: {logs}"
    );
}

#[test]
fn postgres_urls_get_a_new_database_name() {
    assert_eq!(
        with_database_name("postgres://u:p@localhost:5432/main?sslmode=disable", "t1"),
        "postgres://u:p@localhost:5432/t1?sslmode=disable"
    );
    assert_eq!(
        with_database_name("postgres://u:p@localhost", "t1"),
        "postgres://u:p@localhost/t1"
    );
    assert_eq!(
        postgres_host_port("postgres://u:p@db.local/x"),
        "db.local:5432"
    );
}

#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let database = fresh_database().await;
    let created = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args(["tokens", "create", "--name", "ops", "--role", "admin"])
        .env("DATABASE_URL", &database.url)
        .output()
        .unwrap();
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(!String::from_utf8_lossy(&created.stderr).contains(&token));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    for header in [
        format!("Bearer {token}"),
        token.clone(),
        format!("Bearer {token}x"),
    ] {
        client
            .get(format!("http://127.0.0.1:{port}/pipelines"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        child.wait_with_output()
    })
    .await
    .unwrap()
    .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("/pipelines"), "requests were logged");
    assert!(!logs.contains(&token[4..]), "a token appeared in the logs");
}

#[test]
fn each_subcommand_lists_only_the_flags_it_uses() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_pipelines"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for args in [
        &["tokens", "--help"][..],
        &["tokens", "create", "--help"],
        &["migrate", "--help"],
    ] {
        let text = help(args);
        assert!(text.contains("--database-url"), "{args:?}:\n{text}");
        for server_flag in ["--listen", "--webhook-url", "--tls-cert", "--lease-seconds"] {
            assert!(
                !text.contains(server_flag),
                "{args:?} lists {server_flag}:\n{text}"
            );
        }
    }
    let serve = help(&["serve", "--help"]);
    for flag in [
        "--listen",
        "--webhook-url",
        "--tls-cert",
        "--lease-seconds",
        "--database-url",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
}

/// Runs the server against a database URL that cannot work, and returns its stderr once
/// it has exited non-zero, which it must within 5 seconds.
fn refused_start(database_url: &str) -> String {
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{database_url} started");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{database_url}: took {:?} to give up",
        started.elapsed()
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_database_that_cannot_be_used_is_explained_at_start() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = refused_start(&format!(
        "postgres://pipelines:pipelines@127.0.0.1:{closed_port}/pipelines"
    ));
    assert!(
        refused.contains(&format!("127.0.0.1:{closed_port}")) && refused.contains("refused"),
        "{refused}"
    );
    let sqlite = refused_start("sqlite:///no/such/directory/pipelines.db?mode=rwc");
    assert!(
        sqlite.contains("/no/such/directory/pipelines.db"),
        "{sqlite}"
    );
    if let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") {
        if !admin_url.is_empty() {
            let missing = refused_start(&with_database_name(&admin_url, "no_such_database_here"));
            assert!(
                missing.contains("has no database 'no_such_database_here'"),
                "{missing}"
            );
        }
    }
}

#[test]
fn token_commands_end_quietly_when_their_reader_goes_away() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("tokens.db").display()
    );
    let created = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "tokens",
            "create",
            "--name",
            "reader",
            "--role",
            "read",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    // `pipelines tokens list | head -0`: the reader is gone before the first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args(["tokens", "list", "--database-url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}
