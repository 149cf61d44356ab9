use super::*;
use TargetStatus::*;

#[test]
fn a_target_canceled_by_its_apps_deletion_counts_as_failed() {
    assert_eq!(Canceled.for_outcome(true), Failed);
    assert_eq!(Canceled.for_outcome(false), Canceled);
    assert_eq!(Succeeded.for_outcome(true), Succeeded);
    let outcome = aggregate_status(&[Succeeded, Canceled.for_outcome(true)], false);
    assert_eq!(outcome, Some(PromotionStatus::PartiallyFailed));
}

#[test]
fn the_aggregate_waits_for_every_target() {
    assert_eq!(aggregate_status(&[Succeeded, Running], false), None);
    assert_eq!(aggregate_status(&[Pending], false), None);
    assert_eq!(aggregate_status(&[], false), None);
}

#[test]
fn the_aggregate_distinguishes_all_none_and_some() {
    assert_eq!(
        aggregate_status(&[Succeeded, Succeeded], false),
        Some(PromotionStatus::Successful)
    );
    assert_eq!(
        aggregate_status(&[Failed, Failed], false),
        Some(PromotionStatus::Failed)
    );
    assert_eq!(
        aggregate_status(&[Succeeded, Failed, Succeeded], false),
        Some(PromotionStatus::PartiallyFailed)
    );
    assert_eq!(
        aggregate_status(&[Succeeded, Canceled], false),
        Some(PromotionStatus::Canceled)
    );
}

#[test]
fn a_canceled_promotion_ends_canceled_even_when_nothing_was_left_to_cancel() {
    assert_eq!(
        aggregate_status(&[Succeeded, Succeeded], true),
        Some(PromotionStatus::Canceled)
    );
    assert_eq!(aggregate_status(&[Succeeded, Running], true), None);
}

#[test]
fn statuses_and_event_names_round_trip() {
    for status in PromotionStatus::ALL {
        assert_eq!(PromotionStatus::parse(status.as_str()), Some(status));
    }
    for status in TargetStatus::ALL {
        assert_eq!(TargetStatus::parse(status.as_str()), Some(status));
    }
    for kind in EventKind::ALL {
        assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
    }
    assert!(EventKind::PromotionFinished.ends_stream());
    assert!(!EventKind::TargetFailed.ends_stream());
    assert!(PromotionStatus::PartiallyFailed.is_final());
    assert!(!PromotionStatus::Running.is_final());
}

/// Every pair of promotion states, legal or not, spelled out: a change to the table
/// must change this list too.
#[test]
fn the_promotion_transition_table_allows_exactly_these_moves() {
    use PromotionStatus as P;
    let legal = [
        (P::AwaitingApproval, P::Pending),
        (P::AwaitingApproval, P::Rejected),
        (P::AwaitingApproval, P::Canceled),
        (P::AwaitingApproval, P::Failed),
        (P::Pending, P::Running),
        (P::Pending, P::Canceled),
        (P::Pending, P::Failed),
        (P::Running, P::Successful),
        (P::Running, P::Failed),
        (P::Running, P::PartiallyFailed),
        (P::Running, P::Canceled),
    ];
    let mut pairs = 0;
    for from in P::ALL {
        for next in P::ALL {
            pairs += 1;
            assert_eq!(
                from.may_become(next),
                legal.contains(&(from, next)),
                "promotion {from} → {next}"
            );
        }
    }
    assert_eq!(pairs, 64);
}

#[test]
fn the_target_transition_table_allows_exactly_these_moves() {
    let legal = [
        (Pending, Running),
        (Pending, Canceled),
        (Running, Verifying),
        (Running, Succeeded),
        (Running, Failed),
        (Running, Canceled),
        (Verifying, Succeeded),
        (Verifying, Failed),
        (Verifying, Canceled),
    ];
    let mut pairs = 0;
    for from in TargetStatus::ALL {
        for next in TargetStatus::ALL {
            pairs += 1;
            assert_eq!(
                from.may_become(next),
                legal.contains(&(from, next)),
                "target {from} → {next}"
            );
        }
    }
    assert_eq!(pairs, 36);
}

#[test]
fn final_states_and_guards_derive_from_the_tables() {
    use PromotionStatus as P;
    let unfinished: Vec<P> = P::unfinished().collect();
    assert_eq!(unfinished, [P::Pending, P::Running, P::AwaitingApproval]);
    for status in [
        P::Successful,
        P::Failed,
        P::PartiallyFailed,
        P::Canceled,
        P::Rejected,
    ] {
        assert!(status.is_final(), "{status}");
    }
    assert_eq!(P::sources_of(P::Running), [P::Pending]);
    assert_eq!(
        P::sources_of(P::Failed),
        [P::Pending, P::Running, P::AwaitingApproval]
    );
    assert!(P::sources_of(P::AwaitingApproval).is_empty());

    let unfinished: Vec<TargetStatus> = TargetStatus::unfinished().collect();
    assert_eq!(unfinished, [Pending, Running, Verifying]);
    assert_eq!(
        TargetStatus::sources_of(Canceled),
        [Pending, Running, Verifying]
    );
    assert_eq!(TargetStatus::sources_of(Succeeded), [Running, Verifying]);
    assert!(TargetStatus::sources_of(Pending).is_empty());
}

#[test]
fn drift_compares_keys_in_both_directions() {
    let keys = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let source = keys(&["A", "B", "C"]);
    let target = keys(&["B", "C", "D", "E"]);
    let drift = KeyDrift::between(&source, &target);
    assert_eq!(drift.missing_on_target, ["A"]);
    assert_eq!(drift.missing_on_source, ["D", "E"]);
    assert!(!drift.is_empty());
    assert!(KeyDrift::between(&source, &source).is_empty());
}
