//! Every page the server would serve parses, with the platform's own bank_a parser, into
//! exactly the dataset's records; paging visits each record once; bad requests are refused.

use std::collections::HashSet;

use chrono::Days;
use eam_normalizer::bank_a::{DocumentKind, parse};
use eam_normalizer::domain::Isin;
use eam_normalizer::model::{Batch, SecurityDetail, SecurityKey};

use super::*;
use crate::dataset::{SimParams, generate};

const CUSTODIAN: &str = "bank_a";

fn dataset() -> Dataset {
    generate(&SimParams {
        seed: 11,
        clients: 3,
        accounts_per_client: 3,
        positions_per_account: 6,
        transactions_per_account: 57,
        days: 25,
        end_date: NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
    })
}

fn with(limit: usize, cursor: Option<String>) -> Params {
    Params {
        limit: Some(limit.to_string()),
        cursor,
        ..Params::default()
    }
}

/// Parses a served page the way the sync engine will.
fn parsed(kind: DocumentKind, page: &impl Serialize) -> Batch {
    let body = serde_json::to_vec(page).expect("pages serialize");
    parse(kind, CUSTODIAN, "test-page", &body)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&body)))
}

fn key(security: &SimSecurity) -> SecurityKey {
    let isin = security
        .isin
        .as_deref()
        .map(|i| Isin::parse(i).expect("valid ISIN"));
    SecurityKey::new(CUSTODIAN, isin.as_ref(), Some(&security.bank_security_id)).expect("key")
}

fn currency(code: &str) -> eam_normalizer::domain::Currency {
    eam_normalizer::domain::Currency::parse(code).expect("ISO currency")
}

/// Walks a paged listing to its end, returning each page's parse.
fn walk(
    kind: DocumentKind,
    mut fetch: impl FnMut(Option<String>) -> (Vec<u8>, Option<String>),
) -> Vec<Batch> {
    let mut cursor = None;
    let mut batches = Vec::new();
    loop {
        let (body, next) = fetch(cursor.take());
        batches.push(parse(kind, CUSTODIAN, "test-page", &body).unwrap_or_else(|e| panic!("{e}")));
        match next {
            Some(next) => cursor = Some(next),
            None => return batches,
        }
        assert!(batches.len() < 10_000, "paging does not end");
    }
}

#[test]
fn every_accounts_page_parses_into_the_dataset_accounts() {
    let d = dataset();
    let batches = walk(DocumentKind::Accounts, |cursor| {
        let page = accounts(&d, &with(4, cursor)).expect("page");
        (serde_json::to_vec(&page).expect("json"), page.next_cursor)
    });
    assert_eq!(batches.len(), 3, "9 accounts in pages of 4");
    let parsed: Vec<_> = batches.into_iter().flat_map(|b| b.accounts).collect();
    assert_eq!(parsed.len(), d.accounts.len());
    for (p, a) in parsed.iter().zip(&d.accounts) {
        assert_eq!(p.bank_account_id, a.account_id);
        assert_eq!(p.iban.as_ref().map(|i| i.as_str()), a.iban.as_deref());
        assert_eq!(p.currency, currency(a.currency));
        assert_eq!(p.kind.as_str(), a.kind);
        let client = p.client.as_ref().expect("client");
        assert_eq!(
            (client.reference.as_str(), client.name.as_str()),
            (a.client_reference.as_str(), a.client_name.as_str())
        );
    }
}

#[test]
fn every_positions_page_parses_into_the_dataset_positions() {
    let d = dataset();
    for a in &d.accounts {
        for as_of in [d.start_date + Days::new(12), d.params.end_date] {
            let params = |cursor| Params {
                as_of: Some(as_of.to_string()),
                ..with(4, cursor)
            };
            let batches = walk(DocumentKind::Positions, |cursor| {
                let page = positions(&d, &a.account_id, &params(cursor)).expect("page");
                (serde_json::to_vec(&page).expect("json"), page.next_cursor)
            });
            let snapshots: usize = batches.iter().map(|b| b.complete_snapshots.len()).sum();
            assert_eq!(snapshots, 1, "only the last page completes the snapshot");
            let served: Vec<_> = batches.iter().flat_map(|b| &b.positions).collect();
            let securities: Vec<_> = batches.iter().flat_map(|b| &b.securities).collect();
            let expected = d.positions_as_of(&a.account_id, as_of);
            assert_eq!(served.len(), expected.len());
            for ((p, s), e) in served.iter().zip(&securities).zip(&expected) {
                assert_eq!(p.account, a.account_id);
                assert_eq!(p.security, key(&e.security));
                assert_eq!(p.as_of, as_of);
                assert_eq!(p.quantity, e.quantity);
                assert_eq!(p.quantity_type.as_str(), e.quantity_type);
                assert_eq!(p.price, Some(e.price));
                assert_eq!(p.price_type.as_str(), e.price_type);
                assert_eq!(p.price_currency, Some(currency(e.price_currency)));
                assert_eq!(p.market_value, Some(e.market_value));
                assert_eq!(p.accrued_interest, e.accrued_interest);
                assert_eq!(p.cost, Some(e.cost));
                assert_eq!(s.key, p.security);
                assert_eq!(s.detail, SecurityDetail::Full);
                assert_eq!(
                    s.isin.as_ref().map(|i| i.as_str()),
                    e.security.isin.as_deref()
                );
                assert_eq!(
                    s.bank_security_id.as_deref(),
                    Some(e.security.bank_security_id.as_str())
                );
                assert_eq!(s.valor, e.security.valor);
                assert_eq!(s.name, e.security.name);
                assert_eq!(s.asset_class.as_str(), e.security.asset_class);
                assert_eq!(s.currency, Some(currency(e.security.currency)));
            }
        }
    }
}

#[test]
fn every_balances_document_parses_into_the_dataset_balances() {
    let d = dataset();
    for a in &d.accounts {
        let batch = parsed(
            DocumentKind::Balances,
            &balances(&d, &a.account_id, &Params::default()).expect("balances"),
        );
        let expected = d.balances(&a.account_id);
        assert_eq!(batch.balances.len(), 3);
        for (p, e) in batch.balances.iter().zip(&expected) {
            assert_eq!(p.account, a.account_id);
            assert_eq!(p.currency, currency(e.currency));
            assert_eq!(p.kind.as_str(), e.kind);
            assert_eq!(p.amount, e.amount);
            assert_eq!(p.as_of, e.as_of);
        }
    }
}

#[test]
fn every_transactions_page_parses_into_the_dataset_transactions() {
    let d = dataset();
    for a in &d.accounts {
        let batches = walk(DocumentKind::Transactions, |cursor| {
            let page = transactions(&d, &a.account_id, &with(7, cursor)).expect("page");
            (serde_json::to_vec(&page).expect("json"), page.next_cursor)
        });
        assert_eq!(batches.len(), 57usize.div_ceil(7));
        let served: Vec<_> = batches.into_iter().flat_map(|b| b.transactions).collect();
        assert_eq!(served.len(), a.transactions.len());
        for (p, e) in served.iter().zip(&a.transactions) {
            assert_eq!(p.account, a.account_id);
            assert_eq!(p.bank_reference.as_deref(), Some(e.transaction_id.as_str()));
            assert_eq!(p.natural_key, format!("ref:{}", e.transaction_id));
            assert_eq!(p.booking_date, e.booking_date);
            assert_eq!(p.value_date, e.value_date);
            assert_eq!(p.trade_date, e.trade_date);
            assert_eq!(p.settlement_date, e.settlement_date);
            assert_eq!(p.kind.as_str(), e.kind);
            assert_eq!(p.bank_code.as_deref(), Some(e.bank_code));
            assert_eq!(p.amount, e.amount);
            assert_eq!(p.direction.as_str(), e.direction);
            assert_eq!(p.signed_amount(), e.signed_amount());
            assert_eq!(p.currency, currency(e.currency));
            assert_eq!(p.security, e.security.as_deref().map(key));
            assert_eq!(p.quantity, e.quantity);
            assert_eq!(p.price, e.price);
            assert_eq!(p.fees, e.fees);
            assert_eq!(p.status.as_str(), e.status);
            assert_eq!(p.counterparty, e.counterparty);
            assert_eq!(p.description, e.description);
        }
    }
}

#[test]
fn a_date_window_pages_through_each_transaction_in_it_exactly_once() {
    let d = dataset();
    let a = &d.accounts[1];
    let (from, to) = (d.start_date + Days::new(5), d.start_date + Days::new(15));
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let params = Params {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            ..with(3, cursor)
        };
        let page = transactions(&d, &a.account_id, &params).expect("page");
        seen.extend(
            page.transactions
                .iter()
                .map(|t| t.transaction_id.to_owned()),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<_> = a
        .transactions
        .iter()
        .filter(|t| t.booking_date >= from && t.booking_date <= to)
        .map(|t| t.transaction_id.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[test]
fn pages_default_to_100_items_and_refuse_limits_outside_1_to_1000() {
    let d = generate(&SimParams {
        transactions_per_account: 250,
        ..SimParams::demo(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"))
    });
    let first = transactions(&d, "BA-000001-1", &Params::default()).expect("page");
    assert_eq!(first.transactions.len(), DEFAULT_LIMIT);
    assert!(first.next_cursor.is_some());
    let all = transactions(&d, "BA-000001-1", &with(MAX_LIMIT, None)).expect("page");
    assert_eq!(all.transactions.len(), 250);
    assert_eq!(all.next_cursor, None);
    for bad in ["0", "1001", "-1", "ten", "1.5"] {
        let params = Params {
            limit: Some(bad.into()),
            ..Params::default()
        };
        assert!(
            matches!(
                transactions(&d, "BA-000001-1", &params),
                Err(ApiError::BadRequest(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn a_cursor_is_only_valid_for_the_listing_that_issued_it() {
    let d = dataset();
    let page = transactions(&d, "BA-000001-1", &with(5, None)).expect("page");
    let cursor = page.next_cursor.expect("more pages");
    assert!(transactions(&d, "BA-000001-1", &with(5, Some(cursor.clone()))).is_ok());
    let elsewhere = transactions(&d, "BA-000001-2", &with(5, Some(cursor.clone())));
    assert!(matches!(elsewhere, Err(ApiError::BadRequest(_))));
    let filtered = Params {
        from: Some(d.start_date.to_string()),
        ..with(5, Some(cursor))
    };
    assert!(matches!(
        transactions(&d, "BA-000001-1", &filtered),
        Err(ApiError::BadRequest(_))
    ));
    for garbage in ["zz", "6f6b", &hex::encode("99999:abc")] {
        let result = accounts(&d, &with(5, Some(garbage.to_string())));
        assert!(matches!(result, Err(ApiError::BadRequest(_))), "{garbage}");
    }
}

#[test]
fn bad_dates_unknown_accounts_and_future_as_of_are_refused() {
    let d = dataset();
    assert_eq!(
        balances(&d, "BA-404", &Params::default()).err(),
        Some(ApiError::UnknownAccount("BA-404".into()))
    );
    assert!(matches!(
        positions(&d, "nope", &Params::default()),
        Err(ApiError::UnknownAccount(_))
    ));
    assert!(matches!(
        transactions(&d, "nope", &Params::default()),
        Err(ApiError::UnknownAccount(_))
    ));
    let future = Params {
        as_of: Some("2026-11-21".into()),
        ..Params::default()
    };
    assert!(matches!(
        positions(&d, "BA-000001-1", &future),
        Err(ApiError::BadRequest(_))
    ));
    for bad in ["2026-13-01", "20261120", "2026-1-5", "yesterday"] {
        let params = Params {
            as_of: Some(bad.into()),
            ..Params::default()
        };
        assert!(
            matches!(
                positions(&d, "BA-000001-1", &params),
                Err(ApiError::BadRequest(_))
            ),
            "{bad}"
        );
        let params = Params {
            from: Some(bad.into()),
            ..Params::default()
        };
        assert!(
            matches!(
                transactions(&d, "BA-000001-1", &params),
                Err(ApiError::BadRequest(_))
            ),
            "{bad}"
        );
    }
    let reversed = Params {
        from: Some("2026-11-10".into()),
        to: Some("2026-11-01".into()),
        ..Params::default()
    };
    assert!(matches!(
        transactions(&d, "BA-000001-1", &reversed),
        Err(ApiError::BadRequest(_))
    ));
}

#[test]
fn positions_default_to_the_end_date_and_empty_parameters_count_as_absent() {
    let d = dataset();
    let blank = Params {
        as_of: Some(String::new()),
        cursor: Some(String::new()),
        limit: Some(String::new()),
        ..Params::default()
    };
    let page = positions(&d, "BA-000001-1", &blank).expect("page");
    assert_eq!(page.as_of, "2026-11-20");
    assert_eq!(page.positions.len(), 6);
    let before = Params {
        as_of: Some((d.start_date - Days::new(1)).to_string()),
        ..Params::default()
    };
    assert!(
        positions(&d, "BA-000001-1", &before)
            .expect("page")
            .positions
            .is_empty()
    );
}

#[test]
fn the_wire_writes_decimals_as_strings_and_absent_values_as_null() {
    let d = dataset();
    let page = transactions(&d, "BA-000001-2", &with(1, None)).expect("page");
    let json = serde_json::to_value(&page).expect("json");
    let t = &json["transactions"][0];
    assert!(t["amount"].is_string());
    assert!(t["security"].is_null() && t["quantity"].is_null());
    assert!(t["type"].is_string() && t.get("kind").is_none());
    assert!(json["next_cursor"].is_string());
    let positions =
        serde_json::to_value(positions(&d, "BA-000001-1", &Params::default()).expect("page"))
            .expect("json");
    assert!(positions["next_cursor"].is_null());
    assert!(positions["positions"][0]["quantity"].is_string());
}

#[test]
fn a_rewound_cursor_selects_the_items_just_before_it_in_the_same_listing() {
    let d = dataset();
    let a = &d.accounts[0];
    let ids = |cursor: Option<String>, limit: usize| -> Vec<String> {
        transactions(&d, &a.account_id, &with(limit, cursor))
            .expect("page")
            .transactions
            .iter()
            .map(|t| t.transaction_id.to_owned())
            .collect()
    };
    let second = transactions(&d, &a.account_id, &with(7, None))
        .expect("page")
        .next_cursor
        .expect("a second page");
    let third = transactions(&d, &a.account_id, &with(7, Some(second.clone())))
        .expect("page")
        .next_cursor
        .expect("a third page");

    let (rewound, len) = rewind_cursor(&third, 7).expect("a page before the third");
    assert_eq!(len, 7);
    assert_eq!(ids(Some(rewound), len), ids(Some(second.clone()), 7));

    // Rewinding further than the start stops at the first item.
    let (rewound, len) = rewind_cursor(&second, 10).expect("a page before the second");
    assert_eq!(len, 7);
    assert_eq!(ids(Some(rewound), len), ids(None, 7));

    let (first, _) = rewind_cursor(&second, 7).expect("the first page");
    assert_eq!(
        rewind_cursor(&first, 7),
        None,
        "nothing lies before offset 0"
    );
    assert_eq!(rewind_cursor("not-a-cursor", 7), None);
}
