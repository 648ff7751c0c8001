//! Webhook deliveries: the events the outbox fanned out to the tenants' endpoints, sent by the
//! workers following the Standard Webhooks scheme.
//!
//! Each worker runs a deliverer ([`run_deliverer`]) that claims due deliveries under a lease
//! (`claim_webhook_deliveries`, across tenants, `FOR UPDATE SKIP LOCKED`), sends them at once
//! and records each attempt ([`eam_store::webhooks::record_attempt`]). At least once: a worker
//! killed between sending and recording leaves its lease to expire, and the delivery is sent
//! again with the same `webhook-id` (the event id), by which a consumer de-duplicates.
//!
//! A request is `POST <url>` with the JSON body `{"type", "timestamp", "data"}` and the headers
//! `webhook-id`, `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
//! `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` for each live secret of the endpoint
//! (the key is the base64 after `whsec_`), space-separated, so both sign during a rotation.
//! A 2xx is delivered; a 4xx other than 408 and 429 is given up at once (the receiver refuses
//! it); anything else (408, 429, 5xx, a timeout, a refused connection) is retried on the
//! schedule (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: over 27 hours), each wait
//! ±10 % so retries of many deliveries do not arrive together. An endpoint whose every
//! delivery failed for `disable_after` is disabled and `webhook.endpoint_disabled` emitted.
//! Addresses are resolved through the platform's egress rule on every connection: a tenant's
//! URL naming loopback, link-local or private addresses is refused unless
//! `egress.allow_private_addresses`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use eam_config::egress::EgressPolicy;
use eam_connectors::GuardedResolver;
use eam_store::webhooks::{self, AttemptRecord, ClaimedDelivery, NextStep};
use eam_store::{Store, StoreError, TenantId};
use futures::StreamExt;
use rand::Rng;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The wait after each failed attempt; its length + 1 is the number of attempts.
    pub retry_schedule: Vec<Duration>,
    /// Each request's time limit.
    pub timeout: Duration,
    /// A claimed delivery's lease: after it, another worker may send it.
    pub lease: Duration,
    /// Deliveries sent at once by one worker.
    pub concurrency: usize,
    /// An endpoint failing for this long is disabled.
    pub disable_after: Duration,
    /// How often an idle deliverer looks for due deliveries (a new event wakes it at once).
    pub poll: Duration,
    pub egress: EgressPolicy,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_schedule: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            concurrency: 16,
            disable_after: Duration::from_secs(3 * 24 * 3600),
            poll: Duration::from_secs(1),
            egress: EgressPolicy::default(),
        }
    }
}

/// The `webhook-signature` header of a message: one `v1,<signature>` per secret.
pub fn sign(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets
        .iter()
        .filter_map(|s| {
            let key = STANDARD.decode(s.strip_prefix("whsec_")?).ok()?;
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &signed);
            Some(format!("v1,{}", STANDARD.encode(tag.as_ref())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body of an event's message: identical on every attempt.
pub fn body(d: &ClaimedDelivery) -> Vec<u8> {
    let message = serde_json::json!({
        "type": d.event_type,
        "timestamp": d.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": d.payload,
    });
    serde_json::to_vec(&message).unwrap_or_default()
}

/// The HTTP client deliveries use: the egress rule on every name, no redirects.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver(settings.egress)))
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("eam-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
    /// Endpoints disabled by this pass.
    pub disabled: usize,
    /// Attempts that could not be recorded (their lease runs out; they are sent again).
    pub unrecorded: usize,
}

/// The wait before the next attempt after `attempts` failed ones, or `None` when they are used
/// up; ±10 % jitter.
fn retry_after(settings: &WebhookSettings, attempts: usize) -> Option<Duration> {
    let base = settings.retry_schedule.get(attempts.checked_sub(1)?)?;
    let jitter = rand::rng().random_range(0.9..=1.1);
    Some(base.mul_f64(jitter))
}

/// Sends one delivery and decides what follows. `now` is the pass's clock (simulated in
/// tests) moved on by the time the pass has taken so far, so a delivery late in a batch is
/// stamped when it is sent.
async fn attempt(
    http: &reqwest::Client,
    settings: &WebhookSettings,
    d: &ClaimedDelivery,
    pass: (DateTime<Utc>, Instant),
) -> AttemptRecord {
    let now = pass.0 + chrono::Duration::from_std(pass.1.elapsed()).unwrap_or_default();
    let id = d.event_id.to_string();
    let timestamp = now.timestamp();
    let body = body(d);
    let signature = sign(&d.secrets, &id, timestamp, &body);
    let started = Instant::now();
    let sent = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (status_code, error, retryable) = match sent {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if resp.status().is_success() {
                (Some(code), None, false)
            } else {
                let retryable = !(400..500).contains(&code) || code == 408 || code == 429;
                (Some(code), Some(format!("HTTP {code}")), retryable)
            }
        }
        Err(e) => (None, Some(describe(&e)), true),
    };
    let attempts = usize::try_from(d.attempts).unwrap_or(0) + 1;
    let next = match (&error, retryable) {
        (None, _) => NextStep::Delivered,
        (Some(_), false) => NextStep::GiveUp,
        (Some(_), true) => match retry_after(settings, attempts) {
            Some(wait) => NextStep::RetryAt(
                now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
            ),
            None => NextStep::GiveUp,
        },
    };
    AttemptRecord {
        attempted_at: now,
        status_code: status_code.map(i32::from),
        latency_ms,
        error,
        next,
    }
}

/// An error and its causes in one line (the egress refusal is among them when it is one).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Claims the deliveries due at `now` (up to `max`), sends them and records each attempt.
pub async fn deliver_due(
    store: &Store,
    http: &reqwest::Client,
    settings: &WebhookSettings,
    owner: &str,
    now: DateTime<Utc>,
    max: usize,
) -> Result<DeliveryReport, StoreError> {
    let lease = i32::try_from(settings.lease.as_secs()).unwrap_or(i32::MAX);
    let claimed = store
        .claim_webhook_deliveries(owner, now, lease, i32::try_from(max).unwrap_or(i32::MAX))
        .await?;
    let mut report = DeliveryReport {
        claimed: claimed.len(),
        ..DeliveryReport::default()
    };
    let disable_after =
        chrono::Duration::from_std(settings.disable_after).unwrap_or(chrono::Duration::MAX);
    let pass = (now, Instant::now());
    let outcomes: Vec<(NextStep, Result<bool, StoreError>)> = futures::stream::iter(claimed)
        .map(|d| async move {
            let record = attempt(http, settings, &d, pass).await;
            let recorded = webhooks::record_attempt(
                store,
                TenantId(d.tenant_id),
                &d,
                owner,
                &record,
                disable_after,
            )
            .await;
            match &recorded {
                Ok(_) => tracing::debug!(delivery_id = %d.delivery_id, event_type = %d.event_type,
                    status = ?record.status_code, next = ?record.next, "webhook attempt"),
                Err(e) => tracing::warn!(delivery_id = %d.delivery_id, error = %e,
                    "a webhook attempt could not be recorded; it is sent again after its lease"),
            }
            (record.next, recorded)
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    for (next, recorded) in outcomes {
        match recorded {
            Err(_) => report.unrecorded += 1,
            Ok(disabled) => {
                report.disabled += usize::from(disabled);
                match next {
                    NextStep::Delivered => report.delivered += 1,
                    NextStep::RetryAt(_) => report.retrying += 1,
                    NextStep::GiveUp => report.given_up += 1,
                }
            }
        }
    }
    Ok(report)
}

/// Delivers until `stop` turns true: a pass whenever an event is written (`eam_webhooks`
/// notifications) or `settings.poll` passes, and again at once while passes find work.
pub async fn run_deliverer(
    store: Store,
    settings: WebhookSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = match client(&settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook client cannot be built; no deliveries");
            return;
        }
    };
    let owner = format!("webhooks-{}", uuid::Uuid::new_v4().simple());
    let mut listener = webhooks::Wakeups::subscribe(&store).await.ok();
    let batch = settings.concurrency.max(1) * 4;
    loop {
        if *stop.borrow() {
            return;
        }
        match deliver_due(&store, &http, &settings, &owner, Utc::now(), batch).await {
            Ok(r) if r.claimed == batch => continue,
            Ok(r) if r.claimed > 0 => tracing::debug!(?r, "webhook deliveries"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook deliveries could not be claimed"),
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => {
                    if l.next().await.is_err() {
                        // The listener reconnects by itself; poll meanwhile.
                        tokio::time::sleep(settings.poll).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = woken => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (and of its reference libraries).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_in_its_overlap_signs_too_and_a_malformed_one_does_not() {
        let a = format!("whsec_{}", STANDARD.encode([1u8; 32]));
        let b = format!("whsec_{}", STANDARD.encode([2u8; 32]));
        let both = sign(&[a.clone(), b.clone(), "nope".into()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&[a], "id", 1, b"{}"));
        assert_eq!(parts[1], sign(&[b], "id", 1, b"{}"));
    }

    #[test]
    fn retries_follow_the_schedule_within_ten_percent_then_stop() {
        let s = WebhookSettings::default();
        let total: f64 = s.retry_schedule.iter().map(Duration::as_secs_f64).sum();
        assert!(total > 24.0 * 3600.0, "retried for {total} s");
        for (n, base) in s.retry_schedule.iter().enumerate() {
            let wait = retry_after(&s, n + 1).unwrap().as_secs_f64();
            let base = base.as_secs_f64();
            assert!(
                wait >= base * 0.9 - 1e-9 && wait <= base * 1.1 + 1e-9,
                "{wait} vs {base}"
            );
        }
        assert_eq!(retry_after(&s, s.retry_schedule.len() + 1), None);
        assert_eq!(retry_after(&s, 0), None);
    }
}
