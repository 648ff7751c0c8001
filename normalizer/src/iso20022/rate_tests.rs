//! The exchange rates camt and semt.002 documents state, read end to end: exact rates,
//! directions, dates and warnings (see `crate::stated_rate` and `currency_exchange`).

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use crate::domain::Currency;
use crate::model::StatedRate;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test literal is a decimal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test literal is a date")
}

/// A rate as (base, quote, rate, date).
fn rates(b: &Batch) -> Vec<(&str, &str, Decimal, NaiveDate)> {
    b.rates
        .iter()
        .map(|r| (r.base.as_str(), r.quote.as_str(), r.rate, r.date))
        .collect()
}

fn warnings(b: &Batch) -> Vec<(&str, &str)> {
    b.warnings
        .iter()
        .map(|w| (w.field.as_deref().unwrap_or(""), w.message.as_str()))
        .collect()
}

/// A camt.053.001.08 statement of a CHF account around its entries.
fn camt053(entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>
<Stmt><Id>ST-1</Id><ElctrncSeqNb>42</ElctrncSeqNb>
<Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>CHF</Ccy></Acct>
{entries}
</Stmt></BkToCstmrStmt></Document>"#
    )
}

/// A booked debit of `amount` CHF on 2026-11-20 with the given entry-level `AmtDtls` content
/// and transaction details.
fn entry(amount: &str, amount_details: &str, details: &str) -> String {
    let amount_details = if amount_details.is_empty() {
        String::new()
    } else {
        format!("<AmtDtls>{amount_details}</AmtDtls>")
    };
    format!(
        "<Ntry><Amt Ccy=\"CHF\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
         <BookgDt><Dt>2026-11-20</Dt></BookgDt><ValDt><Dt>2026-11-20</Dt></ValDt>\
         {amount_details}<NtryDtls>{details}</NtryDtls></Ntry>"
    )
}

/// One `TxDtls` with the given `AmtDtls` content.
fn detail(amount_details: &str) -> String {
    format!("<TxDtls><AmtDtls>{amount_details}</AmtDtls></TxDtls>")
}

/// An amount element (`InstdAmt`, `TxAmt`, ...) with an optional `CcyXchg`.
fn amount(element: &str, currency: &str, value: &str, exchange: &str) -> String {
    format!("<{element}><Amt Ccy=\"{currency}\">{value}</Amt>{exchange}</{element}>")
}

/// A `CcyXchg` from its leaves, each left out when empty.
fn exchange(source: &str, target: &str, unit: &str, rate: &str, quoted: &str) -> String {
    let leaf = |name: &str, v: &str| {
        if v.is_empty() {
            String::new()
        } else {
            format!("<{name}>{v}</{name}>")
        }
    };
    format!(
        "<CcyXchg>{}{}{}{}{}</CcyXchg>",
        leaf("SrcCcy", source),
        leaf("TrgtCcy", target),
        leaf("UnitCcy", unit),
        leaf("XchgRate", rate),
        leaf("QtnDt", quoted)
    )
}

fn parse53(xml: &str) -> Batch {
    parse(SourceFormat::Camt053, "bank_c", "stmt.xml", xml.as_bytes()).expect("parses")
}

#[test]
fn a_rate_written_as_iso_defines_it_is_read_as_written() {
    // 1,000 USD paid from a CHF account at 1 USD = 0.8812 CHF.
    let b = parse53(&camt053(&entry(
        "881.20",
        "",
        &detail(&format!(
            "{}{}",
            amount(
                "InstdAmt",
                "USD",
                "1000.00",
                &exchange("USD", "CHF", "USD", "0.8812", "2026-11-19T10:00:00+01:00")
            ),
            amount("TxAmt", "CHF", "881.20", "")
        )),
    )));
    assert_eq!(
        b.rates,
        [StatedRate {
            account: "CH9300762011623852957".into(),
            base: Currency::parse("USD").unwrap(),
            quote: Currency::parse("CHF").unwrap(),
            rate: dec("0.8812"),
            date: date("2026-11-19"),
            provenance: crate::model::Provenance {
                format: SourceFormat::Camt053,
                document: "stmt.xml".into(),
                position: 0,
            },
        }]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(b.transactions.len(), 1);
}

#[test]
fn amounts_that_contradict_the_unit_currency_decide_with_a_warning() {
    // The Finnish dialect: UnitCcy names the quoted currency. The amounts (1,000 USD, 881.20
    // CHF) say 1 USD = 0.8812 CHF.
    let b = parse53(&camt053(&entry(
        "881.20",
        "",
        &detail(&format!(
            "{}{}",
            amount(
                "InstdAmt",
                "USD",
                "1000.00",
                &exchange("USD", "CHF", "CHF", "0.8812", "2026-11-19")
            ),
            amount("TxAmt", "CHF", "881.20", "")
        )),
    )));
    assert_eq!(
        rates(&b),
        [("USD", "CHF", dec("0.8812"), date("2026-11-19"))]
    );
    assert_eq!(
        warnings(&b),
        [(
            "Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]/AmtDtls/InstdAmt/CcyXchg",
            "UnitCcy CHF reads XchgRate 0.8812 as 1 CHF = 0.8812 USD, but the amounts 881.20 \
             CHF and 1000.00 USD are converted at 1 USD = 0.8812 CHF: read as the amounts say"
        )]
    );
    assert!(b.warnings[0].line.is_some());
}

#[test]
fn the_entry_amount_is_evidence_for_an_only_detail_but_not_for_a_batch() {
    let dialect = || {
        amount(
            "InstdAmt",
            "USD",
            "500.00",
            &exchange("USD", "CHF", "CHF", "0.8812", "2026-11-19"),
        )
    };
    // One detail: the entry's 440.60 CHF is its conversion's, and overrides UnitCcy.
    let b = parse53(&camt053(&entry("440.60", "", &detail(&dialect()))));
    assert_eq!(
        rates(&b),
        [("USD", "CHF", dec("0.8812"), date("2026-11-19"))]
    );
    assert_eq!(b.warnings.len(), 1);
    // Two details: the entry's 881.20 CHF is their sum, no evidence for either; without both
    // amounts ISO's definition stands: 1 CHF (the unit currency) = 0.8812 USD.
    let batch = format!("{}{}", detail(&dialect()), detail(&dialect()));
    let b = parse53(&camt053(&entry("881.20", "", &batch)));
    assert_eq!(
        rates(&b),
        [("CHF", "USD", dec("0.8812"), date("2026-11-19"))]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn an_entry_level_rate_without_unit_currency_or_quotation_date_converts_source_into_target() {
    // `Ntry/AmtDtls`, no UnitCcy: XchgRate converts the source (EUR) into the target (CHF);
    // no QtnDt: dated as the entry is booked.
    let b = parse53(&camt053(&entry(
        "932.10",
        &amount(
            "TxAmt",
            "EUR",
            "1000.00",
            &exchange("EUR", "CHF", "", "0.9321", ""),
        ),
        "",
    )));
    assert_eq!(
        rates(&b),
        [("EUR", "CHF", dec("0.9321"), date("2026-11-20"))]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    // The same written the other way round is reversed by the amounts, and said.
    let b = parse53(&camt053(&entry(
        "932.10",
        &amount(
            "TxAmt",
            "EUR",
            "1000.00",
            &exchange("CHF", "EUR", "", "0.9321", ""),
        ),
        "",
    )));
    assert_eq!(
        rates(&b),
        [("EUR", "CHF", dec("0.9321"), date("2026-11-20"))]
    );
    assert_eq!(
        warnings(&b),
        [(
            "Stmt[1]/Ntry[1]/AmtDtls/TxAmt/CcyXchg",
            "XchgRate 0.9321, the factor converting SrcCcy into TrgtCcy, reads as 1 CHF = \
             0.9321 EUR, but the amounts 932.10 CHF and 1000.00 EUR are converted at 1 EUR = \
             0.9321 CHF: read as the amounts say"
        )]
    );
}

#[test]
fn a_rate_that_does_not_read_is_a_warning_and_nothing_else_is_lost() {
    let with = |source: &str, rate: &str| {
        camt053(&entry(
            "881.20",
            "",
            &detail(&format!(
                "{}{}",
                amount(
                    "InstdAmt",
                    "USD",
                    "1000.00",
                    &exchange(source, "CHF", "USD", rate, "2026-11-19")
                ),
                amount("TxAmt", "CHF", "881.20", "")
            )),
        ))
    };
    let good = parse53(&with("USD", "0.8812"));
    for (source, rate, field, message) in [
        (
            "USD",
            "0",
            "XchgRate",
            "exchange rate '0' is not a positive decimal",
        ),
        (
            "USD",
            "-0.8812",
            "XchgRate",
            "exchange rate '-0.8812' is not a positive decimal",
        ),
        (
            "USD",
            "0,8812",
            "XchgRate",
            "'0,8812' is not a decimal number",
        ),
        (
            "US",
            "0.8812",
            "SrcCcy",
            "'US' is not an ISO 4217 currency code",
        ),
    ] {
        let b = parse53(&with(source, rate));
        assert!(b.rates.is_empty(), "{rate}");
        assert_eq!(
            warnings(&b),
            [(
                format!("Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]/AmtDtls/InstdAmt/CcyXchg/{field}")
                    .as_str(),
                format!("{message}: no exchange rate is read from it").as_str()
            )],
            "{rate}"
        );
        assert_eq!(b.transactions, good.transactions);
        assert_eq!(b.statements, good.statements);
        assert_eq!(b.accounts, good.accounts);
    }
    // A quotation date that is no date only loses the date.
    let b = parse53(&with("USD", "0.8812").replace("2026-11-19", "19.11.2026"));
    assert_eq!(
        rates(&b),
        [("USD", "CHF", dec("0.8812"), date("2026-11-20"))]
    );
    assert_eq!(
        warnings(&b)[0].1,
        "'19.11.2026' is not a date (YYYY-MM-DD) or date-time: the rate is dated with its \
         entry's booking date"
    );
}

#[test]
fn one_currency_on_both_sides_is_no_rate_and_a_repeated_rate_is_kept_once() {
    let same = exchange("CHF", "CHF", "CHF", "1", "");
    let b = parse53(&camt053(&entry(
        "100.00",
        "",
        &detail(&amount("TxAmt", "CHF", "100.00", &same)),
    )));
    assert!(b.rates.is_empty());
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    // The instructed amount and the counter value state the same rate; a second entry too.
    let x = exchange("USD", "CHF", "USD", "0.8812", "2026-11-19");
    let one = entry(
        "881.20",
        "",
        &detail(&format!(
            "{}{}",
            amount("InstdAmt", "USD", "1000.00", &x),
            amount("CntrValAmt", "CHF", "881.20", &x)
        )),
    );
    let b = parse53(&camt053(&format!("{one}{one}")));
    assert_eq!(
        rates(&b),
        [("USD", "CHF", dec("0.8812"), date("2026-11-19"))]
    );
    assert_eq!(b.transactions.len(), 2);
    // The streaming reader emits the same, once.
    let mut streamed = Vec::new();
    read_records(
        SourceFormat::Camt053,
        "bank_c",
        "stmt.xml",
        camt053(&format!("{one}{one}")).as_bytes(),
        |r| {
            if let Record::Rate(r) = r {
                streamed.push(r);
            }
        },
    )
    .expect("parses");
    assert_eq!(streamed, b.rates);
}

#[test]
fn a_version_01_statement_states_its_rates_in_transaction_details_of_the_entry() {
    // `.001.01`: `TxDtls` directly in the entry, `AmtDtls` in it.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.01">
<BkToCstmrStmtV01><GrpHdr><MsgId>M1</MsgId><CreDtTm>2009-10-30T12:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><CreDtTm>2009-10-30T12:00:00</CreDtTm>
<Acct><Id><PrtryAcct><Id>4711</Id></PrtryAcct></Id><Ccy>EUR</Ccy></Acct>
<Ntry><Amt Ccy="EUR">500.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2009-10-30</Dt></BookgDt>
<TxDtls><AmtDtls><InstdAmt><Amt Ccy="JPY">79255</Amt><CcyXchg><SrcCcy>JPY</SrcCcy>
<TrgtCcy>EUR</TrgtCcy><UnitCcy>EUR</UnitCcy><XchgRate>158.51</XchgRate></CcyXchg></InstdAmt>
</AmtDtls></TxDtls></Ntry>
</Stmt></BkToCstmrStmtV01></Document>"#;
    let b = parse53(xml);
    // ISO's reading (1 EUR = 158.51 JPY) and the amounts (79,255 JPY, 500 EUR) agree.
    assert_eq!(
        rates(&b),
        [("EUR", "JPY", dec("158.51"), date("2009-10-30"))]
    );
    assert_eq!(b.rates[0].account, "4711");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

/// A semt.002.001.11 statement of a CHF account, dated 2026-11-20, around one balance.
fn semt002(balance: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11">
<SctiesBalCtdyRpt><Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn>
<StmtGnlDtls><StmtId>H1</StmtId><StmtDtTm><Dt>2026-11-20</Dt></StmtDtTm><UpdTp><Cd>COMP</Cd></UpdTp><ActvtyInd>true</ActvtyInd></StmtGnlDtls>
<SfkpgAcct><Id>CUST-778341</Id></SfkpgAcct>
<BalForAcct><FinInstrmId><ISIN>US0378331005</ISIN></FinInstrmId>
<AggtBal><Qty><Qty><Qty><Unit>100</Unit></Qty></Qty></Qty></AggtBal>
<PricDtls><Tp><Cd>MRKT</Cd></Tp><Val><Amt Ccy="USD">190.50</Amt></Val></PricDtls>
{balance}
</BalForAcct>
</SctiesBalCtdyRpt></Document>"#
    )
}

fn fx(unit: &str, quoted: &str, rate: &str, quoted_on: &str) -> String {
    let date = if quoted_on.is_empty() {
        String::new()
    } else {
        format!("<QtnDt>{quoted_on}</QtnDt>")
    };
    format!(
        "<FXDtls><UnitCcy>{unit}</UnitCcy><QtdCcy>{quoted}</QtdCcy><XchgRate>{rate}</XchgRate>{date}</FXDtls>"
    )
}

const VALUES: &str = "<AcctBaseCcyAmts><HldgVal><Amt Ccy=\"CHF\">16883.52</Amt><Sgn>true</Sgn></HldgVal></AcctBaseCcyAmts>\
     <InstrmCcyAmts><HldgVal><Amt Ccy=\"USD\">19050.00</Amt><Sgn>true</Sgn></HldgVal></InstrmCcyAmts>";

fn parse_semt(xml: &str) -> Batch {
    parse(SourceFormat::Semt002, "bank_c", "hld.xml", xml.as_bytes()).expect("parses")
}

#[test]
fn a_semt_balance_states_its_rate_as_unit_and_quoted_currency() {
    let b = parse_semt(&semt002(&format!(
        "{}{VALUES}",
        fx("USD", "CHF", "0.88628", "2026-11-19T17:00:00")
    )));
    assert_eq!(
        b.rates,
        [StatedRate {
            account: "CUST-778341".into(),
            base: Currency::parse("USD").unwrap(),
            quote: Currency::parse("CHF").unwrap(),
            rate: dec("0.88628"),
            date: date("2026-11-19"),
            provenance: crate::model::Provenance {
                format: SourceFormat::Semt002,
                document: "hld.xml".into(),
                position: 0,
            },
        }]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(b.positions[0].market_value, Some(dec("19050.00")));
}

#[test]
fn semt_values_in_both_currencies_overrule_a_contradicting_unit_currency() {
    let b = parse_semt(&semt002(&format!(
        "{}{VALUES}",
        fx("CHF", "USD", "0.88628", "")
    )));
    // No QtnDt: the statement date.
    assert_eq!(
        rates(&b),
        [("USD", "CHF", dec("0.88628"), date("2026-11-20"))]
    );
    assert_eq!(
        warnings(&b),
        [(
            "BalForAcct[1]/FXDtls",
            "UnitCcy CHF reads XchgRate 0.88628 as 1 CHF = 0.88628 USD, but the balance's \
             values 16883.52 CHF and 19050.00 USD are converted at 1 USD = 0.88628 CHF: read \
             as the values say"
        )]
    );
    // Without values in both currencies the definition stands: 1 CHF = 1.1283 USD.
    let b = parse_semt(&semt002(&fx("CHF", "USD", "1.1283", "")));
    assert_eq!(
        rates(&b),
        [("CHF", "USD", dec("1.1283"), date("2026-11-20"))]
    );
    assert!(
        !b.warnings.iter().any(|w| w.message.contains("XchgRate")),
        "{:?}",
        b.warnings
    );
}

#[test]
fn a_semt_rate_that_does_not_read_is_a_warning_and_the_position_still_loads() {
    let b = parse_semt(&semt002(&format!("{}{VALUES}", fx("USD", "CHF", "0", ""))));
    assert!(b.rates.is_empty());
    assert_eq!(b.positions.len(), 1);
    assert_eq!(b.positions[0].market_value, Some(dec("19050.00")));
    assert_eq!(
        warnings(&b),
        [(
            "BalForAcct[1]/FXDtls/XchgRate",
            "exchange rate '0' is not a positive decimal: no exchange rate is read from it"
        )]
    );
}

#[test]
fn the_old_semt_layout_repeats_its_holding_value_per_currency() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.02">
<CtdyStmtOfHldgsV02>
<StmtGnlDtls><Ref>H2</Ref><StmtDtTm><Dt>2026-11-21</Dt></StmtDtTm><UpdTp><StmtUpdTpAsCd>DELT</StmtUpdTpAsCd></UpdTp><ActvtyInd>true</ActvtyInd></StmtGnlDtls>
<AcctDtls><Id><SmplId><Prtry><Id>CUST-778341</Id></Prtry></SmplId></Id><FngbInd>true</FngbInd></AcctDtls>
<BalForAcct>
<AggtQty><Qty><Unit>100</Unit></Qty></AggtQty>
<HldgVal Ccy="EUR">17526.00</HldgVal><HldgVal Ccy="USD">19050.00</HldgVal>
<FinInstrmDtls><Id><ISIN>US0378331005</ISIN></Id><Nm>Apple</Nm></FinInstrmDtls>
<FXDtls><UnitCcy>EUR</UnitCcy><QtdCcy>USD</QtdCcy><XchgRate>1.0869565</XchgRate><QtnDt>2026-11-21T16:00:00</QtnDt></FXDtls>
</BalForAcct>
</CtdyStmtOfHldgsV02></Document>"#;
    let b = parse_semt(xml);
    assert_eq!(
        rates(&b),
        [("EUR", "USD", dec("1.0869565"), date("2026-11-21"))]
    );
    assert_eq!(b.rates[0].account, "CUST-778341");
    assert!(
        !b.warnings
            .iter()
            .any(|w| w.field.as_deref() == Some("BalForAcct[1]/FXDtls")),
        "{:?}",
        b.warnings
    );
}
