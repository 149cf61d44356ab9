//! `pipelines diff`: what promoting from one stage would change, as a table, exiting 0
//! when every target is promotable and 1 when one is not.

use serde_json::json;

use super::{connect, follow::stage_name, print::print_table, Ending, Stop};
use crate::{config::DiffArgs, config::OutputFormat, domain::stage::Stage, grpc::convert, proto};

fn stage_of(field: &str, value: &str) -> Result<i32, Stop> {
    let stage = Stage::parse(field, value)
        .map_err(|invalid| Stop::new(Ending::Refused, format!("--{field}: {}", invalid.reason)))?;
    Ok(convert::stage_to_proto(stage) as i32)
}

pub(super) async fn run_diff(args: DiffArgs) -> Result<Ending, Stop> {
    let from_stage = stage_of("from", &args.from)?;
    let to_stage = match &args.to {
        Some(to) => stage_of("to", to)?,
        None => 0,
    };
    let mut clients = connect(&args.server).await?;
    let server = clients.server.clone();
    let diff = clients
        .pipelines
        .diff_stages(proto::DiffStagesRequest {
            pipeline: args.pipeline.clone(),
            from_stage,
            to_stage,
            source: args.source.clone().unwrap_or_default(),
        })
        .await
        .map_err(|status| Stop::from_status(&status, &server))?
        .into_inner();
    print(&diff, args.server.output);
    Ok(if diff.targets.iter().all(|target| target.promotable) {
        Ending::Successful
    } else {
        Ending::NotPromotable
    })
}

fn name(reference: &Option<proto::ResourceRef>) -> String {
    reference
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default()
}

fn release_text(release: &Option<proto::ReleaseSummary>) -> (String, String) {
    match release {
        Some(release) => (format!("v{}", release.version), release.image.clone()),
        None => ("-".into(), "-".into()),
    }
}

fn print(diff: &proto::DiffStagesResponse, output: OutputFormat) {
    let source = name(&diff.source_app);
    let (version, image) = release_text(&diff.source_release);
    if output == OutputFormat::Json {
        let targets: Vec<_> = diff
            .targets
            .iter()
            .map(|t| {
                json!({
                    "app": name(&t.app),
                    "current": t.current.as_ref().map(|r| json!({"version": r.version, "image": r.image})),
                    "image_differs": t.image_differs,
                    "config_keys": {"missing_on_target": t.missing_on_target, "missing_on_source": t.missing_on_source},
                    "checks": t.checks.iter().map(|c| json!({"context": c.context, "state": c.state})).collect::<Vec<_>>(),
                    "promotable": t.promotable,
                    "blocked_by": t.blocked_by.iter().map(|b| json!({"kind": b.kind, "message": b.message})).collect::<Vec<_>>(),
                })
            })
            .collect();
        say!(
            "{}",
            json!({
                "from": stage_name(diff.from_stage),
                "to": stage_name(diff.to_stage),
                "source": {"app": source, "version": version, "image": image},
                "targets": targets,
            })
        );
        return;
    }
    say!(
        "{} → {}: promoting {source} {version} ({image})",
        stage_name(diff.from_stage),
        stage_name(diff.to_stage)
    );
    let header = [
        "APP",
        "CURRENT",
        "IMAGE",
        "CHANGE",
        "CONFIG KEYS",
        "CHECKS",
        "VERDICT",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = diff
        .targets
        .iter()
        .map(|t| {
            let (current, current_image) = release_text(&t.current);
            let mut keys = Vec::new();
            if !t.missing_on_target.is_empty() {
                keys.push(format!("target lacks {}", t.missing_on_target.join(",")));
            }
            if !t.missing_on_source.is_empty() {
                keys.push(format!("source lacks {}", t.missing_on_source.join(",")));
            }
            let checks: Vec<String> = t
                .checks
                .iter()
                .map(|c| format!("{} {}", c.context, c.state))
                .collect();
            [
                name(&t.app),
                current,
                current_image,
                if t.image_differs {
                    format!("→ {image}")
                } else {
                    "same image".into()
                },
                if keys.is_empty() {
                    "same".into()
                } else {
                    keys.join("; ")
                },
                if checks.is_empty() {
                    "-".into()
                } else {
                    checks.join(", ")
                },
                if t.promotable {
                    "promotable".into()
                } else {
                    "BLOCKED".into()
                },
            ]
        })
        .collect();
    print_table(&header, &rows);
    for target in diff.targets.iter().filter(|t| !t.promotable) {
        for blocker in &target.blocked_by {
            say!("  {} blocked: {}", name(&target.app), blocker.message);
        }
    }
}
