//! Position reconciliation: a custody account's holdings at a snapshot must equal its
//! holdings at the previous snapshot plus the securities movements booked in between.
//! Each security that does not add up is a break with its expected and reported quantity;
//! nothing is corrected.
//!
//! A movement is a booked transaction of the account with a security and a quantity, booked
//! after the previous snapshot's date and up to the new one's: a buy adds its quantity, a
//! sell removes it; any other kind (a transfer, a corporate action) moves it in the direction
//! the bank booked it (credit in, debit out). A security absent from a complete snapshot is
//! held at zero.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{Direction, SecurityKey, Transaction, TransactionStatus, TransactionType};

/// Holdings of one account at one date.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub as_of: NaiveDate,
    pub holdings: Vec<(SecurityKey, Decimal)>,
}

/// A security whose snapshot does not equal the previous one plus the movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionBreak {
    pub account: String,
    pub security: SecurityKey,
    /// Previous quantity plus the movements.
    pub expected: Decimal,
    pub reported: Decimal,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub message: String,
}

impl PositionBreak {
    /// Reported minus expected: what the bank holds beyond what the movements explain.
    pub fn difference(&self) -> Decimal {
        self.reported - self.expected
    }
}

/// The quantity a transaction moves into (+) or out of (-) its account, if it moves any.
pub fn movement(t: &Transaction) -> Option<(&SecurityKey, Decimal)> {
    if t.status != TransactionStatus::Booked {
        return None;
    }
    let security = t.security.as_ref()?;
    let quantity = t.quantity?.abs();
    let signed = match (t.kind, t.direction) {
        (TransactionType::Buy, _) => quantity,
        (TransactionType::Sell, _) => -quantity,
        (_, Direction::Credit) => quantity,
        (_, Direction::Debit) => -quantity,
    };
    Some((security, signed))
}

/// Checks `current` against `previous` and the account's `transactions` (others' are ignored).
pub fn check(
    account: &str,
    previous: &Snapshot,
    transactions: &[Transaction],
    current: &Snapshot,
) -> Vec<PositionBreak> {
    let mut expected: BTreeMap<&SecurityKey, Decimal> = BTreeMap::new();
    for (security, quantity) in &previous.holdings {
        *expected.entry(security).or_default() += quantity;
    }
    for t in transactions.iter().filter(|t| {
        t.account == account && t.booking_date > previous.as_of && t.booking_date <= current.as_of
    }) {
        if let Some((security, moved)) = movement(t) {
            *expected.entry(security).or_default() += moved;
        }
    }
    let mut reported: BTreeMap<&SecurityKey, Decimal> = BTreeMap::new();
    for (security, quantity) in &current.holdings {
        *reported.entry(security).or_default() += quantity;
    }
    let securities: std::collections::BTreeSet<&SecurityKey> =
        expected.keys().chain(reported.keys()).copied().collect();
    securities
        .into_iter()
        .filter_map(|security| {
            let want = expected.get(security).copied().unwrap_or_default();
            let got = reported.get(security).copied().unwrap_or_default();
            (want != got).then(|| PositionBreak {
                account: account.to_owned(),
                security: security.clone(),
                expected: want.normalize(),
                reported: got.normalize(),
                from: previous.as_of,
                to: current.as_of,
                message: format!(
                    "{}: {} held on {}, but {} on {} plus the movements booked since make {} (difference {})",
                    security.as_str(),
                    got.normalize(),
                    current.as_of,
                    previous
                        .holdings
                        .iter()
                        .filter(|(s, _)| s == security)
                        .map(|(_, q)| *q)
                        .sum::<Decimal>()
                        .normalize(),
                    previous.as_of,
                    want.normalize(),
                    (got - want).normalize()
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provenance, SourceFormat};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn sec(id: &str) -> SecurityKey {
        SecurityKey::new("bank_a", None, Some(id)).unwrap()
    }
    fn q(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn trade(account: &str, day: &str, kind: TransactionType, id: &str, qty: &str) -> Transaction {
        Transaction {
            account: account.into(),
            natural_key: format!("{day}-{id}-{qty}"),
            bank_reference: None,
            booking_date: d(day),
            value_date: None,
            trade_date: None,
            settlement_date: None,
            kind,
            bank_code: None,
            amount: q("100"),
            direction: if kind == TransactionType::Sell {
                Direction::Credit
            } else {
                Direction::Debit
            },
            currency: eam_model::domain::Currency::EUR,
            security: Some(sec(id)),
            quantity: Some(q(qty)),
            price: None,
            fees: None,
            status: TransactionStatus::Booked,
            reversal: false,
            counterparty: None,
            description: None,
            provenance: Provenance {
                format: SourceFormat::BankAJson,
                document: "t".into(),
                position: 0,
            },
        }
    }

    fn snapshot(day: &str, holdings: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            as_of: d(day),
            holdings: holdings.iter().map(|(s, n)| (sec(s), q(n))).collect(),
        }
    }

    #[test]
    fn holdings_that_the_movements_explain_have_no_break() {
        let before = snapshot("2026-12-01", &[("A", "100"), ("B", "50")]);
        let trades = [
            trade("X", "2026-12-02", TransactionType::Buy, "A", "25"),
            trade("X", "2026-12-03", TransactionType::Sell, "B", "50"),
            trade("X", "2026-12-03", TransactionType::Buy, "C", "10.5"),
            // Another account's trade and one booked before the previous snapshot: ignored.
            trade("Y", "2026-12-02", TransactionType::Buy, "A", "999"),
            trade("X", "2026-12-01", TransactionType::Buy, "A", "999"),
        ];
        let after = snapshot("2026-12-04", &[("A", "125"), ("C", "10.50")]);
        assert_eq!(check("X", &before, &trades, &after), vec![]);
    }

    #[test]
    fn a_missing_trade_is_exactly_one_break_with_its_difference() {
        let before = snapshot("2026-12-01", &[("A", "100")]);
        // The bank holds 130 after a buy of 30 that its transaction feed left out.
        let after = snapshot("2026-12-04", &[("A", "130")]);
        let breaks = check("X", &before, &[], &after);
        assert_eq!(breaks.len(), 1);
        let b = &breaks[0];
        assert_eq!(
            (b.expected, b.reported, b.difference()),
            (q("100"), q("130"), q("30"))
        );
        assert_eq!(
            b.message,
            "bank:bank_a:A: 130 held on 2026-12-04, but 100 on 2026-12-01 plus the movements booked since make 100 (difference 30)"
        );
        // A position that vanished without a sale: expected 100, reported 0.
        let gone = check("X", &before, &[], &snapshot("2026-12-04", &[]));
        assert_eq!((gone[0].expected, gone[0].reported), (q("100"), q("0")));
    }

    #[test]
    fn transfers_move_in_the_direction_booked_and_pending_ones_do_not_count() {
        let before = snapshot("2026-12-01", &[("A", "10")]);
        let mut delivered = trade("X", "2026-12-02", TransactionType::Transfer, "A", "4");
        delivered.direction = Direction::Debit;
        let mut received = trade("X", "2026-12-02", TransactionType::Transfer, "A", "1");
        received.direction = Direction::Credit;
        let mut pending = trade("X", "2026-12-02", TransactionType::Buy, "A", "100");
        pending.status = TransactionStatus::Pending;
        let after = snapshot("2026-12-03", &[("A", "7")]);
        assert_eq!(
            check("X", &before, &[delivered, received, pending], &after),
            vec![]
        );
    }
}
