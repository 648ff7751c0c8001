//! The ECB's euro foreign exchange reference rates (`eurofxref-daily.xml`,
//! `eurofxref-hist.xml`, `eurofxref-hist-90d.xml`): a gesmes envelope holding one
//! `<Cube time="YYYY-MM-DD">` per day, each with `<Cube currency="USD" rate="1.0540"/>` per
//! currency, quoted as units of the currency per 1 EUR.
//!
//! A rate for a code ISO 4217 does not know is left out with a warning (the history file keeps
//! codes of currencies since replaced); anything else malformed refuses the document, located
//! by line. A document with no rate at all is an error, never an empty success.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use eam_model::domain::Currency;
use eam_model::wealth::fx::{EurRate, RateSource};
use quick_xml::events::{BytesStart, Event};
use rust_decimal::Decimal;

use crate::error::ParseError;

/// The rates of one document, oldest day first, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct EcbRates {
    pub rates: Vec<EurRate>,
    pub warnings: Vec<String>,
}

/// Reads an ECB reference-rate document.
pub fn parse(document: &str, bytes: &[u8]) -> Result<EcbRates, ParseError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut day: Option<NaiveDate> = None;
    let mut root_seen = false;
    let mut seen: HashMap<(NaiveDate, Currency), Decimal> = HashMap::new();
    let mut out = EcbRates {
        rates: Vec::new(),
        warnings: Vec::new(),
    };
    loop {
        buf.clear();
        let line = line_at(bytes, reader.buffer_position());
        let err = |reason: String| located(document, line, reason);
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(format!("malformed XML: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name();
                if !root_seen {
                    if name.as_ref() != b"Envelope" {
                        return Err(err(format!(
                            "not an ECB reference-rate document: the root element is <{}>, not a gesmes Envelope",
                            String::from_utf8_lossy(name.as_ref())
                        )));
                    }
                    root_seen = true;
                    continue;
                }
                if name.as_ref() != b"Cube" {
                    continue;
                }
                let attrs = attributes(e).map_err(&err)?;
                if let Some(time) = attrs.get("time") {
                    let date = NaiveDate::parse_from_str(time, "%Y-%m-%d")
                        .map_err(|_| err(format!("Cube time '{time}' is not a YYYY-MM-DD date")))?;
                    day = Some(date);
                } else if let Some(code) = attrs.get("currency") {
                    let date =
                        day.ok_or_else(|| err(format!("a {code} rate outside a dated Cube")))?;
                    let text = attrs.get("rate").ok_or_else(|| {
                        err(format!("the {code} rate of {date} has no rate attribute"))
                    })?;
                    let rate = Decimal::from_str(text).map_err(|_| {
                        err(format!(
                            "the {code} rate of {date} is not a decimal: '{text}'"
                        ))
                    })?;
                    if rate <= Decimal::ZERO {
                        return Err(err(format!(
                            "the {code} rate of {date} must be positive: {rate}"
                        )));
                    }
                    let Ok(currency) = Currency::parse(code) else {
                        out.warnings.push(format!(
                            "line {line}: the rate of '{code}' on {date} is left out: not an ISO 4217 currency"
                        ));
                        continue;
                    };
                    match seen.insert((date, currency), rate) {
                        Some(before) if before != rate => {
                            return Err(err(format!(
                                "{code} on {date} is given twice, as {before} and {rate}"
                            )));
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    out.rates.push(EurRate {
                        currency,
                        date,
                        per_eur: rate,
                        source: RateSource::Ecb,
                    });
                }
            }
            Event::End(ref e) if e.local_name().as_ref() == b"Cube" => {}
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(located(document, 1, "the document is empty".into()));
    }
    if out.rates.is_empty() {
        return Err(located(
            document,
            line_at(bytes, bytes.len() as u64),
            "the document holds no rate (no <Cube time=...> with a currency rate)".into(),
        ));
    }
    out.rates.sort_by_key(|r| (r.date, r.currency));
    Ok(out)
}

fn attributes(e: &BytesStart<'_>) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| format!("malformed attribute ({e})"))?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| format!("malformed attribute value ({e})"))?;
        map.insert(key, value.trim().to_owned());
    }
    Ok(map)
}

fn line_at(bytes: &[u8], position: u64) -> usize {
    let end = usize::try_from(position)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
}

fn located(document: &str, line: usize, reason: String) -> ParseError {
    ParseError {
        document: document.to_owned(),
        line: Some(line),
        column: None,
        field: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAILY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender>
		<gesmes:name>European Central Bank</gesmes:name>
	</gesmes:Sender>
	<Cube>
		<Cube time='2026-12-04'>
			<Cube currency='USD' rate='1.0540'/>
			<Cube currency='JPY' rate='158.31'/>
			<Cube currency='CHF' rate='0.9321'/>
		</Cube>
	</Cube>
</gesmes:Envelope>"#;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_daily_file_gives_each_rate_per_eur_with_its_date() {
        let parsed = parse("eurofxref-daily.xml", DAILY.as_bytes()).unwrap();
        let got: Vec<(String, NaiveDate, String)> = parsed
            .rates
            .iter()
            .map(|r| {
                (
                    r.currency.as_str().to_owned(),
                    r.date,
                    r.per_eur.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("CHF".into(), d("2026-12-04"), "0.9321".into()),
                ("JPY".into(), d("2026-12-04"), "158.31".into()),
                ("USD".into(), d("2026-12-04"), "1.0540".into()),
            ]
        );
        assert!(parsed.rates.iter().all(|r| r.source == RateSource::Ecb));
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn a_history_file_gives_every_day_and_unknown_codes_are_left_out_with_a_warning() {
        let hist = r#"<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<Cube>
<Cube time="2026-12-04"><Cube currency="USD" rate="1.0540"/></Cube>
<Cube time="2026-12-03"><Cube currency="USD" rate="1.0525"/><Cube currency="XYZ" rate="2.5"/></Cube>
</Cube></gesmes:Envelope>"#;
        let parsed = parse("eurofxref-hist.xml", hist.as_bytes()).unwrap();
        assert_eq!(
            parsed
                .rates
                .iter()
                .map(|r| (r.date, r.per_eur.to_string()))
                .collect::<Vec<_>>(),
            vec![
                (d("2026-12-03"), "1.0525".into()),
                (d("2026-12-04"), "1.0540".into())
            ]
        );
        assert_eq!(
            parsed.warnings,
            vec!["line 4: the rate of 'XYZ' on 2026-12-03 is left out: not an ISO 4217 currency"]
        );
    }

    #[test]
    fn malformed_documents_are_refused_with_the_line_and_reason() {
        let cases = [
            (
                DAILY.replace("1.0540", "1,0540"),
                "eurofxref-daily.xml, line 9: the USD rate of 2026-12-04 is not a decimal: '1,0540'",
            ),
            (
                DAILY.replace("1.0540", "-1"),
                "eurofxref-daily.xml, line 9: the USD rate of 2026-12-04 must be positive: -1",
            ),
            (
                DAILY.replace("2026-12-04", "04.12.2026"),
                "eurofxref-daily.xml, line 8: Cube time '04.12.2026' is not a YYYY-MM-DD date",
            ),
            (
                DAILY.replace(" rate='0.9321'", ""),
                "eurofxref-daily.xml, line 11: the CHF rate of 2026-12-04 has no rate attribute",
            ),
            (
                DAILY.replace(
                    "<Cube currency='JPY' rate='158.31'/>",
                    "<Cube currency='USD' rate='1.06'/>",
                ),
                "eurofxref-daily.xml, line 10: USD on 2026-12-04 is given twice, as 1.0540 and 1.06",
            ),
            (
                "<Document/>".to_owned(),
                "eurofxref-daily.xml, line 1: not an ECB reference-rate document: the root element is <Document>, not a gesmes Envelope",
            ),
            (
                "".to_owned(),
                "eurofxref-daily.xml, line 1: the document is empty",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes=\"x\"><Cube></Cube></gesmes:Envelope>".to_owned(),
                "eurofxref-daily.xml, line 1: the document holds no rate (no <Cube time=...> with a currency rate)",
            ),
        ];
        for (text, want) in cases {
            let got = parse("eurofxref-daily.xml", text.as_bytes()).unwrap_err();
            assert_eq!(got.to_string(), want);
        }
    }
}
