//! E-mail notifications: the events users subscribed to, sent over SMTP (lettre).
//!
//! The event fan-out (migration 0022) queues one notification per subscribed user and event.
//! A worker's mailer ([`run_mailer`]) claims the due ones under a lease: urgent types
//! (`sync.dead`, `certificate.expiring`, `webhook.endpoint_disabled`) at once, one e-mail each;
//! the others once the digest time (`email.digest_schedule`, e.g. every day at 07:00 in
//! Europe/Zurich) has passed after they were created, one digest per user. Each e-mail is
//! plain text and HTML. A failed send is retried after `retry` up to `max_attempts`; a
//! mailer killed mid-send leaves its lease to expire (at least once).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use eam_model::cron::CronSchedule;
use eam_store::notifications::{self, ClaimedEmail};
use eam_store::{Store, StoreError, TenantId};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use uuid::Uuid;

/// How a mailer connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same host, tests).
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// What a mailer needs.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, String)>,
    pub from: Mailbox,
    /// When digests go out.
    pub digest: CronSchedule,
    pub lease: Duration,
    pub poll: Duration,
    pub retry: Duration,
    pub max_attempts: i32,
}

/// A connected mailer.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    pub settings: MailSettings,
}

impl Mailer {
    /// The transport for the settings (connections are opened when sending).
    pub fn new(settings: MailSettings) -> Result<Mailer, lettre::transport::smtp::Error> {
        let builder = match settings.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            settings,
        })
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailReport {
    pub claimed: usize,
    /// E-mails sent (an urgent one per event, a digest per user).
    pub sent: usize,
    pub failed: usize,
}

/// One line about an event, for a subject or a digest.
pub fn summary(event_type: &str, p: &Value) -> String {
    let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
    let connection = || format!("{} ({})", s("connection_name"), s("custodian"));
    match event_type {
        "sync.failed" | "sync.dead" => format!(
            "Sync of {} {}: {}",
            connection(),
            if event_type == "sync.dead" {
                "gave up after its retries"
            } else {
                "failed"
            },
            p["error"]["message"]
                .as_str()
                .unwrap_or("no error recorded")
        ),
        "sync.succeeded_with_breaks" => {
            format!(
                "Sync of {} succeeded with reconciliation breaks",
                connection()
            )
        }
        "sync.succeeded" => format!("Sync of {} succeeded", connection()),
        "connection.paused" => format!("Connection {} paused", connection()),
        "connection.resumed" => format!("Connection {} resumed", connection()),
        "break.opened" => format!(
            "Reconciliation break on {} ({}): {}",
            s("account_ref"),
            s("kind"),
            s("message")
        ),
        "report.ready" => format!(
            "Statement for {} to {} is ready",
            s("period_from"),
            s("period_to")
        ),
        "portfolio.updated" => "New portfolio data from a bank sync".to_owned(),
        "breaker.opened" | "breaker.closed" => format!(
            "Circuit breaker for {} ({}) {}: {}",
            s("endpoint"),
            s("custodian"),
            if event_type == "breaker.opened" {
                "opened"
            } else {
                "closed"
            },
            s("reason")
        ),
        "delivery.late" => format!(
            "No data from {} since the sync scheduled for {}: {}",
            connection(),
            s("scheduled_for"),
            s("reason")
        ),
        "approval.requested" => format!(
            "{} asks for approval: {} (until {})",
            s("requested_by"),
            s("summary"),
            s("expires_at")
        ),
        "certificate.expiring" => format!(
            "Client certificate of {} {} ({}, {} days left)",
            connection(),
            if s("status") == "expired" {
                "has expired"
            } else {
                "expires soon"
            },
            s("not_after"),
            p["days_left"].as_i64().unwrap_or_default()
        ),
        "webhook.endpoint_disabled" => format!(
            "Webhook endpoint {} was disabled: {}",
            s("url"),
            s("reason")
        ),
        other => other.to_owned(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The subject, plain text and HTML of an e-mail about `events` (one, or a user's digest).
pub fn compose(tenant: &str, events: &[&ClaimedEmail], digest: bool) -> (String, String, String) {
    let lines: Vec<(String, &ClaimedEmail)> = events
        .iter()
        .map(|e| (summary(&e.event_type, &e.payload), *e))
        .collect();
    let subject = if digest {
        let n = lines.len();
        format!(
            "[EAM] {tenant}: {n} event{} since the last digest",
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "[EAM] {tenant}: {}",
            lines.first().map_or("", |(l, _)| l.as_str())
        )
    };
    let mut text = String::new();
    let mut rows = String::new();
    for (line, e) in &lines {
        let when = e
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        text.push_str(&format!(
            "- {when} {}: {line}\n  event {}\n",
            e.event_type, e.event_id
        ));
        rows.push_str(&format!(
            "<tr><td>{when}</td><td><code>{}</code></td><td>{}</td><td><small>{}</small></td></tr>",
            escape(&e.event_type),
            escape(line),
            e.event_id
        ));
    }
    text.push_str("\nChange what you receive: PUT /api/v1/me/notifications\n");
    let html = format!(
        "<!doctype html><html><body><h2>{}</h2><table border=\"1\" cellpadding=\"4\" \
         cellspacing=\"0\"><tr><th>When (UTC)</th><th>Event</th><th>What</th><th>Id</th></tr>{rows}\
         </table><p>Change what you receive: <code>PUT /api/v1/me/notifications</code></p>\
         </body></html>",
        escape(tenant)
    );
    (subject, text, html)
}

/// Claims the notifications due at `now`, sends them (urgent ones alone, the rest as one
/// digest per user) and records each e-mail's outcome.
pub async fn send_due(
    store: &Store,
    mailer: &Mailer,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<MailReport, StoreError> {
    let s = &mailer.settings;
    let cutoff = s
        .digest
        .latest_at_or_before(now)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let lease = i32::try_from(s.lease.as_secs()).unwrap_or(i32::MAX);
    let claimed = store
        .claim_email_notifications(owner, now, cutoff, lease, 1_000)
        .await?;
    let mut report = MailReport {
        claimed: claimed.len(),
        ..MailReport::default()
    };
    // One e-mail per urgent notification, one digest per user for the rest.
    let mut mails: Vec<(bool, Vec<&ClaimedEmail>)> = claimed
        .iter()
        .filter(|c| c.urgent)
        .map(|c| (false, vec![c]))
        .collect();
    let mut digests: BTreeMap<Uuid, Vec<&ClaimedEmail>> = BTreeMap::new();
    for c in claimed.iter().filter(|c| !c.urgent) {
        digests.entry(c.user_id).or_default().push(c);
    }
    mails.extend(digests.into_values().map(|d| (true, d)));
    for (digest, events) in mails {
        let first = events[0];
        let (subject, text, html) = compose(&first.tenant_name, &events, digest);
        let sent = match first.email.parse::<Mailbox>() {
            Err(e) => Err(format!("'{}' is not an e-mail address: {e}", first.email)),
            Ok(to) => match Message::builder()
                .from(s.from.clone())
                .to(to)
                .subject(subject)
                .multipart(MultiPart::alternative_plain_html(text, html))
            {
                Err(e) => Err(e.to_string()),
                Ok(message) => mailer
                    .transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            },
        };
        let ids: Vec<Uuid> = events.iter().map(|e| e.notification_id).collect();
        let outcome = match sent {
            Ok(()) => {
                report.sent += 1;
                Ok(())
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(user_id = %first.user_id, error = %e, "an e-mail could not be sent");
                let retry = (first.attempts + 1 < s.max_attempts).then(|| {
                    now + chrono::Duration::from_std(s.retry).unwrap_or(chrono::Duration::zero())
                });
                Err((e, retry))
            }
        };
        if let Err(e) =
            notifications::record(store, TenantId(first.tenant_id), &ids, owner, now, outcome).await
        {
            tracing::warn!(error = %e, "an e-mail's outcome could not be recorded; it may be sent again");
        }
    }
    Ok(report)
}

/// Mails until `stop` turns true: a pass every `poll`.
pub async fn run_mailer(
    store: Store,
    mailer: Mailer,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let owner = format!("mailer-{}", Uuid::new_v4().simple());
    loop {
        match send_due(&store, &mailer, &owner, Utc::now()).await {
            Ok(r) if r.claimed > 0 => tracing::info!(?r, "e-mail notifications"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "e-mail notifications could not be claimed"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(mailer.settings.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claimed(event_type: &str, payload: Value) -> ClaimedEmail {
        ClaimedEmail {
            notification_id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            user_id: Uuid::nil(),
            email: "ops@firm.example".into(),
            urgent: false,
            attempts: 0,
            event_id: Uuid::from_u128(7),
            event_type: event_type.into(),
            payload,
            occurred_at: DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            tenant_name: "Firm <A> & Co".into(),
        }
    }

    #[test]
    fn an_e_mail_names_what_happened_in_text_and_escaped_html() {
        let failed = claimed(
            "sync.failed",
            json!({"connection_name": "Bank A", "custodian": "bank_a",
                   "error": {"class": "data", "message": "amount <missing>"}}),
        );
        let paused = claimed(
            "connection.paused",
            json!({"connection_name": "Bank B", "custodian": "bank_b"}),
        );
        let (subject, text, html) = compose("Firm <A> & Co", &[&failed], false);
        assert_eq!(
            subject,
            "[EAM] Firm <A> & Co: Sync of Bank A (bank_a) failed: amount <missing>"
        );
        assert!(text.contains(
            "- 2026-12-07T02:00:00Z sync.failed: Sync of Bank A (bank_a) failed: amount <missing>\n  event 00000000-0000-0000-0000-000000000007"
        ));
        assert!(html.contains("<h2>Firm &lt;A&gt; &amp; Co</h2>"));
        assert!(html.contains("failed: amount &lt;missing&gt;</td>"));
        let (subject, text, _) = compose("Firm", &[&failed, &paused], true);
        assert_eq!(subject, "[EAM] Firm: 2 events since the last digest");
        assert_eq!(
            text.matches("\n- ").count() + usize::from(text.starts_with("- ")),
            2
        );
        assert!(text.contains("Connection Bank B (bank_b) paused"));
    }
}
