//! The dataset's invariants, each checked against an independent recomputation.

use std::collections::{BTreeMap, HashSet};

use chrono::{Days, NaiveDate};
use eam_normalizer::domain::{Iban, Isin};
use rust_decimal::Decimal;

use super::*;

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date")
}

fn params() -> SimParams {
    SimParams {
        seed: 7,
        clients: 4,
        accounts_per_client: 3,
        positions_per_account: 6,
        transactions_per_account: 120,
        days: 60,
        end_date: end_date(),
    }
}

fn dataset() -> Dataset {
    generate(&params())
}

/// Quantities per bank security id from booked trades on or before `date`, in trade order.
fn replay(account: &SimAccount, date: NaiveDate) -> BTreeMap<String, Decimal> {
    let mut book = BTreeMap::new();
    for t in &account.transactions {
        if t.status != "booked" || t.trade_date.is_none_or(|d| d > date) {
            continue;
        }
        let security = t.security.as_ref().expect("trades reference a security");
        let quantity = t.quantity.expect("trades have a quantity");
        let held = book
            .entry(security.bank_security_id.clone())
            .or_insert(Decimal::ZERO);
        match t.kind {
            "buy" => *held += quantity,
            "sell" => *held -= quantity,
            other => panic!("{other} has a trade date"),
        }
    }
    book.retain(|_, q| !q.is_zero());
    book
}

#[test]
fn the_period_ends_at_the_end_date_and_spans_the_requested_days() {
    let d = dataset();
    assert_eq!(
        d.start_date,
        NaiveDate::from_ymd_opt(2026, 9, 22).expect("date")
    );
    assert_eq!((d.params.end_date - d.start_date).num_days(), 59);
    let one_day = generate(&SimParams {
        days: 1,
        ..params()
    });
    assert_eq!(one_day.start_date, end_date());
}

#[test]
fn every_account_has_exactly_the_requested_transactions_within_the_period() {
    let d = dataset();
    assert_eq!(d.accounts.len(), 12);
    for a in &d.accounts {
        assert_eq!(a.transactions.len(), 120, "{}", a.account_id);
        for t in &a.transactions {
            assert!(t.booking_date >= d.start_date && t.booking_date <= end_date());
        }
    }
}

#[test]
fn every_custody_account_holds_exactly_the_requested_positions_at_the_end_date() {
    let d = dataset();
    for a in &d.accounts {
        let positions = d.positions_as_of(&a.account_id, end_date());
        match a.kind {
            "custody" => {
                assert_eq!(positions.len(), 6, "{}", a.account_id);
                let distinct: HashSet<_> = positions
                    .iter()
                    .map(|p| &p.security.bank_security_id)
                    .collect();
                assert_eq!(distinct.len(), 6);
                assert!(positions.iter().all(|p| !p.quantity.is_zero()));
            }
            _ => assert!(positions.is_empty(), "{}", a.account_id),
        }
    }
}

#[test]
fn positions_as_of_any_date_are_the_booked_trades_up_to_that_date() {
    let d = dataset();
    for a in d.accounts.iter().filter(|a| a.kind == "custody") {
        let mut date = d.start_date - Days::new(1);
        while date <= end_date() {
            let served: BTreeMap<String, Decimal> = d
                .positions_as_of(&a.account_id, date)
                .into_iter()
                .map(|p| (p.security.bank_security_id.clone(), p.quantity))
                .collect();
            assert_eq!(served, replay(a, date), "{} on {date}", a.account_id);
            date = date + Days::new(1);
        }
        assert!(
            d.positions_as_of(&a.account_id, d.start_date - Days::new(1))
                .is_empty()
        );
    }
}

#[test]
fn a_sale_never_exceeds_the_holding() {
    let d = dataset();
    let mut sales = 0;
    for a in &d.accounts {
        let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
        for t in a.transactions.iter().filter(|t| t.is_booked()) {
            let Some(security) = &t.security else {
                continue;
            };
            let entry = held.entry(&security.bank_security_id).or_default();
            match t.kind {
                "buy" => *entry += t.quantity.expect("quantity"),
                "sell" => {
                    sales += 1;
                    let quantity = t.quantity.expect("quantity");
                    assert!(
                        quantity <= *entry,
                        "{} sells {quantity} of {entry}",
                        t.transaction_id
                    );
                    *entry -= quantity;
                }
                _ => {}
            }
        }
    }
    assert!(sales > 0, "the dataset should contain sales");
}

#[test]
fn some_securities_are_sold_out_and_drop_from_the_positions() {
    let d = generate(&SimParams {
        clients: 10,
        ..params()
    });
    let sold_out = d
        .accounts
        .iter()
        .filter(|a| a.kind == "custody")
        .filter(|a| {
            let traded: HashSet<_> = a
                .transactions
                .iter()
                .filter_map(|t| t.security.as_ref().map(|s| &s.bank_security_id))
                .collect();
            traded.len() > d.positions_as_of(&a.account_id, end_date()).len()
        })
        .count();
    assert!(sold_out > 0);
}

#[test]
fn the_closing_balance_is_the_opening_balance_plus_the_booked_entries() {
    let d = dataset();
    for a in &d.accounts {
        let balances = d.balances(&a.account_id);
        let by_kind = |kind: &str| {
            balances
                .iter()
                .find(|b| b.kind == kind)
                .unwrap_or_else(|| panic!("{kind} balance"))
        };
        let booked: Decimal = a
            .transactions
            .iter()
            .filter(|t| t.status == "booked")
            .map(|t| {
                if t.direction == "debit" {
                    -t.amount
                } else {
                    t.amount
                }
            })
            .sum();
        let pending_debits: Decimal = a
            .transactions
            .iter()
            .filter(|t| t.status == "pending" && t.direction == "debit")
            .map(|t| t.amount)
            .sum();
        let opening = by_kind("opening");
        let closing = by_kind("closing");
        let available = by_kind("available");
        assert_eq!(opening.amount, a.opening_balance);
        assert_eq!(opening.as_of, d.start_date);
        assert_eq!(closing.amount, a.opening_balance + booked);
        assert_eq!(closing.as_of, end_date());
        assert_eq!(available.amount, closing.amount - pending_debits);
        assert_eq!(available.as_of, end_date());
        assert!(
            balances
                .iter()
                .all(|b| b.currency == a.currency && b.amount.scale() == 2)
        );
    }
}

#[test]
fn no_account_is_ever_overdrawn_not_even_within_a_day() {
    let d = dataset();
    for a in &d.accounts {
        let mut entries: Vec<_> = a.transactions.iter().collect();
        // Within a day, debits first: the harshest order the bank could book them in.
        entries.sort_by_key(|t| (t.booking_date, t.direction != "debit"));
        let mut balance = a.opening_balance;
        for t in entries {
            balance += t.signed_amount();
            assert!(
                balance >= Decimal::ZERO,
                "{} overdrawn by {} on {}",
                a.account_id,
                balance,
                t.booking_date
            );
        }
    }
}

#[test]
fn pending_transactions_only_occur_in_the_last_two_days() {
    let d = dataset();
    let window_start = end_date() - Days::new(1);
    let mut pending = 0;
    for t in d.accounts.iter().flat_map(|a| &a.transactions) {
        assert!(matches!(t.status, "booked" | "pending"));
        if t.status == "pending" {
            pending += 1;
            assert!(
                t.booking_date >= window_start,
                "{} pending on {}",
                t.transaction_id,
                t.booking_date
            );
        }
    }
    assert!(pending > 0, "a few transactions should be pending");
}

#[test]
fn accounts_alternate_custody_and_cash_per_client() {
    let d = dataset();
    for (c, client) in d.clients.iter().enumerate() {
        assert_eq!(client.reference, format!("C-{:06}", c + 1));
        for n in 0..3 {
            let id = format!("BA-{:06}-{}", c + 1, n + 1);
            let a = d.account(&id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(a.kind, if n % 2 == 0 { "custody" } else { "cash" }, "{id}");
            assert_eq!(a.client_reference, client.reference);
            assert_eq!(a.client_name, client.name);
            assert!(CURRENCIES.contains(&a.currency));
            match &a.iban {
                Some(iban) => {
                    assert_eq!(a.kind, "cash");
                    assert!(iban.starts_with("CH") || iban.starts_with("LU"), "{iban}");
                    Iban::parse(iban).unwrap_or_else(|e| panic!("{e}"));
                }
                None => assert_eq!(a.kind, "custody"),
            }
        }
    }
    assert!(d.account("BA-999999-1").is_none());
}

#[test]
fn the_universe_holds_real_isins_with_valid_check_digits_and_some_without_isin() {
    let d = dataset();
    let with_isin: Vec<_> = d
        .securities
        .iter()
        .filter_map(|s| s.isin.as_deref())
        .collect();
    assert!(with_isin.len() >= 20, "{}", with_isin.len());
    for isin in &with_isin {
        Isin::parse(isin).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(d.securities.iter().filter(|s| s.isin.is_none()).count() >= 2);
    let ids: HashSet<_> = d.securities.iter().map(|s| &s.bank_security_id).collect();
    assert_eq!(ids.len(), d.securities.len());
    for class in ["equity", "bond", "fund", "other"] {
        let currencies: HashSet<_> = d
            .securities
            .iter()
            .filter(|s| s.asset_class == class)
            .map(|s| s.currency)
            .collect();
        assert!(!currencies.is_empty(), "{class}");
    }
    for s in &d.securities {
        assert_eq!(
            s.asset_class == "bond",
            s.quantity_type == "face_amount",
            "{}",
            s.name
        );
        assert_eq!(
            s.asset_class == "bond",
            s.price_type == "percent",
            "{}",
            s.name
        );
        assert!(CURRENCIES.contains(&s.currency));
        assert!(d.security(&s.bank_security_id).is_some());
    }
}

#[test]
fn an_account_holding_more_than_the_listed_securities_gets_synthetic_ones() {
    let d = generate(&SimParams {
        positions_per_account: 15,
        clients: 2,
        ..params()
    });
    for a in d.accounts.iter().filter(|a| a.kind == "custody") {
        let positions = d.positions_as_of(&a.account_id, end_date());
        assert_eq!(positions.len(), 15);
        assert!(positions.iter().any(|p| p.security.isin.is_none()));
        assert!(positions.iter().all(|p| p.security.currency == a.currency));
    }
}

#[test]
fn quantities_are_whole_units_or_multiples_of_1000_face() {
    let d = dataset();
    for t in d.accounts.iter().flat_map(|a| &a.transactions) {
        let (Some(s), Some(q)) = (&t.security, t.quantity) else {
            continue;
        };
        assert!(
            q > Decimal::ZERO && q.fract().is_zero(),
            "{}",
            t.transaction_id
        );
        if s.quantity_type == "face_amount" {
            assert!(
                (q % Decimal::from(1000)).is_zero(),
                "{}: {q}",
                t.transaction_id
            );
        }
    }
}

#[test]
fn prices_are_deterministic_per_security_and_date_with_two_to_four_decimals() {
    let a = dataset();
    let b = generate(&SimParams {
        clients: 1,
        ..params()
    });
    let mut date = a.start_date;
    while date <= end_date() {
        for s in &a.securities {
            let price = a.price(s, date);
            assert!(price > Decimal::ZERO);
            assert!((2..=4).contains(&price.scale()), "{} {price}", s.name);
            assert_eq!(price, b.price(s, date));
        }
        date = date + Days::new(1);
    }
    let other_seed = generate(&SimParams {
        seed: 8,
        ..params()
    });
    let s = &a.securities[0];
    assert_ne!(a.price(s, end_date()), other_seed.price(s, end_date()));
}

#[test]
fn positions_are_valued_at_the_day_price_with_commercial_rounding() {
    let d = dataset();
    let hundred = Decimal::ONE_HUNDRED;
    let mut bonds = 0;
    for a in d.accounts.iter().filter(|a| a.kind == "custody") {
        for date in [d.start_date + Days::new(30), end_date()] {
            for p in d.positions_as_of(&a.account_id, date) {
                assert_eq!(p.price, d.price(&p.security, date));
                assert_eq!(p.price_currency, p.security.currency);
                assert_eq!(p.as_of, date);
                let raw = if p.security.asset_class == "bond" {
                    bonds += 1;
                    assert!(p.accrued_interest.is_some());
                    p.quantity * p.price / hundred
                } else {
                    assert!(p.accrued_interest.is_none());
                    p.quantity * p.price
                };
                assert_eq!(
                    p.market_value,
                    raw.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
                );
                assert_eq!(p.market_value.scale(), 2);
                assert!(p.cost > Decimal::ZERO && p.cost.scale() == 2);
            }
        }
    }
    assert!(bonds > 0, "some accounts should hold bonds");
}

#[test]
fn the_cost_of_a_position_is_its_average_cost_basis() {
    let d = dataset();
    for a in d.accounts.iter().filter(|a| a.kind == "custody") {
        for p in d.positions_as_of(&a.account_id, end_date()) {
            let (mut quantity, mut cost) = (Decimal::ZERO, Decimal::ZERO);
            for t in a.transactions.iter().filter(|t| t.is_booked()) {
                if t.security.as_ref().map(|s| &s.bank_security_id)
                    != Some(&p.security.bank_security_id)
                {
                    continue;
                }
                let q = t.quantity.unwrap_or_default();
                match t.kind {
                    "buy" => {
                        cost += gross_value(&p.security, q, t.price.unwrap_or_default());
                        quantity += q;
                    }
                    "sell" => {
                        cost = (cost * (quantity - q) / quantity).round_dp(6);
                        quantity -= q;
                    }
                    _ => {}
                }
            }
            assert_eq!(p.cost, round2(cost), "{} {}", a.account_id, p.security.name);
        }
    }
}

#[test]
fn accrued_interest_runs_act_365_from_the_last_coupon_date() {
    let d = dataset();
    let gilt = d
        .securities
        .iter()
        .find(|s| s.isin.as_deref() == Some("GB00B24FF097"))
        .expect("the 4.75% gilt is listed");
    // Coupon on 7 December: 7 Dec 2025 to 20 Nov 2026 is 348 days.
    let accrued = accrued_interest(gilt, Decimal::from(100_000), end_date());
    assert_eq!(accrued, Some(Decimal::new(452_877, 2)));
    let on_coupon_day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
    assert_eq!(
        accrued_interest(gilt, Decimal::from(100_000), on_coupon_day),
        Some(Decimal::new(0, 2))
    );
}

#[test]
fn trades_settle_two_days_later_for_gross_plus_or_minus_fees() {
    let d = dataset();
    let mut trades = 0;
    for a in &d.accounts {
        for t in a
            .transactions
            .iter()
            .filter(|t| matches!(t.kind, "buy" | "sell"))
        {
            trades += 1;
            let security = t.security.as_ref().expect("security");
            let (q, p, fees) = (
                t.quantity.expect("q"),
                t.price.expect("p"),
                t.fees.expect("fees"),
            );
            let gross = round2(gross_value(security, q, p));
            let trade_date = t.trade_date.expect("trade date");
            assert_eq!(t.booking_date, trade_date);
            assert_eq!(t.settlement_date, Some(trade_date + Days::new(2)));
            assert_eq!(t.value_date, t.settlement_date);
            assert_eq!(p, d.price(security, trade_date));
            assert_eq!(t.currency, a.currency);
            assert!(fees >= Decimal::ZERO && fees.scale() == 2);
            if t.kind == "buy" {
                assert_eq!((t.amount, t.direction), (gross + fees, "debit"));
            } else {
                assert_eq!((t.amount, t.direction), (gross - fees, "credit"));
            }
        }
    }
    assert!(trades > 0);
}

#[test]
fn every_amount_is_positive_with_cents_in_the_account_currency() {
    let d = dataset();
    for a in &d.accounts {
        for t in &a.transactions {
            assert!(
                t.amount > Decimal::ZERO,
                "{}: {}",
                t.transaction_id,
                t.amount
            );
            assert_eq!(t.amount.scale(), 2);
            assert_eq!(t.currency, a.currency);
            assert!(matches!(t.direction, "debit" | "credit"));
        }
    }
}

#[test]
fn custody_and_cash_accounts_book_their_own_kinds_of_transactions() {
    let d = dataset();
    let mut seen: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for a in &d.accounts {
        for t in &a.transactions {
            seen.entry(a.kind).or_default().insert(t.kind);
            match t.kind {
                "dividend" | "interest" if a.kind == "custody" => {
                    assert_eq!(t.direction, "credit");
                    assert!(t.security.is_some(), "{}", t.transaction_id);
                }
                "transfer" => {
                    assert!(t.counterparty.is_some() && t.description.is_some());
                }
                "deposit" | "withdrawal" => {
                    assert_eq!(t.counterparty.as_deref(), Some(a.client_name.as_str()))
                }
                "fee" => assert_eq!(t.direction, "debit"),
                _ => {}
            }
        }
    }
    let custody: HashSet<&str> = ["buy", "sell", "dividend", "interest", "fee"].into();
    let cash: HashSet<&str> = ["deposit", "withdrawal", "interest", "fee", "transfer"].into();
    assert_eq!(seen["custody"], custody);
    assert_eq!(seen["cash"], cash);
}

#[test]
fn transaction_ids_are_unique_and_follow_booking_order() {
    let d = dataset();
    let mut ids = HashSet::new();
    for a in &d.accounts {
        for pair in a.transactions.windows(2) {
            let key = |t: &SimTransaction| (t.booking_date, t.transaction_id.clone());
            assert!(key(&pair[0]) < key(&pair[1]));
        }
        for t in &a.transactions {
            assert!(t.transaction_id.starts_with(&a.account_id));
            assert!(
                ids.insert(t.transaction_id.clone()),
                "{} twice",
                t.transaction_id
            );
        }
    }
}

#[test]
fn transactions_between_selects_booking_dates_in_the_closed_range() {
    let d = dataset();
    let a = &d.accounts[0];
    let from = d.start_date + Days::new(10);
    let to = d.start_date + Days::new(20);
    let range = d.transactions_between(a, Some(from), Some(to));
    let expected: Vec<_> = a
        .transactions
        .iter()
        .filter(|t| t.booking_date >= from && t.booking_date <= to)
        .collect();
    assert_eq!(a.transactions[range].iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        d.transactions_between(a, None, None),
        0..a.transactions.len()
    );
    assert!(d.transactions_between(a, Some(to), Some(from)).is_empty());
}

#[test]
fn the_same_parameters_generate_an_identical_dataset() {
    assert_eq!(dataset(), dataset());
    let other = generate(&SimParams {
        seed: 8,
        ..params()
    });
    assert_ne!(dataset().accounts, other.accounts);
}

#[test]
fn adding_clients_leaves_the_existing_accounts_unchanged() {
    let small = generate(&SimParams {
        clients: 2,
        ..params()
    });
    let large = dataset();
    assert_eq!(small.accounts[..], large.accounts[..small.accounts.len()]);
}

#[test]
fn validate_refuses_parameters_that_cannot_hold_the_invariants() {
    assert!(params().validate().is_ok());
    assert!(SimParams::demo(end_date()).validate().is_ok());
    assert!(
        SimParams {
            days: 0,
            ..params()
        }
        .validate()
        .is_err()
    );
    let too_many = SimParams {
        positions_per_account: 10,
        transactions_per_account: 5,
        ..params()
    };
    assert!(
        too_many
            .validate()
            .unwrap_err()
            .to_string()
            .contains("positions_per_account")
    );
    // Generation still copes with them rather than panicking.
    let d = generate(&too_many);
    assert_eq!(d.positions_as_of("BA-000001-1", end_date()).len(), 5);
    assert_eq!(
        generate(&SimParams {
            days: 0,
            ..params()
        })
        .start_date,
        end_date()
    );
}

#[test]
fn a_past_days_closing_balance_is_the_opening_plus_what_was_booked_until_then() {
    let d = dataset();
    for a in &d.accounts {
        assert_eq!(
            d.balances_as_of(&a.account_id, d.params.end_date),
            d.balances(&a.account_id)
        );
        let before = d.balances_as_of(&a.account_id, d.start_date - Days::new(1));
        assert_eq!(before[1].kind, "closing");
        assert_eq!(before[1].amount, a.opening_balance.round_dp(2));
        // Day by day, the closing moves by exactly the day's booked amounts.
        let mut day = d.start_date;
        while day <= d.params.end_date {
            let previous = d.balances_as_of(&a.account_id, day - Days::new(1))[1].amount;
            let moved: Decimal = a
                .transactions
                .iter()
                .filter(|t| t.is_booked() && t.booking_date == day)
                .map(SimTransaction::signed_amount)
                .sum();
            let closing = &d.balances_as_of(&a.account_id, day)[1];
            assert_eq!(
                (closing.as_of, closing.amount),
                (day, (previous + moved).round_dp(2))
            );
            day = day + Days::new(1);
        }
    }
}

#[test]
fn the_demo_is_small_and_consistent() {
    let d = generate(&SimParams::demo(end_date()));
    assert_eq!(d.accounts.len(), 6);
    assert_eq!(d.positions_as_of("BA-000001-1", end_date()).len(), 6);
    assert_eq!(d.accounts[0].transactions.len(), 40);
}

/// Run with `cargo test --release -p eam-banksim -- --ignored --nocapture`.
#[test]
#[ignore = "a timing check, meaningful only in release builds"]
fn a_thousand_accounts_of_a_thousand_transactions_generate_in_seconds() {
    let params = SimParams {
        seed: 1,
        clients: 500,
        accounts_per_client: 2,
        positions_per_account: 20,
        transactions_per_account: 1_000,
        days: 365,
        end_date: end_date(),
    };
    let started = std::time::Instant::now();
    let d = generate(&params);
    let elapsed = started.elapsed();
    let transactions: usize = d.accounts.iter().map(|a| a.transactions.len()).sum();
    println!("{transactions} transactions in {elapsed:?}");
    assert_eq!(transactions, 1_000_000);
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}
