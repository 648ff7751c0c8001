-- Issue 16: every account belongs to a client, also those of statement files that name none.
--
-- An account's client comes, in this order, from a person's assignment (`manual`, through the
-- API, audited), from the bank (`bank`: the client reference bank_a gives), or from the first
-- rule of its connection that matches (`rule`); none of them: the account is unassigned and
-- listed as such. The bank's reference is kept so that removing a manual assignment falls back
-- to it without a sync.
ALTER TABLE accounts ADD COLUMN bank_client_ref text;
ALTER TABLE accounts ADD COLUMN client_source text
    CHECK (client_source IN ('manual', 'bank', 'rule'));
UPDATE accounts a SET bank_client_ref = c.reference, client_source = 'bank'
  FROM clients c WHERE c.id = a.client_id;
ALTER TABLE accounts ADD CONSTRAINT accounts_client_source_set
    CHECK ((client_id IS NULL) = (client_source IS NULL));

-- Rules per connection: an account whose bank account id (or IBAN) matches `pattern` (`*` any
-- run of characters, `?` one; `like_pattern` is the same as SQL LIKE) belongs to `client_id`.
-- The lowest priority wins, then the oldest rule.
CREATE TABLE account_assignment_rules (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    connection_id uuid NOT NULL REFERENCES bank_connections(id),
    field         text NOT NULL CHECK (field IN ('bank_account_id', 'iban')),
    pattern       text NOT NULL CHECK (length(pattern) BETWEEN 1 AND 200),
    like_pattern  text NOT NULL,
    client_id     uuid NOT NULL REFERENCES clients(id),
    priority      integer NOT NULL DEFAULT 100,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, connection_id, field, pattern)
);
CREATE INDEX account_assignment_rules_connection
    ON account_assignment_rules (tenant_id, connection_id, priority, created_at);
ALTER TABLE account_assignment_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_assignment_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_assignment_rules
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON account_assignment_rules TO eam_app;

-- The client the rules of a connection give an account: one definition for the sync's load and
-- for the re-application when rules change. Runs as the caller, under its row-level security.
CREATE FUNCTION account_client_by_rule(p_tenant uuid, p_connection uuid, p_bank_account_id text,
                                       p_iban text) RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
        SELECT r.client_id FROM account_assignment_rules r
         WHERE r.tenant_id = p_tenant AND r.connection_id = p_connection
           AND CASE r.field WHEN 'iban' THEN p_iban ELSE p_bank_account_id END LIKE r.like_pattern
         ORDER BY r.priority, r.created_at, r.id
         LIMIT 1
    $$;
GRANT EXECUTE ON FUNCTION account_client_by_rule(uuid, uuid, text, text) TO eam_app;

-- Daily position snapshots a dated bank (bank_a) is asked for besides the current one: the
-- valuation of past dates and daily performance need them. 0: the current snapshot only.
ALTER TABLE bank_connections ADD COLUMN position_history_days integer NOT NULL DEFAULT 0
    CHECK (position_history_days BETWEEN 0 AND 366);
