//! The admin API: rules and counters over HTTPS, for tests whose clients run elsewhere.

use eam_banksim::{Fault, FaultRule, RunningSim};
use serde_json::{Value, json};

use crate::{client, error_chain, get, simulator, token, trusted_client};

fn admin(sim: &RunningSim, path: &str) -> String {
    format!("{}/admin{path}", sim.base_url())
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn faults_are_added_listed_with_counts_and_removed_over_the_admin_api() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    let rule = json!({
        "path_prefix": "/v1/accounts",
        "fault": {"kind": "status", "status": 503, "retry_after_secs": 3},
        "times": 1
    });
    let (status, added) = json_of(
        http.post(admin(&sim, "/faults"))
            .json(&rule)
            .send()
            .await
            .expect("added"),
    )
    .await;
    assert_eq!(status, 200);
    let id = added["id"].as_u64().expect("a rule id");

    let (status, _) = get(&http, &sim, "/v1/accounts", &token).await;
    assert_eq!(status, 503, "the posted rule applies");
    let (_, listed) = json_of(
        http.get(admin(&sim, "/faults"))
            .send()
            .await
            .expect("listed"),
    )
    .await;
    assert_eq!(
        listed,
        json!({"rules": [{
            "id": id,
            "applied": 1,
            "path_prefix": "/v1/accounts",
            "fault": {"kind": "status", "status": 503, "retry_after_secs": 3},
            "skip": 0,
            "times": 1
        }]})
    );
    assert_eq!(
        sim.faults().rules()[0].0,
        id,
        "the same table as the handle"
    );

    let url = admin(&sim, &format!("/faults/{id}"));
    let (status, _) = json_of(http.delete(&url).send().await.expect("removed")).await;
    assert_eq!(status, 200);
    let (status, body) = json_of(http.delete(&url).send().await.expect("answer")).await;
    assert_eq!(status, 404);
    assert!(body["message"].is_string(), "{body}");

    sim.faults().inject(FaultRule::new("/", Fault::Truncate));
    sim.faults().inject(FaultRule::new("/", Fault::Malformed));
    let (status, cleared) = json_of(
        http.delete(admin(&sim, "/faults"))
            .send()
            .await
            .expect("cleared"),
    )
    .await;
    assert_eq!((status, cleared), (200, json!({"removed": 2})));
    assert!(sim.faults().rules().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rule_the_admin_api_cannot_use_is_a_400_with_the_reason() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    for (body, reason) in [
        ("{\"path_prefix\": ", "not a fault rule"),
        (
            r#"{"path_prefix": "/v1", "fault": {"kind": "reset_connection"}}"#,
            "path_prefix \"/\"",
        ),
    ] {
        let (status, error) = json_of(
            http.post(admin(&sim, "/faults"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answer"),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains(reason), "{body}: {message}");
    }
    assert!(sim.faults().rules().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_requests_are_neither_counted_nor_faulted_and_stats_show_the_rest() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    sim.faults().inject(FaultRule::new(
        "/",
        Fault::Status {
            status: 503,
            retry_after_secs: None,
        },
    ));
    let (status, stats) =
        json_of(http.get(admin(&sim, "/stats")).send().await.expect("stats")).await;
    assert_eq!(status, 200, "admin requests escape a rule for every path");
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["by_path"], json!({}));

    let refused = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 503);
    let (_, stats) = json_of(http.get(admin(&sim, "/stats")).send().await.expect("stats")).await;
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["by_path"], json!({"/oauth/token": 1}));
    assert_eq!(
        stats["connections"].as_u64(),
        Some(sim.connections_accepted())
    );
    assert_eq!(sim.requests(), 1);
    assert_eq!(sim.requests_to("/admin"), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_requires_the_client_certificate_like_the_bank() {
    let (sim, pki) = simulator().await;
    let result = client(&pki, None).get(admin(&sim, "/stats")).send().await;
    let error = result.expect_err("no certificate, no admin");
    assert!(
        error_chain(&error).contains("CertificateRequired"),
        "{}",
        error_chain(&error)
    );
    sim.shutdown().await;
}
