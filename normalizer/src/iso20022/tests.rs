//! Unit tests of the ISO 20022 readers over small hand-written documents.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use crate::model::{BalanceKind, Direction, PriceType, TransactionStatus, TransactionType};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test literal is a decimal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test literal is a date")
}

/// A camt.053 of the given version around `body` (balances and entries of one statement).
fn camt053(version: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">
<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>
<Stmt><Id>ST-1</Id><ElctrncSeqNb>42</ElctrncSeqNb><LglSeqNb>7</LglSeqNb>
<Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>CHF</Ccy></Acct>
{body}
</Stmt></BkToCstmrStmt></Document>"#
    )
}

fn bal(code: &str, amount: &str, cd: &str, day: &str) -> String {
    format!(
        "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CHF\">{amount}</Amt>\
         <CdtDbtInd>{cd}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
    )
}

fn ntry(amount: &str, cd: &str, sts: &str, extra: &str) -> String {
    format!(
        "<Ntry><Amt Ccy=\"CHF\">{amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd>{sts}\
         <BookgDt><Dt>2026-11-20</Dt></BookgDt><ValDt><Dt>2026-11-21</Dt></ValDt>{extra}</Ntry>"
    )
}

fn parse53(xml: &str) -> Batch {
    parse(SourceFormat::Camt053, "bank_c", "stmt.xml", xml.as_bytes()).expect("parses")
}

fn entries(format: SourceFormat, xml: &str) -> Vec<CashEntry> {
    let mut out = Vec::new();
    read_records(format, "bank_c", "doc", xml.as_bytes(), |r| {
        if let Record::Entry(e) = r {
            out.push(*e);
        }
    })
    .expect("parses");
    out
}

#[test]
fn status_is_read_in_the_old_text_form_and_the_v08_code_form() {
    let old = parse53(&camt053(
        "04",
        &ntry("10.00", "CRDT", "<Sts>BOOK</Sts>", ""),
    ));
    let new = parse53(&camt053(
        "08",
        &ntry("10.00", "CRDT", "<Sts><Cd>PDNG</Cd></Sts>", ""),
    ));
    assert_eq!(old.transactions[0].status, TransactionStatus::Booked);
    assert_eq!(new.transactions[0].status, TransactionStatus::Pending);
    assert_eq!(old.statements[0].entry_count, 1);
    assert_eq!(
        new.statements[0].entry_count, 0,
        "pending is not in the total"
    );
}

#[test]
fn booking_and_value_dates_stay_apart_and_a_date_time_keeps_its_local_date() {
    let e = "<Ntry><Amt Ccy=\"CHF\">1</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><DtTm>2026-11-20T23:30:00-05:00</DtTm></BookgDt><ValDt><Dt>2026-11-23</Dt></ValDt></Ntry>";
    let b = parse53(&camt053("02", e));
    let t = &b.transactions[0];
    assert_eq!(t.booking_date, date("2026-11-20"));
    assert_eq!(t.value_date, Some(date("2026-11-23")));
    assert_eq!(t.signed_amount(), dec("-1"));
}

#[test]
fn a_reversal_keeps_the_effective_direction_and_takes_the_original_counterparty() {
    // A credit that was booked in error is reversed: ISO writes the reversal as DBIT with
    // RvslInd true. The original credit's payer (Dbtr) is the counterparty.
    let details = "<NtryDtls><TxDtls><RltdPties><Dbtr><Nm>Original Payer</Nm></Dbtr>\
                   <Cdtr><Nm>Account Owner</Nm></Cdtr></RltdPties></TxDtls></NtryDtls>";
    let xml = camt053(
        "02",
        &ntry(
            "250.00",
            "DBIT",
            "<RvslInd>true</RvslInd><Sts>BOOK</Sts>",
            details,
        ),
    );
    let t = &parse53(&xml).transactions[0];
    assert_eq!(t.direction, Direction::Debit);
    assert!(t.reversal);
    assert_eq!(t.signed_amount(), dec("-250.00"));
    assert_eq!(t.counterparty.as_deref(), Some("Original Payer"));
}

#[test]
fn a_batch_entry_is_one_transaction_with_its_details_counted_and_charges_summed() {
    let tx = |name: &str, e2e: &str, fee: &str| {
        format!(
            "<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>\
             <Chrgs><Rcrd><Amt Ccy=\"CHF\">{fee}</Amt></Rcrd></Chrgs>\
             <RltdPties><Dbtr><Pty><Nm>{name}</Nm></Pty></Dbtr></RltdPties>\
             <RmtInf><Ustrd>Invoice {e2e}</Ustrd></RmtInf></TxDtls>"
        )
    };
    let details = format!(
        "<NtryDtls><Btch><NbOfTxs>3</NbOfTxs></Btch>{}{}{}</NtryDtls>",
        tx("A AG", "E1", "0.50"),
        tx("B AG", "E2", "0.50"),
        tx("C AG", "E3", "1.00")
    );
    let xml = camt053(
        "08",
        &ntry(
            "300.00",
            "CRDT",
            "<Sts><Cd>BOOK</Cd></Sts><AcctSvcrRef>BATCH-1</AcctSvcrRef>",
            &details,
        ),
    );
    let e = entries(SourceFormat::Camt053, &xml);
    assert_eq!(e.len(), 1, "one booking, not three");
    let t = &e[0].transaction;
    assert_eq!(t.natural_key, "ref:BATCH-1");
    assert_eq!(t.fees, Some(dec("2.00")));
    assert_eq!(
        t.counterparty, None,
        "three payers: none of them is the counterparty"
    );
    assert_eq!(
        t.description.as_deref(),
        Some("Invoice E1 / Invoice E2 / Invoice E3")
    );
    assert_eq!(e[0].references.transaction_count, 3);
    assert_eq!(
        e[0].references.end_to_end_id, None,
        "per-payment ids only for one payment"
    );
}

#[test]
fn entry_charges_in_the_v02_list_form_and_the_total_form_are_fees() {
    let v02 =
        "<Chrgs><Amt Ccy=\"CHF\">1.20</Amt></Chrgs><Chrgs><Amt Ccy=\"CHF\">0.80</Amt></Chrgs>";
    let v04 = "<Chrgs><TtlChrgsAndTaxAmt Ccy=\"CHF\">3.10</TtlChrgsAndTaxAmt>\
               <Rcrd><Amt Ccy=\"CHF\">3.10</Amt></Rcrd></Chrgs>";
    let a = parse53(&camt053("02", &ntry("100", "DBIT", "<Sts>BOOK</Sts>", v02)));
    let b = parse53(&camt053("04", &ntry("100", "DBIT", "<Sts>BOOK</Sts>", v04)));
    assert_eq!(a.transactions[0].fees, Some(dec("2.00")));
    assert_eq!(b.transactions[0].fees, Some(dec("3.10")));
}

#[test]
fn balances_map_to_kinds_and_the_summary_adds_up() {
    let body = [
        bal("PRCD", "900.00", "CRDT", "2026-11-19"),
        bal("OPBD", "900.00", "CRDT", "2026-11-20"),
        bal("CLBD", "850.00", "CRDT", "2026-11-20"),
        bal("CLAV", "800.00", "CRDT", "2026-11-20"),
        bal("FWAV", "700.00", "CRDT", "2026-11-23"),
        ntry("100.00", "DBIT", "<Sts>BOOK</Sts>", ""),
        ntry("50.00", "CRDT", "<Sts>BOOK</Sts>", ""),
        ntry("999.00", "CRDT", "<Sts>PDNG</Sts>", ""),
    ]
    .concat();
    let b = parse53(&camt053("02", &body));
    let kinds: Vec<_> = b.balances.iter().map(|x| (x.kind, x.as_of)).collect();
    assert_eq!(
        kinds,
        [
            // PRCD is the previous day's closing, stored as such.
            (BalanceKind::Closing, date("2026-11-19")),
            (BalanceKind::Opening, date("2026-11-20")),
            (BalanceKind::Closing, date("2026-11-20")),
            (BalanceKind::Available, date("2026-11-20")),
            (BalanceKind::Forward, date("2026-11-23")),
        ]
    );
    let s = &b.statements[0];
    assert_eq!(s.statement_number, Some(42), "ElctrncSeqNb before LglSeqNb");
    assert_eq!(s.reference.as_deref(), Some("ST-1"));
    assert_eq!(s.opening.as_ref().map(|o| o.amount), Some(dec("900.00")));
    assert_eq!(s.closing.as_ref().map(|o| o.amount), Some(dec("850.00")));
    assert_eq!((s.entries_total, s.entry_count), (dec("-50"), 2));
    assert!(s.last_page && s.page_number.is_none());
    let account = &b.accounts[0];
    assert_eq!(account.bank_account_id, "CH9300762011623852957");
    assert_eq!(
        account.iban.as_ref().map(|i| i.as_str()),
        Some("CH9300762011623852957")
    );
}

#[test]
fn previous_closing_opens_the_summary_when_there_is_no_opening() {
    let body = [
        bal("PRCD", "10.00", "DBIT", "2026-11-19"),
        bal("CLBD", "5.00", "CRDT", "2026-11-20"),
        ntry("15.00", "CRDT", "<Sts>BOOK</Sts>", ""),
    ]
    .concat();
    let s = &parse53(&camt053("02", &body)).statements[0];
    let o = s.opening.as_ref().expect("opening from PRCD");
    assert_eq!(
        (o.amount, o.date, o.intermediate),
        (dec("-10.00"), date("2026-11-19"), false)
    );
}

#[test]
fn interim_balances_only_feed_the_summary_marked_intermediate() {
    let page = [
        "<StmtPgntn><PgNb>2</PgNb><LastPgInd>false</LastPgInd></StmtPgntn>".to_owned(),
        bal("ITBD", "100.00", "CRDT", "2026-11-20"),
        bal("ITBD", "130.00", "CRDT", "2026-11-20"),
        ntry("30.00", "CRDT", "<Sts>BOOK</Sts>", ""),
    ]
    .concat();
    // (The schema puts the pagination before Acct; the reader does not depend on the order.)
    let xml = camt053("02", &page);
    let b = parse53(&xml);
    assert!(b.balances.is_empty(), "no canonical balance from ITBD");
    let s = &b.statements[0];
    assert_eq!((s.page_number, s.last_page), (Some(2), false));
    let (o, c) = (s.opening.as_ref().unwrap(), s.closing.as_ref().unwrap());
    assert!(o.intermediate && c.intermediate);
    assert_eq!(o.amount + s.entries_total, c.amount);

    let intm = "<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry><SubTp><Cd>INTM</Cd></SubTp></Tp>\
                <Amt Ccy=\"CHF\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>";
    let b = parse53(&camt053("04", intm));
    assert!(b.statements[0].opening.as_ref().unwrap().intermediate);
    assert!(b.balances.is_empty());
}

#[test]
fn entries_without_reference_get_stable_hashed_keys_that_count_twins_not_positions() {
    let fee = ntry(
        "5.00",
        "DBIT",
        "<Sts>BOOK</Sts>",
        "<AddtlNtryInf>Fee</AddtlNtryInf>",
    );
    let other = ntry(
        "7.00",
        "DBIT",
        "<Sts>BOOK</Sts>",
        "<AddtlNtryInf>Fee</AddtlNtryInf>",
    );
    let alone = parse53(&camt053("02", &fee));
    let shifted = parse53(&camt053("02", &[other, fee.clone(), fee].concat()));
    let k = |b: &Batch, i: usize| b.transactions[i].natural_key.clone();
    assert!(k(&alone, 0).starts_with("h:"));
    assert_eq!(k(&alone, 0), k(&shifted, 1));
    assert_ne!(k(&shifted, 1), k(&shifted, 2));
    assert_eq!(
        k(
            &parse53(&camt053(
                "02",
                &[ntry(
                    "5.00",
                    "DBIT",
                    "<Sts>BOOK</Sts>",
                    "<AddtlNtryInf>Fee</AddtlNtryInf>"
                )]
                .concat()
            )),
            0
        ),
        k(&alone, 0),
        "deterministic"
    );
}

#[test]
fn a_bad_amount_is_refused_with_its_path_and_line() {
    let body = [
        ntry("1.00", "CRDT", "<Sts>BOOK</Sts>", ""),
        ntry("1,00", "CRDT", "<Sts>BOOK</Sts>", ""),
    ]
    .join("\n");
    let e = parse(
        SourceFormat::Camt053,
        "bank_c",
        "stmt.xml",
        camt053("02", &body).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("Stmt[1]/Ntry[2]/Amt"));
    assert_eq!(e.line, Some(7));
    assert!(e.reason.contains("'1,00'"), "{e}");
    assert!(e.to_string().starts_with("stmt.xml, line 7, column"), "{e}");
}

#[test]
fn an_amount_without_currency_or_an_unknown_status_is_refused() {
    let no_ccy = camt053("02", &ntry("1", "CRDT", "<Sts>BOOK</Sts>", ""))
        .replace("<Amt Ccy=\"CHF\">1</Amt>", "<Amt>1</Amt>");
    let e = parse(SourceFormat::Camt053, "c", "d", no_ccy.as_bytes()).unwrap_err();
    assert!(e.reason.contains("Ccy"), "{e}");
    let bad = camt053("02", &ntry("1", "CRDT", "<Sts>XXXX</Sts>", ""));
    let e = parse(SourceFormat::Camt053, "c", "d", bad.as_bytes()).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("Stmt[1]/Ntry[1]/Sts"));
}

#[test]
fn a_truncated_file_is_refused_not_half_read() {
    let xml = camt053("02", &ntry("1", "CRDT", "<Sts>BOOK</Sts>", ""));
    let cut = &xml.as_bytes()[..xml.len() - 40];
    let e = parse(SourceFormat::Camt053, "c", "d", cut).unwrap_err();
    assert!(
        e.reason.contains("truncated") || e.reason.contains("malformed"),
        "{e}"
    );
    assert!(e.line.is_some());
    let cut = &xml.as_bytes()[..xml.find("</BkToCstmrStmt>").expect("closing tag")];
    let e = parse(SourceFormat::Camt053, "c", "d", cut).unwrap_err();
    assert!(e.reason.contains("truncated"), "{e}");
}

#[test]
fn latin1_bom_prefixes_and_crlf_are_read() {
    let xml = camt053(
        "02",
        &ntry(
            "1",
            "CRDT",
            "<Sts>BOOK</Sts>",
            "<AddtlNtryInf>Überweisung Müller</AddtlNtryInf>",
        ),
    )
    .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
    .replace("<Document xmlns=", "<c:Document xmlns:c=")
    .replace("\n", "\r\n");
    // Prefix every element with c: (the namespace is bound to the prefix).
    let mut prefixed = String::new();
    let mut chars = xml.chars().peekable();
    while let Some(ch) = chars.next() {
        prefixed.push(ch);
        if ch == '<' {
            match chars.peek() {
                Some('/') => {
                    prefixed.push('/');
                    chars.next();
                    if chars.peek() != Some(&'c') {
                        prefixed.push_str("c:");
                    }
                }
                Some('?') | Some('c') => {}
                _ => prefixed.push_str("c:"),
            }
        }
    }
    let prefixed = prefixed.replace("c:c:", "c:");
    let latin1: Vec<u8> = prefixed
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1 text"))
        .collect();
    let b = parse(SourceFormat::Camt053, "c", "d", &latin1).expect("parses");
    assert_eq!(
        b.transactions[0].description.as_deref(),
        Some("Überweisung Müller")
    );
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(camt053("02", "").as_bytes());
    assert!(parse(SourceFormat::Camt053, "c", "d", &bom).is_ok());
}

#[test]
fn a_notification_listed_as_a_statement_is_read_as_a_notification_with_a_warning() {
    let xml = camt053("02", &ntry("1", "CRDT", "<Sts>BOOK</Sts>", ""))
        .replace("camt.053", "camt.054")
        .replace("BkToCstmrStmt", "BkToCstmrDbtCdtNtfctn")
        .replace("<Stmt>", "<Ntfctn>")
        .replace("</Stmt>", "</Ntfctn>");
    let b = parse(SourceFormat::Camt053, "c", "d", xml.as_bytes()).expect("parses");
    assert_eq!(b.transactions[0].provenance.format, SourceFormat::Camt054);
    assert!(
        b.warnings
            .iter()
            .any(|w| w.message.contains("listed as camt053"))
    );
    let e = parse(SourceFormat::Semt002, "c", "d", xml.as_bytes()).unwrap_err();
    assert!(e.reason.contains("no semt.002 message"), "{e}");
}

#[test]
fn an_application_header_envelope_and_several_messages_are_read() {
    let doc = |id: &str| {
        camt053("08", &ntry("1", "CRDT", "<Sts><Cd>BOOK</Cd></Sts>", ""))
            .replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")
            .replace("ST-1", id)
    };
    let xml = format!(
        "<?xml version=\"1.0\"?><Envelope><AppHdr xmlns=\"urn:iso:std:iso:20022:tech:xsd:head.001.001.02\">\
         <Fr><FIId><FinInstnId><BICFI>AAAACHZZ</BICFI></FinInstnId></FIId></Fr><BizMsgIdr>B1</BizMsgIdr>\
         <MsgDefIdr>camt.053.001.08</MsgDefIdr><CreDt>2026-11-20T22:00:00Z</CreDt></AppHdr>{}{}</Envelope>",
        doc("A"),
        doc("B")
    );
    assert_eq!(detect(xml.as_bytes()), Some(SourceFormat::Camt053));
    let b = parse(SourceFormat::Camt053, "c", "d", xml.as_bytes()).expect("parses");
    let refs: Vec<_> = b.statements.iter().map(|s| s.reference.clone()).collect();
    assert_eq!(refs, [Some("A".to_owned()), Some("B".to_owned())]);
    assert_eq!(
        b.accounts.len(),
        1,
        "one account record per account in a batch"
    );
    assert_eq!(b.transactions[1].provenance.position, 1);
}

#[test]
fn detect_reads_the_namespace_or_the_root_element() {
    let ns =
        |m: &str| format!("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:{m}\"><X/></Document>");
    assert_eq!(
        detect(ns("camt.052.001.02").as_bytes()),
        Some(SourceFormat::Camt052)
    );
    assert_eq!(
        detect(ns("camt.053.001.13").as_bytes()),
        Some(SourceFormat::Camt053)
    );
    assert_eq!(
        detect(ns("camt.054.001.08").as_bytes()),
        Some(SourceFormat::Camt054)
    );
    assert_eq!(
        detect(ns("semt.002.001.11").as_bytes()),
        Some(SourceFormat::Semt002)
    );
    assert_eq!(detect(ns("pain.001.001.09").as_bytes()), None);
    assert_eq!(
        detect(b"<Document><BkToCstmrAcctRpt></BkToCstmrAcctRpt></Document>"),
        Some(SourceFormat::Camt052)
    );
    assert_eq!(detect(b":20:STATEMENT\r\n:25:123"), None);
}

#[test]
fn hostile_nesting_and_huge_text_are_refused_without_growing() {
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let e = parse(SourceFormat::Camt053, "c", "d", deep.as_bytes()).unwrap_err();
    assert!(e.reason.contains("nest"), "{e}");
    let huge = camt053(
        "02",
        &ntry(
            "1",
            "CRDT",
            "<Sts>BOOK</Sts>",
            &format!("<AddtlNtryInf>{}</AddtlNtryInf>", "x".repeat(200_000)),
        ),
    );
    let e = parse(SourceFormat::Camt053, "c", "d", huge.as_bytes()).unwrap_err();
    assert!(e.reason.contains("longer than"), "{e}");
}

#[test]
fn an_entry_with_a_security_references_it_by_isin() {
    let details = "<NtryDtls><TxDtls><FinInstrmId><ISIN>US0378331005</ISIN></FinInstrmId></TxDtls></NtryDtls>\
                   <BkTxCd><Domn><Cd>SECU</Cd><Fmly><Cd>CUST</Cd><SubFmlyCd>DVCA</SubFmlyCd></Fmly></Domn></BkTxCd>";
    // BkTxCd belongs before NtryDtls in the schema; the reader does not depend on the order.
    let b = parse53(&camt053(
        "02",
        &ntry("12.00", "CRDT", "<Sts>BOOK</Sts>", details),
    ));
    let t = &b.transactions[0];
    assert_eq!(t.kind, TransactionType::Dividend);
    assert_eq!(
        t.security.as_ref().map(|k| k.as_str()),
        Some("isin:US0378331005")
    );
    assert_eq!(b.securities.len(), 1);
    let bad = camt053("02", &ntry("12.00", "CRDT", "<Sts>BOOK</Sts>", details))
        .replace("US0378331005", "US0378331006");
    let b = parse(SourceFormat::Camt053, "c", "d", bad.as_bytes())
        .expect("a bad ISIN does not sink the statement");
    let s = &b.securities[0];
    assert_eq!(
        (s.key.as_str(), s.isin.as_ref(), s.raw_isin.as_deref()),
        ("bank:c:US0378331006", None, Some("US0378331006"))
    );
    assert_eq!(
        b.transactions[0].security.as_ref().map(|k| k.as_str()),
        Some("bank:c:US0378331006")
    );
    let said: Vec<_> = b
        .warnings
        .iter()
        .map(|w| (w.field.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(
        said,
        vec![(
            Some("Stmt[1]/Ntry[1]/NtryDtls/TxDtls/FinInstrmId/ISIN"),
            "'US0378331006' is not a valid ISIN: check digit does not match: the security is \
             kept as bank:c:US0378331006, the ISIN as written in raw_isin"
        )]
    );
}

/// A securities trade's details: the instrument, its quantity and deal price.
const TRADE_V02: &str = "<BkTxCd><Domn><Cd>SECU</Cd><Fmly><Cd>SETT</Cd><SubFmlyCd>TRAD</SubFmlyCd></Fmly></Domn></BkTxCd>\
    <NtryDtls><TxDtls><Refs><AcctSvcrRef>T-20261120-7</AcctSvcrRef></Refs>\
    <RltdPric><DealPric><Tp><ValTp>PARV</ValTp></Tp><Val><Amt Ccy=\"CHF\">245.30</Amt></Val></DealPric></RltdPric>\
    <RltdQties><Qty><Unit>150</Unit></Qty></RltdQties>\
    <FinInstrmId><ISIN>CH0012032048</ISIN></FinInstrmId></TxDtls></NtryDtls>";

const BOND_V08: &str = "<BkTxCd><Domn><Cd>SECU</Cd><Fmly><Cd>SETT</Cd><SubFmlyCd>TRAD</SubFmlyCd></Fmly></Domn></BkTxCd>\
    <NtryDtls><TxDtls><Refs><AcctSvcrRef>T-20261120-8</AcctSvcrRef></Refs>\
    <RltdPric><DealPric><Tp><Yldd>false</Yldd></Tp><Val><Rate>101.25</Rate></Val></DealPric></RltdPric>\
    <RltdQties><OrgnlAndCurFace><FaceAmt>50000</FaceAmt><AmtsdVal>48000</AmtsdVal></OrgnlAndCurFace></RltdQties>\
    <FinInstrmId><ISIN>XS2021832634</ISIN></FinInstrmId></TxDtls></NtryDtls>";

/// A document of one camt message (root and item element) around `body`.
fn camt(message: &str, version: &str, root: &str, item: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{message}.001.{version}">
<{root}><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>
<{item}><Id>ST-1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>CHF</Ccy></Acct>
{body}
</{item}></{root}></Document>"#
    )
}

#[test]
fn a_trade_entry_gives_its_quantity_and_deal_price_in_v02() {
    let b = parse53(&camt053(
        "02",
        &ntry("36889.62", "DBIT", "<Sts>BOOK</Sts>", TRADE_V02),
    ));
    let t = &b.transactions[0];
    assert_eq!(
        (t.kind, t.direction, t.amount),
        (TransactionType::Buy, Direction::Debit, dec("36889.62"))
    );
    assert_eq!(
        t.security.as_ref().map(|k| k.as_str()),
        Some("isin:CH0012032048")
    );
    assert_eq!(
        (t.quantity, t.price),
        (Some(dec("150")), Some(dec("245.30")))
    );
    assert_eq!(t.natural_key, "ref:T-20261120-7");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn a_bond_trade_gives_its_face_amount_and_percent_price_in_every_v08_message() {
    for (format, message, root, item) in [
        (SourceFormat::Camt052, "camt.052", "BkToCstmrAcctRpt", "Rpt"),
        (SourceFormat::Camt053, "camt.053", "BkToCstmrStmt", "Stmt"),
        (
            SourceFormat::Camt054,
            "camt.054",
            "BkToCstmrDbtCdtNtfctn",
            "Ntfctn",
        ),
    ] {
        let xml = camt(
            message,
            "08",
            root,
            item,
            &ntry("50589.06", "CRDT", "<Sts><Cd>BOOK</Cd></Sts>", BOND_V08),
        );
        let e = entries(format, &xml);
        let t = &e[0].transaction;
        assert_eq!(t.kind, TransactionType::Sell, "{message}");
        assert_eq!(
            t.security.as_ref().map(|k| k.as_str()),
            Some("isin:XS2021832634"),
            "{message}"
        );
        // The original face amount, not the amortised value; a rate is a percent price.
        assert_eq!(
            (t.quantity, t.price),
            (Some(dec("50000")), Some(dec("101.25"))),
            "{message}"
        );
    }
}

#[test]
fn a_yield_is_no_price_and_a_charge_count_is_no_securities_quantity() {
    let yielded = TRADE_V02.replace(
        "<Tp><ValTp>PARV</ValTp></Tp><Val><Amt Ccy=\"CHF\">245.30</Amt></Val>",
        "<Tp><Yldd>true</Yldd></Tp><Val><Rate>3.125</Rate></Val>",
    );
    let b = parse53(&camt053(
        "02",
        &ntry("36889.62", "DBIT", "<Sts>BOOK</Sts>", &yielded),
    ));
    assert_eq!(
        (b.transactions[0].quantity, b.transactions[0].price),
        (Some(dec("150")), None)
    );
    assert_eq!(b.warnings.len(), 1);
    assert_eq!(
        b.warnings[0].field.as_deref(),
        Some("Stmt[1]/Ntry[1]/NtryDtls/TxDtls/RltdPric/DealPric")
    );
    assert_eq!(
        b.warnings[0].message,
        "the deal price is a yield, not a price: left out"
    );

    // A payment charge reporting how many payments it covers (as the Finnish sample does).
    let charge = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>CHRG</SubFmlyCd></Fmly></Domn></BkTxCd>\
                  <NtryDtls><TxDtls><RltdQties><Qty><Unit>3</Unit></Qty></RltdQties></TxDtls></NtryDtls>";
    let b = parse53(&camt053(
        "02",
        &ntry("1.50", "DBIT", "<Sts>BOOK</Sts>", charge),
    ));
    let t = &b.transactions[0];
    assert_eq!(
        (t.kind, t.security.as_ref(), t.quantity, t.price),
        (TransactionType::Fee, None, None, None)
    );
}

#[test]
fn an_unreadable_quantity_or_price_is_left_out_with_a_warning_not_refused() {
    let bad = TRADE_V02
        .replace("<Unit>150</Unit>", "<Unit>150 Stk</Unit>")
        .replace("<Amt Ccy=\"CHF\">245.30</Amt>", "<Amt>245.30</Amt>");
    let b = parse53(&camt053(
        "02",
        &ntry("36889.62", "DBIT", "<Sts>BOOK</Sts>", &bad),
    ));
    let t = &b.transactions[0];
    assert_eq!(
        (t.amount, t.quantity, t.price),
        (dec("36889.62"), None, None)
    );
    let fields: Vec<_> = b.warnings.iter().map(|w| w.field.as_deref()).collect();
    assert_eq!(
        fields,
        vec![
            Some("Stmt[1]/Ntry[1]/NtryDtls/TxDtls/RltdPric/DealPric/Val/Amt"),
            Some("Stmt[1]/Ntry[1]/NtryDtls/TxDtls/RltdQties"),
        ]
    );
}

#[test]
fn quantity_and_price_leave_the_hashed_key_of_an_entry_unchanged() {
    let with = TRADE_V02.replace("<Refs><AcctSvcrRef>T-20261120-7</AcctSvcrRef></Refs>", "");
    let without = with
        .replace(
            "<RltdPric><DealPric><Tp><ValTp>PARV</ValTp></Tp><Val><Amt Ccy=\"CHF\">245.30</Amt></Val></DealPric></RltdPric>",
            "",
        )
        .replace("<RltdQties><Qty><Unit>150</Unit></Qty></RltdQties>", "");
    let key = |details: &str| {
        let b = parse53(&camt053(
            "02",
            &ntry("36889.62", "DBIT", "<Sts>BOOK</Sts>", details),
        ));
        (
            b.transactions[0].natural_key.clone(),
            b.transactions[0].quantity,
        )
    };
    let (with_key, quantity) = key(&with);
    let (without_key, none) = key(&without);
    assert_eq!((quantity, none), (Some(dec("150")), None));
    assert!(with_key.starts_with("h:"), "{with_key}");
    assert_eq!(with_key, without_key);
}

/// A semt.002.001.11 complete statement of a CHF account around `positions`.
fn semt002(positions: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11">
<SctiesBalCtdyRpt><Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn>
<StmtGnlDtls><StmtId>H1</StmtId><StmtDtTm><Dt>2026-11-20</Dt></StmtDtTm><UpdTp><Cd>COMP</Cd></UpdTp><ActvtyInd>true</ActvtyInd></StmtGnlDtls>
<SfkpgAcct><Id>CUST-778341</Id></SfkpgAcct>
{positions}
</SctiesBalCtdyRpt></Document>"#
    )
}

fn holding(isin: &str, attributes: &str, quantity: &str, price: &str, amounts: &str) -> String {
    format!(
        "<BalForAcct><FinInstrmId><ISIN>{isin}</ISIN></FinInstrmId>{attributes}\
         <AggtBal><Qty><Qty><Qty>{quantity}</Qty></Qty></Qty></AggtBal>{price}{amounts}</BalForAcct>"
    )
}

fn amounts(block: &str, currency: &str, holding: &str, book: Option<&str>) -> String {
    let book = book.map_or(String::new(), |b| {
        format!("<BookVal><Amt Ccy=\"{currency}\">{b}</Amt><Sgn>true</Sgn></BookVal>")
    });
    format!(
        "<{block}><HldgVal><Amt Ccy=\"{currency}\">{holding}</Amt><Sgn>true</Sgn></HldgVal>{book}</{block}>"
    )
}

fn parse_semt(xml: &str) -> Batch {
    parse(SourceFormat::Semt002, "bank_c", "hld.xml", xml.as_bytes()).expect("parses")
}

const APPLE: &str = "US0378331005";
const USD_PRICE: &str =
    "<PricDtls><Tp><Cd>MRKT</Cd></Tp><Val><Amt Ccy=\"USD\">190.50</Amt></Val></PricDtls>";
const DENOMINATED_USD: &str = "<FinInstrmAttrbts><DnmtnCcy>USD</DnmtnCcy></FinInstrmAttrbts>";

#[test]
fn a_value_given_in_the_instrument_currency_is_the_market_value_beside_a_base_currency_one() {
    let b = parse_semt(&semt002(&holding(
        APPLE,
        DENOMINATED_USD,
        "<Unit>100</Unit>",
        USD_PRICE,
        &format!(
            "{}{}",
            amounts("AcctBaseCcyAmts", "CHF", "16883.52", Some("15000.00")),
            amounts("InstrmCcyAmts", "USD", "19050.00", Some("17500.00"))
        ),
    )));
    let p = &b.positions[0];
    assert_eq!(
        p.price_currency.map(|c| c.to_string()).as_deref(),
        Some("USD")
    );
    assert_eq!(
        (p.price, p.market_value, p.cost),
        (
            Some(dec("190.50")),
            Some(dec("19050.00")),
            Some(dec("17500.00"))
        )
    );
    // The CHF values are the same values converted: nothing is missing, nothing to warn.
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(b.accounts[0].currency.as_str(), "CHF");
}

#[test]
fn values_given_only_in_the_base_currency_of_a_foreign_priced_position_are_named_in_a_warning() {
    let b = parse_semt(&semt002(&holding(
        APPLE,
        DENOMINATED_USD,
        "<Unit>100</Unit>",
        USD_PRICE,
        &amounts("AcctBaseCcyAmts", "CHF", "16883.52", Some("15000.00")),
    )));
    let p = &b.positions[0];
    assert_eq!(
        p.price_currency.map(|c| c.to_string()).as_deref(),
        Some("USD")
    );
    assert_eq!((p.market_value, p.cost), (None, None));
    assert_eq!(b.warnings.len(), 1);
    assert_eq!(b.warnings[0].field.as_deref(), Some("BalForAcct[1]"));
    assert_eq!(
        b.warnings[0].message,
        "isin:US0378331005: holding value CHF 16883.52 (account base currency), book value CHF \
         15000.00 (account base currency) left out; a position keeps its values in its price \
         currency USD, in which the statement gives none"
    );
}

#[test]
fn an_unpriced_holding_keeps_the_value_the_bank_gives_in_its_base_currency() {
    // A structured product denominated in EUR that the bank values but does not price.
    let b = parse_semt(&semt002(&holding(
        "CH1234567894",
        "<FinInstrmAttrbts><DnmtnCcy>EUR</DnmtnCcy></FinInstrmAttrbts>",
        "<Unit>10</Unit>",
        "",
        &amounts("AcctBaseCcyAmts", "CHF", "9800.00", None),
    )));
    let p = &b.positions[0];
    assert_eq!(p.price, None);
    assert_eq!(
        p.price_currency.map(|c| c.to_string()).as_deref(),
        Some("CHF")
    );
    assert_eq!(p.market_value, Some(dec("9800.00")));
    assert_eq!(
        b.securities[0].currency.map(|c| c.to_string()).as_deref(),
        Some("EUR")
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn a_percent_priced_bond_takes_its_value_from_the_alternate_reporting_currency_block() {
    let bond = |attributes: &str, blocks: &str| {
        holding(
            "XS2021832634",
            attributes,
            "<FaceAmt>50000</FaceAmt>",
            "<PricDtls><Tp><Cd>MRKT</Cd></Tp><Val><Rate>101.25</Rate></Val></PricDtls>",
            blocks,
        )
    };
    let both = format!(
        "{}{}",
        amounts("AcctBaseCcyAmts", "CHF", "47368.13", None),
        amounts("AltrnRptgCcyAmts", "EUR", "50625.00", None)
    );
    let b = parse_semt(&semt002(&bond(
        "<FinInstrmAttrbts><DnmtnCcy>EUR</DnmtnCcy></FinInstrmAttrbts>",
        &both,
    )));
    let p = &b.positions[0];
    assert_eq!(
        (p.price, p.price_type, p.market_value),
        (
            Some(dec("101.25")),
            PriceType::Percent,
            Some(dec("50625.00"))
        )
    );
    assert_eq!(
        p.price_currency.map(|c| c.to_string()).as_deref(),
        Some("EUR")
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    // Without a denomination the percent price names no currency: the values are named in the
    // warning rather than stored under a currency the statement does not give.
    let b = parse_semt(&semt002(&bond(
        "",
        &amounts("AcctBaseCcyAmts", "CHF", "47368.13", None),
    )));
    let p = &b.positions[0];
    assert_eq!((p.price_currency, p.market_value), (None, None));
    assert_eq!(
        b.warnings[0].message,
        "isin:XS2021832634: holding value CHF 47368.13 (account base currency) left out; a \
         position keeps its values in its price currency, which the statement does not state"
    );
}

#[test]
fn a_message_with_a_group_header_and_no_statement_is_an_error() {
    let empty = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>
</BkToCstmrStmt></Document>"#;
    let e = parse(
        SourceFormat::Camt053,
        "bank_c",
        "empty.xml",
        empty.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        (e.document.as_str(), e.field.as_deref(), e.reason.as_str()),
        (
            "empty.xml",
            Some("Stmt"),
            "the camt.053 message holds no Stmt element: no statement in the file"
        )
    );
    let report = empty
        .replace("camt.053.001.08", "camt.052.001.08")
        .replace("BkToCstmrStmt", "BkToCstmrAcctRpt");
    let e = parse(
        SourceFormat::Camt052,
        "bank_c",
        "empty.xml",
        report.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        "the camt.052 message holds no Rpt element: no statement in the file"
    );
}

/// A camt.052.001.01 as 2008-era systems write it: the root carries the version
/// (`BkToCstmrAcctRptV01`), accounts are `PrtryAcct`, the balance type has no `CdOrPrtry`, the
/// entry's `TxDtls` sit in the entry (no `NtryDtls`).
const CAMT052_V01: &str = r#"<?xml version="1.0" encoding="UTF-16"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.01">
<BkToCstmrAcctRptV01>
<GrpHdr><MsgId>R-2009-1</MsgId><CreDtTm>2009-06-30T18:00:00</CreDtTm></GrpHdr>
<Rpt><Id>RPT-1</Id><ElctrncSeqNb>12</ElctrncSeqNb><CreDtTm>2009-06-30T18:00:00</CreDtTm>
<Acct><Id><PrtryAcct><Id>0012-345678-9</Id></PrtryAcct></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><Cd>OPBD</Cd></Tp><Amt Ccy="EUR">1750.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2009-06-30</Dt></Dt></Bal>
<Bal><Tp><Cd>CLBD</Cd></Tp><Amt Ccy="EUR">1500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2009-06-30</Dt></Dt></Bal>
<Ntry><Amt Ccy="EUR">250.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2009-06-30</Dt></BookgDt><ValDt><Dt>2009-06-30</Dt></ValDt><AcctSvcrRef>A-77</AcctSvcrRef>
<TxDtls><Refs><EndToEndId>E2E-9</EndToEndId></Refs>
<RltdPties><Cdtr><Nm>Stadtwerke Münster</Nm></Cdtr><CdtrAcct><Id><PrtryAcct><Id>99-887766</Id></PrtryAcct></Id></CdtrAcct></RltdPties>
<RmtInf><Ustrd>Strom Juni</Ustrd></RmtInf></TxDtls>
</Ntry>
</Rpt>
</BkToCstmrAcctRptV01>
</Document>"#;

#[test]
fn camt052_v01_in_utf16_is_detected_and_read() {
    let utf16: Vec<u8> = CAMT052_V01
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut with_bom = vec![0xFF, 0xFE];
    with_bom.extend(&utf16);
    for bytes in [&utf16, &with_bom] {
        assert_eq!(detect(bytes), Some(SourceFormat::Camt052));
        let b = parse(SourceFormat::Camt052, "bank_c", "rpt.xml", bytes).expect("reads");
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        let a = &b.accounts[0];
        assert_eq!(
            (
                a.bank_account_id.as_str(),
                a.iban.as_ref(),
                a.currency.as_str()
            ),
            ("0012-345678-9", None, "EUR")
        );
        let balances: Vec<_> = b
            .balances
            .iter()
            .map(|x| (x.kind, x.amount, x.as_of.to_string()))
            .collect();
        assert_eq!(
            balances,
            vec![
                (
                    BalanceKind::Opening,
                    dec("1750.00"),
                    "2009-06-30".to_owned()
                ),
                (
                    BalanceKind::Closing,
                    dec("1500.00"),
                    "2009-06-30".to_owned()
                )
            ]
        );
        let t = &b.transactions[0];
        assert_eq!(
            (
                t.natural_key.as_str(),
                t.amount,
                t.direction,
                t.counterparty.as_deref(),
                t.description.as_deref(),
                t.booking_date.to_string(),
            ),
            (
                "ref:A-77",
                dec("250.00"),
                Direction::Debit,
                Some("Stadtwerke Münster"),
                Some("Strom Juni"),
                "2009-06-30".to_owned(),
            )
        );
        let s = &b.statements[0];
        assert_eq!(
            (s.reference.as_deref(), s.entries_total, s.entry_count),
            (Some("RPT-1"), dec("-250.00"), 1)
        );
    }
    // The same entries as the v08 reading of the same content: read in UTF-8, too.
    let b = parse(
        SourceFormat::Camt052,
        "bank_c",
        "rpt.xml",
        CAMT052_V01.replace("UTF-16", "UTF-8").as_bytes(),
    )
    .unwrap();
    assert_eq!(b.transactions.len(), 1);
}

#[test]
fn control_characters_in_xml_text_are_removed_with_a_warning() {
    let xml = camt053(
        "02",
        &format!(
            "{}{}{}",
            bal("OPBD", "10.00", "CRDT", "2026-11-20"),
            ntry(
                "2.50",
                "DBIT",
                "<Sts>BOOK</Sts>",
                "<AddtlNtryInf>Kaffee\u{0}\u{0} Automat</AddtlNtryInf>"
            ),
            bal("CLBD", "7.50", "CRDT", "2026-11-20"),
        ),
    );
    let b = parse53(&xml);
    assert_eq!(
        b.transactions[0].description.as_deref(),
        Some("Kaffee Automat")
    );
    let said: Vec<_> = b
        .warnings
        .iter()
        .map(|w| (w.line, w.field.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(
        said,
        vec![(
            Some(6),
            Some("Stmt[1]/Ntry[1]/AddtlNtryInf"),
            "2 control characters (NUL or another C0 code) removed from the text"
        )]
    );
    // Far past the bytes sniffed first, and in ISO-8859-1 (transcoded): found all the same.
    let far = xml.replace(
        "<BookgDt>",
        &format!("<AddtlTxInf>{}</AddtlTxInf><BookgDt>", "x".repeat(70_000)),
    );
    assert_eq!(
        parse53(&far).transactions[0].description.as_deref(),
        Some("Kaffee Automat")
    );
    let latin = far.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let b = parse53(&latin);
    assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
}

/// A camt.053.001.08 message of the given statements, each four lines long: its id and
/// number, its account, its balances and entries on one line, its end. Statement `n` takes
/// lines `4n` to `4n + 3`.
fn message053(statements: &[(u32, &str, String)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n\
         <BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>\n",
    );
    for (n, iban, body) in statements {
        xml.push_str(&format!(
            "<Stmt><Id>ST-{n}</Id><ElctrncSeqNb>{n}</ElctrncSeqNb>\n\
             <Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>CHF</Ccy></Acct>\n{body}\n</Stmt>\n"
        ));
    }
    xml.push_str("</BkToCstmrStmt></Document>\n");
    xml
}

/// A booked entry of `amount` CHF with the bank's reference and what else it holds.
fn booked(amount: &str, cd: &str, reference: &str, extra: &str) -> String {
    ntry(
        amount,
        cd,
        "<Sts><Cd>BOOK</Cd></Sts>",
        &format!("<AcctSvcrRef>{reference}</AcctSvcrRef>{extra}"),
    )
}

/// An entry-level conversion of 1,000 USD at 1 USD = 0.8812 CHF quoted on 2026-11-19.
const USD_CHF: &str = "<AmtDtls><InstdAmt><Amt Ccy=\"USD\">1000.00</Amt><CcyXchg><SrcCcy>USD</SrcCcy>\
    <TrgtCcy>CHF</TrgtCcy><UnitCcy>USD</UnitCcy><XchgRate>0.8812</XchgRate>\
    <QtnDt>2026-11-19T10:00:00+01:00</QtnDt></CcyXchg></InstdAmt></AmtDtls>";

#[test]
fn a_statement_that_does_not_read_is_left_out_and_its_neighbours_load() {
    const MAIN: &str = "CH9300762011623852957";
    const OTHER: &str = "CH5604835012345678009";
    let xml = message053(&[
        (
            1,
            MAIN,
            [
                bal("OPBD", "100.00", "CRDT", "2026-11-17"),
                booked("30.00", "CRDT", "A1", ""),
                bal("CLBD", "130.00", "CRDT", "2026-11-17"),
            ]
            .concat(),
        ),
        // An amount that does not read, in another account: that account is not loaded.
        (
            2,
            OTHER,
            [
                bal("OPBD", "130.00", "CRDT", "2026-11-18"),
                booked("1,00", "CRDT", "B1", ""),
                bal("CLBD", "131.00", "CRDT", "2026-11-18"),
            ]
            .concat(),
        ),
        // Cut short: an opening and an entry (which states a rate), no closing.
        (
            3,
            MAIN,
            [
                bal("OPBD", "130.00", "CRDT", "2026-11-19"),
                booked("881.20", "DBIT", "C1", USD_CHF),
            ]
            .concat(),
        ),
        // Reads, but does not add up (130 - 881.20 is not 125): it loads, and the
        // reconciliation makes it a balance break. It states the left-out statement's rate.
        (
            4,
            MAIN,
            [
                bal("OPBD", "130.00", "CRDT", "2026-11-20"),
                booked("881.20", "DBIT", "D1", USD_CHF),
                bal("CLBD", "125.00", "CRDT", "2026-11-20"),
            ]
            .concat(),
        ),
    ]);
    let b = parse(SourceFormat::Camt053, "bank_c", "multi.xml", xml.as_bytes())
        .expect("two statements load");
    let keys: Vec<_> = b
        .transactions
        .iter()
        .map(|t| (t.account.as_str(), t.natural_key.as_str()))
        .collect();
    assert_eq!(keys, [(MAIN, "ref:A1"), (MAIN, "ref:D1")]);
    let accounts: Vec<_> = b
        .accounts
        .iter()
        .map(|a| a.bank_account_id.as_str())
        .collect();
    assert_eq!(accounts, [MAIN]);
    let balances: Vec<_> = b
        .balances
        .iter()
        .map(|x| (x.kind, x.as_of, x.amount))
        .collect();
    assert_eq!(
        balances,
        [
            (BalanceKind::Opening, date("2026-11-17"), dec("100.00")),
            (BalanceKind::Closing, date("2026-11-17"), dec("130.00")),
            (BalanceKind::Opening, date("2026-11-20"), dec("130.00")),
            (BalanceKind::Closing, date("2026-11-20"), dec("125.00")),
        ]
    );
    let statements: Vec<_> = b
        .statements
        .iter()
        .map(|s| (s.reference.as_deref(), s.statement_number))
        .collect();
    assert_eq!(
        statements,
        [(Some("ST-1"), Some(1)), (Some("ST-4"), Some(4))]
    );
    // The rate the left-out statement stated first is the loaded statement's.
    let rates: Vec<_> = b
        .rates
        .iter()
        .map(|r| (r.base.as_str(), r.quote.as_str(), r.rate, r.date))
        .collect();
    assert_eq!(rates, [("USD", "CHF", dec("0.8812"), date("2026-11-19"))]);
    assert_eq!(
        b.rejected,
        [
            RejectedStatement {
                document: "multi.xml".into(),
                index: 2,
                reference: Some("ST-2".into()),
                account: Some(OTHER.into()),
                line: Some(10),
                field: Some("Stmt[2]/Ntry[1]/Amt".into()),
                reason: "'1,00' is not a non-negative decimal number".into(),
            },
            RejectedStatement {
                document: "multi.xml".into(),
                index: 3,
                reference: Some("ST-3".into()),
                account: Some(MAIN.into()),
                line: Some(15),
                field: Some("Stmt[3]/Bal".into()),
                reason: "the statement has an opening but no closing balance (CLBD): it is cut \
                         short"
                    .into(),
            },
        ]
    );
    assert_eq!(b.warnings, []);
    // The statement that does not add up is the reconciliation's: a balance break, and the
    // numbers of the left-out statement of its account make a sequence break.
    let (breaks, _) = crate::reconcile::check(&b.statements, &Default::default());
    let breaks: Vec<_> = breaks
        .iter()
        .map(|x| {
            (
                x.kind,
                x.statement_reference.as_deref(),
                x.expected,
                x.actual,
            )
        })
        .collect();
    assert_eq!(
        breaks,
        [
            (
                crate::reconcile::BreakKind::Balance,
                Some("ST-4"),
                Some(dec("-751.20")),
                Some(dec("125.00"))
            ),
            (
                crate::reconcile::BreakKind::Sequence,
                Some("ST-4"),
                Some(dec("2")),
                Some(dec("4"))
            ),
        ]
    );

    // The stream says the same: the left-out statements' records come before their
    // `Rejected`, never a summary.
    let mut kinds = Vec::new();
    read_records(
        SourceFormat::Camt053,
        "bank_c",
        "multi.xml",
        xml.as_bytes(),
        |r| {
            kinds.push(match r {
                Record::Account(_) => "account",
                Record::Balance(_) => "balance",
                Record::Entry(_) => "entry",
                Record::Statement(_) => "statement",
                Record::Rate(_) => "rate",
                Record::Rejected(_) => "rejected",
                _ => "other",
            })
        },
    )
    .unwrap();
    assert_eq!(
        kinds,
        [
            "account",
            "balance",
            "entry",
            "balance",
            "statement", // 1
            "account",
            "balance",
            "rejected", // 2
            "account",
            "balance",
            "entry",
            "rate",
            "rejected", // 3
            "account",
            "balance",
            "entry",
            "rate",
            "balance",
            "statement", // 4
        ]
    );
}

#[test]
fn a_camt052_report_needs_no_closing_balance() {
    let xml = message053(&[(
        1,
        "CH9300762011623852957",
        [
            bal("OPBD", "100.00", "CRDT", "2026-11-20"),
            booked("30.00", "CRDT", "A1", ""),
        ]
        .concat(),
    )])
    .replace("camt.053.001.08", "camt.052.001.08")
    .replace("BkToCstmrStmt", "BkToCstmrAcctRpt")
    .replace("Stmt>", "Rpt>");
    let b = parse(SourceFormat::Camt052, "bank_c", "r.xml", xml.as_bytes()).unwrap();
    assert_eq!((b.transactions.len(), b.rejected.len()), (1, 0));
    assert_eq!(b.statements[0].closing, None);
}

#[test]
fn a_message_cut_short_keeps_its_whole_statements() {
    let whole = message053(&[
        (
            1,
            "CH9300762011623852957",
            [
                bal("OPBD", "100.00", "CRDT", "2026-11-19"),
                booked("30.00", "CRDT", "A1", ""),
                bal("CLBD", "130.00", "CRDT", "2026-11-19"),
            ]
            .concat(),
        ),
        (
            2,
            "CH9300762011623852957",
            [
                bal("OPBD", "130.00", "CRDT", "2026-11-20"),
                booked("5.00", "CRDT", "B1", ""),
                bal("CLBD", "135.00", "CRDT", "2026-11-20"),
            ]
            .concat(),
        ),
    ]);
    // Cut between two elements of the second statement's entry, then inside a tag.
    let at = whole.rfind("<CdtDbtInd>CRDT</CdtDbtInd><Sts>").unwrap();
    let between = &whole[..at];
    let inside = &between[..between.rfind("Ccy=").unwrap() + 6];
    for (cut, reason) in [
        (
            between,
            "the file ends inside an open element (Ntry): it is truncated",
        ),
        (
            inside,
            "malformed XML: syntax error: tag not closed: `>` not found before end of input",
        ),
    ] {
        let b = parse(SourceFormat::Camt053, "bank_c", "cut.xml", cut.as_bytes())
            .unwrap_or_else(|e| panic!("the first statement loads: {e}"));
        assert_eq!(b.statements.len(), 1);
        assert_eq!(b.transactions.len(), 1);
        assert_eq!(b.balances.len(), 2);
        let r = &b.rejected[..];
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (
                r[0].index,
                r[0].reference.as_deref(),
                r[0].line,
                r[0].field.as_deref(),
                r[0].reason.as_str()
            ),
            (2, Some("ST-2"), Some(10), Some("Stmt[2]/Ntry[1]"), reason)
        );
    }
    // A message whose only statement is cut short is refused, as before.
    let only = message053(&[(
        1,
        "CH9300762011623852957",
        [
            bal("OPBD", "130.00", "CRDT", "2026-11-20"),
            booked("5.00", "CRDT", "B1", ""),
        ]
        .concat(),
    )]);
    let e = parse(SourceFormat::Camt053, "bank_c", "one.xml", only.as_bytes()).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(7), Some("Stmt[1]/Bal")));
    assert!(e.to_string().starts_with("one.xml, line 7, column"), "{e}");
}
