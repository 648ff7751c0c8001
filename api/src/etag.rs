//! `ETag` and `If-None-Match` on reads: every 200 answer to a GET under `/api/v1` carries a
//! strong `ETag` (SHA-256 of its body); a GET whose `If-None-Match` names it gets 304 with no
//! body. A client polling a portfolio that did not change downloads it once.

use aws_lc_rs::digest;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, Request, Response};

/// The entity tag of a body.
fn tag(body: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, body);
    format!("\"{}\"", hex::encode(&d.as_ref()[..16]))
}

/// Whether an `If-None-Match` value names `tag` (a list, weak forms and `*` included).
fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

pub async fn tagged<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let read = req.method() == Method::GET && req.uri().path().starts_with("/api/v1/");
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = next.get_response(req).await;
    if !read || response.status() != StatusCode::OK {
        return Ok(response);
    }
    let body = response.take_body().into_bytes().await?;
    let tag = tag(&body);
    let value = HeaderValue::from_str(&tag).map_err(poem::error::InternalServerError)?;
    if if_none_match.is_some_and(|v| matches(&v, &tag)) {
        return Ok(Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, value)
            .finish());
    }
    response.headers_mut().insert(header::ETAG, value);
    response.set_body(body);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_matched_in_a_list_in_its_weak_form_and_by_star() {
        let t = tag(b"{\"positions\":[]}");
        assert_eq!(t.len(), 34);
        assert!(matches(&t, &t));
        assert!(matches(&format!("\"other\", W/{t}"), &t));
        assert!(matches("*", &t));
        assert!(!matches("\"other\"", &t));
        assert_ne!(tag(b"{}"), t);
    }
}
