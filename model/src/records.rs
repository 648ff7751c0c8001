//! The canonical model: what every bank format is normalized into before it is loaded.
//!
//! Records refer to each other by the bank's identifiers (account reference, security key),
//! not by database ids: the normalizer does no I/O, and the store resolves references when it
//! loads a [`Batch`] in one transaction. Every record carries a deterministic natural key, so
//! loading the same statement twice changes nothing, and its [`Provenance`].

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{Currency, Iban, Isin};

/// The bank format a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    BankAJson,
    Mt940,
    /// Balance report.
    Mt941,
    Mt942,
    Mt950,
    /// Confirmation of a debit.
    Mt900,
    /// Confirmation of a credit.
    Mt910,
    Mt535,
    Mt536,
    Camt052,
    Camt053,
    Camt054,
    Semt002,
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 13] = [
        SourceFormat::BankAJson,
        SourceFormat::Mt940,
        SourceFormat::Mt941,
        SourceFormat::Mt942,
        SourceFormat::Mt950,
        SourceFormat::Mt900,
        SourceFormat::Mt910,
        SourceFormat::Mt535,
        SourceFormat::Mt536,
        SourceFormat::Camt052,
        SourceFormat::Camt053,
        SourceFormat::Camt054,
        SourceFormat::Semt002,
    ];

    /// Stable name stored with each record (and accepted by `eam normalize --format`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::BankAJson => "bank_a_json",
            SourceFormat::Mt940 => "mt940",
            SourceFormat::Mt941 => "mt941",
            SourceFormat::Mt942 => "mt942",
            SourceFormat::Mt950 => "mt950",
            SourceFormat::Mt900 => "mt900",
            SourceFormat::Mt910 => "mt910",
            SourceFormat::Mt535 => "mt535",
            SourceFormat::Mt536 => "mt536",
            SourceFormat::Camt052 => "camt052",
            SourceFormat::Camt053 => "camt053",
            SourceFormat::Camt054 => "camt054",
            SourceFormat::Semt002 => "semt002",
        }
    }

    /// The format named by [`SourceFormat::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        SourceFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Where a record came from: format, document and position in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub format: SourceFormat,
    /// Identifies the raw document within a sync, e.g. `transactions/BA-000001-1/page-2`.
    pub document: String,
    /// Zero-based index of the record in the document.
    pub position: u32,
}

/// Cash or custody account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Cash,
    Custody,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Cash => "cash",
            AccountKind::Custody => "custody",
        }
    }
}

/// An end client as the bank names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    pub reference: String,
    pub name: String,
}

/// A bank account. Natural key: the bank's account id within the connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub bank_account_id: String,
    pub iban: Option<Iban>,
    pub currency: Currency,
    pub kind: AccountKind,
    pub client: Option<ClientRef>,
    pub provenance: Provenance,
}

/// Asset class of a security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    Equity,
    Bond,
    Fund,
    Other,
}

impl AssetClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetClass::Equity => "equity",
            AssetClass::Bond => "bond",
            AssetClass::Fund => "fund",
            AssetClass::Other => "other",
        }
    }

    /// The class named by [`AssetClass::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            AssetClass::Equity,
            AssetClass::Bond,
            AssetClass::Fund,
            AssetClass::Other,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A security. Identified by ISIN when the bank gives one, else by custodian + bank id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Security {
    pub key: SecurityKey,
    pub isin: Option<Isin>,
    /// An ISIN as the bank wrote it when it fails its check digit (or its form): kept for
    /// support and for matching by hand, never a key. The security is then identified by the
    /// bank's own id, and the run carries a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_isin: Option<String>,
    pub bank_security_id: Option<String>,
    pub valor: Option<String>,
    pub wkn: Option<String>,
    pub cusip: Option<String>,
    pub name: String,
    pub asset_class: AssetClass,
    pub currency: Option<Currency>,
    pub detail: SecurityDetail,
}

/// How much a record knows about a security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityDetail {
    /// Described in full (e.g. from a holdings statement): its fields replace stored ones.
    Full,
    /// Only referenced (e.g. by a transaction): created if unknown, never overwrites.
    ReferenceOnly,
}

/// The identity of a security within a tenant: `isin:<ISIN>` or `bank:<custodian>:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecurityKey(String);

impl SecurityKey {
    /// The key of a security: its ISIN when known, otherwise the custodian's own id.
    pub fn new(
        custodian: &str,
        isin: Option<&Isin>,
        bank_security_id: Option<&str>,
    ) -> Option<Self> {
        match (isin, bank_security_id) {
            (Some(isin), _) => Some(SecurityKey(format!("isin:{isin}"))),
            (None, Some(id)) if !id.is_empty() => {
                Some(SecurityKey(format!("bank:{custodian}:{id}")))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as [`SecurityKey::as_str`] wrote it (read back from the database): `isin:` and a
    /// valid ISIN, or `bank:`, a custodian and a non-empty id.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(isin) = s.strip_prefix("isin:") {
            return Isin::parse(isin).ok().map(|_| SecurityKey(s.to_owned()));
        }
        let (custodian, id) = s.strip_prefix("bank:")?.split_once(':')?;
        (!custodian.is_empty() && !id.is_empty()).then(|| SecurityKey(s.to_owned()))
    }
}

/// How a position's quantity is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityType {
    Units,
    FaceAmount,
}

impl QuantityType {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantityType::Units => "units",
            QuantityType::FaceAmount => "face_amount",
        }
    }
}

/// How a price is expressed: an amount per unit, or a percentage of face amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceType {
    Amount,
    Percent,
}

impl PriceType {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceType::Amount => "amount",
            PriceType::Percent => "percent",
        }
    }

    /// The type named by [`PriceType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [PriceType::Amount, PriceType::Percent]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A holding of one security in one account on one date. Natural key: (account, security, as_of).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub account: String,
    pub security: SecurityKey,
    pub as_of: NaiveDate,
    pub quantity: Decimal,
    pub quantity_type: QuantityType,
    pub price: Option<Decimal>,
    pub price_type: PriceType,
    /// The currency of an amount price; of the face amount for a percent price (when the
    /// statement says it); of the values for a position without price. `market_value`,
    /// `accrued_interest` and `cost` are stated in this currency.
    pub price_currency: Option<Currency>,
    /// The holding's value in `price_currency` (MT535 `:19A::HOLD`, semt.002 `HldgVal`).
    /// One currency per position: a statement's second valuation of the same holding (the
    /// semt.002 account base currency beside the instrument currency) has no field here and is
    /// not kept; a value given only in another currency is left out with a warning.
    pub market_value: Option<Decimal>,
    /// Accrued interest in `price_currency`.
    pub accrued_interest: Option<Decimal>,
    /// Book value (cost) in `price_currency`.
    pub cost: Option<Decimal>,
    pub provenance: Provenance,
}

/// An exchange rate a bank states in its files: 1 `base` = `rate` `quote` on `date` (camt
/// `AmtDtls/*/CcyXchg`, MT535/536 `:92B::EXCH`, semt.002 `FrgnXchgDtls`). Kept per custodian
/// and date as the bank's rate, one source among others for conversions
/// (`wealth::fx::RateBook::add_bank_pair` says when it is used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatedRate {
    /// The bank's account whose statement states it.
    pub account: String,
    pub base: Currency,
    pub quote: Currency,
    /// Units of `quote` per 1 `base`; always positive.
    pub rate: Decimal,
    /// The quotation date when the file gives one, else the date of what it converts.
    pub date: NaiveDate,
    pub provenance: Provenance,
}

/// Which balance of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceKind {
    Opening,
    Closing,
    Available,
    Forward,
}

impl BalanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceKind::Opening => "opening",
            BalanceKind::Closing => "closing",
            BalanceKind::Available => "available",
            BalanceKind::Forward => "forward",
        }
    }
}

/// A cash balance. Natural key: (account, currency, kind, as_of).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashBalance {
    pub account: String,
    pub currency: Currency,
    pub kind: BalanceKind,
    pub as_of: NaiveDate,
    pub amount: Decimal,
    pub provenance: Provenance,
}

/// Debit or credit, from the account holder's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }

    /// The direction named by [`Direction::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Direction::Debit, Direction::Credit]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// The signed amount: credits positive, debits negative.
    pub fn signed(self, amount: Decimal) -> Decimal {
        match self {
            Direction::Debit => -amount,
            Direction::Credit => amount,
        }
    }
}

/// Canonical transaction type; the bank's raw code is kept beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionType {
    Buy,
    Sell,
    Dividend,
    Interest,
    Fee,
    Deposit,
    Withdrawal,
    Transfer,
    Other,
}

impl TransactionType {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::Buy => "buy",
            TransactionType::Sell => "sell",
            TransactionType::Dividend => "dividend",
            TransactionType::Interest => "interest",
            TransactionType::Fee => "fee",
            TransactionType::Deposit => "deposit",
            TransactionType::Withdrawal => "withdrawal",
            TransactionType::Transfer => "transfer",
            TransactionType::Other => "other",
        }
    }

    /// The type named by [`TransactionType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            TransactionType::Buy,
            TransactionType::Sell,
            TransactionType::Dividend,
            TransactionType::Interest,
            TransactionType::Fee,
            TransactionType::Deposit,
            TransactionType::Withdrawal,
            TransactionType::Transfer,
            TransactionType::Other,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Booked or pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    Pending,
    Booked,
}

impl TransactionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Pending => "pending",
            TransactionStatus::Booked => "booked",
        }
    }

    /// The status named by [`TransactionStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [TransactionStatus::Pending, TransactionStatus::Booked]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A cash or securities transaction. Natural key: `natural_key` within the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub account: String,
    /// The bank reference when the bank gives one, else a hash of the identifying fields.
    pub natural_key: String,
    pub bank_reference: Option<String>,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    pub trade_date: Option<NaiveDate>,
    pub settlement_date: Option<NaiveDate>,
    pub kind: TransactionType,
    pub bank_code: Option<String>,
    pub amount: Decimal,
    pub direction: Direction,
    pub currency: Currency,
    pub security: Option<SecurityKey>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub fees: Option<Decimal>,
    pub status: TransactionStatus,
    /// A reversal (storno) of an earlier entry: MT `RC`/`RD`, camt `RvslInd`. `direction` is
    /// the effective movement (a reversed credit is a debit).
    pub reversal: bool,
    pub counterparty: Option<String>,
    pub description: Option<String>,
    pub provenance: Provenance,
}

impl Transaction {
    /// Credits positive, debits negative.
    pub fn signed_amount(&self) -> Decimal {
        self.direction.signed(self.amount)
    }

    /// How a trade's price is expressed, as its own figures show: not every bank says (bank_a's
    /// JSON has no field for it, and the record keeps none), but a trade's cash amount is its
    /// quantity times the price (per unit) or a hundredth of that (percent of face amount),
    /// give or take fees and accrued interest, and the two readings are a hundredfold apart.
    /// `None` without a quantity, a price or an amount, or when neither reading comes within
    /// half the amount (a free-of-payment delivery, a price in another currency).
    pub fn implied_price_type(&self) -> Option<PriceType> {
        let quantity = self.quantity?.abs();
        let price = self.price?.abs();
        let amount = self.amount.abs();
        if quantity.is_zero() || price.is_zero() || amount.is_zero() {
            return None;
        }
        let per_unit = quantity.checked_mul(price)?;
        let of_face = per_unit / Decimal::ONE_HUNDRED;
        let off = |value: Decimal| (value - amount).abs();
        let (reading, miss) = if off(per_unit) <= off(of_face) {
            (PriceType::Amount, off(per_unit))
        } else {
            (PriceType::Percent, off(of_face))
        };
        (miss <= amount / Decimal::TWO).then_some(reading)
    }

    /// True when the record comes from a securities statement (MT536), which describes the
    /// securities side of a trade; cash statements describe its cash side.
    fn is_securities_leg(&self) -> bool {
        self.provenance.format == SourceFormat::Mt536
    }

    /// Merges another report of the same transaction (same account and natural key) into this
    /// one. A bank reports a trade twice: its cash statement (MT940, camt.053) knows the cash
    /// side (booking and value dates, amount, counterparty), its securities statement (MT536)
    /// the securities side (trade and settlement dates, security, quantity, price). Each side
    /// keeps what it knows best; what one side lacks the other fills; a specific type beats
    /// `other`. Two reports of the same side: the later one wins, field by field where given.
    pub fn merge(&mut self, other: Transaction) {
        let (cash, securities) = match (self.is_securities_leg(), other.is_securities_leg()) {
            (false, true) => (self.clone(), other),
            (true, false) => (other, self.clone()),
            _ => {
                let earlier = std::mem::replace(self, other);
                self.fill_from(earlier);
                return;
            }
        };
        let kind = if cash.kind == TransactionType::Other {
            securities.kind
        } else {
            cash.kind
        };
        *self = Transaction {
            kind,
            trade_date: securities.trade_date.or(cash.trade_date),
            settlement_date: securities.settlement_date.or(cash.settlement_date),
            security: securities.security.clone().or(cash.security.clone()),
            quantity: securities.quantity.or(cash.quantity),
            price: securities.price.or(cash.price),
            fees: cash.fees.or(securities.fees),
            value_date: cash.value_date.or(securities.value_date),
            bank_code: cash.bank_code.clone().or(securities.bank_code.clone()),
            counterparty: cash
                .counterparty
                .clone()
                .or(securities.counterparty.clone()),
            description: cash.description.clone().or(securities.description.clone()),
            ..cash
        };
    }

    /// Fills the optional fields this record lacks from an earlier report of it.
    fn fill_from(&mut self, earlier: Transaction) {
        self.value_date = self.value_date.or(earlier.value_date);
        self.trade_date = self.trade_date.or(earlier.trade_date);
        self.settlement_date = self.settlement_date.or(earlier.settlement_date);
        self.bank_code = self.bank_code.take().or(earlier.bank_code);
        self.security = self.security.take().or(earlier.security);
        self.quantity = self.quantity.or(earlier.quantity);
        self.price = self.price.or(earlier.price);
        self.fees = self.fees.or(earlier.fees);
        self.counterparty = self.counterparty.take().or(earlier.counterparty);
        self.description = self.description.take().or(earlier.description);
        if self.kind == TransactionType::Other {
            self.kind = earlier.kind;
        }
    }
}

/// A position snapshot that is complete: positions of that account and date that it does not
/// list are closed when it loads. (A delta statement lists no snapshot here.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteSnapshot {
    pub account: String,
    pub as_of: NaiveDate,
}

/// A balance as a statement states it: signed (credit positive), on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatedBalance {
    pub amount: Decimal,
    pub date: NaiveDate,
    /// An intermediate balance of a statement split into pages (MT `:60M:`/`:62M:`), not a
    /// final one of the statement.
    pub intermediate: bool,
}

/// What a cash statement (or one page of it) says about itself, for the data-quality checks:
/// opening + entries = closing, opening = the previous statement's closing, no gap in the
/// statement and page numbers. One per statement page, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementSummary {
    pub account: String,
    pub currency: Currency,
    /// The statement's reference (MT `:20:`, camt `Stmt/Id`).
    pub reference: Option<String>,
    /// Statement number (MT `:28C:` first part, camt `ElctrncSeqNb`/`LglSeqNb`).
    pub statement_number: Option<u32>,
    /// Page (sequence) number within the statement (MT `:28C:` second part, camt page number).
    pub page_number: Option<u32>,
    /// True on the last page of a statement (camt `LastPgInd`; MT: a final `:62F:`).
    pub last_page: bool,
    pub opening: Option<StatedBalance>,
    pub closing: Option<StatedBalance>,
    /// Signed sum of the booked entries of this page in `currency`.
    pub entries_total: Decimal,
    pub entry_count: u32,
    pub provenance: Provenance,
}

/// Something a parser read but had to interpret, e.g. a value date of 30 February mapped to
/// the last day of the month. The record is kept; support sees why it looks as it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseWarning {
    pub document: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

/// A statement of a document that was left out while its neighbours loaded: cut short (no
/// closing balance), without account or currency, or otherwise unreadable on its own. A file
/// of several statements is not all or nothing: each complete statement loads, and each one
/// here becomes a break on the run (`succeeded_with_breaks`), naming the document, the
/// statement and the line. A document none of whose statements can be read is still an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedStatement {
    /// The document the statement was read from.
    pub document: String,
    /// The statement's position among the statements of its document, from 1.
    pub index: u32,
    /// The bank's reference of the statement (`:20:`, `Stmt/Id`), where it gave one.
    pub reference: Option<String>,
    /// The account as the statement names it, where it names one.
    pub account: Option<String>,
    /// The line of the statement's first field (or of the offending field).
    pub line: Option<usize>,
    /// The field that made it unreadable, e.g. `:62a:`.
    pub field: Option<String>,
    pub reason: String,
}

/// Everything one sync normalized, loaded together in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub accounts: Vec<Account>,
    pub securities: Vec<Security>,
    pub positions: Vec<Position>,
    pub balances: Vec<CashBalance>,
    pub transactions: Vec<Transaction>,
    pub complete_snapshots: Vec<CompleteSnapshot>,
    /// Cash statements' own totals, for reconciliation (empty for formats without statements).
    pub statements: Vec<StatementSummary>,
    pub warnings: Vec<ParseWarning>,
    /// Statements left out of this batch while the rest of their document loaded: each is a
    /// break on the run (see [`RejectedStatement`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedStatement>,
    /// Exchange rates the documents state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<StatedRate>,
}

impl Batch {
    /// Appends another batch; call [`Batch::dedup_securities`] once at the end.
    pub fn extend(&mut self, other: Batch) {
        self.accounts.extend(other.accounts);
        self.securities.extend(other.securities);
        self.positions.extend(other.positions);
        self.balances.extend(other.balances);
        self.transactions.extend(other.transactions);
        self.complete_snapshots.extend(other.complete_snapshots);
        self.statements.extend(other.statements);
        self.warnings.extend(other.warnings);
        self.rejected.extend(other.rejected);
        self.rates.extend(other.rates);
    }

    /// Keeps one record per (account, natural key), merging the reports of one transaction
    /// ([`Transaction::merge`]), in first-seen order.
    pub fn merge_transactions(&mut self) {
        let mut by_key: std::collections::HashMap<(String, String), usize> = Default::default();
        let mut kept: Vec<Transaction> = Vec::with_capacity(self.transactions.len());
        for t in self.transactions.drain(..) {
            match by_key.get(&(t.account.clone(), t.natural_key.clone())) {
                Some(&i) => kept[i].merge(t),
                None => {
                    by_key.insert((t.account.clone(), t.natural_key.clone()), kept.len());
                    kept.push(t);
                }
            }
        }
        self.transactions = kept;
    }

    /// Keeps one record per security key: a full description wins over a mere reference,
    /// otherwise the first seen wins.
    pub fn dedup_securities(&mut self) {
        let mut by_key: std::collections::HashMap<SecurityKey, usize> = Default::default();
        let mut kept: Vec<Security> = Vec::with_capacity(self.securities.len());
        for s in self.securities.drain(..) {
            match by_key.get(&s.key) {
                Some(&i) => {
                    if kept[i].detail == SecurityDetail::ReferenceOnly
                        && s.detail == SecurityDetail::Full
                    {
                        kept[i] = s;
                    }
                }
                None => {
                    by_key.insert(s.key.clone(), kept.len());
                    kept.push(s);
                }
            }
        }
        self.securities = kept;
    }

    /// Number of records of every kind.
    pub fn len(&self) -> usize {
        self.accounts.len()
            + self.securities.len()
            + self.positions.len()
            + self.balances.len()
            + self.transactions.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(format: SourceFormat, kind: TransactionType) -> Transaction {
        Transaction {
            account: "CH9300762011623852957".into(),
            natural_key: "ref:TX1".into(),
            bank_reference: Some("TX1".into()),
            booking_date: NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
            value_date: None,
            trade_date: None,
            settlement_date: None,
            kind,
            bank_code: None,
            amount: Decimal::new(100_050, 2),
            direction: Direction::Debit,
            currency: Currency::parse("CHF").expect("CHF"),
            security: None,
            quantity: None,
            price: None,
            fees: None,
            status: TransactionStatus::Booked,
            reversal: false,
            counterparty: None,
            description: None,
            provenance: Provenance {
                format,
                document: format.as_str().into(),
                position: 0,
            },
        }
    }

    #[test]
    fn a_trades_price_type_is_read_from_its_quantity_price_and_amount() {
        let trade = |quantity: i64, price: Decimal, amount: Decimal| Transaction {
            quantity: Some(Decimal::from(quantity)),
            price: Some(price),
            amount,
            ..tx(SourceFormat::BankAJson, TransactionType::Buy)
        };
        // 10 shares at 122.46 plus 9.90 fees.
        let shares = trade(10, Decimal::new(12246, 2), Decimal::new(123450, 2));
        assert_eq!(shares.implied_price_type(), Some(PriceType::Amount));
        // 50,000 face at 101.25% plus 312.50 accrued interest, less nothing.
        let bond = trade(50_000, Decimal::new(10125, 2), Decimal::new(5_093_750, 2));
        assert_eq!(bond.implied_price_type(), Some(PriceType::Percent));
        // A sale: the amount is the gross less fees.
        let sold = trade(3, Decimal::new(100, 0), Decimal::new(29_000, 2));
        assert_eq!(sold.implied_price_type(), Some(PriceType::Amount));
        // Free of payment, or nothing to read: no reading.
        assert_eq!(
            trade(10, Decimal::ONE, Decimal::ZERO).implied_price_type(),
            None
        );
        assert_eq!(
            tx(SourceFormat::Mt536, TransactionType::Buy).implied_price_type(),
            None
        );
        // Neither reading near the amount (a price in another currency): no reading.
        let odd = trade(10, Decimal::new(5, 0), Decimal::new(1_000, 0));
        assert_eq!(odd.implied_price_type(), None);
    }

    #[test]
    fn the_cash_and_securities_reports_of_a_trade_merge_into_one_transaction() {
        let mut cash = tx(SourceFormat::Mt940, TransactionType::Other);
        cash.value_date = NaiveDate::from_ymd_opt(2026, 11, 4);
        cash.counterparty = Some("Broker".into());
        let mut securities = tx(SourceFormat::Mt536, TransactionType::Buy);
        securities.booking_date = NaiveDate::from_ymd_opt(2026, 11, 4).expect("date");
        securities.trade_date = NaiveDate::from_ymd_opt(2026, 11, 2);
        securities.settlement_date = NaiveDate::from_ymd_opt(2026, 11, 4);
        securities.quantity = Some(Decimal::new(10, 0));
        securities.security = SecurityKey::new("bank_b", None, Some("SEC-1"));
        let mut batch = Batch {
            transactions: vec![securities, cash],
            ..Batch::default()
        };
        batch.merge_transactions();
        assert_eq!(batch.transactions.len(), 1);
        let t = &batch.transactions[0];
        assert_eq!(t.kind, TransactionType::Buy, "the specific type wins");
        assert_eq!(
            t.booking_date,
            NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
            "the cash side's booking"
        );
        assert_eq!(t.value_date, NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(t.settlement_date, NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(t.quantity, Some(Decimal::new(10, 0)));
        assert_eq!(t.counterparty.as_deref(), Some("Broker"));
        assert_eq!(t.provenance.format, SourceFormat::Mt940);
    }

    #[test]
    fn two_reports_of_one_side_keep_the_later_and_fill_its_gaps() {
        let mut first = tx(SourceFormat::Camt053, TransactionType::Fee);
        first.description = Some("Custody fee".into());
        let later = tx(SourceFormat::Camt053, TransactionType::Other);
        let mut batch = Batch {
            transactions: vec![first, later],
            ..Batch::default()
        };
        batch.merge_transactions();
        let t = &batch.transactions[0];
        assert_eq!(t.kind, TransactionType::Fee);
        assert_eq!(t.description.as_deref(), Some("Custody fee"));
    }

    #[test]
    fn stored_names_read_back_as_the_values_that_wrote_them() {
        for t in [
            TransactionType::Buy,
            TransactionType::Sell,
            TransactionType::Dividend,
            TransactionType::Interest,
            TransactionType::Fee,
            TransactionType::Deposit,
            TransactionType::Withdrawal,
            TransactionType::Transfer,
            TransactionType::Other,
        ] {
            assert_eq!(TransactionType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TransactionType::parse("Buy"), None);
        assert_eq!(Direction::parse("credit"), Some(Direction::Credit));
        assert_eq!(Direction::parse("debit"), Some(Direction::Debit));
        assert_eq!(Direction::parse("C"), None);
        assert_eq!(
            TransactionStatus::parse("booked"),
            Some(TransactionStatus::Booked)
        );
        assert_eq!(
            TransactionStatus::parse("pending"),
            Some(TransactionStatus::Pending)
        );
        assert_eq!(TransactionStatus::parse(""), None);
    }

    #[test]
    fn a_security_key_reads_back_only_in_the_forms_it_is_written() {
        let isin = Isin::parse("US0378331005").expect("valid ISIN");
        let by_isin = SecurityKey::new("bank_b", Some(&isin), Some("SEC-1")).expect("key");
        assert_eq!(SecurityKey::parse(by_isin.as_str()), Some(by_isin));
        let by_id = SecurityKey::new("bank_b", None, Some("SEC-1")).expect("key");
        assert_eq!(by_id.as_str(), "bank:bank_b:SEC-1");
        assert_eq!(SecurityKey::parse("bank:bank_b:SEC-1"), Some(by_id));
        // An id may itself hold colons; custodian and id must both be there.
        assert!(SecurityKey::parse("bank:bank_b:A:B").is_some());
        for bad in [
            "isin:US0378331006",
            "bank::SEC-1",
            "bank:bank_b:",
            "SEC-1",
            "",
        ] {
            assert_eq!(SecurityKey::parse(bad), None, "{bad}");
        }
    }
}
