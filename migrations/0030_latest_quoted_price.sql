-- Issue 24: a trade's deal price takes the price type of the security's latest position price
-- when the trade itself does not tell (load_trade_prices). That lookup walked the unique key
-- (tenant, connection, security, date) skipping over connections, 0.5 ms per trade: 7.2 s of
-- a statement bank's 22.8 s first sync (13,581 trades, bench/statements.sh). This index answers
-- it in one step (0.004 ms).
CREATE INDEX prices_position_latest ON prices (tenant_id, security_id, price_date DESC)
    WHERE kind = 'position';
