//! `Idempotency-Key` on every POST under `/api/v1` (Stripe's semantics): the first request
//! with a key runs and its answer is kept for 24 hours; the same key with the same request
//! (method, path, query, body) gets that answer again with `Idempotent-Replayed: true`
//! instead of running twice; with another request 422; while the first still runs 409. Keys
//! belong to the caller (the verified token's tenant and subject). A 5xx answer is not kept:
//! nothing changed, the retry runs. Without a valid token the request passes to its route,
//! which refuses it as it would any other.

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, Request, Response};
use sha2::{Digest, Sha256};

use crate::problem::{Problem, problem_for_status, problem_response};
use crate::state::ApiState;
use eam_store::TenantId;
use eam_store::idempotency::{self, Begin, Stored};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header saying an answer is a kept one.
pub const REPLAYED: &str = "idempotent-replayed";
/// Answers larger than this are not kept (the API's POST answers are small JSON).
const KEEP_AT_MOST: usize = 1024 * 1024;
/// The answer headers kept with the body.
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "retry-after"];

/// Runs a keyed POST once per key; anything else passes through.
pub async fn keyed<E: Endpoint>(
    next: E,
    mut req: Request,
    state: ApiState,
) -> poem::Result<Response> {
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/v1/") {
        return Ok(next.get_response(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.get_response(req).await);
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return Ok(problem_response(
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)",
                )
                .with_code("invalid_idempotency_key"),
            ));
        }
    };
    let token = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let principal = match token {
        Some(token) => state.verifier.verify(&token).await.ok(),
        None => None,
    };
    let Some(principal) = principal else {
        return Ok(next.get_response(req).await);
    };
    let tenant = TenantId(principal.tenant_id);
    if !state.store.tenant_exists(tenant).await.unwrap_or(false) {
        return Ok(next.get_response(req).await);
    }
    let body = req.take_body().into_bytes().await?;
    let mut hash = Sha256::new();
    for part in [
        req.method().as_str().as_bytes(),
        req.uri().path().as_bytes(),
        req.uri().query().unwrap_or_default().as_bytes(),
        &body,
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let fingerprint = hex::encode(hash.finalize());
    req.set_body(body);
    let subject = principal.subject;

    let unavailable = |e: eam_store::StoreError| {
        tracing::error!(error = %e, "idempotency key store");
        let mut r = problem_for_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "the idempotency key cannot be checked now; retry with the same key".into(),
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("5"));
        r
    };
    let began = async {
        let mut tx = state.store.tenant_tx(tenant).await?;
        let began = idempotency::begin(&mut tx, &subject, &key, &fingerprint).await?;
        tx.commit().await?;
        Ok::<_, eam_store::StoreError>(began)
    }
    .await;
    match began {
        Err(e) => Ok(unavailable(e)),
        Ok(Begin::Mismatch) => Ok(problem_response(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "Idempotency-Key {key} was used for another request in the last {} hours: \
                     use a new key for a new request",
                    idempotency::WINDOW_HOURS
                ),
            )
            .with_code("idempotency_key_reused"),
        )),
        Ok(Begin::InProgress) => {
            let mut r = problem_response(
                Problem::new(
                    StatusCode::CONFLICT,
                    format!("a request with Idempotency-Key {key} is still running"),
                )
                .with_code("idempotency_request_in_progress"),
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            Ok(r)
        }
        Ok(Begin::Replay(stored)) => Ok(replayed(stored)),
        Ok(Begin::Fresh) => {
            let mut response = next.get_response(req).await;
            let status = response.status();
            let body = response.take_body().into_bytes().await?;
            let settled = async {
                let mut tx = state.store.tenant_tx(tenant).await?;
                if status.is_server_error() || body.len() > KEEP_AT_MOST {
                    idempotency::release(&mut tx, &subject, &key).await?;
                } else {
                    let headers: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
                        .iter()
                        .filter_map(|name| {
                            let value = response.headers().get(*name)?.to_str().ok()?;
                            Some(((*name).to_owned(), value.into()))
                        })
                        .collect();
                    let stored = Stored {
                        status: status.as_u16(),
                        headers: headers.into(),
                        body: body.to_vec(),
                    };
                    idempotency::complete(&mut tx, &subject, &key, &stored).await?;
                }
                tx.commit().await
            }
            .await;
            if let Err(e) = settled {
                // The request ran; its key stays claimed until abandoned (5 minutes), so a
                // retry meanwhile gets 409 rather than running it twice.
                tracing::error!(error = %e, key, "the answer of an idempotent request was not kept");
            }
            response.set_body(body);
            Ok(response)
        }
    }
}

/// A kept answer, as first given, marked replayed.
fn replayed(stored: Stored) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .body(stored.body);
    if let Some(headers) = stored.headers.as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                poem::http::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
