//! Decimals as the API writes them: strings with the scale they have, the bank's own
//! ("101.50" stays "101.50", never "101.5"). poem-openapi's `Decimal` writes the normalized
//! form; every amount, quantity, price and rate of an answer is a [`Dec`] instead. Reading is
//! poem-openapi's.

use std::borrow::Cow;

use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use rust_decimal::Decimal;
use serde_json::Value;

/// A decimal that keeps its scale in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec(pub Decimal);

impl From<Decimal> for Dec {
    fn from(d: Decimal) -> Self {
        Dec(d)
    }
}

impl Type for Dec {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        Decimal::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        Decimal::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Dec {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Decimal::parse_from_json(value)
            .map(Dec)
            .map_err(ParseError::propagate)
    }
}

impl ToJSON for Dec {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn the_scale_is_kept() {
        let d = Dec(Decimal::from_str("73997.00").unwrap());
        assert_eq!(d.to_json(), Some(Value::String("73997.00".into())));
        assert_eq!(
            Dec::parse_from_json(Some(Value::String("101.50".into()))).unwrap(),
            d_of("101.50")
        );
        assert_eq!(d_of("101.50").0.scale(), 2);
    }

    fn d_of(s: &str) -> Dec {
        Dec(Decimal::from_str(s).unwrap())
    }
}
