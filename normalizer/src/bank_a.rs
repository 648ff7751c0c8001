//! bank_a: REST JSON documents (accounts, positions, balances, transactions pages).
//!
//! The wire format keeps money, quantities and prices as decimal strings and dates as
//! `YYYY-MM-DD`. Each page is parsed on its own (the connector hands over raw pages exactly as
//! received), first into loose wire structs, then validated field by field so that an error
//! names the document and the field path. A page either parses whole or not at all, with one
//! exception that is no error: a security whose ISIN fails its check digit is kept under the
//! bank's security id (else the text as written), the text in `raw_isin`, with a warning, as
//! the statement formats do (see `crate::isin`), instead of losing the page.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::domain::{Currency, Iban, Isin};
use crate::error::ParseError;
use crate::isin::WrittenIsin;
use crate::model::{
    Account, AccountKind, AssetClass, BalanceKind, Batch, CashBalance, ClientRef, CompleteSnapshot,
    Direction, ParseWarning, Position, PriceType, Provenance, QuantityType, Security,
    SecurityDetail, SecurityKey, SourceFormat, Transaction, TransactionStatus, TransactionType,
};

/// Which endpoint a bank_a page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Accounts,
    Positions,
    Balances,
    Transactions,
}

/// Parses one bank_a page. `custodian` scopes securities that have no ISIN; `document` names
/// the page in errors and provenance.
pub fn parse(
    kind: DocumentKind,
    custodian: &str,
    document: &str,
    body: &[u8],
) -> Result<Batch, ParseError> {
    let cx = Cx {
        custodian,
        document,
    };
    match kind {
        DocumentKind::Accounts => cx.accounts(body),
        DocumentKind::Positions => cx.positions(body),
        DocumentKind::Balances => cx.balances(body),
        DocumentKind::Transactions => cx.transactions(body),
    }
}

#[derive(Deserialize)]
struct AccountsPage {
    accounts: Vec<WireAccount>,
}

#[derive(Deserialize)]
struct WireAccount {
    account_id: String,
    iban: Option<String>,
    currency: String,
    kind: String,
    client_reference: Option<String>,
    client_name: Option<String>,
}

#[derive(Deserialize)]
struct PositionsPage {
    account_id: String,
    as_of: String,
    positions: Vec<WirePosition>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct WireSecurity {
    isin: Option<String>,
    bank_security_id: Option<String>,
    valor: Option<String>,
    name: Option<String>,
    asset_class: Option<String>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct WirePosition {
    security: WireSecurity,
    quantity: String,
    quantity_type: String,
    price: Option<String>,
    price_type: Option<String>,
    price_currency: Option<String>,
    market_value: Option<String>,
    accrued_interest: Option<String>,
    cost: Option<String>,
}

#[derive(Deserialize)]
struct BalancesPage {
    account_id: String,
    balances: Vec<WireBalance>,
}

#[derive(Deserialize)]
struct WireBalance {
    currency: String,
    kind: String,
    amount: String,
    as_of: String,
}

#[derive(Deserialize)]
struct TransactionsPage {
    account_id: String,
    transactions: Vec<WireTransaction>,
}

#[derive(Deserialize)]
struct WireSecurityRef {
    isin: Option<String>,
    bank_security_id: Option<String>,
}

#[derive(Deserialize)]
struct WireTransaction {
    transaction_id: Option<String>,
    booking_date: String,
    value_date: Option<String>,
    trade_date: Option<String>,
    settlement_date: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    bank_code: Option<String>,
    amount: String,
    direction: String,
    currency: String,
    security: Option<WireSecurityRef>,
    quantity: Option<String>,
    price: Option<String>,
    fees: Option<String>,
    status: String,
    counterparty: Option<String>,
    description: Option<String>,
}

/// Who a security is: see [`Cx::security_identity`].
struct Identity {
    key: SecurityKey,
    isin: Option<Isin>,
    raw_isin: Option<String>,
    bank_id: Option<String>,
}

/// Parsing context: names errors and provenance.
struct Cx<'a> {
    custodian: &'a str,
    document: &'a str,
}

impl Cx<'_> {
    fn json<'de, T: Deserialize<'de>>(&self, body: &'de [u8]) -> Result<T, ParseError> {
        serde_json::from_slice(body).map_err(|e| ParseError::json(self.document, &e))
    }

    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError::field(self.document, field, reason)
    }

    fn provenance(&self, position: usize) -> Provenance {
        Provenance {
            format: SourceFormat::BankAJson,
            document: self.document.to_owned(),
            position: u32::try_from(position).unwrap_or(u32::MAX),
        }
    }

    fn non_empty(&self, field: &str, v: &str) -> Result<String, ParseError> {
        let t = v.trim();
        if t.is_empty() {
            Err(self.err(field, "must not be empty"))
        } else {
            Ok(t.to_owned())
        }
    }

    fn date(&self, field: &str, v: &str) -> Result<NaiveDate, ParseError> {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| self.err(field, format!("'{v}' is not a date (YYYY-MM-DD)")))
    }

    fn opt_date(&self, field: &str, v: Option<&str>) -> Result<Option<NaiveDate>, ParseError> {
        v.map(|v| self.date(field, v)).transpose()
    }

    fn decimal(&self, field: &str, v: &str) -> Result<Decimal, ParseError> {
        // Only plain decimal notation: no exponent, no thousands separators, no NaN.
        let ok = !v.is_empty()
            && v.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-'));
        if !ok {
            return Err(self.err(field, format!("'{v}' is not a decimal number")));
        }
        Decimal::from_str(v)
            .map_err(|e| self.err(field, format!("'{v}' is not a decimal number: {e}")))
    }

    fn opt_decimal(&self, field: &str, v: Option<&str>) -> Result<Option<Decimal>, ParseError> {
        v.map(|v| self.decimal(field, v)).transpose()
    }

    fn non_negative(&self, field: &str, v: &str) -> Result<Decimal, ParseError> {
        let d = self.decimal(field, v)?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(self.err(field, format!("'{v}' must not be negative")));
        }
        Ok(d)
    }

    fn currency(&self, field: &str, v: &str) -> Result<Currency, ParseError> {
        Currency::parse(v).map_err(|e| self.err(field, e.to_string()))
    }

    fn opt_currency(&self, field: &str, v: Option<&str>) -> Result<Option<Currency>, ParseError> {
        v.map(|v| self.currency(field, v)).transpose()
    }

    /// A security's identity as the page gives it: its key, its ISIN when valid, the bank's id
    /// (else an ISIN failing its check digit, as written) and that text. An invalid ISIN
    /// leaves a warning in `batch`, at `field` (the security's path).
    fn security_identity(
        &self,
        field: &str,
        isin: Option<&str>,
        bank_security_id: Option<String>,
        batch: &mut Batch,
    ) -> Result<Identity, ParseError> {
        let written = WrittenIsin::read(isin);
        let isin = written.valid().cloned();
        let raw_isin = written.raw().map(str::to_owned);
        let bank_id = bank_security_id.or_else(|| raw_isin.clone());
        let key = SecurityKey::new(self.custodian, isin.as_ref(), bank_id.as_deref())
            .ok_or_else(|| self.err(field, "a security needs an ISIN or the bank's security id"))?;
        if let Some(message) = written.warning(&key) {
            batch.warnings.push(ParseWarning {
                document: self.document.to_owned(),
                line: None,
                field: Some(format!("{field}.isin")),
                message,
            });
        }
        Ok(Identity {
            key,
            isin,
            raw_isin,
            bank_id,
        })
    }

    fn accounts(&self, body: &[u8]) -> Result<Batch, ParseError> {
        let page: AccountsPage = self.json(body)?;
        let mut batch = Batch::default();
        for (i, a) in page.accounts.into_iter().enumerate() {
            let f = |name: &str| format!("accounts[{i}].{name}");
            let kind = match a.kind.as_str() {
                "cash" => AccountKind::Cash,
                "custody" => AccountKind::Custody,
                other => return Err(self.err(f("kind"), format!("unknown account kind '{other}'"))),
            };
            let iban = a
                .iban
                .as_deref()
                .map(|v| Iban::parse(v).map_err(|e| self.err(f("iban"), e.to_string())))
                .transpose()?;
            let client = match a.client_reference {
                Some(reference) => {
                    let reference = self.non_empty(&f("client_reference"), &reference)?;
                    let name = a.client_name.unwrap_or_else(|| reference.clone());
                    Some(ClientRef { reference, name })
                }
                None => None,
            };
            batch.accounts.push(Account {
                bank_account_id: self.non_empty(&f("account_id"), &a.account_id)?,
                iban,
                currency: self.currency(&f("currency"), &a.currency)?,
                kind,
                client,
                provenance: self.provenance(i),
            });
        }
        Ok(batch)
    }

    fn positions(&self, body: &[u8]) -> Result<Batch, ParseError> {
        let page: PositionsPage = self.json(body)?;
        let account = self.non_empty("account_id", &page.account_id)?;
        let as_of = self.date("as_of", &page.as_of)?;
        let mut batch = Batch::default();
        for (i, p) in page.positions.into_iter().enumerate() {
            let f = |name: &str| format!("positions[{i}].{name}");
            let s = p.security;
            let Identity {
                key,
                isin,
                raw_isin,
                bank_id,
            } = self.security_identity(
                &f("security"),
                s.isin.as_deref(),
                s.bank_security_id,
                &mut batch,
            )?;
            let asset_class = match s.asset_class.as_deref() {
                Some("equity") => AssetClass::Equity,
                Some("bond") => AssetClass::Bond,
                Some("fund") => AssetClass::Fund,
                Some(_) | None => AssetClass::Other,
            };
            let name = match s.name {
                Some(n) => self.non_empty(&f("security.name"), &n)?,
                None => key.as_str().to_owned(),
            };
            batch.securities.push(Security {
                key: key.clone(),
                isin,
                raw_isin,
                bank_security_id: bank_id,
                valor: s.valor,
                wkn: None,
                cusip: None,
                name,
                asset_class,
                currency: self.opt_currency(&f("security.currency"), s.currency.as_deref())?,
                detail: SecurityDetail::Full,
            });
            let quantity_type = match p.quantity_type.as_str() {
                "units" => QuantityType::Units,
                "face_amount" => QuantityType::FaceAmount,
                other => {
                    return Err(self.err(
                        f("quantity_type"),
                        format!("unknown quantity type '{other}'"),
                    ));
                }
            };
            let price_type = match p.price_type.as_deref() {
                None | Some("amount") => PriceType::Amount,
                Some("percent") => PriceType::Percent,
                Some(other) => {
                    return Err(self.err(f("price_type"), format!("unknown price type '{other}'")));
                }
            };
            batch.positions.push(Position {
                account: account.clone(),
                security: key,
                as_of,
                quantity: self.decimal(&f("quantity"), &p.quantity)?,
                quantity_type,
                price: self.opt_decimal(&f("price"), p.price.as_deref())?,
                price_type,
                price_currency: self
                    .opt_currency(&f("price_currency"), p.price_currency.as_deref())?,
                market_value: self.opt_decimal(&f("market_value"), p.market_value.as_deref())?,
                accrued_interest: self
                    .opt_decimal(&f("accrued_interest"), p.accrued_interest.as_deref())?,
                cost: self.opt_decimal(&f("cost"), p.cost.as_deref())?,
                provenance: self.provenance(i),
            });
        }
        // bank_a serves the full holdings of an account on a date: the last page completes the
        // snapshot, so positions it does not list (sold out) are closed when the batch loads.
        if page.next_cursor.is_none() {
            batch
                .complete_snapshots
                .push(CompleteSnapshot { account, as_of });
        }
        Ok(batch)
    }

    fn balances(&self, body: &[u8]) -> Result<Batch, ParseError> {
        let page: BalancesPage = self.json(body)?;
        let account = self.non_empty("account_id", &page.account_id)?;
        let mut batch = Batch::default();
        for (i, b) in page.balances.into_iter().enumerate() {
            let f = |name: &str| format!("balances[{i}].{name}");
            let kind = match b.kind.as_str() {
                "opening" => BalanceKind::Opening,
                "closing" => BalanceKind::Closing,
                "available" => BalanceKind::Available,
                "forward" => BalanceKind::Forward,
                other => return Err(self.err(f("kind"), format!("unknown balance kind '{other}'"))),
            };
            batch.balances.push(CashBalance {
                account: account.clone(),
                currency: self.currency(&f("currency"), &b.currency)?,
                kind,
                as_of: self.date(&f("as_of"), &b.as_of)?,
                amount: self.decimal(&f("amount"), &b.amount)?,
                provenance: self.provenance(i),
            });
        }
        Ok(batch)
    }

    fn transactions(&self, body: &[u8]) -> Result<Batch, ParseError> {
        let page: TransactionsPage = self.json(body)?;
        let account = self.non_empty("account_id", &page.account_id)?;
        let mut batch = Batch::default();
        let mut occurrences: std::collections::HashMap<[String; 6], u32> = Default::default();
        for (i, t) in page.transactions.into_iter().enumerate() {
            let f = |name: &str| format!("transactions[{i}].{name}");
            let kind = match t.kind.as_str() {
                "buy" => TransactionType::Buy,
                "sell" => TransactionType::Sell,
                "dividend" => TransactionType::Dividend,
                "interest" => TransactionType::Interest,
                "fee" => TransactionType::Fee,
                "deposit" => TransactionType::Deposit,
                "withdrawal" => TransactionType::Withdrawal,
                "transfer" => TransactionType::Transfer,
                _ => TransactionType::Other,
            };
            let direction = match t.direction.as_str() {
                "debit" => Direction::Debit,
                "credit" => Direction::Credit,
                other => {
                    return Err(self.err(f("direction"), format!("unknown direction '{other}'")));
                }
            };
            let status = match t.status.as_str() {
                "booked" => TransactionStatus::Booked,
                "pending" => TransactionStatus::Pending,
                other => return Err(self.err(f("status"), format!("unknown status '{other}'"))),
            };
            let security = match t.security {
                Some(s) => {
                    let Identity {
                        key,
                        isin,
                        raw_isin,
                        bank_id,
                    } = self.security_identity(
                        &f("security"),
                        s.isin.as_deref(),
                        s.bank_security_id,
                        &mut batch,
                    )?;
                    batch.securities.push(Security {
                        key: key.clone(),
                        raw_isin,
                        name: bank_id.clone().unwrap_or_else(|| key.as_str().to_owned()),
                        isin,
                        bank_security_id: bank_id,
                        valor: None,
                        wkn: None,
                        cusip: None,
                        asset_class: AssetClass::Other,
                        currency: None,
                        detail: SecurityDetail::ReferenceOnly,
                    });
                    Some(key)
                }
                None => None,
            };
            let booking_date = self.date(&f("booking_date"), &t.booking_date)?;
            let amount = self.non_negative(&f("amount"), &t.amount)?;
            let currency = self.currency(&f("currency"), &t.currency)?;
            let bank_reference = t
                .transaction_id
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty());
            let natural_key = match &bank_reference {
                Some(r) => format!("ref:{r}"),
                None => {
                    // Without a bank reference the identifying fields make the key, plus the
                    // occurrence among identical entries (two equal fees on one day are two
                    // fees). Not the index in the page: pages shift when the cursor overlaps.
                    let fields = [
                        account.clone(),
                        booking_date.to_string(),
                        amount.normalize().to_string(),
                        direction.as_str().to_owned(),
                        currency.as_str().to_owned(),
                        t.description.clone().unwrap_or_default(),
                    ];
                    let occurrence = occurrences.entry(fields.clone()).or_insert(0u32);
                    *occurrence += 1;
                    let mut key: Vec<&str> = fields.iter().map(String::as_str).collect();
                    let n = occurrence.to_string();
                    key.push(&n);
                    crate::natural_key::hashed(&key)
                }
            };
            batch.transactions.push(Transaction {
                account: account.clone(),
                natural_key,
                bank_reference,
                booking_date,
                value_date: self.opt_date(&f("value_date"), t.value_date.as_deref())?,
                trade_date: self.opt_date(&f("trade_date"), t.trade_date.as_deref())?,
                settlement_date: self
                    .opt_date(&f("settlement_date"), t.settlement_date.as_deref())?,
                kind,
                bank_code: t.bank_code,
                amount,
                direction,
                currency,
                security,
                quantity: self.opt_decimal(&f("quantity"), t.quantity.as_deref())?,
                price: self.opt_decimal(&f("price"), t.price.as_deref())?,
                fees: self.opt_decimal(&f("fees"), t.fees.as_deref())?,
                status,
                reversal: false,
                counterparty: t.counterparty,
                description: t.description,
                provenance: self.provenance(i),
            });
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        /// Test helper: a decimal from a literal string.
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().expect("test literal is a decimal")
        }
    }

    const POSITIONS: &str = r#"{"account_id":"BA-1","as_of":"2026-11-20","positions":[
        {"security":{"isin":"US0378331005","bank_security_id":"SEC-1","valor":"908440","name":"Apple Inc","asset_class":"equity","currency":"USD"},
         "quantity":"150","quantity_type":"units","price":"189.25","price_type":"amount","price_currency":"USD","market_value":"28387.50","accrued_interest":null,"cost":"25000.00"},
        {"security":{"isin":null,"bank_security_id":"SEC-2","valor":null,"name":"Private Note","asset_class":"bond","currency":"USD"},
         "quantity":"50000","quantity_type":"face_amount","price":"101.25","price_type":"percent","price_currency":"USD","market_value":"50625.00","accrued_interest":"312.50","cost":null}],
        "next_cursor":null}"#;

    #[test]
    fn positions_page_parses_exact_values_and_completes_the_snapshot() {
        let b = parse(
            DocumentKind::Positions,
            "bank_a",
            "positions/BA-1/1",
            POSITIONS.as_bytes(),
        )
        .unwrap();
        assert_eq!(b.positions.len(), 2);
        assert_eq!(b.securities.len(), 2);
        let bond = &b.positions[1];
        assert_eq!(bond.quantity, dec("50000"));
        assert_eq!(bond.quantity_type, QuantityType::FaceAmount);
        assert_eq!(bond.price, Some(dec("101.25")));
        assert_eq!(bond.price_type, PriceType::Percent);
        assert_eq!(bond.accrued_interest, Some(dec("312.50")));
        assert_eq!(bond.security.as_str(), "bank:bank_a:SEC-2");
        assert_eq!(b.positions[0].security.as_str(), "isin:US0378331005");
        assert_eq!(
            b.positions[0].as_of,
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
        );
        assert_eq!(bond.provenance.position, 1);
        assert_eq!(b.complete_snapshots.len(), 1);
    }

    #[test]
    fn an_isin_failing_its_check_digit_keeps_the_security_under_the_banks_id() {
        let body = POSITIONS.replace("US0378331005", "US0378331006");
        let b = parse(DocumentKind::Positions, "bank_a", "doc", body.as_bytes())
            .expect("the page loads");
        let s = &b.securities[0];
        assert_eq!(
            (
                s.key.as_str(),
                s.isin.as_ref(),
                s.raw_isin.as_deref(),
                s.bank_security_id.as_deref()
            ),
            (
                "bank:bank_a:SEC-1",
                None,
                Some("US0378331006"),
                Some("SEC-1")
            )
        );
        assert_eq!(b.positions[0].security.as_str(), "bank:bank_a:SEC-1");
        assert_eq!(b.positions.len(), 2, "the other position loads too");
        assert_eq!(
            b.warnings,
            [ParseWarning {
                document: "doc".into(),
                line: None,
                field: Some("positions[0].security.isin".into()),
                message: "'US0378331006' is not a valid ISIN: check digit does not match: the \
                          security is kept as bank:bank_a:SEC-1, the ISIN as written in raw_isin"
                    .into(),
            }]
        );
        // Without the bank's id the text as written identifies it (never as an ISIN).
        let body = body.replace("\"bank_security_id\":\"SEC-1\",", "");
        let b = parse(DocumentKind::Positions, "bank_a", "doc", body.as_bytes()).unwrap();
        assert_eq!(b.securities[0].key.as_str(), "bank:bank_a:US0378331006");
        // A transaction's security likewise.
        let body = r#"{"account_id":"BA-1","transactions":[{"transaction_id":"TX-9","booking_date":"2026-11-02",
            "value_date":null,"trade_date":null,"settlement_date":null,"type":"buy","bank_code":"BUY",
            "amount":"1234.50","direction":"debit","currency":"CHF","security":{"isin":"CH0012032049","bank_security_id":"SEC-7"},
            "quantity":"10","price":"122.46","fees":null,"status":"booked","counterparty":null,"description":null}],"next_cursor":null}"#;
        let b = parse(DocumentKind::Transactions, "bank_a", "tx", body.as_bytes()).unwrap();
        let keys: Vec<_> = b.securities.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["bank:bank_a:SEC-7"]);
        assert_eq!(b.securities[0].raw_isin.as_deref(), Some("CH0012032049"));
        assert_eq!(
            b.warnings[0].field.as_deref(),
            Some("transactions[0].security.isin")
        );
    }

    #[test]
    fn a_float_or_exponent_amount_is_refused() {
        for bad in ["1e3", "12,50", "NaN", ""] {
            let body = POSITIONS.replace("\"150\"", &format!("\"{bad}\""));
            let e = parse(DocumentKind::Positions, "bank_a", "doc", body.as_bytes()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("positions[0].quantity"), "{bad}");
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let e = parse(
            DocumentKind::Accounts,
            "bank_a",
            "accounts/1",
            b"{\"accounts\": [\n{]",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.column.is_some());
        assert!(e.to_string().starts_with("accounts/1, line 2"), "{e}");
    }

    #[test]
    fn transactions_keep_dates_apart_and_sign_amounts() {
        let body = r#"{"account_id":"BA-1","transactions":[{"transaction_id":"TX-9","booking_date":"2026-11-02",
            "value_date":"2026-11-04","trade_date":"2026-11-02","settlement_date":"2026-11-04","type":"buy","bank_code":"BUY",
            "amount":"1234.50","direction":"debit","currency":"CHF","security":{"isin":"CH0012032048","bank_security_id":"SEC-7"},
            "quantity":"10","price":"122.46","fees":"9.90","status":"booked","counterparty":null,"description":"Buy 10 ROG"}],"next_cursor":null}"#;
        let b = parse(DocumentKind::Transactions, "bank_a", "tx", body.as_bytes()).unwrap();
        let t = &b.transactions[0];
        assert_eq!(t.natural_key, "ref:TX-9");
        assert_eq!(t.signed_amount(), dec("-1234.50"));
        assert_eq!(t.value_date, NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(t.settlement_date, NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(b.securities[0].detail, SecurityDetail::ReferenceOnly);
    }

    #[test]
    fn a_transaction_without_bank_reference_gets_a_stable_hashed_key() {
        let body = r#"{"account_id":"BA-1","transactions":[{"transaction_id":null,"booking_date":"2026-11-02","value_date":null,
            "trade_date":null,"settlement_date":null,"type":"fee","bank_code":"FEE","amount":"5.00","direction":"debit",
            "currency":"CHF","security":null,"quantity":null,"price":null,"fees":null,"status":"booked","counterparty":null,"description":"Fee"}]}"#;
        let a = parse(DocumentKind::Transactions, "bank_a", "tx", body.as_bytes()).unwrap();
        let b = parse(DocumentKind::Transactions, "bank_a", "tx", body.as_bytes()).unwrap();
        assert_eq!(a.transactions[0].natural_key, b.transactions[0].natural_key);
        assert!(a.transactions[0].natural_key.starts_with("h:"));
    }

    #[test]
    fn a_hashed_key_does_not_depend_on_the_page_position_but_counts_twins() {
        let fee = r#"{"transaction_id":null,"booking_date":"2026-11-02","value_date":null,
            "trade_date":null,"settlement_date":null,"type":"fee","bank_code":"FEE","amount":"5.00","direction":"debit",
            "currency":"CHF","security":null,"quantity":null,"price":null,"fees":null,"status":"booked","counterparty":null,"description":"Fee"}"#;
        let other = fee.replace("5.00", "7.00");
        let page = |items: &[&str]| {
            format!(
                r#"{{"account_id":"BA-1","transactions":[{}]}}"#,
                items.join(",")
            )
        };
        let alone = parse(
            DocumentKind::Transactions,
            "bank_a",
            "tx",
            page(&[fee]).as_bytes(),
        )
        .unwrap();
        let shifted = parse(
            DocumentKind::Transactions,
            "bank_a",
            "tx",
            page(&[&other, fee, fee]).as_bytes(),
        )
        .unwrap();
        assert_eq!(
            alone.transactions[0].natural_key,
            shifted.transactions[1].natural_key
        );
        assert_ne!(
            shifted.transactions[1].natural_key,
            shifted.transactions[2].natural_key
        );
    }
}
