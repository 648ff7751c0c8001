//! The rate book an answer converts with, read once per answer on the caller's own connection
//! (a second connection from the pool could wait on the one the caller holds).
//!
//! [`platform_book`]: the platform-wide stored rates (the ECB's), what `GET /fx-rates` shows.
//! [`tenant_book`]: the same plus the rates the tenant's banks stated in its documents, over
//! the same window, so a currency the ECB does not quote can still be converted at the
//! custodian's rate (`model::wealth::fx` has the one precedence). A stated rate is the bank's
//! rate of the day for the whole firm, like a position price: an account valued alone, its
//! client's consolidated view and a client user's view convert alike. Another firm's stated
//! rates never enter (the transaction's tenant; row-level security).

use chrono::NaiveDate;
use eam_model::wealth::fx::RateBook;
use eam_store::fx_rates::StatedRateRow;
use eam_store::{PgConnection, TenantTx};

use crate::WealthError;

/// How far back a rate is looked for (a rate this old is long stale, but shown as such).
pub const LOOKBACK_DAYS: i64 = 400;

/// The first date a book for conversions from `from` on reads.
fn since(from: NaiveDate) -> NaiveDate {
    from - chrono::Duration::days(LOOKBACK_DAYS)
}

/// The platform's stored rates for conversions on every date from `from` to `to`, read on
/// `conn`, stale after `stale_after` business days (the configured
/// `market_data.stale_after_business_days`).
pub async fn platform_book(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    stale_after: u32,
) -> Result<RateBook, WealthError> {
    let stored = eam_store::fx_rates::between(conn, since(from), to).await?;
    let mut book = RateBook::new(stale_after);
    for rate in stored {
        book.add(rate).map_err(WealthError::StoredRate)?;
    }
    Ok(book)
}

/// [`platform_book`] plus the rates the tenant's banks stated over the same window: the book
/// every valuation and performance of the tenant converts with.
pub async fn tenant_book(
    tx: &mut TenantTx,
    from: NaiveDate,
    to: NaiveDate,
    stale_after: u32,
) -> Result<RateBook, WealthError> {
    let mut book = platform_book(tx.conn(), from, to, stale_after).await?;
    let stated = eam_store::fx_rates::stated_between(tx, since(from), to).await?;
    add_stated(&mut book, &stated);
    Ok(book)
}

/// Adds each stated rate as its custodian's (after the ECB's, which a pair without EUR is
/// converted through). A rate the book refuses (not positive) is skipped: the load validated
/// the rows, and one bad rate must not make a whole portfolio unanswerable.
fn add_stated(book: &mut RateBook, stated: &[StatedRateRow]) {
    for s in stated {
        // Refused (not positive): skipped, as the doc says.
        let _ = book.add_bank_pair(&s.custodian, (s.base, s.quote), s.rate, s.date);
    }
}

#[cfg(test)]
mod tests {
    use eam_model::domain::Currency;
    use eam_model::wealth::fx::{EurRate, RateSource};

    use super::*;
    use crate::dec;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("a March day")
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("an ISO code")
    }

    fn ecb_book() -> RateBook {
        let mut book = RateBook::new(3);
        book.add(EurRate {
            currency: currency("CHF"),
            date: day(2),
            per_eur: dec("0.95"),
            source: RateSource::Ecb,
        })
        .expect("a positive rate");
        book
    }

    fn stated(custodian: &str, pair: (&str, &str), rate: &str) -> StatedRateRow {
        StatedRateRow {
            custodian: custodian.to_owned(),
            base: currency(pair.0),
            quote: currency(pair.1),
            rate: dec(rate),
            date: day(2),
        }
    }

    #[test]
    fn a_stated_rate_converts_a_currency_the_ecb_does_not_quote() {
        let mut book = ecb_book();
        assert!(
            book.conversion(currency("AED"), Currency::EUR, day(2))
                .is_err()
        );
        // 1 AED = 0.25 CHF, 1 EUR = 0.95 CHF: 1 EUR = 3.8 AED.
        add_stated(&mut book, &[stated("bank_b", ("AED", "CHF"), "0.25")]);
        let conv = book
            .conversion(currency("AED"), currency("CHF"), day(2))
            .expect("AED through the bank's rate");
        assert_eq!(conv.apply(dec("100")), dec("25"));
        let sources: Vec<String> = conv.legs.iter().map(|l| l.source.label()).collect();
        assert_eq!(sources, ["bank:bank_b", "ecb"]);
    }

    #[test]
    fn a_refused_stated_rate_is_skipped_and_the_others_still_enter() {
        let mut book = ecb_book();
        add_stated(
            &mut book,
            &[
                stated("bank_a", ("EUR", "USD"), "0"),
                stated("bank_c", ("EUR", "USD"), "1.25"),
            ],
        );
        let leg = book
            .leg(currency("USD"), day(2))
            .expect("a USD rate")
            .expect("USD is not EUR");
        assert_eq!(leg.per_eur, dec("1.25"));
        assert_eq!(leg.source, RateSource::Bank("bank_c".into()));
    }

    #[test]
    fn a_stated_pair_the_ecb_quotes_that_day_leaves_the_ecb_rate() {
        let mut book = ecb_book();
        add_stated(&mut book, &[stated("bank_a", ("EUR", "CHF"), "0.97")]);
        let leg = book
            .leg(currency("CHF"), day(2))
            .expect("a CHF rate")
            .expect("CHF is not EUR");
        assert_eq!((leg.per_eur, leg.source), (dec("0.95"), RateSource::Ecb));
    }
}
