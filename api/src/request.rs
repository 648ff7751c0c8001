//! Per-request facts every layer may need without being handed the request: its id and where
//! it came from.
//!
//! A middleware wraps each request in a task-local [`RequestContext`]: the client's
//! `X-Request-Id` when it sent a sane one, else a new one, echoed back on the response. The
//! audit log and the logs read it; a sync triggered by the request carries it further.

pub use eam_config::proxies::TrustedProxies;
use poem::{Endpoint, Request, Response, Result};

/// Who asked, as far as this request goes.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub source_addr: Option<String>,
    /// The request's path (a problem's `instance`).
    pub path: String,
    /// Where the caller stands against its rate limits, once its token was admitted: the
    /// `RateLimit-*` headers of the answer.
    pub allowance: std::sync::Arc<std::sync::OnceLock<crate::security::Allowance>>,
}

/// Notes the caller's allowance for the answer's `RateLimit-*` headers (the first admission of
/// a request counts).
pub fn note_allowance(allowance: crate::security::Allowance) {
    let _ = CONTEXT.try_with(|c| c.allowance.set(allowance));
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's context, if inside one.
pub fn current() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// The current request's id, if inside one (a run it creates keeps it).
pub fn current_id() -> Option<String> {
    CONTEXT.try_with(|c| c.request_id.clone()).ok()
}

/// A request id from the client: printable ASCII, at most 128 characters, else refused.
fn client_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| value.to_owned())
}

/// Runs the endpoint inside a request context and returns the request id on the response.
pub async fn with_context<E: Endpoint>(
    next: E,
    req: Request,
    proxies: std::sync::Arc<TrustedProxies>,
) -> Result<Response> {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let forwarded_for = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let context = RequestContext {
        // The client's X-Request-Id, else the trace id of its W3C traceparent (so the caller's
        // trace goes on to the run and the bank), else a new id (itself a valid trace id).
        request_id: client_request_id(&req)
            .or_else(|| {
                req.headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .and_then(eam_model::trace::trace_id_of)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
        source_addr: peer.map(|peer| proxies.client(peer, forwarded_for).to_string()),
        path: req.uri().path().to_owned(),
        allowance: Default::default(),
    };
    let id = context.request_id.clone();
    let allowance = context.allowance.clone();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = CONTEXT
        .scope(
            context,
            tracing::Instrument::instrument(next.get_response(req), span),
        )
        .await;
    if let Ok(value) = poem::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // Every answer to an admitted caller says where it stands (draft-ietf-httpapi-ratelimit-
    // headers); a 429 already carries its own.
    if let Some(a) = allowance.get()
        && !response.headers().contains_key("ratelimit-limit")
    {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", a.limit.to_string()),
            ("ratelimit-remaining", a.remaining.to_string()),
            ("ratelimit-reset", a.reset_secs().to_string()),
            (
                "ratelimit-policy",
                format!("{};w=1;burst={}", a.per_second, a.limit),
            ),
        ] {
            if let Ok(value) = poem::http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}
