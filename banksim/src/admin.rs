//! The admin API: steer faults and read the counters of a simulator running in another
//! process (`eam bank-sim`, or a test's worker processes that only know the URL).
//!
//! It lives on the same HTTPS server as bank_a, so the same client certificate is required
//! at the TLS handshake, but it needs no bearer token: it is a test harness's control
//! channel, not part of the bank's protocol. Its requests are neither counted nor offered to
//! fault rules (the app's middleware skips everything under [`PREFIX`]), so a test can poll
//! the stats or change the rules without changing what it measures.
//!
//! - `GET /admin/faults`: `{"rules": [{"id", "applied", "path_prefix", "fault", "skip", "times"}]}`
//! - `POST /admin/faults` with a [`FaultRule`] as JSON: `{"id": n}`, or 400 with the reason
//! - `DELETE /admin/faults`: removes every rule, `{"removed": n}`
//! - `DELETE /admin/faults/{id}`: `{"removed": 1}`, or 404
//! - `GET /admin/stats`: `{"requests": n, "connections": n, "by_path": {"/v1/accounts": n, ..}}`

use std::sync::Arc;

use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Response, Route, delete, get, handler};
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::faults::{FaultRule, path_matches};
use crate::state::SimState;

/// Where the admin API is mounted.
pub(crate) const PREFIX: &str = "/admin";

/// Whether a request path belongs to the admin API.
pub(crate) fn is_admin(path: &str) -> bool {
    path_matches(PREFIX, path)
}

/// The admin routes, relative to [`PREFIX`]; they expect the [`SimState`] as request data.
pub(crate) fn routes() -> Route {
    Route::new()
        .at(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .at("/faults/:id", delete(remove_fault))
        .at("/stats", get(show_stats))
}

#[derive(Serialize)]
struct ListedRule {
    id: u64,
    applied: u32,
    #[serde(flatten)]
    rule: FaultRule,
}

#[handler]
async fn list_faults(state: Data<&Arc<SimState>>) -> Response {
    let rules: Vec<ListedRule> = state
        .faults
        .rules()
        .into_iter()
        .map(|(id, rule, applied)| ListedRule { id, applied, rule })
        .collect();
    Json(json!({ "rules": rules })).into_response()
}

#[handler]
async fn add_fault(state: Data<&Arc<SimState>>, body: Vec<u8>) -> Response {
    let added = FaultRule::from_json(&body).and_then(|rule| state.faults.try_inject(rule));
    match added {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(error) => ApiError::BadRequest(error.to_string()).into_response(),
    }
}

#[handler]
async fn clear_faults(state: Data<&Arc<SimState>>) -> Response {
    let removed = state.faults.rules().len();
    state.faults.clear();
    Json(json!({ "removed": removed })).into_response()
}

#[handler]
async fn remove_fault(state: Data<&Arc<SimState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::BadRequest(format!("'{id}' is not a fault rule id")).into_response();
    };
    if state.faults.remove(id) {
        Json(json!({ "removed": 1 })).into_response()
    } else {
        ApiError::UnknownFaultRule(id).into_response()
    }
}

#[handler]
async fn show_stats(state: Data<&Arc<SimState>>) -> Response {
    let counts = state.traffic.snapshot();
    Json(json!({
        "requests": counts.requests,
        "connections": state.traffic.connections(),
        "by_path": counts.by_path,
    }))
    .into_response()
}
