//! The input of every renderer: one client's portfolio statement for one period, already
//! computed. This is the contract between the code that assembles the figures (from the
//! database, through the wealth view) and the renderers here, and the form in which a
//! statement is stored as JSON next to its PDF and CSV files.
//!
//! Every figure is an exact [`Decimal`] as computed; nothing here is rounded. A figure that
//! could not be computed is `None` with a reason beside it, never a zero. Amounts "in the
//! reporting currency" are in [`Statement::reporting_currency`]; every other amount names its
//! currency. Weights and returns are fractions (`0.0342` = 3.42 %).
//!
//! The order of every list is the order the statement shows: the assembler sorts, the
//! renderers never reorder (so the PDF and the CSV list the same rows in the same order).

use chrono::{DateTime, NaiveDate, Utc};
use eam_model::domain::{Currency, Isin};
use eam_model::records::{AssetClass, PriceType, TransactionType};
use eam_model::{ClientId, RunId, RunStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One client's portfolio statement for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The asset manager issuing the statement.
    pub firm: Firm,
    /// The client the statement is for.
    pub client: Client,
    /// The period covered; the valuation is at its end.
    pub period: Period,
    /// The currency every consolidated figure is in.
    pub reporting_currency: Currency,
    /// When the figures were computed (shown in every page's footer).
    pub generated_at: DateTime<Utc>,
    /// The language of the labels.
    #[serde(default)]
    pub language: Language,
    /// The consolidated valuation at the period's end.
    pub valuation: Valuation,
    /// The positions at the period's end, by custodian, then by account.
    pub positions: Vec<CustodianPositions>,
    /// Cash balances at the period's end, one per account and currency.
    pub cash: Vec<CashBalance>,
    /// The exchange rates the conversions used, one per currency converted.
    pub fx_rates: Vec<FxRateUsed>,
    /// Returns over the period, with the external flows they account for.
    pub performance: Performance,
    /// The transactions booked in the period (thousands of them for an active client).
    pub transactions: Vec<Transaction>,
    /// Where the data comes from.
    pub provenance: Provenance,
    /// Free lines shown on the cover, e.g. "No data for this client in this period."
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The labels' language. English only for now: the field exists so a stored statement says
/// which language it was rendered in, and so another language is an addition, not a change
/// of the contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    /// British/international English; `.` decimal mark, `,` thousands separator.
    #[default]
    #[serde(rename = "en")]
    English,
}

/// The asset manager issuing the statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firm {
    /// Shown in every page's header.
    pub name: String,
    /// The firm's logo as PNG bytes (hex in JSON), drawn in every page's header; anything but
    /// a readable PNG is a [`RenderError::Logo`](crate::RenderError::Logo).
    #[serde(default, with = "hex_bytes")]
    pub logo_png: Option<Vec<u8>>,
}

/// The client the statement is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// The platform's id.
    pub id: ClientId,
    /// The firm's own reference for the client (e.g. a client number), when it has one.
    pub reference: Option<String>,
    /// The name shown on the statement.
    pub name: String,
}

/// A period of whole days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day; the valuation is at its end. Never before `from`.
    pub to: NaiveDate,
}

/// The consolidated valuation at the period's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Valuation {
    /// The date valued (normally the period's last day).
    pub as_of: NaiveDate,
    /// Everything together in the reporting currency; `None` when a position or balance could
    /// not be valued or converted (a partial sum is never shown as the whole).
    pub total: Option<Decimal>,
    /// Why `total` is `None` (one line per figure that could not be valued).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// True when a rate used is older than the platform's staleness limit.
    #[serde(default)]
    pub stale: bool,
    /// Shares by asset class (cash is a slice of its own, keyed `cash`).
    pub by_asset_class: Vec<AllocationSlice>,
    /// Shares by the currency the figures are held in.
    pub by_currency: Vec<AllocationSlice>,
    /// Shares by custodian (bank).
    pub by_custodian: Vec<AllocationSlice>,
}

/// One share of the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationSlice {
    /// What is shared: an asset class, a currency code or a custodian's name.
    pub key: String,
    /// In the reporting currency.
    pub value: Decimal,
    /// Of the total, `0..=1`; `None` when the total is.
    pub weight: Option<Decimal>,
}

/// One custodian's positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodianPositions {
    /// The custodian (bank) as the platform names it.
    pub custodian: String,
    /// Its accounts of this client that hold positions.
    pub accounts: Vec<AccountPositions>,
}

/// One account's positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountPositions {
    /// The account's number as the bank writes it (an IBAN for most).
    pub account: String,
    /// The account's own currency.
    pub currency: Currency,
    /// Its positions, in the order shown.
    pub positions: Vec<Position>,
}

/// One holding of a security at the period's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The security's name as the bank gives it.
    pub security_name: String,
    /// Its ISIN, when the bank gives one.
    pub isin: Option<Isin>,
    /// Its asset class (what the allocation by asset class sums).
    pub asset_class: AssetClass,
    /// Units held, or the face amount for a bond priced in percent.
    pub quantity: Decimal,
    /// The price used; `None` when the bank gave only a market value.
    pub price: Option<Decimal>,
    /// How the price is expressed: per unit, or percent of the face amount.
    pub price_type: PriceType,
    /// The currency of the price and of `local_value`.
    pub price_currency: Currency,
    /// The value in `price_currency` (accrued interest included); `None` when it cannot be
    /// valued.
    pub local_value: Option<Decimal>,
    /// What one unit of `price_currency` is worth in the reporting currency; `None` when no
    /// rate was found.
    pub fx_rate: Option<Decimal>,
    /// The value in the reporting currency; `None` with `reason` when it cannot be valued or
    /// converted.
    pub value: Option<Decimal>,
    /// Why `value` is `None`.
    pub reason: Option<String>,
    /// The date of the bank's snapshot this position comes from.
    pub snapshot_date: NaiveDate,
}

/// One account's balance in one currency at the period's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashBalance {
    /// The custodian holding the account.
    pub custodian: String,
    /// The account's number as the bank writes it.
    pub account: String,
    /// The balance's currency.
    pub currency: Currency,
    /// The balance in `currency`; negative for an overdraft.
    pub amount: Decimal,
    /// What one unit of `currency` is worth in the reporting currency; `None` when no rate
    /// was found.
    pub fx_rate: Option<Decimal>,
    /// The balance in the reporting currency; `None` with `reason` when it cannot be
    /// converted.
    pub value: Option<Decimal>,
    /// Why `value` is `None`.
    pub reason: Option<String>,
    /// The date of the balance.
    pub date: NaiveDate,
}

/// An exchange rate a conversion used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FxRateUsed {
    /// The currency converted from.
    pub currency: Currency,
    /// What one unit of `currency` is worth in the reporting currency.
    pub rate: Decimal,
    /// The date of the rate (the oldest of the rates a cross rate is made of).
    pub date: NaiveDate,
    /// Where the rate comes from: `ecb`, `bank:<custodian>`, `euro_fixed`.
    pub sources: Vec<String>,
    /// True when the rate is older than the platform's staleness limit.
    pub stale: bool,
}

/// Returns over the period, in the reporting currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// The value at the end of the period's first day; `None` when that day cannot be valued.
    pub start_value: Option<Decimal>,
    /// The value at the end of the period's last day; `None` when that day cannot be valued.
    pub end_value: Option<Decimal>,
    /// The external flows' sum; `None` when one cannot be converted.
    pub net_flows: Option<Decimal>,
    /// The time-weighted return; `None` with `reasons` when it cannot be computed.
    pub time_weighted: Option<TimeWeightedReturn>,
    /// The money-weighted return; `None` with `reasons` when it cannot be computed.
    pub money_weighted: Option<MoneyWeightedReturn>,
    /// Why a figure above is `None`.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The external flows (money in and out of the portfolio) booked in the period.
    pub flows: Vec<ExternalFlow>,
}

/// The time-weighted return (daily sub-periods, geometrically linked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWeightedReturn {
    /// Over the whole period, as a fraction.
    pub cumulative: Decimal,
    /// Per year, for periods of 365 days or more.
    pub annualized: Option<Decimal>,
    /// How it was computed, in words, as the API states it.
    pub method: String,
}

/// The money-weighted return (the flows' internal rate of return).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyWeightedReturn {
    /// Per year, as a fraction.
    pub annual_rate: Decimal,
    /// How it was computed, in words, as the API states it.
    pub method: String,
}

/// Money moved into (+) or out of (-) the portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalFlow {
    /// The booking date.
    pub date: NaiveDate,
    /// The custodian holding the account.
    pub custodian: String,
    /// The account's number as the bank writes it.
    pub account: String,
    /// `deposit`, `withdrawal` or `transfer`.
    pub kind: TransactionType,
    /// In `currency`: positive in, negative out.
    pub amount: Decimal,
    /// The account's currency.
    pub currency: Currency,
    /// In the reporting currency at the day's rate; `None` when it cannot be converted.
    pub value: Option<Decimal>,
}

/// A transaction booked in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The booking date.
    pub booking_date: NaiveDate,
    /// The value date, when the bank gives one.
    pub value_date: Option<NaiveDate>,
    /// The custodian holding the account.
    pub custodian: String,
    /// The account's number as the bank writes it.
    pub account: String,
    /// The canonical type.
    pub kind: TransactionType,
    /// The bank's booking text.
    pub description: String,
    /// Signed: credits positive, debits negative.
    pub amount: Decimal,
    /// The currency of `amount`.
    pub currency: Currency,
}

/// Where the statement's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The sync runs whose documents the figures are read from.
    pub runs: Vec<SyncRunRef>,
    /// How recent each account's data is.
    pub accounts: Vec<AccountDataAsOf>,
}

/// One sync run the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRunRef {
    /// The run's id (what support looks up).
    pub run_id: RunId,
    /// The custodian the run fetched from.
    pub custodian: String,
    /// The connection's name.
    pub connection: String,
    /// When the run finished; `None` for one still running.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub status: RunStatus,
}

/// How recent one account's data is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountDataAsOf {
    /// The custodian holding the account.
    pub custodian: String,
    /// The account's number as the bank writes it.
    pub account: String,
    /// The latest date with data (snapshot or balance); `None` when the account has none.
    pub data_as_of: Option<NaiveDate>,
}

impl Statement {
    /// Every position with its custodian and account, in the order shown.
    pub fn position_lines(&self) -> impl Iterator<Item = (&str, &AccountPositions, &Position)> {
        self.positions.iter().flat_map(|c| {
            c.accounts.iter().flat_map(move |a| {
                a.positions
                    .iter()
                    .map(move |p| (c.custodian.as_str(), a, p))
            })
        })
    }

    /// Refuses what no renderer can show: a period that ends before it starts.
    pub fn check(&self) -> Result<(), crate::RenderError> {
        if self.period.to < self.period.from {
            return Err(crate::RenderError::Period {
                from: self.period.from,
                to: self.period.to,
            });
        }
        Ok(())
    }

    /// True when the statement has nothing to show but its cover: no position, balance,
    /// flow or transaction.
    pub fn is_empty(&self) -> bool {
        self.position_lines().next().is_none()
            && self.cash.is_empty()
            && self.performance.flows.is_empty()
            && self.transactions.is_empty()
    }
}

/// `Option<Vec<u8>>` as a hex string in JSON: a logo stays one readable string instead of an
/// array of thousands of numbers.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .transpose()
    }
}
