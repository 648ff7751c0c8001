//! The HTTP API: `/api/v1` (poem-openapi), its OpenAPI document and Swagger UI, the local
//! issuer's JWKS, and health probes.
//!
//! The API is stateless: it reads PostgreSQL through tenant-scoped transactions and enqueues
//! sync tasks on Redis. It never calls a bank. Authentication and permissions are checked in
//! the first lines of every operation (see `permissions`).

// `ApiError` is the operations' response enum (poem-openapi renders each variant, headers
// included): it is returned by value on purpose, and is a few hundred bytes at most.
#![allow(clippy::result_large_err)]

pub mod application;
pub mod approvals;
pub mod audit;
pub mod body_errors;
pub mod caller;
pub mod decimal;
pub mod etag;
pub mod head_limits;
pub mod idempotency;
pub mod metrics;
pub mod permissions;
pub mod problem;
pub mod read_cache;
pub mod readiness;
pub mod request;
pub mod routes;
pub mod security;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use poem::endpoint::make_sync;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::Tracing;
use poem::web::Json as PoemJson;
use poem::{Endpoint, EndpointExt, IntoResponse, Route, get};
use poem_openapi::{OpenApiService, Tags};

pub use application::Application;
pub use state::ApiState;

use crate::routes::approvals::ApprovalsApi;
use crate::routes::assignments::AssignmentsApi;
use crate::routes::audit::AuditApi;
use crate::routes::breaks::BreaksApi;
use crate::routes::certificates::CertificatesApi;
use crate::routes::changes::ChangesApi;
use crate::routes::clients::ClientsApi;
use crate::routes::connections::ConnectionsApi;
use crate::routes::custodians::CustodiansApi;
use crate::routes::documents::DocumentsApi;
use crate::routes::fx_rates::FxRatesApi;
use crate::routes::jobs::JobsApi;
use crate::routes::market_data::MarketDataApi;
use crate::routes::me::MeApi;
use crate::routes::me::NotificationsApi;
use crate::routes::performance::PerformanceApi;
use crate::routes::portfolio::PortfolioApi;
use crate::routes::prices::PricesApi;
use crate::routes::report_schedules::ReportSchedulesApi;
use crate::routes::reports::ReportsApi;
use crate::routes::schedules::SchedulesApi;
use crate::routes::tasks::TasksApi;
use crate::routes::tenants::TenantsApi;
use crate::routes::users::UsersApi;
use crate::routes::valuation::ValuationApi;
use crate::routes::webhooks::WebhooksApi;

/// OpenAPI tags.
#[derive(Tags)]
pub enum Tag {
    /// The caller's identity.
    Auth,
    /// Accounts, holdings, balances and transactions.
    Portfolio,
    /// Bank connections and on-demand syncs.
    Connections,
    /// Sync runs: status, attempts, errors.
    Jobs,
    /// Sync schedules per connection and the tenant default.
    Schedules,
    /// Raw bank documents as archived by the syncs.
    Documents,
    /// Tenants, users, clients and the audit log.
    Admin,
    /// Client portfolio statements (PDF, CSV), generated as jobs.
    Reports,
    /// Events and the webhook endpoints they are delivered to (Standard Webhooks).
    Webhooks,
    /// Support's worklist: tasks opened from events; four-eyes approvals.
    Tasks,
}

/// Every group of operations of `/api/v1` (nested: poem-openapi implements `OpenApi` for
/// tuples of up to 16).
pub type Apis = (
    (
        MeApi,
        PortfolioApi,
        ConnectionsApi,
        JobsApi,
        BreaksApi,
        TenantsApi,
        UsersApi,
        ClientsApi,
        AuditApi,
        CertificatesApi,
        DocumentsApi,
        SchedulesApi,
        CustodiansApi,
    ),
    // The wealth view: rates and their runs, prices, valuations, assignments, performance;
    // and the reports that print it.
    (
        FxRatesApi,
        MarketDataApi,
        PricesApi,
        ValuationApi,
        AssignmentsApi,
        PerformanceApi,
        ReportsApi,
        ReportSchedulesApi,
        WebhooksApi,
        NotificationsApi,
        ChangesApi,
        TasksApi,
        ApprovalsApi,
    ),
);

/// The OpenAPI service of `/api/v1`.
pub fn openapi(state: &ApiState, public_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            (
                MeApi(state.clone()),
                PortfolioApi(state.clone()),
                ConnectionsApi(state.clone()),
                JobsApi(state.clone()),
                BreaksApi(state.clone()),
                TenantsApi(state.clone()),
                UsersApi(state.clone()),
                ClientsApi(state.clone()),
                AuditApi(state.clone()),
                CertificatesApi(state.clone()),
                DocumentsApi(state.clone()),
                SchedulesApi(state.clone()),
                CustodiansApi(state.clone()),
            ),
            (
                FxRatesApi(state.clone()),
                MarketDataApi(state.clone()),
                PricesApi(state.clone()),
                ValuationApi(state.clone()),
                AssignmentsApi(state.clone()),
                PerformanceApi(state.clone()),
                ReportsApi(state.clone()),
                ReportSchedulesApi(state.clone()),
                WebhooksApi(state.clone()),
                NotificationsApi(state.clone()),
                ChangesApi(state.clone()),
                TasksApi(state.clone()),
                ApprovalsApi(state.clone()),
            ),
        ),
        "EAM Wealth Platform API",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("{}/api/v1", public_url.trim_end_matches('/')))
}

/// The whole HTTP application.
pub fn app(state: ApiState, public_url: &str) -> impl Endpoint + 'static {
    let api = openapi(&state, public_url);
    let spec_json = api.spec();
    let templates = metrics::RouteTemplates::from_openapi(&spec_json, "/api/v1");
    let body_schemas = Arc::new(body_errors::BodySchemas::from_openapi(
        &spec_json, "/api/v1",
    ));
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let jwks = state.local_issuer.clone().map(|issuer| issuer.jwks());
    let read_cache = state.read_cache.clone();
    let keys_state = state.clone();
    let proxies = state.trusted_proxies.clone();
    let mut route = Route::new()
        .at("/api/v1/openapi.json", spec)
        .nest("/api/v1", api)
        .nest("/docs", docs)
        .at("/health", get(make_sync(|_| "ok")))
        .at("/ready", get(readiness::endpoint(state.clone())));
    if !state.metrics_apart {
        route = route.at("/metrics", metrics::endpoint(&state));
    }
    if let Some(jwks) = jwks {
        route = route.at(
            "/auth/jwks.json",
            get(make_sync(move |_| PoemJson(jwks.clone()))),
        );
    }
    let app = metrics::note_route(route)
        .catch_all_error(|err: poem::Error| async move {
            // An operation's own ApiError is already a problem document with its detail:
            // pass it through. Anything else (unknown route, wrong method) gets one here.
            let status = err.status();
            let message = err.to_string();
            let response = err.into_response();
            let is_problem = response
                .headers()
                .get(poem::http::header::CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
            if is_problem {
                response
            } else {
                problem::problem_for_status(status, message)
            }
        })
        .around(move |next, req| body_errors::describe(next, req, body_schemas.clone()))
        // gzip, br, deflate or zstd as the client accepts; inside the tags, so that each
        // encoding of a page has its own.
        .with(poem::middleware::Compression::new())
        .around(etag::tagged)
        // Type-erased once here: the layers' nested types outgrow the compiler's query depth.
        .map_to_response()
        .boxed()
        .around(move |next, req| idempotency::keyed(next, req, keys_state.clone()))
        .around(security_headers)
        .around(move |next, req| forget_after_writes(next, req, read_cache.clone()))
        .with(Tracing)
        .around(move |next, req| request::with_context(next, req, proxies.clone()))
        .map_to_response()
        .boxed();
    // Browsers of the configured origins only; preflights answered here, before any token.
    let app = if state.cors_origins.is_empty() {
        app
    } else {
        app.with(cors(&state.cors_origins))
            .map_to_response()
            .boxed()
    };
    metrics::observe(app, state.metrics.clone(), templates)
}

/// The CORS policy for the configured origins: the methods and headers the API takes, and the
/// answer headers a browser script may read.
fn cors(origins: &[String]) -> poem::middleware::Cors {
    use poem::http::Method;
    poem::middleware::Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "if-none-match",
            "x-request-id",
        ])
        .expose_headers([
            "etag",
            "location",
            "retry-after",
            "x-request-id",
            "idempotent-replayed",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "ratelimit-policy",
        ])
        .max_age(600)
}

/// Request bodies larger than this are refused with 413 (the API takes small JSON bodies).
pub const BODY_LIMIT: u64 = 1024 * 1024;

/// Refuses oversized bodies, and sets the headers a browser needs to treat API answers as data,
/// never as a page to render, frame or cache.
async fn security_headers<E: Endpoint>(
    next: E,
    mut req: poem::Request,
) -> poem::Result<poem::Response> {
    use poem::http::{HeaderValue, header};
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let api = req.uri().path().starts_with("/api/");
    let too_large = || {
        problem::problem_for_status(
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {BODY_LIMIT} bytes"),
        )
    };
    let mut response = if declared.is_some_and(|n| n > BODY_LIMIT) {
        too_large()
    } else if declared.is_none() {
        // Without a length (chunked), read at most one byte past the limit: a longer body is
        // 413 like a declared one, without filling memory.
        let body = req.take_body();
        let mut bytes = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(body.into_async_read(), BODY_LIMIT + 1),
            &mut bytes,
        )
        .await;
        match read {
            Err(e) => problem::problem_for_status(
                poem::http::StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            ),
            Ok(n) if n as u64 > BODY_LIMIT => too_large(),
            Ok(_) => {
                req.set_body(bytes);
                next.call(req).await?.into_response()
            }
        }
    } else {
        next.call(req).await?.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    Ok(response)
}

/// Drops this process's cached portfolio pages after a request that may have written (any
/// method but GET, HEAD and OPTIONS, unless refused as a client error, which changes
/// nothing), before answering it: whoever made a change reads it back at once.
async fn forget_after_writes<E: Endpoint>(
    next: E,
    req: poem::Request,
    read_cache: Arc<read_cache::ReadCache>,
) -> poem::Result<poem::Response> {
    use poem::http::Method;
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let response = next.get_response(req).await;
    if write && !response.status().is_client_error() {
        read_cache.forget_all();
    }
    Ok(response)
}

/// A bound, not yet running API server (binding first lets tests use port 0).
pub struct Server {
    acceptor: head_limits::ProblemAcceptor<poem::listener::TcpAcceptor>,
    addr: SocketAddr,
}

impl Server {
    /// Binds the address.
    pub async fn bind(addr: &str) -> std::io::Result<Self> {
        let acceptor = TcpListener::bind(addr.to_owned()).into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| std::io::Error::other("listener has no socket address"))?;
        Ok(Server {
            acceptor: head_limits::ProblemAcceptor(acceptor),
            addr,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then drains in-flight requests (up to 10 s).
    pub async fn run_until<F>(
        self,
        endpoint: impl Endpoint + 'static,
        shutdown: F,
    ) -> std::io::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                endpoint,
                shutdown,
                Some(std::time::Duration::from_secs(10)),
            )
            .await
    }
}

/// Builds the verifier for the configured issuer.
pub fn verifier(settings: &eam_config::Settings) -> eam_auth::Verifier {
    eam_auth::Verifier::new(verifier_config(settings))
}

/// The verifier configuration from settings.
pub fn verifier_config(settings: &eam_config::Settings) -> eam_auth::VerifierConfig {
    let a = &settings.auth;
    eam_auth::VerifierConfig {
        jwks_url: settings.jwks_url(),
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        leeway: std::time::Duration::from_secs(a.leeway_secs),
        claim_names: eam_auth::ClaimNames {
            tenant: a.tenant_claim.clone(),
            roles: a.roles_claim.clone(),
            client: a.client_claim.clone(),
        },
        ..eam_auth::VerifierConfig::default()
    }
}

/// Wraps the verifier for the state.
pub fn shared<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
