//! The simulated bank's data: generated from a seed, pure, and internally consistent.
//!
//! Everything the simulator serves is derived from one [`Dataset`], and tests compare what the
//! platform loads against the same values, so this module is the single source of truth:
//! positions are computed from the trades (never stored beside them), balances from the
//! opening balance and the booked entries. Generation is deterministic: the same
//! [`SimParams`] give an identical dataset on every machine (see `random`).
//!
//! Conventions a caller must know:
//! - Amounts are in the account currency with two decimals, always non-negative, with a
//!   `direction` (`debit` lowers the balance, `credit` raises it). A custody account only
//!   trades securities in its own currency, so no exchange rates are involved.
//! - Trades book on their trade date; value date = settlement date = trade date + 2 days (may
//!   fall after the end date). Buy amount = gross + fees, sell amount = gross - fees, where
//!   gross = round2(quantity x price), or round2(face x price / 100) for bonds.
//! - Positions as of a date are the booked buys minus sells traded on or before it. Market value
//!   uses that date's price; cost is the average-cost basis (fees excluded) in the security
//!   currency; bonds carry accrued interest (act/365 since the last annual coupon date).
//! - Pending transactions only occur in the last two days; they change neither positions nor
//!   the closing balance, and pending debits lower the available balance.
//! - Rounding to cents is half away from zero ([`round2`]).

mod activity;
mod fx;
mod prices;
mod random;
mod universe;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use self::prices::PriceTable;
use self::random::{Purpose, Stream};

pub use self::universe::CURRENCIES;

/// Size and shape of a simulated bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimParams {
    /// Same seed and parameters, same dataset.
    pub seed: u64,
    pub clients: u32,
    /// Accounts alternate custody (1st, 3rd, ...) and cash (2nd, 4th, ...) per client.
    pub accounts_per_client: u32,
    /// Distinct securities every custody account holds at the end date.
    pub positions_per_account: u32,
    /// Transactions of every account, pending ones included.
    pub transactions_per_account: u32,
    /// Days simulated, ending at `end_date` inclusive.
    pub days: u32,
    pub end_date: NaiveDate,
}

/// Demo size: clients.
pub const DEMO_CLIENTS: u32 = 3;
/// Demo size: accounts per client.
pub const DEMO_ACCOUNTS_PER_CLIENT: u32 = 2;
/// Demo size: positions per custody account.
pub const DEMO_POSITIONS_PER_ACCOUNT: u32 = 6;
/// Demo size: transactions per account.
pub const DEMO_TRANSACTIONS_PER_ACCOUNT: u32 = 40;
/// Demo size: days of history.
pub const DEMO_DAYS: u32 = 30;
/// Demo seed.
pub const DEMO_SEED: u64 = 42;

/// Parameters that cannot make a consistent dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid simulator parameters: {0}")]
pub struct InvalidParams(String);

impl SimParams {
    /// A small bank for the demo: 3 clients with 2 accounts each, 6 positions per custody
    /// account, 40 transactions per account over 30 days.
    pub fn demo(end_date: NaiveDate) -> Self {
        SimParams {
            seed: DEMO_SEED,
            clients: DEMO_CLIENTS,
            accounts_per_client: DEMO_ACCOUNTS_PER_CLIENT,
            positions_per_account: DEMO_POSITIONS_PER_ACCOUNT,
            transactions_per_account: DEMO_TRANSACTIONS_PER_ACCOUNT,
            days: DEMO_DAYS,
            end_date,
        }
    }

    /// The first simulated day: `end_date - (days - 1)`.
    pub fn start_date(&self) -> NaiveDate {
        let back = u64::from(self.days.max(1) - 1);
        self.end_date
            .checked_sub_days(Days::new(back))
            .unwrap_or(NaiveDate::MIN)
    }

    /// Checks that the parameters can hold the dataset's invariants.
    pub fn validate(&self) -> Result<(), InvalidParams> {
        if self.days == 0 {
            return Err(InvalidParams("days must be at least 1".into()));
        }
        if self
            .end_date
            .checked_sub_days(Days::new(u64::from(self.days) - 1))
            .is_none()
        {
            return Err(InvalidParams(format!(
                "{} days before {} is not a date",
                self.days, self.end_date
            )));
        }
        if self.accounts_per_client > 0
            && self.positions_per_account > self.transactions_per_account
        {
            return Err(InvalidParams(format!(
                "a custody account needs one buy per position: positions_per_account ({}) exceeds \
                 transactions_per_account ({})",
                self.positions_per_account, self.transactions_per_account
            )));
        }
        Ok(())
    }
}

/// An end client of the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimClient {
    /// `C-000001`, ...
    pub reference: String,
    pub name: String,
}

/// A security the bank knows.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSecurity {
    /// The bank's own id (`SEC-0001`, ...); every security has one.
    pub bank_security_id: String,
    /// A real ISIN with a valid check digit, or none.
    pub isin: Option<String>,
    pub valor: Option<String>,
    pub name: String,
    /// `equity`, `bond`, `fund` or `other`.
    pub asset_class: &'static str,
    pub currency: &'static str,
    /// `face_amount` for bonds (multiples of 1000), else `units` (whole numbers).
    pub quantity_type: &'static str,
    /// `percent` (of face) for bonds, else `amount` (per unit, in `currency`).
    pub price_type: &'static str,
    /// Decimals of its prices, 2 to 4.
    pub price_decimals: u32,
    /// Paid per unit as a dividend (equities and funds that distribute).
    pub dividend_per_unit: Option<Decimal>,
    /// Bonds: annual coupon in percent of face.
    pub coupon_percent: Option<Decimal>,
    /// Bonds: maturity; its month and day are the annual coupon date.
    pub maturity: Option<NaiveDate>,
    /// Position in [`Dataset::securities`].
    pub(crate) index: usize,
    /// Listed starting price; the daily prices walk from it.
    pub(crate) base_price: Decimal,
    /// Largest daily move, in basis points.
    pub(crate) volatility_bps: i64,
}

impl SimSecurity {
    /// Whether prices are a percentage of face amount.
    pub fn is_priced_in_percent(&self) -> bool {
        self.price_type == "percent"
    }
}

/// A bank account with its full history.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAccount {
    /// `BA-<client>-<n>`, e.g. `BA-000001-2`.
    pub account_id: String,
    /// Cash accounts have a valid IBAN (CH or LU); custody accounts none.
    pub iban: Option<String>,
    pub currency: &'static str,
    /// `custody` or `cash`.
    pub kind: &'static str,
    pub client_reference: String,
    pub client_name: String,
    /// Cash balance at the start date, before any entry.
    pub opening_balance: Decimal,
    /// Ordered by booking date, then transaction id.
    pub transactions: Vec<SimTransaction>,
}

/// One transaction, with every field bank_a serves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTransaction {
    /// Unique in the dataset and stable across generations: `<account_id>-<sequence>`.
    pub transaction_id: String,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    pub trade_date: Option<NaiveDate>,
    pub settlement_date: Option<NaiveDate>,
    /// Served as `type`: buy, sell, dividend, interest, fee, deposit, withdrawal, transfer.
    pub kind: &'static str,
    pub bank_code: &'static str,
    /// Non-negative, two decimals, in `currency`.
    pub amount: Decimal,
    /// `debit` or `credit`.
    pub direction: &'static str,
    pub currency: &'static str,
    pub security: Option<Arc<SimSecurity>>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub fees: Option<Decimal>,
    /// `booked` or `pending`.
    pub status: &'static str,
    pub counterparty: Option<String>,
    pub description: Option<String>,
}

impl SimTransaction {
    /// The amount with its sign: credits positive, debits negative.
    pub fn signed_amount(&self) -> Decimal {
        if self.direction == "debit" {
            -self.amount
        } else {
            self.amount
        }
    }

    /// Whether the transaction is booked (not pending).
    pub fn is_booked(&self) -> bool {
        self.status == "booked"
    }
}

/// A holding of one security on one date, valued as bank_a serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPosition {
    pub security: Arc<SimSecurity>,
    pub as_of: NaiveDate,
    pub quantity: Decimal,
    pub quantity_type: &'static str,
    pub price: Decimal,
    pub price_type: &'static str,
    pub price_currency: &'static str,
    pub market_value: Decimal,
    /// Bonds only.
    pub accrued_interest: Option<Decimal>,
    /// Average-cost basis in the price currency, fees excluded.
    pub cost: Decimal,
}

/// A cash balance of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBalance {
    pub currency: &'static str,
    /// `opening`, `closing` or `available`.
    pub kind: &'static str,
    pub amount: Decimal,
    pub as_of: NaiveDate,
}

/// A whole simulated bank.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub params: SimParams,
    pub start_date: NaiveDate,
    pub clients: Vec<SimClient>,
    /// Ordered by `bank_security_id`.
    pub securities: Vec<Arc<SimSecurity>>,
    /// Ordered by account id (client, then account number).
    pub accounts: Vec<SimAccount>,
    prices: PriceTable,
    fx: fx::FxTable,
    account_index: HashMap<String, usize>,
}

/// Generates the dataset the parameters describe.
///
/// Parameters that [`SimParams::validate`] refuses are made workable instead of failing: zero
/// days count as one, and a custody account holds at most one position per transaction.
pub fn generate(params: &SimParams) -> Dataset {
    let start_date = params.start_date();
    let days = params.days.max(1);
    // Two spare securities per currency let some accounts also buy and fully sell one.
    let per_currency = params.positions_per_account as usize + 2;
    let securities = universe::universe(per_currency);
    let prices = PriceTable::generate(params.seed, &securities, start_date, days);
    let fx = fx::FxTable::generate(params.seed, start_date, days);
    let cx = activity::Context {
        params,
        start_date,
        days,
        securities: &securities,
        prices: &prices,
    };
    let mut clients = Vec::with_capacity(params.clients as usize);
    let mut accounts =
        Vec::with_capacity(params.clients as usize * params.accounts_per_client as usize);
    for c in 0..params.clients {
        let client = client(params.seed, c);
        for n in 0..params.accounts_per_client {
            let global = u64::from(c) * u64::from(params.accounts_per_client) + u64::from(n);
            accounts.push(activity::account(&cx, &client, c, n, global));
        }
        clients.push(client);
    }
    let account_index = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.account_id.clone(), i))
        .collect();
    Dataset {
        params: params.clone(),
        start_date,
        clients,
        securities,
        accounts,
        prices,
        fx,
        account_index,
    }
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Luca", "Sophie", "Marc", "Elena", "Thomas", "Chiara", "David", "Laura", "Nicolas",
    "Isabelle", "Martin", "Sarah", "Pierre", "Julia", "Andreas", "Camille", "Stefan", "Olivia",
    "Matteo",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Rossi",
    "Dubois",
    "Meier",
    "Schneider",
    "Bernasconi",
    "Keller",
    "Favre",
    "Weber",
    "Huber",
    "Fontana",
    "Baumann",
    "Lambert",
    "Brunner",
    "Gerber",
    "Moretti",
    "Fischer",
    "Rochat",
    "Steiner",
    "Wyss",
];

fn client(seed: u64, index: u32) -> SimClient {
    let mut rng = Stream::new(seed, Purpose::Client, u64::from(index));
    let first = FIRST_NAMES[rng.index(FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.index(LAST_NAMES.len())];
    SimClient {
        reference: format!("C-{:06}", index + 1),
        name: format!("{first} {last}"),
    }
}

/// Rounds to cents, half away from zero, always with two decimals (`12.5` becomes `12.50`).
pub fn round2(value: Decimal) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

/// The unrounded value of a quantity at a price: `quantity x price`, or `/ 100` for a price
/// in percent of face.
pub fn gross_value(security: &SimSecurity, quantity: Decimal, price: Decimal) -> Decimal {
    if security.is_priced_in_percent() {
        quantity * price / Decimal::ONE_HUNDRED
    } else {
        quantity * price
    }
}

/// Interest accrued on a bond's face amount since its last annual coupon date, act/365,
/// rounded to cents; `None` for securities without a coupon.
pub fn accrued_interest(security: &SimSecurity, face: Decimal, date: NaiveDate) -> Option<Decimal> {
    let coupon = security.coupon_percent?;
    let (month, day) = security.maturity.map_or((1, 1), |m| (m.month(), m.day()));
    let this_year = NaiveDate::from_ymd_opt(date.year(), month, day);
    let last_coupon = match this_year {
        Some(d) if d <= date => d,
        _ => NaiveDate::from_ymd_opt(date.year() - 1, month, day).unwrap_or(date),
    };
    let days = Decimal::from((date - last_coupon).num_days());
    Some(round2(
        face * coupon / Decimal::ONE_HUNDRED * days / Decimal::from(365),
    ))
}

impl Dataset {
    /// The account with this id.
    pub fn account(&self, account_id: &str) -> Option<&SimAccount> {
        self.account_index
            .get(account_id)
            .and_then(|&i| self.accounts.get(i))
    }

    /// The security with this bank security id.
    pub fn security(&self, bank_security_id: &str) -> Option<&Arc<SimSecurity>> {
        self.securities
            .iter()
            .find(|s| s.bank_security_id == bank_security_id)
    }

    /// The price of a security on a date (dates after the end date take the end date's price).
    pub fn price(&self, security: &SimSecurity, date: NaiveDate) -> Decimal {
        self.prices.price(security, date)
    }

    /// The euro reference rate of `currency` (units per 1 EUR) on `date`: none on weekends,
    /// outside the dataset, or for a currency not quoted.
    pub fn fx_rate(&self, currency: &str, date: NaiveDate) -> Option<Decimal> {
        self.fx.rate(currency, date)
    }

    /// The currencies with euro reference rates.
    pub fn fx_currencies(&self) -> Vec<&'static str> {
        self.fx.currencies().collect()
    }

    /// The business days with euro reference rates, oldest first.
    pub fn fx_days(&self) -> Vec<NaiveDate> {
        self.fx.days()
    }

    /// The account's transactions booked in `[from, to]` (open ends when `None`), in order.
    pub fn transactions_between(
        &self,
        account: &SimAccount,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> std::ops::Range<usize> {
        let all = &account.transactions;
        let first = from.map_or(0, |from| all.partition_point(|t| t.booking_date < from));
        let end = to.map_or(all.len(), |to| {
            all.partition_point(|t| t.booking_date <= to)
        });
        first..end.max(first)
    }

    /// The non-zero holdings of an account as of a date, ordered by security; empty for an
    /// unknown account or a date before any trade.
    pub fn positions_as_of(&self, account_id: &str, date: NaiveDate) -> Vec<SimPosition> {
        let Some(account) = self.account(account_id) else {
            return Vec::new();
        };
        // Quantity and cost basis per security, keyed by index so the order is stable.
        let mut book: BTreeMap<usize, (&Arc<SimSecurity>, Decimal, Decimal)> = BTreeMap::new();
        for t in account.transactions.iter().filter(|t| t.is_booked()) {
            let (Some(security), Some(quantity), Some(price), Some(trade_date)) =
                (&t.security, t.quantity, t.price, t.trade_date)
            else {
                continue;
            };
            if trade_date > date {
                continue;
            }
            let entry =
                book.entry(security.index)
                    .or_insert((security, Decimal::ZERO, Decimal::ZERO));
            match t.kind {
                "buy" => {
                    entry.1 += quantity;
                    entry.2 += gross_value(security, quantity, price);
                }
                "sell" if !entry.1.is_zero() => {
                    // Average cost: a sale removes its share of the basis.
                    entry.2 = (entry.2 * (entry.1 - quantity) / entry.1).round_dp(6);
                    entry.1 -= quantity;
                }
                _ => {}
            }
        }
        book.into_values()
            .filter(|(_, quantity, _)| !quantity.is_zero())
            .map(|(security, quantity, cost)| {
                let price = self.price(security, date);
                SimPosition {
                    security: Arc::clone(security),
                    as_of: date,
                    quantity,
                    quantity_type: security.quantity_type,
                    price,
                    price_type: security.price_type,
                    price_currency: security.currency,
                    market_value: round2(gross_value(security, quantity, price)),
                    accrued_interest: accrued_interest(security, quantity, date),
                    cost: round2(cost),
                }
            })
            .collect()
    }

    /// The account's cash balances: opening (as of the start date, before any entry), closing
    /// (opening + booked entries) and available (closing - pending debits), both as of the end
    /// date; empty for an unknown account.
    pub fn balances(&self, account_id: &str) -> Vec<SimBalance> {
        self.balances_as_of(account_id, self.params.end_date)
    }

    /// The account's balances at the end of `date`: the opening balance of the first day,
    /// the closing balance (opening plus every transaction booked on or before `date`) and
    /// the available one (closing less the pending debits of those days).
    pub fn balances_as_of(&self, account_id: &str, date: NaiveDate) -> Vec<SimBalance> {
        let Some(account) = self.account(account_id) else {
            return Vec::new();
        };
        let until = |t: &&SimTransaction| t.booking_date <= date;
        let booked: Decimal = account
            .transactions
            .iter()
            .filter(until)
            .filter(|t| t.is_booked())
            .map(SimTransaction::signed_amount)
            .sum();
        let pending_debits: Decimal = account
            .transactions
            .iter()
            .filter(until)
            .filter(|t| !t.is_booked() && t.direction == "debit")
            .map(|t| t.amount)
            .sum();
        let closing = round2(account.opening_balance + booked);
        let balance = |kind, amount, as_of| SimBalance {
            currency: account.currency,
            kind,
            amount,
            as_of,
        };
        vec![
            balance("opening", round2(account.opening_balance), self.start_date),
            balance("closing", closing, date),
            balance("available", round2(closing - pending_debits), date),
        ]
    }
}
