//! Euro reference rates, platform-wide (not tenant data): loaded idempotently from market-data
//! documents, read back as the rates a date's conversions may use.

use chrono::NaiveDate;
use eam_model::domain::Currency;
use eam_model::wealth::fx::{EurRate, RateSource};

use crate::{Result, Store, StoreError};

/// What a load changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

fn source_label(source: &RateSource) -> Result<String> {
    match source {
        RateSource::EuroFixed => Err(StoreError::Data(
            "fixed euro legacy rates are not stored: they never change".into(),
        )),
        other => Ok(other.label()),
    }
}

fn source_of(label: &str) -> Result<RateSource> {
    match label {
        "ecb" => Ok(RateSource::Ecb),
        other => other
            .strip_prefix("bank:")
            .map(|custodian| RateSource::Bank(custodian.to_owned()))
            .ok_or_else(|| StoreError::Data(format!("unknown rate source '{other}'"))),
    }
}

/// Upserts the rates read from the document with `sha256`: a rate already stored with the
/// same value is left as it is (and counted unchanged), a changed one is updated.
pub async fn load(store: &Store, rates: &[EurRate], sha256: &str) -> Result<Loaded> {
    let mut currency = Vec::with_capacity(rates.len());
    let mut date = Vec::with_capacity(rates.len());
    let mut source = Vec::with_capacity(rates.len());
    let mut per_eur = Vec::with_capacity(rates.len());
    for r in rates {
        currency.push(r.currency.as_str().to_owned());
        date.push(r.date);
        source.push(source_label(&r.source)?);
        per_eur.push(r.per_eur);
    }
    let mut tx = store.pool().begin().await?;
    let before = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM fx_rates f
         JOIN UNNEST($1::text[], $2::date[], $3::text[]) AS u(currency, rate_date, source)
           ON f.currency = u.currency AND f.rate_date = u.rate_date AND f.source = u.source"#,
        &currency[..],
        &date[..],
        &source[..]
    )
    .fetch_one(&mut *tx)
    .await?;
    let written = sqlx::query!(
        "INSERT INTO fx_rates AS f (currency, rate_date, source, per_eur, document_sha256)
         SELECT u.currency, u.rate_date, u.source, u.per_eur, $5
           FROM UNNEST($1::text[], $2::date[], $3::text[], $4::numeric[])
             AS u(currency, rate_date, source, per_eur)
         ON CONFLICT (currency, rate_date, source) DO UPDATE
            SET per_eur = EXCLUDED.per_eur, document_sha256 = EXCLUDED.document_sha256,
                loaded_at = now()
          WHERE f.per_eur <> EXCLUDED.per_eur",
        &currency[..],
        &date[..],
        &source[..],
        &per_eur[..],
        sha256
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    let existed = u64::try_from(before).unwrap_or(0);
    let inserted = (rates.len() as u64).saturating_sub(existed);
    let updated = written.saturating_sub(inserted);
    Ok(Loaded {
        inserted,
        updated,
        unchanged: existed.saturating_sub(updated),
    })
}

/// Every stored rate dated within `[from, to]`, by date, on `conn` (a request's transaction
/// reads them on its own connection: a second one from the pool could wait on itself).
pub async fn between(
    conn: &mut sqlx::PgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EurRate>> {
    let rows = sqlx::query!(
        "SELECT currency, rate_date, source, per_eur FROM fx_rates
          WHERE rate_date BETWEEN $1 AND $2 ORDER BY rate_date, currency, source",
        from,
        to
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(EurRate {
                currency: Currency::parse(r.currency.trim())
                    .map_err(|e| StoreError::Data(format!("stored rate: {e}")))?,
                date: r.rate_date,
                per_eur: r.per_eur,
                source: source_of(&r.source)?,
            })
        })
        .collect()
}

/// Every currency with a stored rate, whatever its date.
pub async fn currencies(conn: &mut sqlx::PgConnection) -> Result<Vec<Currency>> {
    let codes = sqlx::query_scalar!("SELECT DISTINCT currency FROM fx_rates ORDER BY currency")
        .fetch_all(conn)
        .await?;
    codes
        .iter()
        .map(|c| {
            Currency::parse(c.trim()).map_err(|e| StoreError::Data(format!("stored rate: {e}")))
        })
        .collect()
}

/// Whether any ECB rate is stored (a first market-data run loads the whole history).
pub async fn has_ecb_rates(store: &Store) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM fx_rates WHERE source = 'ecb') AS "exists!""#
    )
    .fetch_one(store.pool())
    .await?)
}

/// A rate a bank stated in an account's documents: 1 `base` = `rate` `quote` on `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatedRateRow {
    pub custodian: String,
    pub base: Currency,
    pub quote: Currency,
    pub rate: rust_decimal::Decimal,
    pub date: NaiveDate,
}

/// The rates the tenant's banks stated in its documents, dated within `[from, to]`, by date
/// then custodian (the same for every valuation of the tenant, whoever asks).
pub async fn stated_between(
    tx: &mut crate::TenantTx,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<StatedRateRow>> {
    let rows = sqlx::query!(
        "SELECT bc.custodian, r.base, r.quote, r.rate, r.rate_date
           FROM bank_fx_rates r
           JOIN accounts a ON a.id = r.account_id
           JOIN bank_connections bc ON bc.id = a.connection_id
          WHERE r.tenant_id = $1 AND r.rate_date BETWEEN $2 AND $3
          ORDER BY r.rate_date, bc.custodian, r.base, r.quote, r.account_id",
        tx.tenant().0,
        from,
        to
    )
    .fetch_all(tx.conn())
    .await?;
    let currency = |code: &str| {
        Currency::parse(code.trim()).map_err(|e| StoreError::Data(format!("stated rate: {e}")))
    };
    rows.into_iter()
        .map(|r| {
            Ok(StatedRateRow {
                custodian: r.custodian,
                base: currency(&r.base)?,
                quote: currency(&r.quote)?,
                rate: r.rate,
                date: r.rate_date,
            })
        })
        .collect()
}
