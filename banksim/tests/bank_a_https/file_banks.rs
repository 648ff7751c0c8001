//! bank_b and bank_c over HTTPS: listings page through every file once, downloads are the
//! listed bytes, `after` selects newer files, bank_c wants its API key, errors are JSON.

use std::collections::HashSet;

use chrono::NaiveDate;
use eam_banksim::dataset::SimParams;
use eam_banksim::{Fault, FaultRule, RunningSim, StatementFile, iso_files, swift_files};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{CLIENT_SECRET, client, simulator_with, trusted_client};

/// A small bank: a few dozen files per file bank.
pub(crate) fn small_bank() -> SimParams {
    SimParams {
        days: 4,
        transactions_per_account: 12,
        ..SimParams::demo(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"))
    }
}

/// A GET with bank_c's key when `key` is given; the status, Content-Type and body.
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let mut request = http.get(url);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        content_type,
        response.bytes().await.expect("a body").to_vec(),
    )
}

/// Every page of `{base}/files` after `after`, `limit` files a page.
async fn list_all(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Vec<Value> {
    let mut files = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/files?limit={limit}");
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, _, body) = fetch(http, &url, key).await;
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
        let page: Value = serde_json::from_slice(&body).expect("a JSON listing");
        let listed = page["files"].as_array().expect("a list of files");
        assert!(listed.len() <= limit);
        files.extend(listed.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return files,
        }
    }
}

async fn check_listing_and_downloads(
    sim: &RunningSim,
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    expected: &[StatementFile],
    content_type: impl Fn(&str) -> &'static str,
) {
    let listed = list_all(http, base, key, None, 9).await;
    let ids: Vec<&str> = listed.iter().filter_map(|f| f["id"].as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "every file is listed once");
    assert_eq!(
        ids,
        expected.iter().map(|f| f.id.as_str()).collect::<Vec<_>>()
    );
    for (entry, file) in listed.iter().zip(expected) {
        assert_eq!(entry["name"], file.name.as_str());
        assert_eq!(entry["format"], file.format.as_str());
        assert_eq!(entry["account_id"], file.account_id.as_str());
        assert_eq!(entry["date"], file.date.to_string().as_str());
        let url = format!("{base}/files/{}", file.id);
        let (status, served_type, body) = fetch(http, &url, key).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(
            served_type.as_deref(),
            Some(content_type(file.format.as_str()))
        );
        assert_eq!(entry["size"].as_u64(), Some(body.len() as u64), "{url}");
        assert_eq!(
            entry["sha256"].as_str(),
            Some(hex::encode(Sha256::digest(&body)).as_str()),
            "{url}"
        );
        assert_eq!(body, file.bytes, "{url}: the writer's bytes");
    }
    let prefix = base.trim_start_matches(&sim.base_url());
    let pages = expected.len().div_ceil(9) as u64;
    assert_eq!(sim.requests_to(prefix), pages + expected.len() as u64);
}

#[tokio::test]
async fn every_bank_b_file_is_listed_once_and_served_with_its_listed_size_and_digest() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let expected = swift_files(&sim.dataset());
    let formats: HashSet<&str> = expected.iter().map(|f| f.format.as_str()).collect();
    assert_eq!(formats, HashSet::from(["mt940", "mt535", "mt536"]));
    check_listing_and_downloads(
        &sim,
        &trusted_client(&pki),
        &sim.bank_b_url(),
        None,
        &expected,
        |_| "application/octet-stream",
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn every_bank_c_file_is_listed_once_and_served_with_its_listed_size_and_digest() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let expected = iso_files(&sim.dataset());
    let formats: HashSet<&str> = expected.iter().map(|f| f.format.as_str()).collect();
    assert_eq!(formats, HashSet::from(["camt053", "semt002"]));
    check_listing_and_downloads(
        &sim,
        &trusted_client(&pki),
        &sim.bank_c_url(),
        Some(crate::CLIENT_SECRET),
        &expected,
        |_| "application/xml",
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn after_pages_through_each_newer_file_exactly_once() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let http = trusted_client(&pki);
    let all = swift_files(&sim.dataset());
    let cut = &all[all.len() / 2].id;
    let later = list_all(&http, &sim.bank_b_url(), None, Some(cut), 4).await;
    let ids: Vec<&str> = later.iter().filter_map(|f| f["id"].as_str()).collect();
    let expected: Vec<&str> = all
        .iter()
        .map(|f| f.id.as_str())
        .filter(|id| *id > cut.as_str())
        .collect();
    assert_eq!(ids, expected);
    let last = &all[all.len() - 1].id;
    assert!(
        list_all(&http, &sim.bank_b_url(), None, Some(last), 4)
            .await
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bank_c_answers_401_without_its_api_key_and_bank_b_needs_none() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let http = trusted_client(&pki);
    let listing = format!("{}/files", sim.bank_c_url());
    for key in [None, Some("wrong-key")] {
        let (status, _, body) = fetch(&http, &listing, key).await;
        assert_eq!(status, 401, "{key:?}");
        let body: Value = serde_json::from_slice(&body).expect("a JSON error");
        assert_eq!(body["error"], "unauthorized");
        assert!(!body.to_string().contains(CLIENT_SECRET));
    }
    let first = &iso_files(&sim.dataset())[0];
    let download = format!("{listing}/{}", first.id);
    assert_eq!(fetch(&http, &download, None).await.0, 401);
    assert_eq!(fetch(&http, &download, Some(CLIENT_SECRET)).await.0, 200);
    let (status, _, _) = fetch(&http, &format!("{}/files", sim.bank_b_url()), None).await;
    assert_eq!(status, 200, "bank_b trusts the client certificate alone");
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_files_are_404_and_bad_parameters_400_as_json() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let http = trusted_client(&pki);
    let b = sim.bank_b_url();
    for (url, expected) in [
        (format!("{b}/files/20261120-99999999-1"), 404),
        (format!("{b}/files/not-an-id"), 404),
        (format!("{b}/files?after=2026-11-20"), 400),
        (format!("{b}/files?limit=0"), 400),
        (format!("{b}/files?cursor=not-a-cursor"), 400),
    ] {
        let (status, content_type, body) = fetch(&http, &url, None).await;
        assert_eq!(status, expected, "{url}");
        assert!(content_type.is_some_and(|c| c.starts_with("application/json")));
        let body: Value = serde_json::from_slice(&body).expect("a JSON error");
        assert!(body["message"].is_string(), "{url}: {body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn file_bank_paths_are_faulted_and_counted_like_bank_a() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let http = trusted_client(&pki);
    sim.faults().inject(
        FaultRule::new(
            "/bank-b/files",
            Fault::Status {
                status: 503,
                retry_after_secs: Some(1),
            },
        )
        .times(1),
    );
    let listing = format!("{}/files", sim.bank_b_url());
    assert_eq!(fetch(&http, &listing, None).await.0, 503);
    assert_eq!(fetch(&http, &listing, None).await.0, 200);
    let file = &swift_files(&sim.dataset())[0];
    sim.faults()
        .inject(FaultRule::new(format!("/bank-b/files/{}", file.id), Fault::Malformed).times(1));
    let (status, _, damaged) = fetch(&http, &format!("{listing}/{}", file.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(damaged.len(), file.bytes.len(), "same length");
    assert_ne!(damaged, file.bytes, "other bytes");
    assert_eq!(sim.faults().rules()[1].2, 1, "the malformed rule applied");
    assert_eq!(sim.requests_to("/bank-b"), 3);
    assert_eq!(sim.requests_to("/bank-c"), 0);
    // A client without a certificate never reaches the file banks either.
    let anonymous = client(&pki, None).get(&listing).send().await;
    assert!(anonymous.is_err());
    assert_eq!(sim.requests_to("/bank-b"), 3);
    sim.shutdown().await;
}
