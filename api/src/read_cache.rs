//! The portfolio read cache: pages the API already built (accounts, holdings, balances,
//! transactions), kept as the JSON bytes it answered, per tenant, until that tenant's data
//! changes.
//!
//! A portfolio page is the same for every caller allowed to see it, and it changes only when a
//! sync (or an admin) writes: between two nightly syncs, every read of it is the same answer.
//! Serving that answer from memory spares PostgreSQL five round trips and the API the row
//! decoding and JSON building: the per-request work is the token check, the permission check,
//! the rate limit and a hash lookup.
//!
//! What keeps it right:
//!
//! - **Isolation.** Entries are filed under the caller's tenant (from its verified token), and a
//!   page of one account carries the account's client: a client user asking for another
//!   client's account gets the same 404 as from PostgreSQL, cached or not.
//! - **Invalidation.** PostgreSQL triggers notify every write to the portfolio tables, with the
//!   writer's tenant, on commit (migration `0009_change_feed.sql`); a listener task drops that
//!   tenant's pages when told. This process's own successful writes drop every page before
//!   they answer, and reading a job that just finished drops its tenant's pages, so a caller
//!   who saw its sync finish, or made a change, reads the new data from any request after
//!   that. Other API processes learn of a change when its notification arrives (milliseconds).
//! - **No stale fill.** A page read from PostgreSQL is stored only if no change was announced,
//!   and the feed was not lost, since before the read began (a generation counter): a read
//!   racing a sync's commit is answered but not kept.
//! - **No feed, no cache.** While the listener is not subscribed (at start, after its
//!   connection was lost, until it is back), nothing is served from or stored in the cache.
//! - **Bounded.** Entries expire after `api.read_cache_secs` whatever happens (the bound on
//!   staleness if a notification were ever lost without the connection failing), and the bytes
//!   held never exceed `api.read_cache_mib` (arbitrary entries are evicted to make room).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use eam_metrics::ReadCacheGauges;
use eam_store::changes::{ChangeFeed, Changed};
use eam_store::{Store, TenantId};
use poem::IntoResponse;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How much to keep, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ReadCacheSettings {
    /// The most bytes of pages held; 0 turns the cache off.
    pub max_bytes: usize,
    /// How long a page may be served after it was read.
    pub ttl: Duration,
}

/// Which page: the route and every parameter that changes its answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadKey {
    Accounts {
        client: Option<Uuid>,
    },
    Holdings {
        account: Uuid,
        as_of: Option<NaiveDate>,
    },
    Balances {
        account: Uuid,
    },
    Transactions {
        account: Uuid,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        after: Option<(NaiveDate, Uuid)>,
        limit: i64,
    },
}

/// A page as answered.
#[derive(Debug, Clone)]
pub struct Page {
    /// For a page of one account: the account's client (`None` when it has none), checked
    /// against the caller's scope on every hit.
    pub account_client: Option<Uuid>,
    /// The JSON body.
    pub body: Bytes,
}

/// Permission to store a page read after it was handed out; refused if anything changed since.
#[derive(Debug)]
pub struct Ticket(u64);

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Page),
    /// Not cached: read it, then store it with the ticket (absent while the cache is off).
    Miss(Option<Ticket>),
}

/// The cache of one API process. Dropping it stops its listener.
pub struct ReadCache {
    settings: ReadCacheSettings,
    shared: Arc<Shared>,
    _stop: Option<oneshot::Sender<()>>,
}

struct Shared {
    state: Mutex<State>,
    gauges: ReadCacheGauges,
}

impl Shared {
    fn new(gauges: ReadCacheGauges) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State::default()),
            gauges,
        })
    }

    /// The state, to read it (a lookup: nothing the gauges show changes).
    fn read(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement that changes it: a panic elsewhere
        // while it was held leaves nothing half-done worth refusing service for.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state, to change it: the gauges are published when the guard is released.
    fn lock(&self) -> Guard<'_> {
        Guard {
            state: self.read(),
            gauges: &self.gauges,
        }
    }
}

/// The locked state; publishes the gauges when released.
struct Guard<'a> {
    state: MutexGuard<'a, State>,
    gauges: &'a ReadCacheGauges,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.gauges.live.set(i64::from(self.state.live));
        self.gauges
            .bytes
            .set(i64::try_from(self.state.bytes).unwrap_or(i64::MAX));
    }
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

#[derive(Default)]
struct State {
    /// Subscribed to the change feed: only then are pages served or stored.
    live: bool,
    /// Bumped by every change announced, every loss of the feed and every local write.
    generation: u64,
    bytes: usize,
    tenants: HashMap<TenantId, HashMap<ReadKey, Entry>>,
}

struct Entry {
    page: Page,
    stored: Instant,
}

/// Bytes an entry is charged for beyond its body (key, map slot, bookkeeping).
const ENTRY_OVERHEAD: usize = 128;

fn size_of(page: &Page) -> usize {
    page.body.len() + ENTRY_OVERHEAD
}

impl State {
    fn invalidate(&mut self) {
        self.generation += 1;
        self.tenants.clear();
        self.bytes = 0;
    }

    fn invalidate_tenant(&mut self, tenant: TenantId) {
        self.generation += 1;
        if let Some(pages) = self.tenants.remove(&tenant) {
            self.bytes -= pages.values().map(|e| size_of(&e.page)).sum::<usize>();
        }
    }

    /// Drops expired entries, then arbitrary ones, until `needed` more bytes fit in `max`.
    fn make_room(&mut self, needed: usize, max: usize, ttl: Duration) {
        if self.bytes + needed <= max {
            return;
        }
        let mut freed = 0;
        for pages in self.tenants.values_mut() {
            pages.retain(|_, e| {
                let keep = e.stored.elapsed() < ttl;
                if !keep {
                    freed += size_of(&e.page);
                }
                keep
            });
        }
        self.bytes -= freed;
        'evict: for pages in self.tenants.values_mut() {
            while self.bytes + needed > max {
                let Some(key) = pages.keys().next().cloned() else {
                    continue 'evict;
                };
                if let Some(e) = pages.remove(&key) {
                    self.bytes -= size_of(&e.page);
                }
            }
            break;
        }
        self.tenants.retain(|_, pages| !pages.is_empty());
    }
}

impl ReadCache {
    /// A cache that never holds anything.
    pub fn off() -> ReadCache {
        ReadCache {
            settings: ReadCacheSettings {
                max_bytes: 0,
                ttl: Duration::ZERO,
            },
            shared: Shared::new(ReadCacheGauges::default()),
            _stop: None,
        }
    }

    /// A cache fed by the store's change feed (subscribed in the background; until then, and
    /// whenever the subscription is lost, the cache stays off), keeping `gauges` current. Must
    /// be called inside a Tokio runtime.
    pub fn start(store: &Store, settings: ReadCacheSettings, gauges: ReadCacheGauges) -> ReadCache {
        if settings.max_bytes == 0 || settings.ttl.is_zero() {
            return ReadCache::off();
        }
        let shared = Shared::new(gauges);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(follow_changes(
            store.clone(),
            Arc::downgrade(&shared),
            stopped,
        ));
        ReadCache {
            settings,
            shared,
            _stop: Some(stop),
        }
    }

    fn state(&self) -> Guard<'_> {
        self.shared.lock()
    }

    /// The page for `key` of `tenant`, or a ticket to store it once read.
    pub fn lookup(&self, tenant: TenantId, key: &ReadKey) -> Lookup {
        if self.settings.max_bytes == 0 {
            return Lookup::Miss(None);
        }
        let state = self.shared.read();
        if !state.live {
            return Lookup::Miss(None);
        }
        let hit = state
            .tenants
            .get(&tenant)
            .and_then(|pages| pages.get(key))
            .filter(|e| e.stored.elapsed() < self.settings.ttl);
        match hit {
            Some(e) => Lookup::Hit(e.page.clone()),
            None => Lookup::Miss(Some(Ticket(state.generation))),
        }
    }

    /// Stores a page read after `ticket` was handed out, unless something changed meanwhile
    /// (or the page alone would take more than an eighth of the cache).
    pub fn store(&self, ticket: Ticket, tenant: TenantId, key: ReadKey, page: Page) {
        let size = size_of(&page);
        let max = self.settings.max_bytes;
        if size > max / 8 {
            return;
        }
        let mut state = self.state();
        if !state.live || state.generation != ticket.0 {
            return;
        }
        let replaced = state
            .tenants
            .get_mut(&tenant)
            .and_then(|pages| pages.remove(&key))
            .map_or(0, |e| size_of(&e.page));
        state.bytes -= replaced;
        state.make_room(size, max, self.settings.ttl);
        state.bytes += size;
        state.tenants.entry(tenant).or_default().insert(
            key,
            Entry {
                page,
                stored: Instant::now(),
            },
        );
    }

    /// Drops one tenant's pages (and refuses pages read before now).
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.state().invalidate_tenant(tenant);
    }

    /// Drops every page (and refuses pages read before now).
    pub fn forget_all(&self) {
        self.state().invalidate();
    }

    /// Pages and bytes held.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let state = self.shared.read();
        (state.tenants.values().map(HashMap::len).sum(), state.bytes)
    }
}

/// Keeps the cache subscribed to the change feed until the cache is dropped.
async fn follow_changes(
    store: Store,
    shared: std::sync::Weak<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = tokio::select! {
            _ = &mut stopped => return,
            feed = ChangeFeed::subscribe(&store) => feed,
        };
        let mut feed = match subscribed {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(error = %e, "read cache: cannot subscribe to the change feed; the cache stays off");
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let Some(cache) = shared.upgrade() else {
            return;
        };
        {
            let mut state = cache.lock();
            state.invalidate();
            state.live = true;
        }
        drop(cache);
        backoff = Duration::from_millis(100);
        tracing::info!("read cache: following the change feed");
        loop {
            let next = tokio::select! {
                _ = &mut stopped => return,
                next = feed.next() => next,
            };
            let Some(cache) = shared.upgrade() else {
                return;
            };
            let mut state = cache.lock();
            match next {
                Ok(Changed::Tenant(tenant)) => state.invalidate_tenant(tenant),
                Ok(Changed::Everything) => state.invalidate(),
                Err(e) => {
                    state.live = false;
                    state.invalidate();
                    tracing::warn!(error = %e, "read cache: change feed lost; the cache is off until it is back");
                    break;
                }
            }
        }
    }
}

/// A JSON answer already serialized: from the read cache, or built once to be cached. The
/// OpenAPI document describes it as `T`.
pub struct CachedJson<T> {
    body: Bytes,
    _schema: PhantomData<fn() -> T>,
}

impl<T: ToJSON> CachedJson<T> {
    /// Serializes `value` exactly as `poem_openapi::payload::Json` would answer it.
    pub fn new(value: &T) -> CachedJson<T> {
        let body = serde_json::to_vec(&value.to_json()).unwrap_or_else(|_| b"null".to_vec());
        CachedJson::from_bytes(Bytes::from(body))
    }

    pub fn from_bytes(body: Bytes) -> CachedJson<T> {
        CachedJson {
            body,
            _schema: PhantomData,
        }
    }

    pub fn into_bytes(self) -> Bytes {
        self.body
    }
}

impl<T: Type> Payload for CachedJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for CachedJson<T> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.body)
    }
}

impl<T: Type + Send> ApiResponse for CachedJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache(max_bytes: usize, ttl: Duration) -> ReadCache {
        let cache = ReadCache {
            settings: ReadCacheSettings { max_bytes, ttl },
            ..ReadCache::off()
        };
        cache.state().live = true;
        cache
    }

    fn page(len: usize) -> Page {
        Page {
            account_client: None,
            body: Bytes::from(vec![b'x'; len]),
        }
    }

    fn key(n: u128) -> ReadKey {
        ReadKey::Balances {
            account: Uuid::from_u128(n),
        }
    }

    fn ticket(cache: &ReadCache, tenant: TenantId, key: &ReadKey) -> Ticket {
        match cache.lookup(tenant, key) {
            Lookup::Miss(Some(t)) => t,
            other => panic!("expected a miss with a ticket, got {other:?}"),
        }
    }

    fn hit(cache: &ReadCache, tenant: TenantId, key: &ReadKey) -> Option<usize> {
        match cache.lookup(tenant, key) {
            Lookup::Hit(p) => Some(p.body.len()),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn a_page_is_served_to_its_tenant_only_until_the_tenant_changes() {
        let cache = live_cache(1 << 20, Duration::from_secs(60));
        let (a, b) = (TenantId(Uuid::from_u128(1)), TenantId(Uuid::from_u128(2)));
        let t = ticket(&cache, a, &key(1));
        cache.store(t, a, key(1), page(10));
        let t = ticket(&cache, b, &key(1));
        cache.store(t, b, key(1), page(20));
        assert_eq!(hit(&cache, a, &key(1)), Some(10));
        assert_eq!(hit(&cache, b, &key(1)), Some(20));
        assert_eq!(hit(&cache, a, &key(2)), None);

        cache.forget_tenant(a);
        assert_eq!(hit(&cache, a, &key(1)), None);
        assert_eq!(hit(&cache, b, &key(1)), Some(20));
        assert_eq!(cache.size(), (1, 20 + ENTRY_OVERHEAD));
    }

    #[test]
    fn a_page_read_before_a_change_is_not_stored() {
        let cache = live_cache(1 << 20, Duration::from_secs(60));
        let (a, b) = (TenantId(Uuid::from_u128(1)), TenantId(Uuid::from_u128(2)));
        let before = ticket(&cache, a, &key(1));
        // Any tenant's change (the generation is global): the read may have raced it.
        cache.forget_tenant(b);
        cache.store(before, a, key(1), page(10));
        assert_eq!(hit(&cache, a, &key(1)), None);
        assert_eq!(cache.size(), (0, 0));
    }

    #[test]
    fn nothing_is_served_or_stored_while_the_feed_is_down() {
        let cache = live_cache(1 << 20, Duration::from_secs(60));
        let a = TenantId(Uuid::from_u128(1));
        let t = ticket(&cache, a, &key(1));
        cache.store(t, a, key(1), page(10));
        let before_loss = ticket(&cache, a, &key(2));
        {
            let mut state = cache.state();
            state.live = false;
            state.invalidate();
        }
        assert!(matches!(cache.lookup(a, &key(1)), Lookup::Miss(None)));
        {
            cache.state().live = true;
        }
        cache.store(before_loss, a, key(2), page(10));
        assert_eq!(hit(&cache, a, &key(1)), None);
        assert_eq!(hit(&cache, a, &key(2)), None);
    }

    #[test]
    fn pages_expire() {
        let cache = live_cache(1 << 20, Duration::ZERO);
        let a = TenantId(Uuid::from_u128(1));
        let t = ticket(&cache, a, &key(1));
        cache.store(t, a, key(1), page(10));
        assert_eq!(hit(&cache, a, &key(1)), None);
    }

    #[test]
    fn the_bytes_held_stay_under_the_limit() {
        let max = 10 * (1000 + ENTRY_OVERHEAD);
        let cache = live_cache(max, Duration::from_secs(60));
        let a = TenantId(Uuid::from_u128(1));
        for n in 0..100 {
            let t = ticket(&cache, a, &key(n));
            cache.store(t, a, key(n), page(1000));
            let (pages, bytes) = cache.size();
            assert!(bytes <= max, "{bytes} > {max}");
            assert_eq!(bytes, pages * (1000 + ENTRY_OVERHEAD));
        }
        assert_eq!(cache.size().0, 10);
        // The newest page is always kept.
        assert_eq!(hit(&cache, a, &key(99)), Some(1000));
        // A page larger than an eighth of the cache is not kept at all.
        let t = ticket(&cache, a, &key(1000));
        cache.store(t, a, key(1000), page(max / 4));
        assert_eq!(hit(&cache, a, &key(1000)), None);
    }

    #[test]
    fn replacing_a_page_does_not_count_it_twice() {
        let cache = live_cache(1 << 20, Duration::from_secs(60));
        let a = TenantId(Uuid::from_u128(1));
        for len in [10, 30] {
            let t = Ticket(cache.state().generation);
            cache.store(t, a, key(1), page(len));
        }
        assert_eq!(cache.size(), (1, 30 + ENTRY_OVERHEAD));
    }
}
