-- Issue 15: an ISIN as a bank wrote it when it fails its check digit (or its form). The
-- security is then identified by the bank's own id (`security_key` bank:...), and the ISIN as
-- written is kept here for support and for matching by hand; never a key, never validated.
ALTER TABLE securities ADD COLUMN raw_isin text;
