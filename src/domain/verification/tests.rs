use std::collections::HashMap;

use super::*;
use crate::domain::status::StatusState;

fn hosts() -> AllowedHosts {
    AllowedHosts::new([
        "shop.internal".to_owned(),
        "*.svc.local".to_owned(),
        "127.0.0.1".to_owned(),
    ])
}

fn check(name: &str) -> HttpCheckSpec {
    HttpCheckSpec {
        name: Some(name.to_owned()),
        url: Some("http://shop.internal/healthz".to_owned()),
        ..HttpCheckSpec::default()
    }
}

fn spec() -> VerificationSpec {
    VerificationSpec {
        contexts: vec!["smoke/checkout".to_owned()],
        http_checks: vec![check("health")],
        ..VerificationSpec::default()
    }
}

#[test]
fn defaults_are_filled_in() {
    let resolved = spec().resolve(&hosts()).unwrap();
    assert_eq!(resolved.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
    assert_eq!(resolved.on_failure, OnFailure::Rollback);
    assert_eq!(resolved.http_checks[0].count, DEFAULT_COUNT);
    assert_eq!(
        resolved.http_checks[0].interval_seconds,
        DEFAULT_INTERVAL_SECONDS
    );
    assert_eq!(resolved.http_checks[0].failure_limit, 0);
    assert_eq!(
        resolved.all_contexts(),
        vec!["smoke/checkout".to_owned(), "http/health".to_owned()]
    );
}

#[test]
fn each_bad_field_is_named_by_its_path() {
    let field_of = |spec: VerificationSpec| spec.resolve(&hosts()).unwrap_err().field;
    let mut bad = spec();
    bad.timeout_seconds = Some(9);
    assert_eq!(field_of(bad), "verification.timeout_seconds");
    let mut bad = spec();
    bad.timeout_seconds = Some(86_401);
    assert_eq!(field_of(bad), "verification.timeout_seconds");
    let mut bad = spec();
    bad.http_checks[0].url = Some("ftp://shop.internal/".to_owned());
    assert_eq!(field_of(bad), "verification.http_checks[0].url");
    let mut bad = spec();
    bad.http_checks[0].url = Some("/healthz".to_owned());
    assert_eq!(field_of(bad), "verification.http_checks[0].url");
    let mut bad = spec();
    bad.http_checks[0].count = Some(0);
    assert_eq!(field_of(bad), "verification.http_checks[0].count");
    let mut bad = spec();
    bad.http_checks[0].count = Some(101);
    assert_eq!(field_of(bad), "verification.http_checks[0].count");
    let mut bad = spec();
    bad.http_checks[0].count = Some(3);
    bad.http_checks[0].failure_limit = Some(3);
    assert_eq!(field_of(bad), "verification.http_checks[0].failure_limit");
    let mut bad = spec();
    bad.http_checks[0].interval_seconds = Some(3_601);
    assert_eq!(
        field_of(bad),
        "verification.http_checks[0].interval_seconds"
    );
    let mut bad = spec();
    bad.http_checks[0].name = Some("Health".to_owned());
    assert_eq!(field_of(bad), "verification.http_checks[0].name");
    let mut bad = spec();
    bad.http_checks.push(check("health"));
    assert_eq!(field_of(bad), "verification.http_checks[1].name");
    let mut bad = spec();
    bad.http_checks = (0..6).map(|i| check(&format!("c{i}"))).collect();
    assert_eq!(field_of(bad), "verification.http_checks");
    let mut bad = spec();
    bad.on_failure = Some("retry".to_owned());
    assert_eq!(field_of(bad), "verification.on_failure");
    let mut bad = spec();
    bad.contexts = vec!["a".to_owned(), "a".to_owned()];
    assert_eq!(field_of(bad), "verification.contexts[1]");
    assert_eq!(field_of(VerificationSpec::default()), "verification");
    let mut bad = spec();
    bad.timeout_seconds = Some(30);
    bad.http_checks[0].count = Some(4);
    bad.http_checks[0].interval_seconds = Some(10);
    assert_eq!(field_of(bad), "verification.http_checks[0].count");
}

#[test]
fn the_allowlist_matches_hosts_whatever_the_port() {
    let hosts = hosts();
    assert!(hosts.check_url("u", "http://shop.internal:8080/x").is_ok());
    assert!(hosts.check_url("u", "https://a.svc.local/").is_ok());
    assert!(hosts.check_url("u", "http://127.0.0.1:9/").is_ok());
    let refused = hosts.check_url("u", "http://svc.local/").unwrap_err();
    assert!(refused.reason.contains("--verification-hosts"), "{refused}");
    assert!(hosts.check_url("u", "http://evilshop.internal/").is_err());
    assert!(hosts.check_url("u", "http://a.svc.local.evil/").is_err());
    let none = AllowedHosts::default();
    let refused = none.check_url("u", "http://shop.internal/").unwrap_err();
    assert!(refused.reason.contains("allows no host"), "{refused}");
}

#[test]
fn a_check_with_no_successful_measurement_never_passes() {
    let check = spec().resolve(&hosts()).unwrap().http_checks[0].clone();
    assert!(!check.passes(0, 0));
    assert!(check.passes(3, 0));
    assert!(!check.passes(2, 1));
    let lenient = HttpCheck {
        failure_limit: 5,
        ..check
    };
    assert!(!lenient.passes(0, 5));
    assert!(lenient.passes(1, 5));
}

fn seen(state: StatusState) -> SeenStatus {
    SeenStatus {
        state,
        description: format!("it is {state}"),
    }
}

#[test]
fn the_verdict_fails_on_failure_or_error_passes_on_all_success_and_times_out() {
    let verification = spec().resolve(&hosts()).unwrap();
    let mut statuses = HashMap::new();
    assert!(matches!(
        decide(&verification, &statuses, false),
        Verdict::Undecided(_)
    ));
    let Verdict::Failed(missing) = decide(&verification, &statuses, true) else {
        panic!("the deadline decides");
    };
    assert_eq!(missing.len(), 2);
    assert!(missing.iter().all(|result| result.state == MISSING));
    statuses.insert("smoke/checkout".to_owned(), seen(StatusState::Success));
    assert!(matches!(
        decide(&verification, &statuses, false),
        Verdict::Undecided(_)
    ));
    statuses.insert("http/health".to_owned(), seen(StatusState::Success));
    assert!(matches!(
        decide(&verification, &statuses, true),
        Verdict::Passed(_)
    ));
    for bad in [StatusState::Failure, StatusState::Error] {
        statuses.insert("smoke/checkout".to_owned(), seen(bad));
        let Verdict::Failed(failing) = decide(&verification, &statuses, false) else {
            panic!("{bad} decides at once");
        };
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].state, bad.as_str());
        assert_eq!(failing[0].description, format!("it is {bad}"));
    }
}

#[test]
fn only_adding_or_tightening_is_open_to_write() {
    let current = spec().resolve(&hosts()).unwrap();
    assert_eq!(role_to_change(None, Some(&current)), Role::Write);
    assert_eq!(role_to_change(Some(&current), None), Role::Admin);
    let mut tighter = current.clone();
    tighter.contexts.push("monitor/errors".to_owned());
    tighter.timeout_seconds = 300;
    assert_eq!(role_to_change(Some(&current), Some(&tighter)), Role::Write);
    let mut fewer = current.clone();
    fewer.http_checks.clear();
    assert_eq!(role_to_change(Some(&current), Some(&fewer)), Role::Admin);
    let mut keep = current.clone();
    keep.on_failure = OnFailure::Keep;
    assert_eq!(role_to_change(Some(&current), Some(&keep)), Role::Admin);
    let mut longer = current.clone();
    longer.timeout_seconds = 900;
    assert_eq!(role_to_change(Some(&current), Some(&longer)), Role::Admin);
    let mut lenient = current.clone();
    lenient.http_checks[0].failure_limit = 1;
    assert_eq!(role_to_change(Some(&current), Some(&lenient)), Role::Admin);
}
