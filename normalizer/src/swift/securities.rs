//! MT535 (statement of holdings) and MT536 (statement of transactions): fields into typed
//! statements.
//!
//! Both are ISO 15022 messages: blocks opened by `:16R:NAME` and closed by `:16S:NAME`
//! (`GENL` general information, `SUBSAFE` sub-safekeeping account, `FIN` one financial
//! instrument, `FIA` its attributes, `SUBBAL` sub-balances, `TRAN`/`LINK`/`TRANSDET` one
//! movement, `ADDINFO` totals), and "qualified" fields `:93B::AGGR//FAMT/N990692,`: a
//! four-letter qualifier, an optional data source scheme between the slashes, then the data.
//! The reader keeps a stack of open blocks and reads a field by the innermost block it is in,
//! so it also reads the German FinTS variants that leave out `GENL` or `SUBSAFE`.
//!
//! What is read:
//!
//! - `GENL`: `:28E:` page and continuation (`1/ONLY`, `5/MORE`, `6/LAST`), `:13A::STAT`
//!   statement number, `:20C::SEME` reference, `:23G:` function (`NEWM`, `CANC`),
//!   `:98A/C::STAT` statement date, `:69A::STAT` period (MT536), `:22F::CODE` complete
//!   (`COMP`) or delta (`DELT`), `:97A/B::SAFE` safekeeping account, `:17B::ACTI` activity;
//! - `SUBSAFE`: `:97A::SAFE` of a consolidated statement's sub-account;
//! - `FIN` (MT535): `:35B:` ISIN and description, `:93B::AGGR` quantity (`UNIT`, `FAMT`,
//!   `AMOR`; `N` before the number is negative), `:90A:` percentage or `:90B:` amount price,
//!   `:98A/C::PRIC` price date, `:19A::HOLD` value (each of them: a holding may be valued in
//!   two currencies), `::ACRU` accrued interest, `::BOOK` book value, `:70E::HOLD` (FinTS
//!   acquisition date and price), `:92B::EXCH` exchange rate (in the block or any of its
//!   sub-blocks), and from `FIA` `:11A::DENO` currency and `:12a::CLAS` classification.
//!   Sub-balances are not positions of their own;
//! - `TRAN` (MT536): `:20C:` references, `:36B::PSTA` quantity, `:19A::PSTA` posting amount,
//!   `:19A::SETT`, `:22H::REDE` receive or deliver, `:22H::PAYM` against payment or free,
//!   `:22F::TRAN`, `:98A/C::ESET`/`SETT`/`TRAD` dates, `:25D::MOVE//REVE` reversal,
//!   `:90a::DEAL` price, `:70E::TRDE` narrative, `:92B::EXCH` exchange rate, every other
//!   `:19A:` amount by its qualifier
//!   (the standard lists `ACRU`; custodians add the MT54x charges such as `CHAR`, `EXEC`),
//!   and from `SETPRTY` the `:95a:` settlement parties (`:95P:` BIC, `:95Q:` name and
//!   address, `:95R:` proprietary code, others as written);
//! - `ADDINFO`: `:19A::HOLS`/`HOLP` total value.
//!
//! FinTS writes `:35B:` and `:70E:` lines joined with `|` when it flattens them; `|` is not in
//! the SWIFT character set, so it is read as a line break there.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::swift::fin::{Event, Field};
use crate::swift::mt94x::{At, Note, ReadError};
use crate::swift::values::{
    FieldError, SwiftDate, is_currency_code, parse_amount, parse_yyyymmdd, split_chars,
};

/// A qualified field value: `:AGGR//FAMT/35732656,` is qualifier `AGGR`, no scheme, data
/// `FAMT/35732656,`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qualified<'a> {
    pub qualifier: &'a str,
    pub scheme: &'a str,
    pub data: &'a str,
}

impl<'a> Qualified<'a> {
    pub fn parse(value: &'a str) -> Option<Qualified<'a>> {
        let rest = value.strip_prefix(':')?;
        let (qualifier, rest) = rest.split_once('/')?;
        let (scheme, data) = rest.split_once('/')?;
        Some(Qualified {
            qualifier,
            scheme,
            data,
        })
    }
}

/// How a quantity is expressed (`:93B:`, `:36B:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantityCode {
    /// Number of units (shares, fund units).
    Unit,
    /// Face amount (bonds).
    FaceAmount,
    /// Amortised face value (pool factor applied).
    AmortisedValue,
}

/// A quantity, negative when written with `N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    pub code: QuantityCode,
    pub amount: Decimal,
}

impl Quantity {
    /// Reads `UNIT/16,8211`, `FAMT/N990692,`.
    pub fn parse(data: &str) -> Result<Quantity, FieldError> {
        let (code, number) = data
            .trim()
            .split_once('/')
            .ok_or_else(|| FieldError::new(format!("'{data}' is not a quantity (CODE/number)")))?;
        let code = match code {
            "UNIT" => QuantityCode::Unit,
            "FAMT" => QuantityCode::FaceAmount,
            "AMOR" => QuantityCode::AmortisedValue,
            other => {
                return Err(FieldError::new(format!(
                    "unknown quantity type '{other}' (UNIT, FAMT or AMOR)"
                )));
            }
        };
        let (negative, number) = match number.strip_prefix('N') {
            Some(n) => (true, n),
            None => (false, number),
        };
        let (amount, _) = parse_amount(number)?;
        Ok(Quantity {
            code,
            amount: if negative { -amount } else { amount },
        })
    }
}

/// An amount with its currency, negative when written with `N` (`:19A:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub currency: String,
    pub amount: Decimal,
}

impl Money {
    /// Reads `EUR512,43`, `NEUR12,3`. An amount without currency is an error.
    pub fn parse(data: &str) -> Result<Money, FieldError> {
        let data = data.trim();
        // `N` marks a negative amount when a currency code and a digit follow it (`NOK12,3`
        // is twelve crowns, `NNOK12,3` minus twelve).
        let b = data.as_bytes();
        let negative = b.len() > 4
            && b[0] == b'N'
            && b[1..4].iter().all(u8::is_ascii_uppercase)
            && (b[4].is_ascii_digit() || b[4] == b',');
        let rest = if negative { &data[1..] } else { data };
        let (currency, number) = split_chars(rest, 3);
        if !is_currency_code(currency) {
            return Err(FieldError::new(format!(
                "no currency before the amount in '{data}'"
            )));
        }
        let (amount, _) = parse_amount(number)?;
        Ok(Money {
            currency: currency.to_owned(),
            amount: if negative { -amount } else { amount },
        })
    }
}

/// A price (`:90A:` percentage type, `:90B:` amount type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    /// `PRCT`: percent of face amount.
    Percent(Decimal),
    /// `ACTU` (and `DISC`/`PREM` of `:90B:`): an amount per unit.
    Amount { currency: String, amount: Decimal },
    /// `YIEL`, `DISC`, `PREM` of `:90A:`: a rate, not a price.
    Rate { code: String, rate: Decimal },
}

impl Price {
    /// Reads the data of `:90A:` (`PRCT/97,42`) or `:90B:` (`ACTU/EUR30,463`).
    pub fn parse(tag: &str, data: &str) -> Result<Price, FieldError> {
        let (code, rest) = data
            .trim()
            .split_once('/')
            .ok_or_else(|| FieldError::new(format!("'{data}' is not a price (CODE/value)")))?;
        if tag == "90B" {
            let m = Money::parse(rest)?;
            return Ok(Price::Amount {
                currency: m.currency,
                amount: m.amount,
            });
        }
        let (negative, number) = match rest.strip_prefix('N') {
            Some(n) => (true, n),
            None => (false, rest),
        };
        let (v, _) = parse_amount(number)?;
        let v = if negative { -v } else { v };
        Ok(match code {
            "PRCT" => Price::Percent(v),
            other => Price::Rate {
                code: other.to_owned(),
                rate: v,
            },
        })
    }
}

/// An exchange rate as `:92B::EXCH//USD/EUR/0,9234` writes it: by the ISO 15022 usage rule
/// of field 92B, "the First Currency Code will be the base currency and the Second Currency
/// Code will be the quoted currency (1,00 of First Currency Code = [Rate] of Second Currency
/// Code)". Codes and rate as written; the mapping checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRate {
    pub at: At,
    pub first: String,
    pub second: String,
    pub rate: Decimal,
    /// The rate as written, for messages.
    pub written: String,
}

impl ExchangeRate {
    /// Reads the data of `:92B::EXCH//` (`USD/EUR/0,9234`).
    pub fn parse(data: &str, at: At) -> Result<ExchangeRate, FieldError> {
        let bad = || {
            FieldError::new(format!(
                "'{data}' is not an exchange rate (first currency/second currency/rate)"
            ))
        };
        let mut parts = data.trim().splitn(3, '/');
        let (Some(first), Some(second), Some(written)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !is_currency_code(first) || !is_currency_code(second) {
            return Err(bad());
        }
        let (rate, _) = parse_amount(written.trim())?;
        Ok(ExchangeRate {
            at,
            first: first.to_owned(),
            second: second.to_owned(),
            rate,
            written: written.trim().to_owned(),
        })
    }
}

/// Reads the data of `:98A:` (`20070327`) or `:98C:` (`20070328043657`, date part).
pub fn parse_date(tag: &str, data: &str) -> Result<SwiftDate, FieldError> {
    let d = data.trim();
    match tag {
        "98C" | "98E" if d.len() >= 8 => parse_yyyymmdd(d.get(..8).unwrap_or(d)),
        _ => parse_yyyymmdd(d),
    }
}

/// What `:35B:` identifies: an ISIN (as written, validated when mapped), national ids such as
/// `/DE/ETF127` (WKN) or `/CH/...` (valor), and description lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityId {
    pub isin: Option<String>,
    /// `(country, id)` pairs from `/XX/id`.
    pub national: Vec<(String, String)>,
    pub description: Vec<String>,
}

impl SecurityId {
    pub fn parse(value: &str) -> SecurityId {
        let mut id = SecurityId::default();
        for (i, line) in value.split(['\r', '\n', '|']).enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut rest = line;
            if i == 0
                && let Some(after) = line.strip_prefix("ISIN ")
            {
                let after = after.trim_start();
                let (isin, tail) = after.split_once(' ').unwrap_or((after, ""));
                id.isin = Some(isin.to_owned());
                rest = tail.trim();
            }
            if let Some(national) = rest.strip_prefix('/')
                && let Some((country, code)) = national.split_once('/')
                && country.len() == 2
                && country.bytes().all(|b| b.is_ascii_uppercase())
                && !code.trim().is_empty()
            {
                let (code, tail) = code.trim().split_once(' ').unwrap_or((code.trim(), ""));
                id.national.push((country.to_owned(), code.to_owned()));
                rest = tail.trim();
            }
            if !rest.is_empty() {
                id.description.push(rest.to_owned());
            }
        }
        id
    }

    /// The national id of a country (`DE` WKN, `CH` valor, `US` CUSIP).
    pub fn national(&self, country: &str) -> Option<&str> {
        self.national
            .iter()
            .find(|(c, _)| c == country)
            .map(|(_, id)| id.as_str())
    }

    /// The description lines joined by spaces.
    pub fn name(&self) -> Option<String> {
        Some(self.description.join(" ")).filter(|n| !n.is_empty())
    }
}

/// Acquisition details of a FinTS `:70E::HOLD` narrative: each line starts with its number,
/// line 1 has the acquisition date as its fifth `+` part, line 2 the price and currency.
///
/// Only text of that shape gives a figure: a line 1 with its `+` parts and an eight-digit
/// date in the fifth, a line 2 with a price written with its decimal comma followed by `+`
/// and a currency code. Other banks write free text in `:70E::HOLD//` (`20190221`, a date
/// that starts with the digit of line 2); reading its digits as a price invented costs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acquisition {
    pub date: Option<NaiveDate>,
    pub price: Option<Decimal>,
    pub currency: Option<String>,
}

impl Acquisition {
    pub fn parse(narrative: &str) -> Option<Acquisition> {
        let mut a = Acquisition::default();
        for line in narrative.split(['\r', '\n', '|']) {
            if let Some(one) = line.strip_prefix('1') {
                a.date = one
                    .split('+')
                    .nth(4)
                    .map(str::trim)
                    .filter(|d| d.len() == 8)
                    .and_then(|d| parse_yyyymmdd(d).ok())
                    .map(|d| d.date);
            } else if let Some(two) = line.strip_prefix('2') {
                let mut parts = two.split('+');
                let price = parts.next().map(str::trim).unwrap_or_default();
                let currency = parts.next().map(str::trim).filter(|c| is_currency_code(c));
                // The shape of line 2, or no figure at all.
                if let (Some(currency), Ok((price, true))) = (currency, parse_amount(price)) {
                    a.price = Some(price);
                    a.currency = Some(currency.to_owned());
                }
            }
        }
        (a != Acquisition::default()).then_some(a)
    }
}

/// One holding (`FIN` block of an MT535).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    pub at: At,
    /// The sub-safekeeping account of a consolidated statement.
    pub account: Option<(String, At)>,
    pub security: SecurityId,
    pub security_at: At,
    pub quantity: Option<(Quantity, At)>,
    pub price: Option<(Price, At)>,
    pub price_date: Option<SwiftDate>,
    /// The last `:19A::HOLD` (the holding value as one figure).
    pub market_value: Option<Money>,
    /// Every `:19A::HOLD`, in order: a holding valued in its own and the account's currency
    /// states two.
    pub values: Vec<Money>,
    /// `:92B::EXCH` of the instrument's block (its sub-blocks included).
    pub exchange_rates: Vec<ExchangeRate>,
    pub accrued_interest: Option<Money>,
    pub book_value: Option<Money>,
    pub acquisition: Option<Acquisition>,
    pub denomination: Option<String>,
    /// `:12a::CLAS` as written (a CFI code for `:12C:`).
    pub classification: Option<String>,
}

/// How a settlement party is identified (`:95a:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyId {
    /// `:95P:` an identifier code (BIC).
    Bic(String),
    /// `:95Q:` up to four lines of name and address.
    NameAndAddress(Vec<String>),
    /// `:95R:` a proprietary code in a data source scheme.
    Proprietary { scheme: String, code: String },
    /// Any other option (`:95C:` country, `:95L:` LEI, ...), the data as written.
    Other(String),
}

/// One party of a settlement chain (`:95a:` in a `SETPRTY` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// `BUYR`, `SELL`, `DEAG`, `REAG`, `DECU`, `RECU`, `DEI1`, `REI1`, `PSET` ...
    pub qualifier: String,
    pub id: PartyId,
}

impl Party {
    /// Reads the option letter of the tag (`P` of `95P`) and its qualified value.
    pub fn parse(option: &str, q: Qualified<'_>) -> Party {
        let data = q.data.trim();
        let id = match option {
            "P" => PartyId::Bic(data.to_owned()),
            "Q" => PartyId::NameAndAddress(
                crate::swift::text::value_lines(data)
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            "R" => PartyId::Proprietary {
                scheme: q.scheme.trim().to_owned(),
                code: data.to_owned(),
            },
            _ => PartyId::Other(data.to_owned()),
        };
        Party {
            qualifier: q.qualifier.to_owned(),
            id,
        }
    }
}

/// One movement (`TRAN` block of an MT536).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movement {
    pub at: At,
    pub account: Option<(String, At)>,
    pub security: SecurityId,
    pub security_at: At,
    /// `:20C:` references by qualifier (`RELA`, `ASRF`, ...).
    pub references: Vec<(String, String)>,
    pub quantity: Option<Quantity>,
    /// `:19A::PSTA` posting amount.
    pub posting_amount: Option<(Money, At)>,
    /// `:19A::SETT` settlement amount.
    pub settlement_amount: Option<(Money, At)>,
    /// Every other `:19A:` amount of the transaction details, by qualifier, in order.
    pub amounts: Vec<(String, Money, At)>,
    /// The `:95a:` parties of the `SETPRTY` blocks, in order.
    pub parties: Vec<Party>,
    /// `:22H::REDE`: `RECE` or `DELI`.
    pub receive_deliver: Option<String>,
    /// `:22H::PAYM`: `APMT` (against payment) or `FREE`.
    pub payment: Option<String>,
    /// `:22F::TRAN`: `SETT`, `CORP`, `BOLE` ...
    pub transaction_indicator: Option<String>,
    pub effective_settlement_date: Option<SwiftDate>,
    pub settlement_date: Option<SwiftDate>,
    pub trade_date: Option<SwiftDate>,
    /// `:25D::MOVE//REVE`.
    pub reversal: bool,
    pub price: Option<Price>,
    pub narrative: Option<String>,
    /// `:92B::EXCH` of the transaction's block (its sub-blocks included).
    pub exchange_rates: Vec<ExchangeRate>,
}

/// One MT535 or MT536 statement page, values as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecuritiesStatement {
    pub mt: Option<u16>,
    pub at: At,
    pub page_number: Option<u32>,
    /// `ONLY`, `MORE` or `LAST` from `:28E:`.
    pub continuation: Option<String>,
    pub statement_number: Option<String>,
    pub reference: Option<String>,
    /// `:23G:` function: `NEWM`, `CANC`.
    pub function: Option<String>,
    pub statement_date: Option<(SwiftDate, At)>,
    /// MT536 `:69A::STAT` period.
    pub period: Option<(SwiftDate, SwiftDate)>,
    pub preparation_date: Option<SwiftDate>,
    /// `:22F::CODE`: `Some(true)` for `COMP`, `Some(false)` for `DELT`.
    pub complete: Option<bool>,
    pub account: Option<(String, At)>,
    /// `:17B::ACTI`: `Some(false)` when the statement reports no holdings or movements.
    pub activity: Option<bool>,
    pub holdings: Vec<Holding>,
    pub movements: Vec<Movement>,
    /// `:19A::HOLS` (statement) or `HOLP` (page) total value.
    pub total_value: Option<Money>,
    pub notes: Vec<Note>,
}

/// Builds [`SecuritiesStatement`]s from FIN events, handing each to a callback.
pub struct SecuritiesReader<F> {
    current: Option<SecuritiesStatement>,
    next_mt: Option<u16>,
    /// The statements are MT536 (movements) rather than MT535 (holdings) unless block 2 says.
    movements: bool,
    blocks: Vec<(String, At)>,
    sub_account: Option<(String, At)>,
    holding: Option<Holding>,
    fin_security: (SecurityId, At),
    fin_has_tran: bool,
    movement: Option<Movement>,
    done: F,
}

impl<F: FnMut(SecuritiesStatement) -> Result<(), ReadError>> SecuritiesReader<F> {
    /// `movements`: read MT536 transactions (else MT535 holdings) when no envelope says.
    pub fn new(movements: bool, done: F) -> Self {
        SecuritiesReader {
            current: None,
            next_mt: None,
            movements,
            blocks: Vec::new(),
            sub_account: None,
            holding: None,
            fin_security: (SecurityId::default(), At::default()),
            fin_has_tran: false,
            movement: None,
            done,
        }
    }

    pub fn event(&mut self, event: Event<'_>) -> Result<(), ReadError> {
        match event {
            Event::Header { mt, .. } => {
                self.finish()?;
                self.next_mt = mt;
                Ok(())
            }
            Event::End { .. } => {
                self.finish()?;
                self.next_mt = None;
                Ok(())
            }
            Event::Field(f) => self.field(f),
            // Dialect notes are collected by the caller of the tokenizer.
            Event::Note(_) => Ok(()),
        }
    }

    /// Ends the input: hands over the statement still open.
    pub fn close(mut self) -> Result<F, ReadError> {
        self.finish()?;
        Ok(self.done)
    }

    fn is_movements(&self) -> bool {
        match self.current.as_ref().and_then(|s| s.mt).or(self.next_mt) {
            Some(536) => true,
            Some(535) => false,
            _ => self.movements,
        }
    }

    fn finish(&mut self) -> Result<(), ReadError> {
        // Blocks left open at the end of a message: close what holds data, drop the rest.
        while let Some((name, _)) = self.blocks.pop() {
            self.close_block(&name);
        }
        self.sub_account = None;
        match self.current.take() {
            Some(s) => (self.done)(s),
            None => Ok(()),
        }
    }

    fn statement(&mut self, at: At) -> &mut SecuritiesStatement {
        let mt = self.next_mt;
        self.current.get_or_insert_with(|| SecuritiesStatement {
            mt,
            at,
            ..SecuritiesStatement::default()
        })
    }

    fn in_block(&self, name: &str) -> bool {
        self.blocks.iter().any(|(b, _)| b == name)
    }

    fn innermost(&self) -> Option<&str> {
        self.blocks.last().map(|(b, _)| b.as_str())
    }

    fn open_block(&mut self, name: &str, at: At) -> Result<(), ReadError> {
        if name == "GENL"
            && let Some(s) = &self.current
            && (s.account.is_some()
                || s.statement_date.is_some()
                || !s.holdings.is_empty()
                || !s.movements.is_empty())
        {
            // A second general block: the next statement (files without `-` between them).
            self.finish()?;
        }
        self.statement(at);
        match name {
            "FIN" => {
                self.fin_security = (SecurityId::default(), at);
                self.fin_has_tran = false;
                self.holding = Some(Holding {
                    at,
                    account: self.sub_account.clone(),
                    ..Holding::default()
                });
            }
            "TRAN" => {
                self.fin_has_tran = true;
                self.movement = Some(Movement {
                    at,
                    account: self.sub_account.clone(),
                    security: self.fin_security.0.clone(),
                    security_at: self.fin_security.1,
                    ..Movement::default()
                });
            }
            "SUBSAFE" => self.sub_account = None,
            _ => {}
        }
        self.blocks.push((name.to_owned(), at));
        Ok(())
    }

    fn close_block(&mut self, name: &str) {
        match name {
            "FIN" => {
                let holding = self.holding.take();
                if !self.is_movements()
                    && !self.fin_has_tran
                    && let Some(h) = holding
                    && (h.quantity.is_some() || h.security != SecurityId::default())
                    && let Some(s) = self.current.as_mut()
                {
                    s.holdings.push(h);
                }
            }
            "TRAN" => {
                if let Some(m) = self.movement.take()
                    && let Some(s) = self.current.as_mut()
                {
                    s.movements.push(m);
                }
            }
            "SUBSAFE" => self.sub_account = None,
            _ => {}
        }
    }

    fn field(&mut self, f: Field<'_>) -> Result<(), ReadError> {
        let at = At {
            part: f.part,
            line: f.line,
        };
        let fe = |e: FieldError| ReadError {
            at,
            tag: f.tag.to_owned(),
            reason: e.0,
        };
        match f.tag {
            "16R" => return self.open_block(f.value.trim(), at),
            "16S" => {
                let name = f.value.trim();
                let Some(i) = self.blocks.iter().rposition(|(b, _)| b == name) else {
                    return Err(fe(FieldError::new(format!(
                        "block {name} is closed (:16S:) but was never opened (:16R:)"
                    ))));
                };
                while self.blocks.len() > i {
                    if let Some((b, _)) = self.blocks.pop() {
                        self.close_block(&b);
                    }
                }
                return Ok(());
            }
            _ => {}
        }
        self.statement(at);
        let q = Qualified::parse(f.value);
        let qualifier = q.map(|q| q.qualifier).unwrap_or_default();
        let data = q.map(|q| q.data.trim()).unwrap_or_default();
        let text = || Some(data.to_owned()).filter(|d| !d.is_empty());
        let in_tran = self.in_block("TRAN");
        let in_fin = self.in_block("FIN");
        let innermost = self.innermost().unwrap_or_default().to_owned();

        // Fields of a movement.
        if in_tran {
            let Some(m) = self.movement.as_mut() else {
                return Ok(());
            };
            let mut note = None;
            match (f.tag, qualifier) {
                ("20C", q) => m.references.push((q.to_owned(), data.to_owned())),
                ("36B", "PSTA") => m.quantity = Some(Quantity::parse(data).map_err(fe)?),
                ("19A", "PSTA") => m.posting_amount = Some((Money::parse(data).map_err(fe)?, at)),
                ("19A", "SETT") => {
                    m.settlement_amount = Some((Money::parse(data).map_err(fe)?, at))
                }
                // Amounts beyond the standard's: an unreadable one is noted, not fatal.
                ("19A", name) if !name.is_empty() => match Money::parse(data) {
                    Ok(money) => m.amounts.push((name.to_owned(), money, at)),
                    Err(e) => {
                        note = Some(Note {
                            at,
                            tag: ":19A:",
                            message: format!("{e}: the :19A::{name}// amount is left out"),
                        })
                    }
                },
                (tag, _) if innermost == "SETPRTY" => {
                    if let (Some(option), Some(q)) = (tag.strip_prefix("95"), q)
                        && option.len() == 1
                    {
                        m.parties.push(Party::parse(option, q));
                    }
                }
                ("22H", "REDE") => m.receive_deliver = text(),
                ("22H", "PAYM") => m.payment = text(),
                ("22F", "TRAN") => m.transaction_indicator = text(),
                ("98A" | "98C", "ESET") => {
                    m.effective_settlement_date = Some(parse_date(f.tag, data).map_err(fe)?)
                }
                ("98A" | "98C", "SETT") => {
                    m.settlement_date = Some(parse_date(f.tag, data).map_err(fe)?)
                }
                ("98A" | "98C", "TRAD") => {
                    m.trade_date = Some(parse_date(f.tag, data).map_err(fe)?)
                }
                ("25D", "MOVE") => m.reversal = data == "REVE",
                // A rate that does not read is noted and left out: it states, it moves nothing.
                ("92B", "EXCH") => match ExchangeRate::parse(data, at) {
                    Ok(x) => m.exchange_rates.push(x),
                    Err(e) => {
                        note = Some(Note {
                            at,
                            tag: ":92B:",
                            message: format!("{e}: no exchange rate is read from it"),
                        })
                    }
                },
                ("90A" | "90B", "DEAL") => m.price = Some(Price::parse(f.tag, data).map_err(fe)?),
                ("70E", "TRDE") => {
                    m.narrative = Some(
                        crate::swift::text::value_lines(data)
                            .map(str::trim)
                            .collect::<Vec<_>>()
                            .join(" "),
                    )
                    .filter(|n| !n.is_empty())
                }
                _ => {}
            }
            if let (Some(note), Some(s)) = (note, self.current.as_mut()) {
                s.notes.push(note);
            }
            return Ok(());
        }

        // Fields of an instrument.
        if in_fin {
            if f.tag == "35B" {
                self.fin_security = (SecurityId::parse(f.value), at);
                if let Some(h) = self.holding.as_mut() {
                    h.security = self.fin_security.0.clone();
                    h.security_at = at;
                }
                return Ok(());
            }
            let Some(h) = self.holding.as_mut() else {
                return Ok(());
            };
            match (innermost.as_str(), f.tag, qualifier) {
                ("FIA", "11A", "DENO") => h.denomination = text(),
                ("FIA", "12A" | "12B" | "12C", "CLAS") => h.classification = text(),
                ("FIN", "93B", "AGGR") => {
                    h.quantity = Some((Quantity::parse(data).map_err(fe)?, at))
                }
                ("FIN", "90A" | "90B", _) if h.price.is_none() => {
                    h.price = Some((Price::parse(f.tag, data).map_err(fe)?, at))
                }
                ("FIN", "98A" | "98C", "PRIC") => {
                    h.price_date = Some(parse_date(f.tag, data).map_err(fe)?)
                }
                ("FIN", "19A", "HOLD") => {
                    let value = Money::parse(data).map_err(fe)?;
                    h.values.push(value.clone());
                    h.market_value = Some(value);
                }
                (_, "92B", "EXCH") => match ExchangeRate::parse(data, at) {
                    Ok(x) => h.exchange_rates.push(x),
                    Err(e) => {
                        if let Some(s) = self.current.as_mut() {
                            s.notes.push(Note {
                                at,
                                tag: ":92B:",
                                message: format!("{e}: no exchange rate is read from it"),
                            });
                        }
                    }
                },
                ("FIN", "19A", "ACRU") => {
                    h.accrued_interest = Some(Money::parse(data).map_err(fe)?)
                }
                ("FIN", "19A", "BOOK") => h.book_value = Some(Money::parse(data).map_err(fe)?),
                ("FIN", "70E", "HOLD") => h.acquisition = Acquisition::parse(data),
                _ => {}
            }
            return Ok(());
        }

        // Sub-safekeeping account of a consolidated statement.
        if innermost == "SUBSAFE" {
            if let ("97A" | "97B", "SAFE") = (f.tag, qualifier) {
                self.sub_account = Some((account_id(f.tag, data), at));
            }
            return Ok(());
        }

        let s = self.statement(at);
        match (f.tag, qualifier) {
            ("28E", _) => {
                let (n, c) = f
                    .value
                    .trim()
                    .split_once('/')
                    .unwrap_or((f.value.trim(), ""));
                s.page_number = n.trim().parse().ok();
                s.continuation = Some(c.trim().to_owned()).filter(|c| !c.is_empty());
            }
            ("13A", "STAT") => s.statement_number = text(),
            ("20C", "SEME") => s.reference = text(),
            ("23G", _) => s.function = Some(f.value.trim().to_owned()),
            ("98A" | "98C", "STAT") => {
                s.statement_date = Some((parse_date(f.tag, data).map_err(fe)?, at))
            }
            ("98A" | "98C", "PREP") => {
                s.preparation_date = Some(parse_date(f.tag, data).map_err(fe)?)
            }
            ("69A", "STAT") => {
                let (from, to) = data.split_once('/').unwrap_or((data, ""));
                s.period = Some((
                    parse_yyyymmdd(from).map_err(fe)?,
                    parse_yyyymmdd(to).map_err(fe)?,
                ));
            }
            ("22F", "CODE") => {
                s.complete = match data {
                    "COMP" => Some(true),
                    "DELT" => Some(false),
                    _ => None,
                }
            }
            ("97A" | "97B", "SAFE") => s.account = Some((account_id(f.tag, data), at)),
            ("17B", "ACTI") => s.activity = Some(data == "Y"),
            ("19A", "HOLS") => s.total_value = Some(Money::parse(data).map_err(fe)?),
            ("19A", "HOLP") if s.total_value.is_none() => {
                s.total_value = Some(Money::parse(data).map_err(fe)?)
            }
            _ => {}
        }
        Ok(())
    }
}

/// The account id of `:97A::SAFE//id` (which may hold slashes: `20050550/8030189693`) or
/// `:97B::SAFE/scheme/type/id`.
fn account_id(tag: &str, data: &str) -> String {
    let id = match tag {
        "97B" => data.split_once('/').map_or(data, |(_, id)| id),
        _ => data,
    };
    id.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("test literal is a decimal")
    }

    #[test]
    fn qualified_fields_split_into_qualifier_scheme_and_data() {
        let q = Qualified::parse(":AGGR//FAMT/N990692,").unwrap();
        assert_eq!(
            (q.qualifier, q.scheme, q.data),
            ("AGGR", "", "FAMT/N990692,")
        );
        let q = Qualified::parse(":CLAS/ISIT/STF").unwrap();
        assert_eq!((q.qualifier, q.scheme, q.data), ("CLAS", "ISIT", "STF"));
    }

    #[test]
    fn negative_quantities_and_amounts_carry_n() {
        let q = Quantity::parse("FAMT/N990692,").unwrap();
        assert_eq!(
            (q.code, q.amount),
            (QuantityCode::FaceAmount, dec("-990692"))
        );
        assert_eq!(Money::parse("NEUR12,3").unwrap().amount, dec("-12.3"));
        assert_eq!(Money::parse("NOK12,3").unwrap().currency, "NOK");
        assert!(Money::parse("12,3").is_err());
    }

    #[test]
    fn settlement_parties_are_read_by_their_option() {
        let party = |option, value| Party::parse(option, Qualified::parse(value).unwrap());
        assert_eq!(
            party("P", ":BUYR//BROKCHZZXXX").id,
            PartyId::Bic("BROKCHZZXXX".into())
        );
        assert_eq!(
            party("Q", ":SELL//UBS SWITZERLAND AG\r\nBAHNHOFSTRASSE 45").id,
            PartyId::NameAndAddress(vec![
                "UBS SWITZERLAND AG".into(),
                "BAHNHOFSTRASSE 45".into()
            ])
        );
        let p = party("R", ":DEAG/SIXSIS/4711");
        assert_eq!(
            (p.qualifier.as_str(), p.id),
            (
                "DEAG",
                PartyId::Proprietary {
                    scheme: "SIXSIS".into(),
                    code: "4711".into()
                }
            )
        );
    }

    #[test]
    fn prices_are_percent_or_amount() {
        assert_eq!(
            Price::parse("90A", "PRCT/97,42").unwrap(),
            Price::Percent(dec("97.42"))
        );
        assert_eq!(
            Price::parse("90B", "ACTU/EUR30,463").unwrap(),
            Price::Amount {
                currency: "EUR".into(),
                amount: dec("30.463")
            }
        );
    }

    #[test]
    fn security_identification_reads_isin_national_id_and_name() {
        let id = SecurityId::parse("ISIN LU0635178014 /DE/ETF127\r\nCOMST.-MSCI EM.MKTS.TRN U.ETF");
        assert_eq!(id.isin.as_deref(), Some("LU0635178014"));
        assert_eq!(id.national("DE"), Some("ETF127"));
        assert_eq!(id.name().as_deref(), Some("COMST.-MSCI EM.MKTS.TRN U.ETF"));
        let id = SecurityId::parse("/US/31392EXH8\nFEDERAL NATL MTG ASSN");
        assert_eq!(id.isin, None);
        assert_eq!(id.national("US"), Some("31392EXH8"));
        let id = SecurityId::parse("ISIN LU0635178014|/DE/ETF127|COMS.-MSCI EM.M.T.U.ETF I");
        assert_eq!(id.name().as_deref(), Some("COMS.-MSCI EM.M.T.U.ETF I"));
    }

    #[test]
    fn a_hold_narrative_without_the_fints_shape_gives_no_figure() {
        assert_eq!(Acquisition::parse("20190221"), None);
        assert_eq!(Acquisition::parse("2500 STUECK"), None);
        assert_eq!(Acquisition::parse("250,39"), None);
        assert_eq!(Acquisition::parse("1 SEE ATTACHED 20190221"), None);
        // The shape, once more: date, price and currency.
        let a = Acquisition::parse("1STK+1+2+DE+20190221+|212,50+EUR+").unwrap();
        assert_eq!(
            (a.date, a.price, a.currency.as_deref()),
            (
                NaiveDate::from_ymd_opt(2019, 2, 21),
                Some(dec("12.50")),
                Some("EUR")
            )
        );
    }

    #[test]
    fn fints_acquisition_details_are_read_by_line_number() {
        let a = Acquisition::parse("1STK+812+00028+DE+20260402+\r\n250,39+EUR+\r\n3\r\n4").unwrap();
        assert_eq!(a.date, NaiveDate::from_ymd_opt(2026, 4, 2));
        assert_eq!(a.price, Some(dec("50.39")));
        assert_eq!(a.currency.as_deref(), Some("EUR"));
    }
}
