//! Deterministic natural keys for records the bank gives no reference for.
//!
//! The keys are stored and compared across syncs, so the bytes hashed and the text of a key
//! never change: `h:` + the first 16 bytes of the SHA-256 of the fields in hex, each field
//! preceded by its length (a little-endian `u64`). [`KeyHasher`] takes the fields one by one,
//! so a parser can feed values it has on the stack or in a reused buffer instead of building
//! a list of strings; [`hashed`] is the same for fields already at hand.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// A key from the identifying fields of a record: `h:` + hex SHA-256 of the fields, each
/// length-prefixed so that no two different field lists hash the same bytes.
pub fn hashed(fields: &[&str]) -> String {
    let mut key = KeyHasher::new();
    for f in fields {
        key.field(f);
    }
    key.finish()
}

/// Builds the key of [`hashed`] one field at a time: `KeyHasher::new().field(a).field(b)`
/// hashes what `hashed(&[a, b])` does.
#[derive(Debug, Clone, Default)]
pub struct KeyHasher(Sha256);

impl KeyHasher {
    pub fn new() -> Self {
        KeyHasher(Sha256::new())
    }

    /// Adds the next field.
    pub fn field(&mut self, field: &str) -> &mut Self {
        self.bytes(field.as_bytes())
    }

    /// Adds a date as its `Display` writes it (`2024-01-31`), without formatting machinery.
    pub fn date(&mut self, date: NaiveDate) -> &mut Self {
        let (month, day) = (date.month(), date.day());
        match u32::try_from(date.year()) {
            Ok(year) if year <= 9999 => self.bytes(&[
                digit(year / 1000),
                digit(year / 100),
                digit(year / 10),
                digit(year),
                b'-',
                digit(month / 10),
                digit(month),
                b'-',
                digit(day / 10),
                digit(day),
            ]),
            // Signed or five-digit years: as rare as they are odd, left to chrono.
            _ => self.field(&date.to_string()),
        }
    }

    /// Adds a decimal as `Display` writes it once normalized (`12.5`, `0.05`, `100`: no
    /// trailing zeros), without formatting machinery.
    pub fn normalized(&mut self, value: Decimal) -> &mut Self {
        let value = value.normalize();
        let scale = value.scale() as usize;
        let mut mantissa = match u64::try_from(value.mantissa()) {
            Ok(m) if scale <= MAX_SCALE => m,
            // Negative or beyond 19 digits: left to rust_decimal.
            _ => return self.field(&value.to_string()),
        };
        // Written right to left: the fraction's digits, the point, then the whole part
        // (`0` when there is none). At most 28 + 1 + 20 bytes.
        let mut text = [0u8; MAX_SCALE + 1 + 20];
        let mut at = text.len();
        let mut put = |b: u8| {
            at -= 1;
            text[at] = b;
        };
        if scale > 0 {
            for _ in 0..scale {
                put(digit_u64(mantissa));
                mantissa /= 10;
            }
            put(b'.');
        }
        loop {
            put(digit_u64(mantissa));
            mantissa /= 10;
            if mantissa == 0 {
                break;
            }
        }
        self.bytes(&text[at..])
    }

    fn bytes(&mut self, field: &[u8]) -> &mut Self {
        self.0.update((field.len() as u64).to_le_bytes());
        self.0.update(field);
        self
    }

    /// The key: `h:` and 32 lower-case hex digits.
    pub fn finish(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = self.0.finalize();
        let mut key = String::with_capacity(34);
        key.push_str("h:");
        for &b in &digest[..16] {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        key
    }
}

/// The largest scale of a `Decimal`.
const MAX_SCALE: usize = 28;

/// The last decimal digit of `n` as an ASCII digit.
fn digit(n: u32) -> u8 {
    b'0' + (n % 10) as u8
}

fn digit_u64(n: u64) -> u8 {
    b'0' + (n % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys already stored must keep matching: these values were computed independently
    // (Python's hashlib) from the definition in the module documentation.
    #[test]
    fn keys_are_the_stored_ones() {
        assert_eq!(
            hashed(&["DE89370400440532013000", "2024-01-01", ""]),
            "h:2d263857e943506621c5825a98b8fe7b"
        );
        assert_eq!(hashed(&[]), "h:e3b0c44298fc1c149afbf4c8996fb924");
    }

    #[test]
    fn field_by_field_is_the_same_as_a_list() {
        let mut key = KeyHasher::new();
        key.field("DE89370400440532013000")
            .field("2024-01-01")
            .field("");
        assert_eq!(
            key.finish(),
            hashed(&["DE89370400440532013000", "2024-01-01", ""])
        );
    }

    fn one_field(text: &str) -> String {
        hashed(&[text])
    }

    fn dec(s: &str) -> Decimal {
        s.parse().expect("test literal is a decimal")
    }

    #[test]
    fn dates_hash_as_display_writes_them() {
        for (y, m, d) in [
            (2024, 1, 31),
            (1979, 12, 1),
            (9, 2, 3),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 6, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).expect("test date exists");
            let mut key = KeyHasher::new();
            key.date(date);
            assert_eq!(key.finish(), one_field(&date.to_string()), "{date}");
        }
    }

    #[test]
    fn decimals_hash_as_normalized_display_writes_them() {
        for s in [
            "0",
            "0.00",
            "-0.0",
            "1",
            "100",
            "100.00",
            "12.50",
            "0.05",
            "0.000001",
            "123456.789",
            "18446744073709551615",
            "18446744073709551616",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "-12.5",
        ] {
            let value = dec(s);
            let mut key = KeyHasher::new();
            key.normalized(value);
            assert_eq!(
                key.finish(),
                one_field(&value.normalize().to_string()),
                "{s}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_decimal_hashes_as_display_writes_it(mantissa: i128, scale in 0u32..=28) {
            let mantissa = mantissa % 79_228_162_514_264_337_593_543_950_336;
            let value = Decimal::from_i128_with_scale(mantissa, scale);
            let mut key = KeyHasher::new();
            key.normalized(value);
            proptest::prop_assert_eq!(key.finish(), one_field(&value.normalize().to_string()));
        }

        #[test]
        fn small_decimals_hash_as_display_writes_them(mantissa: u64, scale in 0u32..=28) {
            let value = Decimal::from_i128_with_scale(i128::from(mantissa), scale);
            let mut key = KeyHasher::new();
            key.normalized(value);
            proptest::prop_assert_eq!(key.finish(), one_field(&value.normalize().to_string()));
        }
    }
}
