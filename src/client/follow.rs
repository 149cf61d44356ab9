//! Following a promotion to its end, and printing plans and pipelines: a live view with one
//! line per target in a terminal, plain lines otherwise, JSON lines for scripts.

use std::{collections::HashMap, io::IsTerminal, time::Duration};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use tonic::Code;

use super::{Clients, Ending, Stop};
use crate::{config::OutputFormat, proto};

/// Times a broken watch is resumed before giving up.
const RESUME_ATTEMPTS: u32 = 5;

/// How often the results of verifying targets are read while they verify.
const RESULTS_INTERVAL: Duration = Duration::from_secs(1);

/// An enum value's name without its type prefix, lowercase: `TARGET_STATUS_SUCCEEDED` →
/// `succeeded`.
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

fn promotion_status(value: i32) -> proto::PromotionStatus {
    proto::PromotionStatus::try_from(value).unwrap_or(proto::PromotionStatus::Unspecified)
}

fn promotion_status_name(value: i32) -> String {
    short(promotion_status(value).as_str_name(), "PROMOTION_STATUS_")
}

fn target_status_name(value: i32) -> String {
    let status = proto::TargetStatus::try_from(value).unwrap_or(proto::TargetStatus::Unspecified);
    short(status.as_str_name(), "TARGET_STATUS_")
}

pub(super) fn stage_name(value: i32) -> String {
    let stage = proto::Stage::try_from(value).unwrap_or(proto::Stage::Unspecified);
    short(stage.as_str_name(), "STAGE_")
}

/// Where the lines go.
enum View {
    /// A person at a terminal: one live line per target.
    Live {
        lines: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
    /// A log or a pipe: one line per event.
    Plain,
    /// A script: one JSON object per event.
    Json,
}

impl View {
    fn new(output: OutputFormat, targets: &[proto::PromotionTarget]) -> View {
        match output {
            OutputFormat::Json => View::Json,
            OutputFormat::Text if !std::io::stdout().is_terminal() => View::Plain,
            OutputFormat::Text => {
                let lines = MultiProgress::new();
                let width = targets
                    .iter()
                    .filter_map(|t| t.app.as_ref().map(|app| app.name.len()))
                    .max()
                    .unwrap_or(8);
                let style = ProgressStyle::with_template(&format!(
                    "{{spinner}} {{prefix:<{width}}} {{msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bars = targets
                    .iter()
                    .map(|target| {
                        let bar = lines.add(ProgressBar::new_spinner());
                        bar.set_style(style.clone());
                        bar.set_prefix(
                            target
                                .app
                                .as_ref()
                                .map(|a| a.name.clone())
                                .unwrap_or_default(),
                        );
                        bar.set_message(target_line(target, None));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        (target.id.clone(), bar)
                    })
                    .collect();
                View::Live { lines, bars }
            }
        }
    }

    /// A line that is not about one target.
    fn note(&self, text: &str) {
        match self {
            View::Live { lines, .. } => {
                let _ = lines.println(text);
            }
            View::Plain => say!("{text}"),
            View::Json => {}
        }
    }

    fn event(&self, event: &proto::PromotionEvent, target: Option<&TargetState>) {
        match self {
            View::Live { lines, bars } => match (target, bars.get(&event.target_id)) {
                (Some(state), Some(bar)) => {
                    let line = target_line(&state.target, state.running_for());
                    if state.is_final() {
                        bar.finish_with_message(line);
                    } else {
                        bar.set_message(line);
                    }
                }
                _ if !event.message.is_empty() => {
                    let _ = lines.println(format!("  {}", event.message));
                }
                _ => {}
            },
            View::Plain => say!("{}", plain_line(event)),
            View::Json => say!("{}", json_line(event)),
        }
    }

    /// A verification result that arrived on a verifying target.
    fn result(&self, target: &proto::PromotionTarget, result: &proto::VerificationResult) {
        let app = target.app.as_ref().map(|a| a.name.as_str()).unwrap_or("-");
        let words = result_words(result);
        match self {
            View::Live { lines, .. } => {
                let _ = lines.println(format!("  {app}: {words}"));
            }
            View::Plain => {
                let time = chrono::Utc::now().format("%H:%M:%S%.3f");
                say!("{time} {:<28} {app:<24} {words}", "verification result");
            }
            View::Json => say!(
                "{}",
                json!({
                    "verification_result": {
                        "context": result.context,
                        "state": result.state,
                        "description": result.description,
                    },
                    "target_id": target.id,
                    "app": target.app.as_ref().map(|a| json!({"id": a.id, "name": a.name})),
                })
            ),
        }
    }

    fn stop(&self) {
        if let View::Live { bars, .. } = self {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

/// One target's state, release, time running and error, for its live line.
fn target_line(target: &proto::PromotionTarget, running_for: Option<Duration>) -> String {
    let state = target_status_name(target.status);
    let release = target
        .release
        .as_ref()
        .map(|release| format!("v{}", release.version))
        .unwrap_or_default();
    let elapsed = running_for
        .map(|time| format!("{:.1}s", time.as_secs_f64()))
        .unwrap_or_default();
    let mut line = format!("{state:<10} {release:<6} {elapsed:>7}");
    if !target.error_message.is_empty() {
        line.push_str(&format!("  {}", target.error_message));
    }
    line
}

/// "context: state (description)", worded as the server words a verdict's results.
fn result_words(result: &proto::VerificationResult) -> String {
    crate::domain::verification::CheckResult {
        context: result.context.clone(),
        state: result.state.clone(),
        description: result.description.clone(),
    }
    .describe()
}

fn plain_line(event: &proto::PromotionEvent) -> String {
    let time = event
        .created_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let app = event.app.as_ref().map(|a| a.name.as_str()).unwrap_or("-");
    format!("{time} {:<28} {app:<24} {}", event.name, event.message)
}

fn json_line(event: &proto::PromotionEvent) -> serde_json::Value {
    json!({
        "sequence": event.sequence,
        "event": event.name,
        "promotion_id": event.promotion_id,
        "target_id": (!event.target_id.is_empty()).then_some(&event.target_id),
        "app": event.app.as_ref().map(|a| json!({"id": a.id, "name": a.name})),
        "target_status": (event.target_status != 0).then(|| target_status_name(event.target_status)),
        "promotion_status": promotion_status_name(event.promotion_status),
        "release": event.release.as_ref().map(|r| json!({"id": r.id, "version": r.version})),
        "message": event.message,
        "created_at": event.created_at.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)).map(|t| t.to_rfc3339()),
        "actor": (!event.actor.is_empty()).then_some(&event.actor),
        "comment": (!event.comment.is_empty()).then_some(&event.comment),
    })
}

/// What the view knows of one target.
struct TargetState {
    target: proto::PromotionTarget,
    started: Option<std::time::Instant>,
    ran_for: Option<Duration>,
    /// The verification results printed so far, by context.
    shown_results: HashMap<String, proto::VerificationResult>,
}

impl TargetState {
    fn is_final(&self) -> bool {
        crate::grpc::convert::target_status_from_proto(self.target.status)
            .is_none_or(|status| status.is_final())
    }

    fn is_verifying(&self) -> bool {
        self.target.status == proto::TargetStatus::Verifying as i32
    }

    /// The results of `fresh` (the target as read now) not printed yet, or changed since.
    fn new_results(&mut self, fresh: &proto::PromotionTarget) -> Vec<proto::VerificationResult> {
        let results = fresh
            .verification
            .as_ref()
            .map(|v| v.results.as_slice())
            .unwrap_or_default();
        let mut arrived = Vec::new();
        for result in results {
            // `missing` is where every context starts: nothing arrived.
            if result.state == crate::domain::verification::MISSING {
                continue;
            }
            if self.shown_results.get(&result.context) != Some(result) {
                self.shown_results
                    .insert(result.context.clone(), result.clone());
                arrived.push(result.clone());
            }
        }
        arrived
    }

    fn running_for(&self) -> Option<Duration> {
        self.ran_for
            .or_else(|| self.started.map(|started| started.elapsed()))
    }

    fn apply(&mut self, event: &proto::PromotionEvent) {
        if event.target_status != 0 {
            self.target.status = event.target_status;
        }
        if let Some(release) = &event.release {
            self.target.release = Some(release.clone());
        }
        match proto::EventType::try_from(event.r#type) {
            Ok(proto::EventType::TargetRunning) => self.started = Some(std::time::Instant::now()),
            Ok(proto::EventType::TargetFailed | proto::EventType::TargetCanceled) => {
                self.target.error_message = event.message.clone();
            }
            _ => {}
        }
        if self.is_final() && self.ran_for.is_none() {
            self.ran_for = self.started.map(|started| started.elapsed());
        }
    }
}

/// Who may approve a promotion awaiting approval, in words.
fn approval_note(promotion: &proto::Promotion) -> String {
    let mut excluded = vec![format!("'{}'", promotion.created_by)];
    if !promotion.triggered_by.is_empty() {
        excluded.push(format!("'{}'", promotion.triggered_by));
    }
    format!(
        "awaiting approval: {} of {} granted. Any write token other than {} may approve: \
         PromotionService/ApprovePromotion {{\"id\": \"{}\"}}, or POST /pipeline-promotions/{}/approvals",
        promotion.approvals.len(),
        promotion.required_approvals,
        excluded.join(" and "),
        promotion.id,
        promotion.id
    )
}

/// Follows a promotion to its end and says how it ended.
pub(super) async fn follow(
    clients: &mut Clients,
    promotion: proto::Promotion,
    output: OutputFormat,
) -> Result<Ending, Stop> {
    let server = clients.server.clone();
    let refused = |status: tonic::Status| Stop::from_status(&status, &server);
    let id = promotion.id.clone();
    let targets = targets_of(clients, &id).await.map_err(refused)?;
    let view = View::new(output, &targets);
    let source = promotion.source.clone().unwrap_or_default();
    let names: Vec<String> = targets
        .iter()
        .filter_map(|t| t.app.as_ref().map(|a| a.name.clone()))
        .collect();
    view.note(&format!(
        "promotion {id}: release v{} of '{}' to {} ({})",
        source.release.map(|r| r.version).unwrap_or_default(),
        source.app.map(|a| a.name).unwrap_or_default(),
        names.join(", "),
        promotion_status_name(promotion.status)
    ));
    if promotion_status(promotion.status) == proto::PromotionStatus::AwaitingApproval {
        view.note(&approval_note(&promotion));
    }
    view.note("Ctrl-C stops watching; the promotion goes on.");
    let mut states: HashMap<String, TargetState> = targets
        .into_iter()
        .map(|target| {
            (
                target.id.clone(),
                TargetState {
                    target,
                    started: None,
                    ran_for: None,
                    shown_results: HashMap::new(),
                },
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let mut after = 0;
    let mut failures = 0;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    // Results are not events: while a target verifies, they are read once a second.
    let mut reread_results = tokio::time::interval(RESULTS_INTERVAL);
    reread_results.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'watching: loop {
        let stream = clients
            .promotions
            .watch_promotion(proto::WatchPromotionRequest {
                id: id.clone(),
                after_sequence: after,
            })
            .await;
        let mut stream = match stream {
            Ok(stream) => stream.into_inner(),
            Err(status) => {
                resume_or_stop(&status, &mut failures, &server, &view).await?;
                continue;
            }
        };
        loop {
            let verifying = states.values().any(TargetState::is_verifying);
            let next = tokio::select! {
                next = stream.message() => next,
                _ = reread_results.tick(), if verifying => {
                    show_arrived_results(clients, &id, &mut states, &view).await;
                    continue;
                }
                _ = &mut interrupted => {
                    view.stop();
                    eprintln!(
                        "Stopped watching. Promotion {id} goes on on the server; follow it again with: pipelines watch {id}"
                    );
                    return Ok(Ending::Interrupted);
                }
            };
            match next {
                Ok(Some(event)) => {
                    failures = 0;
                    after = event.sequence;
                    let state = states.get_mut(&event.target_id).map(|state| {
                        state.apply(&event);
                        &*state
                    });
                    view.event(&event, state);
                    if event.r#type == proto::EventType::PromotionAwaitingApproval as i32 {
                        view.note(&approval_note(&promotion));
                    }
                }
                Ok(None) => break 'watching,
                Err(status) => {
                    resume_or_stop(&status, &mut failures, &server, &view).await?;
                    continue 'watching;
                }
            }
        }
    }
    view.stop();
    let finished = super::retry::again_when_limited(|| {
        let mut promotions = clients.promotions.clone();
        let request = proto::GetPromotionRequest { id: id.clone() };
        async move { promotions.get_promotion(request).await }
    })
    .await
    .map_err(refused)?
    .into_inner();
    let ending = Ending::of(finished.status).ok_or_else(|| {
        Stop::new(
            Ending::Unreachable,
            format!("the watch of {id} ended before the promotion did"),
        )
    })?;
    let succeeded = states
        .values()
        .filter(|s| s.target.status == proto::TargetStatus::Succeeded as i32)
        .count();
    let summary = format!(
        "promotion {}: {succeeded} of {} targets succeeded ({:.1}s)",
        promotion_status_name(finished.status),
        states.len(),
        started.elapsed().as_secs_f64()
    );
    match output {
        OutputFormat::Json => {}
        OutputFormat::Text => say!("{summary}"),
    }
    Ok(ending)
}

/// The promotion's targets, read again after the server's delay while rate limited.
async fn targets_of(clients: &Clients, id: &str) -> Result<Vec<Target>, tonic::Status> {
    let request = proto::ListPromotionTargetsRequest {
        id: id.to_owned(),
        page_size: 1000,
        page_token: String::new(),
    };
    let listed = super::retry::again_when_limited(|| {
        let (mut promotions, request) = (clients.promotions.clone(), request.clone());
        async move { promotions.list_promotion_targets(request).await }
    });
    Ok(listed.await?.into_inner().targets)
}

type Target = proto::PromotionTarget;

/// Prints the verification results that arrived on verifying targets. A failed read is
/// skipped: the next tick tries again, and the events still tell the outcome.
async fn show_arrived_results(
    clients: &mut Clients,
    id: &str,
    states: &mut HashMap<String, TargetState>,
    view: &View,
) {
    let Ok(listed) = targets_of(clients, id).await else {
        return;
    };
    for fresh in listed {
        let Some(state) = states.get_mut(&fresh.id) else {
            continue;
        };
        for result in state.new_results(&fresh) {
            view.result(&state.target, &result);
        }
    }
}

/// A broken watch is resumed after its last event a few times, then given up on: after
/// a second, or, when refused for the token's rate limit, after the delay the server gave.
async fn resume_or_stop(
    status: &tonic::Status,
    failures: &mut u32,
    server: &str,
    view: &View,
) -> Result<(), Stop> {
    *failures += 1;
    let transient = matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal
    );
    let wait = super::retry::retry_delay(status)
        .or(transient.then_some(Duration::from_secs(1)))
        .filter(|_| *failures <= RESUME_ATTEMPTS);
    let Some(wait) = wait else {
        view.stop();
        return Err(Stop::from_status(status, server));
    };
    view.note(&format!(
        "the watch broke ({}); resuming in {:.1}s",
        status.message(),
        wait.as_secs_f64()
    ));
    tokio::time::sleep(wait).await;
    Ok(())
}
