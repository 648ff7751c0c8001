//! Statements written for each dialect of issue 15, read end to end: the exact records and the
//! exact warnings. Each dialect is compared with the same statement written the standard way,
//! so "read as meant" is checked against the reading of the plain form.

use crate::model::{BalanceKind, Batch, Direction, SourceFormat};

const ENVELOPE: &str = "{1:F01BANKDEFFAXXX0000000000}{2:O940BANKDEFFXXXXN}{4:";

/// The plain statement the dialects are variations of.
fn plain() -> String {
    format!(
        "{ENVELOPE}\n:20:DIALECT\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C240101EUR100,00\n:61:2401020102D25,50NTRFNONREF//B1\n:86:Miete Januar\n:61:2401030103C10,00NTRFNONREF//B2\n:86:Erstattung\n:62F:C240103EUR84,50\n-}}{{5:}}\n"
    )
}

fn parse(text: &str) -> Batch {
    crate::swift::parse(SourceFormat::Mt940, "bank", "d.sta", text.as_bytes())
        .expect("the dialect is read")
}

fn warnings(b: &Batch) -> Vec<(Option<usize>, Option<&str>, &str)> {
    b.warnings
        .iter()
        .map(|w| (w.line, w.field.as_deref(), w.message.as_str()))
        .collect()
}

/// The records of the plain statement, checked once so the dialects can compare with it.
#[test]
fn the_plain_statement_reads_as_written() {
    let b = parse(&plain());
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let t: Vec<_> = b
        .transactions
        .iter()
        .map(|t| {
            (
                t.natural_key.as_str(),
                t.amount.to_string(),
                t.direction,
                t.description.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        t,
        vec![
            (
                "ref:B1",
                "25.50".into(),
                Direction::Debit,
                Some("Miete Januar")
            ),
            (
                "ref:B2",
                "10.00".into(),
                Direction::Credit,
                Some("Erstattung")
            ),
        ]
    );
    let balances: Vec<_> = b
        .balances
        .iter()
        .map(|c| (c.kind, c.amount.to_string()))
        .collect();
    assert_eq!(
        balances,
        vec![
            (BalanceKind::Opening, "100.00".into()),
            (BalanceKind::Closing, "84.50".into())
        ]
    );
    assert_eq!(b.statements.len(), 1);
}

/// Same records as the plain statement, provenance included.
fn assert_same_records(dialect: &Batch) {
    let plain = parse(&plain());
    assert_eq!(dialect.accounts, plain.accounts);
    assert_eq!(dialect.transactions, plain.transactions);
    assert_eq!(dialect.balances, plain.balances);
    assert_eq!(dialect.statements, plain.statements);
}

#[test]
fn a_dash_line_inside_block_4_followed_by_text_is_text() {
    let text = plain().replace(":86:Miete Januar\n", ":86:Miete Januar\n-\nWohnung 3\n");
    let b = parse(&text);
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(
        b.transactions[0].description.as_deref(),
        Some("Miete Januar\n-\nWohnung 3")
    );
    assert_eq!(b.transactions.len(), 2);
    assert_eq!(
        b.statements[0].closing.as_ref().map(|c| c.amount),
        Some("84.50".parse().unwrap())
    );
}

#[test]
fn a_dash_line_inside_block_4_before_the_trailer_or_the_end_of_the_file_ends_it() {
    let trailer = plain().replace("-}{5:}\n", "-\n{5:}\n");
    assert_same_records(&parse(&trailer));
    let end_of_file = plain().replace("-}{5:}\n", "-\n\n");
    assert_same_records(&parse(&end_of_file));
    // Two messages: the `-` before the next envelope ends the first.
    let two = format!("{}{}", plain().replace("-}{5:}\n", "-\n"), plain());
    let b = parse(&two);
    assert_eq!(b.statements.len(), 2);
    assert_eq!(b.transactions.len(), 4);
}

#[test]
fn indented_lines_read_as_if_not_indented() {
    let text: String = plain()
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{}{l}\n", if i % 2 == 0 { "  " } else { "\t" }))
        .collect();
    let b = parse(&text);
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_same_records(&b);
}

#[test]
fn a_decimal_point_is_read_with_a_warning() {
    let text = plain()
        .replace("EUR100,00", "EUR100.00")
        .replace("D25,50", "D25.50")
        .replace("EUR84,50", "EUR84.5");
    let b = parse(&text);
    assert_same_records(&b);
    assert_eq!(
        warnings(&b),
        vec![
            (
                Some(5),
                Some(":60a:"),
                "amount written with a decimal point instead of a comma: read as 100.00"
            ),
            (
                Some(6),
                Some(":61:"),
                "amount written with a decimal point instead of a comma: read as 25.50"
            ),
            (
                Some(10),
                Some(":62a:"),
                "amount written with a decimal point instead of a comma: read as 84.5"
            ),
        ]
    );
}

#[test]
fn a_point_before_three_digits_is_refused_as_ambiguous() {
    let text = plain().replace("D25,50", "D1.234");
    let e = crate::swift::parse(SourceFormat::Mt940, "bank", "d.sta", text.as_bytes()).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(6), Some(":61:")));
    assert_eq!(
        e.reason,
        "'1.234' is ambiguous: the point may be a decimal mark or a thousands separator"
    );
}

#[test]
fn national_letters_for_braces_are_read_as_braces() {
    let text = plain()
        .replace("{1:", "ä1:")
        .replace("{2:", "ä2:")
        .replace("{4:", "ä4:")
        .replace("{5:", "ä5:")
        .replace('}', "å");
    let b = parse(&text);
    assert_same_records(&b);
    assert_eq!(
        warnings(&b),
        vec![(
            Some(1),
            None,
            "the envelope writes the braces { and } as the national letters ä and å (ISO 646 Nordic variant): read as braces"
        )]
    );
    // Block 2 still names the type: an MT942 in Nordic letters is not read as an MT940.
    let mt942 = text.replace("ä2:O940", "ä2:O942");
    let b = crate::swift::parse(SourceFormat::Mt940, "bank", "d.sta", mt942.as_bytes()).unwrap();
    assert_eq!(b.statements[0].provenance.format, SourceFormat::Mt942);
}

#[test]
fn a_malformed_tag_is_read_as_the_tag_it_means() {
    let text = plain().replace(":86:Erstattung", ":86 :Erstattung");
    let b = parse(&text);
    assert_same_records(&b);
    assert_eq!(
        warnings(&b),
        vec![(Some(9), None, "malformed tag ':86 :' read as ':86:'")]
    );
}

#[test]
fn fints_segment_leftovers_are_stripped() {
    // As a FinTS client dumps the booked part of HIKAZ: the segment head and binary length
    // before the first message, the next binary element after the first `-` (its message
    // starting on the same line) and the segment end after the last.
    let body = plain()
        .replace(&format!("{ENVELOPE}\n"), "")
        .replace("-}{5:}\n", "");
    let text = format!("HIKAZ:5:7:3+@300@\n{body}-+@310@{body}-'\n");
    let b = parse(&text);
    assert_eq!(
        warnings(&b),
        vec![
            (
                Some(1),
                None,
                "FinTS segment text `HIKAZ:5:7:3+@300@` around the message stripped"
            ),
            (
                Some(11),
                None,
                "FinTS segment text `+@310@` around the message stripped"
            ),
            (
                Some(20),
                None,
                "FinTS segment text `'` around the message stripped"
            ),
        ]
    );
    let plain = parse(&plain());
    assert_eq!(b.transactions.len(), 4);
    assert_eq!(b.transactions[..2], plain.transactions[..]);
    assert_eq!(b.statements.len(), 2);
    assert_eq!(b.statements[0], plain.statements[0]);
}

#[test]
fn a_statement_in_a_withdrawn_currency_is_read_and_its_currency_historic() {
    let text = plain().replace("EUR", "DEM");
    let b = parse(&text);
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let dem = b.accounts[0].currency;
    assert_eq!(dem.as_str(), "DEM");
    assert!(dem.is_historic());
    assert!(b.transactions.iter().all(|t| t.currency == dem));
    // The wealth view's figure in euro, at the fixed rate.
    assert_eq!(
        dem.to_euro(b.balances[1].amount),
        Some("43.20".parse().unwrap())
    );
}

#[test]
fn a_statement_cut_short_is_rejected_and_its_neighbours_load() {
    let statement = |n: u32, opening: &str, closing: &str| {
        format!(
            ":20:STMT{n}\n:25:DE89370400440532013000\n:28C:{n}/1\n:60F:C24010{n}EUR{opening}\n:61:24010{n}C5,00NTRFNONREF//E{n}\n{closing}-\n"
        )
    };
    let text = format!(
        "{}{}{}",
        statement(1, "10,00", ":62F:C240101EUR15,00\n"),
        statement(2, "15,00", ":62F:C240102EUR20,00\n"),
        // The download stopped before the third statement's closing balance.
        ":20:STMT3\n:25:DE89370400440532013000\n:28C:3/1\n:60F:C240103EUR20,00\n:61:240103C5,00NTRFNONREF//E3\n",
    );
    let b = crate::swift::parse(SourceFormat::Mt940, "bank", "three.sta", text.as_bytes())
        .expect("two statements load");
    let keys: Vec<_> = b
        .transactions
        .iter()
        .map(|t| t.natural_key.as_str())
        .collect();
    assert_eq!(keys, ["ref:E1", "ref:E2"]);
    let numbers: Vec<_> = b.statements.iter().map(|s| s.statement_number).collect();
    assert_eq!(numbers, [Some(1), Some(2)]);
    assert_eq!(b.balances.len(), 4);
    assert_eq!(
        b.rejected,
        vec![crate::model::RejectedStatement {
            document: "three.sta".into(),
            index: 3,
            reference: Some("STMT3".into()),
            account: Some("DE89370400440532013000".into()),
            line: Some(15),
            field: Some(":62a:".into()),
            reason: "the statement has no closing balance (:62F: or :62M:): truncated file or a page that continues elsewhere".into(),
        }]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    // A statement without account in the middle: the others load around it.
    let middle = text.replace(":25:DE89370400440532013000\n:28C:2/1", ":28C:2/1");
    let b =
        crate::swift::parse(SourceFormat::Mt940, "bank", "three.sta", middle.as_bytes()).unwrap();
    assert_eq!(b.statements.len(), 1);
    let rejected: Vec<_> = b
        .rejected
        .iter()
        .map(|r| (r.index, r.line, r.field.as_deref()))
        .collect();
    assert_eq!(
        rejected,
        [(2, Some(8), Some(":25:")), (3, Some(14), Some(":62a:"))]
    );
}

#[test]
fn a_file_none_of_whose_statements_reads_is_an_error() {
    let text = ":20:ONLY\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C240101EUR20,00\n:61:240101C5,00NTRFNONREF//E1\n";
    let e =
        crate::swift::parse(SourceFormat::Mt940, "bank", "cut.sta", text.as_bytes()).unwrap_err();
    assert_eq!(
        (e.document.as_str(), e.line, e.field.as_deref()),
        ("cut.sta", Some(1), Some(":62a:"))
    );
}

const MT941: &str = "{1:F01BANKDEFFAXXX0000000000}{2:O941BANKDEFFXXXXN}{4:
:20:BALREP1
:25:DE89370400440532013000
:28:12/1
:13D:2401151200+0100
:60F:C240114EUR1000,00
:90D:2EUR300,00
:90C:1EUR50,00
:62F:C240115EUR750,00
:64:C240115EUR740,00
:65:C240116EUR740,00
-}";

#[test]
fn an_mt941_balance_report_gives_its_balances() {
    assert_eq!(
        crate::swift::detect(MT941.as_bytes()),
        Some(SourceFormat::Mt941)
    );
    let bare = MT941
        .lines()
        .skip(1)
        .filter(|l| *l != "-}")
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        crate::swift::detect(bare.as_bytes()),
        Some(SourceFormat::Mt941)
    );
    let b = crate::swift::parse(SourceFormat::Mt941, "bank", "bal.fin", MT941.as_bytes())
        .expect("reads");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let balances: Vec<_> = b
        .balances
        .iter()
        .map(|x| {
            (
                x.kind,
                x.as_of.to_string(),
                x.amount.to_string(),
                x.provenance.format,
            )
        })
        .collect();
    assert_eq!(
        balances,
        vec![
            (
                BalanceKind::Opening,
                "2024-01-14".into(),
                "1000.00".into(),
                SourceFormat::Mt941
            ),
            (
                BalanceKind::Closing,
                "2024-01-15".into(),
                "750.00".into(),
                SourceFormat::Mt941
            ),
            (
                BalanceKind::Available,
                "2024-01-15".into(),
                "740.00".into(),
                SourceFormat::Mt941
            ),
            (
                BalanceKind::Forward,
                "2024-01-16".into(),
                "740.00".into(),
                SourceFormat::Mt941
            ),
        ]
    );
    assert_eq!(b.accounts[0].bank_account_id, "DE89370400440532013000");
    assert!(b.transactions.is_empty() && b.statements.is_empty());
    // Without its booked balance it is rejected, like a statement cut short.
    let cut = MT941.replace(":62F:C240115EUR750,00\n", "");
    let e =
        crate::swift::parse(SourceFormat::Mt941, "bank", "bal.fin", cut.as_bytes()).unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.reason.as_str()),
        (
            Some(2),
            Some(":62a:"),
            "the balance report has no booked balance (:62F:)"
        )
    );
}

#[test]
fn mt900_and_mt910_confirmations_are_single_transactions() {
    let text = "{1:F01BANKDEFFAXXX0000000000}{2:O900BANKDEFFXXXXN}{4:
:20:C11126A1378
:21:5482ABC
:25:DE89370400440532013000
:13D:2401151230+0100
:32A:240115EUR1234,56
:72:/INS/BANKBEBB
-}{5:}
{1:F01BANKDEFFAXXX0000000000}{2:O910BANKDEFFXXXXN}{4:
:20:C11126C9224
:21:494936/DEV
:25:DE89370400440532013000
:32A:240116EUR500,
:50K:/DE02120300000000202051
MAX MUSTERMANN GMBH
BERLIN
:52A:BYLADEM1001
-}{5:}
";
    assert_eq!(
        crate::swift::detect(text.as_bytes()),
        Some(SourceFormat::Mt900)
    );
    let b = crate::swift::parse(SourceFormat::Mt900, "bank", "conf.fin", text.as_bytes())
        .expect("reads");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let t: Vec<_> = b
        .transactions
        .iter()
        .map(|t| {
            (
                t.natural_key.as_str(),
                t.booking_date.to_string(),
                t.amount.to_string(),
                t.direction,
                t.currency.as_str(),
                t.counterparty.as_deref(),
                t.description.as_deref(),
                t.provenance.format,
            )
        })
        .collect();
    assert_eq!(
        t,
        vec![
            (
                "ref:C11126A1378",
                "2024-01-15".into(),
                "1234.56".into(),
                Direction::Debit,
                "EUR",
                None,
                Some("/INS/BANKBEBB"),
                SourceFormat::Mt900
            ),
            (
                "ref:C11126C9224",
                "2024-01-16".into(),
                "500".into(),
                Direction::Credit,
                "EUR",
                Some("MAX MUSTERMANN GMBH BERLIN"),
                None,
                SourceFormat::Mt910
            ),
        ]
    );
    assert_eq!(b.accounts.len(), 1);
    assert!(b.balances.is_empty() && b.statements.is_empty());
}

#[test]
fn an_unknown_type_in_block_2_is_read_by_its_fields() {
    let text = plain().replace("{2:O940", "{2:O970");
    assert_eq!(
        crate::swift::detect(text.as_bytes()),
        Some(SourceFormat::Mt940)
    );
    let b = parse(&text);
    assert_same_records(&b);
    assert_eq!(
        warnings(&b),
        vec![(
            Some(2),
            Some("{2:}"),
            "block 2 names MT970, which is no statement type: read as mt940 from its fields"
        )]
    );
    // A type it knows is not read as another.
    let e = crate::swift::parse(
        SourceFormat::Mt940,
        "bank",
        "d.sta",
        plain().replace("{2:O940", "{2:O535").as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        "the message is an MT535, not a cash statement (MT940, MT941, MT942, MT950)"
    );
}

#[test]
fn control_characters_in_text_are_removed_with_a_warning() {
    let text = plain()
        .replace(":86:Miete Januar", ":86:Miete\0\0 Januar")
        .replace(":86:Erstattung", ":86:Erstattung\u{0C}");
    let b = parse(&text);
    assert_same_records(&b);
    assert_eq!(
        warnings(&b),
        vec![(
            Some(7),
            None,
            "3 control characters (NUL or another C0 code) removed from the text on lines 7, 9"
        )]
    );
    // SOH/ETX framing is not text: no warning.
    let framed = format!("\x01{}\x03", plain());
    assert!(parse(&framed).warnings.is_empty());
}

/// One MT535 message: a complete statement of `depot` on 2026-11-20 with the given holdings
/// (`:16R:FIN` ... `:16S:FIN` blocks).
fn mt535_message(reference: &str, depot: &str, holdings: &str) -> String {
    format!(
        "{{1:F01BANKDEFFAXXX0000000000}}{{2:O535BANKDEFFXXXXN}}{{4:\r\n\
         :16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//{reference}\r\n:23G:NEWM\r\n\
         :98A::STAT//20261120\r\n:22F::CODE//COMP\r\n:97A::SAFE//{depot}\r\n:17B::ACTI//Y\r\n\
         :16S:GENL\r\n:16R:SUBSAFE\r\n{holdings}:16S:SUBSAFE\r\n-}}\r\n"
    )
}

/// 50 Apple shares valued in EUR and USD with the rate between them: 9 lines.
const APPLE_WITH_RATE: &str = ":16R:FIN\r\n:35B:ISIN US0378331005\r\nAPPLE INC\r\n\
    :93B::AGGR//UNIT/50,\r\n:19A::HOLD//EUR8763,\r\n:19A::HOLD//USD9525,\r\n\
    :92B::EXCH//USD/EUR/0,92\r\n:16S:FIN\r\n";

#[test]
fn an_mt535_message_that_cannot_be_mapped_is_left_out_and_the_others_load() {
    let text = [
        // Lines 1 to 19.
        mt535_message(
            "H1",
            "DEPOT-1",
            ":16R:FIN\r\n:35B:ISIN US0378331005\r\nAPPLE INC\r\n:93B::AGGR//UNIT/100,\r\n\
             :19A::HOLD//USD19050,\r\n:16S:FIN\r\n",
        ),
        // Lines 20 to 45: its second holding (its block opens on line 39) has no quantity,
        // after the first gave a security, a position and a rate.
        mt535_message(
            "H2",
            "DEPOT-2",
            &format!(
                "{APPLE_WITH_RATE}:16R:FIN\r\n:35B:ISIN DE0007236101\r\nSIEMENS AG\r\n\
                 :19A::HOLD//EUR1000,\r\n:16S:FIN\r\n"
            ),
        ),
        // The same depot again, whole: its rate is stated once more and kept.
        mt535_message("H3", "DEPOT-2", APPLE_WITH_RATE),
    ]
    .concat();
    let b = crate::swift::parse(SourceFormat::Mt535, "bank_b", "m535", text.as_bytes())
        .expect("two messages load");
    let positions: Vec<_> = b
        .positions
        .iter()
        .map(|p| (p.account.as_str(), p.security.as_str(), p.quantity))
        .collect();
    assert_eq!(
        positions,
        [
            (
                "DEPOT-1",
                "isin:US0378331005",
                rust_decimal::Decimal::from(100)
            ),
            (
                "DEPOT-2",
                "isin:US0378331005",
                rust_decimal::Decimal::from(50)
            ),
        ]
    );
    let securities: Vec<_> = b.securities.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(securities, ["isin:US0378331005"], "Siemens was only in H2");
    let snapshots: Vec<_> = b
        .complete_snapshots
        .iter()
        .map(|c| c.account.as_str())
        .collect();
    assert_eq!(snapshots, ["DEPOT-1", "DEPOT-2"]);
    let rates: Vec<_> = b
        .rates
        .iter()
        .map(|r| {
            (
                r.account.as_str(),
                r.base.as_str(),
                r.quote.as_str(),
                r.rate,
            )
        })
        .collect();
    assert_eq!(rates, [("DEPOT-2", "USD", "EUR", "0.92".parse().unwrap())]);
    assert_eq!(
        b.rejected,
        vec![crate::model::RejectedStatement {
            document: "m535".into(),
            index: 2,
            reference: Some("H2".into()),
            account: Some("DEPOT-2".into()),
            line: Some(39),
            field: Some(":93B::AGGR".into()),
            reason: "the instrument has no aggregate balance (:93B::AGGR//)".into(),
        }]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    // A file whose only message cannot be mapped is refused with its reason.
    let only = mt535_message(
        "H9",
        "DEPOT-9",
        ":16R:FIN\r\n:35B:ISIN DE0007236101\r\nSIEMENS AG\r\n:16S:FIN\r\n",
    );
    let e =
        crate::swift::parse(SourceFormat::Mt535, "bank_b", "m535", only.as_bytes()).unwrap_err();
    assert_eq!(
        (e.field.as_deref(), e.reason.as_str()),
        (
            Some(":93B::AGGR"),
            "the instrument has no aggregate balance (:93B::AGGR//)"
        )
    );
}

#[test]
fn an_mt536_message_that_cannot_be_mapped_is_left_out_and_the_others_load() {
    let message = |reference: &str, account: &str, amount: &str| {
        format!(
            "{{1:F01BANKDEFFAXXX0000000000}}{{2:O536BANKDEFFXXXXN}}{{4:\r\n\
             :16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//{reference}\r\n:23G:NEWM\r\n\
             :69A::STAT//20261120/20261120\r\n{account}:17B::ACTI//Y\r\n:16S:GENL\r\n\
             :16R:SUBSAFE\r\n:16R:FIN\r\n:35B:ISIN US0378331005\r\nAPPLE INC\r\n\
             :16R:TRAN\r\n:16R:LINK\r\n:20C::RELA//T-{reference}\r\n:16S:LINK\r\n\
             :16R:TRANSDET\r\n:36B::PSTA//UNIT/10,\r\n:19A::PSTA//USD{amount}\r\n\
             :22F::TRAN//SETT\r\n:22H::REDE//RECE\r\n:22H::PAYM//APMT\r\n\
             :98A::ESET//20261120\r\n:16S:TRANSDET\r\n:16S:TRAN\r\n:16S:FIN\r\n\
             :16S:SUBSAFE\r\n-}}\r\n"
        )
    };
    let text = [
        message("M1", ":97A::SAFE//DEPOT-1\r\n", "1905,"),
        // No safekeeping account anywhere.
        message("M2", "", "1000,"),
        message("M3", ":97A::SAFE//DEPOT-1\r\n", "1910,"),
    ]
    .concat();
    let b = crate::swift::parse(SourceFormat::Mt536, "bank_b", "m536", text.as_bytes())
        .expect("two messages load");
    let keys: Vec<_> = b
        .transactions
        .iter()
        .map(|t| (t.natural_key.as_str(), t.amount))
        .collect();
    assert_eq!(
        keys,
        [
            ("ref:T-M1", "1905".parse().unwrap()),
            ("ref:T-M3", "1910".parse().unwrap())
        ]
    );
    let rejected: Vec<_> = b
        .rejected
        .iter()
        .map(|r| {
            (
                r.index,
                r.reference.as_deref(),
                r.field.as_deref(),
                r.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [(
            2,
            Some("M2"),
            Some(":97A:"),
            "the statement names no safekeeping account (:97A::SAFE//)"
        )]
    );
}
