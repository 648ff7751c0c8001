//! The `/api/v1` operations, grouped by resource.

pub mod admin;
pub mod breaks;
pub mod certificates;
pub mod connections;
pub mod custodians;
pub mod documents;
pub mod jobs;
pub mod me;
pub mod portfolio;
pub mod schedules;

/// Upper bound of `limit` on every paged list.
pub const MAX_PAGE: u32 = 500;

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
