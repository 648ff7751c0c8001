//! Statement files: the dataset written as the files bank_b (SWIFT FIN) and bank_c (ISO 20022)
//! deliver, and the catalog the two banks list them from.
//!
//! Both banks show the same [`Dataset`] as bank_a, only in another shape, so a test can compare
//! what the platform loads from any bank against one source of truth. Decisions a reader of
//! these files must know:
//!
//! - **One file per account and day**, for every day from the start to the end date: a cash
//!   statement (MT940, camt.053) for every account, custody or cash, and a complete holdings
//!   statement (MT535, semt.002) for every custody account, even on days it holds nothing (a
//!   complete statement of nothing closes every position). bank_b adds an MT536 for each custody
//!   account and day with booked trades.
//! - **Booked entries only.** A pending transaction is in no statement file: it changes neither
//!   the closing balance nor the positions. It shows only in the available balance of the last
//!   day (`:64:`, `CLAV`), which is the closing balance less the pending debits, as on bank_a.
//! - **Balances chain**: a day's opening balance is the previous day's closing balance (the
//!   first day opens with the account's opening balance), and both are dated the statement day.
//! - **Ids** are `YYYYMMDD-NNNNNNNN-R`: the day, the account's 1-based position in the dataset
//!   (eight digits) and the format's rank within its bank (MT940 1, MT535 2, MT536 3; camt.053 1,
//!   semt.002 2). Fixed width, so string order is (date, account, format) order, and an id never
//!   changes for a dataset; a later end date only adds files with greater ids.
//! - **Rendered on demand.** The `Catalog` holds twelve bytes per file; a file's bytes are
//!   computed from the dataset whenever they are needed (a listing page hashes the files it
//!   lists), deterministically, so the listed size and digest always match the download.
//!
//! The writers themselves are in `swift` and `iso`, each documenting what its formats carry.

mod iso;
mod swift;

#[cfg(test)]
mod tests;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, SimAccount, SimPosition, SimTransaction, round2};

pub use self::swift::swift_reference;

/// The format of a statement file, named as the normalizer's `SourceFormat` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileFormat {
    /// SWIFT MT940 customer statement (bank_b).
    Mt940,
    /// SWIFT MT535 statement of holdings (bank_b).
    Mt535,
    /// SWIFT MT536 statement of transactions (bank_b).
    Mt536,
    /// ISO 20022 camt.053.001.08 bank-to-customer statement (bank_c).
    Camt053,
    /// ISO 20022 semt.002.001.11 custody statement of holdings (bank_c).
    Semt002,
}

impl FileFormat {
    /// The name listings use: `mt940`, `mt535`, `mt536`, `camt053`, `semt002`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Mt940 => "mt940",
            FileFormat::Mt535 => "mt535",
            FileFormat::Mt536 => "mt536",
            FileFormat::Camt053 => "camt053",
            FileFormat::Semt002 => "semt002",
        }
    }

    /// The last digit of a file id: the format's place among the files of one account and day.
    fn rank(self) -> u8 {
        match self {
            FileFormat::Mt940 | FileFormat::Camt053 => 1,
            FileFormat::Mt535 | FileFormat::Semt002 => 2,
            FileFormat::Mt536 => 3,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FileFormat::Mt940 => "mt940",
            FileFormat::Mt535 => "mt535",
            FileFormat::Mt536 => "mt536",
            FileFormat::Camt053 => "camt053.xml",
            FileFormat::Semt002 => "semt002.xml",
        }
    }

    /// The Content-Type a download is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Mt940 | FileFormat::Mt535 | FileFormat::Mt536 => "application/octet-stream",
            FileFormat::Camt053 | FileFormat::Semt002 => "application/xml",
        }
    }
}

/// Which family of files a bank delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileProtocol {
    /// bank_b: SWIFT FIN (MT940, MT535, MT536).
    Swift,
    /// bank_c: ISO 20022 XML (camt.053, semt.002).
    Iso20022,
}

/// One statement file with its listing data, as a bank delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFile {
    /// Fixed-width id, e.g. `20261120-00000003-1`; ids sort in (date, account, format) order.
    pub id: String,
    /// File name, e.g. `BA-000002-1_2026-11-20.mt535`.
    pub name: String,
    /// What the file holds, as listed.
    pub format: FileFormat,
    /// The dataset's account id the file is about (also for cash accounts named by IBAN inside).
    pub account_id: String,
    /// The statement day.
    pub date: NaiveDate,
    /// The file exactly as a download returns it.
    pub bytes: Vec<u8>,
}

impl StatementFile {
    /// The SHA-256 of the bytes, in lower-case hex, as listings give it.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Every bank_b file of the dataset (MT940, MT535, MT536) in id order.
pub fn swift_files(dataset: &Dataset) -> Vec<StatementFile> {
    Catalog::new(dataset, FileProtocol::Swift).files(dataset)
}

/// Every bank_c file of the dataset (camt.053, semt.002) in id order.
pub fn iso_files(dataset: &Dataset) -> Vec<StatementFile> {
    Catalog::new(dataset, FileProtocol::Iso20022).files(dataset)
}

/// A file of a catalog: which day, which account, which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRef {
    /// Days since the dataset's start date.
    day: u32,
    /// Index into [`Dataset::accounts`].
    account: u32,
    format: FileFormat,
}

impl FileRef {
    pub(crate) fn format(self) -> FileFormat {
        self.format
    }

    pub(crate) fn date(self, dataset: &Dataset) -> NaiveDate {
        day_date(dataset, self.day)
    }

    pub(crate) fn id(self, dataset: &Dataset) -> String {
        format!(
            "{}-{:08}-{}",
            self.date(dataset).format("%Y%m%d"),
            u64::from(self.account) + 1,
            self.format.rank()
        )
    }

    pub(crate) fn account(self, dataset: &Dataset) -> Option<&SimAccount> {
        dataset.accounts.get(self.account as usize)
    }

    pub(crate) fn name(self, dataset: &Dataset) -> String {
        let account = self.account(dataset).map_or("", |a| a.account_id.as_str());
        format!(
            "{account}_{}.{}",
            self.date(dataset).format("%Y-%m-%d"),
            self.format.extension()
        )
    }
}

/// Whether `s` has the shape of a file id (`YYYYMMDD-NNNNNNNN-R`).
pub(crate) fn is_file_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 17 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The files one bank lists, in id order, without their bytes.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    entries: Vec<FileRef>,
}

impl Catalog {
    /// Lists every file of `protocol` for the dataset.
    pub(crate) fn new(dataset: &Dataset, protocol: FileProtocol) -> Catalog {
        let days = dataset.params.days.max(1);
        // Days with booked trades, per custody account: only those have an MT536.
        let trade_days: Vec<Vec<u32>> = dataset
            .accounts
            .iter()
            .map(|account| {
                let mut days: Vec<u32> = booked_trades(account)
                    .filter_map(|t| day_of(dataset, t.booking_date))
                    .collect();
                days.dedup();
                days
            })
            .collect();
        let mut entries = Vec::new();
        for day in 0..days {
            for (index, account) in dataset.accounts.iter().enumerate() {
                let Ok(account_index) = u32::try_from(index) else {
                    continue;
                };
                let file = |format| FileRef {
                    day,
                    account: account_index,
                    format,
                };
                let custody = account.kind == "custody";
                match protocol {
                    FileProtocol::Swift => {
                        entries.push(file(FileFormat::Mt940));
                        if custody {
                            entries.push(file(FileFormat::Mt535));
                            if trade_days[index].binary_search(&day).is_ok() {
                                entries.push(file(FileFormat::Mt536));
                            }
                        }
                    }
                    FileProtocol::Iso20022 => {
                        entries.push(file(FileFormat::Camt053));
                        if custody {
                            entries.push(file(FileFormat::Semt002));
                        }
                    }
                }
            }
        }
        Catalog { entries }
    }

    /// The files whose id sorts after `after` (all of them without it), in id order.
    pub(crate) fn after(&self, dataset: &Dataset, after: Option<&str>) -> &[FileRef] {
        let Some(after) = after else {
            return &self.entries;
        };
        let start = self
            .entries
            .partition_point(|f| f.id(dataset).as_str() <= after);
        &self.entries[start..]
    }

    /// The file with this id.
    pub(crate) fn find(&self, dataset: &Dataset, id: &str) -> Option<FileRef> {
        self.entries
            .binary_search_by(|f| f.id(dataset).as_str().cmp(id))
            .ok()
            .and_then(|i| self.entries.get(i).copied())
    }

    /// Every file with its bytes.
    pub(crate) fn files(&self, dataset: &Dataset) -> Vec<StatementFile> {
        self.entries
            .iter()
            .filter_map(|&f| {
                Some(StatementFile {
                    id: f.id(dataset),
                    name: f.name(dataset),
                    format: f.format,
                    account_id: f.account(dataset)?.account_id.clone(),
                    date: f.date(dataset),
                    bytes: render(dataset, f),
                })
            })
            .collect()
    }
}

/// The bytes of one file (empty for a reference outside the dataset, which a catalog built
/// from the same dataset never holds).
pub(crate) fn render(dataset: &Dataset, file: FileRef) -> Vec<u8> {
    let Some(account) = file.account(dataset) else {
        return Vec::new();
    };
    let ordinal = file.account as usize;
    match file.format {
        FileFormat::Mt940 => swift::mt940(&cash_day(dataset, account, ordinal, file.day)),
        FileFormat::Mt535 => swift::mt535(&holdings_day(dataset, account, ordinal, file.day)),
        FileFormat::Mt536 => swift::mt536(&trades_day(dataset, account, ordinal, file.day)),
        FileFormat::Camt053 => iso::camt053(&cash_day(dataset, account, ordinal, file.day)),
        FileFormat::Semt002 => iso::semt002(&holdings_day(dataset, account, ordinal, file.day)),
    }
}

/// A six-letter CFI code whose first letter is the asset class (E equity, D debt, C fund, M
/// other), which is how both SWIFT and ISO readers recover it.
pub(crate) fn cfi(asset_class: &str) -> &'static str {
    match asset_class {
        "equity" => "ESVUFR",
        "bond" => "DBFTFR",
        "fund" => "CIOGES",
        _ => "MXXXXX",
    }
}

fn day_date(dataset: &Dataset, day: u32) -> NaiveDate {
    dataset
        .start_date
        .checked_add_days(Days::new(u64::from(day)))
        .unwrap_or(dataset.params.end_date)
}

fn day_of(dataset: &Dataset, date: NaiveDate) -> Option<u32> {
    u32::try_from((date - dataset.start_date).num_days()).ok()
}

fn booked_trades(account: &SimAccount) -> impl Iterator<Item = &SimTransaction> {
    account
        .transactions
        .iter()
        .filter(|t| t.is_booked() && matches!(t.kind, "buy" | "sell"))
}

/// What a cash statement of one account and day says: both cash formats write this.
pub(crate) struct CashDay<'a> {
    pub(crate) account: &'a SimAccount,
    /// Index of the account in the dataset.
    pub(crate) ordinal: usize,
    /// Days since the start date (statement number - 1).
    pub(crate) day: u32,
    pub(crate) date: NaiveDate,
    /// The previous day's closing balance (the account's opening balance on the first day).
    pub(crate) opening: Decimal,
    pub(crate) closing: Decimal,
    /// The day's booked entries, in booking order.
    pub(crate) entries: Vec<&'a SimTransaction>,
    /// On the last day only: closing less pending debits.
    pub(crate) available: Option<Decimal>,
}

pub(crate) fn cash_day<'a>(
    dataset: &'a Dataset,
    account: &'a SimAccount,
    ordinal: usize,
    day: u32,
) -> CashDay<'a> {
    let date = day_date(dataset, day);
    let booked = account.transactions.iter().filter(|t| t.is_booked());
    let before: Decimal = booked
        .clone()
        .filter(|t| t.booking_date < date)
        .map(SimTransaction::signed_amount)
        .sum();
    let entries: Vec<&SimTransaction> = booked.filter(|t| t.booking_date == date).collect();
    let opening = round2(account.opening_balance + before);
    let closing = round2(opening + entries.iter().map(|t| t.signed_amount()).sum::<Decimal>());
    let available = (date == dataset.params.end_date).then(|| {
        let pending_debits: Decimal = account
            .transactions
            .iter()
            .filter(|t| !t.is_booked() && t.direction == "debit")
            .map(|t| t.amount)
            .sum();
        round2(closing - pending_debits)
    });
    CashDay {
        account,
        ordinal,
        day,
        date,
        opening,
        closing,
        entries,
        available,
    }
}

/// The holdings of one custody account at the end of one day.
pub(crate) struct HoldingsDay<'a> {
    pub(crate) account: &'a SimAccount,
    pub(crate) ordinal: usize,
    pub(crate) day: u32,
    pub(crate) date: NaiveDate,
    /// Non-zero positions valued at the day's prices, by security.
    pub(crate) positions: Vec<SimPosition>,
}

pub(crate) fn holdings_day<'a>(
    dataset: &'a Dataset,
    account: &'a SimAccount,
    ordinal: usize,
    day: u32,
) -> HoldingsDay<'a> {
    let date = day_date(dataset, day);
    HoldingsDay {
        account,
        ordinal,
        day,
        date,
        positions: dataset.positions_as_of(&account.account_id, date),
    }
}

/// The booked trades of one custody account on one day.
pub(crate) struct TradesDay<'a> {
    pub(crate) account: &'a SimAccount,
    pub(crate) ordinal: usize,
    pub(crate) day: u32,
    pub(crate) date: NaiveDate,
    /// Buys and sells booked (traded) that day, in booking order.
    pub(crate) trades: Vec<&'a SimTransaction>,
}

pub(crate) fn trades_day<'a>(
    dataset: &'a Dataset,
    account: &'a SimAccount,
    ordinal: usize,
    day: u32,
) -> TradesDay<'a> {
    let date = day_date(dataset, day);
    TradesDay {
        account,
        ordinal,
        day,
        date,
        trades: booked_trades(account)
            .filter(|t| t.booking_date == date)
            .collect(),
    }
}

/// bank_b's MT536 of the day a booked trade was traded, without that trade (an MT536 of no
/// trades, `:17B::ACTI//N`, when it was the day's only one): a securities feed that lost one
/// transaction, while the day's cash statement still books its cash side and the holdings
/// statements still hold it. Returns the file's id and bytes; `None` when `transaction_id` is
/// not a booked buy or sell of the dataset.
pub fn mt536_without(dataset: &Dataset, transaction_id: &str) -> Option<(String, Vec<u8>)> {
    let (ordinal, account) = dataset.accounts.iter().enumerate().find(|(_, a)| {
        a.transactions
            .iter()
            .any(|t| t.transaction_id == transaction_id)
    })?;
    let trade = booked_trades(account).find(|t| t.transaction_id == transaction_id)?;
    let day = day_of(dataset, trade.booking_date)?;
    let mut trades = trades_day(dataset, account, ordinal, day);
    trades.trades.retain(|t| t.transaction_id != transaction_id);
    let file = FileRef {
        day,
        account: u32::try_from(ordinal).ok()?,
        format: FileFormat::Mt536,
    };
    Some((file.id(dataset), swift::mt536(&trades)))
}
