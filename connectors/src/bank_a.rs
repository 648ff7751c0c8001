//! bank_a: a REST JSON API over mutual TLS with OAuth2 client credentials and cursor paging.
//!
//! A sync takes a token, lists the accounts (paged), then for each account fetches its
//! current positions (paged), its cash balances and its transactions booked since the cursor
//! date (paged). Accounts are fetched a few at a time, and the documents come back in a
//! stable order (accounts first, then account by account), so the same bank data always
//! gives the same batch. Bodies are returned untouched; only `account_id` and `next_cursor`
//! are read here, to navigate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::breaker::Breaker;
use crate::http::{BankHttp, RetryPolicy, TlsIdentity};
use crate::{ConnectorError, DocumentKind, RawDocument};

/// Items requested per page.
const PAGE_SIZE: u32 = 500;
/// Accounts fetched at once: enough to hide latency, few enough to be a polite client.
const ACCOUNT_CONCURRENCY: usize = 4;
/// A sequence longer than this is a bank-side cursor bug, not data.
const MAX_PAGES: u32 = 100_000;
/// A token this close to expiry is renewed before use.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// How to reach one bank_a connection.
#[derive(Clone)]
pub struct BankAConfig {
    /// e.g. `https://api.bank-a.example` (no trailing slash needed).
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub tls: TlsIdentity,
    /// Per request.
    pub timeout: Duration,
    /// Retries of transient failures inside the sync.
    pub retry: RetryPolicy,
    /// The endpoint's circuit breaker, shared with the worker's other jobs.
    pub breaker: Option<Arc<Breaker>>,
    /// Which addresses the client may connect to.
    pub egress: eam_config::egress::EgressPolicy,
}

impl std::fmt::Debug for BankAConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// What one sync fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub documents: Vec<RawDocument>,
}

/// A client for one bank_a connection.
pub struct BankAClient {
    http: BankHttp,
    base_url: String,
    client_id: String,
    client_secret: String,
    token: Mutex<Option<Token>>,
}

struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct AccountsNav {
    accounts: Vec<AccountNav>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct AccountNav {
    account_id: String,
}

#[derive(Deserialize)]
struct PageNav {
    #[serde(default)]
    next_cursor: Option<String>,
    /// Positions pages: the snapshot's date.
    #[serde(default)]
    as_of: Option<String>,
}

/// Daily position snapshots to ask for besides the current one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PositionHistory {
    /// How many days back from the current snapshot (0: none).
    pub days: u32,
    /// The latest snapshot already held: only later days are asked for.
    pub after: Option<NaiveDate>,
}

impl PositionHistory {
    /// The days before `current` to ask for, oldest first (every calendar day: a bank that
    /// books on weekends values on them too).
    pub fn dates(self, current: NaiveDate) -> Vec<NaiveDate> {
        let earliest = current - chrono::Days::new(u64::from(self.days));
        let start = match self.after.and_then(|a| a.succ_opt()) {
            Some(next) => next.max(earliest),
            None => earliest,
        };
        start.iter_days().take_while(|d| *d < current).collect()
    }
}

impl BankAClient {
    /// Builds the client; unusable certificates or keys are an auth-class error.
    pub fn new(config: BankAConfig) -> Result<Self, ConnectorError> {
        Ok(BankAClient {
            http: BankHttp::new(
                &config.tls,
                config.timeout,
                config.retry,
                config.breaker,
                config.egress,
            )?,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            client_id: config.client_id,
            client_secret: config.client_secret,
            token: Mutex::new(None),
        })
    }

    /// Fetches every account with its positions and balances, and the transactions booked on
    /// or after `since` (all of them when `None`); with a `history`, also the daily positions
    /// and balances of the days it asks for.
    pub async fn fetch(
        &self,
        since: Option<NaiveDate>,
        history: PositionHistory,
    ) -> Result<Fetched, ConnectorError> {
        let (mut documents, accounts) = self.fetch_accounts().await?;
        let per_account: Vec<Vec<RawDocument>> = futures::stream::iter(accounts)
            .map(|account| self.fetch_account(account, since, history))
            .buffered(ACCOUNT_CONCURRENCY)
            .try_collect()
            .await?;
        documents.extend(per_account.into_iter().flatten());
        Ok(Fetched { documents })
    }

    async fn fetch_accounts(&self) -> Result<(Vec<RawDocument>, Vec<String>), ConnectorError> {
        let url = format!("{}/v1/accounts", self.base_url);
        let mut documents = Vec::new();
        let mut accounts = Vec::new();
        let mut pages = Pages::default();
        loop {
            let body = self.get(&url, &pages.query(&[])).await?;
            let nav: AccountsNav = navigate(&url, &body)?;
            accounts.extend(nav.accounts.into_iter().map(|a| a.account_id));
            documents.push(RawDocument {
                kind: DocumentKind::Accounts,
                account_id: None,
                page: pages.number,
                body,
                file: None,
            });
            if !pages.advance(&url, nav.next_cursor)? {
                break;
            }
        }
        let mut seen = HashSet::new();
        accounts.retain(|a| seen.insert(a.clone()));
        Ok((documents, accounts))
    }

    async fn fetch_account(
        &self,
        account: String,
        since: Option<NaiveDate>,
        history: PositionHistory,
    ) -> Result<Vec<RawDocument>, ConnectorError> {
        let mut documents = Vec::new();
        let id = encode_segment(&account);
        let positions = format!("{}/v1/accounts/{id}/positions", self.base_url);
        let current = self
            .fetch_pages(
                &positions,
                &[],
                DocumentKind::Positions,
                &account,
                &mut documents,
            )
            .await?;
        let balances = format!("{}/v1/accounts/{id}/balances", self.base_url);
        let body = self.get(&balances, &[]).await?;
        documents.push(RawDocument {
            kind: DocumentKind::Balances,
            account_id: Some(account.clone()),
            page: 1,
            body,
            file: None,
        });
        if history.days > 0 {
            let current = current
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| ConnectorError::Payload {
                    url: positions.clone(),
                    detail: "the positions answer has no as_of date".into(),
                })?;
            // Their pages number on after the current snapshot's, so every document of the
            // sync keeps its own name.
            // The day's balances with each day's positions: a past valuation needs both.
            for (day, date) in history.dates(current).into_iter().enumerate() {
                let as_of = [("as_of", date.to_string())];
                self.fetch_pages(
                    &positions,
                    &as_of,
                    DocumentKind::Positions,
                    &account,
                    &mut documents,
                )
                .await?;
                let body = self.get(&balances, &as_of).await?;
                documents.push(RawDocument {
                    kind: DocumentKind::Balances,
                    account_id: Some(account.clone()),
                    page: u32::try_from(day).map_or(u32::MAX, |d| d.saturating_add(2)),
                    body,
                    file: None,
                });
            }
        }
        let transactions = format!("{}/v1/accounts/{id}/transactions", self.base_url);
        let from = since.map(|d| ("from", d.to_string()));
        self.fetch_pages(
            &transactions,
            from.as_slice(),
            DocumentKind::Transactions,
            &account,
            &mut documents,
        )
        .await?;
        Ok(documents)
    }

    async fn fetch_pages(
        &self,
        url: &str,
        params: &[(&'static str, String)],
        kind: DocumentKind,
        account: &str,
        out: &mut Vec<RawDocument>,
    ) -> Result<Option<String>, ConnectorError> {
        let mut pages = Pages::default();
        // Pages continue the numbering of the same (kind, account) already fetched.
        let before = out.iter().filter(|d| d.kind == kind).count();
        let mut as_of = None;
        loop {
            let body = self.get(url, &pages.query(params)).await?;
            let nav: PageNav = navigate(url, &body)?;
            if as_of.is_none() {
                as_of = nav.as_of;
            }
            out.push(RawDocument {
                kind,
                account_id: Some(account.to_owned()),
                page: pages
                    .number
                    .saturating_add(u32::try_from(before).unwrap_or(u32::MAX)),
                body,
                file: None,
            });
            if !pages.advance(url, nav.next_cursor)? {
                return Ok(as_of);
            }
        }
    }

    async fn get(
        &self,
        url: &str,
        query: &[(&'static str, String)],
    ) -> Result<bytes::Bytes, ConnectorError> {
        let token = self.token().await?;
        let request = || self.http.client.get(url).query(query).bearer_auth(&token);
        self.http.send(request, url).await
    }

    /// The current access token, fetched or renewed when needed.
    async fn token(&self) -> Result<String, ConnectorError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let url = format!("{}/oauth/token", self.base_url);
        let request = || {
            self.http.client.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
            ])
        };
        let body = self.http.send(request, &url).await?;
        let response: TokenResponse = navigate(&url, &body)?;
        if response.access_token.is_empty() {
            return Err(ConnectorError::Payload {
                url,
                detail: "the token endpoint returned an empty access token".into(),
            });
        }
        let lifetime = Duration::from_secs(response.expires_in.unwrap_or(300));
        let token = Token {
            value: response.access_token,
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        };
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }
}

/// Cursor pagination state: page number and the cursors seen, to catch a bank in a loop.
struct Pages {
    number: u32,
    cursor: Option<String>,
    seen: HashSet<String>,
}

impl Default for Pages {
    fn default() -> Self {
        Pages {
            number: 1,
            cursor: None,
            seen: HashSet::new(),
        }
    }
}

impl Pages {
    fn query(&self, params: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut q = params.to_vec();
        q.push(("limit", PAGE_SIZE.to_string()));
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q
    }

    /// Moves to the next page; false when there is none.
    fn advance(&mut self, url: &str, next: Option<String>) -> Result<bool, ConnectorError> {
        let Some(next) = next.filter(|c| !c.is_empty()) else {
            return Ok(false);
        };
        if !self.seen.insert(next.clone()) || self.number >= MAX_PAGES {
            return Err(ConnectorError::Payload {
                url: url.to_owned(),
                detail: format!(
                    "pagination does not end (cursor '{next}' after page {})",
                    self.number
                ),
            });
        }
        self.cursor = Some(next);
        self.number += 1;
        Ok(true)
    }
}

fn navigate<'a, T: Deserialize<'a>>(url: &str, body: &'a [u8]) -> Result<T, ConnectorError> {
    serde_json::from_slice(body).map_err(|e| ConnectorError::Payload {
        url: url.to_owned(),
        detail: format!("not the expected JSON: {e}"),
    })
}

/// Percent-encodes an account id for use as one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_history_asks_for_the_days_after_the_latest_held() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let current = d("2026-12-07");
        let all = PositionHistory {
            days: 5,
            after: None,
        };
        let want: Vec<NaiveDate> = [
            "2026-12-02",
            "2026-12-03",
            "2026-12-04",
            "2026-12-05",
            "2026-12-06",
        ]
        .map(d)
        .to_vec();
        assert_eq!(all.dates(current), want);
        let after = PositionHistory {
            days: 5,
            after: Some(d("2026-12-04")),
        };
        assert_eq!(after.dates(current), want[3..].to_vec());
        // Held up to the current day, or no history: nothing to ask.
        let held = PositionHistory {
            days: 5,
            after: Some(current),
        };
        assert!(held.dates(current).is_empty());
        assert!(PositionHistory::default().dates(current).is_empty());
    }

    #[test]
    fn account_ids_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("BA-0001-1"), "BA-0001-1");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("../x"), "..%2Fx");
    }

    #[test]
    fn a_repeated_cursor_is_a_data_error_not_an_endless_loop() {
        let mut pages = Pages::default();
        assert!(pages.advance("u", Some("c1".into())).unwrap());
        assert!(pages.advance("u", Some("c2".into())).unwrap());
        let e = pages.advance("u", Some("c1".into())).unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Data);
        assert!(!pages.advance("u", None).unwrap());
        assert!(!pages.advance("u", Some(String::new())).unwrap());
    }

    #[test]
    fn the_secret_never_prints() {
        let config = BankAConfig {
            base_url: "https://bank".into(),
            client_id: "id".into(),
            client_secret: "hunter2".into(),
            tls: TlsIdentity::default(),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            breaker: None,
            egress: eam_config::egress::EgressPolicy::default(),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
