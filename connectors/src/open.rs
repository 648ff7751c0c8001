//! The one place a transport is picked for a protocol: [`open`] turns a connection's settings
//! (its resolved credentials included) into the bank's client, and [`Transport::fetch`] asks
//! it for what is new since the connection's cursor.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use eam_model::Protocol;

use crate::PositionHistory;
use crate::bank_a::{BankAClient, BankAConfig};
use crate::bank_b::{BankBClient, BankBConfig};
use crate::bank_c::{BankCClient, BankCConfig};
use crate::{Breaker, ConnectorError, RawDocument, RetryPolicy, TlsIdentity};

/// Everything a transport needs of one connection. Credentials are values here (resolved from
/// the tenant's references by the caller, after its scope check); what a protocol does not use
/// is ignored, what it needs and lacks is a [`ConnectorError::Credentials`].
pub struct ConnectSettings {
    pub base_url: String,
    pub tls: TlsIdentity,
    /// The OAuth2 client id ([`eam_model::protocol::Credentials::client_id`]).
    pub client_id: Option<String>,
    /// The client secret or API key ([`eam_model::protocol::Credentials::secret`]).
    pub secret: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Retries of transient failures inside the sync.
    pub retry: RetryPolicy,
    /// The endpoint's circuit breaker, shared with the worker's other jobs.
    pub breaker: Option<Arc<Breaker>>,
    /// Which addresses the client may connect to.
    pub egress: eam_config::egress::EgressPolicy,
}

/// Where a fetch resumes, as the connection's cursor says.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Dated banks (bank_a): transactions booked from this date.
    pub since: Option<NaiveDate>,
    /// File banks (bank_b, bank_c): files listed after this id.
    pub files_after: Option<String>,
    /// Dated banks (bank_a): the daily position snapshots to ask for besides the current one.
    pub position_history: PositionHistory,
}

/// What a fetch brought.
pub struct Fetched {
    pub documents: Vec<RawDocument>,
    /// File banks: the greatest file id fetched (the next cursor); None when nothing was new.
    pub last_file_id: Option<String>,
}

/// A bank's client, for the protocol it speaks.
pub enum Transport {
    BankA(BankAClient),
    BankB(BankBClient),
    BankC(BankCClient),
}

/// The transport of `protocol` for a connection.
pub fn open(protocol: Protocol, s: ConnectSettings) -> Result<Transport, ConnectorError> {
    let needs = protocol.credentials();
    let missing = |what: &str| {
        ConnectorError::Credentials(format!(
            "{} needs {what} and the connection has none",
            protocol.as_str()
        ))
    };
    let client_id = if needs.client_id {
        Some(s.client_id.ok_or_else(|| missing("an OAuth2 client id"))?)
    } else {
        None
    };
    let secret = if needs.secret {
        Some(
            s.secret
                .ok_or_else(|| missing("a client secret or API key"))?,
        )
    } else {
        None
    };
    Ok(match protocol {
        Protocol::BankA => Transport::BankA(BankAClient::new(BankAConfig {
            base_url: s.base_url,
            client_id: client_id.unwrap_or_default(),
            client_secret: secret.unwrap_or_default(),
            tls: s.tls,
            timeout: s.timeout,
            retry: s.retry,
            breaker: s.breaker,
            egress: s.egress,
        })?),
        Protocol::BankB => Transport::BankB(BankBClient::new(BankBConfig {
            base_url: s.base_url,
            tls: s.tls,
            timeout: s.timeout,
            retry: s.retry,
            breaker: s.breaker,
            egress: s.egress,
        })?),
        Protocol::BankC => Transport::BankC(BankCClient::new(BankCConfig {
            base_url: s.base_url,
            api_key: secret.unwrap_or_default(),
            tls: s.tls,
            timeout: s.timeout,
            retry: s.retry,
            breaker: s.breaker,
            egress: s.egress,
        })?),
    })
}

impl Transport {
    /// The raw documents that are new since `resume`.
    pub async fn fetch(&self, resume: &Resume) -> Result<Fetched, ConnectorError> {
        match self {
            Transport::BankA(client) => Ok(Fetched {
                documents: client
                    .fetch(resume.since, resume.position_history)
                    .await?
                    .documents,
                last_file_id: None,
            }),
            Transport::BankB(client) => {
                let f = client.fetch(resume.files_after.as_deref()).await?;
                Ok(Fetched {
                    documents: f.documents,
                    last_file_id: f.last_file_id,
                })
            }
            Transport::BankC(client) => {
                let f = client.fetch(resume.files_after.as_deref()).await?;
                Ok(Fetched {
                    documents: f.documents,
                    last_file_id: f.last_file_id,
                })
            }
        }
    }
}
