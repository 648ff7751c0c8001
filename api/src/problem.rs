//! Errors at the API edge, all as `application/problem+json` (RFC 9457).
//!
//! Handlers return [`ApiError`]; store and auth errors map to it in one place here. Errors
//! raised by the framework before a handler runs (a malformed body, a missing bearer token, an
//! unknown route) are converted by [`problem_for_status`] so that every error a client sees
//! has the same shape.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What is wrong, in words for a person.
    pub detail: String,
    /// What is wrong, for a program: a stable code (the README lists them). Branch on this,
    /// never on `detail`.
    pub code: String,
    /// The request's id (`X-Request-Id`): quote it to support.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The path of the request the problem is about.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The body's invalid fields, where they are known: a JSON pointer and the reason each.
    #[oai(skip_serializing_if_is_empty)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request body.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct FieldError {
    /// RFC 6901 JSON pointer to the field, e.g. `/name`.
    pub pointer: String,
    pub reason: String,
}

/// The stable code of a status, where no more specific one applies.
pub fn code_for(status: StatusCode) -> String {
    match status.as_u16() {
        400 => "bad_request".into(),
        401 => "unauthorized".into(),
        403 => "forbidden".into(),
        404 => "not_found".into(),
        405 => "method_not_allowed".into(),
        409 => "conflict".into(),
        413 => "body_too_large".into(),
        414 => "uri_too_long".into(),
        422 => "unprocessable".into(),
        429 => "rate_limited".into(),
        431 => "headers_too_large".into(),
        500 => "internal".into(),
        503 => "unavailable".into(),
        other => format!("http_{other}"),
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_lowercase().replace(' ', "-");
        let context = crate::request::current();
        Problem {
            kind: format!("https://eam.invalid/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code: code_for(status),
            request_id: context.as_ref().map(|c| c.request_id.clone()),
            instance: context.map(|c| c.path),
            errors: Vec::new(),
        }
    }

    /// The same problem with a more specific code.
    pub fn with_code(self, code: &str) -> Self {
        Problem {
            code: code.to_owned(),
            ..self
        }
    }
}

/// Seconds a client is asked to wait after a 503 (a dependency coming back).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 5;

/// Every error an operation can answer with.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "from_framework_error")]
pub enum ApiError {
    /// The request is malformed (bad parameter or body).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid bearer token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token is valid but its roles do not allow this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource in the caller's tenant.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is well-formed but its values are not acceptable.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many requests from this user or tenant: wait `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        #[oai(header = "Retry-After")] String,
        #[oai(header = "RateLimit-Limit")] String,
        #[oai(header = "RateLimit-Remaining")] String,
        #[oai(header = "RateLimit-Reset")] String,
    ),
    /// A dependency (database, queue, identity provider) is unavailable: try again after
    /// `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] String),
    /// An unexpected error; details are in the server log.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest(Json(Problem::new(StatusCode::BAD_REQUEST, detail)))
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized(
            Json(Problem::new(StatusCode::UNAUTHORIZED, detail)),
            "Bearer error=\"invalid_token\"".to_owned(),
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, detail)))
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::NotFound(Json(Problem::new(StatusCode::NOT_FOUND, detail)))
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::Conflict(Json(Problem::new(StatusCode::CONFLICT, detail)))
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        ApiError::Unprocessable(Json(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)))
    }
    pub fn too_many_requests(limited: crate::security::Limited) -> Self {
        // Whole seconds, rounded up: a client that waits that long gets through.
        let secs =
            limited.retry_after.as_secs() + u64::from(limited.retry_after.subsec_nanos() > 0);
        let secs = secs.max(1).to_string();
        ApiError::TooManyRequests(
            Json(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit exceeded; retry after {secs} s"),
            )),
            secs.clone(),
            limited.limit.to_string(),
            "0".to_owned(),
            secs,
        )
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::Unavailable(
            Json(Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)),
            UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
        )
    }
    pub fn internal(err: impl std::fmt::Display) -> Self {
        // The cause goes to the log, not to the client.
        tracing::error!(error = %err, "internal error");
        ApiError::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        )))
    }
}

/// Parameter, body and security-scheme errors raised before the handler runs.
fn from_framework_error(err: poem::Error) -> ApiError {
    let message = err.to_string();
    match err.status() {
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("a valid bearer token is required"),
        StatusCode::NOT_FOUND => ApiError::not_found(message),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(Json(
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, &message).with_code("invalid_body"),
        )),
        _ => ApiError::BadRequest(Json(
            Problem::new(StatusCode::BAD_REQUEST, &message).with_code(
                if message.contains("payload") {
                    "invalid_body"
                } else {
                    "invalid_parameter"
                },
            ),
        )),
    }
}

impl From<eam_store::StoreError> for ApiError {
    fn from(e: eam_store::StoreError) -> Self {
        use eam_store::StoreError;
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(msg) => ApiError::conflict(msg),
            // In a request, data the store refuses is the request's (an unknown client, ...).
            StoreError::Data(msg) => ApiError::unprocessable(msg),
            StoreError::InvalidTransition { from, to } => {
                ApiError::conflict(format!("the job is {from} and cannot become {to}"))
            }
            ref e if e.is_transient() => ApiError::unavailable("the database is unavailable"),
            other => ApiError::internal(other),
        }
    }
}

/// The wealth view's errors: what the request asked for badly (a currency, a period) is a 400
/// with the same words; the store's map as above; a broken invariant is a 500.
impl From<eam_wealth::WealthError> for ApiError {
    fn from(e: eam_wealth::WealthError) -> Self {
        use eam_wealth::WealthError;
        match e {
            WealthError::Store(e) => e.into(),
            e if e.is_request_error() => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// For a read or change of one `what` (`"connection"`, `"job"`, ...) named by `id`: the store's
/// "not found" becomes a 404 that names it; any other error maps as usual.
pub fn not_found<I: std::fmt::Display>(
    what: &'static str,
    id: I,
) -> impl FnOnce(eam_store::StoreError) -> ApiError {
    move |e| match e {
        eam_store::StoreError::NotFound => ApiError::not_found(format!("{what} {id} not found")),
        other => other.into(),
    }
}

/// A problem+json response for any status (used for errors outside the OpenAPI operations).
pub fn problem_for_status(status: StatusCode, detail: String) -> Response {
    problem_response(Problem::new(status, detail))
}

/// A problem+json response of a problem.
pub fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut resp = Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    resp.into_response()
}
