//! `/ready`: whether this process can do its work now, for a load balancer or an orchestrator.
//!
//! Three checks: PostgreSQL answers (the app's pool), Redis answers (the queue's connection,
//! the one a sync trigger pushes through), and every migration embedded in the binary is
//! applied and none failed. Each check has its own short timeout, so a blackholed service
//! makes the probe answer 503 quickly instead of hanging it. Ready is 200 with each check
//! `ok`; unready is a 503 problem document whose `checks` name each failing one (`failed`,
//! or `unknown` for migrations when PostgreSQL cannot be asked) and whose `detail` says why.
//!
//! `/health` is liveness only: it never looks at another service, so a database outage does not
//! get every API process restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Response};
use serde::Serialize;

use crate::problem::Problem;
use crate::state::ApiState;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Failed,
    /// Could not be checked because a service it depends on is down.
    Unknown,
}

/// The checks by name, and why each one that is not `ok` is not.
#[derive(Debug, Default)]
pub struct Readiness {
    pub checks: BTreeMap<&'static str, CheckStatus>,
    pub reasons: Vec<String>,
}

impl Readiness {
    fn record(&mut self, name: &'static str, outcome: Result<(), (CheckStatus, String)>) {
        match outcome {
            Ok(()) => {
                self.checks.insert(name, CheckStatus::Ok);
            }
            Err((status, reason)) => {
                self.checks.insert(name, status);
                self.reasons.push(format!("{name}: {reason}"));
            }
        }
    }

    pub fn is_ready(&self) -> bool {
        self.checks.values().all(|s| *s == CheckStatus::Ok)
    }
}

/// Runs the checks: Redis alongside PostgreSQL, the migrations once PostgreSQL answered.
pub async fn check(state: &ApiState) -> Readiness {
    let database = async {
        let postgres = within(state.store.ping()).await;
        let migrations = match &postgres {
            Ok(()) => match within(state.store.migrations_current()).await {
                Ok(eam_store::MigrationState::Current) => Ok(()),
                Ok(state) => Err(state.to_string()),
                Err(e) => Err(e),
            }
            .map_err(|e| (CheckStatus::Failed, e)),
            Err(_) => Err((
                CheckStatus::Unknown,
                "not checked: PostgreSQL is unavailable".to_owned(),
            )),
        };
        (postgres.map_err(|e| (CheckStatus::Failed, e)), migrations)
    };
    let redis = async { within(state.queue.ping()).await };
    let ((postgres, migrations), redis) = tokio::join!(database, redis);
    let mut readiness = Readiness::default();
    readiness.record("postgres", postgres);
    readiness.record("redis", redis.map_err(|e| (CheckStatus::Failed, e)));
    readiness.record("migrations", migrations);
    readiness
}

/// A check's future with [`CHECK_TIMEOUT`], its error as text.
async fn within<T, E: std::fmt::Display>(
    check: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            CHECK_TIMEOUT.as_secs_f32()
        )),
    }
}

/// The 503 body: a problem document with the checks.
#[derive(Serialize)]
struct Unready {
    #[serde(flatten)]
    problem: Problem,
    checks: BTreeMap<&'static str, CheckStatus>,
}

/// The `/ready` endpoint.
pub fn endpoint(state: ApiState) -> impl Endpoint<Output = Response> {
    poem::endpoint::make(move |_| {
        let state = state.clone();
        async move {
            let readiness = check(&state).await;
            if readiness.is_ready() {
                return poem::web::Json(serde_json::json!({
                    "status": "ready",
                    "checks": readiness.checks,
                }))
                .into_response();
            }
            tracing::warn!(reasons = ?readiness.reasons, "not ready");
            let body = Unready {
                problem: Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}", readiness.reasons.join("; ")),
                ),
                checks: readiness.checks,
            };
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .content_type("application/problem+json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
        }
    })
}
