//! The expected windows were computed independently of this code and of its cron parser:
//! by a brute-force walk over every wall-clock minute with Python's `zoneinfo`, applying the
//! contract's rules for gaps (the first instant after) and repeated hours (the first
//! occurrence).

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn recurring(start: &str, end: &str, zone: &str) -> Schedule {
    Schedule::recurring(start, end, zone, at("2027-01-01T00:00:00Z"))
        .unwrap_or_else(|error| panic!("{start} / {end} / {zone}: {error}"))
}

/// The occurrences that start after `from`, one after the other.
fn windows_after(schedule: &Schedule, from: &str, count: usize) -> Vec<(String, String)> {
    let mut now = at(from);
    let mut found = Vec::new();
    for _ in 0..count {
        let window = schedule.next(now).expect("another occurrence");
        found.push((
            window.starts_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            window.ends_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ));
        now = window.starts_at;
    }
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(start, end)| (start.to_string(), end.to_string()))
        .collect()
}

#[test]
fn berlin_spring_forward_moves_a_start_in_the_gap_to_the_gap_end() {
    let schedule = recurring("30 2 * * *", "0 6 * * *", "Europe/Berlin");
    assert_eq!(
        windows_after(&schedule, "2027-03-26T00:00:00Z", 4),
        pairs(&[
            ("2027-03-26T01:30:00Z", "2027-03-26T05:00:00Z"),
            ("2027-03-27T01:30:00Z", "2027-03-27T05:00:00Z"),
            ("2027-03-28T01:00:00Z", "2027-03-28T04:00:00Z"),
            ("2027-03-29T00:30:00Z", "2027-03-29T04:00:00Z"),
        ])
    );
}

#[test]
fn berlin_fall_back_takes_the_first_of_a_repeated_time() {
    let schedule = recurring("30 2 * * *", "0 6 * * *", "Europe/Berlin");
    assert_eq!(
        windows_after(&schedule, "2027-10-29T00:00:00Z", 4),
        pairs(&[
            ("2027-10-29T00:30:00Z", "2027-10-29T04:00:00Z"),
            ("2027-10-30T00:30:00Z", "2027-10-30T04:00:00Z"),
            ("2027-10-31T00:30:00Z", "2027-10-31T05:00:00Z"),
            ("2027-11-01T01:30:00Z", "2027-11-01T05:00:00Z"),
        ])
    );
}

#[test]
fn a_berlin_sunday_lasts_23_hours_in_spring_and_25_in_autumn() {
    let schedule = recurring("0 0 * * 0", "0 0 * * 1", "Europe/Berlin");
    let spring = windows_after(&schedule, "2027-03-20T00:00:00Z", 3);
    assert_eq!(
        spring,
        pairs(&[
            ("2027-03-20T23:00:00Z", "2027-03-21T23:00:00Z"),
            ("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z"),
            ("2027-04-03T22:00:00Z", "2027-04-04T22:00:00Z"),
        ])
    );
    let autumn = windows_after(&schedule, "2027-10-23T00:00:00Z", 3);
    assert_eq!(
        autumn,
        pairs(&[
            ("2027-10-23T22:00:00Z", "2027-10-24T22:00:00Z"),
            ("2027-10-30T22:00:00Z", "2027-10-31T23:00:00Z"),
            ("2027-11-06T23:00:00Z", "2027-11-07T23:00:00Z"),
        ])
    );
    let short = schedule
        .current(at("2027-03-28T12:00:00Z"))
        .expect("frozen");
    assert_eq!(short.ends_at - short.starts_at, Duration::hours(23));
    let long = schedule
        .current(at("2027-10-31T12:00:00Z"))
        .expect("frozen");
    assert_eq!(long.ends_at - long.starts_at, Duration::hours(25));
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    let spring = recurring("30 2 * * *", "0 5 * * *", "America/New_York");
    assert_eq!(
        windows_after(&spring, "2027-03-12T00:00:00Z", 4),
        pairs(&[
            ("2027-03-12T07:30:00Z", "2027-03-12T10:00:00Z"),
            ("2027-03-13T07:30:00Z", "2027-03-13T10:00:00Z"),
            ("2027-03-14T07:00:00Z", "2027-03-14T09:00:00Z"),
            ("2027-03-15T06:30:00Z", "2027-03-15T09:00:00Z"),
        ])
    );
    let autumn = recurring("30 1 * * *", "0 3 * * *", "America/New_York");
    assert_eq!(
        windows_after(&autumn, "2027-11-05T00:00:00Z", 4),
        pairs(&[
            ("2027-11-05T05:30:00Z", "2027-11-05T07:00:00Z"),
            ("2027-11-06T05:30:00Z", "2027-11-06T07:00:00Z"),
            ("2027-11-07T05:30:00Z", "2027-11-07T08:00:00Z"),
            ("2027-11-08T06:30:00Z", "2027-11-08T08:00:00Z"),
        ])
    );
}

#[test]
fn an_overnight_freeze_across_new_yorks_autumn_change() {
    let schedule = recurring("0 22 * * *", "0 6 * * *", "America/New_York");
    assert_eq!(
        windows_after(&schedule, "2027-11-05T12:00:00Z", 3),
        pairs(&[
            ("2027-11-06T02:00:00Z", "2027-11-06T10:00:00Z"),
            ("2027-11-07T02:00:00Z", "2027-11-07T11:00:00Z"),
            ("2027-11-08T03:00:00Z", "2027-11-08T11:00:00Z"),
        ])
    );
    // At 01:30 on the second pass through the repeated hour, the freeze still holds.
    let window = schedule
        .current(at("2027-11-07T06:30:00Z"))
        .expect("frozen in the repeated hour");
    assert_eq!(window.starts_at, at("2027-11-07T02:00:00Z"));
    assert_eq!(window.ends_at, at("2027-11-07T11:00:00Z"));
}

#[test]
fn a_weekend_freeze_is_current_and_names_the_next() {
    let schedule = recurring("0 18 * * 5", "0 8 * * 1", "America/New_York");
    let now = at("2027-03-13T12:00:00Z");
    assert_eq!(
        schedule.current(now),
        Some(Window {
            starts_at: at("2027-03-12T23:00:00Z"),
            ends_at: at("2027-03-15T12:00:00Z"),
        })
    );
    assert_eq!(
        schedule.next(now),
        Some(Window {
            starts_at: at("2027-03-19T22:00:00Z"),
            ends_at: at("2027-03-22T12:00:00Z"),
        })
    );
    assert_eq!(
        schedule.next_boundary(now),
        Some(at("2027-03-15T12:00:00Z"))
    );
    // After it ends, nothing is current and the next boundary is the next start.
    let after = at("2027-03-16T00:00:00Z");
    assert_eq!(schedule.current(after), None);
    assert_eq!(
        schedule.next_boundary(after),
        Some(at("2027-03-19T22:00:00Z"))
    );
    // The instant it ends, it no longer holds.
    assert_eq!(schedule.current(at("2027-03-15T12:00:00Z")), None);
}

#[test]
fn zero_and_seven_are_both_sunday() {
    let zero = recurring("0 0 * * 0", "0 0 * * 1", "UTC");
    let seven = recurring("0 0 * * 7", "0 0 * * 1", "UTC");
    let from = at("2027-01-01T00:00:00Z");
    assert_eq!(zero.next(from), seven.next(from));
    assert_eq!(
        zero.next(from).map(|window| window.starts_at),
        Some(at("2027-01-03T00:00:00Z"))
    );
}

#[test]
fn a_one_off_freeze_is_next_then_current_then_gone() {
    let now = at("2027-06-01T12:00:00Z");
    let schedule = Schedule::one_off(
        Some(at("2027-06-01T13:00:00Z")),
        Some(at("2027-06-01T15:00:00Z")),
        now,
    )
    .expect("valid");
    assert_eq!(schedule.current(now), None);
    assert!(schedule.next(now).is_some());
    assert_eq!(
        schedule.next_boundary(now),
        Some(at("2027-06-01T13:00:00Z"))
    );
    let during = at("2027-06-01T14:00:00Z");
    assert!(schedule.current(during).is_some());
    assert_eq!(schedule.next(during), None);
    assert_eq!(
        schedule.next_boundary(during),
        Some(at("2027-06-01T15:00:00Z"))
    );
    assert!(!schedule.is_live(at("2027-06-01T15:00:00Z")));
    assert!(schedule.current(at("2027-06-01T15:00:00Z")).is_none());
}

#[test]
fn a_one_off_freeze_must_end_after_it_starts_and_after_now() {
    let now = at("2027-06-01T12:00:00Z");
    let field = |result: Result<Schedule, InvalidField>| result.err().map(|error| error.field);
    assert_eq!(
        field(Schedule::one_off(None, None, now)),
        Some("ends_at".into())
    );
    assert_eq!(
        field(Schedule::one_off(
            Some(at("2027-06-02T00:00:00Z")),
            Some(at("2027-06-01T23:00:00Z")),
            now
        )),
        Some("ends_at".into())
    );
    assert_eq!(
        field(Schedule::one_off(
            None,
            Some(at("2027-06-01T11:00:00Z")),
            now
        )),
        Some("ends_at".into())
    );
    let far = DateTime::from_timestamp(1_000_000_000_000, 0).expect("a time chrono holds");
    assert_eq!(
        field(Schedule::one_off(None, Some(far), now)),
        Some("ends_at".into())
    );
    // starts_at defaults to now: current at once.
    let schedule = Schedule::one_off(None, Some(at("2027-06-01T13:00:00Z")), now).expect("valid");
    assert!(schedule.current(now).is_some());
}

#[test]
fn bad_cron_expressions_and_zones_name_their_field() {
    let now = at("2027-01-01T00:00:00Z");
    let field = |start: &str, end: &str, zone: &str| {
        Schedule::recurring(start, end, zone, now)
            .err()
            .map(|error| error.field)
    };
    assert_eq!(
        field("0 0 * *", "0 6 * * *", "UTC"),
        Some("freeze_start".into())
    );
    assert_eq!(
        field("0 0 * * * *", "0 6 * * *", "UTC"),
        Some("freeze_start".into())
    );
    assert_eq!(
        field("61 0 * * *", "0 6 * * *", "UTC"),
        Some("freeze_start".into())
    );
    assert_eq!(
        field("0 0 * * *", "0 25 * * *", "UTC"),
        Some("freeze_end".into())
    );
    assert_eq!(
        field("0 0 * * *", "0 6 * * *", "Mars/Olympus"),
        Some("cron_timezone".into())
    );
    assert_eq!(
        field("0 0 31 2 *", "0 6 * * *", "UTC"),
        Some("freeze_start".into())
    );
    assert!(field("0 0 * * *", "0 6 * * *", "Europe/Berlin").is_none());
}

fn freeze(stages: &[Stage], schedule: Schedule, reason: &str) -> Freeze {
    Freeze {
        id: Uuid::new_v4(),
        pipeline_id: Uuid::nil(),
        stages: stages.to_vec(),
        reason: reason.into(),
        created_by: "ops".into(),
        created_at: at("2027-01-01T00:00:00Z"),
        schedule,
    }
}

#[test]
fn a_stage_is_frozen_until_the_latest_end_among_its_active_freezes() {
    let now = at("2027-06-01T12:00:00Z");
    let short = freeze(
        &[Stage::Production],
        Schedule::one_off(None, Some(at("2027-06-01T13:00:00Z")), now).expect("valid"),
        "short",
    );
    let long = freeze(
        &[Stage::Production, Stage::Staging],
        Schedule::one_off(None, Some(at("2027-06-01T18:00:00Z")), now).expect("valid"),
        "long",
    );
    let later = freeze(
        &[Stage::Development],
        Schedule::one_off(
            Some(at("2027-06-01T14:00:00Z")),
            Some(at("2027-06-01T15:00:00Z")),
            now,
        )
        .expect("valid"),
        "later",
    );
    let all = [short, long.clone(), later];
    let frozen = frozen_stages(&all, now);
    assert_eq!(frozen.len(), 2);
    assert_eq!(frozen[&Stage::Production].freeze_id, long.id);
    assert_eq!(frozen[&Stage::Production].until, at("2027-06-01T18:00:00Z"));
    assert_eq!(frozen[&Stage::Staging].reason, "long");
    assert!(!frozen.contains_key(&Stage::Development));
    assert_eq!(next_boundary(&all, now), Some(at("2027-06-01T13:00:00Z")));
}

#[test]
fn reasons_and_stages_are_checked() {
    assert_eq!(
        check_reason("  sale weekend ").as_deref(),
        Ok("sale weekend")
    );
    assert_eq!(check_reason(" ").map_err(|e| e.field), Err("reason".into()));
    assert!(check_reason(&"x".repeat(REASON_MAX_CHARS)).is_ok());
    assert!(check_reason(&"x".repeat(REASON_MAX_CHARS + 1)).is_err());
    assert!(check_reason("two\nlines").is_err());
    assert_eq!(
        check_stages(&["production".into(), "staging".into()]),
        Ok(vec![Stage::Staging, Stage::Production])
    );
    assert_eq!(check_stages(&[]).map_err(|e| e.field), Err("stages".into()));
    assert_eq!(
        check_stages(&["production".into(), "qa".into()]).map_err(|e| e.field),
        Err("stages[1]".into())
    );
    assert_eq!(
        check_stages(&["production".into(), "production".into()]).map_err(|e| e.field),
        Err("stages[1]".into())
    );
}

#[test]
fn a_freeze_holds_only_its_own_pipelines_stages() {
    let now = at("2027-06-01T12:00:00Z");
    let mut shop = freeze(
        &[Stage::Production],
        Schedule::one_off(None, Some(at("2027-06-01T18:00:00Z")), now).expect("valid"),
        "shop sale",
    );
    shop.pipeline_id = Uuid::new_v4();
    let mut blog = freeze(
        &[Stage::Staging],
        Schedule::one_off(
            Some(at("2027-06-01T13:00:00Z")),
            Some(at("2027-06-01T14:00:00Z")),
            now,
        )
        .expect("valid"),
        "blog later",
    );
    blog.pipeline_id = Uuid::new_v4();
    let state = FreezeState::of(&[shop.clone(), blog.clone()], now);
    assert_eq!(state.frozen.len(), 1, "{state:?}");
    assert_eq!(state.frozen[0].0, shop.pipeline_id);
    assert_eq!(state.frozen[0].1.stage, Stage::Production);
    assert_eq!(state.next_boundary, Some(at("2027-06-01T13:00:00Z")));
    let later = FreezeState::of(&[shop.clone(), blog.clone()], at("2027-06-01T13:30:00Z"));
    let held: Vec<(Uuid, Stage)> = later
        .frozen
        .iter()
        .map(|(pipeline, frozen)| (*pipeline, frozen.stage))
        .collect();
    assert!(held.contains(&(shop.pipeline_id, Stage::Production)));
    assert!(held.contains(&(blog.pipeline_id, Stage::Staging)));
    assert!(!held.contains(&(blog.pipeline_id, Stage::Production)));
    assert_eq!(later.next_boundary, Some(at("2027-06-01T14:00:00Z")));
}
