//! Position reconciliation: a custody account's holdings at a snapshot must equal its
//! holdings at the previous snapshot plus the securities movements booked in between.
//! Each security that does not add up is a break with its expected and reported quantity;
//! nothing is corrected.
//!
//! A movement is a booked transaction of the account with a security and a quantity: a buy
//! adds its quantity, a sell removes it; any other kind (a transfer, a corporate action) moves
//! it in the direction the bank booked it (credit in, debit out). A pending transaction moves
//! nothing. A security absent from a complete snapshot is held at zero.
//!
//! **Which day a movement counts on**: its trade date when the bank gives one, else its
//! booking date; it counts between two snapshots when that day is after the previous
//! snapshot's date and up to the new one's. Holdings statements are on a trade-date basis: a
//! trade is held from the day it is traded, which is what the simulator's holdings
//! (`positions_as_of`: the booked trades traded on or before the date) and its statements say.
//! A cash statement books a trade on its trade date too, but a securities statement (MT536)
//! read alone books it on settlement, days later: counted then, the trade would make two
//! breaks that cancel out.
//!
//! **Which snapshots**: the complete ones (a delta statement lists only what changed, so it is
//! not a snapshot), each checked against the account's previous one: earlier in the same sync
//! (a file bank delivers one holdings statement per day), else the latest stored before the
//! sync's first. An account's first snapshot ever has nothing to be checked against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
pub use eam_model::breaks::{Break, PositionSnapshot, SecuritiesTransaction};
use eam_model::breaks::{BreakKind, BreakSecurity};
use rust_decimal::Decimal;

use crate::model::{
    Batch, Direction, Position, Security, SecurityKey, Transaction, TransactionStatus,
    TransactionType,
};

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

    /// The break as the store records it: located in `document` (the snapshot's), its
    /// security named `label`.
    pub fn into_break(self, document: String, label: String) -> Break {
        Break {
            kind: BreakKind::Position,
            account: self.account,
            currency: None,
            statement_reference: None,
            statement_number: None,
            date: Some(self.to),
            expected: Some(self.expected),
            actual: Some(self.reported),
            message: self.message,
            document,
            security: Some(BreakSecurity {
                key: self.security,
                label,
            }),
            period_from: Some(self.from),
        }
    }
}

/// The securities side of a parsed transaction, when it has one (a security and a quantity):
/// what the store reads back of it once loaded.
pub fn securities_side(t: &Transaction) -> Option<SecuritiesTransaction> {
    Some(SecuritiesTransaction {
        account: t.account.clone(),
        security: t.security.clone()?,
        kind: t.kind,
        direction: t.direction,
        status: t.status,
        quantity: t.quantity?,
        booking_date: t.booking_date,
        trade_date: t.trade_date,
    })
}

/// The day a transaction moves its account's holdings on (see the module's note) and the
/// quantity it moves in (+) or out (-), if it moves any.
pub fn movement(t: &SecuritiesTransaction) -> Option<(NaiveDate, Decimal)> {
    if t.status != TransactionStatus::Booked {
        return None;
    }
    let quantity = t.quantity.abs();
    let signed = match (t.kind, t.direction) {
        (TransactionType::Buy, _) => quantity,
        (TransactionType::Sell, _) => -quantity,
        (_, Direction::Credit) => quantity,
        (_, Direction::Debit) => -quantity,
    };
    Some((t.trade_date.unwrap_or(t.booking_date), signed))
}

/// Checks `current` against `previous` and the account's `transactions` (others' are ignored).
pub fn check(
    account: &str,
    previous: &PositionSnapshot,
    transactions: &[SecuritiesTransaction],
    current: &PositionSnapshot,
) -> Vec<PositionBreak> {
    let mut expected: BTreeMap<&SecurityKey, Decimal> = BTreeMap::new();
    for (security, quantity) in &previous.holdings {
        *expected.entry(security).or_default() += quantity;
    }
    for t in transactions.iter().filter(|t| t.account == account) {
        if let Some((day, moved)) = movement(t)
            && day > previous.as_of
            && day <= current.as_of
        {
            *expected.entry(&t.security).or_default() += moved;
        }
    }
    let mut reported: BTreeMap<&SecurityKey, Decimal> = BTreeMap::new();
    for (security, quantity) in &current.holdings {
        *reported.entry(security).or_default() += quantity;
    }
    let securities: BTreeSet<&SecurityKey> =
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

/// Checks an account's `snapshots` (in date order) each against the one before it; the first
/// against `stored`, the latest snapshot before them, or against nothing when there is none.
pub fn check_chain(
    account: &str,
    stored: Option<&PositionSnapshot>,
    snapshots: &[PositionSnapshot],
    transactions: &[SecuritiesTransaction],
) -> Vec<PositionBreak> {
    let mut previous = stored;
    let mut breaks = Vec::new();
    for current in snapshots {
        if let Some(previous) = previous.filter(|p| p.as_of < current.as_of) {
            breaks.extend(check(account, previous, transactions, current));
        }
        previous = Some(current);
    }
    breaks
}

/// The complete snapshots of a batch, per account in date order, each with the positions the
/// batch lists for its account and date (the last one of a security winning, as it loads). A
/// snapshot listed twice is one; positions without a complete snapshot are none.
pub fn snapshots(batch: &Batch) -> BTreeMap<String, Vec<PositionSnapshot>> {
    let mut listed: BTreeMap<(&str, NaiveDate), BTreeMap<&SecurityKey, Decimal>> = batch
        .complete_snapshots
        .iter()
        .map(|s| ((s.account.as_str(), s.as_of), BTreeMap::new()))
        .collect();
    for p in &batch.positions {
        if let Some(holdings) = listed.get_mut(&(p.account.as_str(), p.as_of)) {
            holdings.insert(&p.security, p.quantity);
        }
    }
    let mut out: BTreeMap<String, Vec<PositionSnapshot>> = BTreeMap::new();
    // Keys are in (account, date) order, so each account's snapshots come in date order.
    for ((account, as_of), holdings) in listed {
        out.entry(account.to_owned())
            .or_default()
            .push(PositionSnapshot {
                as_of,
                holdings: holdings.into_iter().map(|(k, q)| (k.clone(), q)).collect(),
            });
    }
    out
}

/// Per account, the period whose securities transactions [`check_batch`] needs: after the
/// stored snapshot (else the batch's first), up to the batch's last. Accounts with nothing to
/// check are left out.
pub fn periods(
    snapshots: &BTreeMap<String, Vec<PositionSnapshot>>,
    stored: &BTreeMap<String, PositionSnapshot>,
) -> Vec<(String, NaiveDate, NaiveDate)> {
    snapshots
        .iter()
        .filter_map(|(account, list)| {
            let first = list.first()?.as_of;
            let last = list.last()?.as_of;
            let from = stored
                .get(account)
                .filter(|s| s.as_of < first)
                .map_or(first, |s| s.as_of);
            (from < last).then(|| (account.clone(), from, last))
        })
        .collect()
}

/// Every position break of a batch: each account's `snapshots` (see [`snapshots`]) checked
/// in turn, the first against its `stored` predecessor, with the `transactions` of the
/// accounts over their [`periods`]. Each break is located in the document of the snapshot it
/// was found in (empty when that snapshot lists nothing) and names its security as the batch
/// described it ([`label`]).
pub fn check_batch(
    batch: &Batch,
    snapshots: &BTreeMap<String, Vec<PositionSnapshot>>,
    stored: &BTreeMap<String, PositionSnapshot>,
    transactions: &[SecuritiesTransaction],
) -> Vec<Break> {
    let mut by_account: BTreeMap<&str, Vec<SecuritiesTransaction>> = BTreeMap::new();
    for t in transactions {
        by_account
            .entry(t.account.as_str())
            .or_default()
            .push(t.clone());
    }
    let found: Vec<PositionBreak> = snapshots
        .iter()
        .flat_map(|(account, list)| {
            let moved = by_account.get(account.as_str()).map_or(&[][..], |v| v);
            check_chain(account, stored.get(account), list, moved)
        })
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    // Where each snapshot's positions came from, and how the batch describes its securities:
    // looked up once, however many breaks there are.
    let mut documents: HashMap<(&str, NaiveDate), Vec<&Position>> = HashMap::new();
    for p in &batch.positions {
        documents
            .entry((p.account.as_str(), p.as_of))
            .or_default()
            .push(p);
    }
    let described: HashMap<&SecurityKey, &Security> =
        batch.securities.iter().map(|s| (&s.key, s)).collect();
    found
        .into_iter()
        .map(|b| {
            let listed = documents
                .get(&(b.account.as_str(), b.to))
                .map_or(&[][..], |v| v);
            let document = listed
                .iter()
                .find(|p| p.security == b.security)
                .or_else(|| listed.first())
                .map(|p| p.provenance.document.clone())
                .unwrap_or_default();
            let label = label(&b.security, described.get(&b.security).copied());
            b.into_break(document, label)
        })
        .collect()
}

/// How a break names a security: its ISIN (else the bank's id) and its name, as `described`;
/// without a description, the identifier its key holds.
pub fn label(key: &SecurityKey, described: Option<&Security>) -> String {
    let from_key = || {
        let k = key.as_str();
        k.strip_prefix("isin:")
            .or_else(|| {
                k.strip_prefix("bank:")
                    .and_then(|r| r.split_once(':').map(|(_, id)| id))
            })
            .unwrap_or(k)
            .to_owned()
    };
    match described {
        Some(s) => {
            let id = s
                .isin
                .as_ref()
                .map(|i| i.to_string())
                .or_else(|| s.bank_security_id.clone())
                .unwrap_or_else(from_key);
            if s.name.trim().is_empty() {
                id
            } else {
                format!("{id} {}", s.name.trim())
            }
        }
        None => from_key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AssetClass, CompleteSnapshot, PriceType, Provenance, QuantityType, SecurityDetail,
        SourceFormat,
    };

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn sec(id: &str) -> SecurityKey {
        SecurityKey::new("bank_a", None, Some(id)).unwrap()
    }
    fn q(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn trade(
        account: &str,
        day: &str,
        kind: TransactionType,
        id: &str,
        qty: &str,
    ) -> SecuritiesTransaction {
        SecuritiesTransaction {
            account: account.into(),
            security: sec(id),
            kind,
            direction: if kind == TransactionType::Sell {
                Direction::Credit
            } else {
                Direction::Debit
            },
            status: TransactionStatus::Booked,
            quantity: q(qty),
            booking_date: d(day),
            trade_date: None,
        }
    }

    fn snapshot(day: &str, holdings: &[(&str, &str)]) -> PositionSnapshot {
        PositionSnapshot {
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

    #[test]
    fn a_trade_counts_on_its_trade_date_not_on_a_later_settlement_booking() {
        // Traded on the 2nd (held from then on), booked by a securities statement on
        // settlement, the 4th.
        let mut buy = trade("X", "2026-12-04", TransactionType::Buy, "A", "30");
        buy.trade_date = Some(d("2026-12-02"));
        // A sale whose quantity the bank signs: its kind says which way it goes.
        let mut sell = trade("X", "2026-12-02", TransactionType::Sell, "B", "-5");
        sell.trade_date = Some(d("2026-12-02"));
        let trades = [buy, sell];
        let day1 = snapshot("2026-12-01", &[("A", "100"), ("B", "5")]);
        let day2 = snapshot("2026-12-02", &[("A", "130")]);
        let day4 = snapshot("2026-12-04", &[("A", "130")]);
        assert_eq!(check("X", &day1, &trades, &day2), vec![]);
        assert_eq!(check("X", &day2, &trades, &day4), vec![]);
        assert_eq!(
            movement(&trades[1]),
            Some((d("2026-12-02"), q("-5"))),
            "a sale moves out whatever its sign"
        );
    }

    #[test]
    fn a_chain_checks_each_snapshot_against_the_one_before_and_the_first_ever_against_nothing() {
        let buy = trade("X", "2026-12-03", TransactionType::Buy, "A", "30");
        // The buy of the 3rd is missing from the feed: the 3rd's snapshot breaks, and the 4th
        // (checked against the 3rd as reported) does not break again.
        let days = [
            snapshot("2026-12-02", &[("A", "100")]),
            snapshot("2026-12-03", &[("A", "160")]),
            snapshot("2026-12-04", &[("A", "160")]),
        ];
        let breaks = check_chain("X", None, &days, std::slice::from_ref(&buy));
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(
            (breaks[0].from, breaks[0].to, breaks[0].difference()),
            (d("2026-12-02"), d("2026-12-03"), q("30"))
        );
        // With a stored snapshot before them, the first is checked against it too.
        let stored = snapshot("2026-12-01", &[("A", "90")]);
        let breaks = check_chain("X", Some(&stored), &days, &[buy]);
        assert_eq!(
            breaks
                .iter()
                .map(|b| (b.from, b.to, b.expected, b.reported))
                .collect::<Vec<_>>(),
            vec![
                (d("2026-12-01"), d("2026-12-02"), q("90"), q("100")),
                (d("2026-12-02"), d("2026-12-03"), q("130"), q("160")),
            ]
        );
        // A stored snapshot of the same date is no predecessor.
        let same_day = snapshot("2026-12-02", &[("A", "1")]);
        assert_eq!(check_chain("X", Some(&same_day), &days[..1], &[]), vec![]);
    }

    fn provenance(document: &str) -> Provenance {
        Provenance {
            format: SourceFormat::Mt535,
            document: document.into(),
            position: 0,
        }
    }

    fn position(account: &str, day: &str, id: &str, qty: &str, document: &str) -> Position {
        Position {
            account: account.into(),
            security: sec(id),
            as_of: d(day),
            quantity: q(qty),
            quantity_type: QuantityType::Units,
            price: None,
            price_type: PriceType::Amount,
            price_currency: None,
            market_value: None,
            accrued_interest: None,
            cost: None,
            provenance: provenance(document),
        }
    }

    fn complete(account: &str, day: &str) -> CompleteSnapshot {
        CompleteSnapshot {
            account: account.into(),
            as_of: d(day),
        }
    }

    #[test]
    fn a_batch_snapshot_is_a_complete_statement_with_its_positions_in_date_order() {
        let batch = Batch {
            positions: vec![
                position("X", "2026-12-02", "A", "100", "x-02.mt535"),
                position("X", "2026-12-01", "A", "90", "x-01.mt535"),
                // Listed twice: the last one wins, as the load keeps it.
                position("X", "2026-12-02", "A", "110", "x-02.mt535"),
                // A delta statement's position: no complete snapshot, no snapshot.
                position("Y", "2026-12-02", "A", "5", "y-02.mt535"),
            ],
            complete_snapshots: vec![
                complete("X", "2026-12-02"),
                complete("X", "2026-12-01"),
                complete("X", "2026-12-02"),
                // A complete statement of nothing: held at zero.
                complete("Z", "2026-12-02"),
            ],
            ..Batch::default()
        };
        let found = snapshots(&batch);
        assert_eq!(
            found,
            BTreeMap::from([
                (
                    "X".to_owned(),
                    vec![
                        snapshot("2026-12-01", &[("A", "90")]),
                        snapshot("2026-12-02", &[("A", "110")]),
                    ]
                ),
                ("Z".to_owned(), vec![snapshot("2026-12-02", &[])]),
            ])
        );
        let stored = BTreeMap::from([("Z".to_owned(), snapshot("2026-11-30", &[("A", "1")]))]);
        assert_eq!(
            periods(&found, &stored),
            vec![
                ("X".to_owned(), d("2026-12-01"), d("2026-12-02")),
                ("Z".to_owned(), d("2026-11-30"), d("2026-12-02")),
            ]
        );
        assert_eq!(
            periods(&found, &BTreeMap::new()).len(),
            1,
            "Z has nothing to check"
        );
    }

    #[test]
    fn a_batch_break_is_located_in_its_snapshot_and_names_its_security() {
        let isin = eam_model::domain::Isin::parse("US0378331005").unwrap();
        let described = Security {
            key: sec("A"),
            isin: Some(isin),
            raw_isin: None,
            bank_security_id: Some("A".into()),
            valor: None,
            wkn: None,
            cusip: None,
            name: "Apple Inc.".into(),
            asset_class: AssetClass::Equity,
            currency: None,
            detail: SecurityDetail::Full,
        };
        let batch = Batch {
            securities: vec![described],
            positions: vec![
                position("X", "2026-12-01", "A", "100", "x-01.mt535"),
                position("X", "2026-12-02", "B", "7", "x-02-p1.json"),
                position("X", "2026-12-02", "A", "130", "x-02-p2.json"),
            ],
            complete_snapshots: vec![complete("X", "2026-12-01"), complete("X", "2026-12-02")],
            ..Batch::default()
        };
        let found = snapshots(&batch);
        let moved = [trade("X", "2026-12-02", TransactionType::Buy, "B", "7")];
        let breaks = check_batch(&batch, &found, &BTreeMap::new(), &moved);
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        let b = &breaks[0];
        assert_eq!(b.kind, BreakKind::Position);
        assert_eq!(b.account, "X");
        assert_eq!(b.document, "x-02-p2.json");
        assert_eq!(b.date, Some(d("2026-12-02")));
        assert_eq!(b.period_from, Some(d("2026-12-01")));
        assert_eq!((b.expected, b.actual), (Some(q("100")), Some(q("130"))));
        assert_eq!(b.difference(), Some(q("30")));
        assert_eq!(b.currency, None);
        let security = b.security.as_ref().unwrap();
        assert_eq!(security.key, sec("A"));
        assert_eq!(security.label, "US0378331005 Apple Inc.");
    }

    #[test]
    fn a_security_the_batch_does_not_describe_is_named_by_its_key() {
        assert_eq!(label(&sec("SEC-0007"), None), "SEC-0007");
        let isin = eam_model::domain::Isin::parse("US0378331005").unwrap();
        let key = SecurityKey::new("bank_b", Some(&isin), None).unwrap();
        assert_eq!(label(&key, None), "US0378331005");
    }
}
