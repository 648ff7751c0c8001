//! What the API checks about a caller beyond the token's signature: the tenant's own say on
//! its users, its switched-on modules, and how fast the caller may go.
//!
//! - **Users.** The identity provider authenticates; the tenant decides. A subject the tenant
//!   registered gets its roles and client from the `users` table (and is refused when
//!   disabled, whatever its token says); an unregistered subject keeps its token's roles. The
//!   lookup is cached per API process for `auth.user_cache_secs`: a disabled user is refused
//!   at the latest that long after, and at once by the process that disabled it.
//! - **Rate limits.** Per user, then per tenant (governor, in memory per API process): a caller
//!   over either gets 429 with `Retry-After` and the `RateLimit-*` headers. One tenant's burst
//!   never slows another tenant, and a request refused by its user's limit spends nothing of
//!   its tenant's. Refused tokens are limited per client address (429 past the rate).
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
    /// Refused tokens per client address.
    pub refused_per_second: u32,
    pub refused_burst: u32,
    pub user_cache: Duration,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            tenant_per_second: 500,
            tenant_burst: 1000,
            user_per_second: 50,
            user_burst: 100,
            refused_per_second: 10,
            refused_burst: 50,
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
    /// The rate the limit refills at.
    pub per_second: u32,
}

impl Allowance {
    /// Seconds until the limit is whole again (rounded up).
    pub fn reset_secs(&self) -> u32 {
        (self.limit - self.remaining.min(self.limit)).div_ceil(self.per_second.max(1))
    }
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
    /// Refused tokens per client address.
    addresses: Limiter<String>,
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
            addresses: DefaultKeyedRateLimiter::keyed(quota(
                settings.refused_per_second,
                settings.refused_burst,
            ))
            .with_middleware::<StateInformationMiddleware>(),
            // Twenty refused-token entries per tenant, then ten a minute.
            refusals: DefaultKeyedRateLimiter::keyed(quota_per_minute(10, 20)),
            views: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
            settings,
        }
    }

    /// Counts a request of `subject` in `tenant` against both limits: the user's first, so a
    /// request the user's own limit refuses spends nothing of the tenant's (one user's flood
    /// does not lock the firm's other users out).
    pub fn admit(&self, tenant: TenantId, subject: &str) -> Result<Allowance, Limited> {
        let clock = &self.clock;
        let refuse = |not_until: governor::NotUntil<_>, limit: u32, scope| Limited {
            retry_after: not_until.wait_time_from(clock.now()),
            limit,
            scope,
        };
        let u = self
            .users
            .check_key(&(tenant, subject.to_owned()))
            .map_err(|n| refuse(n, self.settings.user_burst, LimitScope::User))?;
        let t = self
            .tenants
            .check_key(&tenant)
            .map_err(|n| refuse(n, self.settings.tenant_burst, LimitScope::Tenant))?;
        let (limit, remaining, per_second) =
            if u.remaining_burst_capacity() <= t.remaining_burst_capacity() {
                (
                    self.settings.user_burst,
                    u.remaining_burst_capacity(),
                    self.settings.user_per_second,
                )
            } else {
                (
                    self.settings.tenant_burst,
                    t.remaining_burst_capacity(),
                    self.settings.tenant_per_second,
                )
            };
        Ok(Allowance {
            limit,
            remaining,
            per_second,
        })
    }

    /// Counts a refused token from client address `address`: past its rate, 429 instead of
    /// 401, so a flood of forged tokens from one place is slowed like any other.
    pub fn admit_refused(&self, address: &str) -> Result<(), Limited> {
        self.addresses
            .check_key(&address.to_owned())
            .map(|_| ())
            .map_err(|n| Limited {
                retry_after: n.wait_time_from(self.clock.now()),
                limit: self.settings.refused_burst,
                scope: LimitScope::Address,
            })
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
    fn a_user_refused_by_its_own_limit_spends_nothing_of_its_tenants() {
        let security = Security::new(SecuritySettings {
            tenant_per_second: 1,
            tenant_burst: 10,
            user_per_second: 1,
            user_burst: 3,
            ..SecuritySettings::default()
        });
        let t = TenantId::new();
        for _ in 0..3 {
            security.admit(t, "flood").expect("within its burst");
        }
        for _ in 0..100 {
            let refused = security.admit(t, "flood").expect_err("over its burst");
            assert_eq!(refused.scope, LimitScope::User);
        }
        // The tenant spent 3 of 10: two more users get their whole burst, then the tenant's
        // limit (10) is what refuses.
        for user in ["calm", "quiet"] {
            for _ in 0..3 {
                security
                    .admit(t, user)
                    .expect("within its own and the tenant's limit");
            }
        }
        assert!(security.admit(t, "fourth").is_ok());
        let refused = security
            .admit(t, "fifth")
            .expect_err("the tenant's 10 are spent");
        assert_eq!(refused.scope, LimitScope::Tenant);
    }

    #[test]
    fn refused_tokens_are_limited_per_client_address() {
        let security = Security::new(SecuritySettings {
            refused_per_second: 1,
            refused_burst: 5,
            ..SecuritySettings::default()
        });
        for _ in 0..5 {
            security
                .admit_refused("192.0.2.7")
                .expect("within the burst");
        }
        let limited = security.admit_refused("192.0.2.7").expect_err("over it");
        assert_eq!((limited.scope, limited.limit), (LimitScope::Address, 5));
        assert!(
            security.admit_refused("192.0.2.8").is_ok(),
            "another address"
        );
    }

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
