//! The one application every simulated bank is served by: bank_a's token endpoint and `/v1`
//! routes, the file banks bank_b and bank_c, and the admin API, inside one outer middleware
//! (`observe`) that counts and logs each request and asks the fault table whether to misbehave
//! (`inject` says how each fault changes an answer), so the protocol handlers stay unaware of
//! faults. The admin API is mounted in the same app, under the same TLS, but `observe` lets it
//! through uncounted and unfaulted.

mod inject;

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};

use crate::admin;
use crate::bank_a;
use crate::bank_files::{self, BANK_B_PREFIX, BANK_C_PREFIX};
use crate::ecb;
use crate::files::FileProtocol;
use crate::state::SimState;

/// The simulator's application: bank_a's token endpoint and `/v1` routes, the file banks
/// bank_b and bank_c, the admin API, request accounting and fault injection.
pub(crate) fn build(state: Arc<SimState>) -> impl Endpoint {
    let observed = Arc::clone(&state);
    bank_a::mount(Route::new())
        .nest(BANK_B_PREFIX, bank_files::routes(FileProtocol::Swift))
        .nest(BANK_C_PREFIX, bank_files::routes(FileProtocol::Iso20022))
        .nest(ecb::ECB_PREFIX, ecb::routes())
        .nest(admin::PREFIX, admin::routes())
        .data(state)
        .around(move |ep, req| observe(Arc::clone(&observed), ep, req))
}

/// Counts and logs every request and applies the fault, if any, that the rules pick for it.
async fn observe<E: Endpoint>(
    state: Arc<SimState>,
    ep: Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if admin::is_admin(&path) {
        // The test's control channel: counting or faulting it would disturb what it observes.
        let response = call(&*ep, req).await;
        tracing::debug!(%method, path, status = response.status().as_u16(), "admin request");
        return Ok(response);
    }
    state.traffic.record_request(&path);
    if let Some(traceparent) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        state.traffic.record_traceparent(traceparent);
    }
    let fault = state
        .faults
        .take_for_request(&path, inject::has_cursor(req.uri().query()));
    let response = match &fault {
        None => call(&*ep, req).await,
        Some((rule, fault)) => {
            tracing::info!(%method, path, rule, ?fault, "injecting fault");
            inject::answer(&state, *rule, fault, &*ep, req).await
        }
    };
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        fault_rule = fault.map(|(rule, _)| rule),
        elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "bank request"
    );
    Ok(response)
}

/// The endpoint's answer, errors included, as a response.
async fn call<E: Endpoint>(ep: &E, req: Request) -> Response {
    match ep.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    }
}
