//! The TCP layer under TLS: counts every accepted connection and applies
//! [`Fault::ResetConnection`](crate::faults::Fault::ResetConnection).
//!
//! It sits below the rustls layer on purpose: a connection refused at the TLS handshake (no
//! client certificate) or reset by a fault never reaches HTTP, yet a test must be able to
//! count it. A reset connection is dropped with `SO_LINGER` 0, so the client sees a TCP reset
//! rather than an orderly close, and the accept loop goes on to the next connection without
//! handing the reset one to the server.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, Listener};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

use crate::state::SimState;

/// A TCP listener that reports each accepted connection to the simulator's state.
pub(crate) struct CountingListener {
    bind: SocketAddr,
    state: Arc<SimState>,
}

impl CountingListener {
    /// A listener for `bind` (port 0 picks a free port) counting into `state`.
    pub(crate) fn new(bind: SocketAddr, state: Arc<SimState>) -> Self {
        CountingListener { bind, state }
    }
}

impl Listener for CountingListener {
    type Acceptor = CountingAcceptor;

    async fn into_acceptor(self) -> io::Result<CountingAcceptor> {
        let listener = tokio::net::TcpListener::bind(self.bind).await?;
        let local_addr = LocalAddr(listener.local_addr()?.into());
        Ok(CountingAcceptor {
            listener,
            local_addr,
            state: self.state,
        })
    }
}

/// The bound side of [`CountingListener`].
pub(crate) struct CountingAcceptor {
    listener: tokio::net::TcpListener,
    local_addr: LocalAddr,
    state: Arc<SimState>,
}

impl Acceptor for CountingAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local_addr.clone()]
    }

    async fn accept(&mut self) -> io::Result<(TcpStream, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            self.state.traffic.record_connection();
            let Some(rule) = self.state.faults.take_for_connection() else {
                return Ok((
                    stream,
                    self.local_addr.clone(),
                    RemoteAddr(peer.into()),
                    Scheme::HTTP,
                ));
            };
            if let Err(error) = stream.set_zero_linger() {
                // Still closed, only with a FIN instead of a reset: the client fails either way.
                tracing::debug!(%error, "could not set SO_LINGER 0 on a connection to reset");
            }
            drop(stream);
            tracing::info!(%peer, rule, "injected fault: connection reset before TLS");
        }
    }
}
