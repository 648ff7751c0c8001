//! Statement-file delivery, shared by the file banks (bank_b: SWIFT FIN, bank_c: ISO 20022):
//! list every file after a cursor, download each, and check it against the listing.
//!
//! The protocol: `GET {base}/files?after=<id>&limit=<n>[&cursor=<c>]` answers
//! `{"files": [{"id", "name", "format", "account_id", "date", "size", "sha256"}],
//! "next_cursor"}`, and `GET {base}/files/{id}` the file's bytes. File ids are fixed-width
//! strings that grow in listing order, so the greatest id fetched is the next sync's cursor
//! ([`FetchedFiles::last_file_id`]).
//!
//! Decisions:
//!
//! - **Listing first, then downloads**: every page is read before any file is fetched, so a
//!   listing that cannot be read fails the sync before it downloads anything. A cursor seen
//!   twice or a listing longer than `MAX_PAGES` pages is a bank-side loop: a data error.
//! - **A file listed twice** (a bank repeating a page) is downloaded once: its first listing
//!   counts.
//! - **A few downloads at a time** (`DOWNLOAD_CONCURRENCY`), documents kept in listing
//!   order, so the same bank data always gives the same batch.
//! - **Every file is checked** against its listed size and SHA-256: a file damaged or cut off
//!   in transit is a data error naming the file, never a document handed to the parser.
//! - Bodies are returned untouched; only the listing is read here.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::BankHttp;
use crate::{ConnectorError, DocumentKind, FileInfo, RawDocument};

/// Files requested per listing page.
const PAGE_SIZE: u32 = 500;
/// Files downloaded at once: enough to hide latency, few enough to be a polite client.
const DOWNLOAD_CONCURRENCY: usize = 4;
/// A listing longer than this many pages is a bank-side cursor bug, not data.
const MAX_PAGES: u32 = 100_000;

/// What one sync fetched from a file bank.
#[derive(Debug, Clone)]
pub struct FetchedFiles {
    /// One [`DocumentKind::StatementFile`] document per new file, in listing (id) order.
    pub documents: Vec<RawDocument>,
    /// The greatest file id fetched: the cursor of the next sync; None when nothing was new.
    pub last_file_id: Option<String>,
}

#[derive(Deserialize)]
struct Listing {
    files: Vec<ListedFile>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ListedFile {
    id: String,
    name: String,
    format: String,
    #[serde(default)]
    account_id: Option<String>,
    size: u64,
    sha256: String,
}

/// A client of one file bank: its HTTPS client, base URL and, for banks that want one, the
/// API key sent as `X-API-Key`.
pub(crate) struct FileClient {
    http: BankHttp,
    base_url: String,
    api_key: Option<String>,
}

impl FileClient {
    pub(crate) fn new(http: BankHttp, base_url: &str, api_key: Option<String>) -> FileClient {
        FileClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        }
    }

    /// Lists every file whose id sorts after `after` (all files without it) and downloads
    /// each, checked against the listing.
    pub(crate) async fn fetch(&self, after: Option<&str>) -> Result<FetchedFiles, ConnectorError> {
        let listed = self.list(after).await?;
        let documents: Vec<RawDocument> = futures::stream::iter(listed)
            .map(|file| self.download(file))
            .buffered(DOWNLOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let last_file_id = documents
            .iter()
            .filter_map(|d| d.file.as_ref().map(|f| f.id.as_str()))
            .max()
            .map(str::to_owned);
        Ok(FetchedFiles {
            documents,
            last_file_id,
        })
    }

    async fn list(&self, after: Option<&str>) -> Result<Vec<ListedFile>, ConnectorError> {
        let url = format!("{}/files", self.base_url);
        let mut files = Vec::new();
        let mut ids = HashSet::new();
        let mut cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let mut query: Vec<(&str, String)> = vec![("limit", PAGE_SIZE.to_string())];
            if let Some(after) = after {
                query.push(("after", after.to_owned()));
            }
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let body = self.get(&url, &query).await?;
            let listing: Listing =
                serde_json::from_slice(&body).map_err(|e| ConnectorError::Payload {
                    url: url.clone(),
                    detail: format!("the file listing is not the expected JSON: {e}"),
                })?;
            pages += 1;
            for file in listing.files {
                if ids.insert(file.id.clone()) {
                    files.push(file);
                } else {
                    tracing::debug!(url, id = file.id, "a file listed again: fetched once");
                }
            }
            let Some(next) = listing.next_cursor.filter(|c| !c.is_empty()) else {
                return Ok(files);
            };
            if !cursors.insert(next.clone()) || pages >= MAX_PAGES {
                return Err(ConnectorError::Payload {
                    url,
                    detail: format!(
                        "the file listing does not end (cursor '{next}' after page {pages})"
                    ),
                });
            }
            cursor = Some(next);
        }
    }

    async fn download(&self, file: ListedFile) -> Result<RawDocument, ConnectorError> {
        let url = format!("{}/files/{}", self.base_url, encode_segment(&file.id));
        let body = self.get(&url, &[]).await?;
        let damaged = |detail: String| ConnectorError::Payload {
            url: url.clone(),
            detail: format!("file {} ({}): {detail}", file.name, file.id),
        };
        if body.len() as u64 != file.size {
            return Err(damaged(format!(
                "{} bytes received, the listing says {}",
                body.len(),
                file.size
            )));
        }
        let digest = hex::encode(Sha256::digest(&body));
        if !digest.eq_ignore_ascii_case(&file.sha256) {
            return Err(damaged(format!(
                "SHA-256 {digest} differs from the listed {}",
                file.sha256
            )));
        }
        Ok(RawDocument {
            kind: DocumentKind::StatementFile,
            account_id: file.account_id,
            page: 1,
            body,
            file: Some(FileInfo {
                id: file.id,
                name: file.name,
                format: file.format,
            }),
        })
    }

    async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<bytes::Bytes, ConnectorError> {
        let request = || {
            let request = self.http.client.get(url).query(query);
            match &self.api_key {
                Some(key) => request.header("X-API-Key", key),
                None => request,
            }
        };
        self.http.send(request, url).await
    }
}

/// Percent-encodes a file id for use as one path segment.
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
    fn file_ids_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("20261120-00000001-1"), "20261120-00000001-1");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_listing_reads_its_files_and_tolerates_unknown_fields() {
        let body = br#"{"files":[{"id":"1","name":"a.mt940","format":"mt940","account_id":"A","date":"2026-11-20","size":3,"sha256":"ab","extra":1}],"next_cursor":null}"#;
        let listing: Listing = serde_json::from_slice(body).expect("a listing");
        assert_eq!(listing.files.len(), 1);
        assert_eq!(listing.files[0].account_id.as_deref(), Some("A"));
        assert_eq!(listing.next_cursor, None);
    }
}
