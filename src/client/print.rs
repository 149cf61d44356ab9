//! A dry run's plan and a pipeline's status, as text or JSON.

use serde_json::json;

use super::follow::stage_name;
use crate::{config::OutputFormat, proto};

/// A dry run's plan.
pub(super) fn plan(plan: &proto::PromotionPlan, output: OutputFormat) {
    let source = plan.source.clone().unwrap_or_default();
    let app = source.app.map(|a| a.name).unwrap_or_default();
    let version = source.release.map(|r| r.version).unwrap_or_default();
    if output == OutputFormat::Json {
        let plan = json!({
            "dry_run": true,
            "source": {"app": app, "release": {"version": version}},
            "source_stage": stage_name(plan.source_stage),
            "target_stage": stage_name(plan.target_stage),
            "targets": plan.targets.iter().map(|t| json!({
                "app": t.app.as_ref().map(|a| a.name.clone()),
                "busy_with_promotion_id": (!t.busy_with_promotion_id.is_empty()).then_some(&t.busy_with_promotion_id),
            })).collect::<Vec<_>>(),
            "checks": plan.checks.iter().map(|c| json!({
                "check": c.check.as_ref().map(|check| check.context.clone()),
                "app": c.check.as_ref().and_then(|check| check.app.as_ref().map(|a| a.name.clone())),
                "satisfied": c.satisfied,
                "overridden": c.overridden,
            })).collect::<Vec<_>>(),
            "required_approvals": plan.required_approvals,
            "safe": plan.safe,
            "overridden_freezes": plan.overridden_freezes.iter().map(|f| json!({
                "freeze_id": f.freeze_id,
                "reason": f.reason,
            })).collect::<Vec<_>>(),
        });
        say!("{plan}");
        return;
    }
    say!(
        "dry run: release v{version} of '{app}' from {} to {}; nothing was written",
        stage_name(plan.source_stage),
        stage_name(plan.target_stage)
    );
    for target in &plan.targets {
        let name = target.app.as_ref().map(|a| a.name.as_str()).unwrap_or("");
        if target.busy_with_promotion_id.is_empty() {
            say!("  target {name}");
        } else {
            say!(
                "  target {name} (would wait for promotion {})",
                target.busy_with_promotion_id
            );
        }
    }
    for verdict in &plan.checks {
        let check = verdict.check.clone().unwrap_or_default();
        let mark = match (verdict.satisfied, verdict.overridden) {
            (true, _) => "met",
            (false, true) => "bypassed",
            (false, false) => "UNMET",
        };
        say!(
            "  check {}/{}: {mark}",
            check.app.map(|a| a.name).unwrap_or_default(),
            check.context
        );
    }
    for drift in &plan.drift {
        let name = drift.app.as_ref().map(|a| a.name.as_str()).unwrap_or("");
        if !drift.missing_on_target.is_empty() || !drift.missing_on_source.is_empty() {
            say!(
                "  config keys differ on {name}: it lacks [{}], the source lacks [{}]",
                drift.missing_on_target.join(", "),
                drift.missing_on_source.join(", ")
            );
        }
    }
    for frozen in &plan.overridden_freezes {
        say!(
            "  it would break glass through the freeze of {}",
            frozen_line(frozen.stage, frozen)
        );
    }
    if plan.required_approvals > 0 {
        say!(
            "  it would wait for {} approval(s) before running",
            plan.required_approvals
        );
    }
    say!("the promotion would be accepted");
}

/// A pipeline's stages, apps, current releases and required checks.
pub(super) fn status(
    pipeline: &proto::Pipeline,
    couplings: &[proto::Coupling],
    output: OutputFormat,
) {
    let mut rows: Vec<&proto::Coupling> = couplings.iter().collect();
    rows.sort_by_key(|c| (c.stage, c.app.as_ref().map(|a| a.name.clone())));
    if output == OutputFormat::Json {
        let rows: Vec<_> = rows
            .iter()
            .map(|c| {
                let policy = c.promotion_policy.unwrap_or_default();
                json!({
                    "stage": stage_name(c.stage),
                    "app": c.app.as_ref().map(|a| a.name.clone()),
                    "release": c.release.as_ref().map(|r| json!({"version": r.version, "image": r.image})),
                    "required_checks": c.required_status_checks.as_ref().map(|r| r.contexts.clone()).unwrap_or_default(),
                    "auto_promote": policy.auto_promote.unwrap_or_default(),
                    "required_approvals": policy.required_approvals.unwrap_or_default(),
                    "frozen": c.frozen.as_ref().map(|f| json!({
                        "reason": f.reason,
                        "until": f.until.as_ref().map(time_text),
                        "freeze_id": f.freeze_id,
                    })),
                })
            })
            .collect();
        say!("{}", json!({"pipeline": pipeline.name, "apps": rows}));
        return;
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|c| {
            let policy = c.promotion_policy.unwrap_or_default();
            let mut policy_words = Vec::new();
            if policy.auto_promote.unwrap_or_default() {
                policy_words.push("auto".to_owned());
            }
            let approvals = policy.required_approvals.unwrap_or_default();
            if approvals > 0 {
                policy_words.push(format!("{approvals} approval(s)"));
            }
            let contexts = c
                .required_status_checks
                .as_ref()
                .map(|r| r.contexts.join(", "))
                .unwrap_or_default();
            [
                stage_name(c.stage),
                c.app.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
                c.release
                    .as_ref()
                    .map(|r| format!("v{}", r.version))
                    .unwrap_or_else(|| "-".into()),
                c.release
                    .as_ref()
                    .map(|r| r.image.clone())
                    .unwrap_or_else(|| "-".into()),
                if contexts.is_empty() {
                    "-".into()
                } else {
                    contexts
                },
                if policy_words.is_empty() {
                    "-".into()
                } else {
                    policy_words.join(", ")
                },
            ]
        })
        .collect();
    let header = [
        "STAGE",
        "APP",
        "RELEASE",
        "IMAGE",
        "REQUIRED CHECKS",
        "POLICY",
    ]
    .map(String::from);
    say!("pipeline {} ({})", pipeline.name, pipeline.id);
    print_table(&header, &table);
    let mut frozen: Vec<&proto::Coupling> = rows
        .iter()
        .copied()
        .filter(|c| c.frozen.is_some())
        .collect();
    frozen.dedup_by_key(|c| c.stage);
    for coupling in frozen {
        if let Some(freeze) = &coupling.frozen {
            say!("FROZEN  {}", frozen_line(coupling.stage, freeze));
        }
    }
}

/// "production until 2026-12-24T18:00:00Z (freeze <id>): reason".
pub(super) fn frozen_line(stage: i32, frozen: &proto::Frozen) -> String {
    format!(
        "{} until {} (freeze {}): {}",
        stage_name(stage),
        frozen.until.as_ref().map(time_text).unwrap_or_default(),
        frozen.freeze_id,
        frozen.reason
    )
}

/// A protobuf time as RFC 3339 UTC, to the second.
pub(super) fn time_text(time: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(time.seconds, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A freeze, made or lifted, as one line or one JSON object.
pub(super) fn freeze(verb: &str, freeze: &proto::Freeze, output: OutputFormat) {
    let stages: Vec<String> = freeze
        .stages
        .iter()
        .map(|stage| stage_name(*stage))
        .collect();
    let until = freeze
        .current
        .as_ref()
        .or(freeze.next.as_ref())
        .and_then(|window| window.ends_at.as_ref())
        .or(freeze.ends_at.as_ref())
        .map(time_text)
        .unwrap_or_default();
    if output == OutputFormat::Json {
        say!(
            "{}",
            json!({
                "freeze": verb,
                "id": freeze.id,
                "pipeline": freeze.pipeline.as_ref().map(|p| p.name.clone()),
                "stages": stages,
                "reason": freeze.reason,
                "active": freeze.active,
                "until": until,
            })
        );
        return;
    }
    let pipeline = freeze
        .pipeline
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    if freeze.lifted_at.is_some() {
        say!(
            "{verb} the freeze of {} of pipeline {pipeline}: {} (freeze {})",
            stages.join(", "),
            freeze.reason,
            freeze.id
        );
    } else {
        say!(
            "{verb} {} of pipeline {pipeline} until {until}: {} (freeze {})",
            stages.join(", "),
            freeze.reason,
            freeze.id
        );
    }
}

/// Prints rows under a header, each column as wide as its widest cell.
pub(super) fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|column| {
            std::iter::once(header)
                .chain(rows)
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
}
