//! The DHCP server's sockets and wiring around the pure [`Engine`].
//!
//! One thread (`dhcp`) owns the engine: it reads packets from UDP port 67 on the lab
//! interface, handles them, and hands each reply to the lease store, whose writer thread
//! sends it once the lease is on disk (group commit: one fsync for every reply decided
//! meanwhile). Between packets it takes in what other tasks changed: a new [`PoolView`] from
//! the naming rules (static addresses, known guests), ARP observations (addresses in use),
//! and the answers of ARP probes. It publishes the active leases to the state task within
//! [`PUBLISH_EVERY`] of a change, so a guest's name follows its DHCPACK at once.
//!
//! Replies to a client without an address go out as broadcasts (every client in use listens
//! for them; unicasting to an unconfigured client would need a kernel ARP entry and
//! `CAP_NET_ADMIN`). Replies to relays go to `giaddr:67`.
//!
//! Invariants: no naming rules; the async runtime only runs ARP probes (the engine, the
//! socket reads and the fsyncs are on their own threads); a DHCPACK leaves only after its
//! lease is durable.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dhcproto::v4::MessageType;
use ipnet::Ipv4Net;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;

use super::lease::LeaseRecord;
use super::protocol::{Decision, SERVER_PORT};
use super::store::{Store, StoreError};
use super::{Engine, Outcome, Probe};
use crate::config::DhcpConfig;
use crate::daemon::{Event, Inputs};
use crate::inventory::MacAddr;
use crate::netif::InterfaceAddr;
use crate::zone::PoolView;

/// Longest delay between a lease change and its publication to the naming rules.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(20);
/// Leases also lapse with time: the active set is re-published this often.
const REPUBLISH_EVERY: Duration = Duration::from_secs(5);
/// An OFFER is re-chosen at most this many times after probes found the address taken.
const PROBE_ATTEMPTS: u8 = 3;

/// Counters and gauges of the DHCP server, for metrics and the status page.
#[derive(Debug, Default)]
pub struct DhcpStats {
    /// Received, by message type: DISCOVER, REQUEST, DECLINE, RELEASE, INFORM, other.
    pub received: [AtomicU64; 6],
    /// Sent: OFFER, ACK, NAK.
    pub sent: [AtomicU64; 3],
    /// Packets that were not DHCP requests we could read.
    pub malformed: AtomicU64,
    /// Requests we did not answer (not ours, other server's, unknown client denied, …).
    pub ignored: AtomicU64,
    /// Probes that found an address taken.
    pub probe_conflicts: AtomicU64,
    /// Addresses in the dynamic range (minus static ones).
    pub pool_size: AtomicU64,
    /// Addresses free to lease now.
    pub pool_free: AtomicU64,
    /// Replies dropped because their lease could not be made durable.
    pub store_errors: AtomicU64,
}

/// Names of [`DhcpStats::received`] entries, in order.
pub const RECEIVED_TYPES: [&str; 6] = [
    "discover", "request", "decline", "release", "inform", "other",
];
/// Names of [`DhcpStats::sent`] entries, in order.
pub const SENT_TYPES: [&str; 3] = ["offer", "ack", "nak"];

/// The leases as the status page and JSON API show them.
#[derive(Debug, Clone, Default)]
pub struct LeaseView {
    /// Active leases, by address.
    pub leases: Vec<LeaseRecord>,
}

/// What the server needs from the daemon.
pub struct DhcpContext {
    /// The lab interface and our address on it.
    pub interface: InterfaceAddr,
    /// `NETWORK_CIDR`.
    pub network: Ipv4Net,
    /// `DNS_DOMAIN` (option 15).
    pub domain: String,
    /// Range, options, policies.
    pub config: DhcpConfig,
    /// `DATA_DIR`, home of the lease log.
    pub data_dir: PathBuf,
    /// Where lease changes go (the state task).
    pub events: mpsc::Sender<Event>,
    /// The naming rules' view for the pool.
    pub pool: Arc<ArcSwap<PoolView>>,
    /// The zone's inputs (ARP observations among them).
    pub inputs: Arc<ArcSwap<Inputs>>,
    /// Asks the sync task for an early sync.
    pub early_sync: Arc<crate::daemon::EarlySync>,
    /// ARP probe before offering never-used addresses, when the ARP watcher runs.
    pub probe: Option<Arc<dyn Probe>>,
    /// The runtime the probes run on.
    pub runtime: tokio::runtime::Handle,
}

/// Why the DHCP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// The lease store could not be opened.
    #[error("DATA_DIR: {0}")]
    Store(#[from] StoreError),
    /// The socket could not be set up.
    #[error("DHCP socket on {interface} port 67: {error} (needs root or CAP_NET_BIND_SERVICE and CAP_NET_RAW)")]
    Socket {
        /// The interface.
        interface: String,
        /// What failed.
        error: io::Error,
    },
}

/// A running DHCP server.
pub struct DhcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<DhcpStats>,
    /// The active leases, for views.
    pub leases: Arc<ArcSwap<LeaseView>>,
}

/// A packet coming back from an ARP probe.
struct Probed {
    packet: Vec<u8>,
    attempt: u8,
    /// The reply decided before the probe, sent as is when nobody answered.
    outcome: Outcome,
    /// Who answered for the probed address, if anyone.
    taken: Option<(Ipv4Addr, MacAddr)>,
}

impl DhcpServer {
    /// Opens the lease store (importing a dnsmasq leases file on first start), binds port 67
    /// on the lab interface and starts serving.
    pub fn start(ctx: DhcpContext) -> Result<DhcpServer, DhcpError> {
        let (store, leases, report) =
            Store::open(&ctx.data_dir, ctx.config.import_leases.as_deref())?;
        if let Some(import) = &report.import {
            tracing::info!(file = %import.path.display(), imported = import.imported, rejected = import.rejected.len(), "dnsmasq leases imported");
            for (line, why) in &import.rejected {
                tracing::warn!(file = %import.path.display(), line, reason = %why, "dnsmasq lease not imported");
            }
        }
        if report.truncated_bytes > 0 || report.skipped_bytes > 0 {
            tracing::warn!(
                truncated = report.truncated_bytes,
                skipped = report.skipped_bytes,
                "lease log had a torn or damaged part; it was skipped"
            );
        }
        tracing::info!(leases = report.records, file = %store.path().display(), "lease store opened");

        let socket = dhcp_socket(&ctx.interface.name).map_err(|error| DhcpError::Socket {
            interface: ctx.interface.name.clone(),
            error,
        })?;
        let socket = Arc::new(socket);
        let now = unix_now();
        let engine = Engine::new(
            ctx.interface.addr,
            ctx.network,
            &ctx.domain,
            ctx.config.clone(),
            leases,
            now,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(DhcpStats::default());
        let lease_view = Arc::new(ArcSwap::from_pointee(LeaseView::default()));
        let mut worker = Worker {
            engine,
            socket,
            store: Arc::new(store),
            stats: stats.clone(),
            lease_view: lease_view.clone(),
            dirty: true,
            last_publish: Instant::now() - REPUBLISH_EVERY,
            publish_cost: Duration::ZERO,
            last_pool: None,
            last_inputs: None,
            probed: std_mpsc::channel(),
            ctx,
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dhcp".into())
                .spawn(move || worker.run(&stop))
                .map_err(|error| DhcpError::Socket {
                    interface: "thread".into(),
                    error,
                })?
        };
        Ok(DhcpServer {
            stop,
            thread: Some(thread),
            stats,
            leases: lease_view,
        })
    }

    /// Stops serving; pending lease writes are finished first.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn dhcp_socket(interface: &str) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    // Only the lab interface: a DHCP server answering on the wrong network is a disaster.
    socket.bind_device(Some(interface.as_bytes()))?;
    // A burst of clients (a rack booting) must queue, not drop: 4 MiB holds ~3,000 requests.
    socket.set_recv_buffer_size(4 << 20)?;
    socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    socket.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT)).into())?;
    Ok(socket.into())
}

struct Worker {
    engine: Engine,
    socket: Arc<UdpSocket>,
    store: Arc<Store>,
    stats: Arc<DhcpStats>,
    lease_view: Arc<ArcSwap<LeaseView>>,
    dirty: bool,
    last_publish: Instant,
    publish_cost: Duration,
    last_pool: Option<Arc<PoolView>>,
    last_inputs: Option<Arc<Inputs>>,
    probed: (std_mpsc::Sender<Probed>, std_mpsc::Receiver<Probed>),
    ctx: DhcpContext,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 2048];
        tracing::info!(interface = %self.ctx.interface.name, server = %self.ctx.interface.addr, "DHCP server listening");
        while !stop.load(Ordering::Relaxed) {
            self.take_in_changes();
            while let Ok(probed) = self.probed.1.try_recv() {
                self.after_probe(probed);
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, _from)) => {
                    let packet = buf[..n].to_vec();
                    self.handle(packet, 0);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => tracing::debug!(error = %e, "DHCP receive failed"),
            }
            self.publish_if_due();
        }
    }

    /// New pool view (static addresses, known guests) and ARP observations.
    fn take_in_changes(&mut self) {
        let now = unix_now();
        let pool = self.ctx.pool.load_full();
        if self
            .last_pool
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &pool))
        {
            let records = self.engine.set_view((*pool).clone(), now);
            if !records.is_empty() {
                tracing::info!(
                    released = records.len(),
                    "leases of guests now configured statically released"
                );
                self.dirty = true;
                self.store.commit(records, |r| {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "cannot record released leases");
                    }
                });
            }
            self.last_pool = Some(pool);
        }
        let inputs = self.ctx.inputs.load_full();
        if self
            .last_inputs
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &inputs))
        {
            for o in &inputs.neighbors {
                self.engine.pool_mut().observe(o.addr, o.mac, now);
            }
            self.last_inputs = Some(inputs);
        }
    }

    fn handle(&mut self, packet: Vec<u8>, attempt: u8) {
        let now = unix_now();
        if attempt == 0 {
            self.count_received(&packet);
        }
        let outcome = match self.engine.handle(&packet, now) {
            Ok(o) => o,
            Err(e) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "DHCP packet not handled");
                return;
            }
        };
        if let Some(mac) = chaddr(&packet) {
            self.maybe_early_sync(mac);
        }
        match (&outcome.probe, &self.ctx.probe) {
            (Some(addr), Some(probe)) if attempt < PROBE_ATTEMPTS => {
                let (probe, tx, addr) = (probe.clone(), self.probed.0.clone(), *addr);
                self.ctx.runtime.spawn(async move {
                    let taken = probe.probe(addr).await.map(|mac| (addr, mac));
                    let _ = tx.send(Probed {
                        packet,
                        attempt: attempt + 1,
                        outcome,
                        taken,
                    });
                });
            }
            _ => self.send_when_durable(outcome),
        }
    }

    fn after_probe(&mut self, probed: Probed) {
        match probed.taken {
            None => self.send_when_durable(probed.outcome),
            Some((addr, mac)) => {
                self.stats.probe_conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(addr = %addr, holder = %mac, "address answered an ARP probe; offering another");
                self.engine.conflict(addr, mac, unix_now());
                self.handle(probed.packet, probed.attempt);
            }
        }
    }

    fn send_when_durable(&mut self, outcome: Outcome) {
        if let Decision::Ignore(why) = &outcome.decision {
            self.stats.ignored.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(reason = ?why, "DHCP request ignored");
        }
        let reply = outcome.reply.map(|r| {
            let kind = match &outcome.decision {
                Decision::Reply(rep) => rep.kind(),
                _ => None,
            };
            (r, kind)
        });
        if outcome.persist.is_empty() {
            if let Some((r, kind)) = reply {
                send(
                    &self.socket,
                    &self.stats,
                    &r.bytes,
                    r.to.socket_addr(),
                    kind,
                );
            }
            return;
        }
        self.dirty = true;
        let (socket, stats) = (self.socket.clone(), self.stats.clone());
        // Runs on the store's writer thread once the records are on disk.
        self.store.commit(outcome.persist, move |result| match (result, reply) {
            (Ok(()), Some((r, kind))) => send(&socket, &stats, &r.bytes, r.to.socket_addr(), kind),
            (Ok(()), None) => {}
            (Err(e), _) => {
                stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "lease not durable; reply withheld (the client will retry)");
            }
        });
    }

    fn maybe_early_sync(&mut self, mac: MacAddr) {
        if !self.engine.pool().is_known(mac) && self.ctx.early_sync.unknown_mac(mac) {
            tracing::debug!(mac = %mac, "DHCP: MAC of no known guest; asking for an early sync");
        }
    }

    fn publish_if_due(&mut self) {
        let since = self.last_publish.elapsed();
        // Publishing walks every lease: under a burst of thousands of leases it must not eat
        // the thread that answers clients, so the gap grows to 20x what the last one cost
        // (publishing then takes at most 5% of the thread), never below PUBLISH_EVERY.
        let gap = PUBLISH_EVERY.max(self.publish_cost * 20);
        if !(self.dirty && since >= gap || since >= REPUBLISH_EVERY) {
            return;
        }
        let started = Instant::now();
        let now = unix_now();
        let pool = self.engine.pool();
        self.stats
            .pool_free
            .store(pool.available(), Ordering::Relaxed);
        self.stats
            .pool_size
            .store(pool.capacity(), Ordering::Relaxed);
        let records: Vec<LeaseRecord> = pool
            .bindings()
            .into_iter()
            .filter(|b| b.is_active(now))
            .cloned()
            .collect();
        let leases = records.iter().map(LeaseRecord::to_zone_lease).collect();
        self.lease_view
            .store(Arc::new(LeaseView { leases: records }));
        // A full queue means the state task is busy; the next round sends the newer set.
        if self.ctx.events.try_send(Event::Leases(leases)).is_ok() {
            self.dirty = false;
        }
        self.last_publish = Instant::now();
        self.publish_cost = started.elapsed();
    }

    fn count_received(&self, packet: &[u8]) {
        let i = match message_type(packet) {
            Some(MessageType::Discover) => 0,
            Some(MessageType::Request) => 1,
            Some(MessageType::Decline) => 2,
            Some(MessageType::Release) => 3,
            Some(MessageType::Inform) => 4,
            _ => 5,
        };
        self.stats.received[i].fetch_add(1, Ordering::Relaxed);
    }
}

fn send(
    socket: &UdpSocket,
    stats: &DhcpStats,
    bytes: &[u8],
    to: SocketAddrV4,
    kind: Option<MessageType>,
) {
    match socket.send_to(bytes, to) {
        Ok(_) => {
            let i = match kind {
                Some(MessageType::Offer) => Some(0),
                Some(MessageType::Ack) => Some(1),
                Some(MessageType::Nak) => Some(2),
                _ => None,
            };
            if let Some(i) = i {
                stats.sent[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => tracing::debug!(error = %e, to = %to, "DHCP reply not sent"),
    }
}

/// The client hardware address of a BOOTREQUEST (Ethernet only), read from the fixed header.
fn chaddr(packet: &[u8]) -> Option<MacAddr> {
    if packet.len() < 34 || packet[1] != 1 || packet[2] != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&packet[28..34]);
    Some(MacAddr(mac))
}

/// Option 53 of a packet, by a bounded scan of its options (for counting only).
fn message_type(packet: &[u8]) -> Option<MessageType> {
    let opts = packet.get(240..)?;
    if packet.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1,
            255 => return None,
            code => {
                let len = usize::from(*opts.get(i + 1)?);
                if code == 53 && len == 1 {
                    return Some(MessageType::from(*opts.get(i + 2)?));
                }
                i += 2 + len;
            }
        }
    }
    None
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_scan_is_bounded() {
        let mut p = vec![0u8; 240];
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        assert_eq!(message_type(&p), None);
        let mut with = p.clone();
        with.extend_from_slice(&[0, 12, 3, b'a', b'b', b'c', 53, 1, 3, 255]);
        assert_eq!(message_type(&with), Some(MessageType::Request));
        let mut cut = p.clone();
        cut.extend_from_slice(&[12, 200, 1]);
        assert_eq!(message_type(&cut), None);
        assert_eq!(message_type(&[1, 2, 3]), None);
    }
}
