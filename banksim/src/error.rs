//! The simulator's refusals: one enum for every protocol it serves, mapped to a status and a
//! JSON body in one place (OAuth's `{"error", "error_description"}` on bank_a's token endpoint,
//! `{"error", "message"}` everywhere else).

use poem::http::StatusCode;
use poem::http::header::WWW_AUTHENTICATE;
use poem::web::Json;
use poem::{IntoResponse, Response};
use serde_json::json;

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
