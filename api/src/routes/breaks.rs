//! Reconciliation breaks: where a bank's statements do not add up, cash (balance, continuity,
//! sequence, unreadable statements) and holdings (position).

use crate::decimal::Dec;
use chrono::{DateTime, NaiveDate, Utc};
use eam_model::breaks::BreakKind;
use eam_store::reconciliation::{self, BreakFilter, BreakRow};
use eam_store::{AccountId, RunId};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::{decode_cursor, next_cursor, page_limit};
use crate::state::ApiState;

pub struct BreaksApi(pub ApiState);

/// A failed data-quality check of a statement.
#[derive(Object)]
struct Break {
    id: Uuid,
    /// The sync run that loaded the statement.
    run_id: Uuid,
    connection_id: Uuid,
    account_id: Option<Uuid>,
    /// The account as the statement names it.
    account_ref: String,
    /// Null for a statement that could not be read far enough to say, and for a position
    /// (its figures are quantities).
    currency: Option<String>,
    /// `balance` (opening + entries differs from closing), `continuity` (opening differs from
    /// the previous closing), `sequence` (a statement or page is missing), `unreadable` (a
    /// statement of a file could not be read and was left out) or `position` (a custody
    /// account's holding of a security differs from its previous snapshot plus the
    /// securities movements booked in between).
    kind: String,
    statement_reference: Option<String>,
    statement_number: Option<i32>,
    /// The statement's date; for a position, the date of the holdings snapshot checked.
    statement_date: Option<NaiveDate>,
    /// What the check expected: an amount (balance, continuity), a statement number
    /// (sequence), or for a position the quantity held at `period_from` plus the movements.
    expected: Option<Dec>,
    /// What the statement says: for a position, the quantity the bank reports held.
    actual: Option<Dec>,
    /// `actual - expected`, when both are known: for a position, the quantity the bank holds
    /// beyond what the movements explain (negative: less than they explain).
    difference: Option<Dec>,
    /// Position breaks: the date of the previous snapshot; the movements counted are those
    /// after it, up to `statement_date`.
    period_from: Option<NaiveDate>,
    /// Position breaks: the security whose holding does not add up.
    security: Option<BreakSecurity>,
    message: String,
    /// The document the statement came from.
    source_document: String,
    created_at: DateTime<Utc>,
}

/// The security of a position break.
#[derive(Object)]
struct BreakSecurity {
    /// The tenant's security (as in `/holdings`); null if it could not be linked.
    id: Option<Uuid>,
    /// How the sync's statements named it when the break was found: ISIN (or the bank's
    /// id) and name, e.g. `US0378331005 Apple Inc.`.
    label: String,
    /// As the security is described now.
    isin: Option<String>,
    /// The custodian's own id of the security.
    bank_security_id: Option<String>,
    name: Option<String>,
}

impl From<BreakRow> for Break {
    fn from(b: BreakRow) -> Self {
        let security = b.security_label.map(|label| BreakSecurity {
            id: b.security_id,
            label,
            isin: b.security_isin,
            bank_security_id: b.security_bank_id,
            name: b.security_name,
        });
        Break {
            id: b.id,
            run_id: b.run_id,
            connection_id: b.connection_id,
            account_id: b.account_id,
            account_ref: b.account_ref,
            currency: b.currency,
            kind: b.kind,
            statement_reference: b.statement_reference,
            statement_number: b.statement_number,
            statement_date: b.statement_date,
            expected: b.expected.map(Dec),
            actual: b.actual.map(Dec),
            difference: (b.actual.zip(b.expected).map(|(a, e)| a - e)).map(Dec),
            period_from: b.period_from,
            security,
            message: b.message,
            source_document: b.source_document,
            created_at: b.created_at,
        }
    }
}

#[derive(Object)]
struct BreakPage {
    breaks: Vec<Break>,
    /// Pass as `cursor` for older breaks; absent on the last page.
    next_cursor: Option<String>,
}

#[OpenApi(tag = "crate::Tag::Jobs")]
impl BreaksApi {
    /// Reconciliation breaks, newest first, by run, account and kind.
    #[oai(path = "/breaks", method = "get", operation_id = "list_breaks")]
    async fn list(
        &self,
        token: BearerToken,
        run_id: Query<Option<Uuid>>,
        account_id: Query<Option<Uuid>>,
        /// `balance`, `continuity`, `sequence`, `unreadable` or `position`.
        kind: Query<Option<String>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<BreakPage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadJobs).await?;
        let limit = page_limit(limit.0, 100)?;
        if let Some(k) = kind.0.as_deref()
            && BreakKind::parse(k).is_none()
        {
            return Err(ApiError::bad_request(format!("unknown break kind '{k}'")));
        }
        let filter = BreakFilter {
            run: run_id.0.map(RunId),
            account: account_id.0.map(AccountId),
            kind: kind.0,
            before: decode_cursor(cursor.0.as_deref())?,
            limit: limit + 1,
        };
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = reconciliation::list(&mut tx, &filter).await?;
        let next_cursor = next_cursor(&mut rows, limit, |r| (r.created_at, r.id));
        Ok(Json(BreakPage {
            breaks: rows.into_iter().map(Break::from).collect(),
            next_cursor,
        }))
    }
}
