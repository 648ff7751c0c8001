//! MT900 and MT910: the confirmation of one debit or one credit, into one transaction.
//!
//! A bank sends an MT900 (debit) or MT910 (credit) when it books a single movement, often
//! long before the day's MT940. One message is `:20:` the bank's reference, `:21:` the related
//! reference, `:25:` the account, `:13D:` when it was booked, `:32A:` value date, currency and
//! amount, then for MT910 the ordering party (`:50a:`, `:52a:`) and `:72:` free text.
//!
//! Mapping decisions a caller relies on:
//!
//! - One [`Transaction`] per message, booked, debit for MT900 and credit for MT910, booking and
//!   value date the `:32A:` date; the account once, kind cash, in the `:32A:` currency.
//! - Natural key `ref:<:20:>`, the namespace the MT940 mapping uses for a `:61:` bank
//!   reference: a bank that reports the movement again in its MT940 under the same reference
//!   gives the same key and the movement loads once. No statement summary or balance: a
//!   confirmation is not a statement and takes no part in reconciliation.
//! - Counterparty: the ordering customer's name (`:50K:`/`:50F:` text, `:50A:` BIC), else the
//!   ordering institution (`:52a:`); description: `:72:` with its `/CODE/` line marks kept.
//!
//! [`Transaction`]: crate::model::Transaction

use std::collections::HashSet;

use crate::domain::Currency;
use crate::error::ParseError;
use crate::model::{
    Account, AccountKind, Batch, Direction, Provenance, SourceFormat, Transaction,
    TransactionStatus, TransactionType,
};
use crate::swift::fin::{Event, Field};
use crate::swift::mt94x::{At, ReadError};
use crate::swift::values::{FieldError, is_currency_code, parse_amount, parse_yymmdd, split_chars};

/// One confirmation, values as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    pub mt: Option<u16>,
    pub at: At,
    pub reference: Option<String>,
    pub related_reference: Option<String>,
    pub account: Option<String>,
    /// `:32A:`: value date, currency as written, amount.
    pub value: Option<(chrono::NaiveDate, String, rust_decimal::Decimal)>,
    pub value_at: At,
    pub ordering_party: Option<String>,
    pub ordering_institution: Option<String>,
    pub information: Option<String>,
}

/// Builds [`Confirmation`]s from FIN events, one per message.
pub struct ConfirmationReader<F> {
    current: Option<Confirmation>,
    next_mt: Option<u16>,
    done: F,
}

impl<F: FnMut(Confirmation) -> Result<(), ReadError>> ConfirmationReader<F> {
    pub fn new(done: F) -> Self {
        ConfirmationReader {
            current: None,
            next_mt: None,
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
            Event::Note(_) => Ok(()),
        }
    }

    pub fn close(mut self) -> Result<F, ReadError> {
        self.finish()?;
        Ok(self.done)
    }

    fn finish(&mut self) -> Result<(), ReadError> {
        match self.current.take() {
            Some(c) => (self.done)(c),
            None => Ok(()),
        }
    }

    fn field(&mut self, f: Field<'_>) -> Result<(), ReadError> {
        let at = At {
            part: f.part,
            line: f.line,
        };
        if f.tag == "20" && self.current.is_some() {
            self.finish()?;
        }
        let mt = self.next_mt;
        let c = self.current.get_or_insert_with(|| Confirmation {
            mt,
            at,
            ..Confirmation::default()
        });
        let text = || Some(f.value.trim().to_owned()).filter(|v| !v.is_empty());
        match f.tag {
            "20" => c.reference = text(),
            "21" => c.related_reference = text(),
            "25" | "25P" => c.account = text(),
            "32A" => {
                c.value = Some(value_date_amount(f.first_line()).map_err(|e| ReadError {
                    at,
                    tag: f.tag.to_owned(),
                    reason: e.0,
                })?);
                c.value_at = at;
            }
            "50" | "50K" | "50F" | "50A" => c.ordering_party = party(f.value),
            "52A" | "52D" => c.ordering_institution = party(f.value),
            "72" => c.information = text(),
            _ => {}
        }
        Ok(())
    }
}

/// `:32A:` `240115EUR1234,56`.
fn value_date_amount(
    v: &str,
) -> Result<(chrono::NaiveDate, String, rust_decimal::Decimal), FieldError> {
    let v = v.trim();
    let (date, rest) = split_chars(v, 6);
    let date = parse_yymmdd(date)?.date;
    let (currency, amount) = split_chars(rest, 3);
    if !is_currency_code(currency) {
        return Err(FieldError::new(format!(
            "no currency before the amount in '{v}'"
        )));
    }
    Ok((date, currency.to_owned(), parse_amount(amount)?.0))
}

/// A party field: its name lines (not the `/account` line, not `1/`-style structured line
/// numbers' prefixes), joined by a space; a BIC as it is. CBPR+ translations write
/// `NOTPROVIDED` where the party is unknown: no party.
fn party(value: &str) -> Option<String> {
    let lines: Vec<&str> = crate::swift::text::value_lines(value)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('/'))
        .map(|l| match l.as_bytes() {
            [d, b'/', ..] if d.is_ascii_digit() => &l[2..],
            _ => l,
        })
        .collect();
    Some(lines.join(" ")).filter(|s| !s.is_empty() && s != "NOTPROVIDED")
}

/// Maps confirmations into one batch.
pub(crate) struct ConfirmationMapper<'a> {
    format: SourceFormat,
    documents: &'a [&'a str],
    pub(crate) batch: Batch,
    accounts: HashSet<String>,
    positions: Vec<[u32; 2]>,
}

impl<'a> ConfirmationMapper<'a> {
    pub(crate) fn new(format: SourceFormat, documents: &'a [&'a str]) -> Self {
        ConfirmationMapper {
            format,
            documents,
            batch: Batch::default(),
            accounts: HashSet::new(),
            positions: vec![[0; 2]; documents.len()],
        }
    }

    fn error(&self, at: At, field: &str, reason: impl Into<String>) -> ParseError {
        ParseError {
            document: self.document(at).to_owned(),
            line: Some(at.line),
            column: None,
            field: Some(field.to_owned()),
            reason: reason.into(),
        }
    }

    fn document(&self, at: At) -> &'a str {
        self.documents.get(at.part).copied().unwrap_or_default()
    }

    fn provenance(&mut self, format: SourceFormat, at: At, kind: usize) -> Provenance {
        let position = self
            .positions
            .get_mut(at.part)
            .map(|p| {
                let n = p[kind];
                p[kind] += 1;
                n
            })
            .unwrap_or_default();
        Provenance {
            format,
            document: self.document(at).to_owned(),
            position,
        }
    }

    /// Maps one confirmation; every check comes before the first record is pushed.
    pub(crate) fn confirmation(&mut self, c: Confirmation) -> Result<(), ParseError> {
        let format = match c.mt {
            None => self.format,
            Some(900) => SourceFormat::Mt900,
            Some(910) => SourceFormat::Mt910,
            Some(mt) => {
                return Err(self.error(
                    c.at,
                    "{2:}",
                    format!("the message is an MT{mt}, not a confirmation (MT900, MT910)"),
                ));
            }
        };
        let Some(account) = c.account else {
            return Err(self.error(
                c.at,
                ":25:",
                "the confirmation has no account identification (:25:)",
            ));
        };
        let Some((date, code, amount)) = c.value else {
            return Err(self.error(
                c.at,
                ":32A:",
                "the confirmation has no value date, currency and amount (:32A:)",
            ));
        };
        let currency =
            Currency::parse(&code).map_err(|e| self.error(c.value_at, ":32A:", e.to_string()))?;
        if self.accounts.insert(account.clone()) {
            let provenance = self.provenance(format, c.at, 1);
            self.batch.accounts.push(Account {
                bank_account_id: account.clone(),
                iban: crate::swift::cash::iban_of(&account),
                currency,
                kind: AccountKind::Cash,
                client: None,
                provenance,
            });
        }
        let natural_key = match &c.reference {
            Some(r) => format!("ref:{r}"),
            None => {
                let mut key = crate::natural_key::KeyHasher::new();
                key.field(&account)
                    .date(date)
                    .field(format.as_str())
                    .normalized(amount)
                    .field(currency.as_str())
                    .field(c.related_reference.as_deref().unwrap_or_default());
                key.finish()
            }
        };
        let provenance = self.provenance(format, c.value_at, 0);
        self.batch.transactions.push(Transaction {
            account,
            natural_key,
            bank_reference: c.reference,
            booking_date: date,
            value_date: Some(date),
            trade_date: None,
            settlement_date: None,
            kind: TransactionType::Other,
            bank_code: None,
            amount,
            direction: if format == SourceFormat::Mt900 {
                Direction::Debit
            } else {
                Direction::Credit
            },
            currency,
            security: None,
            quantity: None,
            price: None,
            fees: None,
            status: TransactionStatus::Booked,
            reversal: false,
            counterparty: c.ordering_party.or(c.ordering_institution),
            description: c.information,
            provenance,
        });
        Ok(())
    }
}
