//! Freezes: windows of time in which some stages of a pipeline take no new deploys. A
//! freeze is one-off (`starts_at` to `ends_at`) or recurring, in GitLab's deploy-freeze
//! shape: each occurrence lasts from a `freeze_start` instant to the next `freeze_end`
//! instant, both five-field cron expressions read on the wall clock of an IANA time zone.
//!
//! Wall-clock times map to instants by one rule: a time that does not exist (a
//! spring-forward gap) moves to the first instant after the gap, and an ambiguous one (an
//! autumn fall-back) takes its first occurrence. The cron parser only ever sees wall-clock
//! times, so the rule lives here, once.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::{
    parser::{CronParser, Seconds, Year},
    Cron,
};
use uuid::Uuid;

use super::{stage::Stage, InvalidField};

/// The most characters a freeze's reason holds.
pub const REASON_MAX_CHARS: usize = 200;

/// How far around a wall-clock time a search looks for instants that a daylight-saving
/// change moved across it: more than any zone's shift.
const SHIFT_SLACK: Duration = Duration::hours(3);
/// A bound on the matches one search visits (every minute of the slack twice over).
const MOST_STEPS: usize = 1_000;

/// One stretch of time a freeze holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// A five-field cron expression with the text it was written as.
#[derive(Debug, Clone)]
pub struct CronExpression {
    text: String,
    cron: Cron,
}

impl CronExpression {
    /// Standard five fields (minute, hour, day of month, month, day of week; 0 and 7 are
    /// Sunday), with day of month and day of week joined by "or" as in Vixie cron.
    pub fn parse(field: &str, text: &str) -> Result<Self, InvalidField> {
        let trimmed = text.trim();
        if trimmed.split_whitespace().count() != 5 {
            return Err(InvalidField::new(
                field,
                format!(
                    "{} is not a cron expression of five fields (minute hour day-of-month month day-of-week)",
                    super::quoted(text)
                ),
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(trimmed).map_err(|error| {
            InvalidField::new(
                field,
                format!(
                    "{} is not a valid cron expression: {error}",
                    super::quoted(text)
                ),
            )
        })?;
        Ok(Self {
            text: trimmed.to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The latest instant at or before `now` at which the expression matches in `zone`.
    fn latest_at_or_before(&self, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Searching back from a wall clock a little ahead of now's catches the first half
        // of a repeated hour, which lies ahead of now's wall clock on the second half.
        let mut cursor = now.with_timezone(&zone).naive_local() + SHIFT_SLACK;
        for _ in 0..MOST_STEPS {
            let wall = self.cron.find_previous_occurrence(&cursor, true).ok()?;
            let instant = instant_of(zone, wall)?;
            if instant <= now {
                return Some(instant);
            }
            cursor = wall - Duration::minutes(1);
        }
        None
    }

    /// The earliest instant after `after` at which the expression matches in `zone`.
    fn earliest_after(&self, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&zone).naive_local() - SHIFT_SLACK;
        for _ in 0..MOST_STEPS {
            let wall = self.cron.find_next_occurrence(&cursor, true).ok()?;
            let instant = instant_of(zone, wall)?;
            if instant > after {
                return Some(instant);
            }
            cursor = wall + Duration::minutes(1);
        }
        None
    }
}

/// The instant a wall-clock time in `zone` stands for: a time in a gap moves to the first
/// instant after it, an ambiguous time takes its first occurrence.
fn instant_of(zone: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(time) => Some(time.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => {
            // Gaps end on a whole minute; the first wall-clock minute that exists again is
            // the gap's end, and its instant the transition itself.
            let mut probe = wall;
            for _ in 0..(48 * 60) {
                probe += Duration::minutes(1);
                if let Some(time) = zone.from_local_datetime(&probe).earliest() {
                    return Some(time.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// A recurring freeze: from each `start` instant to the next `end` instant, in `zone`.
#[derive(Debug, Clone)]
pub struct Recurrence {
    pub start: CronExpression,
    pub end: CronExpression,
    pub zone: Tz,
}

impl Recurrence {
    pub fn parse(freeze_start: &str, freeze_end: &str, zone: &str) -> Result<Self, InvalidField> {
        let start = CronExpression::parse("freeze_start", freeze_start)?;
        let end = CronExpression::parse("freeze_end", freeze_end)?;
        let zone: Tz = zone.trim().parse().map_err(|_| {
            InvalidField::new(
                "cron_timezone",
                format!(
                    "{} is not an IANA time zone such as Europe/Berlin or UTC",
                    super::quoted(zone)
                ),
            )
        })?;
        Ok(Self { start, end, zone })
    }

    /// The occurrence in effect at `now`: the last start came after the last end.
    fn current(&self, now: DateTime<Utc>) -> Option<Window> {
        let last_start = self.start.latest_at_or_before(self.zone, now)?;
        let last_end = self.end.latest_at_or_before(self.zone, now);
        if last_end.is_some_and(|end| end >= last_start) {
            return None;
        }
        let starts_at = match last_end {
            // Later starts within an occurrence do not begin a new one.
            Some(end) => self.start.earliest_after(self.zone, end)?,
            None => last_start,
        };
        let ends_at = self.end.earliest_after(self.zone, now)?;
        Some(Window { starts_at, ends_at })
    }

    /// The first occurrence that starts after `now` (after the current one, if any).
    fn next(&self, now: DateTime<Utc>) -> Option<Window> {
        let from = self.current(now).map_or(now, |window| window.ends_at);
        let starts_at = self.start.earliest_after(self.zone, from)?;
        let ends_at = self.end.earliest_after(self.zone, starts_at)?;
        Some(Window { starts_at, ends_at })
    }
}

/// When a freeze holds.
#[derive(Debug, Clone)]
pub enum Schedule {
    OneOff(Window),
    /// Boxed: two parsed cron expressions are large next to a window.
    Recurring(Box<Recurrence>),
}

impl Schedule {
    /// A one-off window: `starts_at` (default `now`) before `ends_at`, which is still to come.
    pub fn one_off(
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidField> {
        let ends_at = ends_at.ok_or_else(|| {
            InvalidField::new(
                "ends_at",
                "is required: give ends_at (with an optional starts_at), or freeze_start, freeze_end and cron_timezone",
            )
        })?;
        let starts_at = starts_at.unwrap_or(now);
        for (field, time) in [("starts_at", starts_at), ("ends_at", ends_at)] {
            super::check_storable_time(field, time)?;
        }
        if ends_at <= starts_at {
            return Err(InvalidField::new(
                "ends_at",
                format!(
                    "{} must come after starts_at ({})",
                    ends_at.to_rfc3339(),
                    starts_at.to_rfc3339()
                ),
            ));
        }
        if ends_at <= now {
            return Err(InvalidField::new(
                "ends_at",
                format!("{} has already passed", ends_at.to_rfc3339()),
            ));
        }
        Ok(Schedule::OneOff(Window { starts_at, ends_at }))
    }

    /// A recurring window, which must occur at least once from `now` on.
    pub fn recurring(
        freeze_start: &str,
        freeze_end: &str,
        zone: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidField> {
        let recurrence = Recurrence::parse(freeze_start, freeze_end, zone)?;
        if recurrence.current(now).is_none() && recurrence.next(now).is_none() {
            return Err(InvalidField::new(
                "freeze_start",
                format!(
                    "'{}' to '{}' never occurs from now on",
                    recurrence.start.as_str(),
                    recurrence.end.as_str()
                ),
            ));
        }
        Ok(Schedule::Recurring(Box::new(recurrence)))
    }

    /// The occurrence in effect at `now`, if any.
    pub fn current(&self, now: DateTime<Utc>) -> Option<Window> {
        match self {
            Schedule::OneOff(window) => {
                (window.starts_at <= now && now < window.ends_at).then_some(*window)
            }
            Schedule::Recurring(recurrence) => recurrence.current(now),
        }
    }

    /// The first occurrence that starts after `now`; for a one-off freeze, none once it
    /// has started.
    pub fn next(&self, now: DateTime<Utc>) -> Option<Window> {
        match self {
            Schedule::OneOff(window) => (window.starts_at > now).then_some(*window),
            Schedule::Recurring(recurrence) => recurrence.next(now),
        }
    }

    /// Whether the freeze is in effect or still to come at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        match self {
            Schedule::OneOff(window) => now < window.ends_at,
            Schedule::Recurring(_) => self.current(now).is_some() || self.next(now).is_some(),
        }
    }

    /// The next instant after `now` at which the freeze starts or ends.
    pub fn next_boundary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.current(now) {
            Some(window) => Some(window.ends_at),
            None => self.next(now).map(|window| window.starts_at),
        }
    }
}

/// A freeze as stored.
#[derive(Debug, Clone)]
pub struct Freeze {
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub stages: Vec<Stage>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub schedule: Schedule,
}

/// Why a stage is frozen: the active freeze covering it that ends last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenStage {
    pub stage: Stage,
    pub freeze_id: Uuid,
    pub reason: String,
    pub until: DateTime<Utc>,
}

impl FrozenStage {
    /// "stage production of pipeline 'shop' is frozen until …: reason".
    pub fn describe(&self, pipeline: &str) -> String {
        format!(
            "stage {} of pipeline '{pipeline}' is frozen until {} (freeze {}): {}",
            self.stage,
            self.until
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.freeze_id,
            super::quoted(&self.reason)
        )
    }

    /// "stage production is frozen until …: reason".
    pub fn describe_without_pipeline(&self) -> String {
        format!(
            "stage {} is frozen until {} (freeze {}): {}",
            self.stage,
            self.until
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.freeze_id,
            super::quoted(&self.reason)
        )
    }
}

/// The stages `freezes` hold at `now`. A stage is frozen while any freeze covering it is
/// active, until the latest end among them.
pub fn frozen_stages<'a>(
    freezes: impl IntoIterator<Item = &'a Freeze>,
    now: DateTime<Utc>,
) -> BTreeMap<Stage, FrozenStage> {
    let mut frozen: BTreeMap<Stage, FrozenStage> = BTreeMap::new();
    for freeze in freezes {
        let Some(window) = freeze.schedule.current(now) else {
            continue;
        };
        for &stage in &freeze.stages {
            let later = frozen
                .get(&stage)
                .is_none_or(|held| window.ends_at > held.until);
            if later {
                frozen.insert(
                    stage,
                    FrozenStage {
                        stage,
                        freeze_id: freeze.id,
                        reason: freeze.reason.clone(),
                        until: window.ends_at,
                    },
                );
            }
        }
    }
    frozen
}

/// The earliest instant after `now` at which any of `freezes` starts or ends.
pub fn next_boundary<'a>(
    freezes: impl IntoIterator<Item = &'a Freeze>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    freezes
        .into_iter()
        .filter_map(|freeze| freeze.schedule.next_boundary(now))
        .min()
}

/// Which stages are frozen now, across pipelines, and when that may next change.
#[derive(Debug, Clone, Default)]
pub struct FreezeState {
    /// Each frozen stage with its pipeline.
    pub frozen: Vec<(Uuid, FrozenStage)>,
    /// The earliest instant at which a freeze starts or ends.
    pub next_boundary: Option<DateTime<Utc>>,
}

impl FreezeState {
    /// The state `freezes` make at `now`.
    pub fn of<'a>(
        freezes: impl IntoIterator<Item = &'a Freeze> + Clone,
        now: DateTime<Utc>,
    ) -> Self {
        let mut by_pipeline: HashMap<Uuid, Vec<&Freeze>> = HashMap::new();
        for freeze in freezes.clone() {
            by_pipeline
                .entry(freeze.pipeline_id)
                .or_default()
                .push(freeze);
        }
        let mut frozen: Vec<(Uuid, FrozenStage)> = by_pipeline
            .into_iter()
            .flat_map(|(pipeline, freezes)| {
                frozen_stages(freezes, now)
                    .into_values()
                    .map(move |stage| (pipeline, stage))
            })
            .collect();
        frozen.sort_by_key(|(pipeline, stage)| (*pipeline, stage.stage));
        Self {
            frozen,
            next_boundary: next_boundary(freezes, now),
        }
    }
}

/// A freeze's reason: required, at most [`REASON_MAX_CHARS`] characters, one line.
pub fn check_reason(reason: &str) -> Result<String, InvalidField> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        return Err(InvalidField::new(
            "reason",
            "is required: say why the line stops",
        ));
    }
    if trimmed.chars().count() > REASON_MAX_CHARS {
        return Err(InvalidField::new(
            "reason",
            format!("must be at most {REASON_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidField::new(
            "reason",
            "must be one line without control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// The stages a freeze covers: at least one, each named once.
pub fn check_stages(stages: &[String]) -> Result<Vec<Stage>, InvalidField> {
    if stages.is_empty() {
        return Err(InvalidField::new(
            "stages",
            "must name at least one stage (review, development, staging, production)",
        ));
    }
    let mut parsed: Vec<Stage> = Vec::with_capacity(stages.len());
    for (index, name) in stages.iter().enumerate() {
        let field = format!("stages[{index}]");
        let stage = Stage::parse(&field, name)?;
        if parsed.contains(&stage) {
            return Err(InvalidField::new(
                field,
                format!("stage {stage} is listed twice"),
            ));
        }
        parsed.push(stage);
    }
    parsed.sort();
    Ok(parsed)
}

#[cfg(test)]
#[path = "freeze/tests.rs"]
mod tests;
