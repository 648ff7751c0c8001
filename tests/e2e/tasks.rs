//! Tasks: the worklist the events open. A failing sync opens one task, a second failure of the
//! same connection counts on it, the next successful sync resolves it; a position break opens
//! one; people assign, comment and close them; advisors see the tasks about a client.

use std::collections::BTreeMap;

use eam_banksim::{Fault, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{TestEnv, small_params};
use crate::positions::{a_buy_after_the_first_day, bank_b};

fn counts(map: &Value) -> BTreeMap<String, i64> {
    map.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

fn expect(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_connection_is_one_task_until_its_next_sync_succeeds_and_a_break_is_another() {
    let env = TestEnv::start(small_params(97)).await;
    let data = env.sim.dataset();
    let tenant = env.tenant("Firm T").await;
    let ops = env.token(tenant, &["ops"]);
    let support = env.token(tenant, &["support"]);
    let advisor = env.token(tenant, &["advisor"]);

    // Two failures of the same connection: one task, counted twice, pointing at the latest.
    let connection = env
        .create_connection(&ops, &env.connection_body(tenant))
        .await;
    let account = data.accounts[0].account_id.clone();
    let mut runs = Vec::new();
    for _ in 0..2 {
        env.sim.faults().inject(
            FaultRule::new(
                format!("/v1/accounts/{account}/transactions"),
                Fault::Malformed,
            )
            .times(1),
        );
        let job = env.sync_and_wait(&ops, &connection).await;
        assert_eq!(job["status"], "failed", "{job}");
        runs.push(job["id"].as_str().unwrap().to_owned());
    }
    let page = env.get("/tasks", &support).await;
    let listed = page["tasks"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{page}");
    let task = &listed[0];
    let sync_task = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["kind"], "sync_failed");
    assert_eq!(task["cause"], format!("connection:{connection}"));
    assert_eq!(task["subject"], format!("run:{}", runs[1]));
    assert_eq!(task["occurrences"], 2);
    assert_eq!(task["status"], "open");
    assert_eq!(task["priority"], "normal");
    assert_eq!(task["overdue"], false);
    let due = chrono::DateTime::parse_from_rfc3339(task["due_at"].as_str().unwrap()).unwrap();
    let created =
        chrono::DateTime::parse_from_rfc3339(task["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        due - created,
        chrono::Duration::hours(8),
        "the SLA of a failed sync"
    );
    assert!(
        task["title"].as_str().unwrap().contains("failed: "),
        "{task}"
    );

    // The next sync succeeds: resolved by the system, said so in its history.
    let job = env.sync_and_wait(&ops, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let detail = env.get(&format!("/tasks/{sync_task}"), &support).await;
    assert_eq!(detail["task"]["status"], "resolved", "{detail}");
    assert_eq!(detail["task"]["closed_by"], "system");
    let history: Vec<(&str, &str)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["actor"].as_str().unwrap(), h["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("system", "created"),
            ("system", "recurred"),
            ("system", "auto_resolved")
        ]
    );
    assert_eq!(
        detail["history"][2]["note"],
        format!(
            "the connection's next sync (run:{}) succeeded",
            job["id"].as_str().unwrap()
        )
    );

    // A position break on a client's account: a task of its own, which an advisor sees.
    let (account, trade) = a_buy_after_the_first_day(&data, true);
    env.sim
        .leave_out_trade(&trade.transaction_id)
        .expect("a booked trade");
    let (status, client, _) = env
        .call(
            Method::POST,
            "/clients",
            Some(&advisor),
            Some(&json!({"reference": "T-1", "name": "T-1", "reporting_currency": "CHF"})),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let client = client["id"].as_str().unwrap().to_owned();
    let files = bank_b(&env, tenant, &ops).await;
    let (status, rule, _) = env
        .call(
            Method::POST,
            &format!("/connections/{files}/assignment-rules"),
            Some(&ops),
            Some(&json!({"pattern": account.account_id, "client_id": client})),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let job = env.sync_and_wait(&ops, &files).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    let breaks = env.get("/breaks?kind=position", &ops).await;
    let the_break = breaks["breaks"][0]["id"].as_str().unwrap().to_owned();
    let page = env.get("/tasks?kind=break", &support).await;
    let listed = page["tasks"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{page}");
    let break_task = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["cause"], format!("break:{the_break}"));
    assert_eq!(listed[0]["client_id"], client.as_str());
    assert!(
        listed[0]["title"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Position break on {}", account.account_id)),
        "{}",
        listed[0]
    );

    // Assigned and commented by support; counts and filters exact.
    let (status, assigned, _) = env
        .call(
            Method::POST,
            &format!("/tasks/{break_task}/assign"),
            Some(&support),
            Some(&json!({"assignee": "user-support"})),
        )
        .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["task"]["status"], "in_progress");
    assert_eq!(assigned["task"]["assignee"], "user-support");
    let (status, commented, _) = env
        .call(
            Method::POST,
            &format!("/tasks/{break_task}/comments"),
            Some(&support),
            Some(&json!({"text": "asked the custodian for the missing MT536"})),
        )
        .await;
    assert_eq!(status, 200, "{commented}");
    let last = commented["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            last["actor"].as_str(),
            last["action"].as_str(),
            last["note"].as_str()
        ),
        (
            Some("user-support"),
            Some("commented"),
            Some("asked the custodian for the missing MT536")
        )
    );
    let page = env.get("/tasks", &support).await;
    assert_eq!(
        counts(&page["counts"]["by_status"]),
        expect(&[("in_progress", 1), ("resolved", 1)])
    );
    assert_eq!(
        counts(&page["counts"]["by_kind"]),
        expect(&[("break", 1), ("sync_failed", 1)])
    );
    assert_eq!(
        counts(&page["counts"]["by_assignee"]),
        expect(&[("user-support", 1)])
    );
    for (query, n) in [
        ("status=resolved", 1),
        ("status=open", 0),
        ("assignee=user-support", 1),
        ("kind=sync_dead", 0),
    ] {
        let page = env.get(&format!("/tasks?{query}"), &support).await;
        assert_eq!(
            page["tasks"].as_array().unwrap().len(),
            n,
            "{query}: {page}"
        );
    }
    let (status, _, _) = env
        .call(Method::GET, "/tasks?status=later", Some(&support), None)
        .await;
    assert_eq!(status, 400);

    // An advisor: the task about a client, not the connection's; may not work on it.
    let mine = env.get("/tasks", &advisor).await;
    let ids: Vec<&str> = mine["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [break_task.as_str()]);
    let (status, _, _) = env
        .call(
            Method::GET,
            &format!("/tasks/{sync_task}"),
            Some(&advisor),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .call(
            Method::POST,
            &format!("/tasks/{break_task}/resolve"),
            Some(&advisor),
            Some(&json!({"text": "no"})),
        )
        .await;
    assert_eq!(status, 403);

    // Resolved with a note: the break itself stays as it was; resolving again is a 409.
    let (status, resolved, _) = env
        .call(
            Method::POST,
            &format!("/tasks/{break_task}/resolve"),
            Some(&support),
            Some(&json!({"text": "custodian resent the trade"})),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["task"]["status"], "resolved");
    assert_eq!(
        resolved["task"]["resolution_note"],
        "custodian resent the trade"
    );
    assert_eq!(resolved["task"]["closed_by"], "user-support");
    assert_eq!(env.get("/breaks?kind=position", &ops).await, breaks);
    let (status, _, _) = env
        .call(
            Method::POST,
            &format!("/tasks/{break_task}/dismiss"),
            Some(&support),
            Some(&json!({"text": "again"})),
        )
        .await;
    assert_eq!(status, 409);
    let audit = env
        .get(
            "/audit?action=task.resolved",
            &env.token(tenant, &["tenant_admin"]),
        )
        .await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1, "{audit}");
    env.finish().await;
}
