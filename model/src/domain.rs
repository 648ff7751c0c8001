//! Validated domain types: parsed once at the boundary, trusted everywhere after.
//!
//! "Parse, don't validate": a value of one of these types can only be built through its
//! `parse` function, so a function that takes an `Isin` never checks it again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a domain value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("'{0}' is not an ISO 4217 currency code")]
    Currency(String),
    #[error("'{value}' is not a valid ISIN: {reason}")]
    Isin { value: String, reason: &'static str },
    #[error("'{value}' is not a valid IBAN: {reason}")]
    Iban { value: String, reason: &'static str },
}

/// Active ISO 4217 alphabetic codes (plus the precious-metal and fund codes banks report).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV",
    "WST", "XAF", "XAG", "XAU", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA",
    "YER", "ZAR", "ZMW", "ZWG",
];

/// Withdrawn ISO 4217 codes (ISO 4217 list three, historic denominations): old statements,
/// archived files and securities priced before a currency's end still carry them. They are
/// valid codes of the past, not typing errors, so [`Currency::parse`] accepts them and
/// [`Currency::is_historic`] says which they are. A code ISO reused for a new currency (none
/// so far among these) would have to leave this table.
const ISO_4217_HISTORIC: &[&str] = &[
    "ADP", "AFA", "ALK", "AOK", "AON", "AOR", "ARA", "ARP", "ARY", "ATS", "AYM", "AZM", "BAD",
    "BEC", "BEF", "BEL", "BGJ", "BGK", "BGL", "BOP", "BRB", "BRC", "BRE", "BRN", "BRR", "BUK",
    "BYB", "BYR", "CHC", "CSD", "CSJ", "CSK", "CUC", "CYP", "DDM", "DEM", "ECS", "ECV", "EEK",
    "ESA", "ESB", "ESP", "FIM", "FRF", "GEK", "GHC", "GHP", "GNE", "GNS", "GQE", "GRD", "GWE",
    "GWP", "HRD", "HRK", "IEP", "ILP", "ILR", "ISJ", "ITL", "LAJ", "LSM", "LTL", "LTT", "LUC",
    "LUF", "LUL", "LVL", "LVR", "MGF", "MLF", "MRO", "MTL", "MTP", "MVQ", "MXP", "MZE", "MZM",
    "NIC", "NLG", "PEH", "PEI", "PES", "PLZ", "PTE", "RHD", "ROK", "ROL", "RUR", "SDD", "SDP",
    "SIT", "SKK", "SLL", "SRG", "STD", "SUR", "TJR", "TMM", "TPE", "TRL", "UAK", "UGS", "UGW",
    "USS", "UYN", "UYP", "VEB", "VEF", "VNC", "XEU", "XFO", "XFU", "XRE", "YDD", "YUD", "YUM",
    "YUN", "ZAL", "ZMK", "ZRN", "ZRZ", "ZWC", "ZWD", "ZWL", "ZWN", "ZWR",
];

/// The fixed conversion rates of the euro's legacy currencies: units of the currency per
/// euro, as the Council fixed them irrevocably (Regulation 2866/98 for the founders, later
/// regulations for each joiner; the ECU was replaced one to one). Exact decimals, never
/// floats: `(mantissa, scale)`.
const EURO_LEGACY_RATES: &[(&str, i64, u32)] = &[
    ("ATS", 137_603, 4),
    ("BEF", 403_399, 4),
    ("CYP", 585_274, 6),
    ("DEM", 195_583, 5),
    ("EEK", 156_466, 4),
    ("ESP", 166_386, 3),
    ("FIM", 594_573, 5),
    ("FRF", 655_957, 5),
    ("GRD", 340_750, 3),
    ("HRK", 753_450, 5),
    ("IEP", 787_564, 6),
    ("ITL", 193_627, 2),
    ("LTL", 345_280, 5),
    ("LUF", 403_399, 4),
    ("LVL", 702_804, 6),
    ("MTL", 429_300, 6),
    ("NLG", 220_371, 5),
    ("PTE", 200_482, 3),
    ("SIT", 239_640, 3),
    ("SKK", 301_260, 4),
    ("XEU", 1, 0),
];

/// An ISO 4217 currency code, e.g. `CHF`; a withdrawn one (`DEM`) is valid and historic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro, through which every cross rate goes.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses an upper-case ISO 4217 code, active or withdrawn (list three); anything else
    /// (lower case, unknown code) is refused.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bytes = s.as_bytes();
        if bytes.len() == 3
            && (ISO_4217.binary_search(&s).is_ok() || ISO_4217_HISTORIC.binary_search(&s).is_ok())
        {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(DomainError::Currency(s.to_owned()))
        }
    }

    /// True for a withdrawn currency (ISO 4217 list three), e.g. `DEM`.
    pub fn is_historic(&self) -> bool {
        ISO_4217_HISTORIC.binary_search(&self.as_str()).is_ok()
    }

    /// The fixed conversion rate of a euro legacy currency: units of it per euro (`DEM`
    /// 1.95583); `None` for every other currency, whose rate to the euro floats.
    pub fn euro_conversion_rate(&self) -> Option<rust_decimal::Decimal> {
        EURO_LEGACY_RATES
            .binary_search_by(|(code, ..)| (*code).cmp(self.as_str()))
            .ok()
            .map(|i| {
                let (_, mantissa, scale) = EURO_LEGACY_RATES[i];
                rust_decimal::Decimal::new(mantissa, scale)
            })
    }

    /// An amount of a euro legacy currency in euro: divided by the fixed rate and rounded to
    /// the cent, half away from zero, as the conversion regulation (1103/97, articles 4 and 5)
    /// prescribes; `None` when the currency has no fixed rate.
    pub fn to_euro(&self, amount: rust_decimal::Decimal) -> Option<rust_decimal::Decimal> {
        let rate = self.euro_conversion_rate()?;
        amount.checked_div(rate).map(|eur| {
            eur.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        })
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        // The bytes come from `parse`, which only accepts ASCII codes from the table.
        std::str::from_utf8(&self.0).expect("currency codes are ASCII by construction")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// An ISIN (ISO 6166) whose check digit has been verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Isin(String);

impl Isin {
    /// Parses a 12-character ISIN: two-letter country prefix, nine alphanumerics, a Luhn check
    /// digit computed over the letters expanded to numbers (A = 10 ... Z = 35).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::Isin {
            value: s.to_owned(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != 12 {
            return Err(err("must be 12 characters"));
        }
        if !b[..2].iter().all(u8::is_ascii_uppercase) {
            return Err(err("must start with a two-letter country code"));
        }
        if !b[2..11]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(err(
                "characters 3 to 11 must be upper-case letters or digits",
            ));
        }
        if !b[11].is_ascii_digit() {
            return Err(err("the last character must be the check digit"));
        }
        if isin_check_digit(&b[..11]) != b[11] - b'0' {
            return Err(err("check digit does not match"));
        }
        Ok(Isin(s.to_owned()))
    }

    /// The ISIN text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Luhn check digit over the ISIN body with letters expanded to two digits.
pub fn isin_check_digit(body: &[u8]) -> u8 {
    let mut digits: Vec<u8> = Vec::with_capacity(22);
    for &c in body {
        if c.is_ascii_digit() {
            digits.push(c - b'0');
        } else {
            let v = c - b'A' + 10;
            digits.push(v / 10);
            digits.push(v % 10);
        }
    }
    let mut sum = 0u32;
    // The rightmost digit of the body is doubled (the check digit would sit to its right).
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - (sum % 10)) % 10) as u8
}

impl fmt::Display for Isin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Isin {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Isin::parse(&s)
    }
}

impl From<Isin> for String {
    fn from(i: Isin) -> String {
        i.0
    }
}

/// An IBAN (ISO 13616) in electronic form (no spaces) whose mod-97 check holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(String);

impl Iban {
    /// Parses an IBAN; spaces (print form) are removed first.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        let err = |reason| DomainError::Iban {
            value: s.to_owned(),
            reason,
        };
        let b = compact.as_bytes();
        if !(15..=34).contains(&b.len()) {
            return Err(err("length must be 15 to 34 characters"));
        }
        if !b[..2].iter().all(u8::is_ascii_uppercase) || !b[2..4].iter().all(u8::is_ascii_digit) {
            return Err(err("must start with a country code and two check digits"));
        }
        if !b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(err("must contain only upper-case letters and digits"));
        }
        let rearranged = b[4..].iter().chain(&b[..4]);
        let mut rem: u32 = 0;
        for &c in rearranged {
            if c.is_ascii_digit() {
                rem = (rem * 10 + u32::from(c - b'0')) % 97;
            } else {
                rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97;
            }
        }
        if rem != 1 {
            return Err(err("mod-97 check failed"));
        }
        Ok(Iban(compact))
    }

    /// The IBAN in electronic form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Iban {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Iban::parse(&s)
    }
}

impl From<Iban> for String {
    fn from(i: Iban) -> String {
        i.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn historic_tables_are_sorted_and_apart_from_the_active_codes() {
        assert!(ISO_4217_HISTORIC.windows(2).all(|w| w[0] < w[1]));
        assert!(EURO_LEGACY_RATES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            ISO_4217_HISTORIC
                .iter()
                .all(|c| ISO_4217.binary_search(c).is_err())
        );
        assert!(
            EURO_LEGACY_RATES
                .iter()
                .all(|(c, ..)| ISO_4217_HISTORIC.binary_search(c).is_ok())
        );
    }

    #[test]
    fn withdrawn_currencies_are_valid_and_historic() {
        for code in [
            "DEM", "FRF", "ITL", "NLG", "ATS", "BEF", "ESP", "PTE", "FIM", "IEP", "LUF", "GRD",
            "XEU", "HRK", "YUM", "ZWD",
        ] {
            let c = Currency::parse(code).unwrap();
            assert!(c.is_historic(), "{code}");
            assert_eq!(c.as_str(), code);
        }
        assert!(!Currency::parse("EUR").unwrap().is_historic());
        assert!(!Currency::parse("CHF").unwrap().is_historic());
        // Serde reads them like any other code.
        let c: Currency = serde_json::from_str("\"DEM\"").unwrap();
        assert!(c.is_historic());
    }

    #[test]
    fn euro_legacy_currencies_convert_at_their_fixed_rates() {
        let rates: Vec<(&str, String)> = [
            "DEM", "FRF", "ITL", "NLG", "ATS", "BEF", "LUF", "ESP", "PTE", "FIM", "IEP", "GRD",
            "SIT", "CYP", "MTL", "SKK", "EEK", "LVL", "LTL", "HRK",
        ]
        .into_iter()
        .map(|c| {
            let rate = Currency::parse(c).unwrap().euro_conversion_rate().unwrap();
            (c, rate.to_string())
        })
        .collect();
        assert_eq!(
            rates,
            vec![
                ("DEM", "1.95583".to_owned()),
                ("FRF", "6.55957".to_owned()),
                ("ITL", "1936.27".to_owned()),
                ("NLG", "2.20371".to_owned()),
                ("ATS", "13.7603".to_owned()),
                ("BEF", "40.3399".to_owned()),
                ("LUF", "40.3399".to_owned()),
                ("ESP", "166.386".to_owned()),
                ("PTE", "200.482".to_owned()),
                ("FIM", "5.94573".to_owned()),
                ("IEP", "0.787564".to_owned()),
                ("GRD", "340.750".to_owned()),
                ("SIT", "239.640".to_owned()),
                ("CYP", "0.585274".to_owned()),
                ("MTL", "0.429300".to_owned()),
                ("SKK", "30.1260".to_owned()),
                ("EEK", "15.6466".to_owned()),
                ("LVL", "0.702804".to_owned()),
                ("LTL", "3.45280".to_owned()),
                ("HRK", "7.53450".to_owned()),
            ]
        );
        let dem = Currency::parse("DEM").unwrap();
        assert_eq!(
            dem.to_euro("1000".parse().unwrap()),
            Some("511.29".parse().unwrap())
        );
        assert_eq!(
            dem.to_euro("195583".parse().unwrap()),
            Some("100000.00".parse().unwrap())
        );
        let xeu = Currency::parse("XEU").unwrap();
        assert_eq!(
            xeu.to_euro("12.345".parse().unwrap()),
            Some("12.35".parse().unwrap())
        );
        assert_eq!(Currency::parse("CHF").unwrap().euro_conversion_rate(), None);
        assert_eq!(
            Currency::parse("ZWD")
                .unwrap()
                .to_euro("1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn currencies_are_checked_against_iso_4217() {
        assert_eq!(Currency::parse("CHF").unwrap().as_str(), "CHF");
        assert!(Currency::parse("chf").is_err());
        assert!(Currency::parse("XXY").is_err());
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn isin_check_digit_is_verified() {
        for good in [
            "US0378331005",
            "CH0012032048",
            "DE0005140008",
            "GB0002634946",
            "XS2021832634",
        ] {
            assert!(Isin::parse(good).is_ok(), "{good}");
        }
        assert!(Isin::parse("US0378331006").is_err());
        assert!(Isin::parse("us0378331005").is_err());
        assert!(Isin::parse("US037833100").is_err());
    }

    #[test]
    fn iban_mod_97_is_verified() {
        assert!(Iban::parse("CH93 0076 2011 6238 5295 7").is_ok());
        assert!(Iban::parse("DE89370400440532013000").is_ok());
        assert!(Iban::parse("DE89370400440532013001").is_err());
        assert!(Iban::parse("DE8937").is_err());
    }
}
