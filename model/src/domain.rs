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

/// An ISO 4217 currency code, e.g. `CHF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro, through which every cross rate goes.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses an upper-case ISO 4217 code; anything else (lower case, unknown code) is refused.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bytes = s.as_bytes();
        if bytes.len() == 3 && ISO_4217.binary_search(&s).is_ok() {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(DomainError::Currency(s.to_owned()))
        }
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
