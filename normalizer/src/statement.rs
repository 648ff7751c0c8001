//! Statement files (SWIFT FIN and ISO 20022): one entry point per file, whatever its format.
//!
//! Banks deliver statements as files; support and the `bank_b`/`bank_c` connectors hand the
//! raw bytes here with the format they were listed as (or [`detect`] it). A file may hold
//! several messages (statements, pages); it parses into one [`Batch`] or fails with a
//! located [`ParseError`]. In a SWIFT file of several statements or messages (MT940/942/950,
//! MT900/910, MT535/536) and a camt message of several statements, a statement that cannot
//! be read on its own (cut short, no account, a value that does not parse) is listed in
//! `Batch::rejected` while its neighbours load; a file none of whose statements reads fails.

//!
//! A zip archive (some banks deliver a day's statement files as one) is opened and each member
//! read as a file of its own, its format recognised from its content (else the one given),
//! named `<archive>!<member>` in errors and provenance. Limits keep a hostile archive from
//! exhausting memory: at most [`ZIP_MAX_MEMBERS`] members and [`ZIP_MAX_BYTES`] unpacked, no
//! archive inside an archive.

use std::io::Read;

use crate::error::ParseError;
use crate::model::{Batch, SourceFormat};

/// Members a zip archive may hold.
pub const ZIP_MAX_MEMBERS: usize = 10_000;
/// Bytes a zip archive may unpack to, all members together.
pub const ZIP_MAX_BYTES: u64 = 4 << 30;

/// True when `bytes` are a zip archive (its first local file header, or an empty archive).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Parses one statement file. `custodian` scopes securities that have no ISIN; `document`
/// names the file in errors and provenance.
pub fn parse(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    bytes: &[u8],
) -> Result<Batch, ParseError> {
    if is_zip(bytes) {
        return parse_zip(format, custodian, document, bytes);
    }
    match format {
        SourceFormat::Mt940
        | SourceFormat::Mt941
        | SourceFormat::Mt942
        | SourceFormat::Mt950
        | SourceFormat::Mt900
        | SourceFormat::Mt910
        | SourceFormat::Mt535
        | SourceFormat::Mt536 => crate::swift::parse(format, custodian, document, bytes),
        SourceFormat::Camt052
        | SourceFormat::Camt053
        | SourceFormat::Camt054
        | SourceFormat::Semt002 => crate::iso20022::parse(format, custodian, document, bytes),
        SourceFormat::BankAJson => Err(ParseError::field(
            document,
            "format",
            "bank_a JSON pages are parsed per endpoint (bank_a::parse), not as statement files",
        )),
    }
}

/// Guesses the format of a statement file from its content, `None` when it is none of them.
/// For a zip archive: the format of its first member.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    if is_zip(bytes) {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        for i in 0..archive.len().min(ZIP_MAX_MEMBERS) {
            let member = archive.by_index(i).ok()?;
            if !is_statement_member(&member) {
                continue;
            }
            let mut head = Vec::with_capacity(64 * 1024);
            member.take(64 * 1024).read_to_end(&mut head).ok()?;
            return detect(&head).filter(|_| !is_zip(&head));
        }
        return None;
    }
    crate::iso20022::detect(bytes).or_else(|| crate::swift::detect(bytes))
}

/// Directories and the files archivers add (`__MACOSX/`, dot files) are not statements.
fn is_statement_member<R: Read>(member: &zip::read::ZipFile<'_, R>) -> bool {
    let Ok(name) = member.name() else {
        return false;
    };
    let base = name.rsplit('/').next().unwrap_or(&name);
    !member.is_dir() && !name.starts_with("__MACOSX/") && !base.starts_with('.') && !base.is_empty()
}

/// Reads each member of a zip archive as a statement file (see the module docs).
fn parse_zip(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    bytes: &[u8],
) -> Result<Batch, ParseError> {
    let bad = |reason: String| ParseError::field(document, "zip", reason);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    if archive.len() > ZIP_MAX_MEMBERS {
        return Err(bad(format!(
            "the archive holds {} members, more than the {ZIP_MAX_MEMBERS} read",
            archive.len()
        )));
    }
    let mut batch = Batch::default();
    let mut unpacked = 0u64;
    let mut members = 0usize;
    for i in 0..archive.len() {
        let member = archive
            .by_index(i)
            .map_err(|e| bad(format!("member {}: {e}", i + 1)))?;
        if !is_statement_member(&member) {
            continue;
        }
        let name = member
            .name()
            .map(|n| format!("{document}!{n}"))
            .map_err(|e| bad(format!("member {}: {e}", i + 1)))?;
        // Read at most one byte past the limit, so a bomb stops there.
        let room = ZIP_MAX_BYTES - unpacked;
        let mut data = Vec::new();
        member
            .take(room + 1)
            .read_to_end(&mut data)
            .map_err(|e| ParseError::field(&name, "zip", format!("cannot unpack: {e}")))?;
        unpacked += data.len() as u64;
        if unpacked > ZIP_MAX_BYTES {
            return Err(bad(format!(
                "the archive unpacks to more than {ZIP_MAX_BYTES} bytes"
            )));
        }
        if is_zip(&data) {
            return Err(ParseError::field(
                &name,
                "zip",
                "an archive inside the archive is not read",
            ));
        }
        let member_format = detect(&data).unwrap_or(format);
        batch.extend(parse(member_format, custodian, &name, &data)?);
        members += 1;
    }
    if members == 0 {
        return Err(bad("the archive holds no statement file".to_owned()));
    }
    batch.dedup_securities();
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn auto_detection_reads_utf16_xml_with_or_without_a_bom() {
        let xml = r#"<?xml version="1.0" encoding="UTF-16"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.01"><BkToCstmrAcctRptV01></BkToCstmrAcctRptV01></Document>"#;
        let utf16: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut with_bom = vec![0xFF, 0xFE];
        with_bom.extend(&utf16);
        for bytes in [&utf16, &with_bom] {
            assert_eq!(detect(bytes), Some(SourceFormat::Camt052));
        }
    }

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            if name.ends_with('/') {
                w.add_directory(*name, options).expect("directory");
                continue;
            }
            w.start_file(*name, options).expect("member");
            w.write_all(bytes).expect("written");
        }
        w.finish().expect("archive").into_inner()
    }

    const MT940: &str = ":20:Z1\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C240101EUR10,00\n:61:240101C5,00NTRFNONREF//Z1\n:62F:C240101EUR15,00\n-\n";
    const CAMT053: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId><CreDtTm>2026-11-20T22:00:00</CreDtTm></GrpHdr>
<Stmt><Id>C1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>CHF</Ccy></Acct>
<Ntry><Amt Ccy="CHF">7.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-20</Dt></BookgDt><AcctSvcrRef>C-7</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>"#;

    #[test]
    fn each_member_of_a_zip_archive_is_read_as_a_file() {
        let zip = archive(&[
            ("2024/", b""),
            ("2024/day1.sta", MT940.as_bytes()),
            ("__MACOSX/2024/._day1.sta", b"\0\x05\x16\x07"),
            ("2024/day1.xml", CAMT053.as_bytes()),
        ]);
        assert!(is_zip(&zip));
        assert_eq!(detect(&zip), Some(SourceFormat::Mt940));
        let b = parse(SourceFormat::Mt940, "bank", "d.zip", &zip).expect("reads");
        let t: Vec<_> = b
            .transactions
            .iter()
            .map(|t| {
                (
                    t.natural_key.as_str(),
                    t.provenance.format,
                    t.provenance.document.as_str(),
                )
            })
            .collect();
        assert_eq!(
            t,
            vec![
                ("ref:Z1", SourceFormat::Mt940, "d.zip!2024/day1.sta"),
                ("ref:C-7", SourceFormat::Camt053, "d.zip!2024/day1.xml"),
            ]
        );
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert_eq!(b.statements.len(), 2);
    }

    #[test]
    fn a_member_that_fails_names_itself_and_archives_in_archives_are_refused() {
        let zip = archive(&[(
            "bad.sta",
            b":20:X\n:60F:C240101EUR1,\n:62F:C240101EUR1,\n-\n",
        )]);
        let e = parse(SourceFormat::Mt940, "bank", "d.zip", &zip).unwrap_err();
        assert_eq!(
            (e.document.as_str(), e.field.as_deref()),
            ("d.zip!bad.sta", Some(":25:"))
        );
        let inner = archive(&[("a.sta", MT940.as_bytes())]);
        let outer = archive(&[("inner.zip", &inner)]);
        let e = parse(SourceFormat::Mt940, "bank", "d.zip", &outer).unwrap_err();
        assert_eq!(
            (e.document.as_str(), e.reason.as_str()),
            (
                "d.zip!inner.zip",
                "an archive inside the archive is not read"
            )
        );
        let empty = archive(&[("dir/", b"")]);
        let e = parse(SourceFormat::Mt940, "bank", "d.zip", &empty).unwrap_err();
        assert_eq!(e.reason, "the archive holds no statement file");
        let e = parse(SourceFormat::Mt940, "bank", "d.zip", b"PK\x03\x04garbage").unwrap_err();
        assert!(e.reason.starts_with("not a readable zip archive"), "{e}");
    }
}
