//! The HTTPS client every bank protocol shares: mutual TLS, strict trust, classified errors.
//!
//! Trust is pinned to the custodian's CA when the connection names one: the public web PKI
//! has no business vouching for a bank's API endpoint on a connection that carries client
//! money. The client certificate is presented at the handshake. Every failure is mapped to a
//! [`ConnectorError`] here, once, so protocols never inspect `reqwest` errors themselves.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};

use crate::ConnectorError;

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

/// Builds the HTTP client for one bank connection.
pub(crate) fn client(tls: &TlsIdentity, timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("eam-sync/", env!("CARGO_PKG_VERSION")));
    if !tls.ca_pem.is_empty() {
        let roots = reqwest::Certificate::from_pem_bundle(&tls.ca_pem)
            .map_err(|e| ConnectorError::Credentials(format!("the bank CA is not valid PEM: {e}")))?;
        if roots.is_empty() {
            return Err(ConnectorError::Credentials(
                "the bank CA holds no certificate".into(),
            ));
        }
        builder = builder.tls_certs_only(roots);
    }
    match (tls.client_cert_pem.is_empty(), tls.client_key_pem.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let mut pem = tls.client_cert_pem.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&tls.client_key_pem);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ConnectorError::Credentials(format!(
                    "the client certificate or key is not valid PEM: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        _ => {
            return Err(ConnectorError::Credentials(
                "a client certificate needs its private key, and a key its certificate".into(),
            ));
        }
    }
    builder
        .build()
        .map_err(|e| ConnectorError::Credentials(format!("cannot build the TLS client: {e}")))
}

/// Sends a request and returns the body of a 2xx answer; everything else is classified.
pub(crate) async fn send(request: RequestBuilder, url: &str) -> Result<Bytes, ConnectorError> {
    let response = request.send().await.map_err(|e| classify(url, &e))?;
    let status = response.status();
    if status.is_success() {
        return response.bytes().await.map_err(|e| classify(url, &e));
    }
    Err(status_error(url, status, response.headers()))
}

fn status_error(url: &str, status: StatusCode, headers: &reqwest::header::HeaderMap) -> ConnectorError {
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

/// Maps a transport error to its class. A TLS failure anywhere in the cause chain is an auth
/// problem (certificate refused, unknown CA, expired certificate); the rest is the network.
fn classify(url: &str, err: &reqwest::Error) -> ConnectorError {
    if let Some(tls) = find_tls_error(err) {
        return ConnectorError::Tls {
            url: url.to_owned(),
            detail: tls.to_string(),
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

/// The first rustls error in the cause chain. `io::Error::source` skips the error it wraps,
/// so wrapped errors are unpacked explicitly.
fn find_tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = find_tls_error(inner) {
                return Some(tls);
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
