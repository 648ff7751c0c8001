//! Each account's history, planned so that the dataset's invariants hold by construction.
//!
//! Booking dates are drawn first and sorted; events are then chosen in date order against the
//! account's booked holdings, so a sale can never exceed what is held. A custody account must
//! end with exactly its number of positions: each of those securities needs a first buy, and a
//! few extra securities are bought and later sold out. Those required events are spread over
//! the dates (each date takes one with probability remaining-required / remaining-dates, which
//! is certain once they would no longer fit), the other dates get optional events: more
//! buys, partial sales that never empty a holding, dividends, coupons, fees. Only optional
//! events in the last two days may be pending, and a pending trade does not move the holdings,
//! so excluding pending entries from positions and balances keeps every invariant.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::prices::PriceTable;
use super::random::{Purpose, Stream};
use super::{SimAccount, SimClient, SimParams, SimSecurity, SimTransaction};
use super::{gross_value, round2};

/// Chance, in percent, that an optional event in the last two days is still pending.
const PENDING_PERCENT: u64 = 30;
/// Settlement cycle of trades, in calendar days.
const SETTLEMENT_DAYS: u64 = 2;
/// Smallest tradable face amount of a bond.
const FACE_UNIT: i64 = 1_000;

/// What every account's generation reads.
pub(crate) struct Context<'a> {
    pub(crate) params: &'a SimParams,
    pub(crate) start_date: NaiveDate,
    pub(crate) days: u32,
    pub(crate) securities: &'a [Arc<SimSecurity>],
    pub(crate) prices: &'a PriceTable,
}

impl Context<'_> {
    fn date(&self, day: u32) -> NaiveDate {
        self.start_date
            .checked_add_days(Days::new(u64::from(day)))
            .unwrap_or(self.start_date)
    }

    fn in_pending_window(&self, day: u32) -> bool {
        day + 2 >= self.days
    }
}

/// Generates account `n` (zero-based) of client `c`; `global` numbers it in the dataset.
pub(crate) fn account(cx: &Context, client: &SimClient, c: u32, n: u32, global: u64) -> SimAccount {
    let mut rng = Stream::new(cx.params.seed, Purpose::Account, global);
    let account_id = format!("BA-{:06}-{}", c + 1, n + 1);
    let currency = super::CURRENCIES[rng.index(super::CURRENCIES.len())];
    let custody = n.is_multiple_of(2);
    let cushion = Decimal::new(rng.between(5_000_000, 200_000_000), 2);
    let (kind, iban, transactions) = if custody {
        let transactions = custody_transactions(cx, &account_id, currency, &mut rng);
        ("custody", None, transactions)
    } else {
        let iban = iban(currency, global, &mut rng);
        let transactions = cash_transactions(cx, &account_id, currency, &client.name, &mut rng);
        ("cash", Some(iban), transactions)
    };
    // A private bank does not let a client run an unarranged overdraft: the opening balance
    // covers the deepest point the entries reach, plus a cushion.
    let opening_balance = cushion + deepest_overdraft(&transactions);
    SimAccount {
        account_id,
        iban,
        currency,
        kind,
        client_reference: client.reference.clone(),
        client_name: client.name.clone(),
        opening_balance,
        transactions,
    }
}

/// How far below zero the entries would take a balance that starts at zero, counting pending
/// entries and, within a day, debits before credits.
fn deepest_overdraft(transactions: &[SimTransaction]) -> Decimal {
    let mut flows: Vec<(NaiveDate, Decimal)> = transactions
        .iter()
        .map(|t| (t.booking_date, t.signed_amount()))
        .collect();
    flows.sort();
    let mut running = Decimal::ZERO;
    let mut lowest = Decimal::ZERO;
    for (_, amount) in flows {
        running += amount;
        lowest = lowest.min(running);
    }
    -lowest
}

/// An IBAN with valid mod-97 check digits: Swiss (CH, 5-digit clearing number and 12-digit
/// account) for CHF accounts and some others, else Luxembourgish (LU, 3-digit bank code and
/// 13-digit account). The account part comes from `global`, so IBANs are unique.
fn iban(currency: &str, global: u64, rng: &mut Stream) -> String {
    let (country, bban) = if currency == "CHF" || rng.percent(50) {
        ("CH", format!("08390{:012}", 100_000_000_000 + global))
    } else {
        ("LU", format!("019{:013}", 4_000_000_000_000 + global))
    };
    let check = 98 - mod97(&format!("{bban}{country}00"));
    format!("{country}{check:02}{bban}")
}

/// The ISO 7064 mod-97 remainder of an alphanumeric string (letters count as 10..35).
fn mod97(s: &str) -> u32 {
    s.bytes().fold(0u32, |rem, b| match b {
        b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
        b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A' + 10)) % 97,
        _ => rem,
    })
}

/// `count` day offsets in `0..days`, sorted.
fn booking_days(rng: &mut Stream, count: usize, days: u32) -> Vec<u32> {
    let mut out: Vec<u32> = (0..count)
        .map(|_| u32::try_from(rng.below(u64::from(days))).unwrap_or(0))
        .collect();
    out.sort_unstable();
    out
}

/// Collects an account's transactions and numbers them in order.
struct Ledger<'a> {
    account_id: &'a str,
    currency: &'static str,
    /// Sequence numbers are zero-padded to this width so that id order is booking order.
    width: usize,
    transactions: Vec<SimTransaction>,
}

impl<'a> Ledger<'a> {
    fn new(account_id: &'a str, currency: &'static str, count: usize) -> Self {
        Ledger {
            account_id,
            currency,
            width: count.to_string().len().max(6),
            transactions: Vec::with_capacity(count),
        }
    }

    /// Records a transaction with the common fields; the caller fills in the rest.
    fn push(
        &mut self,
        date: NaiveDate,
        kind: &'static str,
        bank_code: &'static str,
        direction: &'static str,
        amount: Decimal,
        booked: bool,
    ) -> &mut SimTransaction {
        let sequence = self.transactions.len() + 1;
        self.transactions.push(SimTransaction {
            transaction_id: format!("{}-{sequence:0w$}", self.account_id, w = self.width),
            booking_date: date,
            value_date: Some(date),
            trade_date: None,
            settlement_date: None,
            kind,
            bank_code,
            amount,
            direction,
            currency: self.currency,
            security: None,
            quantity: None,
            price: None,
            fees: None,
            status: if booked { "booked" } else { "pending" },
            counterparty: None,
            description: None,
        });
        let last = self.transactions.len() - 1;
        &mut self.transactions[last]
    }
}

/// Booked holdings during generation: whole units, or face amount in currency units.
#[derive(Default)]
struct Holdings(BTreeMap<usize, i64>);

impl Holdings {
    fn of(&self, security: &SimSecurity) -> i64 {
        self.0.get(&security.index).copied().unwrap_or(0)
    }

    fn add(&mut self, security: &SimSecurity, quantity: i64) {
        *self.0.entry(security.index).or_insert(0) += quantity;
    }
}

fn is_bond(security: &SimSecurity) -> bool {
    security.quantity_type == "face_amount"
}

/// The smallest partial sale that still leaves something: possible from two trading units.
fn can_sell_part(security: &SimSecurity, holding: i64) -> bool {
    let unit = if is_bond(security) { FACE_UNIT } else { 1 };
    holding >= 2 * unit
}

fn pays_income(security: &SimSecurity) -> bool {
    security.dividend_per_unit.is_some() || security.coupon_percent.is_some_and(|c| !c.is_zero())
}

/// Brokerage fee: 5 to 30 basis points of gross, at least 15.00 but never above a tenth of
/// gross, so a sale always credits a positive amount.
fn trade_fee(rng: &mut Stream, gross: Decimal) -> Decimal {
    let bps = Decimal::from(rng.between(5, 30));
    let fee = round2(gross * bps / Decimal::from(10_000)).max(Decimal::new(1_500, 2));
    fee.min(round2(gross / Decimal::TEN))
}

struct Trade<'a> {
    security: &'a Arc<SimSecurity>,
    date: NaiveDate,
    quantity: i64,
    booked: bool,
}

fn record_trade(ledger: &mut Ledger, cx: &Context, rng: &mut Stream, trade: Trade, buy: bool) {
    let Trade {
        security,
        date,
        quantity,
        booked,
    } = trade;
    let price = cx.prices.price(security, date);
    let quantity = Decimal::from(quantity);
    let gross = round2(gross_value(security, quantity, price));
    let fees = trade_fee(rng, gross);
    let settles = date
        .checked_add_days(Days::new(SETTLEMENT_DAYS))
        .unwrap_or(date);
    let (kind, code, direction, amount, verb) = if buy {
        ("buy", "BUY", "debit", gross + fees, "Buy")
    } else {
        ("sell", "SELL", "credit", gross - fees, "Sell")
    };
    let t = ledger.push(date, kind, code, direction, amount, booked);
    t.trade_date = Some(date);
    t.value_date = Some(settles);
    t.settlement_date = Some(settles);
    t.security = Some(Arc::clone(security));
    t.quantity = Some(quantity);
    t.price = Some(price);
    t.fees = Some(fees);
    t.description = Some(format!("{verb} {quantity} {}", security.name));
}

/// A buy of a size a private client would place: 5k to 150k face for bonds, else roughly 2k
/// to 60k of the currency in whole units (at least one).
fn buy_quantity(cx: &Context, rng: &mut Stream, security: &SimSecurity, date: NaiveDate) -> i64 {
    if is_bond(security) {
        return FACE_UNIT * rng.between(5, 150);
    }
    let budget = Decimal::from(rng.between(2_000, 60_000));
    let price = cx.prices.price(security, date);
    if price.is_zero() {
        return 1;
    }
    (budget / price).floor().to_i64().unwrap_or(1).max(1)
}

fn custody_transactions(
    cx: &Context,
    account_id: &str,
    currency: &'static str,
    rng: &mut Stream,
) -> Vec<SimTransaction> {
    let count = cx.params.transactions_per_account as usize;
    let mut pool: Vec<&Arc<SimSecurity>> = cx
        .securities
        .iter()
        .filter(|s| s.currency == currency)
        .collect();
    rng.shuffle(&mut pool);
    let held = (cx.params.positions_per_account as usize)
        .min(count)
        .min(pool.len());
    let closable = (pool.len() - held).min(2).min((count - held) / 2);
    let closed = rng.index(closable + 1);
    let mut plan = CustodyPlan {
        ledger: Ledger::new(account_id, currency, count),
        holdings: Holdings::default(),
        to_open: pool[..held].to_vec(),
        to_open_and_close: pool[held..held + closed].to_vec(),
        to_close: Vec::new(),
        kept: Vec::new(),
    };
    for (i, day) in booking_days(rng, count, cx.days).into_iter().enumerate() {
        let date = cx.date(day);
        let required = plan.required_events();
        if required > 0 && rng.index(count - i) < required {
            plan.required_event(cx, rng, date);
        } else {
            let booked = !(cx.in_pending_window(day) && rng.percent(PENDING_PERCENT));
            plan.optional_event(cx, rng, date, booked);
        }
    }
    plan.ledger.transactions
}

/// A custody account's history being written, with what it still owes its invariants.
struct CustodyPlan<'a> {
    ledger: Ledger<'a>,
    holdings: Holdings,
    /// Securities to hold at the end date, not bought yet.
    to_open: Vec<&'a Arc<SimSecurity>>,
    /// Securities to buy and later sell out, not bought yet.
    to_open_and_close: Vec<&'a Arc<SimSecurity>>,
    /// Bought, still to sell out.
    to_close: Vec<&'a Arc<SimSecurity>>,
    /// Bought, held to the end.
    kept: Vec<&'a Arc<SimSecurity>>,
}

impl<'a> CustodyPlan<'a> {
    /// Events still needed for the invariants: first buys and sell-outs.
    fn required_events(&self) -> usize {
        self.to_open.len() + 2 * self.to_open_and_close.len() + self.to_close.len()
    }

    /// One required event, booked: a first buy, or the sale of a whole holding.
    fn required_event(&mut self, cx: &Context, rng: &mut Stream, date: NaiveDate) {
        let opening = self.to_open.len();
        let opening_to_close = self.to_open_and_close.len();
        let k = rng.index(opening + opening_to_close + self.to_close.len());
        let (security, buy) = if k < opening {
            let security = self.to_open.swap_remove(k);
            self.kept.push(security);
            (security, true)
        } else if k < opening + opening_to_close {
            let security = self.to_open_and_close.swap_remove(k - opening);
            self.to_close.push(security);
            (security, true)
        } else {
            (
                self.to_close.swap_remove(k - opening - opening_to_close),
                false,
            )
        };
        let quantity = if buy {
            buy_quantity(cx, rng, security, date)
        } else {
            self.holdings.of(security)
        };
        self.holdings
            .add(security, if buy { quantity } else { -quantity });
        let trade = Trade {
            security,
            date,
            quantity,
            booked: true,
        };
        record_trade(&mut self.ledger, cx, rng, trade, buy);
    }

    /// One event no invariant depends on: a further buy, a partial sale, income or a fee.
    /// A pending (not `booked`) trade leaves the booked holdings as they are.
    fn optional_event(&mut self, cx: &Context, rng: &mut Stream, date: NaiveDate, booked: bool) {
        let holdings = &self.holdings;
        let sellable: Vec<&'a Arc<SimSecurity>> = self
            .kept
            .iter()
            .copied()
            .filter(|s| can_sell_part(s, holdings.of(s)))
            .collect();
        let payers: Vec<&'a Arc<SimSecurity>> = self
            .kept
            .iter()
            .chain(&self.to_close)
            .copied()
            .filter(|s| pays_income(s) && holdings.of(s) > 0)
            .collect();
        let weights = [
            if self.kept.is_empty() { 0 } else { 4 },
            if sellable.is_empty() { 0 } else { 3 },
            if payers.is_empty() { 0 } else { 2 },
            1,
        ];
        match weighted_choice(rng, &weights) {
            0 => {
                let security = self.kept[rng.index(self.kept.len())];
                let quantity = buy_quantity(cx, rng, security, date);
                if booked {
                    self.holdings.add(security, quantity);
                }
                let trade = Trade {
                    security,
                    date,
                    quantity,
                    booked,
                };
                record_trade(&mut self.ledger, cx, rng, trade, true);
            }
            1 => {
                let security = sellable[rng.index(sellable.len())];
                let holding = self.holdings.of(security);
                // At most half, so the position stays open.
                let quantity = if is_bond(security) {
                    FACE_UNIT * rng.between(1, holding / FACE_UNIT / 2)
                } else {
                    rng.between(1, holding / 2)
                };
                if booked {
                    self.holdings.add(security, -quantity);
                }
                let trade = Trade {
                    security,
                    date,
                    quantity,
                    booked,
                };
                record_trade(&mut self.ledger, cx, rng, trade, false);
            }
            2 => {
                let security = payers[rng.index(payers.len())];
                let holding = Decimal::from(self.holdings.of(security));
                let (kind, code, label, amount) = match security.coupon_percent {
                    Some(coupon) => (
                        "interest",
                        "CPN",
                        "Coupon",
                        round2(holding * coupon / Decimal::ONE_HUNDRED),
                    ),
                    None => (
                        "dividend",
                        "DIV",
                        "Dividend",
                        round2(holding * security.dividend_per_unit.unwrap_or_default()),
                    ),
                };
                let t = self.ledger.push(date, kind, code, "credit", amount, booked);
                t.security = Some(Arc::clone(security));
                t.description = Some(format!("{label} {}", security.name));
            }
            _ => {
                let amount = Decimal::new(rng.between(2_000, 40_000), 2);
                let t = self
                    .ledger
                    .push(date, "fee", "FEE", "debit", amount, booked);
                t.description = Some("Custody fee".to_owned());
            }
        }
    }
}

/// An index into `weights`, drawn with probability proportional to its weight.
fn weighted_choice(rng: &mut Stream, weights: &[u64]) -> usize {
    let mut pick = rng.below(weights.iter().sum());
    for (i, &weight) in weights.iter().enumerate() {
        if pick < weight {
            return i;
        }
        pick -= weight;
    }
    weights.len().saturating_sub(1)
}

/// Payees and payers of a cash account's transfers, with what the payment is for.
const TRANSFER_PARTIES: &[(&str, &str)] = &[
    ("Immobilien Seefeld AG", "Rent"),
    ("Clinique des Alpes SA", "Invoice"),
    ("Helvetia Versicherungen", "Premium"),
    ("Galerie am Rhein GmbH", "Purchase"),
    ("Family Trust Lugano", "Distribution"),
    ("École Internationale de Genève", "Tuition"),
    ("Yacht Services Monaco SAM", "Invoice"),
    ("Steuerverwaltung Kanton Zug", "Tax"),
];

fn cash_transactions(
    cx: &Context,
    account_id: &str,
    currency: &'static str,
    client_name: &str,
    rng: &mut Stream,
) -> Vec<SimTransaction> {
    let count = cx.params.transactions_per_account as usize;
    let mut ledger = Ledger::new(account_id, currency, count);
    for day in booking_days(rng, count, cx.days) {
        let date = cx.date(day);
        let booked = !(cx.in_pending_window(day) && rng.percent(PENDING_PERCENT));
        let cents = |rng: &mut Stream, low: i64, high: i64| Decimal::new(rng.between(low, high), 2);
        match rng.below(10) {
            0 | 1 => {
                let amount = cents(rng, 100_000, 10_000_000);
                let t = ledger.push(date, "deposit", "DEP", "credit", amount, booked);
                t.counterparty = Some(client_name.to_owned());
                t.description = Some("Deposit from own account".to_owned());
            }
            2 | 3 => {
                let amount = cents(rng, 50_000, 3_000_000);
                let t = ledger.push(date, "withdrawal", "WDL", "debit", amount, booked);
                t.counterparty = Some(client_name.to_owned());
                t.description = Some("Withdrawal to own account".to_owned());
            }
            4 => {
                let amount = cents(rng, 50, 25_000);
                let t = ledger.push(date, "interest", "INT", "credit", amount, booked);
                t.description = Some("Credit interest".to_owned());
            }
            5 => {
                let amount = cents(rng, 500, 15_000);
                let t = ledger.push(date, "fee", "FEE", "debit", amount, booked);
                t.description = Some("Account maintenance fee".to_owned());
            }
            incoming => {
                let (party, purpose) = TRANSFER_PARTIES[rng.index(TRANSFER_PARTIES.len())];
                let reference = rng.between(1_000, 99_999);
                let amount = cents(rng, 10_000, 2_500_000);
                let direction = if incoming <= 7 { "credit" } else { "debit" };
                let t = ledger.push(date, "transfer", "TRF", direction, amount, booked);
                t.counterparty = Some(party.to_owned());
                t.description = Some(format!("{purpose} {reference}"));
            }
        }
    }
    ledger.transactions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ibans_pass_the_mod_97_check() {
        let mut rng = Stream::new(3, Purpose::Account, 0);
        for global in [0, 1, 999, 123_456] {
            for currency in super::super::CURRENCIES {
                let iban = iban(currency, global, &mut rng);
                let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
                assert_eq!(mod97(&rearranged), 1, "{iban}");
                assert!(eam_normalizer::domain::Iban::parse(&iban).is_ok(), "{iban}");
            }
        }
    }

    #[test]
    fn a_sale_always_credits_more_than_nothing() {
        let mut rng = Stream::new(5, Purpose::Account, 0);
        for gross in ["0.01", "4.10", "150.00", "1000000.00"] {
            let gross: Decimal = gross.parse().expect("test literal");
            let fee = trade_fee(&mut rng, gross);
            assert!(fee <= round2(gross / Decimal::TEN), "{gross}: {fee}");
            assert!(gross - fee > Decimal::ZERO, "{gross}: {fee}");
        }
    }
}
