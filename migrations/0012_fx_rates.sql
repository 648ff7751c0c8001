-- Market data (issue 16): euro reference rates, platform-wide (no tenant: every firm converts
-- with the same rates). One row per currency, date and source ('ecb', or 'bank:<custodian>' for
-- a rate a bank states); quoted as units of the currency per 1 EUR. Loads are idempotent: a
-- reload of the same file writes nothing.
CREATE TABLE fx_rates (
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$' AND currency <> 'EUR'),
    rate_date       date NOT NULL,
    source          text NOT NULL CHECK (source = 'ecb' OR source LIKE 'bank:%'),
    per_eur         numeric NOT NULL CHECK (per_eur > 0),
    -- The document the rate was read from (its SHA-256), for provenance.
    document_sha256 text NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, rate_date, source)
);
CREATE INDEX fx_rates_by_date ON fx_rates (rate_date);

GRANT SELECT, INSERT, UPDATE ON fx_rates TO eam_app;
