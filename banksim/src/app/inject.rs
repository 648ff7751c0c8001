//! How each request-level [`Fault`] changes an answer of the simulator (bank_a's JSON, or a
//! bank_b/bank_c listing or statement file).
//!
//! Faults act around the real endpoint rather than inside it: a status fault answers without
//! calling it, latency and hang delay the call, and the body faults (truncate, malformed,
//! duplicate page) take the endpoint's real answer and damage it. So a damaged page differs
//! from the good one by exactly the damage, and a test can tell what the client should have
//! received. The JSON surgery is in pure functions on bytes, tested below without a server.
//! A body fault leaves error answers alone except `Truncate`, which cuts whatever came back:
//! a connection dropping mid-body does not care about the status either.

use std::time::Duration;

use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use poem::http::{HeaderValue, StatusCode, Uri};
use poem::web::Json;
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use serde_json::{Value, json};

use super::call;
use crate::bank_a::pages;
use crate::faults::Fault;
use crate::state::SimState;

/// What a malformed record's value becomes: a decimal with a comma, as some banks write it.
pub(crate) const MALFORMED_VALUE: &str = "12,50";

/// The fields a malformed record breaks, in order of preference: decimals first (the first
/// one a record has), then the currency for records without decimals (accounts).
const MALFORMED_FIELDS: [&str; 8] = [
    "amount",
    "quantity",
    "price",
    "market_value",
    "cost",
    "accrued_interest",
    "fees",
    "currency",
];

/// Whether a query string carries a non-empty `cursor` parameter.
pub(super) fn has_cursor(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.strip_prefix("cursor=").is_some_and(|v| !v.is_empty()))
    })
}

/// The answer to `req` under `fault`, picked by rule `rule` (a request-level fault; a
/// connection fault never gets here and is answered normally if it does).
///
/// A body fault that finds nothing to damage (an error answer, a document without records)
/// gives its application back to the rule, so a rule with `times` is used up only by answers
/// it actually damaged; otherwise an empty page or the token request could silently consume
/// a test's only malformed page.
pub(super) async fn answer<E: Endpoint>(
    state: &SimState,
    rule: u64,
    fault: &Fault,
    ep: &E,
    req: Request,
) -> Response {
    let untouched = |response: Response| {
        state.faults.refund(rule);
        tracing::info!(
            rule,
            "nothing to damage: answered unchanged, not counted as applied"
        );
        response
    };
    match fault {
        Fault::Latency { millis } => {
            // A shutdown cuts the delay short so a long latency never holds the server open.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(*millis)) => {}
                _ = state.stopping() => {}
            }
            call(ep, req).await
        }
        Fault::Hang => {
            drop(req);
            state.stopping().await;
            status_response(StatusCode::SERVICE_UNAVAILABLE.as_u16(), None)
        }
        Fault::Status {
            status,
            retry_after_secs,
        } => status_response(*status, *retry_after_secs),
        Fault::Truncate => {
            let Some((parts, body)) = read(call(ep, req).await).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let cut = truncated(&body).to_vec();
            with_body(parts, cut)
        }
        Fault::Malformed => {
            let response = call(ep, req).await;
            if !response.status().is_success() {
                return untouched(response);
            }
            let Some((parts, body)) = read(response).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            if let Some((damaged, field)) = malformed(&body) {
                tracing::info!(field, "injected malformed value");
                return with_body(parts, damaged);
            }
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match damaged_file(content_type, &body) {
                Some(damaged) => {
                    tracing::info!("injected a damaged byte into a statement file");
                    with_body(parts, damaged)
                }
                None => untouched(with_body(parts, body)),
            }
        }
        Fault::DuplicatePage => {
            let previous = previous_page_request(&req);
            let current = call(ep, req).await;
            let Some(previous) = previous else {
                return untouched(current);
            };
            if !current.status().is_success() {
                return untouched(current);
            }
            let earlier = call(ep, previous).await;
            if !earlier.status().is_success() {
                return untouched(current);
            }
            let (Some((parts, body)), Some((_, earlier))) =
                (read(current).await, read(earlier).await)
            else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            match with_previous_items(&earlier, &body) {
                Some(merged) => with_body(parts, merged),
                None => untouched(with_body(parts, body)),
            }
        }
        Fault::ResetConnection => call(ep, req).await,
    }
}

/// A fault's own error answer: JSON like the API's errors, with Retry-After when given.
fn status_response(status: u16, retry_after_secs: Option<u64>) -> Response {
    // validate() keeps codes within 100..=599, which StatusCode accepts; the fallback only
    // covers a rule built around validation.
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = status
        .canonical_reason()
        .map(|reason| reason.to_ascii_lowercase().replace([' ', '-'], "_"))
        .unwrap_or_else(|| "injected_fault".to_owned());
    let body = json!({
        "error": error,
        "message": format!("injected fault: {status}"),
    });
    let mut response = Json(body).with_status(status).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The response's head and its whole body, or None if the body cannot be read (our own
/// endpoints answer from memory, so that does not happen in practice).
async fn read(response: Response) -> Option<(poem::ResponseParts, Vec<u8>)> {
    let (parts, body) = response.into_parts();
    match body.into_vec().await {
        Ok(bytes) => Some((parts, bytes)),
        Err(error) => {
            tracing::warn!(%error, "could not read an answer to damage it");
            None
        }
    }
}

/// A response with a replaced body; the server frames it with the new body's length.
fn with_body(mut parts: poem::ResponseParts, body: Vec<u8>) -> Response {
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The first half of a body: for a JSON object, never valid JSON (the closing brace is gone).
pub(crate) fn truncated(body: &[u8]) -> &[u8] {
    &body[..body.len() / 2]
}

/// A statement file (any non-empty body that is not JSON) with its middle byte replaced: the
/// same length but another SHA-256, as a bit flipped in transfer or storage leaves a file.
/// None for JSON (see [`malformed`]) and empty bodies.
pub(crate) fn damaged_file(content_type: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    let json = content_type.is_some_and(|c| c.starts_with("application/json"));
    if json || body.is_empty() {
        return None;
    }
    let mut damaged = body.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] = if damaged[middle] == b'#' { b'*' } else { b'#' };
    Some(damaged)
}

/// The document with its first record's first decimal (or currency) replaced by
/// [`MALFORMED_VALUE`], and the path of the broken field (`transactions[0].amount`); None
/// when the body is not a JSON object with a non-empty list of records.
pub(crate) fn malformed(body: &[u8]) -> Option<(Vec<u8>, String)> {
    let mut document: Value = serde_json::from_slice(body).ok()?;
    let path = {
        let (listing, record) =
            document
                .as_object_mut()?
                .iter_mut()
                .find_map(|(name, value)| match value.as_array_mut()?.first_mut()? {
                    Value::Object(record) => Some((name.clone(), record)),
                    _ => None,
                })?;
        let field = MALFORMED_FIELDS
            .into_iter()
            .find(|field| record.get(*field).is_some_and(Value::is_string))?;
        record.insert(field.to_owned(), Value::String(MALFORMED_VALUE.to_owned()));
        format!("{listing}[0].{field}")
    };
    Some((serde_json::to_vec(&document).ok()?, path))
}

/// The current page with the previous page's records in front of its own, in every list the
/// two documents share; everything else (account_id, next_cursor) is the current page's.
/// None when either is not a JSON object or they share no list.
pub(crate) fn with_previous_items(previous: &[u8], current: &[u8]) -> Option<Vec<u8>> {
    let previous: Value = serde_json::from_slice(previous).ok()?;
    let previous = previous.as_object()?;
    let mut document: Value = serde_json::from_slice(current).ok()?;
    let mut merged = false;
    for (name, value) in document.as_object_mut()? {
        if let (Value::Array(items), Some(Value::Array(earlier))) = (value, previous.get(name)) {
            let own = std::mem::take(items);
            items.extend(earlier.iter().cloned());
            items.extend(own);
            merged = true;
        }
    }
    if merged {
        serde_json::to_vec(&document).ok()
    } else {
        None
    }
}

/// A copy of `req` asking for the page before it: same path, headers and parameters, with the
/// cursor rewound by the request's limit. None without a usable cursor or at the start.
fn previous_page_request(req: &Request) -> Option<Request> {
    let query = previous_page_query(req.uri().query()?)?;
    let uri: Uri = format!("{}?{query}", req.uri().path()).parse().ok()?;
    let mut previous = Request::builder()
        .method(req.method().clone())
        .uri(uri)
        .finish();
    *previous.headers_mut() = req.headers().clone();
    Some(previous)
}

/// The query string of the page before the one `query` asks for (see
/// [`previous_page_request`]); its limit is the size of that page, which is shorter than the
/// request's limit only near the start.
pub(crate) fn previous_page_query(query: &str) -> Option<String> {
    let value = |key: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
    };
    let limit = match value("limit") {
        Some(limit) => limit.parse().ok()?,
        None => pages::DEFAULT_LIMIT,
    };
    let (cursor, len) = pages::rewind_cursor(value("cursor")?, limit)?;
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
            !pair.is_empty() && key != "cursor" && key != "limit"
        })
        .map(str::to_owned)
        .collect();
    pairs.push(format!("cursor={cursor}"));
    pairs.push(format!("limit={len}"));
    Some(pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_cursor_parameter_counts_as_a_cursor() {
        assert!(has_cursor(Some("limit=7&cursor=abc")));
        assert!(has_cursor(Some("cursor=abc")));
        assert!(!has_cursor(Some("cursor=&limit=7")));
        assert!(!has_cursor(Some("limit=7&mycursor=abc")));
        assert!(!has_cursor(None));
    }

    #[test]
    fn a_truncated_json_body_is_never_valid_json() {
        let body = br#"{"account_id":"BA-000001-1","transactions":[],"next_cursor":null}"#;
        let cut = truncated(body);
        assert_eq!(cut.len(), body.len() / 2);
        assert!(serde_json::from_slice::<Value>(cut).is_err());
        assert!(serde_json::from_slice::<Value>(truncated(b"{}")).is_err());
    }

    #[test]
    fn malformed_breaks_the_first_decimal_of_the_first_record_only() {
        let body = json!({
            "account_id": "BA-000001-1",
            "positions": [
                {"quantity": "10", "price": "99.5", "cost": "1000", "security": {"isin": null}},
                {"quantity": "3", "price": "1.5", "cost": "5"},
            ],
            "next_cursor": "abc",
        });
        let (damaged, field) =
            malformed(&serde_json::to_vec(&body).expect("json")).expect("a record to break");
        assert_eq!(field, "positions[0].quantity");
        let damaged: Value = serde_json::from_slice(&damaged).expect("still JSON");
        let mut expected = body.clone();
        expected["positions"][0]["quantity"] = json!(MALFORMED_VALUE);
        assert_eq!(damaged, expected);
    }

    #[test]
    fn malformed_prefers_amount_and_falls_back_to_the_currency() {
        let transactions =
            json!({"transactions": [{"fees": "1", "amount": "5", "quantity": null}]});
        let (_, field) = malformed(&serde_json::to_vec(&transactions).expect("json"))
            .expect("a record to break");
        assert_eq!(field, "transactions[0].amount");
        let accounts = json!({"accounts": [{"account_id": "BA-000001-1", "currency": "CHF"}]});
        let (_, field) =
            malformed(&serde_json::to_vec(&accounts).expect("json")).expect("a record to break");
        assert_eq!(field, "accounts[0].currency");
    }

    #[test]
    fn a_damaged_file_keeps_its_length_and_changes_one_byte() {
        let body = b":20:S1\r\n:25:CH93\r\n-\r\n";
        let damaged =
            damaged_file(Some("application/octet-stream"), body).expect("a file to damage");
        assert_eq!(damaged.len(), body.len());
        let changed = damaged.iter().zip(body).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1);
        assert!(damaged_file(Some("application/xml"), b"<a/>").is_some());
        assert_eq!(damaged_file(Some("application/json"), b"{}"), None);
        assert_eq!(damaged_file(Some("application/xml"), b""), None);
    }

    #[test]
    fn malformed_leaves_documents_without_records_alone() {
        for body in [
            json!({"transactions": [], "next_cursor": null}),
            json!({"access_token": "t", "expires_in": 3600}),
            json!([1, 2]),
        ] {
            assert_eq!(malformed(&serde_json::to_vec(&body).expect("json")), None);
        }
        assert_eq!(malformed(b"not json"), None);
    }

    #[test]
    fn a_duplicated_page_puts_the_previous_items_first_and_keeps_its_own_cursor() {
        let previous =
            json!({"account_id": "A", "transactions": [{"id": 1}, {"id": 2}], "next_cursor": "p2"});
        let current = json!({"account_id": "A", "transactions": [{"id": 3}], "next_cursor": "p3"});
        let merged = with_previous_items(
            &serde_json::to_vec(&previous).expect("json"),
            &serde_json::to_vec(&current).expect("json"),
        )
        .expect("merged");
        let merged: Value = serde_json::from_slice(&merged).expect("JSON");
        assert_eq!(
            merged,
            json!({"account_id": "A", "transactions": [{"id": 1}, {"id": 2}, {"id": 3}], "next_cursor": "p3"})
        );
        assert_eq!(with_previous_items(b"{}", br#"{"x": 1}"#), None);
    }

    #[test]
    fn the_previous_page_query_rewinds_the_cursor_by_the_limit_and_keeps_other_parameters() {
        let cursor = hex::encode("14:abcdef");
        let query = format!("from=2026-11-01&cursor={cursor}&limit=7");
        let previous = previous_page_query(&query).expect("a previous page");
        assert_eq!(
            previous,
            format!("from=2026-11-01&cursor={}&limit=7", hex::encode("7:abcdef"))
        );
        let near_start = previous_page_query(&format!("cursor={}", hex::encode("30:ab")))
            .expect("a previous page");
        assert_eq!(
            near_start,
            format!("cursor={}&limit=30", hex::encode("0:ab"))
        );
        assert_eq!(
            previous_page_query(&format!("cursor={}", hex::encode("0:ab"))),
            None
        );
        assert_eq!(previous_page_query("limit=7"), None);
    }
}
