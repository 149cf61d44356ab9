//! Request ids: taken from `x-request-id` or made up, returned in the response, and carried
//! by every JSON log line written while serving the request. A real process, so that the
//! log lines are the ones an operator's collector reads.

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::helpers::fresh_database;

#[tokio::test]
async fn every_json_log_line_of_a_request_carries_its_id() {
    let database = fresh_database().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args([
            "serve",
            "--listen",
            &address.to_string(),
            "--log-format",
            "json",
        ])
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "warn,pipelines::startup=debug")
        .stdout(Stdio::null())
        .stderr(logs.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    let url = format!("http://{address}/pipelines");

    let sent = client
        .get(&url)
        .header("x-request-id", "deploy-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(
        sent.headers()["x-request-id"],
        "deploy-7f3a",
        "the client's id comes back"
    );

    let made_up = client.get(&url).send().await.unwrap();
    let id = made_up.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32, "a new id when the client sent none: {id}");
    // An id that could break a log line is replaced.
    let unusable = client
        .get(&url)
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert_ne!(unusable.headers()["x-request-id"], "two words");

    // gRPC answers carry it too.
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(pipelines::proto::ListPipelinesRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-call-1".parse().unwrap());
    let answer = pipelines::proto::pipeline_service_client::PipelineServiceClient::new(channel)
        .list_pipelines(request)
        .await
        .unwrap();
    assert_eq!(
        answer.metadata().get("x-request-id").unwrap(),
        "grpc-call-1"
    );

    // The writer thread flushes in batches; wait for the lines.
    let lines_of = |id: &str| -> Vec<Value> {
        std::fs::read_to_string(logs.path())
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["span"]["request_id"] == id)
            .collect()
    };
    let started = Instant::now();
    while lines_of("grpc-call-1").len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "log lines never arrived: {}",
            std::fs::read_to_string(logs.path()).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in ["deploy-7f3a", id.as_str(), "grpc-call-1"] {
        let lines = lines_of(id);
        let messages: Vec<&str> = lines
            .iter()
            .map(|line| line["message"].as_str().unwrap_or_default())
            .collect();
        assert!(
            messages.contains(&"authenticated") && messages.contains(&"request"),
            "the authentication line and the access line both carry {id}: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .all(|line| line["span"]["caller"] == "protected-mode"),
            "and the caller: {lines:?}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
