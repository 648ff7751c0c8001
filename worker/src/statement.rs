//! A report's figures: one client's portfolio statement assembled from the store, every number
//! computed by `eam_wealth` exactly as the API computes it for the same client and date
//! (`GET /clients/{id}/valuation?as_of=<to>` and `.../performance?from=&to=`), then rendered by
//! `eam_report`.
//!
//! A statement is complete or it is not made: a position or balance that cannot be valued or
//! converted (no price, no rate) is a `data` error naming each figure, and the report fails
//! with it rather than print a partial total.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use eam_model::domain::{Currency, Isin};
use eam_model::records::{AssetClass, PriceType, TransactionType};
use eam_model::{ClientId, ErrorClass, RunId, RunStatus};
use eam_report::{
    AccountDataAsOf, AccountPositions, AllocationSlice, CashBalance, Client, CustodianPositions,
    ExternalFlow, Firm, FxRateUsed, Language, MoneyWeightedReturn, Performance, Period, Position,
    Provenance, Statement, SyncRunRef, TimeWeightedReturn, Transaction, Valuation,
};
use eam_store::read::AccountRow;
use eam_store::reports::{self, Report};
use eam_store::{Store, StoreError, TenantId};
use eam_wealth::valuation::{Line, LineKind, Slice};
use uuid::Uuid;

use crate::error::SyncError;

/// How many unvalued figures a failed report's error names (the rest are counted).
const REASONS_NAMED: usize = 5;

fn data(message: impl Into<String>) -> SyncError {
    SyncError::new(ErrorClass::Data, message)
}

fn wealth_error(e: eam_wealth::WealthError) -> SyncError {
    match e {
        eam_wealth::WealthError::Store(e) => e.into(),
        e if e.is_request_error() => data(e.to_string()),
        e => SyncError::new(ErrorClass::Internal, e.to_string()),
    }
}

/// A stored code the statement needs as a currency.
fn currency(code: &str) -> Result<Currency, SyncError> {
    Currency::parse(code.trim())
        .map_err(|_| SyncError::new(ErrorClass::Internal, format!("stored currency '{code}'")))
}

/// The statement of `report` (see the module docs).
pub async fn assemble(
    store: &Store,
    tenant: TenantId,
    report: &Report,
    logo_png: Option<Vec<u8>>,
    stale_after: u32,
) -> Result<Statement, SyncError> {
    let (from, to) = (report.period_from, report.period_to);
    let mut tx = store.tenant_tx(tenant).await?;
    let firm = eam_store::tenants::get(&mut tx).await?;
    let client = match eam_store::clients::get(&mut tx, report.client_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => {
            return Err(data(format!(
                "client {} no longer exists",
                report.client_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let requested = report.currency.as_deref().map(currency).transpose()?;
    let reporting = eam_wealth::client_currency(&client, requested).map_err(wealth_error)?;
    let accounts = eam_store::read::accounts(&mut tx, Some(client.id)).await?;
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
    let valuation = eam_wealth::value(&mut tx, &accounts, to, reporting, stale_after)
        .await
        .map_err(wealth_error)?;
    complete(&valuation.lines)?;
    // A one-day period has no return to measure: its statement says so.
    let performance = if from < to {
        let period = eam_wealth::Period::new(from, to).map_err(wealth_error)?;
        Some(
            eam_wealth::measure(&mut tx, &accounts, period, reporting, stale_after)
                .await
                .map_err(wealth_error)?,
        )
    } else {
        None
    };
    let transactions = reports::period_transactions(&mut tx, &ids, from, to).await?;
    let runs = reports::provenance(&mut tx, &ids).await?;
    tx.commit().await?;

    let names = AccountNames::new(&accounts);
    let mut statement = Statement {
        firm: Firm {
            name: firm.name,
            logo_png,
        },
        client: Client {
            id: ClientId(client.id),
            reference: Some(client.reference.clone()).filter(|r| !r.is_empty()),
            name: client.name.clone(),
        },
        period: Period { from, to },
        reporting_currency: reporting,
        generated_at: Utc::now(),
        language: Language::English,
        valuation: Valuation {
            as_of: valuation.as_of,
            total: valuation.total,
            reasons: Vec::new(),
            stale: valuation.stale,
            by_asset_class: slices(&valuation.by_asset_class),
            by_currency: slices(&valuation.by_currency),
            by_custodian: slices(&valuation.by_custodian),
        },
        positions: positions(&valuation.lines, &names)?,
        cash: cash(&valuation.lines, &names)?,
        fx_rates: fx_rates(&valuation.lines, reporting)?,
        performance: match performance {
            Some(p) => performance_of(p, &names)?,
            None => Performance {
                start_value: None,
                end_value: valuation.total,
                net_flows: None,
                time_weighted: None,
                money_weighted: None,
                reasons: vec!["a one-day period has no return".into()],
                flows: Vec::new(),
            },
        },
        transactions: transactions
            .into_iter()
            .map(|t| transaction(t, &names))
            .collect::<Result<_, _>>()?,
        provenance: Provenance {
            runs: runs
                .into_iter()
                .filter_map(|r| {
                    Some(SyncRunRef {
                        run_id: RunId(r.run_id?),
                        custodian: r.custodian,
                        connection: r.connection_name,
                        finished_at: r.finished_at,
                        status: RunStatus::parse(r.run_status.as_deref()?)?,
                    })
                })
                .collect(),
            accounts: accounts
                .iter()
                .map(|a| AccountDataAsOf {
                    custodian: a.custodian.clone(),
                    account: names.number(a.id),
                    data_as_of: valuation
                        .lines
                        .iter()
                        .filter(|l| l.account_id == a.id)
                        .map(|l| l.as_of)
                        .max(),
                })
                .collect(),
        },
        notes: Vec::new(),
    };
    if accounts.is_empty() {
        statement
            .notes
            .push("No account at any bank is assigned to this client.".into());
    } else if statement.is_empty() {
        statement
            .notes
            .push("No positions, balances or transactions for this client in this period.".into());
    }
    Ok(statement)
}

/// A data error naming every line that could not be valued, unless all were.
fn complete(lines: &[Line]) -> Result<(), SyncError> {
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| l.value.is_none())
        .map(|l| {
            let what = match l.kind {
                LineKind::Position => l
                    .isin
                    .clone()
                    .or_else(|| l.security_name.clone())
                    .unwrap_or_else(|| "a position".into()),
                LineKind::Cash => format!(
                    "cash in {}",
                    l.local_currency.as_deref().unwrap_or("an unknown currency")
                ),
            };
            format!(
                "{what} at {}: {}",
                l.custodian,
                l.reason.as_deref().unwrap_or("not valued")
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "the statement cannot be complete: {} figure(s) cannot be valued: {}",
        missing.len(),
        missing
            .iter()
            .take(REASONS_NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if missing.len() > REASONS_NAMED {
        message.push_str(&format!("; and {} more", missing.len() - REASONS_NAMED));
    }
    Err(data(message))
}

/// How accounts are named on a statement: the bank's number (an IBAN where it has one).
struct AccountNames(HashMap<Uuid, (String, String, String)>);

impl AccountNames {
    fn new(accounts: &[AccountRow]) -> Self {
        AccountNames(
            accounts
                .iter()
                .map(|a| {
                    let number = a.iban.clone().unwrap_or_else(|| a.bank_account_id.clone());
                    (
                        a.id,
                        (a.custodian.clone(), number, a.currency.trim().to_owned()),
                    )
                })
                .collect(),
        )
    }

    fn get(&self, id: Uuid) -> Result<&(String, String, String), SyncError> {
        self.0.get(&id).ok_or_else(|| {
            SyncError::new(
                ErrorClass::Internal,
                format!("account {id} is not among the client's"),
            )
        })
    }

    fn number(&self, id: Uuid) -> String {
        self.0.get(&id).map(|a| a.1.clone()).unwrap_or_default()
    }
}

fn slices(slices: &[Slice]) -> Vec<AllocationSlice> {
    slices
        .iter()
        .map(|s| AllocationSlice {
            key: s.key.clone(),
            value: s.value,
            weight: s.weight,
        })
        .collect()
}

/// Positions by custodian, then account, in the valuation's order.
fn positions(lines: &[Line], names: &AccountNames) -> Result<Vec<CustodianPositions>, SyncError> {
    let mut by_custodian: Vec<CustodianPositions> = Vec::new();
    for l in lines.iter().filter(|l| l.kind == LineKind::Position) {
        let (custodian, number, account_currency) = names.get(l.account_id)?;
        let position = Position {
            security_name: l.security_name.clone().unwrap_or_default(),
            isin: l.isin.as_deref().and_then(|i| Isin::parse(i).ok()),
            asset_class: AssetClass::parse(&l.asset_class).unwrap_or(AssetClass::Other),
            quantity: l.quantity.unwrap_or_default(),
            price: l.price,
            price_type: l
                .price_type
                .as_deref()
                .and_then(PriceType::parse)
                .unwrap_or(PriceType::Amount),
            price_currency: currency(l.local_currency.as_deref().unwrap_or_default())?,
            local_value: l.local_value,
            fx_rate: l.fx.as_ref().map(|f| f.rate),
            value: l.value,
            reason: l.reason.clone(),
            snapshot_date: l.as_of,
        };
        if by_custodian.last().map(|c| &c.custodian) != Some(custodian) {
            by_custodian.push(CustodianPositions {
                custodian: custodian.clone(),
                accounts: Vec::new(),
            });
        }
        let accounts = &mut by_custodian.last_mut().expect("pushed above").accounts;
        if accounts.last().map(|a| &a.account) != Some(number) {
            accounts.push(AccountPositions {
                account: number.clone(),
                currency: currency(account_currency)?,
                positions: Vec::new(),
            });
        }
        accounts
            .last_mut()
            .expect("pushed above")
            .positions
            .push(position);
    }
    Ok(by_custodian)
}

fn cash(lines: &[Line], names: &AccountNames) -> Result<Vec<CashBalance>, SyncError> {
    lines
        .iter()
        .filter(|l| l.kind == LineKind::Cash)
        .map(|l| {
            let (custodian, number, _) = names.get(l.account_id)?;
            Ok(CashBalance {
                custodian: custodian.clone(),
                account: number.clone(),
                currency: currency(l.local_currency.as_deref().unwrap_or_default())?,
                amount: l.local_value.unwrap_or_default(),
                fx_rate: l.fx.as_ref().map(|f| f.rate),
                value: l.value,
                reason: l.reason.clone(),
                date: l.as_of,
            })
        })
        .collect()
}

/// The rates the valuation used, one per currency converted, by code.
fn fx_rates(lines: &[Line], reporting: Currency) -> Result<Vec<FxRateUsed>, SyncError> {
    let mut used: BTreeMap<String, FxRateUsed> = BTreeMap::new();
    for l in lines {
        let (Some(code), Some(fx)) = (l.local_currency.as_deref(), l.fx.as_ref()) else {
            continue;
        };
        let from = currency(code)?;
        if from == reporting || used.contains_key(code) {
            continue;
        }
        let Some(date) = fx.date else { continue };
        used.insert(
            code.to_owned(),
            FxRateUsed {
                currency: from,
                rate: fx.rate,
                date,
                // A cross rate's two legs may share a source (`ecb`, `ecb`): named once.
                sources: fx.sources.iter().fold(Vec::new(), |mut named, source| {
                    if !named.contains(source) {
                        named.push(source.clone());
                    }
                    named
                }),
                stale: fx.stale,
            },
        );
    }
    Ok(used.into_values().collect())
}

fn performance_of(
    p: eam_wealth::Performance,
    names: &AccountNames,
) -> Result<Performance, SyncError> {
    let flows = p
        .flows
        .into_iter()
        .map(|f| {
            let (custodian, number, _) = names.get(f.account_id)?;
            Ok(ExternalFlow {
                date: f.date,
                custodian: custodian.clone(),
                account: number.clone(),
                kind: TransactionType::parse(&f.kind).unwrap_or(TransactionType::Transfer),
                amount: f.amount,
                currency: currency(&f.currency)?,
                value: f.value,
            })
        })
        .collect::<Result<_, SyncError>>()?;
    Ok(Performance {
        start_value: p.start_value,
        end_value: p.end_value,
        net_flows: p.net_flows,
        time_weighted: p.time_weighted.map(|t| TimeWeightedReturn {
            cumulative: t.cumulative,
            annualized: t.annualized,
            method: t.method.to_owned(),
        }),
        money_weighted: p.money_weighted.map(|m| MoneyWeightedReturn {
            annual_rate: m.annual_rate,
            method: m.method.to_owned(),
        }),
        reasons: p.reasons,
        flows,
    })
}

fn transaction(
    t: reports::PeriodTransaction,
    names: &AccountNames,
) -> Result<Transaction, SyncError> {
    let (custodian, number, _) = names.get(t.account_id)?;
    let kind = TransactionType::parse(&t.r#type).unwrap_or(TransactionType::Other);
    // The bank's text, else what the record says of itself.
    let description = t
        .description
        .clone()
        .or_else(|| t.security_name.clone())
        .or_else(|| t.counterparty.clone())
        .unwrap_or_else(|| kind.as_str().to_owned());
    Ok(Transaction {
        booking_date: t.booking_date,
        value_date: t.value_date,
        custodian: custodian.clone(),
        account: number.clone(),
        kind,
        description,
        amount: t.signed_amount,
        currency: currency(&t.currency)?,
    })
}

/// A rendered file.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub file_name: String,
    pub content_type: &'static str,
    pub pages: Option<u32>,
}

/// `statement` in `format` (`pdf`, or `csv`: one CSV per table in a zip).
pub fn render(statement: &Statement, format: &str) -> Result<Rendered, SyncError> {
    let base = format!(
        "statement_{}_{}_{}",
        statement
            .client
            .reference
            .as_deref()
            .unwrap_or("client")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        statement.period.from,
        statement.period.to
    );
    let failed = |e: eam_report::RenderError| SyncError::new(ErrorClass::Internal, e.to_string());
    match format {
        "pdf" => {
            let (bytes, pages) = eam_report::render_pdf_counted(statement).map_err(failed)?;
            Ok(Rendered {
                pages: Some(pages),
                bytes,
                file_name: format!("{base}.pdf"),
                content_type: "application/pdf",
            })
        }
        "csv" => Ok(Rendered {
            bytes: eam_report::render_csv_zip(statement).map_err(failed)?,
            file_name: format!("{base}.csv.zip"),
            content_type: "application/zip",
            pages: None,
        }),
        other => Err(SyncError::new(
            ErrorClass::Internal,
            format!("unknown report format '{other}'"),
        )),
    }
}
