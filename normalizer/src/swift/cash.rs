//! MT940/MT942/MT950 statements into the canonical model.
//!
//! Per statement page: one [`StatementSummary`] (opening and closing as stated, `intermediate`
//! for `M` balances, the signed sum and count of the booked entries), one [`Transaction`] per
//! `:61:`, [`CashBalance`]s for the final balances only (`:60F:` opening, `:62F:` closing,
//! `:64:` available, `:65:` forward: an `M` balance is a page break, not a balance of the
//! account), and one [`Account`] (kind cash) per account id the first time it is seen.
//!
//! Mapping decisions a caller relies on:
//!
//! - The account id is the `:25:` value as written; it is an IBAN when it parses as one,
//!   after dropping a `/EUR`-style currency suffix.
//! - `amount` is the absolute amount and `direction` the effective movement: `C` and `RD`
//!   (reversal of a debit) are credits, `D` and `RC` (reversal of a credit) debits;
//!   `reversal` is set for `RC`/`RD`. The statement balances only with this reading (see the
//!   corpus test on betterplace's `sepa_mt9401`).
//! - `booking_date` is the `:61:` entry date, or the value date when the bank wrote none.
//! - `EC`/`ED` (expected, MT942) entries are `pending` and left out of the summary's total.
//! - Natural key: `ref:<bank reference>` when the `:61:` carries one after `//` (not
//!   `NONREF`), otherwise `h:<hash>` of the identifying fields (account, dates, mark, amount,
//!   currency, funds code, type, references, supplementary details and `:86:` text). A second
//!   identical entry in the same statement (account and `:28C:` number, over all its pages)
//!   gets `#2` appended, a third `#3`: the occurrence among identical entries, never the
//!   position in the file, so a re-delivered or re-paginated statement gives the same keys,
//!   and the same entry reported again in another statement (an MT942 during the day, then
//!   the MT940) gets the same key and loads once. Pages of one statement read in separate
//!   calls count separately: read them together (`swift::parse_pages`).
//! - Checks such as opening + entries = closing are not made here: the summaries carry what
//!   the reconciliation needs.

use std::collections::HashSet;

use crate::domain::{Currency, Iban};
use crate::error::ParseError;
use crate::model::{
    Account, AccountKind, BalanceKind, Batch, CashBalance, Direction, ParseWarning, Provenance,
    SourceFormat, StatedBalance, StatementSummary, Transaction, TransactionStatus, TransactionType,
};
use crate::swift::mt94x::{At, CashStatement, Entry};

/// Maps typed statements into one batch.
pub(crate) struct CashMapper<'a> {
    format: SourceFormat,
    documents: &'a [&'a str],
    pub(crate) batch: Batch,
    accounts: HashSet<String>,
    occurrences: crate::swift::values::Occurrences,
    /// Reused for the joined lines of `:86:` texts.
    scratch: String,
    /// The statement the occurrences count in: account and statement number.
    scope: Option<(String, Option<u32>)>,
    /// Records per document so far, for provenance positions: transactions, balances,
    /// statements, accounts.
    positions: Vec<[u32; 4]>,
}

impl<'a> CashMapper<'a> {
    pub(crate) fn new(format: SourceFormat, documents: &'a [&'a str]) -> Self {
        CashMapper {
            format,
            documents,
            batch: Batch::default(),
            accounts: HashSet::new(),
            occurrences: Default::default(),
            scratch: String::new(),
            scope: None,
            positions: vec![[0; 4]; documents.len()],
        }
    }

    fn document(&self, at: At) -> &'a str {
        self.documents.get(at.part).copied().unwrap_or_default()
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

    fn currency(&self, code: &str, at: At, field: &str) -> Result<Currency, ParseError> {
        Currency::parse(code).map_err(|e| self.error(at, field, e.to_string()))
    }

    /// Maps one statement page.
    pub(crate) fn statement(&mut self, st: CashStatement) -> Result<(), ParseError> {
        let format = match st.mt {
            None => self.format,
            Some(940) => SourceFormat::Mt940,
            Some(941) => SourceFormat::Mt941,
            Some(942) => SourceFormat::Mt942,
            Some(950) => SourceFormat::Mt950,
            Some(mt) if crate::swift::is_known_type(mt) => {
                return Err(self.error(
                    st.at,
                    "{2:}",
                    format!(
                        "the message is an MT{mt}, not a cash statement (MT940, MT941, MT942, MT950)"
                    ),
                ));
            }
            // A type this reader does not know: its fields decide, as `detect` did.
            Some(mt) => {
                self.batch.warnings.push(ParseWarning {
                    document: self.document(st.at).to_owned(),
                    line: Some(st.at.line),
                    field: Some("{2:}".to_owned()),
                    message: format!(
                        "block 2 names MT{mt}, which is no statement type: read as {} from its fields",
                        self.format.as_str()
                    ),
                });
                self.format
            }
        };
        let Some(account) = st.account.clone() else {
            return Err(self.error(
                st.at,
                ":25:",
                "the statement has no account identification (:25:)",
            ));
        };
        if format == SourceFormat::Mt941 && st.closing.is_none() {
            return Err(self.error(
                st.at,
                ":62a:",
                "the balance report has no booked balance (:62F:)",
            ));
        }
        if format != SourceFormat::Mt942 && format != SourceFormat::Mt941 {
            if st.opening.is_none() {
                return Err(self.error(
                    st.at,
                    ":60a:",
                    "the statement has no opening balance (:60F: or :60M:)",
                ));
            }
            if st.closing.is_none() {
                return Err(self.error(
                    st.at,
                    ":62a:",
                    "the statement has no closing balance (:62F: or :62M:): truncated file or a page that continues elsewhere",
                ));
            }
        }
        // The statement's currency: the first balance that states one.
        let stated: Vec<(&str, At, &str)> = st
            .opening
            .iter()
            .map(|b| (b.balance.currency.as_str(), b.at, ":60a:"))
            .chain(
                st.closing
                    .iter()
                    .map(|b| (b.balance.currency.as_str(), b.at, ":62a:")),
            )
            .chain(
                st.available
                    .iter()
                    .map(|(b, at)| (b.currency.as_str(), *at, ":64:")),
            )
            .chain(
                st.forward
                    .iter()
                    .map(|(b, at)| (b.currency.as_str(), *at, ":65:")),
            )
            .chain(
                st.floor_limits
                    .iter()
                    .map(|l| (l.currency.as_str(), st.at, ":34F:")),
            )
            .collect();
        let Some(&(code, code_at, code_field)) = stated.first() else {
            return Err(self.error(
                st.at,
                ":60a:",
                "the statement states no currency (no balance, no :34F: floor limit)",
            ));
        };
        let currency = self.currency(code, code_at, code_field)?;
        if let Some(&(other, at, field)) = stated.iter().find(|(c, ..)| *c != code) {
            return Err(self.error(
                at,
                field,
                format!("currency {other} differs from the statement's currency {code}"),
            ));
        }

        // Twins are counted within one statement (all its pages): a new account or statement
        // number starts the count again, and the map stays small.
        let scope = Some((account.clone(), st.statement_number));
        if self.scope != scope || st.statement_number.is_none() {
            self.occurrences.clear();
            self.scope = scope;
        }

        if self.accounts.insert(account.clone()) {
            let provenance = self.provenance(format, st.account_at, 3);
            self.batch.accounts.push(Account {
                bank_account_id: account.clone(),
                iban: iban_of(&account),
                currency,
                kind: AccountKind::Cash,
                client: None,
                provenance,
            });
        }

        for note in &st.notes {
            self.batch.warnings.push(ParseWarning {
                document: self.document(note.at).to_owned(),
                line: Some(note.at.line),
                field: Some(note.tag.to_owned()),
                message: note.message.clone(),
            });
        }

        let mut entries_total = rust_decimal::Decimal::ZERO;
        let mut entry_count = 0u32;
        for entry in st.entries {
            if !entry.line.mark.is_expected() {
                entries_total += entry.line.signed();
                entry_count += 1;
            }
            let t = self.transaction(format, &account, currency, entry);
            self.batch.transactions.push(t);
        }

        let final_balances = st
            .opening
            .iter()
            .filter(|b| !b.intermediate)
            .map(|b| (BalanceKind::Opening, &b.balance, b.at))
            .chain(
                st.closing
                    .iter()
                    .filter(|b| !b.intermediate)
                    .map(|b| (BalanceKind::Closing, &b.balance, b.at)),
            )
            .chain(
                st.available
                    .iter()
                    .map(|(b, at)| (BalanceKind::Available, b, *at)),
            )
            .chain(
                st.forward
                    .iter()
                    .map(|(b, at)| (BalanceKind::Forward, b, *at)),
            )
            .map(|(kind, b, at)| (kind, b.date.date, b.signed(), at))
            .collect::<Vec<_>>();
        for (kind, as_of, amount, at) in final_balances {
            let provenance = self.provenance(format, at, 1);
            self.batch.balances.push(CashBalance {
                account: account.clone(),
                currency,
                kind,
                as_of,
                amount,
                provenance,
            });
        }

        // A balance report (MT941) has its balances but no entries: not a statement page of
        // the account's chain, so it gives no summary to reconcile.
        if format == SourceFormat::Mt941 {
            return Ok(());
        }
        let stated = |b: &crate::swift::mt94x::StatementBalance| StatedBalance {
            amount: b.balance.signed(),
            date: b.balance.date.date,
            intermediate: b.intermediate,
        };
        let provenance = self.provenance(format, st.at, 2);
        self.batch.statements.push(StatementSummary {
            account,
            currency,
            reference: st.reference,
            statement_number: st.statement_number,
            page_number: st.page_number,
            last_page: st.closing.as_ref().is_some_and(|b| !b.intermediate),
            opening: st.opening.as_ref().map(stated),
            closing: st.closing.as_ref().map(stated),
            entries_total,
            entry_count,
            provenance,
        });
        Ok(())
    }

    fn transaction(
        &mut self,
        format: SourceFormat,
        account: &str,
        currency: Currency,
        entry: Entry,
    ) -> Transaction {
        let mut line = entry.line;
        let bank_reference = line
            .bank_reference
            .as_deref()
            .filter(|r| !r.eq_ignore_ascii_case("NONREF"));
        let natural_key = match &bank_reference {
            Some(r) => {
                let mut key = String::with_capacity(4 + r.len());
                key.push_str("ref:");
                key.push_str(r);
                self.occurrence(key, account)
            }
            None => {
                let mut funds = [0; 4];
                let funds = line.funds_code.map_or("", |c| c.encode_utf8(&mut funds));
                let mut key = crate::natural_key::KeyHasher::new();
                key.field(account)
                    .date(line.booking_date())
                    .date(line.value_date.date)
                    .field(line.mark.as_str())
                    .normalized(line.amount)
                    .field(currency.as_str())
                    .field(funds.trim())
                    .field(line.type_code.as_deref().unwrap_or_default())
                    .field(line.customer_reference.as_deref().unwrap_or_default())
                    .field(line.bank_reference.as_deref().unwrap_or_default())
                    .field(line.supplementary.as_deref().unwrap_or_default())
                    .field(entry.information.as_deref().unwrap_or_default());
                self.occurrence(key.finish(), account)
            }
        };
        let bank_reference = line
            .bank_reference
            .take()
            .filter(|r| !r.eq_ignore_ascii_case("NONREF"));
        let details = entry
            .information
            .map(|raw| crate::swift::details::summarize(raw, &mut self.scratch));
        let code = line.type_code.as_deref().map(|t| t.get(1..).unwrap_or(t));
        let gvc = details
            .as_ref()
            .and_then(|d| d.code.as_ref())
            .and_then(|c| std::str::from_utf8(c).ok());
        let kind = transaction_type(code, gvc);
        let bank_code = match (line.type_code.take(), gvc) {
            (Some(mut t), Some(g)) => {
                t.reserve_exact(1 + g.len());
                t.push('/');
                t.push_str(g);
                Some(t)
            }
            (Some(t), None) => Some(t),
            (None, Some(g)) => Some(g.to_owned()),
            (None, None) => None,
        };
        let (description, counterparty) = match details {
            Some(d) => (d.description, d.counterparty),
            None => (None, None),
        };
        let description = description.or_else(|| line.supplementary.clone());
        let provenance = self.provenance(format, entry.at, 0);
        Transaction {
            account: account.to_owned(),
            natural_key,
            bank_reference,
            booking_date: line.booking_date(),
            value_date: Some(line.value_date.date),
            trade_date: None,
            settlement_date: None,
            kind,
            bank_code,
            amount: line.amount,
            direction: if line.mark.is_effective_credit() {
                Direction::Credit
            } else {
                Direction::Debit
            },
            currency,
            security: None,
            quantity: None,
            price: None,
            fees: None,
            status: if line.mark.is_expected() {
                TransactionStatus::Pending
            } else {
                TransactionStatus::Booked
            },
            reversal: line.mark.is_reversal(),
            counterparty,
            description,
            provenance,
        }
    }

    /// The key itself the first time, `key#n` for the n-th identical one in this read.
    fn occurrence(&mut self, key: String, account: &str) -> String {
        self.occurrences.number(account, key)
    }
}

/// The IBAN in an account id such as `DE89370400440532013000`, `DE89...000/EUR` or
/// `DE89...000EUR`.
pub(crate) fn iban_of(id: &str) -> Option<Iban> {
    let id = id.trim();
    let strip = |s: &'_ str| -> Option<Iban> { Iban::parse(s).ok() };
    if let Some(i) = strip(id) {
        return Some(i);
    }
    if let Some((head, cur)) = id.rsplit_once('/')
        && crate::swift::values::is_currency_code(cur)
    {
        return strip(head);
    }
    let cut = id.len().saturating_sub(3);
    if id.is_char_boundary(cut) {
        let (head, tail) = id.split_at(cut);
        if crate::swift::values::is_currency_code(tail) {
            return strip(head);
        }
    }
    None
}

/// Canonical type from the SWIFT transaction type (`TRF` of `NTRF`) and the German GVC.
fn transaction_type(code: Option<&str>, gvc: Option<&str>) -> TransactionType {
    match gvc {
        Some("805" | "806" | "807" | "808" | "809") => return TransactionType::Fee,
        Some("814") => return TransactionType::Interest,
        _ => {}
    }
    match code {
        Some("CHG" | "COM") => TransactionType::Fee,
        Some("INT") => TransactionType::Interest,
        Some("DIV") => TransactionType::Dividend,
        Some("TRF" | "STO" | "DDT" | "RTI" | "BOE" | "CLR") => TransactionType::Transfer,
        _ => TransactionType::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iban_is_found_behind_a_currency_suffix() {
        let plain = iban_of("DE89370400440532013000").map(|i| i.to_string());
        assert_eq!(plain.as_deref(), Some("DE89370400440532013000"));
        assert_eq!(
            iban_of("DE89370400440532013000/EUR"),
            iban_of("DE89370400440532013000")
        );
        assert_eq!(
            iban_of("DE89370400440532013000EUR"),
            iban_of("DE89370400440532013000")
        );
        assert_eq!(iban_of("51210600/9223382012EUR"), None);
        assert_eq!(iban_of("äöü"), None);
    }

    #[test]
    fn twins_get_their_occurrence_and_a_repeat_read_the_same_keys() {
        let text = ":20:S1\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C240101EUR10,\n:61:240101D1,NCHGNONREF\n:86:Fee\n:61:240101D1,NCHGNONREF\n:86:Fee\n:61:240101C5,NTRFNONREF//B1\n:62F:C240101EUR13,\n-\n";
        let a = crate::swift::parse(SourceFormat::Mt940, "c", "d", text.as_bytes()).unwrap();
        let b = crate::swift::parse(SourceFormat::Mt940, "c", "d", text.as_bytes()).unwrap();
        let keys: Vec<_> = a
            .transactions
            .iter()
            .map(|t| t.natural_key.clone())
            .collect();
        assert_eq!(
            keys,
            b.transactions
                .iter()
                .map(|t| t.natural_key.clone())
                .collect::<Vec<_>>()
        );
        assert!(keys[0].starts_with("h:"));
        assert_eq!(keys[1], format!("{}#2", keys[0]));
        assert_eq!(keys[2], "ref:B1");
        assert_eq!(a.transactions[0].kind, TransactionType::Fee);
        assert_eq!(a.transactions[0].description.as_deref(), Some("Fee"));
        let s = &a.statements[0];
        assert_eq!(s.entries_total, "3".parse().unwrap());
        assert_eq!(
            a.accounts[0].iban.as_ref().map(|i| i.as_str()),
            Some("DE89370400440532013000")
        );
        assert_eq!(a.balances.len(), 2);
    }

    #[test]
    fn an_intermediate_balance_is_stated_but_not_a_cash_balance() {
        let text = ":20:S1\n:25:A1\n:28C:7/2\n:60M:C240101EUR10,\n:62M:D240101EUR2,\n:64:C240101EUR9,\n-\n";
        let err = crate::swift::parse(SourceFormat::Mt940, "c", "d", text.as_bytes());
        let b = err.unwrap();
        assert!(b.balances.iter().all(|x| x.kind == BalanceKind::Available));
        let s = &b.statements[0];
        assert_eq!(
            (s.statement_number, s.page_number, s.last_page),
            (Some(7), Some(2), false)
        );
        assert!(s.opening.as_ref().is_some_and(|o| o.intermediate));
        assert_eq!(
            s.closing.as_ref().map(|c| c.amount),
            Some("-2".parse().unwrap())
        );
    }

    #[test]
    fn a_missing_account_is_an_error_with_line_and_field() {
        let e = crate::swift::parse(
            SourceFormat::Mt940,
            "c",
            "doc.sta",
            b"\n:20:X\n:60F:C240101EUR1,\n:62F:C240101EUR1,\n-",
        )
        .unwrap_err();
        assert_eq!(
            (e.document.as_str(), e.line, e.field.as_deref()),
            ("doc.sta", Some(2), Some(":25:"))
        );
    }
}
