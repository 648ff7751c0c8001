//! Sync schedules: a cron expression and an IANA time zone per bank connection, turned into
//! the instants at which a sync is due. Pure: no I/O and no clock; every function is given the
//! time it reasons about, so the scheduler and its tests share one notion of "now".
//!
//! # What users type
//!
//! Ops type five-field Unix cron (`minute hour day-of-month month day-of-week`, e.g.
//! `0 2 * * *`; day of week 0 or 7 = Sunday; month and day names; `*`, lists, ranges, steps;
//! `@daily`, `@hourly`, `@weekly`, `@monthly`, `@yearly`). The `cron` crate (0.17) reads
//! something else: six or seven fields with seconds first and day of week 1 = Sunday. So every
//! field is parsed here into the set of values it allows and the expression is rewritten in the
//! crate's form ([`CronSchedule::normalized`]); the six- and seven-field forms are accepted too
//! (read with the crate's numbering). Anything else is refused with a [`ScheduleError`] naming
//! the field. Two things are refused on purpose: a seconds field with more than one value (the
//! scheduler ticks once a minute), and restricting both day of month and day of week (Unix cron
//! runs when *either* matches, the crate when *both* do: rather than guess, we ask for one).
//!
//! # Daylight saving time
//!
//! A schedule names wall-clock times in its zone, and each wall-clock time runs once:
//!
//! - a time that does not exist, because clocks spring forward over it, runs once at the moment
//!   the skipped hour ends: `30 2 * * *` in Europe/Zurich on 2026-03-29 (02:00 jumps to 03:00)
//!   runs at 03:00 CEST, 01:00 UTC;
//! - a time that exists twice, because clocks fall back over it, runs once, at its first
//!   occurrence: `30 2 * * *` in Europe/Zurich on 2026-10-25 (03:00 goes back to 02:00) runs at
//!   02:30 CEST, 00:30 UTC, and not again at 02:30 CET.
//!
//! With this rule the instant of a wall-clock time never decreases as the wall-clock time
//! increases, which is what lets [`CronSchedule::latest_at_or_before`] walk backwards and stop
//! at the first match. Several times inside one skipped hour (`*/15 2 * * *`) fall on the same
//! instant and run once.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

/// Why a schedule is refused: the field at fault (`cron`, `cron.minute`, …, `timezone`) and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ScheduleError {
    pub field: &'static str,
    pub reason: String,
}

impl ScheduleError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ScheduleError {
            field,
            reason: reason.into(),
        }
    }
}

/// A parsed schedule: once you hold one, its expression and zone are valid.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    normalized: String,
    zone: Tz,
    cron: cron::Schedule,
}

/// One scheduled time, in UTC and as the wall clock of the schedule's zone shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub utc: DateTime<Utc>,
    pub local: DateTime<FixedOffset>,
}

impl CronSchedule {
    /// Parses a cron expression (five-field Unix, or six/seven fields seconds first) and an IANA
    /// time zone name.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let zone = parse_timezone(timezone)?;
        let normalized = normalize(expression)?;
        let cron = cron::Schedule::from_str(&normalized).map_err(|e| {
            ScheduleError::new("cron", format!("'{expression}' is not accepted: {e}"))
        })?;
        Ok(CronSchedule {
            expression: expression.trim().to_owned(),
            normalized,
            zone,
            cron,
        })
    }

    /// The expression as the user typed it (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The expression in the `cron` crate's form: seconds first, day of week 1 = Sunday.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The IANA name of the zone.
    pub fn timezone(&self) -> &str {
        self.zone.name()
    }

    /// `t` as the schedule's wall clock shows it, with the offset in force then.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.zone).fixed_offset()
    }

    /// The scheduled instants strictly after `after`, earliest first, each once.
    pub fn instants_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Wall-clock times are enumerated as if they were UTC (the crate then never meets a
        // missing or doubled time) and resolved to instants by our rule. Wall-clock times not
        // after `after`'s own map to instants not after it (the mapping is monotone), so
        // starting there misses nothing; the filter drops the few in a repeated hour.
        let start = Utc.from_utc_datetime(&self.wall_clock(after));
        let mut last = None;
        self.cron
            .after(&start)
            .map(|wall| self.resolve(wall.naive_utc()))
            .filter(move |t| {
                let new = *t > after && last != Some(*t);
                if new {
                    last = Some(*t);
                }
                new
            })
    }

    /// The next `n` scheduled times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<Occurrence> {
        self.instants_after(after)
            .take(n)
            .map(|utc| Occurrence {
                utc,
                local: self.local(utc),
            })
            .collect()
    }

    /// The latest scheduled instant at or before `now`, if any.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // After clocks fell back, wall-clock times a little later than now's may already have
        // passed (the first pass of the repeated hour): start that much later.
        let start =
            self.wall_clock(now) + self.recent_fall_back(now) + chrono::Duration::seconds(1);
        self.cron
            .after(&Utc.from_utc_datetime(&start))
            .rev()
            .map(|wall| self.resolve(wall.naive_utc()))
            .find(|t| *t <= now)
    }

    fn wall_clock(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    fn offset_secs(&self, t: DateTime<Utc>) -> i64 {
        i64::from(
            self.zone
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    }

    /// How far clocks went back during the day before `now` (zero if they did not).
    fn recent_fall_back(&self, now: DateTime<Utc>) -> chrono::Duration {
        let current = self.offset_secs(now);
        let earlier = [13, 26]
            .into_iter()
            .map(|h| self.offset_secs(now - chrono::Duration::hours(h)))
            .max()
            .unwrap_or(current);
        chrono::Duration::seconds((earlier - current).max(0))
    }

    /// The instant of a wall-clock time, by the rule in the module docs.
    fn resolve(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        resolve_wall(self.zone, wall)
    }
}

/// The instant of a wall-clock time in `zone`, by the rule in the module docs: a time skipped
/// by a spring-forward gap is the instant the gap ends; a time repeated by a fall-back is its
/// first occurrence.
pub(crate) fn resolve_wall(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => end_of_gap(zone, wall),
    }
}

/// The instant a spring-forward gap containing `wall` ends: the first instant whose wall
/// clock is past `wall`.
fn end_of_gap(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    let wall_clock = |t: DateTime<Utc>| t.with_timezone(&zone).naive_local();
    let offset_secs = |t: DateTime<Utc>| {
        i64::from(
            zone.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    };
    // An instant before the gap: step back an hour at a time (gaps are an hour, rarely
    // more; Samoa skipped a day once).
    let before = (1..=48).find_map(|h| {
        zone.from_local_datetime(&(wall - chrono::Duration::hours(h)))
            .earliest()
    });
    let Some(before) = before.map(|t| t.with_timezone(&Utc)) else {
        return Utc.from_utc_datetime(&wall);
    };
    // `wall` read with the offset before the gap is already past it.
    let mut lo = before.timestamp();
    let mut hi = (wall - chrono::Duration::seconds(offset_secs(before)))
        .and_utc()
        .timestamp();
    let past = |secs: i64| DateTime::from_timestamp(secs, 0).is_some_and(|t| wall_clock(t) > wall);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if past(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(before)
}

/// Parses an IANA time zone name (`Europe/Zurich`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| {
        ScheduleError::new(
            "timezone",
            format!("'{name}' is not an IANA time zone name (e.g. Europe/Zurich, UTC)"),
        )
    })
}

/// A connection's deterministic offset within the spread window: the same connection always
/// starts at the same point of the window, and thousands of connections scheduled at one time
/// spread evenly over it. Zero when the window is zero.
pub fn spread_offset(connection: Uuid, window: std::time::Duration) -> std::time::Duration {
    let secs = window.as_secs();
    if secs == 0 {
        return std::time::Duration::ZERO;
    }
    // FNV-1a over all sixteen bytes: stable across releases (unlike std's hasher), and it
    // mixes the random tail of a v7 id as well as its timestamp head.
    let hash = connection
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    std::time::Duration::from_secs(hash % secs)
}

/// When a scheduled sync may start: its scheduled time plus the connection's offset in the
/// spread window. A catch-up (fired more than a window late) spreads from `now` instead, so
/// the syncs missed during an outage do not all start at once either.
pub fn start_time(
    connection: Uuid,
    scheduled_for: DateTime<Utc>,
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> DateTime<Utc> {
    let window_c = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let base = if now - scheduled_for > window_c {
        now
    } else {
        scheduled_for
    };
    let offset = chrono::Duration::from_std(spread_offset(connection, window))
        .unwrap_or(chrono::Duration::zero());
    base + offset
}

/// One field of a cron expression: its name, bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names of the values, the first naming `names_from`.
    names: &'static [&'static str],
    names_from: u32,
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SECOND: Field = Field {
    name: "cron.second",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const MINUTE: Field = Field {
    name: "cron.minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Field = Field {
    name: "cron.hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "cron.day_of_month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Field = Field {
    name: "cron.month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
    names_from: 1,
};
/// Unix: 0-7, 0 and 7 both Sunday.
const UNIX_DAY_OF_WEEK: Field = Field {
    name: "cron.day_of_week",
    min: 0,
    max: 7,
    names: DAY_NAMES,
    names_from: 0,
};
/// The `cron` crate: 1-7, 1 = Sunday.
const CRATE_DAY_OF_WEEK: Field = Field {
    name: "cron.day_of_week",
    min: 1,
    max: 7,
    names: DAY_NAMES,
    names_from: 1,
};
const YEAR: Field = Field {
    name: "cron.year",
    min: 1970,
    max: 2099,
    names: &[],
    names_from: 0,
};

/// The values each field allows; day of week as 0..=6 with 0 = Sunday.
struct Fields {
    second: BTreeSet<u32>,
    minute: BTreeSet<u32>,
    hour: BTreeSet<u32>,
    day_of_month: BTreeSet<u32>,
    month: BTreeSet<u32>,
    day_of_week: BTreeSet<u32>,
    year: Option<BTreeSet<u32>>,
}

/// Rewrites an expression in the `cron` crate's form, or says which field is wrong.
fn normalize(expression: &str) -> Result<String, ScheduleError> {
    let expression = expression.trim();
    let expanded = match expression.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other if other.starts_with('@') => {
            return Err(ScheduleError::new(
                "cron",
                format!(
                    "'{expression}' is not supported; use @yearly, @monthly, @weekly, @daily, \
                     @hourly or five fields"
                ),
            ));
        }
        _ => expression,
    };
    let parts: Vec<&str> = expanded.split_whitespace().collect();
    let fields = match parts.as_slice() {
        [minute, hour, dom, month, dow] => Fields {
            second: BTreeSet::from([0]),
            minute: parse_field(&MINUTE, minute)?,
            hour: parse_field(&HOUR, hour)?,
            day_of_month: parse_field(&DAY_OF_MONTH, dom)?,
            month: parse_field(&MONTH, month)?,
            day_of_week: parse_field(&UNIX_DAY_OF_WEEK, dow)?
                .into_iter()
                .map(|d| d % 7)
                .collect(),
            year: None,
        },
        [second, minute, hour, dom, month, dow, rest @ ..] if rest.len() <= 1 => Fields {
            second: parse_field(&SECOND, second)?,
            minute: parse_field(&MINUTE, minute)?,
            hour: parse_field(&HOUR, hour)?,
            day_of_month: parse_field(&DAY_OF_MONTH, dom)?,
            month: parse_field(&MONTH, month)?,
            day_of_week: parse_field(&CRATE_DAY_OF_WEEK, dow)?
                .into_iter()
                .map(|d| d - 1)
                .collect(),
            year: rest.first().map(|y| parse_field(&YEAR, y)).transpose()?,
        },
        _ => {
            return Err(ScheduleError::new(
                "cron",
                format!(
                    "expected five fields (minute hour day-of-month month day-of-week, e.g. \
                     '0 2 * * *'), or six or seven with seconds first; found {}",
                    parts.len()
                ),
            ));
        }
    };
    if fields.second.len() != 1 {
        return Err(ScheduleError::new(
            SECOND.name,
            "must be a single value: a schedule runs at most once a minute",
        ));
    }
    let all_days_of_month = fields.day_of_month.len() == 31;
    let all_days_of_week = fields.day_of_week.len() == 7;
    if !all_days_of_month && !all_days_of_week {
        return Err(ScheduleError::new(
            UNIX_DAY_OF_WEEK.name,
            "day of month and day of week are both restricted; Unix cron would run when either \
             matches, which this scheduler does not do: restrict only one of them",
        ));
    }
    let mut out = vec![
        render(&fields.second, SECOND.min, SECOND.max),
        render(&fields.minute, MINUTE.min, MINUTE.max),
        render(&fields.hour, HOUR.min, HOUR.max),
        render(&fields.day_of_month, DAY_OF_MONTH.min, DAY_OF_MONTH.max),
        render(&fields.month, MONTH.min, MONTH.max),
        render(
            &fields.day_of_week.iter().map(|d| d + 1).collect(),
            CRATE_DAY_OF_WEEK.min,
            CRATE_DAY_OF_WEEK.max,
        ),
    ];
    if let Some(year) = &fields.year {
        out.push(render(year, YEAR.min, YEAR.max));
    }
    Ok(out.join(" "))
}

/// Parses one field into the values it allows: `*`, `?` (day fields), values, names, ranges
/// `a-b`, steps `*/n`, `a-b/n`, `a/n`, and lists of these.
fn parse_field(field: &Field, text: &str) -> Result<BTreeSet<u32>, ScheduleError> {
    let err = |reason: String| ScheduleError::new(field.name, reason);
    let day_field = field.name.starts_with("cron.day_of");
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(err(format!("'{text}' has an empty list item")));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<u32>() {
                Ok(n) if n >= 1 => (range, Some(n)),
                _ => {
                    return Err(err(format!(
                        "'{item}': the step must be a whole number from 1"
                    )));
                }
            },
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || (range == "?" && day_field) {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a)?, value(field, b)?);
            if a > b {
                return Err(err(format!("'{item}': the range runs backwards")));
            }
            (a, b)
        } else {
            let v = value(field, range)?;
            (v, if step.is_some() { field.max } else { v })
        };
        let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
        values.extend((lo..=hi).step_by(step));
    }
    Ok(values)
}

/// One value of a field: a number in range or a name.
fn value(field: &Field, text: &str) -> Result<u32, ScheduleError> {
    if let Ok(n) = text.parse::<u32>() {
        if (field.min..=field.max).contains(&n) {
            return Ok(n);
        }
        return Err(ScheduleError::new(
            field.name,
            format!("'{text}' is out of range {}-{}", field.min, field.max),
        ));
    }
    let upper = text.to_ascii_uppercase();
    if let Some(i) = field.names.iter().position(|n| *n == upper) {
        return Ok(field.names_from + u32::try_from(i).unwrap_or(0));
    }
    let expected = if field.names.is_empty() {
        "a number"
    } else {
        "a number or a name"
    };
    Err(ScheduleError::new(
        field.name,
        format!("'{text}' is not {expected} (L, W and # are not supported)"),
    ))
}

/// A set of values as the crate reads it: `*` when it is the whole range, else a list with
/// runs of three or more written as ranges.
fn render(values: &BTreeSet<u32>, min: u32, max: u32) -> String {
    if values.len() == usize::try_from(max - min + 1).unwrap_or(0) {
        return "*".to_owned();
    }
    let mut parts = Vec::new();
    let mut iter = values.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        match end - start {
            0 => parts.push(start.to_string()),
            1 => {
                parts.push(start.to_string());
                parts.push(end.to_string());
            }
            _ => parts.push(format!("{start}-{end}")),
        }
    }
    parts.join(",")
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339 in the test")
            .with_timezone(&Utc)
    }

    fn schedule(cron: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(cron, tz).unwrap_or_else(|e| panic!("{cron} {tz}: {e}"))
    }

    fn utc_times(s: &CronSchedule, after: &str, n: usize) -> Vec<String> {
        s.upcoming(utc(after), n)
            .iter()
            .map(|o| o.utc.to_rfc3339())
            .collect()
    }

    fn local_times(s: &CronSchedule, after: &str, n: usize) -> Vec<String> {
        s.upcoming(utc(after), n)
            .iter()
            .map(|o| o.local.to_rfc3339())
            .collect()
    }

    #[test]
    fn five_field_unix_cron_is_rewritten_seconds_first_with_sunday_as_one() {
        let cases = [
            ("0 2 * * *", "0 0 2 * * *"),
            ("*/15 1-3 * * *", "0 0,15,30,45 1-3 * * *"),
            ("30 2 * * 1-5", "0 30 2 * * 2-6"),
            ("0 6 * * 0", "0 0 6 * * 1"),
            ("0 6 * * 7", "0 0 6 * * 1"),
            ("0 6 * * 5-7", "0 0 6 * * 1,6,7"),
            ("0 6 * * sun,SAT", "0 0 6 * * 1,7"),
            ("0 6 * * */2", "0 0 6 * * 1,3,5,7"),
            ("0 0 1 jan-mar *", "0 0 0 1 1-3 *"),
            ("5/20 * * * *", "0 5,25,45 * * * *"),
            ("0 2 * * ?", "0 0 2 * * *"),
            ("@daily", "0 0 0 * * *"),
            ("@weekly", "0 0 0 * * 1"),
            ("@hourly", "0 0 * * * *"),
        ];
        for (unix, crate_form) in cases {
            assert_eq!(schedule(unix, "UTC").normalized(), crate_form, "{unix}");
        }
    }

    #[test]
    fn six_and_seven_field_forms_keep_the_crate_numbering() {
        assert_eq!(schedule("0 0 2 * * *", "UTC").normalized(), "0 0 2 * * *");
        assert_eq!(
            schedule("0 30 2 * * MON-FRI", "UTC").normalized(),
            "0 30 2 * * 2-6"
        );
        assert_eq!(
            schedule("0 0 2 * * 1 2027-2030", "UTC").normalized(),
            "0 0 2 * * 1 2027-2030"
        );
        assert_eq!(
            schedule("0 0 2 29 2 ? 2028", "UTC").normalized(),
            "0 0 2 29 2 * 2028"
        );
    }

    #[test]
    fn a_weekday_schedule_runs_on_the_days_unix_cron_means() {
        // 2026-11-27 is a Friday: Unix 1-5 (Monday to Friday) skips the weekend.
        let s = schedule("0 2 * * 1-5", "UTC");
        assert_eq!(
            utc_times(&s, "2026-11-26T12:00:00Z", 3),
            [
                "2026-11-27T02:00:00+00:00",
                "2026-11-30T02:00:00+00:00",
                "2026-12-01T02:00:00+00:00"
            ]
        );
        // Unix 0 and 7 are Sunday.
        let sunday = schedule("0 2 * * 0", "UTC");
        assert_eq!(
            utc_times(&sunday, "2026-11-26T12:00:00Z", 1),
            ["2026-11-29T02:00:00+00:00"]
        );
    }

    #[test]
    fn bad_expressions_are_refused_naming_the_field() {
        let cases = [
            ("61 2 * * *", "cron.minute", "'61' is out of range 0-59"),
            ("0 24 * * *", "cron.hour", "'24' is out of range 0-23"),
            ("0 2 0 * *", "cron.day_of_month", "'0' is out of range 1-31"),
            ("0 2 * 13 *", "cron.month", "'13' is out of range 1-12"),
            (
                "0 2 * FOO *",
                "cron.month",
                "'FOO' is not a number or a name",
            ),
            ("0 2 * * 8", "cron.day_of_week", "'8' is out of range 0-7"),
            (
                "0 2 * * MON#2",
                "cron.day_of_week",
                "'MON#2' is not a number or a name",
            ),
            (
                "*/0 2 * * *",
                "cron.minute",
                "the step must be a whole number from 1",
            ),
            ("0 5-2 * * *", "cron.hour", "the range runs backwards"),
            ("0 2,,3 * * *", "cron.hour", "empty list item"),
            ("0 2 * *", "cron", "found 4"),
            ("0 0 2 * * * 2030 1", "cron", "found 8"),
            ("", "cron", "found 0"),
            ("@reboot", "cron", "not supported"),
            ("*/10 0 2 * * *", "cron.second", "single value"),
            ("0 2 1 * 1", "cron.day_of_week", "both restricted"),
            ("0 0 2 * * 0", "cron.day_of_week", "'0' is out of range 1-7"),
            ("0 0 2 * * * 1969", "cron.year", "out of range 1970-2099"),
        ];
        for (cron, field, reason) in cases {
            let e = CronSchedule::parse(cron, "UTC").expect_err(cron);
            assert_eq!(e.field, field, "{cron}: {e}");
            assert!(e.reason.contains(reason), "{cron}: {e}");
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }

    #[test]
    fn an_unknown_time_zone_is_refused_naming_the_field() {
        let e = CronSchedule::parse("0 2 * * *", "Europe/Zurch").unwrap_err();
        assert_eq!(e.field, "timezone");
        assert_eq!(
            e.to_string(),
            "timezone: 'Europe/Zurch' is not an IANA time zone name (e.g. Europe/Zurich, UTC)"
        );
        assert!(CronSchedule::parse("0 2 * * *", "").is_err());
        assert_eq!(schedule("0 2 * * *", "UTC").timezone(), "UTC");
    }

    #[test]
    fn a_nightly_schedule_follows_the_zones_offset_through_the_year() {
        let s = schedule("0 2 * * *", "Europe/Zurich");
        // Winter: CET (+01:00); summer: CEST (+02:00).
        assert_eq!(
            utc_times(&s, "2026-12-01T12:00:00Z", 2),
            ["2026-12-02T01:00:00+00:00", "2026-12-03T01:00:00+00:00"]
        );
        assert_eq!(
            local_times(&s, "2026-07-01T12:00:00Z", 1),
            ["2026-07-02T02:00:00+02:00"]
        );
        assert_eq!(
            utc_times(&s, "2026-07-01T12:00:00Z", 1),
            ["2026-07-02T00:00:00+00:00"]
        );
    }

    #[test]
    fn on_the_spring_forward_day_a_skipped_time_runs_once_when_the_gap_ends() {
        // Europe/Zurich, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let s = schedule("30 2 * * *", "Europe/Zurich");
        assert_eq!(
            utc_times(&s, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T01:30:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-30T00:30:00+00:00",
                "2026-03-31T00:30:00+00:00"
            ]
        );
        assert_eq!(
            local_times(&s, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
        // Every quarter hour: the four times inside the gap and 03:00 are one instant.
        let q = schedule("*/15 * * * *", "Europe/Zurich");
        assert_eq!(
            utc_times(&q, "2026-03-29T00:30:00Z", 4),
            [
                "2026-03-29T00:45:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T01:15:00+00:00",
                "2026-03-29T01:30:00+00:00"
            ]
        );
    }

    #[test]
    fn on_the_fall_back_day_a_repeated_time_runs_once_at_its_first_occurrence() {
        // Europe/Zurich, 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC).
        let s = schedule("30 2 * * *", "Europe/Zurich");
        assert_eq!(
            utc_times(&s, "2026-10-23T12:00:00Z", 4),
            [
                "2026-10-24T00:30:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-26T01:30:00+00:00",
                "2026-10-27T01:30:00+00:00"
            ]
        );
        assert_eq!(
            local_times(&s, "2026-10-24T12:00:00Z", 1),
            ["2026-10-25T02:30:00+02:00"]
        );
        // Asked during the second pass of the hour, the next time is tomorrow's.
        assert_eq!(
            utc_times(&s, "2026-10-25T01:20:00Z", 1),
            ["2026-10-26T01:30:00+00:00"]
        );
    }

    #[test]
    fn the_latest_scheduled_time_is_found_across_both_dst_changes() {
        let s = schedule("30 2 * * *", "Europe/Zurich");
        let latest = |now: &str| s.latest_at_or_before(utc(now)).map(|t| t.to_rfc3339());
        // Spring forward: before the gap ends, the last run was the previous night.
        assert_eq!(
            latest("2026-03-29T00:59:59Z").as_deref(),
            Some("2026-03-28T01:30:00+00:00")
        );
        assert_eq!(
            latest("2026-03-29T01:00:00Z").as_deref(),
            Some("2026-03-29T01:00:00+00:00")
        );
        assert_eq!(
            latest("2026-03-29T05:00:00Z").as_deref(),
            Some("2026-03-29T01:00:00+00:00")
        );
        // Fall back: during the second 02:30 (01:30 UTC) the latest is still the first one.
        assert_eq!(
            latest("2026-10-25T00:29:59Z").as_deref(),
            Some("2026-10-24T00:30:00+00:00")
        );
        assert_eq!(
            latest("2026-10-25T00:30:00Z").as_deref(),
            Some("2026-10-25T00:30:00+00:00")
        );
        assert_eq!(
            latest("2026-10-25T01:45:00Z").as_deref(),
            Some("2026-10-25T00:30:00+00:00")
        );
        // A schedule that never ran before has no latest time.
        let future = schedule("0 0 2 1 1 * 2090", "UTC");
        assert_eq!(
            future.latest_at_or_before(utc("2026-11-25T00:00:00Z")),
            None
        );
    }

    #[test]
    fn the_latest_time_is_exact_at_the_boundary_and_for_every_minute_schedules() {
        let s = schedule("0 2 * * *", "UTC");
        assert_eq!(
            s.latest_at_or_before(utc("2026-11-25T02:00:00Z")),
            Some(utc("2026-11-25T02:00:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(utc("2026-11-25T01:59:59Z")),
            Some(utc("2026-11-24T02:00:00Z"))
        );
        let every = schedule("* * * * *", "Asia/Kolkata");
        assert_eq!(
            every.latest_at_or_before(utc("2026-11-25T10:17:42Z")),
            Some(utc("2026-11-25T10:17:00Z"))
        );
    }

    #[test]
    fn spread_offsets_are_deterministic_and_inside_the_window() {
        let window = std::time::Duration::from_secs(600);
        let ids: Vec<Uuid> = (0..2000).map(|_| Uuid::now_v7()).collect();
        let offsets: Vec<u64> = ids
            .iter()
            .map(|id| spread_offset(*id, window).as_secs())
            .collect();
        for (id, offset) in ids.iter().zip(&offsets) {
            assert!(*offset < 600);
            assert_eq!(spread_offset(*id, window).as_secs(), *offset);
        }
        // 2000 connections over 600 s: every minute of the window gets some, none gets a crowd.
        let mut per_minute = [0u32; 10];
        for o in &offsets {
            per_minute[usize::try_from(o / 60).unwrap()] += 1;
        }
        assert!(
            per_minute.iter().all(|n| (120..=280).contains(n)),
            "{per_minute:?}"
        );
        assert_eq!(
            spread_offset(ids[0], std::time::Duration::ZERO),
            std::time::Duration::ZERO
        );
        let fixed = Uuid::parse_str("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap();
        assert_eq!(spread_offset(fixed, window), spread_offset(fixed, window));
    }

    #[test]
    fn a_catch_up_spreads_from_now_and_an_on_time_run_from_its_scheduled_time() {
        let id = Uuid::parse_str("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap();
        let window = std::time::Duration::from_secs(300);
        let offset = chrono::Duration::from_std(spread_offset(id, window)).unwrap();
        let scheduled = utc("2026-11-25T02:00:00Z");
        assert_eq!(
            start_time(id, scheduled, utc("2026-11-25T02:00:30Z"), window),
            scheduled + offset
        );
        let late = utc("2026-11-25T05:00:00Z");
        assert_eq!(start_time(id, scheduled, late, window), late + offset);
        assert_eq!(
            start_time(id, scheduled, late, std::time::Duration::ZERO),
            late
        );
    }
}
