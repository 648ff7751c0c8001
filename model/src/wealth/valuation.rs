//! A position's value in its price currency, and how figures are rounded for display.
//!
//! Value = quantity x price (a percent price applies to the face amount: quantity x price /
//! 100) plus accrued interest. Without a price the bank's own market value is taken, and the
//! answer says so; with neither there is no value (never zero).

use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::Currency;
use crate::records::PriceType;

/// What a position holds and what it is priced at, in its price currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub price_type: PriceType,
    pub market_value: Option<Decimal>,
    pub accrued_interest: Option<Decimal>,
}

/// How a value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueBasis {
    /// Quantity x price (+ accrued interest).
    Price,
    /// The bank's stated market value (+ accrued interest): the position has no price.
    BankMarketValue,
}

impl ValueBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueBasis::Price => "price",
            ValueBasis::BankMarketValue => "bank_market_value",
        }
    }
}

/// A position's value in its price currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    /// Without accrued interest.
    pub clean: Decimal,
    pub accrued_interest: Decimal,
    pub basis: ValueBasis,
}

impl Value {
    /// Clean value plus accrued interest.
    pub fn total(&self) -> Decimal {
        self.clean + self.accrued_interest
    }
}

impl Holding {
    /// The value, or `None` when there is neither a price nor a market value.
    pub fn value(&self) -> Option<Value> {
        let accrued_interest = self.accrued_interest.unwrap_or(Decimal::ZERO);
        let (clean, basis) = match (self.price, self.market_value) {
            (Some(price), _) => {
                let v = match self.price_type {
                    PriceType::Amount => self.quantity * price,
                    PriceType::Percent => self.quantity * price / Decimal::ONE_HUNDRED,
                };
                (v, ValueBasis::Price)
            }
            (None, Some(mv)) => (mv, ValueBasis::BankMarketValue),
            (None, None) => return None,
        };
        Some(Value {
            clean,
            accrued_interest,
            basis,
        })
    }
}

/// Digits after the decimal point of a currency's minor unit (ISO 4217): 0 for JPY, KRW and
/// the other unit-only currencies, 3 for the dinars, 2 for the rest.
pub fn minor_units(currency: Currency) -> u32 {
    match currency.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// An amount as presented: rounded half to even ("banker's rounding") to the currency's minor
/// unit. Only for display: sums are made of unrounded figures.
pub fn present(amount: Decimal, currency: Currency) -> Decimal {
    amount.round_dp_with_strategy(minor_units(currency), RoundingStrategy::MidpointNearestEven)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wealth::dec;

    fn holding(qty: Decimal, price: Option<Decimal>, ty: PriceType) -> Holding {
        Holding {
            quantity: qty,
            price,
            price_type: ty,
            market_value: None,
            accrued_interest: None,
        }
    }

    #[test]
    fn amount_and_percent_prices_and_accrued_interest() {
        let share = holding(dec!(150), Some(dec!(187.35)), PriceType::Amount);
        assert_eq!(share.value().unwrap().total(), dec!(28102.50));
        // A bond: 250,000 face at 98.125 % with 1,234.56 accrued.
        let bond = Holding {
            accrued_interest: Some(dec!(1234.56)),
            ..holding(dec!(250000), Some(dec!(98.125)), PriceType::Percent)
        };
        let v = bond.value().unwrap();
        assert_eq!(v.clean, dec!(245312.5));
        assert_eq!(v.total(), dec!(246547.06));
        assert_eq!(v.basis, ValueBasis::Price);
    }

    #[test]
    fn without_a_price_the_banks_value_is_named_and_without_either_there_is_none() {
        let fund = Holding {
            market_value: Some(dec!(10500.00)),
            ..holding(dec!(100), None, PriceType::Amount)
        };
        let v = fund.value().unwrap();
        assert_eq!(
            (v.total(), v.basis.as_str()),
            (dec!(10500.00), "bank_market_value")
        );
        assert_eq!(holding(dec!(100), None, PriceType::Amount).value(), None);
    }

    #[test]
    fn presentation_rounds_half_to_even_to_the_minor_unit() {
        let chf = Currency::parse("CHF").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(present(dec!(2.345), chf), dec!(2.34));
        assert_eq!(present(dec!(2.355), chf), dec!(2.36));
        assert_eq!(present(dec!(2.3451), chf), dec!(2.35));
        assert_eq!(present(dec!(1234.5), jpy), dec!(1234));
        assert_eq!(present(dec!(1235.5), jpy), dec!(1236));
        assert_eq!(present(dec!(1.0005), kwd), dec!(1.000));
    }
}
