//! A simulated Proxmox VE API server: a test and demo double of `pveproxy`.
//!
//! `leazzard demo` runs it so a user can try leazzard with no Proxmox at hand, and the
//! integration tests drive it (add, rename and remove guests, take nodes down, make the API
//! fail) to watch leazzard react. It speaks the real API's response shapes over real HTTPS,
//! so leazzard's ordinary client (reqwest + rustls) talks to it unchanged.
//!
//! What it owns: one listening socket, a fresh in-memory CA + node certificate, the simulated
//! [`Cluster`], the accepted API token, the token's permissions, the current [`Fault`] and a
//! log of the requests it received. [`Simulator`] owns the server task; [`SimHandle`] (cheap
//! to clone, usable from sync and async code) changes the state while it runs.
//!
//! Invariants:
//! - every answer has a shape pveproxy produces: `{"data": …}`; errors
//!   `{"data": null, "message": "…\n"}` with the message's first line as the HTTP reason
//!   phrase; 401 and 595 with an empty body, the reason phrase the only explanation;
//! - a state change made through [`SimHandle`] applies to every request that starts after the
//!   call returns; in particular [`Fault::Refuse`] has closed the listening socket by then;
//! - locks are never held across `.await`; all tasks end when the [`Simulator`] is dropped or
//!   shut down (connection tasks live in a `JoinSet` owned by the server task).
//!
//! Not modelled: real time (the 5-minute staleness of a silent node is the explicit flag
//! [`SimHandle::set_node_stale`]), per-node certificates (one server serves every node), write
//! endpoints, tickets/cookies.

mod model;
mod routes;
mod tls;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use model::{Cluster, GuestKind, SimGuest, SimNode};

/// A failure mode of the whole API or of one guest, set with [`SimHandle::set_fault`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Every request answers 500 with pmxcfs's "connection refused" message, as when
    /// `pve-cluster` is down.
    Status500,
    /// Accept the connection and complete the TLS handshake, then never answer: the client's
    /// timeout must fire. Hung requests are dropped (connection closed, no answer) once the
    /// fault changes.
    Hang,
    /// Close the listening socket, so new connections are refused, and drop open ones.
    /// Dropping open connections happens when their tasks next run, so a client reusing a
    /// pooled connection at that instant sees "connection closed" rather than "refused".
    /// Any other fault re-binds the same port.
    Refuse,
    /// Every request answers 401 like a revoked token (after the configured delay).
    Unauthorized,
    /// Only calls about this vmid under `/nodes/{node}/{qemu|lxc}/{vmid}/…` fail, in this way.
    GuestFault(u32, GuestFaultKind),
}

/// How the calls about one guest fail under [`Fault::GuestFault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestFaultKind {
    /// 500 with a lock-timeout message.
    Status500,
    /// 595 `No route to host`, empty body, as when the proxied-to node is unreachable.
    Status595,
    /// No answer at all.
    Hang,
}

/// How to start a [`Simulator`]. `Default` is what the demo uses.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// The accepted token id, `USER@REALM!TOKENID`; default `leazzard@pve!dns`.
    pub token_id: String,
    /// The accepted secret; `None`: a fresh UUID per start, like `pveum user token add`.
    pub token_secret: Option<String>,
    /// How long a 401 waits before answering. Real pveproxy: 3 s; default here: none.
    pub auth_failure_delay: Duration,
    /// What `GET /access/permissions` reports and what the endpoints enforce: path →
    /// {privilege → propagate flag}. Default: `{"/vms": {"VM.Audit": 1}}`, the token the
    /// README sets up (so `/cluster/status`, which needs `Sys.Audit` on `/`, answers 403).
    pub permissions: Map<String, Value>,
    /// The `data` of `GET /version`; default PVE 9.0.11.
    pub version: Value,
}

impl Default for SimOptions {
    fn default() -> Self {
        let mut permissions = Map::new();
        permissions.insert("/vms".to_string(), json!({"VM.Audit": 1}));
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_id: "leazzard@pve!dns".to_string(),
            token_secret: None,
            auth_failure_delay: Duration::ZERO,
            permissions,
            version: json!({"version": "9.0.11", "release": "9.0", "repoid": "3bf5476b8a4699e2"}),
        }
    }
}

/// One request as received (before authentication), for tests to assert what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, …
    pub method: String,
    /// The full path as sent, e.g. `/api2/json/cluster/resources`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

/// The request log keeps this many entries (the oldest go first), so a long demo stays small.
const REQUEST_LOG_CAP: usize = 10_000;

/// Everything the handlers read and the [`SimHandle`] writes.
pub(crate) struct State {
    pub(crate) cluster: Cluster,
    /// Nodes whose last broadcast is older than 5 minutes.
    pub(crate) stale: BTreeSet<String>,
    pub(crate) token_id: String,
    pub(crate) token_secret: String,
    pub(crate) permissions: Map<String, Value>,
    pub(crate) version: Value,
    pub(crate) auth_failure_delay: Duration,
    log: VecDeque<RequestRecord>,
}

/// The listening socket's life cycle. `Bound` exists because a re-bind may happen on a thread
/// outside the runtime (sync test code), where a tokio listener cannot be registered yet.
enum ListenerSlot {
    Closed,
    Bound(std::net::TcpListener),
    Serving(TcpListener),
}

/// State shared by the server task, the connection tasks and every [`SimHandle`].
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The current fault; a watch so hung requests and the accept loop wake on a change.
    pub(crate) fault: watch::Sender<Fault>,
    shutdown: watch::Sender<bool>,
    listener: Mutex<ListenerSlot>,
    addr: SocketAddr,
    pub(crate) fingerprint: String,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the state consistent, and
/// a panicking test thread must not take the server down with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn record(&self, method: &str, path: &str, query: Option<&str>) {
        let mut state = self.state();
        if state.log.len() >= REQUEST_LOG_CAP {
            state.log.pop_front();
        }
        state.log.push_back(RequestRecord {
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            at: Instant::now(),
        });
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Opens the listening socket again on the same address unless refusing or shut down.
    /// `std` sets `SO_REUSEADDR`, so connections left in TIME_WAIT do not block the port.
    fn ensure_listening(&self) {
        let mut slot = lock(&self.listener);
        if !matches!(*slot, ListenerSlot::Closed)
            || self.is_shut_down()
            || *self.fault.borrow() == Fault::Refuse
        {
            return;
        }
        match std::net::TcpListener::bind(self.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
        {
            Ok(listener) => *slot = ListenerSlot::Bound(listener),
            Err(err) => {
                tracing::warn!(addr = %self.addr, error = %err, "simulator cannot re-bind; retrying")
            }
        }
    }

    fn close_listener(&self) {
        *lock(&self.listener) = ListenerSlot::Closed;
    }

    fn needs_rebind(&self) -> bool {
        matches!(*lock(&self.listener), ListenerSlot::Closed)
            && *self.fault.borrow() != Fault::Refuse
    }

    /// Polls the current listener without holding the lock across an await: the slot can be
    /// emptied synchronously by [`SimHandle::set_fault`], which then wakes the accept loop.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut slot = lock(&self.listener);
        if matches!(*slot, ListenerSlot::Bound(_)) {
            if let ListenerSlot::Bound(std_listener) =
                std::mem::replace(&mut *slot, ListenerSlot::Closed)
            {
                // Here we are on the runtime, so the socket can be registered with the reactor.
                *slot = ListenerSlot::Serving(TcpListener::from_std(std_listener)?);
            }
        }
        match &*slot {
            ListenerSlot::Serving(listener) => listener.poll_accept(cx),
            _ => Poll::Pending,
        }
    }
}

/// A running simulated pveproxy on the caller's tokio runtime. Dropping it stops the server
/// and every connection task.
pub struct Simulator {
    handle: SimHandle,
    addr: SocketAddr,
    ca_pem: String,
    fingerprint: String,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `opts.bind`, makes a fresh CA and node certificate and starts serving `cluster`.
    ///
    /// # Errors
    /// The address cannot be bound, or the certificate or TLS config cannot be made.
    pub async fn start(cluster: Cluster, opts: SimOptions) -> io::Result<Simulator> {
        let first_node = cluster
            .nodes
            .first()
            .map_or("pve1", |n| n.name.as_str())
            .to_string();
        let certs = tls::Certificates::generate(&first_node)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config()?);
        let listener = TcpListener::bind(opts.bind).await?;
        let addr = listener.local_addr()?;
        let fingerprint = certs.leaf_fingerprint();
        let token_secret = opts
            .token_secret
            .unwrap_or_else(|| fresh_secret(&certs.ca_pem, &fingerprint));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                cluster,
                stale: BTreeSet::new(),
                token_id: opts.token_id,
                token_secret,
                permissions: opts.permissions,
                version: opts.version,
                auth_failure_delay: opts.auth_failure_delay,
                log: VecDeque::new(),
            }),
            fault: watch::Sender::new(Fault::None),
            shutdown: watch::Sender::new(false),
            listener: Mutex::new(ListenerSlot::Serving(listener)),
            addr,
            fingerprint: fingerprint.clone(),
        });
        let router = routes::router(shared.clone());
        let task = tokio::spawn(accept_loop(shared.clone(), acceptor, router));
        tracing::info!(%addr, fingerprint = %fingerprint, "simulated Proxmox API listening");
        Ok(Simulator {
            handle: SimHandle { shared },
            addr,
            ca_pem: certs.ca_pem,
            fingerprint,
            task: Some(task),
        })
    }

    /// The bound address (stays the same across [`Fault::Refuse`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (IPv6 in brackets); the API is under `/api2/json`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the served certificate, like `pve-root-ca.pem`.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// SHA-256 of the served certificate as `pvenode cert info` prints it:
    /// `AB:CD:…`, upper-case, 95 characters. Also every node's `ssl_fingerprint` in `/nodes`.
    pub fn leaf_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The currently accepted token id, `USER@REALM!TOKENID`.
    pub fn token_id(&self) -> String {
        self.handle.token_id()
    }

    /// The currently accepted token secret.
    pub fn token_secret(&self) -> String {
        self.handle.token_secret()
    }

    /// The `Authorization` header value the simulator accepts right now.
    pub fn authorization_header(&self) -> String {
        self.handle.authorization_header()
    }

    /// A control handle; clone it freely, it outlives the server harmlessly.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops accepting, drops every connection and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            // The task ends on the signal; a JoinError could only be our own abort.
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
        self.handle.shared.close_listener();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            // Aborting the server task drops its JoinSet, which aborts every connection task.
            task.abort();
        }
    }
}

/// A Proxmox-style token secret (UUID layout), unpredictable because it hashes the fresh
/// certificates (whose keys are random) without needing a random-number crate.
fn fresh_secret(ca_pem: &str, fingerprint: &str) -> String {
    let hash = Sha256::digest(format!(
        "leazzard-sim-token\n{ca_pem}\n{fingerprint}\n{:?}",
        Instant::now()
    ));
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Accepts connections until shutdown. Owns the connection tasks, so ending (or aborting)
/// this task ends them all.
async fn accept_loop(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
) {
    let mut connections = JoinSet::new();
    let mut shutdown = shared.shutdown.subscribe();
    let mut fault = shared.fault.subscribe();
    loop {
        let needs_rebind = shared.needs_rebind();
        tokio::select! {
            // The guard `wait_for` returns is not Send: drop it inside the branch future.
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            // A fault change may have closed or re-opened the listener: poll again.
            changed = fault.changed() => if changed.is_err() { break },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = poll_fn(|cx| shared.poll_accept(cx)) => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(routes::serve_connection(shared.clone(), acceptor.clone(), router.clone(), stream, peer));
                }
                Err(err) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %err, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(100)), if needs_rebind => shared.ensure_listening(),
        }
    }
    shared.close_listener();
    connections.shutdown().await;
}

/// Changes the simulated cluster and failure modes of a running [`Simulator`]. Every method
/// is synchronous, cheap and takes effect for requests that start after it returns.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl SimHandle {
    /// Adds the guest, or replaces the one with the same vmid (keeping its list position).
    pub fn upsert_guest(&self, guest: SimGuest) {
        let mut state = self.shared.state();
        match state
            .cluster
            .guests
            .iter_mut()
            .find(|g| g.vmid == guest.vmid)
        {
            Some(existing) => *existing = guest,
            None => state.cluster.guests.push(guest),
        }
    }

    /// Removes the guest; returns it if it existed.
    pub fn remove_guest(&self, vmid: u32) -> Option<SimGuest> {
        let mut state = self.shared.state();
        let index = state.cluster.guests.iter().position(|g| g.vmid == vmid)?;
        Some(state.cluster.guests.remove(index))
    }

    /// Sets the guest's `name` (QEMU) or `hostname` (LXC); false if there is no such guest.
    pub fn rename_guest(&self, vmid: u32, new_name: &str) -> bool {
        let mut state = self.shared.state();
        match state.cluster.guests.iter_mut().find(|g| g.vmid == vmid) {
            Some(guest) => {
                guest.set_name(new_name);
                true
            }
            None => false,
        }
    }

    /// Takes a node down or brings it back; false if there is no such node. While down, calls
    /// under `/nodes/{name}/…` answer 595 `No route to host`; its guests keep their last state
    /// in `/cluster/resources` until [`SimHandle::set_node_stale`].
    pub fn set_node_online(&self, name: &str, online: bool) -> bool {
        let mut state = self.shared.state();
        match state.cluster.nodes.iter_mut().find(|n| n.name == name) {
            Some(node) => {
                node.online = online;
                true
            }
            None => false,
        }
    }

    /// Marks the node's last broadcast as older than 5 minutes (or fresh again): its guests'
    /// resource entries lose `name`, `template` and stats and show `status: "unknown"`; an
    /// online node shows `status: "unknown"` itself.
    pub fn set_node_stale(&self, name: &str, stale: bool) {
        let mut state = self.shared.state();
        if stale {
            state.stale.insert(name.to_string());
        } else {
            state.stale.remove(name);
        }
    }

    /// Sets the failure mode (see [`Fault`]). [`Fault::Refuse`] closes the listening socket
    /// before returning; any other fault re-opens it on the same port.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
        if fault == Fault::Refuse {
            self.shared.close_listener();
        } else {
            self.shared.ensure_listening();
        }
    }

    /// The current failure mode.
    pub fn fault(&self) -> Fault {
        *self.shared.fault.borrow()
    }

    /// Whether the listening socket is open (false under [`Fault::Refuse`] and after shutdown).
    pub fn is_listening(&self) -> bool {
        !matches!(*lock(&self.shared.listener), ListenerSlot::Closed)
    }

    /// Accepts only this token from now on (the old one gets 401).
    pub fn set_token(&self, token_id: &str, secret: &str) {
        let mut state = self.shared.state();
        state.token_id = token_id.to_string();
        state.token_secret = secret.to_string();
    }

    /// The accepted token id.
    pub fn token_id(&self) -> String {
        self.shared.state().token_id.clone()
    }

    /// The accepted token secret.
    pub fn token_secret(&self) -> String {
        self.shared.state().token_secret.clone()
    }

    /// `PVEAPIToken=USER@REALM!TOKENID=SECRET` for the accepted token.
    pub fn authorization_header(&self) -> String {
        let state = self.shared.state();
        format!("PVEAPIToken={}={}", state.token_id, state.token_secret)
    }

    /// Replaces the token's permissions (path → {privilege → propagate flag}).
    pub fn set_permissions(&self, permissions: Map<String, Value>) {
        self.shared.state().permissions = permissions;
    }

    /// Sets how long a 401 waits (pveproxy: 3 s).
    pub fn set_auth_failure_delay(&self, delay: Duration) {
        self.shared.state().auth_failure_delay = delay;
    }

    /// A copy of the simulated cluster as it is now.
    pub fn cluster(&self) -> Cluster {
        self.shared.state().cluster.clone()
    }

    /// The requests received so far, oldest first (at most the last 10 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().log.iter().cloned().collect()
    }

    /// How many logged requests have a path starting with `path_prefix`, matched against the
    /// full path (`/api2/json/nodes/pve1/qemu/100`).
    pub fn request_count(&self, path_prefix: &str) -> usize {
        self.shared
            .state()
            .log
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .count()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.state().log.clear();
    }
}
