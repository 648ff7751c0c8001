//! bank_b and bank_c over HTTP: statement files listed and downloaded, under [`BANK_B_PREFIX`]
//! (SWIFT FIN) and [`BANK_C_PREFIX`] (ISO 20022).
//!
//! Both are mounted in the same application as bank_a, behind the same TLS listener, so the
//! client certificate is checked at the handshake and the outer middleware counts and faults
//! these requests by path like any other. bank_b needs nothing more than the certificate;
//! bank_c also wants an `X-API-Key` header equal to the simulator's client secret, compared
//! digest to digest, and answers 401 without it.
//!
//! - `GET {prefix}/files?after=<id>&limit=<n>&cursor=<c>`:
//!   `{"files": [{"id", "name", "format", "account_id", "date", "size", "sha256"}], "next_cursor"}`
//!   with the files whose id sorts after `after` (every file without it), in id order. `limit`
//!   and `cursor` page as on bank_a (default 100, at most 1000; the cursor is only valid for
//!   the same bank and `after`). Size and digest are those of the bytes a download returns.
//! - `GET {prefix}/files/{id}`: the file's bytes, `application/octet-stream` for SWIFT and
//!   `application/xml` for ISO 20022.
//!
//! Errors are bank_a's JSON (`{"error", "message"}`): 400 for a bad `after`, `limit` or
//! `cursor`, 404 for an unknown id, 401 for bank_c without its key.

use std::sync::Arc;

use poem::http::header::CONTENT_TYPE;
use poem::web::{Data, Json, Path, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use serde::{Deserialize, Serialize};

use crate::bank_a::pages::{present, window};
use crate::dataset::Dataset;
use crate::error::ApiError;
use crate::files::{Catalog, FileProtocol, FileRef, is_file_id, render};
use crate::state::SimState;

/// Where bank_b (SWIFT FIN files) is mounted.
pub const BANK_B_PREFIX: &str = "/bank-b";
/// Where bank_c (ISO 20022 files) is mounted.
pub const BANK_C_PREFIX: &str = "/bank-c";
/// The header bank_c reads its API key from.
pub const API_KEY_HEADER: &str = "X-API-Key";

/// The routes of one file bank, relative to its prefix; they expect the [`SimState`] as
/// request data.
pub(crate) fn routes(protocol: FileProtocol) -> impl Endpoint<Output = Response> {
    let files = Route::new()
        .at("/files", get(list_files))
        .at("/files/:id", get(download_file))
        .data(protocol);
    let needs_key = protocol == FileProtocol::Iso20022;
    files
        .around(move |ep, req| async move {
            if needs_key && !api_key_is_valid(&req) {
                return Ok(ApiError::InvalidApiKey.into_response());
            }
            ep.call(req).await.map(IntoResponse::into_response)
        })
        .map_to_response()
}

fn api_key_is_valid(req: &Request) -> bool {
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok());
    match (req.data::<Arc<SimState>>(), key) {
        (Some(state), Some(key)) => state.api_key_matches(key),
        _ => false,
    }
}

/// The query parameters of a listing, as received.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListParams {
    pub(crate) after: Option<String>,
    pub(crate) cursor: Option<String>,
    pub(crate) limit: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Serialize)]
pub(crate) struct FilesPage {
    pub(crate) files: Vec<WireFile>,
    pub(crate) next_cursor: Option<String>,
}

/// A listed file.
#[derive(Debug, Serialize)]
pub(crate) struct WireFile {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) format: &'static str,
    pub(crate) account_id: String,
    pub(crate) date: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

fn prefix(protocol: FileProtocol) -> &'static str {
    match protocol {
        FileProtocol::Swift => BANK_B_PREFIX,
        FileProtocol::Iso20022 => BANK_C_PREFIX,
    }
}

fn wire_file(dataset: &Dataset, file: FileRef, replaced: Option<&Vec<u8>>) -> WireFile {
    let bytes = replaced.cloned().unwrap_or_else(|| render(dataset, file));
    WireFile {
        id: file.id(dataset),
        name: file.name(dataset),
        format: file.format().as_str(),
        account_id: file
            .account(dataset)
            .map(|a| a.account_id.clone())
            .unwrap_or_default(),
        date: file.date(dataset).format("%Y-%m-%d").to_string(),
        size: bytes.len() as u64,
        sha256: {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        },
    }
}

/// `GET {prefix}/files`: one page of the files after `after`.
pub(crate) fn list(
    dataset: &Dataset,
    catalog: &Catalog,
    protocol: FileProtocol,
    params: &ListParams,
    withheld: &std::collections::HashSet<String>,
    replaced: &std::collections::HashMap<String, Vec<u8>>,
) -> Result<FilesPage, ApiError> {
    let after = present(&params.after);
    if let Some(after) = after
        && !is_file_id(after)
    {
        return Err(ApiError::BadRequest(format!(
            "after '{after}' is not a file id (YYYYMMDD-NNNNNNNN-R)"
        )));
    }
    let files: Vec<FileRef> = catalog
        .after(dataset, after)
        .iter()
        .copied()
        .filter(|f| withheld.is_empty() || !withheld.contains(&f.id(dataset)))
        .collect();
    let listing = format!("{}/files?after={}", prefix(protocol), after.unwrap_or(""));
    let (range, next_cursor) = window(
        &listing,
        present(&params.cursor),
        present(&params.limit),
        files.len(),
    )?;
    let files = files[range]
        .iter()
        .map(|&f| wire_file(dataset, f, replaced.get(&f.id(dataset))))
        .collect();
    Ok(FilesPage { files, next_cursor })
}

#[handler]
async fn list_files(
    state: Data<&Arc<SimState>>,
    protocol: Data<&FileProtocol>,
    query: poem::Result<Query<ListParams>>,
) -> Response {
    let params = match query {
        Ok(Query(p)) => p,
        Err(e) => return ApiError::BadRequest(format!("bad query string: {e}")).into_response(),
    };
    let protocol = *protocol.0;
    let withheld = state
        .withheld
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let replaced = state
        .replaced
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match list(
        &state.dataset,
        state.catalog(protocol),
        protocol,
        &params,
        &withheld,
        &replaced,
    ) {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

#[handler]
async fn download_file(
    state: Data<&Arc<SimState>>,
    protocol: Data<&FileProtocol>,
    Path(id): Path<String>,
) -> Response {
    let dataset = &state.dataset;
    let withheld = state
        .withheld
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id);
    match state
        .catalog(*protocol.0)
        .find(dataset, &id)
        .filter(|_| !withheld)
    {
        Some(file) => {
            let replaced = state
                .replaced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned();
            Response::builder()
                .header(CONTENT_TYPE, file.format().content_type())
                .body(replaced.unwrap_or_else(|| render(dataset, file)))
        }
        None => ApiError::UnknownFile(id).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::dataset::{SimParams, generate};
    use crate::files::{iso_files, swift_files};

    fn dataset() -> Dataset {
        generate(&SimParams {
            days: 5,
            ..SimParams::demo(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"))
        })
    }

    fn params(after: Option<&str>, cursor: Option<String>, limit: &str) -> ListParams {
        ListParams {
            after: after.map(str::to_owned),
            cursor,
            limit: Some(limit.to_owned()),
        }
    }

    /// Every page of the listing after `after`, with `limit` files a page.
    fn walk(dataset: &Dataset, protocol: FileProtocol, after: Option<&str>) -> Vec<WireFile> {
        let catalog = Catalog::new(dataset, protocol);
        let mut files = Vec::new();
        let mut cursor = None;
        loop {
            let page = list(
                dataset,
                &catalog,
                protocol,
                &params(after, cursor, "7"),
                &Default::default(),
                &Default::default(),
            )
            .expect("a valid request");
            assert!(page.files.len() <= 7);
            files.extend(page.files);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return files,
            }
        }
    }

    #[test]
    fn paging_lists_every_file_once_with_the_size_and_digest_of_its_bytes() {
        let dataset = dataset();
        for (protocol, expected) in [
            (FileProtocol::Swift, swift_files(&dataset)),
            (FileProtocol::Iso20022, iso_files(&dataset)),
        ] {
            let listed = walk(&dataset, protocol, None);
            assert_eq!(listed.len(), expected.len());
            for (wire, file) in listed.iter().zip(&expected) {
                assert_eq!(wire.id, file.id);
                assert_eq!(wire.name, file.name);
                assert_eq!(wire.format, file.format.as_str());
                assert_eq!(wire.account_id, file.account_id);
                assert_eq!(wire.date, file.date.to_string());
                assert_eq!(wire.size, file.bytes.len() as u64);
                assert_eq!(wire.sha256, file.sha256());
            }
        }
    }

    #[test]
    fn after_lists_only_the_files_whose_id_sorts_later() {
        let dataset = dataset();
        let all = swift_files(&dataset);
        let cut = &all[all.len() / 3].id;
        let later: Vec<String> = walk(&dataset, FileProtocol::Swift, Some(cut))
            .into_iter()
            .map(|f| f.id)
            .collect();
        let expected: Vec<String> = all
            .iter()
            .filter(|f| &f.id > cut)
            .map(|f| f.id.clone())
            .collect();
        assert_eq!(later, expected);
        let last = &all[all.len() - 1].id;
        assert!(walk(&dataset, FileProtocol::Swift, Some(last)).is_empty());
    }

    #[test]
    fn bad_after_limit_and_cursor_are_refused() {
        let dataset = dataset();
        let catalog = Catalog::new(&dataset, FileProtocol::Swift);
        let refused = |p: ListParams| {
            matches!(
                list(
                    &dataset,
                    &catalog,
                    FileProtocol::Swift,
                    &p,
                    &Default::default(),
                    &Default::default()
                ),
                Err(ApiError::BadRequest(_))
            )
        };
        assert!(refused(params(Some("2026-11-20"), None, "10")));
        assert!(refused(params(None, None, "0")));
        assert!(refused(params(None, None, "1001")));
        assert!(refused(params(None, Some("nonsense".into()), "10")));
        // A cursor is only valid for the listing it came from.
        let first = list(
            &dataset,
            &catalog,
            FileProtocol::Swift,
            &params(None, None, "3"),
            &Default::default(),
            &Default::default(),
        )
        .expect("a page");
        let cursor = first.next_cursor.expect("more pages");
        let other_after = params(Some("20261116-00000001-1"), Some(cursor.clone()), "3");
        assert!(refused(other_after));
        let iso = Catalog::new(&dataset, FileProtocol::Iso20022);
        assert!(matches!(
            list(
                &dataset,
                &iso,
                FileProtocol::Iso20022,
                &params(None, Some(cursor), "3"),
                &Default::default(),
                &Default::default()
            ),
            Err(ApiError::BadRequest(_))
        ));
    }
}
