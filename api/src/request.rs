//! Per-request facts every layer may need without being handed the request: its id and where
//! it came from.
//!
//! A middleware wraps each request in a task-local [`RequestContext`]: the client's
//! `X-Request-Id` when it sent a sane one, else a new one, echoed back on the response. The
//! audit log and the logs read it; a sync triggered by the request carries it further.

use poem::{Endpoint, IntoResponse, Request, Response, Result};

/// Who asked, as far as this request goes.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub source_addr: Option<String>,
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
pub async fn with_context<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let context = RequestContext {
        request_id: client_request_id(&req)
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
        source_addr: req
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string()),
    };
    let id = context.request_id.clone();
    let span = tracing::info_span!("request", request_id = %id);
    let response = CONTEXT
        .scope(
            context,
            tracing::Instrument::instrument(next.call(req), span),
        )
        .await;
    let mut response = match response {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    if let Ok(value) = poem::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    Ok(response)
}
