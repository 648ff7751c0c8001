-- Issue 15: a statement left out of a file while its neighbours load (cut short, without
-- account or currency) is a break on the run, kind 'unreadable'; such a statement may name no
-- currency. 'position' is reserved for position reconciliation (issue 16).
ALTER TABLE reconciliation_breaks DROP CONSTRAINT reconciliation_breaks_kind_check;
ALTER TABLE reconciliation_breaks ADD CONSTRAINT reconciliation_breaks_kind_check
    CHECK (kind IN ('balance', 'continuity', 'sequence', 'unreadable', 'position'));
ALTER TABLE reconciliation_breaks ALTER COLUMN currency DROP NOT NULL;
