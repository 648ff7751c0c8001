//! camt.052 (account report), camt.053 (statement) and camt.054 (debit/credit notification):
//! one reader for the three, since they share the statement shape (`Stmt`, `Rpt`, `Ntfctn`
//! hold an account, balances and entries).
//!
//! Mapping decisions, each one a choice a caller must know:
//!
//! - **One transaction per entry (`Ntry`)**, never one per `TxDtls`. The entry is what moved
//!   the account and what the balances add up; its details enrich it (references,
//!   counterparty, remittance, charges). A batch (several `TxDtls`) stays one booking, as on
//!   the bank's own statement: Swiss and German banks report a batch as one entry in camt.053
//!   and its parts in camt.054, so splitting would load the same money twice under two keys.
//! - **Direction is `CdtDbtInd` as written; `RvslInd` only sets `reversal`.** ISO 20022 defines
//!   the indicator of a reversal entry as the effective movement ("if CdtDbtInd is CRDT and
//!   RvslInd is true, the original operation was a debit"): a reversed credit arrives as DBIT,
//!   a returned payment (PostFinance `ICDT/RRTN`) as CRDT. Flipping it would break every
//!   balance. The counterparty of a reversal is taken from the side of the original movement.
//! - **Natural key**: `ref:<AcctSvcrRef>` (the entry's, else that of its only `TxDtls`); a bank
//!   that repeats a reference within a statement (PostFinance does) gets `#2`, `#3` suffixes in
//!   document order. Without a reference: a hash of account, dates, amount, direction,
//!   currency, reversal, bank code, the payment references and the description, plus the
//!   occurrence among identical entries of the statement (never the position, which shifts
//!   between an intraday report and the statement).
//! - **Dates**: booking date from `BookgDt`, value date from `ValDt`, kept apart; the
//!   interbank settlement date (`RltdDts/IntrBkSttlmDt`) and trade date of the only `TxDtls` as
//!   settlement and trade dates. An entry without `BookgDt` (CBPR+ statements omit it) takes
//!   its value date as booking date (else its settlement date, else the statement's date), and
//!   the statement says so in one warning.
//! - **Securities**: for an entry with one `TxDtls`, the instrument (`FinInstrmId`: ISIN, else
//!   the first `OthrId`) as the transaction's security. When the entry concerns securities
//!   (it names an instrument, or its bank transaction code domain is `SECU`) that `TxDtls`
//!   also gives the quantity, from the first `RltdQties` with `Qty/Unit`, `Qty/FaceAmt`,
//!   `Qty/AmtsdVal` (`.02`+) or `OrgnlAndCurFace/FaceAmt` (`.08`+), and the price, from
//!   `RltdPric/DealPric/Val`: `Amt` an amount per unit, `Rate` a percentage of face amount. A
//!   deal price typed as a yield (`Tp/Yldd` true) or a discount or premium (`Tp/ValTp` DISC,
//!   PREM) is a rate, not a price: left out with a warning. Proprietary quantities and prices
//!   (`Prtry`) have no type a reader can rely on and are not read. The price's currency is not
//!   kept (the canonical transaction has none; it is the instrument's). Other entries keep no
//!   quantity: the Finnish sample uses `RltdQties` for the number of payments a charge covers.
//! - **Status**: `BOOK` booked; `PDNG`, `FUTR` and `INFO` pending (not in the booked total);
//!   `Sts` read in both the `.02`-`.07` text form and the `.08`+ `Sts/Cd` form.
//! - **Balances**: OPBD opening, CLBD closing, CLAV available, FWAV forward as
//!   [`CashBalance`]s. PRCD (previously closed booked) is the previous day's closing: it opens
//!   the statement summary when no OPBD is given, and is stored as a *closing* balance on its
//!   own date, because that is what it is (storing it as an opening on the previous date would
//!   record a wrong opening there). ITBD/ITAV and `SubTp` INTM balances only feed the summary,
//!   marked intermediate. A statement with only OPAV/CLAV (some Baltic banks) has those as the
//!   summary's opening and closing, with a warning.
//! - **Statement number**: `ElctrncSeqNb` (increments with every electronic statement, empty
//!   ones too: what a gap check needs), else `LglSeqNb`. Page from the statement's own
//!   pagination, else the group header's; no pagination means one complete page.
//! - **Account**: IBAN when given (parsed; an IBAN that fails its check is kept as written with
//!   a warning), else `Othr/Id`; currency from `Acct/Ccy`, else the first balance or entry.
//! - **Exchange rates**: every `CcyXchg` of an `AmtDtls` (the entry's, and each `TxDtls`'s;
//!   under `InstdAmt`, `TxAmt`, `CntrValAmt`, `AnncdPstngAmt`, `PrpsdAmt`, `PrtryAmt`) is a
//!   [`StatedRate`] of the statement's account: `SrcCcy`, `TrgtCcy`, `UnitCcy`, `XchgRate`,
//!   `QtnDt` (else the entry's booking date). `UnitCcy` is the currency of which 1 unit is
//!   quoted, as ISO 20022 defines it, unless the amounts of the conversion say otherwise: then
//!   the amounts decide and a warning says so (see `currency_exchange`). A rate that does not
//!   read is a warning, never a refused statement; identical rates of a document are one.
//!   Pending and information entries state rates too: they are read.
//!
//! Memory: records are emitted as each element closes; per entry only its own fields are
//! held, and free text is capped. What grows is the set of entry identities of the current
//! statement (8 bytes per entry, cleared at the next statement), which the duplicate-reference
//! and occurrence rules need, and the set of distinct exchange rates of the document (8 bytes
//! each): a file of many statements reads in constant memory, a single statement of 150,000
//! entries holds about 2 MB of it.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::NaiveDate;
use quick_xml::events::BytesStart;
use rust_decimal::Decimal;

use super::currency_exchange::{AmountDetails, Outcome, PendingExchange, wait};
use super::value;
use super::xml::{At, Handler, RawText, Tag, currency_attribute};
use super::{CashEntry, EntryReferences, Record};
use crate::domain::{Currency, Iban};
use crate::error::ParseError;
use crate::isin::WrittenIsin;
use crate::model::{
    Account, AccountKind, AssetClass, BalanceKind, CashBalance, Direction, ParseWarning,
    Provenance, RejectedStatement, Security, SecurityDetail, SecurityKey, SourceFormat,
    StatedBalance, StatedRate, StatementSummary, Transaction, TransactionStatus, TransactionType,
};
use crate::stated_rate::SeenRates;

/// Which of the three messages a document holds, from its root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    Report,
    Statement,
    Notification,
}

impl Message {
    fn format(self) -> SourceFormat {
        match self {
            Message::Report => SourceFormat::Camt052,
            Message::Statement => SourceFormat::Camt053,
            Message::Notification => SourceFormat::Camt054,
        }
    }

    fn element(self) -> &'static str {
        match self {
            Message::Report => "Rpt",
            Message::Statement => "Stmt",
            Message::Notification => "Ntfctn",
        }
    }

    fn of_root(tag: Tag) -> Option<Message> {
        match tag {
            Tag::BkToCstmrAcctRpt | Tag::BkToCstmrAcctRptV01 => Some(Message::Report),
            Tag::BkToCstmrStmt | Tag::BkToCstmrStmtV01 => Some(Message::Statement),
            Tag::BkToCstmrDbtCdtNtfctn | Tag::BkToCstmrDbtCdtNtfctnV01 => {
                Some(Message::Notification)
            }
            _ => None,
        }
    }

    fn of_item(tag: Tag) -> Option<Message> {
        match tag {
            Tag::Rpt => Some(Message::Report),
            Tag::Stmt => Some(Message::Statement),
            Tag::Ntfctn => Some(Message::Notification),
            _ => None,
        }
    }
}

/// A balance as the statement writes it.
#[derive(Default)]
struct BalanceState {
    code: Option<String>,
    intermediate_subtype: bool,
    amount: Option<Decimal>,
    currency: Option<Currency>,
    credit: Option<bool>,
    date: Option<NaiveDate>,
}

/// A balance kept for the summary.
#[derive(Clone)]
struct Stated {
    amount: Decimal,
    currency: Currency,
    date: NaiveDate,
    intermediate: bool,
}

#[derive(Default)]
struct StatementState {
    index: u32,
    id: Option<String>,
    electronic_number: Option<String>,
    legal_number: Option<String>,
    page: Option<u32>,
    last_page: Option<bool>,
    created: Option<NaiveDate>,
    to_date: Option<NaiveDate>,
    iban: Option<String>,
    other_id: Option<String>,
    account_currency: Option<Currency>,
    account: Option<String>,
    currency: Option<Currency>,
    account_emitted: bool,
    opening: Option<Stated>,
    previous_closing: Option<Stated>,
    closing: Option<Stated>,
    intermediate_opening: Option<Stated>,
    intermediate_closing: Option<Stated>,
    interim_first: Option<Stated>,
    interim_last: Option<Stated>,
    interim_available_first: Option<Stated>,
    interim_available_last: Option<Stated>,
    interim_count: u32,
    interim_available_count: u32,
    opening_available: Option<Stated>,
    closing_available: Option<Stated>,
    entries_total: Decimal,
    entry_count: u32,
    entry_index: u32,
    balance_index: u32,
    without_booking_date: u32,
    repeated_references: u32,
    other_currency_entries: u32,
}

/// The parties of one `TxDtls`.
#[derive(Default, Clone, PartialEq)]
struct Parties {
    debtor: Option<String>,
    debtor_account: Option<String>,
    creditor: Option<String>,
    creditor_account: Option<String>,
    ultimate_debtor: Option<String>,
    ultimate_creditor: Option<String>,
}

#[derive(Default)]
struct DetailState {
    references: EntryReferences,
    parties: Parties,
    charges_total: Option<Decimal>,
    charges_records: Option<Decimal>,
    isin: Option<String>,
    other_security_id: Option<String>,
    settlement_date: Option<NaiveDate>,
    trade_date: Option<NaiveDate>,
    quantity: Option<Decimal>,
    deal_price: DealPrice,
    /// The `CcyXchg`s of its `AmtDtls`.
    exchanges: Vec<PendingExchange>,
}

/// `RltdPric/DealPric` of one `TxDtls`, as written.
#[derive(Default)]
struct DealPrice {
    /// `Tp/Yldd` true: the value is a yield.
    yielded: bool,
    /// `Tp/ValTp`: `PARV`, `DISC`, `PREM`.
    value_type: Option<String>,
    rate: Option<Decimal>,
    amount: Option<Decimal>,
}

#[derive(Default)]
struct EntryState {
    entry_reference: Option<String>,
    amount: Option<Decimal>,
    currency: Option<Currency>,
    credit: Option<bool>,
    reversal: bool,
    status: Option<String>,
    booking_date: Option<NaiveDate>,
    value_date: Option<NaiveDate>,
    servicer_reference: Option<String>,
    domain: Option<String>,
    family: Option<String>,
    sub_family: Option<String>,
    proprietary_code: Option<String>,
    additional_info: Option<String>,
    charges_total: Option<Decimal>,
    charges_records: Option<Decimal>,
    detail_charges: Option<Decimal>,
    detail_count: u32,
    first_detail: Option<DetailState>,
    counterparties_differ: bool,
    remittance: Option<String>,
    additional_tx_info: Option<String>,
    creditor_reference: Option<String>,
    charges_other_currency: bool,
    /// The `CcyXchg`s of the entry's own `AmtDtls`.
    exchanges: Vec<PendingExchange>,
    /// Those of its first `TxDtls`, kept until the entry ends: if it is the only one, the
    /// entry's amount is that conversion's too.
    first_detail_exchanges: Vec<PendingExchange>,
}

/// The camt reader: a [`Handler`] that emits [`Record`]s as elements close.
pub(crate) struct CamtReader<'a, F: FnMut(Record)> {
    listed: SourceFormat,
    custodian: &'a str,
    document: &'a str,
    emit: F,
    message: Option<Message>,
    group_created: Option<NaiveDate>,
    group_page: Option<u32>,
    group_last_page: Option<bool>,
    statement: Option<StatementState>,
    statement_depth: usize,
    statement_count: u32,
    balance: Option<BalanceState>,
    entry: Option<EntryState>,
    detail: Option<DetailState>,
    /// The `AmtDtls` being read, of the entry or of its `TxDtls`.
    amount_details: Option<AmountDetails>,
    /// Currency attribute of the amount element being read (checked when it closes).
    amount_currency: Result<Option<Currency>, String>,
    entry_position: u32,
    balance_position: u32,
    /// Identity hashes of this statement's entries, and the counts of those seen again.
    seen: HashSet<u64>,
    repeats: HashMap<u64, u32>,
    /// The exchange rates emitted from this document, and how many.
    seen_rates: SeenRates,
    rate_position: u32,
    /// The rates the current statement emitted: forgotten if it is left out.
    statement_rates: Vec<StatedRate>,
    /// The statement being skipped to its end after an error, and why it is left out.
    skipping: Option<RejectedStatement>,
    /// Statements read whole, and the error of the first one left out (the document's own
    /// error when no statement reads).
    loaded: u32,
    first_rejection: Option<ParseError>,
}

impl<'a, F: FnMut(Record)> CamtReader<'a, F> {
    pub(crate) fn new(
        listed: SourceFormat,
        custodian: &'a str,
        document: &'a str,
        emit: F,
    ) -> Self {
        CamtReader {
            listed,
            custodian,
            document,
            emit,
            message: None,
            group_created: None,
            group_page: None,
            group_last_page: None,
            statement: None,
            statement_depth: 0,
            statement_count: 0,
            balance: None,
            entry: None,
            detail: None,
            amount_details: None,
            amount_currency: Ok(None),
            entry_position: 0,
            balance_position: 0,
            seen: HashSet::new(),
            repeats: HashMap::new(),
            seen_rates: SeenRates::default(),
            rate_position: 0,
            statement_rates: Vec::new(),
            skipping: None,
            loaded: 0,
            first_rejection: None,
        }
    }

    /// Called after the last element: a document with no camt message is refused.
    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.message.is_none() {
            return Err(ParseError::field(
                self.document,
                "Document",
                format!(
                    "no {} message found (expected a BkToCstmrStmt, BkToCstmrAcctRpt or \
                     BkToCstmrDbtCdtNtfctn element)",
                    self.listed.as_str()
                ),
            ));
        }
        // A group header and nothing else: the bank sent no statement. Loading zero records
        // as a success would hide that; the file is refused.
        if let Some(message) = self.message
            && self.statement_count == 0
        {
            return Err(ParseError::field(
                self.document,
                message.element(),
                format!(
                    "the {} message holds no {} element: no statement in the file",
                    match message {
                        Message::Report => "camt.052",
                        Message::Statement => "camt.053",
                        Message::Notification => "camt.054",
                    },
                    message.element()
                ),
            ));
        }
        // Every statement was left out: nothing loads, and the first one's error is the file's.
        if self.loaded == 0
            && let Some(e) = self.first_rejection
        {
            return Err(e);
        }
        Ok(())
    }

    /// Leaves the current statement out after `error`: its state is dropped, the rates it
    /// stated are forgotten, and the rest of its elements are skipped until it closes, when
    /// [`Record::Rejected`] tells the consumer to drop the records it already received.
    fn reject(&mut self, mut error: ParseError, at: Option<At>) {
        if error.field.is_none() {
            error.field = Some(self.field(""));
        }
        if let Some(at) = at
            && error.line.is_none()
        {
            error.line = Some(at.line);
            error.column = Some(at.column);
        }
        let s = self.statement.take().unwrap_or_default();
        self.skipping = Some(RejectedStatement {
            document: self.document.to_owned(),
            index: s.index,
            reference: s.id,
            account: s.account.or(s.iban).or(s.other_id),
            line: error.line,
            field: error.field.clone(),
            reason: error.reason.clone(),
        });
        if self.first_rejection.is_none() {
            self.first_rejection = Some(error);
        }
        self.balance = None;
        self.entry = None;
        self.detail = None;
        self.amount_details = None;
        self.amount_currency = Ok(None);
        for rate in std::mem::take(&mut self.statement_rates) {
            self.seen_rates.forget(&rate);
        }
    }

    /// The statement being skipped closed (or the file ended in it): the consumer is told.
    fn end_rejection(&mut self) {
        if let Some(r) = self.skipping.take() {
            (self.emit)(Record::Rejected(r));
        }
    }

    fn format(&self) -> SourceFormat {
        self.message.map_or(self.listed, Message::format)
    }

    fn item_name(&self) -> &'static str {
        self.message.map_or("Stmt", Message::element)
    }

    /// `Stmt[2]/Ntry[5]/<rest>`-style location of a field in the current statement.
    fn field(&self, rest: &str) -> String {
        let s = self.statement.as_ref();
        let mut out = format!("{}[{}]", self.item_name(), s.map_or(0, |s| s.index));
        if self.entry.is_some() {
            out.push_str(&format!("/Ntry[{}]", s.map_or(0, |s| s.entry_index)));
        } else if self.balance.is_some() {
            out.push_str(&format!("/Bal[{}]", s.map_or(0, |s| s.balance_index)));
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(rest);
        }
        out
    }

    fn err(&self, rest: &str, reason: impl Into<String>) -> ParseError {
        ParseError::field(self.document, self.field(rest), reason)
    }

    fn warn(&mut self, line: usize, rest: &str, message: impl Into<String>) {
        let w = ParseWarning {
            document: self.document.to_owned(),
            line: Some(line),
            field: Some(self.field(rest)),
            message: message.into(),
        };
        (self.emit)(Record::Warning(w));
    }

    fn provenance(&self, position: u32) -> Provenance {
        Provenance {
            format: self.format(),
            document: self.document.to_owned(),
            position,
        }
    }

    fn text(&self, text: &RawText<'_>, rest: &str) -> Result<String, ParseError> {
        text.decode()
            .map(|c| c.into_owned())
            .map_err(|reason| self.err(rest, reason))
    }

    fn amount(&self, text: &RawText<'_>, rest: &str) -> Result<(Decimal, Currency), ParseError> {
        let s = text.decode().map_err(|r| self.err(rest, r))?;
        let amount = value::unsigned_decimal(&s).map_err(|r| self.err(rest, r))?;
        let currency = match &self.amount_currency {
            Ok(Some(c)) => *c,
            Ok(None) => return Err(self.err(rest, "the amount has no Ccy attribute")),
            Err(reason) => return Err(self.err(rest, reason.clone())),
        };
        Ok((amount, currency))
    }

    fn date(&self, text: &RawText<'_>, rest: &str) -> Result<NaiveDate, ParseError> {
        let s = text.decode().map_err(|r| self.err(rest, r))?;
        value::date(&s).map_err(|r| self.err(rest, r))
    }

    fn boolean(&self, text: &RawText<'_>, rest: &str) -> Result<bool, ParseError> {
        let s = text.decode().map_err(|r| self.err(rest, r))?;
        value::boolean(&s).map_err(|r| self.err(rest, r))
    }

    fn credit(&self, text: &RawText<'_>, rest: &str) -> Result<bool, ParseError> {
        let s = text.decode().map_err(|r| self.err(rest, r))?;
        match &*s {
            "CRDT" => Ok(true),
            "DBIT" => Ok(false),
            other => Err(self.err(rest, format!("'{other}' is neither CRDT nor DBIT"))),
        }
    }

    fn begin_statement(&mut self, item: Message, depth: usize) {
        self.statement_count += 1;
        if self.message.is_none() {
            self.message = Some(item);
        }
        self.statement = Some(StatementState {
            index: self.statement_count,
            ..StatementState::default()
        });
        self.statement_depth = depth;
        self.seen.clear();
        self.repeats.clear();
        self.statement_rates.clear();
    }

    /// Emits the account once its id and a currency are known (once per document).
    fn ensure_account(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(s) = self.statement.as_mut() else {
            return Ok(());
        };
        if s.account_emitted {
            return Ok(());
        }
        let Some(account) = s.account.clone() else {
            return Ok(());
        };
        let Some(currency) = s.currency else {
            return Ok(());
        };
        s.account_emitted = true;
        let index = s.index;
        let iban_text = s.iban.clone();
        let iban = match iban_text {
            Some(text) => match Iban::parse(&text) {
                Ok(iban) => Some(iban),
                Err(e) => {
                    self.warn(
                        line,
                        "Acct/Id/IBAN",
                        format!("{e}; the account is kept under the id as written"),
                    );
                    None
                }
            },
            None => None,
        };
        let record = Account {
            bank_account_id: account,
            iban,
            currency,
            kind: AccountKind::Cash,
            client: None,
            provenance: self.provenance(index - 1),
        };
        (self.emit)(Record::Account(record));
        Ok(())
    }

    fn statement_currency(&mut self, currency: Currency) {
        if let Some(s) = self.statement.as_mut()
            && s.currency.is_none()
        {
            s.currency = Some(currency);
        }
    }

    fn end_account(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(s) = self.statement.as_mut() else {
            return Ok(());
        };
        s.account = s.iban.clone().or_else(|| s.other_id.clone());
        if s.account.is_none() {
            return Err(self.err(
                "Acct/Id",
                "the account has neither an IBAN nor another id (Othr/Id, PrtryAcct/Id)",
            ));
        }
        if let Some(c) = s.account_currency {
            s.currency = Some(c);
        }
        self.ensure_account(line)
    }

    fn account_id(&self, rest: &str) -> Result<String, ParseError> {
        self.statement
            .as_ref()
            .and_then(|s| s.account.clone())
            .ok_or_else(|| self.err(rest, "the statement names no account (Acct) before this"))
    }

    fn end_balance(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(b) = self.balance.take() else {
            return Ok(());
        };
        // Keep the balance index in the field path of the errors below.
        self.balance = Some(BalanceState::default());
        let result = self.record_balance(b, line);
        self.balance = None;
        result
    }

    fn record_balance(&mut self, b: BalanceState, line: usize) -> Result<(), ParseError> {
        let code = b
            .code
            .ok_or_else(|| self.err("Tp/CdOrPrtry", "the balance has no type code"))?;
        let amount = b
            .amount
            .ok_or_else(|| self.err("Amt", "the balance has no amount"))?;
        let currency = b
            .currency
            .ok_or_else(|| self.err("Amt", "the balance has no currency"))?;
        let credit = b
            .credit
            .ok_or_else(|| self.err("CdtDbtInd", "the balance has no CdtDbtInd"))?;
        let date = b
            .date
            .ok_or_else(|| self.err("Dt", "the balance has no date"))?;
        let signed = if credit { amount } else { -amount };
        self.statement_currency(currency);
        let stated = Stated {
            amount: signed,
            currency,
            date,
            intermediate: b.intermediate_subtype,
        };
        let position = self.balance_position;
        self.balance_position += 1;
        let kind = {
            let Some(s) = self.statement.as_mut() else {
                return Ok(());
            };
            let first = |slot: &mut Option<Stated>, v: &Stated| {
                if slot.is_none() {
                    *slot = Some(v.clone());
                }
            };
            match code.as_str() {
                "OPBD" if b.intermediate_subtype => {
                    first(&mut s.intermediate_opening, &stated);
                    None
                }
                "CLBD" if b.intermediate_subtype => {
                    first(&mut s.intermediate_closing, &stated);
                    None
                }
                "OPBD" => {
                    first(&mut s.opening, &stated);
                    Some(BalanceKind::Opening)
                }
                "PRCD" => {
                    first(&mut s.previous_closing, &stated);
                    Some(BalanceKind::Closing)
                }
                "CLBD" => {
                    first(&mut s.closing, &stated);
                    Some(BalanceKind::Closing)
                }
                "CLAV" => {
                    first(&mut s.closing_available, &stated);
                    Some(BalanceKind::Available)
                }
                "FWAV" => Some(BalanceKind::Forward),
                "OPAV" => {
                    first(&mut s.opening_available, &stated);
                    None
                }
                "ITBD" => {
                    s.interim_count += 1;
                    first(&mut s.interim_first, &stated);
                    s.interim_last = Some(stated.clone());
                    None
                }
                "ITAV" => {
                    s.interim_available_count += 1;
                    first(&mut s.interim_available_first, &stated);
                    s.interim_available_last = Some(stated.clone());
                    None
                }
                _ => None,
            }
        };
        self.ensure_account(line)?;
        if let Some(kind) = kind {
            let account = self.account_id("")?;
            let record = CashBalance {
                account,
                currency,
                kind,
                as_of: date,
                amount: signed,
                provenance: self.provenance(position),
            };
            (self.emit)(Record::Balance(record));
        }
        Ok(())
    }

    fn end_detail(&mut self) {
        let Some(mut d) = self.detail.take() else {
            return;
        };
        let Some(e) = self.entry.as_mut() else {
            return;
        };
        e.detail_count += 1;
        // The first detail's rates wait for the entry (its amount may be theirs); once a
        // second detail shows a batch, every detail's rates are settled as it ends.
        let exchanges = std::mem::take(&mut d.exchanges);
        let settle_now = match e.detail_count {
            1 => {
                e.first_detail_exchanges = exchanges;
                Vec::new()
            }
            2 => {
                let mut first = std::mem::take(&mut e.first_detail_exchanges);
                first.extend(exchanges);
                first
            }
            _ => exchanges,
        };
        let charges = d.charges_total.or(d.charges_records);
        if let Some(c) = charges {
            e.detail_charges = Some(match e.detail_charges {
                Some(sum) => sum.checked_add(c).unwrap_or(sum),
                None => c,
            });
        }
        match &e.first_detail {
            None => e.first_detail = Some(d),
            Some(first) => {
                if first.parties != d.parties {
                    e.counterparties_differ = true;
                }
            }
        }
        if !settle_now.is_empty() {
            let date = self.entry_date_so_far();
            self.settle_exchanges(settle_now, None, date);
        }
    }

    /// The date an entry being read will be booked on, as far as it is known: what
    /// `record_entry` falls back on, short of the settlement date of an only detail.
    fn entry_date_so_far(&self) -> Option<NaiveDate> {
        let e = self.entry.as_ref()?;
        e.booking_date
            .or(e.value_date)
            .or_else(|| {
                self.statement
                    .as_ref()
                    .and_then(|s| s.to_date.or(s.created))
            })
            .or(self.group_created)
    }

    /// Turns the `CcyXchg`s of an entry (or of one of its details) into rates of the
    /// statement's account, dated `date` where they give no `QtnDt`; `entry_amount` is the
    /// entry's `Amt` when it is the same conversion's.
    fn settle_exchanges(
        &mut self,
        pending: Vec<PendingExchange>,
        entry_amount: Option<(Decimal, Currency)>,
        date: Option<NaiveDate>,
    ) {
        for p in pending {
            let line = p.exchange.line;
            let (oriented, quoted) = match p.settle(entry_amount) {
                Outcome::SameCurrency => continue,
                Outcome::Unreadable(reason) => {
                    self.warn(line, &p.field, reason);
                    continue;
                }
                Outcome::Rate {
                    oriented,
                    quoted,
                    warning,
                } => {
                    if let Some(w) = warning {
                        self.warn(line, &p.field, w);
                    }
                    (oriented, quoted)
                }
            };
            let Some(date) = quoted.or(date) else {
                self.warn(
                    line,
                    &p.field,
                    "no QtnDt, and the entry no date to fall back on: the rate is left out",
                );
                continue;
            };
            // No account: the statement is refused when its entry is recorded.
            let Some(account) = self.statement.as_ref().and_then(|s| s.account.clone()) else {
                continue;
            };
            let rate = StatedRate {
                account,
                base: oriented.base,
                quote: oriented.quote,
                rate: oriented.rate,
                date,
                provenance: self.provenance(self.rate_position),
            };
            if self.seen_rates.first(&rate) {
                self.rate_position += 1;
                self.statement_rates.push(rate.clone());
                (self.emit)(Record::Rate(rate));
            }
        }
    }

    fn end_entry(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(e) = self.entry.take() else {
            return Ok(());
        };
        // Keep the entry index in the field path of the errors below.
        self.entry = Some(EntryState::default());
        let result = self.record_entry(e, line);
        self.entry = None;
        result
    }

    fn record_entry(&mut self, e: EntryState, line: usize) -> Result<(), ParseError> {
        let amount = e
            .amount
            .ok_or_else(|| self.err("Amt", "the entry has no amount"))?;
        let currency = e
            .currency
            .ok_or_else(|| self.err("Amt", "the entry has no currency"))?;
        let credit = e
            .credit
            .ok_or_else(|| self.err("CdtDbtInd", "the entry has no CdtDbtInd"))?;
        let status = match e.status.as_deref() {
            Some("BOOK") => TransactionStatus::Booked,
            Some("PDNG" | "FUTR" | "INFO") => TransactionStatus::Pending,
            Some(other) => {
                return Err(self.err(
                    "Sts",
                    format!("unknown entry status '{other}' (expected BOOK, PDNG, INFO or FUTR)"),
                ));
            }
            None => return Err(self.err("Sts", "the entry has no status")),
        };
        let direction = if credit {
            Direction::Credit
        } else {
            Direction::Debit
        };
        let only_detail = if e.detail_count == 1 {
            e.first_detail.as_ref()
        } else {
            None
        };
        let settlement_date = only_detail.and_then(|d| d.settlement_date);
        let booking_date = match (e.booking_date, e.value_date) {
            (Some(d), _) => d,
            (None, Some(v)) => {
                if let Some(s) = self.statement.as_mut() {
                    s.without_booking_date += 1;
                }
                v
            }
            (None, None) => {
                let fallback = settlement_date
                    .or_else(|| {
                        self.statement
                            .as_ref()
                            .and_then(|s| s.to_date.or(s.created))
                    })
                    .or(self.group_created);
                match fallback {
                    Some(d) => {
                        if let Some(s) = self.statement.as_mut() {
                            s.without_booking_date += 1;
                        }
                        d
                    }
                    None => {
                        return Err(self.err(
                            "BookgDt",
                            "the entry has neither a booking nor a value date, and the \
                             statement no date to fall back on",
                        ));
                    }
                }
            }
        };
        self.statement_currency(currency);
        self.ensure_account(line)?;
        let account = self.account_id("")?;

        let bank_reference = e
            .servicer_reference
            .clone()
            .or_else(|| only_detail.and_then(|d| d.references.servicer_reference.clone()));
        let bank_code = match (&e.domain, &e.family, &e.sub_family) {
            (Some(d), Some(f), Some(s)) => Some(format!("{d}/{f}/{s}")),
            (Some(d), Some(f), None) => Some(format!("{d}/{f}")),
            (Some(d), None, _) => Some(d.clone()),
            _ => e.proprietary_code.clone(),
        };
        let kind = transaction_type(
            e.domain.as_deref(),
            e.family.as_deref(),
            e.sub_family.as_deref(),
            direction,
        );
        // The counterparty sits on the side of the original movement: the debtor of a credit,
        // the creditor of a debit, and the other way round for a reversal.
        let original_credit = credit != e.reversal;
        let (counterparty, counterparty_account) = match &e.first_detail {
            Some(d) if !e.counterparties_differ => {
                let p = &d.parties;
                let (name, ultimate, acct) = if original_credit {
                    (&p.debtor, &p.ultimate_debtor, &p.debtor_account)
                } else {
                    (&p.creditor, &p.ultimate_creditor, &p.creditor_account)
                };
                (
                    name.clone()
                        .or_else(|| ultimate.clone())
                        .or_else(|| acct.clone()),
                    acct.clone(),
                )
            }
            _ => (None, None),
        };
        let description = e
            .additional_info
            .clone()
            .or_else(|| e.remittance.clone())
            .or_else(|| e.additional_tx_info.clone())
            .or_else(|| e.creditor_reference.clone());
        let fees = e.charges_total.or(e.charges_records).or(e.detail_charges);
        if e.charges_other_currency {
            self.warn(
                line,
                "Chrgs",
                "charges in another currency than the entry are not added to its fees",
            );
        }

        let mut security = None;
        if let Some(d) = only_detail {
            let written = WrittenIsin::read(d.isin.as_deref());
            let isin = written.valid().cloned();
            // An ISIN failing its check leaves the bank's id, else its text (`crate::isin`).
            let bank_id = d
                .other_security_id
                .clone()
                .or_else(|| written.raw().map(str::to_owned));
            if let Some(key) = SecurityKey::new(self.custodian, isin.as_ref(), bank_id.as_deref()) {
                if let Some(w) = written.warning(&key) {
                    self.warn(line, "NtryDtls/TxDtls/FinInstrmId/ISIN", w);
                }
                (self.emit)(Record::Security(Security {
                    key: key.clone(),
                    isin,
                    raw_isin: written.raw().map(str::to_owned),
                    bank_security_id: bank_id,
                    valor: None,
                    wkn: None,
                    cusip: None,
                    name: key.as_str().to_owned(),
                    asset_class: AssetClass::Other,
                    currency: None,
                    detail: SecurityDetail::ReferenceOnly,
                }));
                security = Some(key);
            }
        }
        let securities_entry = security.is_some() || e.domain.as_deref() == Some("SECU");
        let (quantity, price) = match only_detail {
            Some(d) if securities_entry => (d.quantity, self.deal_price(&d.deal_price, line)),
            _ => (None, None),
        };

        let references = EntryReferences {
            entry_reference: e.entry_reference.clone(),
            counterparty_account,
            transaction_count: e.detail_count,
            ..only_detail
                .map(|d| d.references.clone())
                .unwrap_or_default()
        };

        let natural_key = match &bank_reference {
            Some(reference) => {
                let n = self.occurrence(&["ref", &account, reference]);
                if n > 1 {
                    if let Some(s) = self.statement.as_mut() {
                        s.repeated_references += 1;
                    }
                    format!("ref:{reference}#{n}")
                } else {
                    format!("ref:{reference}")
                }
            }
            None => {
                let fields = [
                    account.clone(),
                    booking_date.to_string(),
                    e.value_date.map(|d| d.to_string()).unwrap_or_default(),
                    amount.normalize().to_string(),
                    direction.as_str().to_owned(),
                    currency.as_str().to_owned(),
                    e.reversal.to_string(),
                    bank_code.clone().unwrap_or_default(),
                    e.entry_reference.clone().unwrap_or_default(),
                    references.end_to_end_id.clone().unwrap_or_default(),
                    references.instruction_id.clone().unwrap_or_default(),
                    references.transaction_id.clone().unwrap_or_default(),
                    references.uetr.clone().unwrap_or_default(),
                    description.clone().unwrap_or_default(),
                ];
                let mut key: Vec<&str> = fields.iter().map(String::as_str).collect();
                let n = self.occurrence(&key).to_string();
                key.push(&n);
                crate::natural_key::hashed(&key)
            }
        };

        if status == TransactionStatus::Booked {
            let mut overflow = false;
            if let Some(s) = self.statement.as_mut() {
                if s.currency == Some(currency) {
                    match s.entries_total.checked_add(direction.signed(amount)) {
                        Some(total) => {
                            s.entries_total = total;
                            s.entry_count += 1;
                        }
                        None => overflow = true,
                    }
                } else {
                    s.other_currency_entries += 1;
                }
            }
            if overflow {
                return Err(self.err(
                    "Amt",
                    "the sum of the statement's entries overflows a decimal",
                ));
            }
        }

        let position = self.entry_position;
        self.entry_position += 1;
        let transaction = Transaction {
            account,
            natural_key,
            bank_reference,
            booking_date,
            value_date: e.value_date,
            trade_date: only_detail.and_then(|d| d.trade_date),
            settlement_date,
            kind,
            bank_code,
            amount,
            direction,
            currency,
            security,
            quantity,
            price,
            fees,
            status,
            reversal: e.reversal,
            counterparty,
            description,
            provenance: self.provenance(position),
        };
        (self.emit)(Record::Entry(Box::new(CashEntry {
            transaction,
            references,
        })));
        // The entry's amount is the conversion's when the rate is the entry's own or that of
        // its only detail (a batch's amount is the sum of several).
        let entry_amount = Some((amount, currency));
        let only = if e.detail_count <= 1 {
            entry_amount
        } else {
            None
        };
        self.settle_exchanges(e.first_detail_exchanges, only, Some(booking_date));
        self.settle_exchanges(e.exchanges, entry_amount, Some(booking_date));
        Ok(())
    }

    /// The price of a deal price: an amount, else a percentage rate; a yield, discount or
    /// premium is no price and leaves a warning.
    fn deal_price(&mut self, p: &DealPrice, line: usize) -> Option<Decimal> {
        let rate_type = match p.value_type.as_deref() {
            _ if p.yielded => Some("a yield"),
            Some("DISC") => Some("a discount"),
            Some("PREM") => Some("a premium"),
            _ => None,
        };
        match (p.amount, p.rate, rate_type) {
            (Some(amount), ..) => Some(amount),
            (None, Some(_), Some(what)) => {
                self.warn(
                    line,
                    "NtryDtls/TxDtls/RltdPric/DealPric",
                    format!("the deal price is {what}, not a price: left out"),
                );
                None
            }
            (None, rate, _) => rate,
        }
    }

    /// How many times (1, 2, ...) these identifying fields were seen in this statement. Two
    /// different entries whose 64-bit hashes collide only get a `#2` they did not need: the
    /// key stays unique and deterministic.
    fn occurrence(&mut self, fields: &[&str]) -> u32 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in fields {
            f.len().hash(&mut h);
            f.hash(&mut h);
        }
        let h = h.finish();
        if self.seen.insert(h) {
            return 1;
        }
        let n = self.repeats.entry(h).or_insert(1);
        *n += 1;
        *n
    }

    fn end_statement(&mut self, line: usize) -> Result<(), ParseError> {
        self.ensure_account(line)?;
        let Some(s) = self.statement.take() else {
            return Ok(());
        };
        // What names the statement stays for the errors below and a rejection.
        self.statement = Some(StatementState {
            index: s.index,
            id: s.id.clone(),
            account: s.account.clone(),
            ..StatementState::default()
        });
        let result = self.record_statement(s, line);
        if result.is_ok() {
            self.statement = None;
            self.loaded += 1;
        }
        result
    }

    fn record_statement(&mut self, mut s: StatementState, line: usize) -> Result<(), ParseError> {
        let account = match s.account.clone() {
            Some(a) => a,
            None => return Err(self.err("Acct", "the statement names no account")),
        };
        let Some(currency) = s.currency else {
            self.warn(
                line,
                "",
                "the statement states no currency (no Acct/Ccy, balance or entry): no summary",
            );
            return Ok(());
        };
        if s.without_booking_date > 0 {
            let n = s.without_booking_date;
            self.warn(
                line,
                "",
                format!(
                    "{n} entries have no BookgDt: their value date (else settlement or statement \
                     date) is used as booking date"
                ),
            );
        }
        if s.repeated_references > 0 {
            let n = s.repeated_references;
            self.warn(
                line,
                "",
                format!(
                    "{n} entries repeat an AcctSvcrRef of an earlier entry: their keys carry \
                     #2, #3, ... in document order"
                ),
            );
        }
        if s.other_currency_entries > 0 {
            let n = s.other_currency_entries;
            self.warn(
                line,
                "",
                format!("{n} booked entries are not in {currency} and are not in the entry total"),
            );
        }

        let stated = |b: &Stated, intermediate: bool| StatedBalance {
            amount: b.amount,
            date: b.date,
            intermediate: intermediate || b.intermediate,
        };
        let in_currency = |b: &Option<Stated>| b.clone().filter(|b| b.currency == currency);
        let mut opening = in_currency(&s.opening)
            .or_else(|| in_currency(&s.previous_closing))
            .map(|b| stated(&b, false))
            .or_else(|| in_currency(&s.intermediate_opening).map(|b| stated(&b, true)));
        let mut closing = in_currency(&s.closing)
            .map(|b| stated(&b, false))
            .or_else(|| in_currency(&s.intermediate_closing).map(|b| stated(&b, true)));
        // Interim balances (ITBD, else ITAV) fill what the final ones leave open: the first
        // opens, the last closes; a single one is the balance at the time of the report.
        let (first, last, count) = if s.interim_count > 0 {
            (
                in_currency(&s.interim_first),
                in_currency(&s.interim_last),
                s.interim_count,
            )
        } else {
            (
                in_currency(&s.interim_available_first),
                in_currency(&s.interim_available_last),
                s.interim_available_count,
            )
        };
        match (&opening, &closing) {
            (None, Some(_)) => opening = first.map(|b| stated(&b, true)),
            (Some(_), None) => closing = last.map(|b| stated(&b, true)),
            (None, None) if count >= 2 => {
                opening = first.map(|b| stated(&b, true));
                closing = last.map(|b| stated(&b, true));
            }
            (None, None) if count == 1 => closing = last.map(|b| stated(&b, true)),
            (None, None) => {
                if let (Some(o), Some(c)) = (
                    in_currency(&s.opening_available),
                    in_currency(&s.closing_available),
                ) {
                    opening = Some(stated(&o, false));
                    closing = Some(stated(&c, false));
                    self.warn(
                        line,
                        "Bal",
                        "the statement gives no booked balances: its opening and closing \
                         available balances (OPAV, CLAV) stand in for them",
                    );
                }
            }
            (Some(_), Some(_)) => {}
        }
        s.entries_total = s.entries_total.normalize();
        let statement_number = match s.electronic_number.as_deref().or(s.legal_number.as_deref()) {
            Some(n) => match value::number(n) {
                Ok(Some(n)) => Some(n),
                Ok(None) => {
                    self.warn(
                        line,
                        "ElctrncSeqNb",
                        format!("statement number {n} is too large"),
                    );
                    None
                }
                Err(reason) => return Err(self.err("ElctrncSeqNb", reason)),
            },
            None => None,
        };
        let (page_number, last_page) = match (s.page, s.last_page) {
            (None, None) => (self.group_page, self.group_last_page.unwrap_or(true)),
            (page, last) => (page, last.unwrap_or(true)),
        };
        // A camt.053 statement that opens closes (on its last page): one with a booked
        // opening and no closing was cut short, as an MT940 without `:62F:` is, and its entries cannot
        // be checked or trusted to be all. camt.052 reports and camt.054 notifications need
        // no closing balance.
        if self.message == Some(Message::Statement)
            && last_page
            && opening.as_ref().is_some_and(|o| !o.intermediate)
            && closing.is_none()
        {
            return Err(self.err(
                "Bal",
                "the statement has an opening but no closing balance (CLBD): it is cut short",
            ));
        }
        let summary = StatementSummary {
            account,
            currency,
            reference: s.id.clone(),
            statement_number,
            page_number,
            last_page,
            opening,
            closing,
            entries_total: s.entries_total,
            entry_count: s.entry_count,
            provenance: self.provenance(s.index - 1),
        };
        (self.emit)(Record::Statement(summary));
        Ok(())
    }
}

impl<F: FnMut(Record)> Handler for CamtReader<'_, F> {
    fn removed_control_characters(&mut self, path: &[Tag], count: usize, line: usize) {
        let element = path.last().map(|t| format!("{t:?}")).unwrap_or_default();
        self.warn(
            line,
            &element,
            crate::control_characters::message(count, &[]),
        );
    }

    fn start(&mut self, path: &[Tag], element: &BytesStart<'_>, at: At) -> Result<(), ParseError> {
        if self.skipping.is_some() {
            return Ok(());
        }
        let result = self.start_element(path, element);
        self.contain(result, at)
    }

    fn end(&mut self, path: &[Tag], text: RawText<'_>, at: At) -> Result<(), ParseError> {
        let closes_statement = path.len() == self.statement_depth + 1;
        if self.skipping.is_some() {
            if closes_statement {
                self.end_rejection();
            }
            return Ok(());
        }
        let in_statement = self.statement.is_some();
        let result = self.end_element(path, text, at.line);
        self.contain(result, at)?;
        if in_statement && closes_statement {
            self.end_rejection();
        }
        Ok(())
    }

    fn cut_short(&mut self, open: &[Tag], error: ParseError) -> Result<(), ParseError> {
        // Cut inside a statement: the statements before it are whole and load.
        let inside = open.len() > self.statement_depth;
        if self.skipping.is_none() && (self.statement.is_none() || !inside) {
            return Err(error);
        }
        if self.skipping.is_none() {
            self.reject(error, None);
        }
        self.end_rejection();
        Ok(())
    }
}

impl<F: FnMut(Record)> CamtReader<'_, F> {
    /// An error inside a statement leaves that statement out (see [`CamtReader::reject`]);
    /// one outside any statement (the group header) refuses the file.
    fn contain(&mut self, result: Result<(), ParseError>, at: At) -> Result<(), ParseError> {
        match result {
            Err(e) if self.statement.is_some() => {
                self.reject(e, Some(at));
                Ok(())
            }
            other => other,
        }
    }

    fn start_element(&mut self, path: &[Tag], element: &BytesStart<'_>) -> Result<(), ParseError> {
        let depth = path.len() - 1;
        let tag = path[depth];
        match tag {
            Tag::Amt | Tag::TtlChrgsAndTaxAmt => {
                self.amount_currency = currency_attribute(element)
                    .and_then(|c| c.map(|c| value::currency(&c)).transpose());
            }
            Tag::BkToCstmrStmt
            | Tag::BkToCstmrAcctRpt
            | Tag::BkToCstmrDbtCdtNtfctn
            | Tag::BkToCstmrStmtV01
            | Tag::BkToCstmrAcctRptV01
            | Tag::BkToCstmrDbtCdtNtfctnV01 => {
                if let Some(message) = Message::of_root(tag)
                    && self.message.is_none()
                {
                    self.message = Some(message);
                    if message.format() != self.listed {
                        let w = ParseWarning {
                            document: self.document.to_owned(),
                            line: None,
                            field: Some("Document".to_owned()),
                            message: format!(
                                "the file was listed as {} but holds a {}: read as what it holds",
                                self.listed.as_str(),
                                message.format().as_str()
                            ),
                        };
                        (self.emit)(Record::Warning(w));
                    }
                }
            }
            Tag::Stmt | Tag::Rpt | Tag::Ntfctn => {
                if depth > 0
                    && let Some(root) = Message::of_root(path[depth - 1])
                    && Message::of_item(tag) == Some(root)
                {
                    self.begin_statement(root, depth);
                }
            }
            Tag::Bal if self.statement.is_some() && depth == self.statement_depth + 1 => {
                if let Some(s) = self.statement.as_mut() {
                    s.balance_index += 1;
                }
                self.balance = Some(BalanceState::default());
            }
            Tag::Ntry if self.statement.is_some() && depth == self.statement_depth + 1 => {
                if let Some(s) = self.statement.as_mut() {
                    s.entry_index += 1;
                }
                self.entry = Some(EntryState::default());
            }
            // `.001.01` has no `NtryDtls`: its `TxDtls` sit in the entry itself.
            Tag::TxDtls
                if self.entry.is_some()
                    && ((depth == self.statement_depth + 3
                        && path[depth - 1] == Tag::NtryDtls)
                        || (depth == self.statement_depth + 2 && path[depth - 1] == Tag::Ntry)) =>
            {
                self.detail = Some(DetailState::default());
            }
            Tag::AmtDtls
                if self.entry.is_some()
                    && depth > 0
                    && matches!(path[depth - 1], Tag::Ntry | Tag::TxDtls) =>
            {
                self.amount_details = Some(AmountDetails::default());
            }
            Tag::CcyXchg if depth >= 2 && path[depth - 2] == Tag::AmtDtls => {
                if let Some(d) = self.amount_details.as_mut() {
                    d.open_exchange(path[depth - 1]);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end_element(
        &mut self,
        path: &[Tag],
        text: RawText<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        use Tag::*;
        if self.statement.is_none() {
            // Group header of the message (before its statements).
            match path {
                [.., GrpHdr, CreDtTm] => {
                    self.group_created = Some(self.date(&text, "GrpHdr/CreDtTm")?);
                }
                [.., GrpHdr, MsgPgntn, PgNb] => {
                    let s = self.text(&text, "GrpHdr/MsgPgntn/PgNb")?;
                    self.group_page =
                        value::number(&s).map_err(|r| self.err("GrpHdr/MsgPgntn/PgNb", r))?;
                }
                [.., GrpHdr, MsgPgntn, LastPgInd] => {
                    self.group_last_page = Some(self.boolean(&text, "GrpHdr/MsgPgntn/LastPgInd")?);
                }
                _ => {}
            }
            return Ok(());
        }
        let rel = &path[self.statement_depth..];
        match rel {
            [_] => return self.end_statement(line),
            [_, Id] => {
                let id = self.text(&text, "Id")?;
                if let Some(s) = self.statement.as_mut() {
                    s.id = Some(id);
                }
            }
            [_, ElctrncSeqNb] => {
                let n = self.text(&text, "ElctrncSeqNb")?;
                if let Some(s) = self.statement.as_mut() {
                    s.electronic_number = Some(n);
                }
            }
            [_, LglSeqNb] => {
                let n = self.text(&text, "LglSeqNb")?;
                if let Some(s) = self.statement.as_mut() {
                    s.legal_number = Some(n);
                }
            }
            [_, StmtPgntn | RptPgntn | NtfctnPgntn, PgNb] => {
                let s = self.text(&text, "Pgntn/PgNb")?;
                let page = value::number(&s).map_err(|r| self.err("Pgntn/PgNb", r))?;
                if let Some(s) = self.statement.as_mut() {
                    s.page = page;
                }
            }
            [_, StmtPgntn | RptPgntn | NtfctnPgntn, LastPgInd] => {
                let last = self.boolean(&text, "Pgntn/LastPgInd")?;
                if let Some(s) = self.statement.as_mut() {
                    s.last_page = Some(last);
                }
            }
            [_, CreDtTm] => {
                let d = self.date(&text, "CreDtTm")?;
                if let Some(s) = self.statement.as_mut() {
                    s.created = Some(d);
                }
            }
            [_, FrToDt, ToDtTm] => {
                let d = self.date(&text, "FrToDt/ToDtTm")?;
                if let Some(s) = self.statement.as_mut() {
                    s.to_date = Some(d);
                }
            }
            [_, Acct, Id, IBAN] => {
                let v = self.text(&text, "Acct/Id/IBAN")?;
                if let Some(s) = self.statement.as_mut() {
                    s.iban = Some(v);
                }
            }
            // `.001.01` names other ids `PrtryAcct/Id`, `BBAN` or `UPIC`.
            [_, Acct, Id, Othr | PrtryAcct, Id] | [_, Acct, Id, BBAN | UPIC] => {
                let v = self.text(&text, "Acct/Id/Othr/Id")?;
                if let Some(s) = self.statement.as_mut() {
                    s.other_id = Some(v);
                }
            }
            [_, Acct, Ccy] => {
                let v = self.text(&text, "Acct/Ccy")?;
                let c = value::currency(&v).map_err(|r| self.err("Acct/Ccy", r))?;
                if let Some(s) = self.statement.as_mut() {
                    s.account_currency = Some(c);
                }
            }
            [_, Acct] => self.end_account(line)?,
            [_, Bal, rest @ ..] => self.end_in_balance(rest, &text, line)?,
            [_, Ntry, rest @ ..] => self.end_in_entry(rest, &text, line)?,
            _ => {}
        }
        Ok(())
    }
}

impl<F: FnMut(Record)> CamtReader<'_, F> {
    fn end_in_balance(
        &mut self,
        rest: &[Tag],
        text: &RawText<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        use Tag::*;
        if self.balance.is_none() {
            return Ok(());
        }
        match rest {
            [] => return self.end_balance(line),
            // `.001.01` writes the code without `CdOrPrtry`.
            [Tp, CdOrPrtry, Cd] | [Tp, Cd] => {
                let code = self.text(text, "Tp/CdOrPrtry/Cd")?;
                if let Some(b) = self.balance.as_mut() {
                    b.code = Some(code);
                }
            }
            [Tp, CdOrPrtry, Prtry] | [Tp, Prtry] => {
                let code = self.text(text, "Tp/CdOrPrtry/Prtry")?;
                if let Some(b) = self.balance.as_mut()
                    && b.code.is_none()
                {
                    b.code = Some(format!("prtry:{code}"));
                }
            }
            [Tp, SubTp, Cd] => {
                let code = self.text(text, "Tp/SubTp/Cd")?;
                if let Some(b) = self.balance.as_mut() {
                    b.intermediate_subtype = code == "INTM";
                }
            }
            [Amt] => {
                let (amount, currency) = self.amount(text, "Amt")?;
                if let Some(b) = self.balance.as_mut() {
                    b.amount = Some(amount);
                    b.currency = Some(currency);
                }
            }
            [CdtDbtInd] => {
                let credit = self.credit(text, "CdtDbtInd")?;
                if let Some(b) = self.balance.as_mut() {
                    b.credit = Some(credit);
                }
            }
            [Dt, Dt | DtTm] => {
                let d = self.date(text, "Dt")?;
                if let Some(b) = self.balance.as_mut() {
                    b.date = Some(d);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end_in_entry(
        &mut self,
        rest: &[Tag],
        text: &RawText<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        use Tag::*;
        if self.entry.is_none() {
            return Ok(());
        }
        match rest {
            [] => return self.end_entry(line),
            [NtryRef] => {
                let v = self.text(text, "NtryRef")?;
                self.with_entry(|e| e.entry_reference = Some(v));
            }
            [Amt] => {
                let (amount, currency) = self.amount(text, "Amt")?;
                self.with_entry(|e| {
                    e.amount = Some(amount);
                    e.currency = Some(currency);
                });
            }
            [CdtDbtInd] => {
                let credit = self.credit(text, "CdtDbtInd")?;
                self.with_entry(|e| e.credit = Some(credit));
            }
            [RvslInd] => {
                let reversal = self.boolean(text, "RvslInd")?;
                self.with_entry(|e| e.reversal = reversal);
            }
            // .02 to .07 write the code here; from .08 on it is wrapped (Sts/Cd).
            [Sts] if !text.is_blank() => {
                let code = self.text(text, "Sts")?;
                self.with_entry(|e| e.status = Some(code));
            }
            [Sts, Cd] => {
                let code = self.text(text, "Sts/Cd")?;
                self.with_entry(|e| e.status = Some(code));
            }
            [Sts, Prtry] => {
                let code = self.text(text, "Sts/Prtry")?;
                self.with_entry(|e| {
                    if e.status.is_none() {
                        e.status = Some(code);
                    }
                });
            }
            [BookgDt, Dt | DtTm] => {
                let d = self.date(text, "BookgDt")?;
                self.with_entry(|e| e.booking_date = Some(d));
            }
            [ValDt, Dt | DtTm] => {
                let d = self.date(text, "ValDt")?;
                self.with_entry(|e| e.value_date = Some(d));
            }
            [AcctSvcrRef] => {
                let v = self.text(text, "AcctSvcrRef")?;
                self.with_entry(|e| e.servicer_reference = Some(v).filter(|v| !v.is_empty()));
            }
            [BkTxCd, Domn, Cd] => {
                let v = self.text(text, "BkTxCd/Domn/Cd")?;
                self.with_entry(|e| e.domain = Some(v));
            }
            [BkTxCd, Domn, Fmly, Cd] => {
                let v = self.text(text, "BkTxCd/Domn/Fmly/Cd")?;
                self.with_entry(|e| e.family = Some(v));
            }
            [BkTxCd, Domn, Fmly, SubFmlyCd] => {
                let v = self.text(text, "BkTxCd/Domn/Fmly/SubFmlyCd")?;
                self.with_entry(|e| e.sub_family = Some(v));
            }
            [BkTxCd, Prtry, Cd] => {
                let v = self.text(text, "BkTxCd/Prtry/Cd")?;
                self.with_entry(|e| e.proprietary_code = Some(v));
            }
            [AddtlNtryInf] => {
                let v = self.text(text, "AddtlNtryInf")?;
                self.with_entry(|e| value::append_text(&mut e.additional_info, &v));
            }
            [Chrgs, Amt] | [Chrgs, Rcrd, Amt] => {
                let (amount, currency) = self.amount(text, "Chrgs/Amt")?;
                self.with_entry(|e| {
                    if Some(currency) == e.currency {
                        e.charges_records = Some(add(e.charges_records, amount));
                    } else {
                        e.charges_other_currency = true;
                    }
                });
            }
            [Chrgs, TtlChrgsAndTaxAmt] => {
                let (amount, currency) = self.amount(text, "Chrgs/TtlChrgsAndTaxAmt")?;
                self.with_entry(|e| {
                    if Some(currency) == e.currency {
                        e.charges_total = Some(amount);
                    } else {
                        e.charges_other_currency = true;
                    }
                });
            }
            [AmtDtls, details @ ..] => self.end_in_amount_details(details, text, line, false),
            [NtryDtls, TxDtls] | [TxDtls] => self.end_detail(),
            [NtryDtls, TxDtls, detail @ ..] | [TxDtls, detail @ ..] => {
                self.end_in_detail(detail, text, line)?
            }
            _ => {}
        }
        Ok(())
    }

    fn with_entry(&mut self, f: impl FnOnce(&mut EntryState)) {
        if let Some(e) = self.entry.as_mut() {
            f(e);
        }
    }

    /// An element of an `AmtDtls` closed (`rest` below it), of a `TxDtls` when `in_detail`.
    /// Its amounts and currency exchanges are read leniently: what does not read is a
    /// warning and no rate, never a reason to refuse the statement.
    fn end_in_amount_details(
        &mut self,
        rest: &[Tag],
        text: &RawText<'_>,
        line: usize,
        in_detail: bool,
    ) {
        let place = if in_detail {
            let index = self.entry.as_ref().map_or(0, |e| e.detail_count) + 1;
            format!("NtryDtls/TxDtls[{index}]/AmtDtls")
        } else {
            "AmtDtls".to_owned()
        };
        match rest {
            [] => {
                let Some(d) = self.amount_details.take() else {
                    return;
                };
                let pending = d.finish(&place);
                match (in_detail, self.detail.as_mut()) {
                    (true, Some(detail)) => wait(&mut detail.exchanges, pending),
                    (true, None) => {}
                    (false, _) => self.with_entry(|e| wait(&mut e.exchanges, pending)),
                }
            }
            [container, Tag::Amt] => {
                let amount = text
                    .decode()
                    .and_then(|v| value::unsigned_decimal(&v))
                    .ok()
                    .zip(self.amount_currency.clone().ok().flatten());
                if let Some(d) = self.amount_details.as_mut() {
                    d.amount(*container, amount);
                }
            }
            [_, Tag::CcyXchg] => {
                if let Some(d) = self.amount_details.as_mut() {
                    d.close_exchange(line);
                }
            }
            [container, Tag::CcyXchg, leaf] => {
                let Some(d) = self.amount_details.as_mut() else {
                    return;
                };
                if let Err(reason) = d.exchange_leaf(*leaf, text) {
                    let field = format!("{place}/{container:?}/CcyXchg/{leaf:?}");
                    self.warn(line, &field, reason);
                }
            }
            _ => {}
        }
    }

    fn end_in_detail(
        &mut self,
        rest: &[Tag],
        text: &RawText<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        use Tag::*;
        if self.detail.is_none() {
            return Ok(());
        }
        let field = |name: &str| format!("NtryDtls/TxDtls/{name}");
        let entry_currency = self.entry.as_ref().and_then(|e| e.currency);
        match rest {
            [AmtDtls, details @ ..] => self.end_in_amount_details(details, text, line, true),
            [Refs, r] => {
                let v = self.text(text, &field("Refs"))?;
                let v = Some(v).filter(|v| !v.is_empty() && v != "NOTPROVIDED");
                let refs = self.detail.as_mut().map(|d| &mut d.references);
                if let Some(refs) = refs {
                    match r {
                        EndToEndId => refs.end_to_end_id = v,
                        InstrId => refs.instruction_id = v,
                        TxId => refs.transaction_id = v,
                        UETR => refs.uetr = v,
                        AcctSvcrRef => refs.servicer_reference = v,
                        MndtId => refs.mandate_id = v,
                        ChqNb => refs.cheque_number = v,
                        PmtInfId => refs.payment_information_id = v,
                        MsgId => refs.message_id = v,
                        _ => {}
                    }
                }
            }
            [RltdPties, party, Nm] | [RltdPties, party, Pty, Nm] => {
                let v = value::free_text(&self.text(text, &field("RltdPties"))?);
                if let Some(p) = self.detail.as_mut().map(|d| &mut d.parties) {
                    let slot = match party {
                        Dbtr => &mut p.debtor,
                        Cdtr => &mut p.creditor,
                        UltmtDbtr => &mut p.ultimate_debtor,
                        UltmtCdtr => &mut p.ultimate_creditor,
                        _ => return Ok(()),
                    };
                    if slot.is_none() && !v.is_empty() {
                        *slot = Some(v);
                    }
                }
            }
            [
                RltdPties,
                acct @ (DbtrAcct | CdtrAcct),
                Id,
                IBAN | BBAN | UPIC,
            ]
            | [
                RltdPties,
                acct @ (DbtrAcct | CdtrAcct),
                Id,
                Othr | PrtryAcct,
                Id,
            ] => {
                let v = self.text(text, &field("RltdPties"))?;
                if let Some(p) = self.detail.as_mut().map(|d| &mut d.parties) {
                    let slot = if *acct == DbtrAcct {
                        &mut p.debtor_account
                    } else {
                        &mut p.creditor_account
                    };
                    if slot.is_none() && !v.is_empty() {
                        *slot = Some(v);
                    }
                }
            }
            [RmtInf, Ustrd] => {
                let v = self.text(text, &field("RmtInf/Ustrd"))?;
                self.with_entry(|e| value::append_text(&mut e.remittance, &v));
            }
            [RmtInf, Strd, CdtrRefInf, Ref] => {
                let v = self.text(text, &field("RmtInf/Strd/CdtrRefInf/Ref"))?;
                if let Some(d) = self.detail.as_mut() {
                    d.references.creditor_reference = Some(v.clone());
                }
                self.with_entry(|e| value::append_text(&mut e.creditor_reference, &v));
            }
            [AddtlTxInf] => {
                let v = self.text(text, &field("AddtlTxInf"))?;
                self.with_entry(|e| value::append_text(&mut e.additional_tx_info, &v));
            }
            [Chrgs, Amt] | [Chrgs, Rcrd, Amt] => {
                let (amount, currency) = self.amount(text, &field("Chrgs/Amt"))?;
                if Some(currency) == entry_currency {
                    if let Some(d) = self.detail.as_mut() {
                        d.charges_records = Some(add(d.charges_records, amount));
                    }
                } else {
                    self.with_entry(|e| e.charges_other_currency = true);
                }
            }
            [Chrgs, TtlChrgsAndTaxAmt] => {
                let (amount, currency) = self.amount(text, &field("Chrgs/TtlChrgsAndTaxAmt"))?;
                if Some(currency) == entry_currency {
                    if let Some(d) = self.detail.as_mut() {
                        d.charges_total = Some(amount);
                    }
                } else {
                    self.with_entry(|e| e.charges_other_currency = true);
                }
            }
            [RltdDts, IntrBkSttlmDt] => {
                let d = self.date(text, &field("RltdDts/IntrBkSttlmDt"))?;
                if let Some(detail) = self.detail.as_mut() {
                    detail.settlement_date = Some(d);
                }
            }
            [RltdDts, TradDt] | [RltdDts, TradDt, Dt | DtTm] if !text.is_blank() => {
                let d = self.date(text, &field("RltdDts/TradDt"))?;
                if let Some(detail) = self.detail.as_mut() {
                    detail.trade_date = Some(d);
                }
            }
            [FinInstrmId, ISIN] => {
                let v = self.text(text, &field("FinInstrmId/ISIN"))?;
                if let Some(d) = self.detail.as_mut() {
                    d.isin = Some(v);
                }
            }
            // Quantity and price enrich an entry that loads without them: a value that does
            // not read is left out with a warning, never a reason to refuse the statement.
            [RltdQties, Qty, q @ (Unit | FaceAmt | AmtsdVal)]
            | [RltdQties, OrgnlAndCurFace, q @ FaceAmt] => {
                let path = field("RltdQties");
                let quantity = text.decode().and_then(|v| match q {
                    Unit => value::signed_decimal(&v),
                    _ => value::unsigned_decimal(&v),
                });
                match quantity {
                    Ok(quantity) => {
                        if let Some(d) = self.detail.as_mut()
                            && d.quantity.is_none()
                        {
                            d.quantity = Some(quantity);
                        }
                    }
                    Err(r) => self.warn(line, &path, format!("{r}: the quantity is left out")),
                }
            }
            [RltdPric, DealPric, Tp, Yldd] => {
                let yielded = text.decode().and_then(|v| value::boolean(&v));
                if let Some(d) = self.detail.as_mut() {
                    d.deal_price.yielded = yielded.unwrap_or(true);
                }
            }
            [RltdPric, DealPric, Tp, ValTp] => {
                let v = self.text(text, &field("RltdPric/DealPric/Tp/ValTp"))?;
                if let Some(d) = self.detail.as_mut() {
                    d.deal_price.value_type = Some(v);
                }
            }
            [RltdPric, DealPric, Val, Rate] => {
                let path = field("RltdPric/DealPric/Val/Rate");
                match text.decode().and_then(|v| value::signed_decimal(&v)) {
                    Ok(rate) => {
                        if let Some(d) = self.detail.as_mut() {
                            d.deal_price.rate = Some(rate);
                        }
                    }
                    Err(r) => self.warn(line, &path, format!("{r}: the price is left out")),
                }
            }
            [RltdPric, DealPric, Val, Amt] => {
                let path = field("RltdPric/DealPric/Val/Amt");
                match self.amount(text, &path) {
                    Ok((amount, _)) => {
                        if let Some(d) = self.detail.as_mut() {
                            d.deal_price.amount = Some(amount);
                        }
                    }
                    Err(e) => {
                        self.warn(line, &path, format!("{}: the price is left out", e.reason))
                    }
                }
            }
            [FinInstrmId, OthrId, Id] => {
                let v = self.text(text, &field("FinInstrmId/OthrId/Id"))?;
                if let Some(d) = self.detail.as_mut()
                    && d.other_security_id.is_none()
                {
                    d.other_security_id = Some(v);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A sum that saturates at the first addend instead of panicking on overflow (charges are
/// informational; the entry amount itself is checked).
fn add(sum: Option<Decimal>, amount: Decimal) -> Decimal {
    match sum {
        Some(s) => s.checked_add(amount).unwrap_or(s),
        None => amount,
    }
}

/// The canonical type of an entry from its ISO bank transaction code (domain / family /
/// sub-family); proprietary codes stay `Other` with the raw code kept beside.
fn transaction_type(
    domain: Option<&str>,
    family: Option<&str>,
    sub_family: Option<&str>,
    direction: Direction,
) -> TransactionType {
    match sub_family {
        Some("FEES" | "CHRG" | "COMM" | "COME" | "COMI" | "COMT" | "BROK" | "CUST") => {
            return TransactionType::Fee;
        }
        Some("INTR" | "RIMB") => return TransactionType::Interest,
        Some("DVCA" | "DVOP" | "DRIP") => return TransactionType::Dividend,
        Some("CDPT" | "BCDP") => return TransactionType::Deposit,
        Some("CWDL" | "BCWD") => return TransactionType::Withdrawal,
        Some("SUBS") if domain == Some("SECU") => return TransactionType::Buy,
        Some("REDM") if domain == Some("SECU") => return TransactionType::Sell,
        _ => {}
    }
    match (domain, family) {
        (Some("SECU"), Some("SETT" | "NSET" | "BLOC" | "OTHB" | "COLL")) => match direction {
            Direction::Debit => TransactionType::Buy,
            Direction::Credit => TransactionType::Sell,
        },
        (
            Some("PMNT"),
            Some(
                "RCDT" | "ICDT" | "RDDT" | "IDDT" | "RCHQ" | "ICHQ" | "RRCT" | "IRCT" | "DRFT"
                | "CCRD" | "MCRD" | "LBOX" | "CNTR",
            ),
        ) => TransactionType::Transfer,
        _ => TransactionType::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_transaction_codes_map_to_canonical_types() {
        let t = |d, f, s, dir| transaction_type(Some(d), Some(f), Some(s), dir);
        assert_eq!(
            t("PMNT", "ICDT", "XBCT", Direction::Debit),
            TransactionType::Transfer
        );
        assert_eq!(
            t("CAMT", "MDOP", "FEES", Direction::Debit),
            TransactionType::Fee
        );
        assert_eq!(
            t("SECU", "CUST", "DVCA", Direction::Credit),
            TransactionType::Dividend
        );
        assert_eq!(
            t("SECU", "SETT", "TRAD", Direction::Debit),
            TransactionType::Buy
        );
        assert_eq!(
            t("SECU", "SETT", "TRAD", Direction::Credit),
            TransactionType::Sell
        );
        assert_eq!(
            transaction_type(None, None, None, Direction::Credit),
            TransactionType::Other
        );
    }
}
