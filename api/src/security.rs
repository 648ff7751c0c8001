//! What the API checks about a caller beyond the token's signature: the tenant's own say on
//! its users, its switched-on modules, and how fast the caller may go.
//!
//! - **Users.** The identity provider authenticates; the tenant decides. A subject the tenant
//!   registered gets its roles and client from the `users` table (and is refused when
//!   disabled, whatever its token says); an unregistered subject keeps its token's roles. The
//!   lookup is cached per API process for `auth.user_cache_secs`: a disabled user is refused
//!   at the latest that long after, and at once by the process that disabled it.
//! - **Rate limits.** Per tenant and per user (governor, in memory per API process): a caller
//!   over either gets 429 with `Retry-After` and the `RateLimit-*` headers. One tenant's burst
//!   never slows another tenant.
//! - **Refused tokens** that name a tenant that exists are written to that tenant's audit log,
//!   at most twenty at once and ten a minute per tenant, so forged tokens cannot flood the log.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use eam_metrics::LimitScope;
use eam_store::TenantId;
use eam_store::users::UserRow;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

/// Rates and caches, from settings.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub tenant_per_second: u32,
    pub tenant_burst: u32,
    pub user_per_second: u32,
    pub user_burst: u32,
    pub user_cache: Duration,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            tenant_per_second: 500,
            tenant_burst: 1000,
            user_per_second: 50,
            user_burst: 100,
            user_cache: Duration::from_secs(5),
        }
    }
}

type Limiter<K> = DefaultKeyedRateLimiter<K, StateInformationMiddleware>;

/// A caller over its rate: how long to wait, and the limit it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    pub limit: u32,
    /// Which limit: the tenant's or the user's.
    pub scope: LimitScope,
}

/// Where a caller stands against the tighter of its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
}

/// What the tenant says about a subject, and which modules it has switched on.
#[derive(Debug, Clone)]
pub struct TenantView {
    pub user: Option<UserRow>,
    pub modules: Vec<String>,
}

/// The API process's security state; shared by every request.
pub struct Security {
    settings: SecuritySettings,
    tenants: Limiter<TenantId>,
    users: Limiter<(TenantId, String)>,
    refusals: DefaultKeyedRateLimiter<TenantId>,
    views: Mutex<HashMap<(TenantId, String), (Instant, TenantView)>>,
    /// Made once: creating a clock calibrates it (CPUID), measurable on every request.
    clock: DefaultClock,
}

fn quota_per_minute(per_minute: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rate).allow_burst(burst)
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl Security {
    pub fn new(settings: SecuritySettings) -> Self {
        Security {
            tenants: DefaultKeyedRateLimiter::keyed(quota(
                settings.tenant_per_second,
                settings.tenant_burst,
            ))
            .with_middleware::<StateInformationMiddleware>(),
            users: DefaultKeyedRateLimiter::keyed(quota(
                settings.user_per_second,
                settings.user_burst,
            ))
            .with_middleware::<StateInformationMiddleware>(),
            // Twenty refused-token entries per tenant, then ten a minute.
            refusals: DefaultKeyedRateLimiter::keyed(quota_per_minute(10, 20)),
            views: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
            settings,
        }
    }

    /// Counts a request of `subject` in `tenant` against both limits.
    pub fn admit(&self, tenant: TenantId, subject: &str) -> Result<Allowance, Limited> {
        let clock = &self.clock;
        let refuse = |not_until: governor::NotUntil<_>, limit: u32, scope| Limited {
            retry_after: not_until.wait_time_from(clock.now()),
            limit,
            scope,
        };
        let t = self
            .tenants
            .check_key(&tenant)
            .map_err(|n| refuse(n, self.settings.tenant_burst, LimitScope::Tenant))?;
        let u = self
            .users
            .check_key(&(tenant, subject.to_owned()))
            .map_err(|n| refuse(n, self.settings.user_burst, LimitScope::User))?;
        let (limit, remaining) = if u.remaining_burst_capacity() <= t.remaining_burst_capacity() {
            (self.settings.user_burst, u.remaining_burst_capacity())
        } else {
            (self.settings.tenant_burst, t.remaining_burst_capacity())
        };
        Ok(Allowance { limit, remaining })
    }

    /// Whether a refused token for `tenant` may still be written to its audit log now.
    pub fn may_record_refusal(&self, tenant: TenantId) -> bool {
        self.refusals.check_key(&tenant).is_ok()
    }

    /// The cached view of a subject, if still fresh.
    pub fn cached_view(&self, tenant: TenantId, subject: &str) -> Option<TenantView> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views
            .get(&(tenant, subject.to_owned()))
            .filter(|(at, _)| at.elapsed() < self.settings.user_cache)
            .map(|(_, view)| view.clone())
    }

    pub fn cache_view(&self, tenant: TenantId, subject: &str, view: TenantView) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if views.len() > 100_000 {
            views.retain(|_, (at, _)| at.elapsed() < self.settings.user_cache);
        }
        views.insert((tenant, subject.to_owned()), (Instant::now(), view));
    }

    /// Forgets what is cached about a tenant (a user or module changed through this process).
    pub fn forget_tenant(&self, tenant: TenantId) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.retain(|(t, _), _| *t != tenant);
    }
}

/// The tenant claim of a token that failed verification, read without trusting it: only to
/// attribute the refusal to a tenant's audit log (if that tenant exists).
pub fn unverified_tenant(token: &str, claim: &str) -> Option<uuid::Uuid> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let mut value = &claims;
    for part in claim.split('.') {
        value = value.get(part)?;
    }
    value.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_over_its_burst_is_limited_and_another_tenant_is_not() {
        let security = Security::new(SecuritySettings {
            user_per_second: 1,
            user_burst: 3,
            ..SecuritySettings::default()
        });
        let a = TenantId::new();
        let b = TenantId::new();
        for n in (0..3).rev() {
            let allowed = security.admit(a, "alice").expect("within the burst");
            assert_eq!(allowed.remaining, n);
            assert_eq!(allowed.limit, 3);
        }
        let limited = security.admit(a, "alice").expect_err("over the burst");
        assert_eq!(limited.scope, LimitScope::User);
        assert!(
            limited.retry_after > Duration::ZERO && limited.retry_after <= Duration::from_secs(1)
        );
        assert!(
            security.admit(b, "alice").is_ok(),
            "another tenant is unaffected"
        );
        assert!(
            security.admit(a, "bob").is_ok(),
            "another user is unaffected"
        );
    }

    #[test]
    fn the_tenant_of_a_refused_token_is_read_without_trusting_it() {
        // {"tenant_id":"6f1c3a62-0000-4000-8000-000000000001"}
        let token =
            "e30.eyJ0ZW5hbnRfaWQiOiI2ZjFjM2E2Mi0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEifQ.sig";
        assert_eq!(
            unverified_tenant(token, "tenant_id").map(|u| u.to_string()),
            Some("6f1c3a62-0000-4000-8000-000000000001".to_owned())
        );
        assert_eq!(unverified_tenant("garbage", "tenant_id"), None);
        assert_eq!(unverified_tenant(token, "other"), None);
    }
}
