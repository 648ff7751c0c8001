//! semt.002, the custody statement of holdings: one position per financial instrument and
//! safekeeping account on the statement date.
//!
//! Both layouts are read: `.02` (`CtdyStmtOfHldgsV02`: `AcctDtls`, `FinInstrmDtls`, `AggtQty`,
//! amounts directly under the balance) and `.03` onwards (`SctiesBalCtdyRpt`: `SfkpgAcct`,
//! `FinInstrmId`, `AggtBal/Qty/.../Qty`, amounts under `AcctBaseCcyAmts`/`InstrmCcyAmts` with a
//! sign flag).
//!
//! Mapping decisions:
//!
//! - **Complete vs delta**: `UpdTp` COMP emits one [`CompleteSnapshot`] per account (and
//!   sub-account) and statement date, on the last page only (`LastPgInd`; no pagination is one
//!   page), so a page-1 batch never closes positions that page 2 lists. DELT emits none. A
//!   statement that states no update type is treated as a delta, with a warning: wrongly
//!   closing a client's positions is worse than keeping a stale one. A complete statement
//!   with `ActvtyInd` false and no balances is an empty account: its snapshot closes all.
//! - **Quantity**: `Unit` as units, `FaceAmt` (and amortised value `AmtsdVal`) as face amount;
//!   `ShrtLngInd` SHOR makes it negative.
//! - **Price**: the market price (`Tp` MRKT) when given, else the first; `Val/Rate` is a
//!   percentage of face amount, `Val/Amt` an amount in its `Ccy`. A percent price's currency is
//!   the instrument's denomination currency (`DnmtnCcy`) or that of its instrument-currency
//!   amounts.
//! - **Values** (holding value, accrued interest, book value as cost): the canonical position
//!   states its values in one currency, its `price_currency` (as an MT535 states `:19A::HOLD`
//!   in the price's currency), and the database has one column per value. So each value is
//!   taken in the price currency, from the first block that gives it there: instrument
//!   currency (`InstrmCcyAmts`), the `.02` amounts, account base currency (`AcctBaseCcyAmts`),
//!   alternate reporting currency (`AltrnRptgCcyAmts`). A value the statement gives only in
//!   another currency cannot be stored without claiming a wrong currency: it is left out and
//!   a warning on that position names it with its amount, currency and block, so nothing the
//!   file says is dropped unseen. A base-currency value beside the instrument-currency one is
//!   the same value converted at the bank's rate: it is not kept and not warned about.
//! - **Price currency**: the price's own currency (`Val/Amt`); for a percent price the
//!   instrument's denomination (`DnmtnCcy`), else its instrument-currency amounts. A position
//!   with no price has no price to qualify: its price currency is that of its holding value
//!   (instrument currency, else base, else alternate), so an unpriced holding keeps the value
//!   the bank gives; the denomination only when no value is given at all.
//! - **Security**: ISIN validated when present; otherwise (or when it fails its check digit:
//!   kept in `raw_isin` with a warning, see `crate::isin`) the bank's own id (`OthrId` with a
//!   proprietary type first, else the failing ISIN's text) keys it as `bank:<custodian>:<id>`.
//!   Valoren, WKN and CUSIP are kept when typed so. Asset class from the CFI code (E, D, C),
//!   else bond for a face-amount holding.
//! - **Account**: the safekeeping account id as written, kind custody, currency the account's
//!   base currency (first base-currency amount or the statement total); without one the account
//!   record is left out with a warning, the positions still name it.
//! - **Exchange rates**: each `FXDtls` of a balance (and of its places of safekeeping;
//!   `FrgnXchgDtls` as other securities messages name it) is a [`StatedRate`] of the balance's
//!   account: 1 `UnitCcy` = `XchgRate` `QtdCcy`, as ISO 20022 defines the unit currency, dated
//!   `QtnDt`, else the statement date. Where the balance states one kind of value (holding
//!   value, else book value, else accrued interest) in both currencies, the values decide the
//!   direction, with a warning when they contradict `UnitCcy` (see `crate::stated_rate`). A
//!   rate that does not read is a warning; the position loads as ever.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use chrono::NaiveDate;
use quick_xml::events::BytesStart;
use rust_decimal::Decimal;

use super::Record;
use super::value;
use super::xml::{At, Handler, RawText, Tag, currency_attribute};
use crate::domain::Currency;
use crate::error::ParseError;
use crate::isin::WrittenIsin;
use crate::model::{
    Account, AccountKind, AssetClass, CompleteSnapshot, ParseWarning, Position, PriceType,
    Provenance, QuantityType, Security, SecurityDetail, SecurityKey, SourceFormat, StatedRate,
};
use crate::stated_rate::{SeenRates, Written, orient, positive};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Update {
    Complete,
    Delta,
}

/// One amount as written: value, currency, and the sign flag when the layout has one.
#[derive(Clone, Copy, Default)]
struct Amount {
    value: Option<Decimal>,
    currency: Option<Currency>,
    negative: bool,
}

impl Amount {
    fn signed(&self) -> Option<(Decimal, Currency)> {
        let v = self.value?;
        let c = self.currency?;
        Some((if self.negative { -v } else { v }, c))
    }
}

/// Holding value, accrued interest and book value in one currency block.
#[derive(Clone, Copy, Default)]
struct Amounts {
    holding: Amount,
    accrued: Amount,
    book: Amount,
}

/// One `FXDtls` of a balance as written: 1 `UnitCcy` = `XchgRate` `QtdCcy`.
struct FxDetails {
    /// `FXDtls`, or `FrgnXchgDtls` as other securities messages name it.
    element: Tag,
    unit: Option<Currency>,
    quoted: Option<Currency>,
    rate: Option<Decimal>,
    date: Option<NaiveDate>,
    line: usize,
    /// A leaf did not read (already warned): no rate from it.
    broken: bool,
}

/// More `FXDtls` than this in one balance are not read (the schema has one per balance and
/// one per place of safekeeping); a hostile file must not make a position's state grow.
const MAX_FX_DETAILS: usize = 8;

#[derive(Default)]
struct PriceState {
    market: bool,
    rate: Option<Decimal>,
    amount: Option<(Decimal, Currency)>,
}

#[derive(Default)]
struct PositionState {
    index: u32,
    isin: Option<String>,
    other_ids: Vec<(String, Option<String>)>,
    valor: Option<String>,
    wkn: Option<String>,
    cusip: Option<String>,
    name: Option<String>,
    denomination: Option<Currency>,
    cfi: Option<String>,
    quantity: Option<(Decimal, QuantityType)>,
    short: bool,
    price: Option<PriceState>,
    chosen_price: Option<PriceState>,
    base: Amounts,
    instrument: Amounts,
    legacy: Amounts,
    alternate: Amounts,
    /// Every `.02` holding value (the layout repeats `HldgVal` per currency).
    legacy_values: Vec<(Decimal, Currency)>,
    fx: Vec<FxDetails>,
    /// The open `FXDtls` is one too many: its leaves are not read.
    fx_over_limit: bool,
}

#[derive(Default)]
struct StatementState {
    as_of: Option<NaiveDate>,
    update: Option<Update>,
    activity: Option<bool>,
    last_page: Option<bool>,
    account: Option<String>,
    sub_account: Option<String>,
    sub_account_index: u32,
    base_currency: Option<Currency>,
    /// Accounts of this statement, in order: the safekeeping account and its sub-accounts.
    accounts: Vec<String>,
    positions_seen: HashSet<u64>,
    position_count: u32,
    duplicates: u32,
}

/// The semt.002 reader: a [`Handler`] that emits [`Record`]s as elements close.
pub(crate) struct SemtReader<'a, F: FnMut(Record)> {
    custodian: &'a str,
    document: &'a str,
    emit: F,
    messages: u32,
    root_depth: usize,
    statement: Option<StatementState>,
    position: Option<PositionState>,
    position_position: u32,
    amount_currency: Result<Option<Currency>, String>,
    /// The exchange rates emitted from this document, and how many.
    seen_rates: SeenRates,
    rate_position: u32,
}

impl<'a, F: FnMut(Record)> SemtReader<'a, F> {
    pub(crate) fn new(custodian: &'a str, document: &'a str, emit: F) -> Self {
        SemtReader {
            custodian,
            document,
            emit,
            messages: 0,
            root_depth: 0,
            statement: None,
            position: None,
            position_position: 0,
            amount_currency: Ok(None),
            seen_rates: SeenRates::default(),
            rate_position: 0,
        }
    }

    /// Called after the last element: a document with no semt.002 message is refused.
    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.messages == 0 {
            return Err(ParseError::field(
                self.document,
                "Document",
                "no semt.002 message found (expected a SctiesBalCtdyRpt or CtdyStmtOfHldgsV02 \
                 element)",
            ));
        }
        Ok(())
    }

    fn field(&self, rest: &str) -> String {
        let mut out = String::new();
        if let Some(s) = self.statement.as_ref()
            && s.sub_account.is_some()
        {
            out.push_str(&format!("SubAcctDtls[{}]/", s.sub_account_index));
        }
        if let Some(p) = self.position.as_ref() {
            let name = if out.is_empty() {
                "BalForAcct"
            } else {
                "BalForSubAcct"
            };
            out.push_str(&format!("{name}[{}]", p.index));
            if !rest.is_empty() {
                out.push('/');
            }
        }
        out.push_str(rest);
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
            format: SourceFormat::Semt002,
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

    fn with_statement(&mut self, f: impl FnOnce(&mut StatementState)) {
        if let Some(s) = self.statement.as_mut() {
            f(s);
        }
    }

    fn with_position(&mut self, f: impl FnOnce(&mut PositionState)) {
        if let Some(p) = self.position.as_mut() {
            f(p);
        }
    }

    fn current_account(&self) -> Option<String> {
        let s = self.statement.as_ref()?;
        s.sub_account.clone().or_else(|| s.account.clone())
    }

    fn note_account(&mut self, account: &str) {
        if let Some(s) = self.statement.as_mut()
            && !s.accounts.iter().any(|a| a == account)
        {
            s.accounts.push(account.to_owned());
        }
    }

    fn end_position(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(p) = self.position.as_ref() else {
            return Ok(());
        };
        let account = self.current_account().ok_or_else(|| {
            self.err("", "the statement names no safekeeping account before this")
        })?;
        let as_of = self
            .statement
            .as_ref()
            .and_then(|s| s.as_of)
            .ok_or_else(|| self.err("", "the statement has no statement date (StmtDtTm)"))?;
        let written = WrittenIsin::read(p.isin.as_deref());
        let isin = written.valid().cloned();
        // The bank's own id: a proprietary-typed one first, else the first other id, else an
        // ISIN that fails its check as written (see `crate::isin`).
        let bank_id = p
            .other_ids
            .iter()
            .find(|(_, tp)| tp.as_deref().is_some_and(|t| t.starts_with("prtry:")))
            .or_else(|| p.other_ids.first())
            .map(|(id, _)| id.clone())
            .or_else(|| written.raw().map(str::to_owned));
        let key = SecurityKey::new(self.custodian, isin.as_ref(), bank_id.as_deref()).ok_or_else(
            || {
                self.err(
                    "FinInstrmId",
                    "the instrument has neither an ISIN nor another identification",
                )
            },
        )?;
        let (quantity, quantity_type) = p
            .quantity
            .ok_or_else(|| self.err("AggtBal", "the holding has no quantity"))?;
        let quantity = if p.short { -quantity } else { quantity };
        let (price, price_type, price_amount_currency) = match &p.chosen_price {
            Some(PriceState {
                amount: Some((v, c)),
                ..
            }) => (Some(*v), PriceType::Amount, Some(*c)),
            Some(PriceState { rate: Some(r), .. }) => (Some(*r), PriceType::Percent, None),
            _ => (None, PriceType::Amount, None),
        };
        // Where a value is looked for, in order of preference.
        let blocks = [
            ("instrument currency", p.instrument),
            ("semt.002.001.02", p.legacy),
            ("account base currency", p.base),
            ("alternate reporting currency", p.alternate),
        ];
        let price_currency = match (price_amount_currency, &price) {
            (Some(c), _) => Some(c),
            (None, Some(_)) => p
                .denomination
                .or(p.instrument.holding.currency)
                .or(p.instrument.accrued.currency),
            (None, None) => blocks
                .iter()
                .find_map(|(_, a)| a.holding.signed().map(|(_, c)| c))
                .or(p.denomination),
        };
        let mut left_out: Vec<String> = Vec::new();
        let mut pick = |what: &str, get: fn(&Amounts) -> Amount| -> Option<Decimal> {
            let stated: Vec<(&str, Decimal, Currency)> = blocks
                .iter()
                .filter_map(|(block, a)| get(a).signed().map(|(v, c)| (*block, v, c)))
                .collect();
            if let Some((_, v, _)) = stated.iter().find(|(_, _, c)| Some(*c) == price_currency) {
                return Some(*v);
            }
            left_out.extend(
                stated
                    .iter()
                    .map(|(block, v, c)| format!("{what} {c} {v} ({block})")),
            );
            None
        };
        let market_value = pick("holding value", |a| a.holding);
        let accrued_interest = pick("accrued interest", |a| a.accrued);
        let cost = pick("book value", |a| a.book);
        let asset_class = match p.cfi.as_deref().and_then(|c| c.chars().next()) {
            Some('E') => AssetClass::Equity,
            Some('D') => AssetClass::Bond,
            Some('C') => AssetClass::Fund,
            _ if quantity_type == QuantityType::FaceAmount => AssetClass::Bond,
            _ => AssetClass::Other,
        };
        let security = Security {
            key: key.clone(),
            isin,
            raw_isin: written.raw().map(str::to_owned),
            bank_security_id: bank_id,
            valor: p.valor.clone(),
            wkn: p.wkn.clone(),
            cusip: p.cusip.clone(),
            name: p.name.clone().unwrap_or_else(|| key.as_str().to_owned()),
            asset_class,
            currency: p.denomination.or(price_currency),
            detail: SecurityDetail::Full,
        };
        let position = Position {
            account: account.clone(),
            security: key.clone(),
            as_of,
            quantity,
            quantity_type,
            price,
            price_type,
            price_currency,
            market_value,
            accrued_interest,
            cost,
            provenance: self.provenance(self.position_position),
        };
        self.position_position += 1;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        account.hash(&mut h);
        key.as_str().hash(&mut h);
        let duplicate = self
            .statement
            .as_mut()
            .is_some_and(|s| !s.positions_seen.insert(h.finish()));
        self.with_statement(|s| {
            s.position_count += 1;
            if duplicate {
                s.duplicates += 1;
            }
        });
        if let Some(w) = written.warning(&key) {
            self.warn(line, "FinInstrmId/ISIN", w);
        }
        if !left_out.is_empty() {
            let kept_in = match price_currency {
                Some(c) => format!("its price currency {c}, in which the statement gives none"),
                None => "its price currency, which the statement does not state".to_owned(),
            };
            self.warn(
                line,
                "",
                format!(
                    "{}: {} left out; a position keeps its values in {kept_in}",
                    key.as_str(),
                    left_out.join(", ")
                ),
            );
        }
        if duplicate {
            self.warn(
                line,
                "FinInstrmId",
                format!(
                    "{} is listed twice for account {account}: the positions share one natural key",
                    key.as_str()
                ),
            );
        }
        (self.emit)(Record::Security(security));
        (self.emit)(Record::Position(position));
        Ok(())
    }

    fn end_statement(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(s) = self.statement.take() else {
            return Ok(());
        };
        let Some(account) = s.account.clone() else {
            return Err(ParseError::field(
                self.document,
                "SfkpgAcct/Id",
                "the statement names no safekeeping account",
            ));
        };
        let as_of = s.as_of.ok_or_else(|| {
            ParseError::field(
                self.document,
                "StmtGnlDtls/StmtDtTm",
                "the statement has no statement date",
            )
        })?;
        let mut accounts = s.accounts.clone();
        if !accounts.contains(&account) {
            accounts.insert(0, account.clone());
        }
        for (i, a) in accounts.iter().enumerate() {
            match s.base_currency {
                Some(currency) => {
                    let record = Account {
                        bank_account_id: a.clone(),
                        iban: None,
                        currency,
                        kind: AccountKind::Custody,
                        client: None,
                        provenance: self.provenance(u32::try_from(i).unwrap_or(u32::MAX)),
                    };
                    (self.emit)(Record::Account(record));
                }
                None => self.warn(
                    line,
                    "SfkpgAcct",
                    format!(
                        "account {a}: the statement states no base currency, so no account \
                         record is emitted (its positions still name it)"
                    ),
                ),
            }
        }
        let update = match s.update {
            Some(u) => u,
            None => {
                self.warn(
                    line,
                    "StmtGnlDtls/UpdTp",
                    "the statement states no update type: read as a delta, so no position is \
                     closed",
                );
                Update::Delta
            }
        };
        let last_page = s.last_page.unwrap_or(true);
        if update == Update::Complete && last_page {
            for a in accounts {
                (self.emit)(Record::CompleteSnapshot(CompleteSnapshot {
                    account: a,
                    as_of,
                }));
            }
        }
        if s.activity == Some(false) && s.position_count > 0 {
            self.warn(
                line,
                "StmtGnlDtls/ActvtyInd",
                "the statement says it reports no activity (ActvtyInd false) yet lists balances: \
                 the balances are read",
            );
        }
        Ok(())
    }
}

impl<F: FnMut(Record)> Handler for SemtReader<'_, F> {
    fn removed_control_characters(&mut self, path: &[Tag], count: usize, line: usize) {
        let element = path.last().map(|t| format!("{t:?}")).unwrap_or_default();
        self.warn(
            line,
            &element,
            crate::control_characters::message(count, &[]),
        );
    }

    fn start(&mut self, path: &[Tag], element: &BytesStart<'_>, _: At) -> Result<(), ParseError> {
        use Tag::*;
        let depth = path.len() - 1;
        let tag = path[depth];
        match tag {
            SctiesBalCtdyRpt | CtdyStmtOfHldgsV02 | CtdyStmtOfHldgs => {
                self.messages += 1;
                self.root_depth = depth;
                self.statement = Some(StatementState::default());
            }
            Amt | HldgVal | AcrdIntrstAmt | BookVal | TtlHldgsValOfStmt => {
                self.amount_currency = currency_attribute(element)
                    .and_then(|c| c.map(|c| value::currency(&c)).transpose());
            }
            SubAcctDtls if self.statement.is_some() && depth == self.root_depth + 1 => {
                self.with_statement(|s| {
                    s.sub_account_index += 1;
                    s.sub_account = None;
                });
            }
            BalForAcct | BalForSubAcct if self.statement.is_some() => {
                let index = self.statement.as_ref().map_or(0, |s| s.position_count) + 1;
                self.position = Some(PositionState {
                    index,
                    ..PositionState::default()
                });
            }
            PricDtls if self.position.is_some() => {
                self.with_position(|p| p.price = Some(PriceState::default()));
            }
            FXDtls | FrgnXchgDtls if self.position.is_some() => self.with_position(|p| {
                p.fx_over_limit = p.fx.len() >= MAX_FX_DETAILS;
                if !p.fx_over_limit {
                    p.fx.push(FxDetails {
                        element: tag,
                        unit: None,
                        quoted: None,
                        rate: None,
                        date: None,
                        line: 0,
                        broken: false,
                    });
                }
            }),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, path: &[Tag], text: RawText<'_>, at: At) -> Result<(), ParseError> {
        let line = at.line;
        use Tag::*;
        if self.statement.is_none() || path.len() <= self.root_depth {
            return Ok(());
        }
        let rel = &path[self.root_depth..];
        match rel {
            [_] => return self.end_statement(line),
            [_, Pgntn | MsgPgntn, LastPgInd] => {
                let v = self.text(&text, "Pgntn/LastPgInd")?;
                let b = value::boolean(&v).map_err(|r| self.err("Pgntn/LastPgInd", r))?;
                self.with_statement(|s| s.last_page = Some(b));
            }
            [_, StmtGnlDtls, StmtDtTm, Dt | DtTm] => {
                let v = self.text(&text, "StmtGnlDtls/StmtDtTm")?;
                let d = value::date(&v).map_err(|r| self.err("StmtGnlDtls/StmtDtTm", r))?;
                self.with_statement(|s| s.as_of = Some(d));
            }
            [_, StmtGnlDtls, UpdTp, Cd | StmtUpdTpAsCd] => {
                let v = self.text(&text, "StmtGnlDtls/UpdTp")?;
                let update = match v.as_str() {
                    "COMP" => Update::Complete,
                    "DELT" => Update::Delta,
                    other => {
                        return Err(self.err(
                            "StmtGnlDtls/UpdTp",
                            format!("unknown update type '{other}' (expected COMP or DELT)"),
                        ));
                    }
                };
                self.with_statement(|s| s.update = Some(update));
            }
            [_, StmtGnlDtls, ActvtyInd] => {
                let v = self.text(&text, "StmtGnlDtls/ActvtyInd")?;
                let b = value::boolean(&v).map_err(|r| self.err("StmtGnlDtls/ActvtyInd", r))?;
                self.with_statement(|s| s.activity = Some(b));
            }
            [_, SfkpgAcct, Id] | [_, AcctDtls, Id, .., Prtry, Id] => {
                let v = self.text(&text, "SfkpgAcct/Id")?;
                if v.is_empty() {
                    return Err(self.err("SfkpgAcct/Id", "the safekeeping account id is empty"));
                }
                self.note_account(&v);
                self.with_statement(|s| {
                    if s.account.is_none() {
                        s.account = Some(v);
                    }
                });
            }
            [_, SubAcctDtls, SfkpgAcct, Id] | [_, SubAcctDtls, Id, .., Prtry, Id] => {
                let v = self.text(&text, "SubAcctDtls/SfkpgAcct/Id")?;
                if !v.is_empty() {
                    self.note_account(&v);
                    self.with_statement(|s| s.sub_account = Some(v));
                }
            }
            [_, SubAcctDtls] => self.with_statement(|s| s.sub_account = None),
            [_, AcctBaseCcyTtlAmts, TtlHldgsValOfStmt, Amt] | [_, TtlVals, TtlHldgsValOfStmt] => {
                let (_, c) = self.amount(&text, "TtlHldgsValOfStmt")?;
                self.with_statement(|s| {
                    if s.base_currency.is_none() {
                        s.base_currency = Some(c);
                    }
                });
            }
            [_, BalForAcct, rest @ ..] | [_, SubAcctDtls, BalForSubAcct, rest @ ..] => {
                self.end_in_position(rest, &text, line)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl<F: FnMut(Record)> SemtReader<'_, F> {
    fn end_in_position(
        &mut self,
        rest: &[Tag],
        text: &RawText<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        use Tag::*;
        if self.position.is_none() {
            return Ok(());
        }
        match rest {
            [] => {
                let r = self.end_position(line);
                if r.is_ok() {
                    self.position_rates();
                }
                self.position = None;
                return r;
            }
            [.., FXDtls | FrgnXchgDtls] => self.with_position(|p| {
                if let Some(fx) = p.fx.last_mut().filter(|_| !p.fx_over_limit) {
                    fx.line = line;
                }
            }),
            [
                ..,
                fx @ (FXDtls | FrgnXchgDtls),
                leaf @ (UnitCcy | QtdCcy | XchgRate),
            ]
            | [.., fx @ (FXDtls | FrgnXchgDtls), leaf @ QtnDt, Dt | DtTm] => {
                self.fx_leaf(*fx, *leaf, text, line);
            }
            // A date-time as written, or (blank) the wrapper of a `Dt`/`DtTm` choice.
            [.., fx @ (FXDtls | FrgnXchgDtls), leaf @ QtnDt] if !text.is_blank() => {
                self.fx_leaf(*fx, *leaf, text, line);
            }
            [FinInstrmId | FinInstrmDtls, ISIN] | [FinInstrmDtls, Id, ISIN] => {
                let v = self.text(text, "FinInstrmId/ISIN")?;
                self.with_position(|p| p.isin = Some(v));
            }
            [FinInstrmId, OthrId, Id] => {
                let v = self.text(text, "FinInstrmId/OthrId/Id")?;
                self.with_position(|p| p.other_ids.push((v, None)));
            }
            [FinInstrmId, OthrId, Tp, code @ (Cd | Prtry)] => {
                let v = self.text(text, "FinInstrmId/OthrId/Tp")?;
                self.with_position(|p| {
                    let Some((id, tp)) = p.other_ids.last_mut() else {
                        return;
                    };
                    if *code == Prtry {
                        *tp = Some(format!("prtry:{v}"));
                        return;
                    }
                    match v.as_str() {
                        "VALO" => p.valor = Some(id.clone()),
                        "WKNR" | "WKN" => p.wkn = Some(id.clone()),
                        "CUSP" | "CUSIP" => p.cusip = Some(id.clone()),
                        _ => {}
                    }
                    *tp = Some(v);
                });
            }
            [FinInstrmId, Desc] | [FinInstrmDtls, Nm] => {
                let v = value::free_text(&self.text(text, "FinInstrmId/Desc")?);
                self.with_position(|p| p.name = Some(v).filter(|v| !v.is_empty()));
            }
            [FinInstrmDtls, Id, legacy @ (Vlrn | Wrtppr | CUSIP)] => {
                let v = self.text(text, "FinInstrmDtls/Id")?;
                self.with_position(|p| match legacy {
                    Vlrn => p.valor = Some(v),
                    Wrtppr => p.wkn = Some(v),
                    _ => p.cusip = Some(v),
                });
            }
            [FinInstrmDtls, Id, OthrPrtryId, Id] => {
                let v = self.text(text, "FinInstrmDtls/Id/OthrPrtryId/Id")?;
                self.with_position(|p| p.other_ids.push((v, Some("prtry:".to_owned()))));
            }
            [FinInstrmAttrbts, DnmtnCcy] => {
                let v = self.text(text, "FinInstrmAttrbts/DnmtnCcy")?;
                let c =
                    value::currency(&v).map_err(|r| self.err("FinInstrmAttrbts/DnmtnCcy", r))?;
                self.with_position(|p| p.denomination = Some(c));
            }
            [FinInstrmAttrbts, ClssfctnTp, ClssfctnFinInstrm] => {
                let v = self.text(text, "FinInstrmAttrbts/ClssfctnTp/ClssfctnFinInstrm")?;
                self.with_position(|p| p.cfi = Some(v));
            }
            [AggtBal | AggtQty, .., q @ (Unit | FaceAmt | AmtsdVal)] => {
                let v = self.text(text, "AggtBal/Qty")?;
                let (quantity, kind) = match q {
                    Unit => (value::signed_decimal(&v), QuantityType::Units),
                    _ => (value::unsigned_decimal(&v), QuantityType::FaceAmount),
                };
                let quantity = quantity.map_err(|r| self.err("AggtBal/Qty", r))?;
                self.with_position(|p| {
                    if p.quantity.is_none() {
                        p.quantity = Some((quantity, kind));
                    }
                });
            }
            [AggtBal, ShrtLngInd] => {
                let v = self.text(text, "AggtBal/ShrtLngInd")?;
                self.with_position(|p| p.short = v == "SHOR");
            }
            [PricDtls] => self.with_position(|p| {
                if let Some(price) = p.price.take() {
                    let better = match &p.chosen_price {
                        None => true,
                        Some(chosen) => price.market && !chosen.market,
                    };
                    if better && (price.rate.is_some() || price.amount.is_some()) {
                        p.chosen_price = Some(price);
                    }
                }
            }),
            [PricDtls, Tp, Cd] | [PricDtls, Tp] if !text.is_blank() => {
                let v = self.text(text, "PricDtls/Tp")?;
                self.with_position(|p| {
                    if let Some(price) = p.price.as_mut() {
                        price.market = v == "MRKT";
                    }
                });
            }
            [PricDtls, Val, Rate] => {
                let v = self.text(text, "PricDtls/Val/Rate")?;
                let r = value::signed_decimal(&v).map_err(|r| self.err("PricDtls/Val/Rate", r))?;
                self.with_position(|p| {
                    if let Some(price) = p.price.as_mut() {
                        price.rate = Some(r);
                    }
                });
            }
            [PricDtls, Val, Amt] => {
                let a = self.amount(text, "PricDtls/Val/Amt")?;
                self.with_position(|p| {
                    if let Some(price) = p.price.as_mut() {
                        price.amount = Some(a);
                    }
                });
            }
            [
                block @ (AcctBaseCcyAmts | InstrmCcyAmts | AltrnRptgCcyAmts),
                which,
                Amt,
            ] => {
                let (v, c) = self.amount(text, "Amt")?;
                let (block, which) = (*block, *which);
                if block == AcctBaseCcyAmts {
                    self.with_statement(|s| {
                        if s.base_currency.is_none() {
                            s.base_currency = Some(c);
                        }
                    });
                }
                self.with_position(|p| {
                    let amounts = match block {
                        AcctBaseCcyAmts => &mut p.base,
                        InstrmCcyAmts => &mut p.instrument,
                        _ => &mut p.alternate,
                    };
                    if let Some(slot) = amount_slot(amounts, which) {
                        slot.value = Some(v);
                        slot.currency = Some(c);
                    }
                });
            }
            [
                block @ (AcctBaseCcyAmts | InstrmCcyAmts | AltrnRptgCcyAmts),
                which,
                Sgn,
            ] => {
                let v = self.text(text, "Sgn")?;
                let plus = value::boolean(&v).map_err(|r| self.err("Sgn", r))?;
                let (block, which) = (*block, *which);
                self.with_position(|p| {
                    let amounts = match block {
                        AcctBaseCcyAmts => &mut p.base,
                        InstrmCcyAmts => &mut p.instrument,
                        _ => &mut p.alternate,
                    };
                    if let Some(slot) = amount_slot(amounts, which) {
                        slot.negative = !plus;
                    }
                });
            }
            [which @ (HldgVal | AcrdIntrstAmt | BookVal)] => {
                // semt.002.001.02: amounts directly under the balance.
                let (v, c) = self.amount(text, "HldgVal")?;
                let which = *which;
                self.with_statement(|s| {
                    if s.base_currency.is_none() {
                        s.base_currency = Some(c);
                    }
                });
                self.with_position(|p| {
                    if which == HldgVal && p.legacy_values.len() < MAX_FX_DETAILS {
                        p.legacy_values.push((v, c));
                    }
                    if let Some(slot) = amount_slot(&mut p.legacy, which)
                        && slot.value.is_none()
                    {
                        slot.value = Some(v);
                        slot.currency = Some(c);
                    }
                });
            }
            _ => {}
        }
        Ok(())
    }
}

impl<F: FnMut(Record)> SemtReader<'_, F> {
    /// A leaf of a balance's `FXDtls` closed. What does not read is a warning and no rate (a
    /// bad `QtnDt` only loses the date), never a refused statement.
    fn fx_leaf(&mut self, element: Tag, leaf: Tag, text: &RawText<'_>, line: usize) {
        let Some(fx) = self
            .position
            .as_mut()
            .filter(|p| !p.fx_over_limit)
            .and_then(|p| p.fx.last_mut())
        else {
            return;
        };
        let decoded = text.decode();
        let problem = match leaf {
            Tag::UnitCcy | Tag::QtdCcy => match decoded.and_then(|v| value::currency(&v)) {
                Ok(c) if leaf == Tag::UnitCcy => {
                    fx.unit = Some(c);
                    None
                }
                Ok(c) => {
                    fx.quoted = Some(c);
                    None
                }
                Err(reason) => Some((reason, true)),
            },
            Tag::XchgRate => match decoded
                .and_then(|v| value::signed_decimal(&v).and_then(|r| positive(r, &v)))
            {
                Ok(r) => {
                    fx.rate = Some(r);
                    None
                }
                Err(reason) => Some((reason, true)),
            },
            _ => match decoded.and_then(|v| value::date(&v)) {
                Ok(d) => {
                    fx.date = Some(d);
                    None
                }
                Err(reason) => Some((reason, false)),
            },
        };
        if let Some((reason, lost)) = problem {
            fx.broken |= lost;
            let outcome = if lost {
                "no exchange rate is read from it"
            } else {
                "the rate is dated with the statement date"
            };
            self.warn(
                line,
                &format!("{element:?}/{leaf:?}"),
                format!("{reason}: {outcome}"),
            );
        }
    }

    /// The exchange rates of the balance just recorded (`FXDtls`): 1 `UnitCcy` = `XchgRate`
    /// `QtdCcy` by ISO 20022's definition, unless the balance's values in the two currencies
    /// say the other way round (see `crate::stated_rate`); dated `QtnDt`, else the statement
    /// date; of the account the balance is of.
    fn position_rates(&mut self) {
        // The position stays in place until its rates are read: warnings name it.
        let Some(p) = self.position.as_mut() else {
            return;
        };
        let fx = std::mem::take(&mut p.fx);
        let p = &*p;
        let evidence: Vec<Option<(Decimal, Decimal)>> = fx
            .iter()
            .map(|x| value_pair(p, x.unit?, x.quoted?))
            .collect();
        let account = self.current_account();
        let as_of = self.statement.as_ref().and_then(|s| s.as_of);
        for (x, values) in fx.into_iter().zip(evidence) {
            let field = &format!("{:?}", x.element);
            if x.broken {
                continue;
            }
            let (Some(unit), Some(quoted), Some(rate)) = (x.unit, x.quoted, x.rate) else {
                self.warn(
                    x.line,
                    field,
                    "the foreign exchange details lack UnitCcy, QtdCcy or XchgRate: no \
                     exchange rate is read from them",
                );
                continue;
            };
            if unit == quoted {
                continue;
            }
            let oriented = orient(
                Written {
                    unit,
                    other: quoted,
                    rate,
                },
                values,
            );
            if let Some((in_unit, in_quoted)) = oriented.reversed_by {
                self.warn(
                    x.line,
                    field,
                    format!(
                        "UnitCcy {unit} reads XchgRate {rate} as 1 {unit} = {rate} {quoted}, but \
                         the balance's values {in_unit} {unit} and {in_quoted} {quoted} are \
                         converted at 1 {quoted} = {rate} {unit}: read as the values say"
                    ),
                );
            }
            let (Some(account), Some(date)) = (account.clone(), x.date.or(as_of)) else {
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
                (self.emit)(Record::Rate(rate));
            }
        }
    }
}

/// The balance's value in each of two currencies, of one kind (holding value, else book
/// value, else accrued interest): the evidence for a rate's direction.
fn value_pair(p: &PositionState, a: Currency, b: Currency) -> Option<(Decimal, Decimal)> {
    let blocks = [&p.instrument, &p.legacy, &p.base, &p.alternate];
    let kinds: [Vec<(Decimal, Currency)>; 3] = [
        blocks
            .iter()
            .filter_map(|x| x.holding.signed())
            .chain(p.legacy_values.iter().copied())
            .collect(),
        blocks.iter().filter_map(|x| x.book.signed()).collect(),
        blocks.iter().filter_map(|x| x.accrued.signed()).collect(),
    ];
    kinds.iter().find_map(|values| {
        let in_currency = |c: Currency| values.iter().find(|(_, vc)| *vc == c).map(|(v, _)| *v);
        in_currency(a).zip(in_currency(b))
    })
}

fn amount_slot(amounts: &mut Amounts, which: Tag) -> Option<&mut Amount> {
    match which {
        Tag::HldgVal => Some(&mut amounts.holding),
        Tag::AcrdIntrstAmt => Some(&mut amounts.accrued),
        Tag::BookVal => Some(&mut amounts.book),
        _ => None,
    }
}
