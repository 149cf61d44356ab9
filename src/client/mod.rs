//! The client commands: `pipelines promote`, `watch`, `status`, `freeze` and `unfreeze`.
//! They call a server over gRPC with the generated tonic clients, like any other client
//! would.

/// Prints a line to stdout; a reader that went away (`| head`) ends the output quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod diff;
mod follow;
mod print;
mod refusal;
mod retry;

use std::{process::ExitCode, time::Duration};

use tonic::{
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
    Code, Request, Status,
};

use crate::{
    config::{FreezeArgs, PromoteArgs, ServerArgs, StatusArgs, UnfreezeArgs, WatchArgs},
    proto::{
        self, coupling_service_client::CouplingServiceClient,
        create_promotion_response::Result as Created,
        pipeline_service_client::PipelineServiceClient,
        promotion_service_client::PromotionServiceClient,
    },
};

/// How a client command ended; each has its own exit code (see `EXIT_CODES_HELP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Successful,
    Failed,
    PartiallyFailed,
    Canceled,
    Rejected,
    Refused,
    Unreachable,
    Interrupted,
    /// `pipelines diff`: a target would refuse the promotion.
    NotPromotable,
}

impl Ending {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Ending::Successful => 0,
            Ending::Failed => 10,
            Ending::PartiallyFailed => 11,
            Ending::Canceled => 12,
            Ending::Rejected => 13,
            Ending::Refused => 20,
            Ending::Unreachable => 21,
            Ending::Interrupted => 130,
            Ending::NotPromotable => 1,
        })
    }

    /// The ending of a finished promotion (a final state of the transition table), `None`
    /// while it is not finished.
    fn of(status: i32) -> Option<Ending> {
        use crate::domain::promotion::PromotionStatus as S;
        let status = crate::grpc::convert::promotion_status_from_proto(status)?;
        if !status.is_final() {
            return None;
        }
        Some(match status {
            S::Successful => Ending::Successful,
            S::Failed => Ending::Failed,
            S::PartiallyFailed => Ending::PartiallyFailed,
            S::Canceled => Ending::Canceled,
            S::Rejected => Ending::Rejected,
            S::Pending | S::Running | S::AwaitingApproval => return None,
        })
    }
}

/// A message for the person at the terminal, and how the command ends.
#[derive(Debug)]
pub struct Stop {
    pub message: String,
    pub ending: Ending,
}

impl Stop {
    fn new(ending: Ending, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ending,
        }
    }

    /// What the server's refusal means, with its details where it sent some.
    fn from_status(status: &Status, server: &str) -> Self {
        match status.code() {
            Code::Unavailable => Stop::new(
                Ending::Unreachable,
                format!(
                    "the server at {server} is unreachable or unavailable: {}",
                    status.message()
                ),
            ),
            Code::Unknown if status.message().contains("transport error") => Stop::new(
                Ending::Unreachable,
                format!("the connection to {server} failed: {}", status.message()),
            ),
            Code::Unauthenticated => Stop::new(
                Ending::Refused,
                format!(
                    "the server refused the token: {} (pass one with --token or PIPELINES_TOKEN)",
                    status.message()
                ),
            ),
            _ => Stop::new(Ending::Refused, refusal::describe(status)),
        }
    }
}

type Authorized = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// The gRPC clients of one server.
struct Clients {
    promotions: PromotionServiceClient<Authorized>,
    pipelines: PipelineServiceClient<Authorized>,
    couplings: CouplingServiceClient<Authorized>,
    server: String,
}

async fn connect(args: &ServerArgs) -> Result<Clients, Stop> {
    let endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|error| {
            Stop::new(
                Ending::Unreachable,
                format!(
                    "--server {:?} is not a server address such as http://127.0.0.1:50051: {error}",
                    args.server
                ),
            )
        })?
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|error| {
        let cause = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_else(|| error.to_string());
        Stop::new(
            Ending::Unreachable,
            format!("cannot reach the server at {}: {cause}", args.server),
        )
    })?;
    let token = match &args.token {
        None => None,
        Some(token) => Some(format!("Bearer {}", token.trim()).parse().map_err(|_| {
            Stop::new(
                Ending::Refused,
                "the token holds characters a token never has",
            )
        })?),
    };
    let interceptor = BearerToken(token);
    Ok(Clients {
        promotions: PromotionServiceClient::with_interceptor(channel.clone(), interceptor.clone()),
        pipelines: PipelineServiceClient::with_interceptor(channel.clone(), interceptor.clone()),
        couplings: CouplingServiceClient::with_interceptor(channel, interceptor),
        server: args.server.clone(),
    })
}

/// Prints the stop's message (to stderr unless it is a success) and returns its code.
fn finish(result: Result<Ending, Stop>) -> ExitCode {
    match result {
        Ok(ending) => ending.exit_code(),
        Err(stop) => {
            eprintln!("pipelines: {}", stop.message);
            stop.ending.exit_code()
        }
    }
}

/// `pipelines promote`.
pub async fn promote(args: PromoteArgs) -> ExitCode {
    finish(run_promote(args).await)
}

async fn run_promote(args: PromoteArgs) -> Result<Ending, Stop> {
    let mut clients = connect(&args.server).await?;
    let safe = match (args.safe, args.unsafe_promotion) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let request = proto::CreatePromotionRequest {
        pipeline: args.pipeline.clone(),
        source_app: args.from.clone(),
        source_release_id: args.release.clone().unwrap_or_default(),
        targets: args.to.clone(),
        safe,
        dry_run: args.dry_run,
        request_id: String::new(),
    };
    let answer = retry::again_when_limited(|| {
        let mut promotions = clients.promotions.clone();
        let request = request.clone();
        async move { promotions.create_promotion(request).await }
    })
    .await
    .map_err(|status| Stop::from_status(&status, &clients.server))?
    .into_inner();
    match answer.result {
        Some(Created::Plan(plan)) => {
            print::plan(&plan, args.server.output);
            Ok(Ending::Successful)
        }
        Some(Created::Promotion(promotion)) => {
            follow::follow(&mut clients, promotion, args.server.output).await
        }
        None => Err(Stop::new(
            Ending::Refused,
            "the server answered with nothing",
        )),
    }
}

/// `pipelines watch`.
pub async fn watch(args: WatchArgs) -> ExitCode {
    finish(run_watch(args).await)
}

async fn run_watch(args: WatchArgs) -> Result<Ending, Stop> {
    let mut clients = connect(&args.server).await?;
    let promotion = retry::again_when_limited(|| {
        let mut promotions = clients.promotions.clone();
        let id = args.promotion_id.clone();
        async move {
            promotions
                .get_promotion(proto::GetPromotionRequest { id })
                .await
        }
    })
    .await
    .map_err(|status| Stop::from_status(&status, &clients.server))?
    .into_inner();
    follow::follow(&mut clients, promotion, args.server.output).await
}

/// `pipelines diff`.
pub async fn diff(args: crate::config::DiffArgs) -> ExitCode {
    finish(diff::run_diff(args).await)
}

/// `pipelines status`.
pub async fn status(args: StatusArgs) -> ExitCode {
    finish(run_status(args).await)
}

async fn run_status(args: StatusArgs) -> Result<Ending, Stop> {
    let mut clients = connect(&args.server).await?;
    let server = clients.server.clone();
    let pipeline = clients
        .pipelines
        .get_pipeline(proto::GetPipelineRequest {
            pipeline: args.pipeline.clone(),
        })
        .await
        .map_err(|status| Stop::from_status(&status, &server))?
        .into_inner();
    let mut couplings = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .couplings
            .list_pipeline_couplings(proto::ListPipelineCouplingsRequest {
                pipeline: pipeline.id.clone(),
                page_size: 1000,
                page_token,
            })
            .await
            .map_err(|status| Stop::from_status(&status, &server))?
            .into_inner();
        couplings.extend(page.couplings);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    print::status(&pipeline, &couplings, args.server.output);
    Ok(Ending::Successful)
}

/// `pipelines freeze`.
pub async fn freeze(args: FreezeArgs) -> ExitCode {
    finish(run_freeze(args).await)
}

async fn run_freeze(args: FreezeArgs) -> Result<Ending, Stop> {
    let until = until_time(&args.until, chrono::Utc::now()).map_err(|reason| {
        Stop::new(
            Ending::Refused,
            format!("--until {:?}: {reason}", args.until),
        )
    })?;
    let mut stages = Vec::with_capacity(args.stages.len());
    for name in &args.stages {
        let stage = crate::domain::stage::Stage::parse("--stage", name.trim())
            .map_err(|error| Stop::new(Ending::Refused, error.to_string()))?;
        stages.push(crate::grpc::convert::stage_to_proto(stage) as i32);
    }
    let mut clients = connect(&args.server).await?;
    let made = clients
        .pipelines
        .create_freeze(proto::CreateFreezeRequest {
            pipeline: args.pipeline.clone(),
            stages,
            reason: args.reason.clone(),
            ends_at: crate::grpc::convert::timestamp(until),
            ..Default::default()
        })
        .await
        .map_err(|status| Stop::from_status(&status, &clients.server))?
        .into_inner();
    print::freeze("froze", &made, args.server.output);
    Ok(Ending::Successful)
}

/// `pipelines unfreeze`.
pub async fn unfreeze(args: UnfreezeArgs) -> ExitCode {
    finish(run_unfreeze(args).await)
}

async fn run_unfreeze(args: UnfreezeArgs) -> Result<Ending, Stop> {
    let mut clients = connect(&args.server).await?;
    let lifted = clients
        .pipelines
        .delete_freeze(proto::DeleteFreezeRequest {
            pipeline: args.pipeline.clone(),
            freeze_id: args.freeze_id.clone(),
        })
        .await
        .map_err(|status| Stop::from_status(&status, &clients.server))?
        .into_inner();
    print::freeze("lifted", &lifted, args.server.output);
    Ok(Ending::Successful)
}

/// `--until`: an RFC 3339 time, or a duration from `now` in whole units (`90m`, `2h`,
/// `1d`, `45s`, or several such as `1h30m`).
fn until_time(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    let refused = || {
        "is neither an RFC 3339 time (2026-12-24T18:00:00Z) nor a duration such as 90m, 2h or 1d"
            .to_owned()
    };
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let amount: i64 = digits.parse().map_err(|_| refused())?;
        digits.clear();
        let unit = match character {
            's' => chrono::Duration::try_seconds(amount),
            'm' => chrono::Duration::try_minutes(amount),
            'h' => chrono::Duration::try_hours(amount),
            'd' => chrono::Duration::try_days(amount),
            _ => None,
        }
        .ok_or_else(refused)?;
        total = total.checked_add(&unit).ok_or_else(refused)?;
    }
    if !digits.is_empty() || total <= chrono::Duration::zero() {
        return Err(refused());
    }
    now.checked_add_signed(total).ok_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_time_or_a_duration_from_now() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .map(|time| time.with_timezone(&chrono::Utc))
            .unwrap();
        let at = |text: &str| until_time(text, now).map(|time| time.to_rfc3339());
        assert_eq!(at("90m").as_deref(), Ok("2026-12-07T11:30:00+00:00"));
        assert_eq!(at("2h").as_deref(), Ok("2026-12-07T12:00:00+00:00"));
        assert_eq!(at("1d").as_deref(), Ok("2026-12-08T10:00:00+00:00"));
        assert_eq!(at("1h30m").as_deref(), Ok("2026-12-07T11:30:00+00:00"));
        assert_eq!(
            at("2026-12-24T18:00:00+01:00").as_deref(),
            Ok("2026-12-24T17:00:00+00:00")
        );
        for bad in [
            "",
            "soon",
            "90",
            "m",
            "0m",
            "2w",
            "-5m",
            "99999999999999999999d",
        ] {
            assert!(at(bad).is_err(), "{bad:?}");
        }
    }
}
