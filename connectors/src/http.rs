//! The HTTPS client every bank protocol shares: mutual TLS, strict trust, classified errors.
//!
//! Trust is pinned to the custodian's CA when the connection names one: the public web PKI
//! has no business vouching for a bank's API endpoint on a connection that carries client
//! money. The client certificate is presented at the handshake. Every failure is mapped to a
//! [`ConnectorError`] here, once, so protocols never inspect `reqwest` errors themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use eam_config::egress::{EgressError, EgressPolicy};

use crate::breaker::Breaker;
use crate::{ConnectorError, ErrorClass};
use backon::{BackoffBuilder, ExponentialBuilder};

tokio::task_local! {
    /// The W3C trace the requests of the current sync belong to.
    static TRACE: String;
}

/// Runs `work` with every request it sends to a bank carrying `traceparent` of `trace_id`
/// (a new span id per request): the bank's logs then name the sync, and the integrator's
/// trace when the sync was started with one. An id that is not a valid trace id is left out.
pub async fn traced<F: std::future::Future>(trace_id: String, work: F) -> F::Output {
    if eam_model::trace::is_trace_id(&trace_id) {
        TRACE.scope(trace_id, work).await
    } else {
        work.await
    }
}

/// PEM material for mutual TLS. Empty fields mean "not configured".
#[derive(Clone, Default)]
pub struct TlsIdentity {
    /// The client certificate (chain), PEM.
    pub client_cert_pem: Vec<u8>,
    /// The client certificate's private key, PEM.
    pub client_key_pem: Vec<u8>,
    /// The CA that signs the bank's server certificate, PEM. Empty: the system roots.
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never prints; presence is enough to debug a configuration.
        f.debug_struct("TlsIdentity")
            .field("client_cert", &!self.client_cert_pem.is_empty())
            .field("client_key", &!self.client_key_pem.is_empty())
            .field("ca", &!self.ca_pem.is_empty())
            .finish()
    }
}

/// How a request is retried inside a sync when the bank fails transiently. Requests sent
/// through [`BankHttp::send`] are idempotent (GETs, and the token request), so retrying them
/// is safe.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first try (0: none).
    pub max_retries: u32,
    /// First back-off; doubles per retry, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A Retry-After longer than this is not waited for inside the sync: the request fails
    /// and the run is retried later, when the bank asked.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// The HTTPS client of one bank connection, and the TLS configuration it was built from.
#[derive(Clone)]
pub(crate) struct BankHttp {
    pub(crate) client: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    retry: RetryPolicy,
    breaker: Option<Arc<Breaker>>,
    egress: EgressPolicy,
}

impl BankHttp {
    /// Builds the client; unusable PEM material is a credentials (auth) error.
    pub(crate) fn new(
        tls: &TlsIdentity,
        timeout: Duration,
        retry: RetryPolicy,
        breaker: Option<Arc<Breaker>>,
        egress: EgressPolicy,
    ) -> Result<Self, ConnectorError> {
        let config = Arc::new(rustls_config(tls)?);
        let client = reqwest::Client::builder()
            // Every name is resolved through the platform's egress rule, on every connection
            // (a name that later resolves to a private address is refused then too).
            .dns_resolver(Arc::new(GuardedResolver(egress)))
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("eam-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConnectorError::Credentials(format!("cannot build the TLS client: {e}"))
            })?;
        Ok(BankHttp {
            client,
            tls: config,
            timeout,
            retry,
            breaker,
            egress,
        })
    }

    /// Sends an idempotent request (built afresh by `request` for each try) through the
    /// endpoint's circuit breaker, retrying transient failures with jittered exponential
    /// back-off and honouring Retry-After; returns the body of a 2xx answer.
    pub(crate) async fn send(
        &self,
        request: impl Fn() -> RequestBuilder,
        url: &str,
    ) -> Result<Bytes, ConnectorError> {
        let mut delays = ExponentialBuilder::new()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries as usize)
            .with_jitter()
            .build();
        // An IP literal is not resolved, so the resolver never sees it: checked here.
        self.check_literal(url)?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = self.breaker.as_deref().map(Breaker::acquire).transpose()?;
            let result = self.send_once(request(), url, attempt).await;
            if let Some(permit) = permit {
                match &result {
                    Err(e) if e.is_bank_failure() => permit.failure(),
                    _ => permit.success(),
                }
            }
            let error = match result {
                Ok(body) => return Ok(body),
                Err(e) if e.class() == ErrorClass::Transient => e,
                Err(e) => return Err(e),
            };
            let asked = error.retry_after();
            if asked.is_some_and(|d| d > self.retry.max_retry_after) {
                return Err(error);
            }
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            let delay = asked.map_or(backoff, |a| a.max(backoff));
            tracing::debug!(url, error = %error, ?delay, "retrying a bank request");
            tokio::time::sleep(delay).await;
        }
    }

    /// One try of a request; everything but a 2xx body is classified.
    ///
    /// Each try is logged at debug level with its method, host and path (never the query, the
    /// headers or the body: they carry tokens and secrets), the status, the time to the end of
    /// the body and the try's number. The line lands inside the caller's spans, so a sync's
    /// run id and request id are on it.
    async fn send_once(
        &self,
        request: RequestBuilder,
        url: &str,
        attempt: u32,
    ) -> Result<Bytes, ConnectorError> {
        let request = match TRACE.try_with(Clone::clone) {
            Ok(trace) => {
                let span = uuid::Uuid::new_v4().simple().to_string();
                request.header(
                    "traceparent",
                    eam_model::trace::traceparent(&trace, &span[..16]),
                )
            }
            Err(_) => request,
        };
        let (client, request) = request.build_split();
        let request = match request {
            Ok(r) => r,
            Err(e) => return Err(self.classify(url, &e).await),
        };
        let method = request.method().clone();
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let path = request.url().path().to_owned();
        let started = Instant::now();
        let (status, result) = match client.execute(request).await {
            Err(e) => (None, Err(self.classify(url, &e).await)),
            Ok(response) => {
                let status = response.status();
                let result = if status.is_success() {
                    match response.bytes().await {
                        Ok(body) => Ok(body),
                        Err(e) => Err(self.classify(url, &e).await),
                    }
                } else {
                    Err(status_error(url, status, response.headers()))
                };
                (Some(status.as_u16()), result)
            }
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(body) => tracing::debug!(%method, host, path, status, elapsed_ms, attempt,
                bytes = body.len(), "bank request"),
            Err(e) => tracing::debug!(%method, host, path, status, elapsed_ms, attempt,
                error = %e, "bank request failed"),
        }
        result
    }

    /// Refuses a URL whose host is an IP address the egress rule does not allow.
    fn check_literal(&self, url: &str) -> Result<(), ConnectorError> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Ok(());
        };
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.egress
            .check_ip(&ip.to_string(), ip)
            .map_err(|e| ConnectorError::Destination(e.to_string()))
    }

    /// Maps a transport error to its class. A TLS refusal anywhere in the cause chain is an
    /// auth problem (certificate refused, unknown CA, expired certificate). When the
    /// connection merely closed, the cause may have been lost: with TLS 1.3 a bank rejects
    /// a client certificate by an alert after the handshake, which races with our request,
    /// and the HTTP layer often reports only "channel closed". A probe handshake then asks
    /// the bank directly, so a refused certificate is never retried as a network fault.
    async fn classify(&self, url: &str, err: &reqwest::Error) -> ConnectorError {
        if let Some(refused) = find_egress_error(err) {
            return ConnectorError::Destination(refused.to_string());
        }
        if let Some(detail) = find_tls_error(err) {
            return ConnectorError::Tls {
                url: url.to_owned(),
                detail,
            };
        }
        if !err.is_timeout()
            && !err.is_connect()
            && let Some(detail) = self.probe_tls(url).await
        {
            return ConnectorError::Tls {
                url: url.to_owned(),
                detail,
            };
        }
        let detail = if err.is_timeout() {
            "timed out".to_owned()
        } else if err.is_connect() {
            format!("cannot connect: {}", chain(err))
        } else {
            chain(err)
        };
        ConnectorError::Transport {
            url: url.to_owned(),
            detail,
        }
    }

    /// Handshakes with the bank and reads its first answer, returning the TLS refusal it
    /// sends, if any. Anything else (the bank is down, answers normally) returns `None`.
    async fn probe_tls(&self, url: &str) -> Option<String> {
        let url = reqwest::Url::parse(url).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default()?;
        let server_name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let probe = async {
            let addrs = self.egress.resolve(&host, port).await.ok()?;
            let tcp = tokio::net::TcpStream::connect(&addrs[..]).await.ok()?;
            let mut stream = match connector.connect(server_name, tcp).await {
                Ok(s) => s,
                Err(e) => return find_tls_error(&e),
            };
            let request = format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            if let Err(e) = stream.write_all(request.as_bytes()).await {
                return find_tls_error(&e);
            }
            let mut sink = Vec::new();
            match stream.read_to_end(&mut sink).await {
                Ok(_) => None,
                Err(e) => find_tls_error(&e),
            }
        };
        tokio::time::timeout(self.timeout, probe)
            .await
            .ok()
            .flatten()
    }
}

/// Resolves host names through the egress rule and drops none: a name with any address the
/// rule refuses is refused whole (for banks, the error is found again by
/// [`find_egress_error`]). The worker's webhook client resolves through it too.
pub struct GuardedResolver(pub EgressPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            // The port is the URL's; reqwest replaces this one.
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An egress refusal anywhere in an error's cause chain.
fn find_egress_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<EgressError>()
            && !refused.is_transient()
        {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

/// The rustls configuration of a connection: the custodian's CA as the only trust root when
/// given (the platform verifier otherwise), and the client certificate when given.
fn rustls_config(tls: &TlsIdentity) -> Result<rustls::ClientConfig, ConnectorError> {
    let credentials = |what: &str| {
        let what = what.to_owned();
        move |e: rustls::pki_types::pem::Error| {
            ConnectorError::Credentials(format!("{what} is not valid PEM: {e}"))
        }
    };
    let builder = rustls::ClientConfig::builder();
    let builder = if tls.ca_pem.is_empty() {
        builder
            .with_platform_verifier()
            .map_err(|e| ConnectorError::Credentials(format!("no system trust roots: {e}")))?
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&tls.ca_pem) {
            roots
                .add(cert.map_err(credentials("the bank CA"))?)
                .map_err(|e| {
                    ConnectorError::Credentials(format!("the bank CA is unusable: {e}"))
                })?;
        }
        if roots.is_empty() {
            return Err(ConnectorError::Credentials(
                "the bank CA holds no certificate".into(),
            ));
        }
        builder.with_root_certificates(roots)
    };
    match (
        tls.client_cert_pem.is_empty(),
        tls.client_key_pem.is_empty(),
    ) {
        (true, true) => Ok(builder.with_no_client_auth()),
        (false, false) => {
            let chain = CertificateDer::pem_slice_iter(&tls.client_cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(credentials("the client certificate"))?;
            if chain.is_empty() {
                return Err(ConnectorError::Credentials(
                    "the client certificate file holds no certificate".into(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(&tls.client_key_pem)
                .map_err(credentials("the client key"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                ConnectorError::Credentials(format!(
                    "the client certificate and key do not go together: {e}"
                ))
            })
        }
        _ => Err(ConnectorError::Credentials(
            "a client certificate needs its private key, and a key its certificate".into(),
        )),
    }
}

fn status_error(
    url: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> ConnectorError {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return ConnectorError::Unauthorized {
            url: url.to_owned(),
            status: status.as_u16(),
        };
    }
    // Retry-After in seconds; the HTTP-date form is rare for APIs and ignored.
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ConnectorError::Status {
        url: url.to_owned(),
        status: status.as_u16(),
        retry_after,
    }
}

/// Display prefixes of the rustls errors that mean "the peers do not accept each other's
/// certificates". rustls turns its errors into `io::Error`s carrying only their text on the
/// read path (an alert after a TLS 1.3 handshake arrives there), so the text is all there is.
const TLS_REFUSALS: &[&str] = &[
    "received fatal alert",
    "invalid peer certificate",
    "peer sent no certificates",
    "peer is incompatible",
];

/// The TLS refusal in the cause chain, if any: a typed `rustls::Error`, or an `InvalidData`
/// `io::Error` with a rustls refusal's text. `io::Error::source` skips the error it wraps, so
/// wrapped errors are unpacked explicitly.
fn find_tls_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| find_tls_error(inner)) {
                return Some(tls);
            }
            let text = io.to_string();
            if io.kind() == std::io::ErrorKind::InvalidData
                && TLS_REFUSALS.iter().any(|p| text.starts_with(p))
            {
                return Some(text);
            }
        }
        current = e.source();
    }
    None
}

/// The error and its causes on one line.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        current = e.source();
    }
    out
}
