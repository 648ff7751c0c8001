//! The bank_a protocol over HTTP: OAuth2 client credentials, bearer-protected `/v1` reads; and
//! the one application every simulated bank is served by.
//!
//! TLS, including the required client certificate, is handled by the listener before any of
//! this runs (see `start` in the crate root). Here: the token endpoint, a bearer check in front
//! of every `/v1` route, and handlers that only extract parameters and serialize what `pages`
//! computes. The file banks (bank_b under `/bank-b`, bank_c under `/bank-c`, see
//! `bank_files`) are mounted beside `/v1` and share this module's state and errors. Every
//! request passes through one outer middleware (`observe`) that counts and logs it and asks
//! the fault table whether to misbehave (the `inject` module says how each fault changes an
//! answer), so handlers stay unaware of faults. The admin API is mounted in the same app,
//! under the same TLS, but `observe` lets it through uncounted and unfaulted. Errors are JSON:
//! OAuth's `{"error": ...}` on the token endpoint, `{"error", "message"}` everywhere else.

mod inject;
pub(crate) mod pages;

pub use self::pages::{DEFAULT_LIMIT, MAX_LIMIT};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::http::header::WWW_AUTHENTICATE;
use poem::web::headers::authorization::{Basic, Bearer};
use poem::web::headers::{Authorization, HeaderMapExt};
use poem::web::{Data, Form, Json, Path, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::admin;
use crate::bank_files::{self, BANK_B_PREFIX, BANK_C_PREFIX};
use crate::dataset::Dataset;
use crate::faults::FaultHandle;
use crate::files::{Catalog, FileProtocol};
use crate::traffic::Traffic;

/// How long an access token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What every request of one running simulator shares.
pub(crate) struct SimState {
    pub(crate) dataset: Arc<Dataset>,
    /// The files bank_b lists.
    swift_files: Catalog,
    /// The files bank_c lists.
    iso_files: Catalog,
    client_id: String,
    /// Digest of the client secret: compared digest to digest, never kept in logs.
    client_secret_digest: [u8; 32],
    /// Issued access tokens and when they expire.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Connections and requests received.
    pub(crate) traffic: Traffic,
    /// The fault rules, shared with whoever steers the simulator.
    pub(crate) faults: FaultHandle,
    /// Statement files the bank does not deliver (listing and download), by id: a statement
    /// that went missing, for the reconciliation's sequence and continuity checks.
    pub(crate) withheld: Mutex<std::collections::HashSet<String>>,
    /// Becomes true when the server starts shutting down, releasing hung requests.
    stopping: watch::Sender<bool>,
}

impl SimState {
    /// State for a simulator serving `dataset` to one OAuth client (whose secret is also
    /// bank_c's API key). Lists the file banks' files, which takes a moment for a large
    /// dataset: call it off the async workers.
    pub(crate) fn new(dataset: Arc<Dataset>, client_id: String, client_secret: &str) -> Self {
        SimState {
            swift_files: Catalog::new(&dataset, FileProtocol::Swift),
            iso_files: Catalog::new(&dataset, FileProtocol::Iso20022),
            dataset,
            client_id,
            client_secret_digest: Sha256::digest(client_secret.as_bytes()).into(),
            tokens: Mutex::new(HashMap::new()),
            traffic: Traffic::default(),
            faults: FaultHandle::new(),
            withheld: Mutex::default(),
            stopping: watch::Sender::new(false),
        }
    }

    /// Marks the server as shutting down: requests held by a fault are released.
    pub(crate) fn begin_stopping(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once the server is shutting down.
    pub(crate) async fn stopping(&self) {
        let mut stopping = self.stopping.subscribe();
        // Err only if the sender is gone, and `self` owns it: cannot happen while we wait.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// The files a file bank lists.
    pub(crate) fn catalog(&self, protocol: FileProtocol) -> &Catalog {
        match protocol {
            FileProtocol::Swift => &self.swift_files,
            FileProtocol::Iso20022 => &self.iso_files,
        }
    }

    /// Whether `key` is bank_c's API key (the client secret).
    pub(crate) fn api_key_matches(&self, key: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        digest == self.client_secret_digest
    }

    fn credentials_match(&self, client_id: &str, client_secret: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(client_secret.as_bytes()).into();
        client_id == self.client_id && digest == self.client_secret_digest
    }

    fn issue_token(&self) -> String {
        let token = hex::encode(rand::rng().random::<[u8; 32]>());
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-insert; the map is still
        // a valid map, so keep serving.
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(token.clone(), now + TOKEN_LIFETIME);
        token
    }

    fn token_is_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }
}

/// Why a request was refused; mapped to a status and a JSON body in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("client authentication failed")]
    InvalidClient,
    #[error("only the client_credentials grant is supported")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidTokenRequest(String),
    #[error("a valid bearer token from /oauth/token is required")]
    Unauthorized,
    #[error("unknown account '{0}'")]
    UnknownAccount(String),
    #[error("no file has id '{0}'")]
    UnknownFile(String),
    #[error("a valid X-API-Key header is required")]
    InvalidApiKey,
    #[error("{0}")]
    BadRequest(String),
    #[error("no fault rule has id {0}")]
    UnknownFaultRule(u64),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, body, challenge) = match self {
            ApiError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "error_description": message}),
                Some("Basic realm=\"bank_a\""),
            ),
            ApiError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type", "error_description": message}),
                None,
            ),
            ApiError::InvalidTokenRequest(_) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": message}),
                None,
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": message}),
                Some("Bearer realm=\"bank_a\""),
            ),
            ApiError::InvalidApiKey => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": message}),
                Some("ApiKey realm=\"bank_c\""),
            ),
            ApiError::UnknownAccount(_)
            | ApiError::UnknownFile(_)
            | ApiError::UnknownFaultRule(_) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": message}),
                None,
            ),
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": message}),
                None,
            ),
        };
        let mut response = Json(body).with_status(status).into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The simulator's application: bank_a's token endpoint and `/v1` routes, the file banks
/// bank_b and bank_c, the admin API, request accounting and fault injection.
pub(crate) fn app(state: Arc<SimState>) -> impl Endpoint {
    let v1 = Route::new()
        .at("/accounts", get(list_accounts))
        .at("/accounts/:account_id/positions", get(list_positions))
        .at("/accounts/:account_id/balances", get(show_balances))
        .at("/accounts/:account_id/transactions", get(list_transactions))
        .around(require_bearer);
    let observed = Arc::clone(&state);
    Route::new()
        .at("/oauth/token", post(issue_token))
        .nest("/v1", v1)
        .nest(BANK_B_PREFIX, bank_files::routes(FileProtocol::Swift))
        .nest(BANK_C_PREFIX, bank_files::routes(FileProtocol::Iso20022))
        .nest(crate::ecb::ECB_PREFIX, crate::ecb::routes())
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

/// A page as JSON, or the error's JSON.
fn respond<T: serde::Serialize + Send>(page: Result<T, ApiError>) -> Response {
    match page {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

#[handler]
async fn list_accounts(
    state: Data<&Arc<SimState>>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(params(query).and_then(|p| pages::accounts(&state.dataset, &p)))
}

#[handler]
async fn list_positions(
    state: Data<&Arc<SimState>>,
    Path(account_id): Path<String>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(params(query).and_then(|p| pages::positions(&state.dataset, &account_id, &p)))
}

#[handler]
async fn show_balances(state: Data<&Arc<SimState>>, Path(account_id): Path<String>) -> Response {
    respond(pages::balances(&state.dataset, &account_id))
}

#[handler]
async fn list_transactions(
    state: Data<&Arc<SimState>>,
    Path(account_id): Path<String>,
    query: poem::Result<Query<pages::Params>>,
) -> Response {
    respond(params(query).and_then(|p| pages::transactions(&state.dataset, &account_id, &p)))
}
