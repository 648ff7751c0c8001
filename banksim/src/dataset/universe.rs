//! The securities the simulated bank knows: real listings plus, when needed, synthetic ones.
//!
//! Real ISINs (equities, bonds and funds in CHF, EUR, USD and GBP) make the data look like a
//! private bank's and exercise the platform's ISIN check digits; a few instruments without an
//! ISIN (private placements, structured products) exercise the custodian-scoped identity. A
//! custody account only holds securities in its own currency, so every cash amount of a trade
//! is `quantity x price` without an exchange rate; when an account must hold more securities
//! than the real list offers in a currency, synthetic ones (no ISIN) fill the gap. Prices here
//! are starting points only: the daily prices are a seeded walk (see `prices`).

use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::SimSecurity;

/// The currencies of accounts and securities.
pub const CURRENCIES: [&str; 4] = ["CHF", "EUR", "USD", "GBP"];

/// One row of the fixed list.
struct Listing {
    isin: Option<&'static str>,
    valor: Option<&'static str>,
    name: &'static str,
    asset_class: &'static str,
    currency: &'static str,
    /// Starting price in the security currency (percent of face for bonds); its number of
    /// decimals is the price precision.
    price: &'static str,
    /// Dividend per unit (equities, funds) or annual coupon in percent (bonds); "0" for none.
    income: &'static str,
    /// Bonds: maturity, whose month and day are the annual coupon date.
    maturity: Option<(i32, u32, u32)>,
}

// One argument per column of the table below, which reads better as rows than as structs.
#[allow(clippy::too_many_arguments)]
const fn listing(
    isin: Option<&'static str>,
    valor: Option<&'static str>,
    name: &'static str,
    asset_class: &'static str,
    currency: &'static str,
    price: &'static str,
    income: &'static str,
    maturity: Option<(i32, u32, u32)>,
) -> Listing {
    Listing {
        isin,
        valor,
        name,
        asset_class,
        currency,
        price,
        income,
        maturity,
    }
}

#[rustfmt::skip]
const LISTINGS: &[Listing] = &[
    listing(Some("CH0038863350"), Some("3886335"), "Nestlé SA", "equity", "CHF", "78.50", "3.05", None),
    listing(Some("CH0012005267"), Some("1200526"), "Novartis AG", "equity", "CHF", "98.20", "3.50", None),
    listing(Some("CH0012032048"), Some("1203204"), "Roche Holding AG Genussschein", "equity", "CHF", "265.40", "9.70", None),
    listing(Some("CH0244767585"), Some("24476758"), "UBS Group AG", "equity", "CHF", "27.35", "0.90", None),
    listing(Some("CH0012221716"), Some("1222171"), "ABB Ltd", "equity", "CHF", "48.10", "0.90", None),
    listing(Some("CH0008899764"), Some("889976"), "iShares SMI (CH)", "fund", "CHF", "135.420", "2.10", None),
    listing(Some("CH0031835561"), Some("3183556"), "Swiss Confederation 3.25% 2027", "bond", "CHF", "102.850", "3.25", Some((2027, 6, 27))),
    listing(Some("CH0224397213"), Some("22439721"), "Swiss Confederation 1.25% 2037", "bond", "CHF", "108.400", "1.25", Some((2037, 6, 27))),
    listing(None, None, "Private Equity Feeder Fund II", "other", "CHF", "1250.00", "0", None),
    listing(Some("DE0007164600"), None, "SAP SE", "equity", "EUR", "235.60", "2.35", None),
    listing(Some("DE0007236101"), None, "Siemens AG", "equity", "EUR", "210.15", "5.20", None),
    listing(Some("DE0008404005"), None, "Allianz SE", "equity", "EUR", "330.80", "15.40", None),
    listing(Some("FR0000121014"), None, "LVMH Moët Hennessy Louis Vuitton SE", "equity", "EUR", "610.30", "13.00", None),
    listing(Some("FR0000120271"), None, "TotalEnergies SE", "equity", "EUR", "55.42", "3.22", None),
    listing(Some("NL0010273215"), None, "ASML Holding NV", "equity", "EUR", "690.70", "6.40", None),
    listing(Some("DE0005933931"), None, "iShares Core DAX UCITS ETF (DE)", "fund", "EUR", "185.3400", "0", None),
    listing(Some("DE0001135275"), None, "Bundesrepublik Deutschland 4% 2037", "bond", "EUR", "115.250", "4.00", Some((2037, 1, 4))),
    listing(Some("DE0001102580"), None, "Bundesrepublik Deutschland 0% 2032", "bond", "EUR", "85.630", "0", Some((2032, 2, 15))),
    listing(None, None, "Hedge Fund Access Class B", "other", "EUR", "1085.2500", "0", None),
    listing(Some("US0378331005"), Some("908440"), "Apple Inc", "equity", "USD", "228.35", "1.00", None),
    listing(Some("US5949181045"), None, "Microsoft Corp", "equity", "USD", "425.80", "3.32", None),
    listing(Some("US0231351067"), None, "Amazon.com Inc", "equity", "USD", "210.45", "0", None),
    listing(Some("US02079K3059"), None, "Alphabet Inc Class A", "equity", "USD", "175.90", "0.80", None),
    listing(Some("US46625H1005"), None, "JPMorgan Chase & Co", "equity", "USD", "245.10", "5.00", None),
    listing(Some("US78462F1030"), None, "SPDR S&P 500 ETF Trust", "fund", "USD", "585.2100", "7.00", None),
    listing(Some("IE00B4L5Y983"), None, "iShares Core MSCI World UCITS ETF", "fund", "USD", "105.125", "0", None),
    listing(Some("US037833AL42"), None, "Apple Inc 3.85% 2043", "bond", "USD", "86.750", "3.85", Some((2043, 5, 4))),
    listing(Some("US912810SN90"), None, "United States Treasury 1.25% 2050", "bond", "USD", "52.375", "1.25", Some((2050, 5, 15))),
    listing(None, None, "Barrier Reverse Convertible on SMI", "other", "USD", "98.40", "0", None),
    listing(Some("GB0005405286"), None, "HSBC Holdings plc", "equity", "GBP", "7.952", "0.45", None),
    listing(Some("GB00BP6MXD84"), None, "Shell plc", "equity", "GBP", "26.48", "1.08", None),
    listing(Some("GB0009895292"), None, "AstraZeneca plc", "equity", "GBP", "118.50", "2.40", None),
    listing(Some("GB00B10RZP78"), None, "Unilever plc", "equity", "GBP", "46.22", "1.40", None),
    listing(Some("GB0007980591"), None, "BP plc", "equity", "GBP", "4.1025", "0.24", None),
    listing(Some("IE00B810Q511"), None, "Vanguard FTSE 100 UCITS ETF", "fund", "GBP", "40.875", "1.30", None),
    listing(Some("GB00B24FF097"), None, "United Kingdom Gilt 4.75% 2030", "bond", "GBP", "102.125", "4.75", Some((2030, 12, 7))),
    listing(Some("GB0004893086"), None, "United Kingdom Gilt 4.25% 2032", "bond", "GBP", "99.875", "4.25", Some((2032, 6, 7))),
];

/// Daily price moves are drawn within plus or minus this many basis points.
fn daily_volatility_bps(asset_class: &str) -> i64 {
    match asset_class {
        "equity" => 180,
        "fund" => 90,
        "bond" => 25,
        _ => 60,
    }
}

fn literal(s: &str) -> Decimal {
    Decimal::from_str(s).expect("the listing table holds decimal literals")
}

fn security(index: usize, listing: &Listing) -> SimSecurity {
    let bond = listing.asset_class == "bond";
    let price = literal(listing.price);
    let income = literal(listing.income);
    SimSecurity {
        bank_security_id: format!("SEC-{:04}", index + 1),
        isin: listing.isin.map(str::to_owned),
        valor: listing.valor.map(str::to_owned),
        name: listing.name.to_owned(),
        asset_class: listing.asset_class,
        currency: listing.currency,
        quantity_type: if bond { "face_amount" } else { "units" },
        price_type: if bond { "percent" } else { "amount" },
        price_decimals: price.scale(),
        dividend_per_unit: (!bond && !income.is_zero()).then_some(income),
        coupon_percent: bond.then_some(income),
        maturity: listing
            .maturity
            .and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)),
        index,
        base_price: price,
        volatility_bps: daily_volatility_bps(listing.asset_class),
    }
}

/// The securities of a dataset: the fixed listings, then synthetic ones so that every currency
/// offers at least `per_currency` securities.
pub(crate) fn universe(per_currency: usize) -> Vec<Arc<SimSecurity>> {
    let mut securities: Vec<SimSecurity> = LISTINGS
        .iter()
        .enumerate()
        .map(|(i, l)| security(i, l))
        .collect();
    for currency in CURRENCIES {
        let listed = securities.iter().filter(|s| s.currency == currency).count();
        for n in listed..per_currency {
            let index = securities.len();
            securities.push(SimSecurity {
                bank_security_id: format!("SEC-{:04}", index + 1),
                isin: None,
                valor: None,
                name: format!("Simulated Private Placement {currency} {}", n + 1),
                asset_class: "other",
                currency,
                quantity_type: "units",
                price_type: "amount",
                price_decimals: 2,
                dividend_per_unit: None,
                coupon_percent: None,
                maturity: None,
                index,
                // Spread the synthetic prices so they do not all move together.
                base_price: Decimal::new(5_000 + 731 * i64::try_from(n).unwrap_or(0) % 90_000, 2),
                volatility_bps: daily_volatility_bps("other"),
            });
        }
    }
    securities.into_iter().map(Arc::new).collect()
}
