//! The bank_a protocol over HTTP: OAuth2 client credentials, bearer-protected `/v1` reads.
//!
//! TLS, including the required client certificate, is handled by the listener before any of
//! this runs (see `start` in the crate root), and `app` mounts these routes beside the file
//! banks' and counts and faults their requests. Here: the token endpoint, a bearer check in
//! front of every `/v1` route, and handlers that only extract parameters and serialize what
//! `pages` computes. Errors are `ApiError`'s JSON: OAuth's `{"error": ...}` on the token
//! endpoint, `{"error", "message"}` everywhere else.

pub(crate) mod pages;

pub use self::pages::{DEFAULT_LIMIT, MAX_LIMIT};
pub use crate::state::TOKEN_LIFETIME;

use std::sync::Arc;

use poem::web::headers::authorization::{Basic, Bearer};
use poem::web::headers::{Authorization, HeaderMapExt};
use poem::web::{Data, Form, Json, Path, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::SimState;

/// Adds bank_a's token endpoint (`/oauth/token`) and its bearer-protected `/v1` routes to
/// `route`; the handlers expect the [`SimState`] as request data.
pub(crate) fn mount(route: Route) -> Route {
    let v1 = Route::new()
        .at("/accounts", get(list_accounts))
        .at("/accounts/:account_id/positions", get(list_positions))
        .at("/accounts/:account_id/balances", get(show_balances))
        .at("/accounts/:account_id/transactions", get(list_transactions))
        .around(require_bearer);
    route.at("/oauth/token", post(issue_token)).nest("/v1", v1)
}

/// Refuses `/v1` requests without a live bearer token issued by this simulator.
async fn require_bearer<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let authorized = match (
        req.data::<Arc<SimState>>(),
        req.headers().typed_get::<Authorization<Bearer>>(),
    ) {
        (Some(state), Some(bearer)) => state.token_is_valid(bearer.token()),
        _ => false,
    };
    if !authorized {
        return Ok(ApiError::Unauthorized.into_response());
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[handler]
async fn issue_token(
    state: Data<&Arc<SimState>>,
    req: &Request,
    form: poem::Result<Form<TokenForm>>,
) -> Response {
    token_response(&state, req, form).unwrap_or_else(IntoResponse::into_response)
}

fn token_response(
    state: &SimState,
    req: &Request,
    form: poem::Result<Form<TokenForm>>,
) -> Result<Response, ApiError> {
    let Ok(Form(form)) = form else {
        return Err(ApiError::InvalidTokenRequest(
            "expected an application/x-www-form-urlencoded body".into(),
        ));
    };
    let basic = req.headers().typed_get::<Authorization<Basic>>();
    let authenticated = match (&basic, &form.client_id, &form.client_secret) {
        (Some(basic), _, _) => state.credentials_match(basic.username(), basic.password()),
        (None, Some(id), Some(secret)) => state.credentials_match(id, secret),
        _ => false,
    };
    if !authenticated {
        return Err(ApiError::InvalidClient);
    }
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => return Err(ApiError::UnsupportedGrantType),
        None => {
            return Err(ApiError::InvalidTokenRequest(
                "grant_type is required".into(),
            ));
        }
    }
    let body = json!({
        "access_token": state.issue_token(),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
    });
    let mut response = Json(body).into_response();
    // RFC 6749 5.1: token responses must not be cached.
    response.headers_mut().insert(
        poem::http::header::CACHE_CONTROL,
        poem::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The query string, or a JSON 400 when it cannot be decoded.
fn params(query: poem::Result<Query<pages::Params>>) -> Result<pages::Params, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))
}

/// A page as JSON (with the text a test asked bank_a to write otherwise), or the error's JSON.
fn respond<T: serde::Serialize + Send>(state: &SimState, page: Result<T, ApiError>) -> Response {
    let page = match page {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let rewrites = state
        .bank_a_rewrites
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if rewrites.is_empty() {
        return Json(page).into_response();
    }
    match serde_json::to_string(&page) {
        Ok(mut body) => {
            for (from, to) in &rewrites {
                body = body.replace(from.as_str(), to);
            }
            Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(body)
        }
        Err(_) => Json(page).into_response(),
    }
}

#[handler]
async fn list_accounts(
    state: Data<&Arc<SimState>>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(
        &state,
        params(query).and_then(|p| pages::accounts(&state.dataset, &p)),
    )
}

#[handler]
async fn list_positions(
    state: Data<&Arc<SimState>>,
    Path(account_id): Path<String>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(
        &state,
        params(query).and_then(|p| pages::positions(&state.dataset, &account_id, &p)),
    )
}

#[handler]
async fn show_balances(
    state: Data<&Arc<SimState>>,
    Path(account_id): Path<String>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(
        &state,
        params(query).and_then(|p| pages::balances(&state.dataset, &account_id, &p)),
    )
}

#[handler]
async fn list_transactions(
    state: Data<&Arc<SimState>>,
    Path(account_id): Path<String>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(
        &state,
        params(query).and_then(|p| pages::transactions(&state.dataset, &account_id, &p)),
    )
}
