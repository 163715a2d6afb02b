//! The ARP watcher: who is actually on the lab network, by MAC.
//!
//! - **Passive**: every ARP packet on the lab interface (requests, replies, gratuitous ones)
//!   is a sighting of (MAC, address). A guest that talks is seen at once, typically when it
//!   boots and looks for its gateway.
//! - **Active**: every `ARP_CHECK_INTERVAL` a sweep asks for every address of `NETWORK_CIDR`,
//!   spread evenly over the interval (at most [`MAX_RATE`] per second), so silent hosts answer
//!   too. Only on our interface, only inside the network: one request per address per sweep.
//! - The [`NeighborTable`] keeps the last address of each MAC; an entry expires when its MAC
//!   has not been seen for [`SWEEPS_TO_EXPIRE`] sweeps. Each change goes to the state task as
//!   `Event::Neighbors`; a MAC that no known guest owns asks for an early Proxmox sync (at most
//!   once per `EarlySync::QUIET` per MAC).
//!
//! Needs CAP_NET_RAW; without it leazzard runs on without ARP and says so once.
//!
//! Invariants: no naming rules (a sighting is only a fact); blocking socket reads and the
//! paced sweep run on their own threads, never on the async runtime.

pub mod frame;
pub mod socket;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ipnet::Ipv4Net;
use tokio::sync::{mpsc, oneshot, watch};

use crate::daemon::Event;
use crate::inventory::MacAddr;
use crate::netif::InterfaceAddr;
use crate::zone::{Observation, PoolView};
use frame::ArpPacket;
use socket::ArpSocket;

/// Most ARP requests a sweep sends per second (a /16 then takes minutes, never a burst).
pub const MAX_RATE: u32 = 200;
/// An entry expires after this many sweep intervals without a sighting.
pub const SWEEPS_TO_EXPIRE: u32 = 3;

/// The last address seen for each MAC. Pure bookkeeping; the caller gives the time.
#[derive(Debug, Default)]
pub struct NeighborTable {
    entries: HashMap<MacAddr, (Ipv4Addr, Instant)>,
    lifetime: Duration,
}

impl NeighborTable {
    /// A table whose entries live `lifetime` after their last sighting.
    pub fn new(lifetime: Duration) -> NeighborTable {
        NeighborTable {
            entries: HashMap::new(),
            lifetime,
        }
    }

    /// Records a sighting; `true` when the MAC is new or its address changed.
    pub fn saw(&mut self, mac: MacAddr, addr: Ipv4Addr, now: Instant) -> bool {
        match self.entries.insert(mac, (addr, now)) {
            Some((old, _)) => old != addr,
            None => true,
        }
    }

    /// Drops entries not seen for the lifetime; `true` when any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.entries.len();
        let lifetime = self.lifetime;
        self.entries
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < lifetime);
        self.entries.len() != before
    }

    /// The live observations, sorted by MAC.
    pub fn observations(&self) -> Vec<Observation> {
        let mut out: Vec<Observation> = self
            .entries
            .iter()
            .map(|(mac, (addr, _))| Observation {
                mac: *mac,
                addr: *addr,
            })
            .collect();
        out.sort_by_key(|o| o.mac);
        out
    }

    /// The MAC last seen with `addr`, if any (for DHCP's "in use by another MAC").
    pub fn holder(&self, addr: Ipv4Addr) -> Option<MacAddr> {
        self.entries
            .iter()
            .filter(|(_, (a, _))| *a == addr)
            .max_by_key(|(_, (_, seen))| *seen)
            .map(|(mac, _)| *mac)
    }
}

/// Counters of the ARP watcher, for metrics.
#[derive(Debug, Default)]
pub struct ArpStats {
    /// ARP packets received that told a (MAC, address) inside the network.
    pub sightings: AtomicU64,
    /// Requests sent by sweeps.
    pub requests_sent: AtomicU64,
    /// Completed sweeps.
    pub sweeps: AtomicU64,
}

/// The addresses one sweep asks for: every host address of `network` but `own`.
pub fn sweep_targets(network: Ipv4Net, own: Ipv4Addr) -> Vec<Ipv4Addr> {
    network.hosts().filter(|a| *a != own).collect()
}

/// Time between two requests of a sweep: the interval spread over the targets, but never
/// faster than [`MAX_RATE`].
pub fn sweep_spacing(interval: Duration, targets: usize) -> Duration {
    let even = interval / u32::try_from(targets.max(1)).unwrap_or(u32::MAX);
    even.max(Duration::from_secs(1) / MAX_RATE)
}

/// Probes waiting for an answer, by the address asked about.
type Waiters = Arc<Mutex<HashMap<Ipv4Addr, Vec<oneshot::Sender<MacAddr>>>>>;

/// How long a DHCP probe waits for an answer (the client is waiting for its offer).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// A running ARP watcher.
pub struct ArpWatcher {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Counters.
    pub stats: Arc<ArpStats>,
    prober: Arc<ArpProber>,
}

/// Asks "who has this address?" on the lab interface and waits briefly for an answer: the
/// check DHCP makes before offering an address nobody has had (RFC 2131 §2.2; dnsmasq pings).
///
/// A sweep asks the same question of every address ahead of time, and every address seen in
/// use since is already barred from the pool (DHCP takes in the neighbor table). So once a
/// full sweep has finished less than two intervals ago, the answer is known without waiting;
/// only before that (just after start) does a probe go on the wire and the offer wait for it.
pub struct ArpProber {
    socket: Arc<ArpSocket>,
    own_mac: MacAddr,
    own: Ipv4Addr,
    waiters: Waiters,
    /// When the last full sweep finished (milliseconds since `epoch`; 0: none yet).
    swept_at_ms: Arc<AtomicU64>,
    epoch: Instant,
    /// Time between two sweeps' ends: the interval, or longer for a network the rate cap
    /// cannot sweep within it.
    interval: Duration,
}

impl ArpProber {
    /// Whether a full sweep finished recently enough to stand for a probe.
    fn recently_swept(&self) -> bool {
        let at = self.swept_at_ms.load(Ordering::Relaxed);
        if at == 0 {
            return false;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let fresh = u64::try_from((self.interval * 2).as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(at) < fresh
    }

    /// The MAC that answers for `addr` within [`PROBE_TIMEOUT`], if any; at once `None` when a
    /// recent sweep already asked (see the type's docs).
    pub async fn probe(&self, addr: Ipv4Addr) -> Option<MacAddr> {
        if self.recently_swept() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.entry(addr).or_default().push(tx);
        }
        let frame = ArpPacket::request(self.own_mac, self.own, addr).to_frame();
        if let Err(e) = self.socket.send(&frame) {
            tracing::debug!(error = %e, addr = %addr, "ARP probe not sent");
        }
        let answer = tokio::time::timeout(PROBE_TIMEOUT, rx)
            .await
            .ok()
            .and_then(Result::ok);
        if let Ok(mut w) = self.waiters.lock() {
            if let Some(list) = w.get_mut(&addr) {
                list.retain(|s| !s.is_closed());
                if list.is_empty() {
                    w.remove(&addr);
                }
            }
        }
        answer
    }
}

impl crate::dhcp::Probe for ArpProber {
    fn probe(
        &self,
        addr: Ipv4Addr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<MacAddr>> + Send + '_>> {
        Box::pin(ArpProber::probe(self, addr))
    }
}

/// What the watcher needs from the daemon.
pub struct ArpContext {
    /// The lab interface and our address on it.
    pub interface: InterfaceAddr,
    /// `NETWORK_CIDR`.
    pub network: Ipv4Net,
    /// `ARP_CHECK_INTERVAL`.
    pub interval: Duration,
    /// Where changes go (the state task).
    pub events: mpsc::Sender<Event>,
    /// Known guest MACs (published by the state task).
    pub pool: Arc<ArcSwap<PoolView>>,
    /// Asks the sync task for an early sync.
    pub early_sync: Arc<crate::daemon::EarlySync>,
}

impl ArpWatcher {
    /// Opens the socket and starts capture, sweeps and bookkeeping. An error (most often
    /// missing CAP_NET_RAW) leaves the caller to run without ARP.
    pub fn start(ctx: ArpContext, shutdown: watch::Receiver<bool>) -> std::io::Result<ArpWatcher> {
        let socket = Arc::new(ArpSocket::open(&ctx.interface.name)?);
        let own_mac = socket::interface_mac(&ctx.interface.name)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ArpStats::default());
        let (tx, rx) = mpsc::channel::<(MacAddr, Ipv4Addr)>(4096);

        let waiters: Waiters = Arc::default();
        let epoch = Instant::now();
        let swept_at_ms = Arc::new(AtomicU64::new(0));
        let capture = {
            let (socket, stop, stats, network) =
                (socket.clone(), stop.clone(), stats.clone(), ctx.network);
            let waiters = waiters.clone();
            std::thread::Builder::new()
                .name("arp-capture".into())
                .spawn(move || capture_loop(&socket, network, &tx, &stop, &stats, &waiters))?
        };
        let prober = Arc::new(ArpProber {
            socket: socket.clone(),
            own_mac,
            own: ctx.interface.addr,
            waiters,
            swept_at_ms: swept_at_ms.clone(),
            epoch,
            // A sweep of a large network takes longer than the interval (the rate cap).
            interval: ctx.interval.max(
                Duration::from_secs(1)
                    * u32::try_from(sweep_targets(ctx.network, ctx.interface.addr).len())
                        .unwrap_or(u32::MAX)
                    / MAX_RATE,
            ),
        });
        let sweep = {
            let (socket, stop, stats) = (socket.clone(), stop.clone(), stats.clone());
            let swept = SweepClock {
                at_ms: swept_at_ms.clone(),
                epoch,
            };
            let (network, own, interval) = (ctx.network, ctx.interface.addr, ctx.interval);
            std::thread::Builder::new()
                .name("arp-sweep".into())
                .spawn(move || {
                    sweep_loop(
                        &socket, network, own_mac, own, interval, &stop, &stats, &swept,
                    )
                })?
        };
        tracing::info!(interface = %ctx.interface.name, mac = %own_mac, interval_s = ctx.interval.as_secs(), "ARP watcher started");
        let task = tokio::spawn(bookkeeping(ctx, rx, shutdown));
        Ok(ArpWatcher {
            stop,
            threads: vec![capture, sweep],
            task,
            stats,
            prober,
        })
    }

    /// The prober DHCP uses before offering a never-used address.
    pub fn prober(&self) -> Arc<ArpProber> {
        self.prober.clone()
    }

    /// Stops the threads (within their 250 ms read timeout) and the task.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn capture_loop(
    socket: &ArpSocket,
    network: Ipv4Net,
    tx: &mpsc::Sender<(MacAddr, Ipv4Addr)>,
    stop: &AtomicBool,
    stats: &ArpStats,
    waiters: &Waiters,
) {
    let mut buf = [0u8; 1600];
    while !stop.load(Ordering::Relaxed) {
        let n = match socket.recv(&mut buf) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "ARP capture failed; stopping it");
                return;
            }
        };
        let Ok(packet) = ArpPacket::parse(&buf[..n]) else {
            continue;
        };
        if let Some((mac, addr)) = packet.sighting().filter(|(_, a)| network.contains(a)) {
            stats.sightings.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut w) = waiters.lock() {
                if let Some(list) = w.remove(&addr) {
                    for waiter in list {
                        let _ = waiter.send(mac);
                    }
                }
            }
            // A full queue drops the sighting: the next packet or sweep tells it again.
            let _ = tx.try_send((mac, addr));
        }
    }
}

/// Records when the last full sweep finished, for [`ArpProber`].
struct SweepClock {
    at_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl SweepClock {
    fn mark(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms.max(1), Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
fn sweep_loop(
    socket: &ArpSocket,
    network: Ipv4Net,
    own_mac: MacAddr,
    own: Ipv4Addr,
    interval: Duration,
    stop: &AtomicBool,
    stats: &ArpStats,
    swept: &SweepClock,
) {
    let targets = sweep_targets(network, own);
    let spacing = sweep_spacing(interval, targets.len());
    // Sleep in short steps so a stop request is noticed quickly.
    let pause = |d: Duration| {
        let end = Instant::now() + d;
        while !stop.load(Ordering::Relaxed) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
        false
    };
    loop {
        let started = Instant::now();
        for target in &targets {
            let frame = ArpPacket::request(own_mac, own, *target).to_frame();
            match socket.send(&frame) {
                Ok(()) => {
                    stats.requests_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, target = %target, "ARP request not sent"),
            }
            if !pause(spacing) {
                return;
            }
        }
        stats.sweeps.fetch_add(1, Ordering::Relaxed);
        swept.mark();
        if !pause(interval.saturating_sub(started.elapsed())) {
            return;
        }
    }
}

async fn bookkeeping(
    ctx: ArpContext,
    mut sightings: mpsc::Receiver<(MacAddr, Ipv4Addr)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let lifetime = ctx.interval * SWEEPS_TO_EXPIRE + Duration::from_secs(5);
    let mut table = NeighborTable::new(lifetime);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut changed = false;
        tokio::select! {
            s = sightings.recv() => {
                let Some(first) = s else { return };
                let now = Instant::now();
                let mut batch = vec![first];
                while let Ok(more) = sightings.try_recv() {
                    batch.push(more);
                }
                let pool = ctx.pool.load();
                for (mac, addr) in batch {
                    if table.saw(mac, addr, now) {
                        changed = true;
                        tracing::debug!(mac = %mac, addr = %addr, "ARP: address seen");
                    }
                    if !pool.guest_macs.contains(&mac) && ctx.early_sync.unknown_mac(mac) {
                        tracing::debug!(mac = %mac, addr = %addr, "ARP: MAC of no known guest; asking for an early sync");
                    }
                }
            }
            _ = tick.tick() => changed = table.expire(Instant::now()),
            _ = shutdown.changed() => return,
        }
        if changed {
            let _ = ctx
                .events
                .send(Event::Neighbors(table.observations()))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr([0xBC, 0x24, 0x11, 0, 0, last])
    }

    #[test]
    fn table_follows_moves_and_expires() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(Duration::from_secs(10));
        let a: Ipv4Addr = "198.18.0.50".parse().unwrap();
        let b: Ipv4Addr = "198.18.0.51".parse().unwrap();
        assert!(t.saw(mac(1), a, t0));
        assert!(
            !t.saw(mac(1), a, t0 + Duration::from_secs(5)),
            "same pair: no change"
        );
        assert_eq!(t.holder(a), Some(mac(1)));
        assert!(t.saw(mac(1), b, t0 + Duration::from_secs(6)), "moved");
        assert_eq!(
            t.observations(),
            vec![Observation {
                mac: mac(1),
                addr: b
            }]
        );
        assert!(!t.expire(t0 + Duration::from_secs(15)));
        assert!(t.expire(t0 + Duration::from_secs(16)));
        assert!(t.observations().is_empty());
    }

    #[test]
    fn a_sweep_of_a_23_is_at_most_512_requests_spread_over_the_interval() {
        let net: Ipv4Net = "198.18.0.0/23".parse().unwrap();
        let targets = sweep_targets(net, "198.18.0.2".parse().unwrap());
        assert_eq!(targets.len(), 509, "510 hosts minus our own");
        assert!(targets.iter().all(|a| net.contains(a)));
        let spacing = sweep_spacing(Duration::from_secs(30), targets.len());
        assert!(spacing * targets.len() as u32 <= Duration::from_secs(30));
        assert!(spacing >= Duration::from_secs(1) / MAX_RATE);
        // A short interval is capped by the rate, not a burst.
        assert_eq!(
            sweep_spacing(Duration::from_secs(1), 509),
            Duration::from_secs(1) / MAX_RATE
        );
    }
}
