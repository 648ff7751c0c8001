//! One assembly of a worker: `eam work` and `eam demo` build it from settings, the e2e kit
//! from its own configuration (sub-second timings), both through [`WorkerApp::assemble`].

use std::time::Duration;

use eam_config::egress::EgressPolicy;
use eam_config::{MarketDataSettings, Settings};
use eam_connectors::{BreakerSettings, Breakers, RetryPolicy};
use eam_model::cron::{CronSchedule, ScheduleError};
use eam_queue::SyncQueue;
use eam_store::resources::Resources;

use crate::reports::ReportSettings;
use crate::tick::TickSettings;
use crate::{CustodianLimit, DispatchSettings, SyncContext, SyncPolicy, WorkerOptions};

/// How a worker behaves: everything it takes from settings beside its resources.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub policy: SyncPolicy,
    pub breakers: BreakerSettings,
    pub options: WorkerOptions,
    /// The schedule tick, when this worker runs it.
    pub tick: Option<TickSettings>,
    /// Where market-data jobs fetch the ECB's rates.
    pub market_data: MarketDataSettings,
    /// What report jobs print beside the figures.
    pub reports: ReportSettings,
    /// Webhook deliveries, when this worker sends them.
    pub webhooks: Option<crate::webhooks::WebhookSettings>,
    /// E-mail notifications, when this worker sends them.
    pub mail: Option<crate::mailer::MailSettings>,
    /// The client certificate check: warning days and interval, when this worker runs it.
    pub certificate_check: Option<(u32, Duration)>,
    /// How often this worker publishes the tenants' audit heads, when it does.
    pub audit_heads: Option<Duration>,
}

impl WorkerConfig {
    /// Fails on a market-data schedule that does not parse, or a report logo that is not a
    /// readable PNG.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<WorkerConfig> {
        let w = &settings.worker;
        let s = &settings.scheduler;
        Ok(WorkerConfig {
            policy: SyncPolicy {
                bank_timeout: Duration::from_secs(w.bank_timeout_secs),
                max_attempts: w.max_attempts,
                request_retry: RetryPolicy {
                    max_retries: w.request_retries,
                    ..RetryPolicy::default()
                },
                retry_base: Duration::from_millis(w.retry_base_ms),
                retry_max: Duration::from_secs(w.retry_max_secs),
                lease: Duration::from_secs(w.lease_secs),
                pause_after_failures: w.pause_after_failures,
                custodian_limit: (s.custodian_limit > 0).then(|| CustodianLimit {
                    max_running: s.custodian_limit,
                    recheck: Duration::from_millis(s.custodian_recheck_ms),
                }),
                egress: EgressPolicy::from_settings(&settings.egress),
            },
            breakers: BreakerSettings {
                failures_to_open: w.breaker_failures,
                min_success_rate: f64::from(w.breaker_min_success_percent) / 100.0,
                rate_window: Duration::from_secs(w.breaker_window_secs),
                min_requests: w.breaker_min_requests,
                cooldown: Duration::from_secs(w.breaker_cooldown_secs),
            },
            options: WorkerOptions {
                concurrency: w.concurrency,
                poll_interval: Duration::from_millis(w.poll_interval_ms),
                grace: Duration::from_secs(w.shutdown_grace_secs),
                dispatch: DispatchSettings {
                    interval: Duration::from_millis(w.dispatch_interval_ms),
                    stale_after: Duration::from_secs(w.stale_after_secs),
                    ..DispatchSettings::default()
                },
            },
            tick: if s.enabled {
                Some(
                    tick_settings(settings)
                        .map_err(|e| anyhow::anyhow!("market_data.schedule: {e}"))?,
                )
            } else {
                None
            },
            market_data: settings.market_data.clone(),
            reports: ReportSettings {
                logo_png: read_logo(&settings.reports.logo_path)?,
                fx_stale_after: settings.market_data.stale_after_business_days,
                concurrency: match settings.reports.concurrency {
                    0 => anyhow::bail!("reports.concurrency: a worker must generate at least one"),
                    n => n,
                },
            },
            webhooks: webhook_settings(settings)?,
            mail: mail_settings(settings)?,
            certificate_check: (settings.certificates.check_interval_hours > 0).then(|| {
                (
                    settings.certificates.warning_days,
                    Duration::from_secs(settings.certificates.check_interval_hours * 3600),
                )
            }),
            audit_heads: (settings.audit.head_interval_secs > 0)
                .then(|| Duration::from_secs(settings.audit.head_interval_secs)),
        })
    }
}

/// The deliverer's settings, `None` when this worker sends no webhooks.
fn webhook_settings(
    settings: &Settings,
) -> anyhow::Result<Option<crate::webhooks::WebhookSettings>> {
    let w = &settings.webhooks;
    if !w.enabled {
        return Ok(None);
    }
    if w.concurrency == 0 {
        anyhow::bail!(
            "webhooks.concurrency: a worker that delivers must send at least one at once"
        );
    }
    Ok(Some(crate::webhooks::WebhookSettings {
        retry_schedule: w
            .retry_schedule_ms
            .iter()
            .copied()
            .map(Duration::from_millis)
            .collect(),
        timeout: Duration::from_secs(w.timeout_secs.max(1)),
        concurrency: w.concurrency,
        disable_after: Duration::from_secs(w.disable_after_hours.saturating_mul(3600)),
        lease: Duration::from_secs(w.lease_secs.max(1)),
        egress: EgressPolicy::from_settings(&settings.egress),
        ..crate::webhooks::WebhookSettings::default()
    }))
}

/// The mailer's settings, `None` without an SMTP host. A bad sender, security or digest
/// schedule stops the worker at start.
fn mail_settings(settings: &Settings) -> anyhow::Result<Option<crate::mailer::MailSettings>> {
    use crate::mailer::{MailSettings, SmtpSecurity};
    let e = &settings.email;
    if e.smtp_host.trim().is_empty() {
        return Ok(None);
    }
    let security = match e.smtp_security.as_str() {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "none" => SmtpSecurity::None,
        other => anyhow::bail!("email.smtp_security: '{other}' is not starttls, tls or none"),
    };
    Ok(Some(MailSettings {
        host: e.smtp_host.trim().to_owned(),
        port: e.smtp_port,
        security,
        credentials: (!e.smtp_username.is_empty())
            .then(|| (e.smtp_username.clone(), e.smtp_password.expose().to_owned())),
        from: e
            .from
            .parse()
            .map_err(|err| anyhow::anyhow!("email.from: '{}' is not a mailbox: {err}", e.from))?,
        digest: eam_model::cron::CronSchedule::parse(&e.digest_schedule, &e.digest_timezone)
            .map_err(|err| anyhow::anyhow!("email.digest_schedule: {err}"))?,
        lease: Duration::from_secs(120),
        poll: Duration::from_secs(5),
        retry: Duration::from_secs(300),
        max_attempts: 5,
    }))
}

impl WorkerConfig {
    /// The sync context over the resources (without a queue: `eam replay` runs it inline).
    pub fn context(&self, resources: &Resources) -> SyncContext {
        SyncContext::new(
            resources.store.clone(),
            self.policy.clone(),
            Breakers::new(self.breakers.clone()),
            resources.secrets.clone(),
            resources.archive.clone(),
        )
    }
}

/// The PNG at `path` (empty: no logo).
fn read_logo(path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if path.trim().is_empty() {
        return Ok(None);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("reports.logo_path: cannot read {path}: {e}"))?;
    if !bytes.starts_with(PNG_SIGNATURE) {
        anyhow::bail!("reports.logo_path: {path} is not a PNG file");
    }
    Ok(Some(bytes))
}

/// The schedule tick's settings, the market-data schedule included when it is enabled.
pub fn tick_settings(settings: &Settings) -> Result<TickSettings, ScheduleError> {
    let s = &settings.scheduler;
    let m = &settings.market_data;
    Ok(TickSettings {
        interval: Duration::from_secs(s.tick_interval_secs),
        catch_up: Duration::from_secs(s.catch_up_hours.saturating_mul(3600)),
        spread: Duration::from_secs(s.spread_secs),
        late_after: (s.delivery_late_after_hours > 0)
            .then(|| Duration::from_secs(s.delivery_late_after_hours.saturating_mul(3600))),
        market_data: if m.enabled {
            Some(CronSchedule::parse(&m.schedule, &m.timezone)?)
        } else {
            None
        },
        ..TickSettings::default()
    })
}

/// A worker of one process: the queue it consumes, the sync context, and its tick.
pub struct WorkerApp {
    pub cx: SyncContext,
    pub queue: SyncQueue,
    pub options: WorkerOptions,
    pub tick: Option<TickSettings>,
    pub market_data: MarketDataSettings,
    pub reports: ReportSettings,
    pub webhooks: Option<crate::webhooks::WebhookSettings>,
    pub mail: Option<crate::mailer::MailSettings>,
    pub certificate_check: Option<(u32, Duration)>,
    pub audit_heads: Option<Duration>,
}

impl WorkerApp {
    /// The worker the settings describe over the process's resources, counting into `metrics`.
    pub async fn build(
        settings: &Settings,
        resources: &Resources,
        metrics: eam_metrics::Metrics,
    ) -> anyhow::Result<WorkerApp> {
        let config = WorkerConfig::from_settings(settings)?;
        let queue = SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.describe_redis()))?;
        Ok(WorkerApp::assemble(resources, queue, config, metrics))
    }

    pub fn assemble(
        resources: &Resources,
        queue: SyncQueue,
        config: WorkerConfig,
        metrics: eam_metrics::Metrics,
    ) -> WorkerApp {
        let cx = config.context(resources).with_metrics(metrics);
        WorkerApp {
            cx,
            queue,
            options: config.options,
            tick: config.tick,
            market_data: config.market_data,
            reports: config.reports,
            webhooks: config.webhooks,
            mail: config.mail,
            certificate_check: config.certificate_check,
            audit_heads: config.audit_heads,
        }
    }

    /// Consumes the queue (and runs the schedule tick, if this worker has one) until `stop`
    /// turns true; in-flight syncs get `options.grace` to finish.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
        let mailer = self
            .mail
            .map(crate::mailer::Mailer::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("the SMTP transport cannot be built: {e}"))?
            .map(|mailer| {
                tokio::spawn(crate::mailer::run_mailer(
                    self.cx.store.clone(),
                    mailer,
                    stop.clone(),
                ))
            });
        let certificates = self.certificate_check.map(|(warning_days, interval)| {
            tokio::spawn(crate::certificates::run_certificate_check(
                self.cx.store.clone(),
                self.cx.secrets.clone(),
                warning_days,
                interval,
                stop.clone(),
            ))
        });
        let audit_heads = self.audit_heads.map(|interval| {
            tokio::spawn(crate::audit_heads::run_publisher(
                self.cx.store.clone(),
                self.cx.archive.clone(),
                interval,
                stop.clone(),
            ))
        });
        let ticker = self.tick.map(|tick| {
            tokio::spawn(crate::tick::run_ticker(
                self.cx.store.clone(),
                tick,
                stop.clone(),
            ))
        });
        let deliverer = self.webhooks.map(|settings| {
            tokio::spawn(crate::webhooks::run_deliverer(
                self.cx.store.clone(),
                settings,
                stop.clone(),
            ))
        });
        let mut stopped = stop;
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let ran = crate::queue::run_worker(
            self.queue,
            self.cx,
            self.market_data,
            self.reports,
            self.options,
            shutdown,
        )
        .await;
        if let Some(ticker) = ticker {
            let _ = ticker.await;
        }
        if let Some(deliverer) = deliverer {
            let _ = deliverer.await;
        }
        if let Some(mailer) = mailer {
            let _ = mailer.await;
        }
        if let Some(certificates) = certificates {
            let _ = certificates.await;
        }
        if let Some(audit_heads) = audit_heads {
            let _ = audit_heads.await;
        }
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut env: Vec<(String, String)> =
            vec![("DATABASE_URL".to_owned(), "postgres://u@h:1/db".to_owned())];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Settings::load_from(env).expect("settings")
    }

    #[test]
    fn report_settings_come_from_the_settings_and_refuse_what_cannot_run() {
        let config = WorkerConfig::from_settings(&settings(&[("EAM_REPORTS__CONCURRENCY", "3")]))
            .expect("a worker");
        assert_eq!(
            (
                config.reports.concurrency,
                config.reports.fx_stale_after,
                config.reports.logo_png
            ),
            (3, 3, None)
        );
        let zero = WorkerConfig::from_settings(&settings(&[("EAM_REPORTS__CONCURRENCY", "0")]))
            .expect_err("refused");
        assert_eq!(
            zero.to_string(),
            "reports.concurrency: a worker must generate at least one"
        );
        let dir = std::env::temp_dir().join(format!("eam-logo-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_png = dir.join("logo.txt");
        std::fs::write(&not_png, "text").unwrap();
        let path = not_png.display().to_string();
        let refused = WorkerConfig::from_settings(&settings(&[("EAM_REPORTS__LOGO_PATH", &path)]))
            .expect_err("refused");
        assert_eq!(
            refused.to_string(),
            format!("reports.logo_path: {path} is not a PNG file")
        );
        let png = dir.join("logo.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nrest").unwrap();
        let config = WorkerConfig::from_settings(&settings(&[(
            "EAM_REPORTS__LOGO_PATH",
            &png.display().to_string(),
        )]))
        .expect("a worker");
        assert_eq!(
            config.reports.logo_png.as_deref(),
            Some(&b"\x89PNG\r\n\x1a\nrest"[..])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
