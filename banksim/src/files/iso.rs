//! bank_c's ISO 20022 files: camt.053.001.08 cash statements and semt.002.001.11 holdings.
//!
//! UTF-8 XML with LF line ends, one statement per file. What each message carries:
//!
//! - **camt.053**: `Stmt/Id` `<account id>-<date>`, `ElctrncSeqNb` = day number from the start
//!   date (1-based), one page; the account by IBAN (cash accounts) or `Othr/Id` (custody
//!   accounts) with its currency and owner; balances `OPBD` and `CLBD` dated the statement day
//!   and `CLAV` on the last day. Each booked entry: `AcctSvcrRef` = the transaction id (whole:
//!   ISO references hold 35 characters), `Sts/Cd` `BOOK`, `BookgDt`, `ValDt`, the amount and
//!   `CdtDbtInd`, a bank transaction code chosen so a reader recovers the transaction type
//!   (deposits `PMNT/CNTR/CDPT`, trades `SECU/SETT/TRAD`, dividends `SECU/CUST/DVCA`, ...)
//!   with the bank's own code as `Prtry`; trade fees as charges included in the amount; the
//!   counterparty as debtor of a credit or creditor of a debit; for trades the trade and
//!   settlement dates; for trades the deal price (`RltdPric/DealPric`, a `Rate` for bonds
//!   priced in percent, else an `Amt` in the security's currency) and the quantity
//!   (`RltdQties/Qty`, `Unit` or `FaceAmt`); the security (ISIN and the bank's id) of trades
//!   and income; and the description as `AddtlNtryInf`.
//! - **semt.002**: a complete (`UpdTp` `COMP`), daily statement of the safekeeping account on
//!   the statement day. Per position: ISIN when there is one, the bank's own id (`OthrId`,
//!   proprietary type `BANK`) always and the valor when known, the name, denomination currency
//!   and CFI code, the quantity as `Unit` or `FaceAmt`, the market price as `Rate` (percent of
//!   face) or `Amt`, and holding value, accrued interest (bonds) and book value (the cost) in
//!   the account's base currency, which is also the security's; then the statement total.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{CashDay, HoldingsDay, cfi};
use crate::dataset::{SimAccount, SimPosition, SimSecurity, SimTransaction};

const CAMT053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
const SEMT002_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.11";
/// The BIC bank_c signs its statements with.
const BANK_BIC: &str = "BANKCHZCXXX";

/// An XML document written element by element, indented two spaces per level.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn new(namespace: &str) -> Xml {
        let mut out = String::with_capacity(4096);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<Document xmlns=\"{namespace}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
        );
        Xml { out, depth: 1 }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, tag: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{tag}>");
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        let _ = writeln!(self.out, "</{tag}>");
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{tag}>{}</{tag}>", escape(text));
    }

    /// `<tag Ccy="CHF">12.50</tag>`: the amount without sign.
    fn amount(&mut self, tag: &str, currency: &str, value: Decimal) {
        self.indent();
        let _ = writeln!(
            self.out,
            "<{tag} Ccy=\"{}\">{}</{tag}>",
            escape(currency),
            value.abs()
        );
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push_str("</Document>\n");
        self.out.into_bytes()
    }
}

/// Text with the five XML special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn iso_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn credit_debit(value: Decimal) -> &'static str {
    if value.is_sign_negative() && !value.is_zero() {
        "DBIT"
    } else {
        "CRDT"
    }
}

fn balance(x: &mut Xml, code: &str, currency: &str, value: Decimal, date: NaiveDate) {
    x.open("Bal");
    x.open("Tp");
    x.open("CdOrPrtry");
    x.leaf("Cd", code);
    x.close("CdOrPrtry");
    x.close("Tp");
    x.amount("Amt", currency, value);
    x.leaf("CdtDbtInd", credit_debit(value));
    x.open("Dt");
    x.leaf("Dt", &iso_date(date));
    x.close("Dt");
    x.close("Bal");
}

/// The ISO bank transaction code (domain, family, sub-family) of a transaction.
fn transaction_code(t: &SimTransaction, account: &SimAccount) -> [&'static str; 3] {
    let credit = t.direction == "credit";
    match t.kind {
        "deposit" => ["PMNT", "CNTR", "CDPT"],
        "withdrawal" => ["PMNT", "CNTR", "CWDL"],
        "transfer" if credit => ["PMNT", "RCDT", "ESCT"],
        "transfer" => ["PMNT", "ICDT", "ESCT"],
        "buy" | "sell" => ["SECU", "SETT", "TRAD"],
        "dividend" => ["SECU", "CUST", "DVCA"],
        "interest" if t.security.is_some() => ["SECU", "CUST", "INTR"],
        "interest" => ["ACMT", "MCOP", "INTR"],
        "fee" if account.kind == "custody" => ["SECU", "CUST", "CUST"],
        "fee" => ["ACMT", "MDOP", "FEES"],
        _ if credit => ["ACMT", "MCOP", "OTHR"],
        _ => ["ACMT", "MDOP", "OTHR"],
    }
}

/// `FinInstrmId`: ISIN when known, the bank's own id always, the valor when known, the name.
fn security_id(x: &mut Xml, security: &SimSecurity) {
    x.open("FinInstrmId");
    if let Some(isin) = &security.isin {
        x.leaf("ISIN", isin);
    }
    x.open("OthrId");
    x.leaf("Id", &security.bank_security_id);
    x.open("Tp");
    x.leaf("Prtry", "BANK");
    x.close("Tp");
    x.close("OthrId");
    if let Some(valor) = &security.valor {
        x.open("OthrId");
        x.leaf("Id", valor);
        x.open("Tp");
        x.leaf("Cd", "VALO");
        x.close("Tp");
        x.close("OthrId");
    }
    x.leaf("Desc", &security.name);
    x.close("FinInstrmId");
}

fn entry(x: &mut Xml, number: usize, t: &SimTransaction, account: &SimAccount) {
    let credit = t.direction == "credit";
    x.open("Ntry");
    x.leaf("NtryRef", &number.to_string());
    x.amount("Amt", t.currency, t.amount);
    x.leaf("CdtDbtInd", if credit { "CRDT" } else { "DBIT" });
    x.open("Sts");
    x.leaf("Cd", "BOOK");
    x.close("Sts");
    x.open("BookgDt");
    x.leaf("Dt", &iso_date(t.booking_date));
    x.close("BookgDt");
    x.open("ValDt");
    x.leaf("Dt", &iso_date(t.value_date.unwrap_or(t.booking_date)));
    x.close("ValDt");
    x.leaf("AcctSvcrRef", &t.transaction_id);
    let [domain, family, sub_family] = transaction_code(t, account);
    x.open("BkTxCd");
    x.open("Domn");
    x.leaf("Cd", domain);
    x.open("Fmly");
    x.leaf("Cd", family);
    x.leaf("SubFmlyCd", sub_family);
    x.close("Fmly");
    x.close("Domn");
    x.open("Prtry");
    x.leaf("Cd", t.bank_code);
    x.leaf("Issr", BANK_BIC);
    x.close("Prtry");
    x.close("BkTxCd");
    if let Some(fees) = t.fees {
        x.open("Chrgs");
        x.amount("TtlChrgsAndTaxAmt", t.currency, fees);
        x.open("Rcrd");
        x.amount("Amt", t.currency, fees);
        x.leaf("CdtDbtInd", "DBIT");
        x.leaf("ChrgInclInd", "true");
        x.close("Rcrd");
        x.close("Chrgs");
    }
    x.open("NtryDtls");
    x.open("TxDtls");
    x.open("Refs");
    x.leaf("AcctSvcrRef", &t.transaction_id);
    x.close("Refs");
    if let Some(counterparty) = &t.counterparty {
        // The counterparty paid a credit and received a debit.
        let party = if credit { "Dbtr" } else { "Cdtr" };
        x.open("RltdPties");
        x.open(party);
        x.open("Pty");
        x.leaf("Nm", counterparty);
        x.close("Pty");
        x.close(party);
        x.close("RltdPties");
    }
    if t.trade_date.is_some() || t.settlement_date.is_some() {
        x.open("RltdDts");
        if let Some(traded) = t.trade_date {
            x.leaf("TradDt", &iso_date(traded));
        }
        if let Some(settles) = t.settlement_date {
            x.leaf("IntrBkSttlmDt", &iso_date(settles));
        }
        x.close("RltdDts");
    }
    if let Some(security) = t.security.as_deref() {
        if let Some(price) = t.price {
            x.open("RltdPric");
            x.open("DealPric");
            x.open("Tp");
            x.leaf("Yldd", "false");
            x.close("Tp");
            x.open("Val");
            if security.is_priced_in_percent() {
                x.leaf("Rate", &price.to_string());
            } else {
                x.amount("Amt", security.currency, price);
            }
            x.close("Val");
            x.close("DealPric");
            x.close("RltdPric");
        }
        if let Some(quantity) = t.quantity {
            let unit = if security.quantity_type == "face_amount" {
                "FaceAmt"
            } else {
                "Unit"
            };
            x.open("RltdQties");
            x.open("Qty");
            x.leaf(unit, &quantity.abs().to_string());
            x.close("Qty");
            x.close("RltdQties");
        }
        security_id(x, security);
    }
    x.close("TxDtls");
    x.close("NtryDtls");
    if let Some(description) = &t.description {
        x.leaf("AddtlNtryInf", description);
    }
    x.close("Ntry");
}

/// The camt.053 of one account and day.
pub(super) fn camt053(day: &CashDay<'_>) -> Vec<u8> {
    let account = day.account;
    let currency = account.currency;
    let date = iso_date(day.date);
    let created = format!("{date}T23:00:00");
    let mut x = Xml::new(CAMT053_NAMESPACE);
    x.open("BkToCstmrStmt");
    x.open("GrpHdr");
    x.leaf(
        "MsgId",
        &format!("C{:08}{:05}", day.ordinal + 1, day.day + 1),
    );
    x.leaf("CreDtTm", &created);
    x.open("MsgPgntn");
    x.leaf("PgNb", "1");
    x.leaf("LastPgInd", "true");
    x.close("MsgPgntn");
    x.close("GrpHdr");
    x.open("Stmt");
    x.leaf("Id", &format!("{}-{date}", account.account_id));
    x.open("StmtPgntn");
    x.leaf("PgNb", "1");
    x.leaf("LastPgInd", "true");
    x.close("StmtPgntn");
    x.leaf("ElctrncSeqNb", &(u64::from(day.day) + 1).to_string());
    x.leaf("CreDtTm", &created);
    x.open("FrToDt");
    x.leaf("FrDtTm", &format!("{date}T00:00:00"));
    x.leaf("ToDtTm", &format!("{date}T23:59:59"));
    x.close("FrToDt");
    x.open("Acct");
    x.open("Id");
    match &account.iban {
        Some(iban) => x.leaf("IBAN", iban),
        None => {
            x.open("Othr");
            x.leaf("Id", &account.account_id);
            x.close("Othr");
        }
    }
    x.close("Id");
    x.leaf("Ccy", currency);
    x.open("Ownr");
    x.leaf("Nm", &account.client_name);
    x.close("Ownr");
    x.open("Svcr");
    x.open("FinInstnId");
    x.leaf("BICFI", BANK_BIC);
    x.close("FinInstnId");
    x.close("Svcr");
    x.close("Acct");
    balance(&mut x, "OPBD", currency, day.opening, day.date);
    balance(&mut x, "CLBD", currency, day.closing, day.date);
    if let Some(available) = day.available {
        balance(&mut x, "CLAV", currency, available, day.date);
    }
    for (i, t) in day.entries.iter().enumerate() {
        entry(&mut x, i + 1, t, account);
    }
    x.close("Stmt");
    x.close("BkToCstmrStmt");
    x.finish()
}

/// An amount with its sign flag (`Sgn` true for plus).
fn signed_amount(x: &mut Xml, tag: &str, currency: &str, value: Decimal) {
    x.open(tag);
    x.amount("Amt", currency, value);
    let plus = !value.is_sign_negative() || value.is_zero();
    x.leaf("Sgn", if plus { "true" } else { "false" });
    x.close(tag);
}

fn position(x: &mut Xml, p: &SimPosition, date: NaiveDate) {
    let security = &p.security;
    x.open("BalForAcct");
    security_id(x, security);
    x.open("FinInstrmAttrbts");
    x.leaf("DnmtnCcy", security.currency);
    x.open("ClssfctnTp");
    x.leaf("ClssfctnFinInstrm", cfi(security.asset_class));
    x.close("ClssfctnTp");
    x.close("FinInstrmAttrbts");
    x.open("AggtBal");
    x.open("Qty");
    x.open("Qty");
    x.open("Qty");
    let unit = if security.quantity_type == "face_amount" {
        "FaceAmt"
    } else {
        "Unit"
    };
    x.leaf(unit, &p.quantity.abs().to_string());
    x.close("Qty");
    x.close("Qty");
    x.close("Qty");
    let short = p.quantity.is_sign_negative() && !p.quantity.is_zero();
    x.leaf("ShrtLngInd", if short { "SHOR" } else { "LONG" });
    x.close("AggtBal");
    x.open("PricDtls");
    x.open("Tp");
    x.leaf("Cd", "MRKT");
    x.close("Tp");
    x.open("Val");
    if security.is_priced_in_percent() {
        x.leaf("Rate", &p.price.to_string());
    } else {
        x.amount("Amt", p.price_currency, p.price);
    }
    x.close("Val");
    x.open("QtnDt");
    x.leaf("Dt", &iso_date(date));
    x.close("QtnDt");
    x.close("PricDtls");
    x.open("AcctBaseCcyAmts");
    signed_amount(x, "HldgVal", p.price_currency, p.market_value);
    if let Some(accrued) = p.accrued_interest {
        signed_amount(x, "AcrdIntrstAmt", p.price_currency, accrued);
    }
    signed_amount(x, "BookVal", p.price_currency, p.cost);
    x.close("AcctBaseCcyAmts");
    x.close("BalForAcct");
}

/// The semt.002 (complete statement of holdings) of one custody account and day.
pub(super) fn semt002(day: &HoldingsDay<'_>) -> Vec<u8> {
    let account = day.account;
    let mut x = Xml::new(SEMT002_NAMESPACE);
    x.open("SctiesBalCtdyRpt");
    x.open("Pgntn");
    x.leaf("PgNb", "1");
    x.leaf("LastPgInd", "true");
    x.close("Pgntn");
    x.open("StmtGnlDtls");
    x.leaf(
        "StmtId",
        &format!("H{:08}{:05}", day.ordinal + 1, day.day + 1),
    );
    x.open("StmtDtTm");
    x.leaf("Dt", &iso_date(day.date));
    x.close("StmtDtTm");
    x.open("Frqcy");
    x.leaf("Cd", "DAIL");
    x.close("Frqcy");
    x.open("UpdTp");
    x.leaf("Cd", "COMP");
    x.close("UpdTp");
    x.open("StmtBsis");
    x.leaf("Cd", "TRAD");
    x.close("StmtBsis");
    let active = if day.positions.is_empty() {
        "false"
    } else {
        "true"
    };
    x.leaf("ActvtyInd", active);
    x.leaf("AudtdInd", "false");
    x.leaf("SubAcctInd", "false");
    x.close("StmtGnlDtls");
    x.open("SfkpgAcct");
    x.leaf("Id", &account.account_id);
    x.leaf("Nm", &account.client_name);
    x.close("SfkpgAcct");
    for p in &day.positions {
        position(&mut x, p, day.date);
    }
    let total: Decimal = day.positions.iter().map(|p| p.market_value).sum();
    x.open("AcctBaseCcyTtlAmts");
    signed_amount(&mut x, "TtlHldgsValOfStmt", account.currency, total);
    x.close("AcctBaseCcyTtlAmts");
    x.close("SctiesBalCtdyRpt");
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_are_escaped() {
        assert_eq!(
            escape("JPMorgan Chase & Co <\"x'>"),
            "JPMorgan Chase &amp; Co &lt;&quot;x&apos;&gt;"
        );
        assert_eq!(escape("Genève"), "Genève");
    }
}
