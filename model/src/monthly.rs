//! Report schedules: "every month, on the Nth business day, at a wall-clock time in a zone",
//! each time producing the statements of the month before. Pure: no I/O and no clock, like
//! [`crate::cron`], whose daylight-saving rule it shares (a time skipped when clocks spring
//! forward runs when the skipped hour ends; a time repeated when they fall back runs at its
//! first occurrence).
//!
//! A business day is a Monday to Friday that is not one of the schedule's holidays (the firm
//! lists its own: Zurich's 2 January or Good Friday are not London's). The business day asked
//! for is at most [`MonthlySchedule::MAX_BUSINESS_DAY`], which every month has when no holiday
//! falls in it; a month whose holidays leave fewer business days than asked has no scheduled
//! time (and says so through [`MonthlySchedule::date_in_month`] returning `None`).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::cron::{Occurrence, ScheduleError, parse_timezone, resolve_wall};

/// A parsed monthly schedule: once you hold one, every part is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlySchedule {
    business_day: u8,
    at: NaiveTime,
    zone: Tz,
    holidays: BTreeSet<NaiveDate>,
}

/// One scheduled time and the period its statements cover (the calendar month before the
/// month of the scheduled day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthlyOccurrence {
    pub at: Occurrence,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
}

impl MonthlySchedule {
    /// The latest business day a schedule may ask for: February of a common year has exactly
    /// 20 weekdays.
    pub const MAX_BUSINESS_DAY: u8 = 20;
    /// Holidays a schedule may list (a decade of a canton's public holidays).
    pub const MAX_HOLIDAYS: usize = 200;
    /// How many months back [`Self::due_after`] looks: a year of statements.
    pub const CATCH_UP_MONTHS: u32 = 12;

    /// A schedule on business day `business_day` (1 = the first) of every month, at `at` on
    /// the wall clock of `timezone` (an IANA name), skipping `holidays`.
    pub fn new(
        business_day: i64,
        at: NaiveTime,
        timezone: &str,
        holidays: &[NaiveDate],
    ) -> Result<Self, ScheduleError> {
        let business_day = u8::try_from(business_day)
            .ok()
            .filter(|d| (1..=Self::MAX_BUSINESS_DAY).contains(d))
            .ok_or_else(|| {
                ScheduleError::new(
                    "business_day",
                    format!(
                        "{business_day} is not a business day of a month: give 1 to {}",
                        Self::MAX_BUSINESS_DAY
                    ),
                )
            })?;
        let zone = parse_timezone(timezone)?;
        if holidays.len() > Self::MAX_HOLIDAYS {
            return Err(ScheduleError::new(
                "holidays",
                format!(
                    "{} holidays given; at most {}",
                    holidays.len(),
                    Self::MAX_HOLIDAYS
                ),
            ));
        }
        Ok(MonthlySchedule {
            business_day,
            at,
            zone,
            holidays: holidays.iter().copied().collect(),
        })
    }

    /// Parses a time of day as `HH:MM` (24-hour).
    pub fn parse_time(at: &str) -> Result<NaiveTime, ScheduleError> {
        NaiveTime::parse_from_str(at.trim(), "%H:%M").map_err(|_| {
            ScheduleError::new(
                "time",
                format!("'{at}' is not a time of day as HH:MM (24-hour, e.g. 07:00)"),
            )
        })
    }

    pub fn business_day(&self) -> u8 {
        self.business_day
    }

    /// The wall-clock time, `HH:MM`.
    pub fn time(&self) -> String {
        self.at.format("%H:%M").to_string()
    }

    pub fn naive_time(&self) -> NaiveTime {
        self.at
    }

    /// The IANA name of the zone.
    pub fn timezone(&self) -> &str {
        self.zone.name()
    }

    /// The holidays, earliest first, each once.
    pub fn holidays(&self) -> Vec<NaiveDate> {
        self.holidays.iter().copied().collect()
    }

    fn is_business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The scheduled day of a month, or `None` when its holidays leave fewer business days.
    pub fn date_in_month(&self, year: i32, month: u32) -> Option<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        first
            .iter_days()
            .take_while(|d| d.month() == month)
            .filter(|d| self.is_business_day(*d))
            .nth(usize::from(self.business_day) - 1)
    }

    /// The scheduled time of a month, if it has one.
    pub fn occurrence_in_month(&self, year: i32, month: u32) -> Option<MonthlyOccurrence> {
        let day = self.date_in_month(year, month)?;
        let utc = resolve_wall(self.zone, day.and_time(self.at));
        let month_start = day.with_day(1)?;
        let period_from = month_start.checked_sub_months(Months::new(1))?;
        Some(MonthlyOccurrence {
            at: Occurrence {
                utc,
                local: utc.with_timezone(&self.zone).fixed_offset(),
            },
            period_from,
            period_to: month_start.pred_opt()?,
        })
    }

    /// Months from the one `t` falls in on the schedule's wall clock, `offset` months on
    /// (negative: back), with their scheduled times.
    fn month_of(&self, t: DateTime<Utc>, offset: i32) -> Option<MonthlyOccurrence> {
        let local = t.with_timezone(&self.zone).date_naive().with_day(1)?;
        let month = if offset >= 0 {
            local.checked_add_months(Months::new(offset.unsigned_abs()))?
        } else {
            local.checked_sub_months(Months::new(offset.unsigned_abs()))?
        };
        self.occurrence_in_month(month.year(), month.month())
    }

    /// The next `n` scheduled times strictly after `after`, earliest first.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<MonthlyOccurrence> {
        // A month whose holidays leave too few business days is skipped; 24 months ahead
        // bound the search.
        (0..24 + i32::try_from(n).unwrap_or(i32::MAX - 24))
            .filter_map(|m| self.month_of(after, m))
            .filter(|o| o.at.utc > after)
            .take(n)
            .collect()
    }

    /// The scheduled times in `(after, now]`, earliest first, at most
    /// [`Self::CATCH_UP_MONTHS`] (the latest ones): each month's statements are due once,
    /// so a scheduler that was down for two monthly times makes up both.
    pub fn due_after(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Vec<MonthlyOccurrence> {
        let back = i32::try_from(Self::CATCH_UP_MONTHS).unwrap_or(12);
        (-back..=0)
            .filter_map(|m| self.month_of(now, m))
            .filter(|o| o.at.utc > after && o.at.utc <= now)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hm(s: &str) -> NaiveTime {
        MonthlySchedule::parse_time(s).unwrap()
    }

    fn zurich(holidays: &[&str]) -> MonthlySchedule {
        let holidays: Vec<NaiveDate> = holidays.iter().map(|d| date(d)).collect();
        MonthlySchedule::new(2, hm("07:00"), "Europe/Zurich", &holidays).unwrap()
    }

    #[test]
    fn the_second_business_day_skips_weekends_and_the_firms_holidays() {
        let plain = zurich(&[]);
        // January 2027 starts on a Friday: 1st (Fri), then Monday the 4th.
        assert_eq!(plain.date_in_month(2027, 1), Some(date("2027-01-04")));
        // With New Year's Day and Berchtoldstag off: Monday 4th, Tuesday 5th.
        let firm = zurich(&["2027-01-01", "2027-01-02"]);
        assert_eq!(firm.date_in_month(2027, 1), Some(date("2027-01-05")));
        // April 2027: Good Friday the 2nd and Easter Monday the 5th.
        let easter = zurich(&["2027-04-02", "2027-04-05"]);
        assert_eq!(easter.date_in_month(2027, 4), Some(date("2027-04-06")));
        assert_eq!(plain.date_in_month(2027, 4), Some(date("2027-04-02")));
        // The 20th business day of a common February is its last day.
        let last = MonthlySchedule::new(20, hm("18:00"), "UTC", &[]).unwrap();
        assert_eq!(last.date_in_month(2027, 2), Some(date("2027-02-26")));
        // A holiday in such a month leaves it without a 20th business day.
        let short = MonthlySchedule::new(20, hm("18:00"), "UTC", &[date("2027-02-10")]).unwrap();
        assert_eq!(short.date_in_month(2027, 2), None);
    }

    #[test]
    fn times_are_zurich_wall_clock_across_daylight_saving_and_periods_are_the_month_before() {
        let s = zurich(&["2027-01-01", "2027-04-02", "2027-04-05"]);
        let next = s.upcoming(utc("2026-12-07T18:00:00Z"), 4);
        let seen: Vec<(String, String, String, String)> = next
            .iter()
            .map(|o| {
                (
                    o.at.utc.to_rfc3339(),
                    o.at.local.to_rfc3339(),
                    o.period_from.to_string(),
                    o.period_to.to_string(),
                )
            })
            .collect();
        let want = [
            (
                "2027-01-05T06:00:00+00:00",
                "2027-01-05T07:00:00+01:00",
                "2026-12-01",
                "2026-12-31",
            ),
            (
                "2027-02-02T06:00:00+00:00",
                "2027-02-02T07:00:00+01:00",
                "2027-01-01",
                "2027-01-31",
            ),
            (
                "2027-03-02T06:00:00+00:00",
                "2027-03-02T07:00:00+01:00",
                "2027-02-01",
                "2027-02-28",
            ),
            // Summer time since 28 March: 07:00 CEST is 05:00 UTC.
            (
                "2027-04-06T05:00:00+00:00",
                "2027-04-06T07:00:00+02:00",
                "2027-03-01",
                "2027-03-31",
            ),
        ];
        let want: Vec<(String, String, String, String)> = want
            .iter()
            .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
            .collect();
        assert_eq!(seen, want);
        // At the very time, the time is not "upcoming" but due.
        let jan = next[0].at.utc;
        assert_eq!(s.upcoming(jan, 1)[0].at.utc, next[1].at.utc);
        assert_eq!(
            s.due_after(jan - chrono::Duration::seconds(1), jan),
            vec![next[0]]
        );
        assert!(s.due_after(jan, jan).is_empty());
    }

    #[test]
    fn a_scheduler_down_for_months_makes_up_each_month_once_within_a_year() {
        let s = zurich(&["2027-01-01", "2027-04-02", "2027-04-05"]);
        let since = utc("2026-12-07T18:00:00Z");
        let due = s.due_after(since, utc("2027-04-07T00:00:00Z"));
        let periods: Vec<String> = due.iter().map(|o| o.period_from.to_string()).collect();
        assert_eq!(
            periods,
            ["2026-12-01", "2027-01-01", "2027-02-01", "2027-03-01"]
        );
        // Two years down: only the last twelve months are made up.
        let due = s.due_after(since, utc("2029-01-10T00:00:00Z"));
        assert_eq!(due.len(), 13, "{due:?}");
        assert_eq!(due[0].period_from, date("2027-12-01"));
        assert_eq!(due[12].period_from, date("2028-12-01"));
    }

    #[test]
    fn bad_parts_are_refused_naming_the_field() {
        let err = |d, z| {
            MonthlySchedule::new(d, hm("07:00"), z, &[])
                .unwrap_err()
                .field
        };
        assert_eq!(err(0, "UTC"), "business_day");
        assert_eq!(err(21, "UTC"), "business_day");
        assert_eq!(err(-1, "UTC"), "business_day");
        assert_eq!(err(2, "Mars/Olympus"), "timezone");
        let time = |t| MonthlySchedule::parse_time(t).unwrap_err().field;
        assert_eq!(time("25:00"), "time");
        assert_eq!(time("7"), "time");
        assert_eq!(time("07:00:30"), "time");
        let many: Vec<NaiveDate> = (0..201)
            .map(|i| date("2027-01-01") + chrono::Duration::days(i))
            .collect();
        assert_eq!(
            MonthlySchedule::new(2, hm("07:00"), "UTC", &many)
                .unwrap_err()
                .field,
            "holidays"
        );
    }
}
