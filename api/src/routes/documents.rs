//! Archived raw documents: every page and file a sync fetched from a bank, exactly as received.
//! Support reads them to see why a sync failed; the content is checked against its SHA-256
//! before it is served, and every read is written to the audit log (bank statements are
//! client data).

use chrono::{DateTime, Utc};
use eam_store::documents::{self, Document as StoredDocument, DocumentFilter};
use eam_store::{ConnectionId, RunId};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Attachment, AttachmentType, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct DocumentsApi(pub ApiState);

/// A raw document fetched from a bank and archived.
#[derive(Object)]
struct Document {
    id: Uuid,
    connection_id: Uuid,
    /// The sync run that fetched it, and which attempt of that run.
    run_id: Uuid,
    attempt: i32,
    /// The name records' provenance (`source.document`) gives, e.g. `transactions/<account>/
    /// page-2` or a statement file's name.
    name: String,
    /// `accounts`, `positions`, `balances`, `transactions` or `file`.
    kind: String,
    /// The bank account it is about, when it is about one.
    account_ref: Option<String>,
    page: i32,
    /// The bank's id of a statement file.
    file_id: Option<String>,
    /// `bank_a_json`, or the statement file's format (`mt940`, `camt053`, ...).
    format: String,
    /// Bytes.
    size: i64,
    /// SHA-256 of the content, lower-case hex.
    sha256: String,
    fetched_at: DateTime<Utc>,
    /// Where to read the content.
    content_path: String,
}

impl From<StoredDocument> for Document {
    fn from(d: StoredDocument) -> Self {
        Document {
            content_path: format!("/api/v1/documents/{}/content", d.id),
            id: d.id,
            connection_id: d.connection_id,
            run_id: d.run_id,
            attempt: d.attempt,
            name: d.name,
            kind: d.kind,
            account_ref: d.account_ref,
            page: d.page,
            file_id: d.file_id,
            format: d.format,
            size: d.size,
            sha256: d.sha256,
            fetched_at: d.fetched_at,
        }
    }
}

#[derive(Object)]
struct DocumentPage {
    /// Newest first.
    documents: Vec<Document>,
    /// Pass as `cursor` for older documents; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum Content {
    /// The document's bytes exactly as the bank sent them.
    #[oai(status = 200)]
    Ok(
        Attachment<Vec<u8>>,
        /// SHA-256 of the content, lower-case hex.
        #[oai(header = "X-Content-SHA256")]
        String,
    ),
}

#[OpenApi(tag = "crate::Tag::Documents")]
impl DocumentsApi {
    /// Archived raw documents, newest first, by run or connection.
    #[oai(path = "/documents", method = "get", operation_id = "list_documents")]
    async fn list(
        &self,
        token: BearerToken,
        /// Only the documents this sync run fetched.
        run_id: Query<Option<Uuid>>,
        connection_id: Query<Option<Uuid>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<DocumentPage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadDocuments).await?;
        let limit = page_limit(limit.0, 100)?;
        let before = cursor
            .0
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c).map_err(|_| {
                    ApiError::bad_request(
                        "cursor is not valid: pass next_cursor from the previous page unchanged",
                    )
                })
            })
            .transpose()?;
        let filter = DocumentFilter {
            run: run_id.0.map(RunId),
            connection: connection_id.0.map(ConnectionId),
            before,
            limit: limit + 1,
        };
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = documents::list(&mut tx, &filter).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Json(DocumentPage {
            documents: rows.into_iter().map(Document::from).collect(),
            next_cursor,
        }))
    }

    /// One archived document's description.
    #[oai(path = "/documents/:id", method = "get", operation_id = "get_document")]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Document>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadDocuments).await?;
        let d = documents::get(&mut tx, id.0)
            .await
            .map_err(not_found("document", id.0))?;
        Ok(Json(d.into()))
    }

    /// The content of an archived document, exactly as the bank sent it (checked against its
    /// SHA-256). Each read is audited.
    #[oai(
        path = "/documents/:id/content",
        method = "get",
        operation_id = "download_document"
    )]
    async fn content(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Content, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadDocuments).await?;
        let d = documents::get(&mut tx, id.0)
            .await
            .map_err(not_found("document", id.0))?;
        let body = self
            .0
            .archive
            .get(&d.storage_key, &d.sha256)
            .await
            .map_err(|e| match e {
                eam_store::archive::ArchiveError::Unavailable(_) => {
                    tracing::warn!(error = %e, document_id = %d.id, "archive unavailable");
                    ApiError::unavailable("the document archive is unavailable; try again shortly")
                }
                other => {
                    tracing::error!(error = %other, document_id = %d.id, "archived document unreadable");
                    ApiError::internal(other)
                }
            })?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "document.read",
                format!("document:{}", d.id),
                json!({ "run_id": d.run_id, "name": d.name, "sha256": d.sha256 }),
            )
            .await?;
        tx.commit().await?;
        let filename = d.name.replace(['/', '\\'], "_");
        Ok(Content::Ok(
            Attachment::new(body.to_vec())
                .attachment_type(AttachmentType::Attachment)
                .filename(filename),
            d.sha256,
        ))
    }
}
