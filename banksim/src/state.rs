//! What every request of one running simulator shares: the dataset and the file banks'
//! listings, bank_a's client credentials and issued tokens, the request counters, the fault
//! rules, withheld statements and the shutdown signal. Every protocol module (`bank_a`,
//! `bank_files`, `admin`) and the application around them (`app`) read it; it knows none of
//! them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::dataset::Dataset;
use crate::faults::FaultHandle;
use crate::files::{Catalog, FileProtocol};
use crate::traffic::Traffic;

/// How long an access token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What every request of one running simulator shares.
pub(crate) struct SimState {
    pub(crate) dataset: Arc<Dataset>,
    /// The files bank_b lists.
    swift_files: Catalog,
    /// The files bank_c lists.
    iso_files: Catalog,
    client_id: String,
    /// Digest of the client secret: compared digest to digest, never kept in logs.
    client_secret_digest: [u8; 32],
    /// Issued access tokens and when they expire.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Connections and requests received.
    pub(crate) traffic: Traffic,
    /// The fault rules, shared with whoever steers the simulator.
    pub(crate) faults: FaultHandle,
    /// Statement files the bank does not deliver (listing and download), by id: a statement
    /// that went missing, for the reconciliation's sequence and continuity checks.
    pub(crate) withheld: Mutex<std::collections::HashSet<String>>,
    /// Statement files served with other bytes than the dataset's, by id: a bank's dialect or
    /// damage, for the parsers' end-to-end tests. The listing's size and digest follow them.
    pub(crate) replaced: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Text bank_a writes otherwise in its JSON answers (from, to): a REST bank's damage, e.g.
    /// an ISIN with a wrong check digit, for the parsers' end-to-end tests.
    pub(crate) bank_a_rewrites: Mutex<Vec<(String, String)>>,
    /// Becomes true when the server starts shutting down, releasing hung requests.
    stopping: watch::Sender<bool>,
}

impl SimState {
    /// State for a simulator serving `dataset` to one OAuth client (whose secret is also
    /// bank_c's API key). Lists the file banks' files, which takes a moment for a large
    /// dataset: call it off the async workers.
    pub(crate) fn new(dataset: Arc<Dataset>, client_id: String, client_secret: &str) -> Self {
        SimState {
            swift_files: Catalog::new(&dataset, FileProtocol::Swift),
            iso_files: Catalog::new(&dataset, FileProtocol::Iso20022),
            dataset,
            client_id,
            client_secret_digest: Sha256::digest(client_secret.as_bytes()).into(),
            tokens: Mutex::new(HashMap::new()),
            traffic: Traffic::default(),
            faults: FaultHandle::new(),
            withheld: Mutex::default(),
            replaced: Mutex::default(),
            bank_a_rewrites: Mutex::default(),
            stopping: watch::Sender::new(false),
        }
    }

    /// Marks the server as shutting down: requests held by a fault are released.
    pub(crate) fn begin_stopping(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once the server is shutting down.
    pub(crate) async fn stopping(&self) {
        let mut stopping = self.stopping.subscribe();
        // Err only if the sender is gone, and `self` owns it: cannot happen while we wait.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// The files a file bank lists.
    pub(crate) fn catalog(&self, protocol: FileProtocol) -> &Catalog {
        match protocol {
            FileProtocol::Swift => &self.swift_files,
            FileProtocol::Iso20022 => &self.iso_files,
        }
    }

    /// Whether `key` is bank_c's API key (the client secret).
    pub(crate) fn api_key_matches(&self, key: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        digest == self.client_secret_digest
    }

    /// Whether bank_a's OAuth client credentials are this simulator's.
    pub(crate) fn credentials_match(&self, client_id: &str, client_secret: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(client_secret.as_bytes()).into();
        client_id == self.client_id && digest == self.client_secret_digest
    }

    /// A new bank_a access token, valid for [`TOKEN_LIFETIME`].
    pub(crate) fn issue_token(&self) -> String {
        let token = hex::encode(rand::rng().random::<[u8; 32]>());
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-insert; the map is still
        // a valid map, so keep serving.
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(token.clone(), now + TOKEN_LIFETIME);
        token
    }

    /// Whether `token` was issued here and has not expired.
    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }
}
