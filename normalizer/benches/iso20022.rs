//! Throughput of the ISO 20022 readers: a generated ~100 MB camt.053 (many accounts, entries
//! with details, references, parties and remittance text, as a bank's end-of-day file for a
//! wealth manager's clients looks) through the streaming API, and a 50,000-position semt.002.
//!
//! Run: `cargo bench -p eam-normalizer --bench iso20022`. Criterion prints the time per file
//! and the throughput in MiB/s.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eam_normalizer::iso20022::{self, Record};
use eam_normalizer::model::SourceFormat;

/// A camt.053.001.08 document of about `target` bytes: statements of 200 entries each.
fn camt053(target: usize) -> Vec<u8> {
    let mut s = String::with_capacity(target + (1 << 20));
    s.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n<BkToCstmrStmt>\n<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm></GrpHdr>\n",
    );
    let mut stmt = 0u64;
    while s.len() < target {
        stmt += 1;
        let mut balance: i64 = 100_000_000;
        let _ = writeln!(
            s,
            "<Stmt><Id>STMT-{stmt}</Id><ElctrncSeqNb>{stmt}</ElctrncSeqNb><CreDtTm>2026-11-20T22:00:00+01:00</CreDtTm>\
             <Acct><Id><Othr><Id>ACC-{stmt:08}</Id></Othr></Id><Ccy>CHF</Ccy><Ownr><Nm>Client {stmt}</Nm></Ownr></Acct>\
             <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"CHF\">{}.{:02}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>",
            balance / 100,
            balance % 100
        );
        let mut entries = String::new();
        for n in 0..200u64 {
            let cents = ((stmt * 7919 + n * 104_729) % 5_000_000) as i64 + 1;
            let credit = n % 3 != 0;
            balance += if credit { cents } else { -cents };
            let _ = writeln!(
                entries,
                "<Ntry><NtryRef>{stmt}-{n}</NtryRef><Amt Ccy=\"CHF\">{}.{:02}</Amt><CdtDbtInd>{}</CdtDbtInd><RvslInd>false</RvslInd>\
                 <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-20</Dt></BookgDt><ValDt><Dt>2026-11-21</Dt></ValDt>\
                 <AcctSvcrRef>SVC-{stmt}-{n}</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{}</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>\
                 <NtryDtls><TxDtls><Refs><MsgId>MSG-{stmt}</MsgId><EndToEndId>E2E-{stmt}-{n}</EndToEndId><UETR>7a562c67-ca16-48ba-b074-65581be6f{n:03}</UETR></Refs>\
                 <Amt Ccy=\"CHF\">{}.{:02}</Amt><CdtDbtInd>{}</CdtDbtInd>\
                 <RltdPties><Dbtr><Pty><Nm>Debtor Company {n} AG</Nm><PstlAdr><StrtNm>Bahnhofstrasse</StrtNm><BldgNb>{n}</BldgNb><PstCd>8001</PstCd><TwnNm>Zuerich</TwnNm><Ctry>CH</Ctry></PstlAdr></Pty></Dbtr>\
                 <DbtrAcct><Id><IBAN>CH9300762011623852957</IBAN></Id></DbtrAcct><Cdtr><Pty><Nm>Creditor {stmt}</Nm></Pty></Cdtr>\
                 <CdtrAcct><Id><IBAN>CH5604835012345678009</IBAN></Id></CdtrAcct></RltdPties>\
                 <RltdAgts><DbtrAgt><FinInstnId><BICFI>UBSWCHZH80A</BICFI></FinInstnId></DbtrAgt></RltdAgts>\
                 <RmtInf><Ustrd>Invoice {stmt}/{n} payment for services rendered in November</Ustrd></RmtInf></TxDtls></NtryDtls>\
                 <AddtlNtryInf>Payment {n} of statement {stmt}</AddtlNtryInf></Ntry>",
                cents / 100,
                cents % 100,
                if credit { "CRDT" } else { "DBIT" },
                if credit { "RCDT" } else { "ICDT" },
                cents / 100,
                cents % 100,
                if credit { "CRDT" } else { "DBIT" },
            );
        }
        let (sign, abs) = if balance < 0 {
            ("DBIT", -balance)
        } else {
            ("CRDT", balance)
        };
        let _ = writeln!(
            s,
            "<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"CHF\">{}.{:02}</Amt><CdtDbtInd>{sign}</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>",
            abs / 100,
            abs % 100
        );
        s.push_str(&entries);
        s.push_str("</Stmt>\n");
    }
    s.push_str("</BkToCstmrStmt>\n</Document>\n");
    s.into_bytes()
}

/// A semt.002.001.10 complete statement with `positions` holdings (equities and bonds).
fn semt002(positions: usize) -> Vec<u8> {
    let mut s = String::with_capacity(positions * 900);
    s.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:semt.002.001.10\"><SctiesBalCtdyRpt>\
         <Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn><StmtGnlDtls><StmtId>H</StmtId><StmtDtTm><Dt>2026-11-20</Dt></StmtDtTm>\
         <Frqcy><Cd>DAIL</Cd></Frqcy><UpdTp><Cd>COMP</Cd></UpdTp><StmtBsis><Cd>SETT</Cd></StmtBsis><ActvtyInd>true</ActvtyInd></StmtGnlDtls>\
         <SfkpgAcct><Id>CUST-1</Id></SfkpgAcct>\n",
    );
    for n in 0..positions {
        let bond = n % 3 == 0;
        let _ = writeln!(
            s,
            "<BalForAcct><FinInstrmId><OthrId><Id>SEC-{n}</Id><Tp><Prtry>BANK</Prtry></Tp></OthrId><Desc>Instrument number {n}</Desc></FinInstrmId>\
             <FinInstrmAttrbts><DnmtnCcy>USD</DnmtnCcy></FinInstrmAttrbts>\
             <AggtBal><ShrtLngInd>LONG</ShrtLngInd><Qty><Qty><Qty><{q}>{}</{q}></Qty></Qty></Qty></AggtBal>\
             <PricDtls><Tp><Cd>MRKT</Cd></Tp><Val>{}</Val></PricDtls>\
             <AcctBaseCcyAmts><HldgVal><Amt Ccy=\"CHF\">{}.50</Amt><Sgn>true</Sgn></HldgVal></AcctBaseCcyAmts>\
             <InstrmCcyAmts><HldgVal><Amt Ccy=\"USD\">{}.25</Amt><Sgn>true</Sgn></HldgVal><AcrdIntrstAmt><Amt Ccy=\"USD\">12.50</Amt><Sgn>true</Sgn></AcrdIntrstAmt></InstrmCcyAmts></BalForAcct>",
            (n % 1000 + 1) * 1000,
            if bond {
                "<Rate>101.25</Rate>".to_owned()
            } else {
                format!("<Amt Ccy=\"USD\">{}.10</Amt>", n % 500 + 1)
            },
            n * 10 + 1,
            n * 9 + 1,
            q = if bond { "FaceAmt" } else { "Unit" },
        );
    }
    s.push_str("</SctiesBalCtdyRpt></Document>\n");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let camt = camt053(100 * 1024 * 1024);
    let mut group = c.benchmark_group("iso20022");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(camt.len() as u64));
    group.bench_function("camt053_100mb_stream", |b| {
        b.iter(|| {
            let mut entries = 0usize;
            iso20022::read_records(
                SourceFormat::Camt053,
                "bench",
                "bench.xml",
                black_box(camt.as_slice()),
                |r| {
                    if let Record::Entry(e) = r {
                        entries += 1;
                        black_box(e);
                    }
                },
            )
            .expect("the generated statement parses");
            entries
        })
    });
    drop(camt);

    let semt = semt002(50_000);
    group.throughput(Throughput::Bytes(semt.len() as u64));
    group.bench_function("semt002_50k_positions_parse", |b| {
        b.iter(|| {
            iso20022::parse(SourceFormat::Semt002, "bench", "h.xml", black_box(&semt))
                .expect("the generated holdings parse")
                .positions
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
