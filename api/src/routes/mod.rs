//! The `/api/v1` operations, grouped by resource.

pub mod approvals;
pub mod assignments;
pub mod audit;
pub mod breaks;
pub mod certificates;
pub mod changes;
pub mod clients;
pub mod connections;
pub mod custodians;
pub mod documents;
pub mod fx_rates;
pub mod jobs;
pub mod market_data;
pub mod me;
pub mod performance;
pub mod portfolio;
pub mod prices;
pub mod report_schedules;
pub mod reports;
pub mod schedules;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod valuation;
pub mod webhooks;

/// Upper bound of `limit` on every paged list.
pub const MAX_PAGE: u32 = 500;

/// A job's classified error with the next step for support (sync runs, market-data runs,
/// reports).
#[derive(poem_openapi::Object)]
pub struct JobError {
    /// `transient`, `auth`, `data` or `internal`.
    class: String,
    message: String,
    suggested_action: String,
}

impl JobError {
    /// The error a job records (its class and message), if it has one.
    pub fn of(class: Option<String>, message: Option<String>) -> Option<JobError> {
        let (class, message) = class.zip(message)?;
        Some(JobError {
            suggested_action: eam_model::ErrorClass::parse(&class)
                .map(|c| c.suggested_action_for(&message))
                .unwrap_or_default()
                .to_owned(),
            class,
            message,
        })
    }
}

/// Checks a `limit` parameter.
pub fn page_limit(limit: Option<u32>, default: u32) -> Result<i64, crate::problem::ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(crate::problem::ApiError::bad_request(
            "limit must be at least 1",
        )),
        l if l > MAX_PAGE => Err(crate::problem::ApiError::bad_request(format!(
            "limit must be at most {MAX_PAGE}"
        ))),
        l => Ok(i64::from(l)),
    }
}

/// A keyset cursor's sort key: written before the row id as `key~id`.
pub trait CursorKey: Sized {
    fn write(&self) -> String;
    fn read(s: &str) -> Option<Self>;
}

impl CursorKey for chrono::DateTime<chrono::Utc> {
    fn write(&self) -> String {
        self.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
    fn read(s: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

impl CursorKey for chrono::NaiveDate {
    fn write(&self) -> String {
        self.format("%Y-%m-%d").to_string()
    }
    fn read(s: &str) -> Option<Self> {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
    }
}

/// The position a `cursor` query parameter names: the sort key and id of the previous page's
/// last row. A cursor not made by [`next_cursor`] is a 400.
pub fn decode_cursor<K: CursorKey>(
    cursor: Option<&str>,
) -> Result<Option<(K, uuid::Uuid)>, crate::problem::ApiError> {
    let Some(s) = cursor else {
        return Ok(None);
    };
    s.split_once('~')
        .and_then(|(k, id)| Some((K::read(k)?, uuid::Uuid::parse_str(id).ok()?)))
        .map(Some)
        .ok_or_else(|| {
            crate::problem::ApiError::bad_request(
                "cursor is not valid: pass next_cursor from the previous page unchanged",
            )
        })
}

/// For rows read with one more than `limit`: keeps `limit` of them and returns the cursor of
/// the last one kept, or `None` when this is the last page.
pub fn next_cursor<T, K: CursorKey>(
    rows: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (K, uuid::Uuid),
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|r| {
        let (k, id) = key(r);
        format!("{}~{id}", k.write())
    })
}
