//! Wiring: starts the tasks, owns the state task, handles signals and shutdown.
//!
//! ```text
//! sync task ──Event::Inventory──▶ state task ──derive()──▶ Authority ──ArcSwap──▶ DNS sockets
//!     ▲                              (owns inventory, leases, neighbors, the current zone)
//!     └── early sync requests (a MAC no guest owns; DHCP and ARP send these)
//! ```
//!
//! - The **sync task** fetches the inventory every `SYNC_INTERVAL` (sooner after a failure,
//!   with backoff; sooner on request), keeps the last good inventory when the API fails, and
//!   writes each new one to `DATA_DIR/inventory.json` so a restart during an outage still
//!   serves every name.
//! - The **state task** is the one owner of the inputs of `derive()`. It coalesces bursts of
//!   events, derives, and when the zone changed builds a new `Authority` and swaps it in with
//!   one atomic store. Queries never wait for it.
//!
//! Invariants: no protocol logic and no naming rules here; blocking file I/O runs in
//! `spawn_blocking`; every task ends on the one shutdown signal.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::arp::{ArpContext, ArpStats, ArpWatcher};
use crate::config::Config;
use crate::dhcp::server::{DhcpContext, DhcpServer, DhcpStats, RECEIVED_TYPES, SENT_TYPES};
use crate::dns::{Access, Authority, DnsServer, DnsShared, Forwarder};
use crate::inventory::{Inventory, MacAddr};
use crate::proxmox::{self, Client};
use crate::zone::{self, Lease, Observation, PoolView, Zone, ZoneConfig};

/// The file, under `DATA_DIR`, holding the last good inventory.
pub const INVENTORY_FILE: &str = "inventory.json";
/// First retry after a failed sync; doubles up to `SYNC_INTERVAL`.
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// An early sync waits this long for more requests to gather (a burst of new MACs gives one
/// sync, not many).
const EARLY_DEBOUNCE: Duration = Duration::from_secs(1);
/// Early syncs never come closer than this to the previous sync: a flood of unknown MACs
/// (a misbehaving device, a load test) must not turn into a flood of API calls.
const EARLY_MIN_GAP: Duration = Duration::from_secs(5);

/// Requests for an early Proxmox sync: DHCP and ARP call [`EarlySync::unknown_mac`] when they
/// meet a MAC no known guest owns (a guest created since the last sync, most likely). Each
/// MAC asks at most once per [`EarlySync::QUIET`], so a device Proxmox will never know does
/// not keep the API busy; the sync task then debounces what remains.
#[derive(Debug, Default)]
pub struct EarlySync {
    notify: Notify,
    asked: std::sync::Mutex<HashMap<MacAddr, Instant>>,
}

impl EarlySync {
    /// A MAC asks again at most this often.
    pub const QUIET: Duration = Duration::from_secs(300);
    /// Remembered MACs at most; past that, the ones whose quiet time is over are forgotten.
    const REMEMBERED: usize = 10_000;

    /// Asks for an early sync on behalf of `mac`, unless it asked within [`Self::QUIET`].
    /// Returns whether it asked. The lock is held for a map lookup only.
    pub fn unknown_mac(&self, mac: MacAddr) -> bool {
        let now = Instant::now();
        let Ok(mut asked) = self.asked.lock() else {
            return false;
        };
        if asked
            .get(&mac)
            .is_some_and(|t| now.duration_since(*t) < Self::QUIET)
        {
            return false;
        }
        if asked.len() >= Self::REMEMBERED {
            asked.retain(|_, t| now.duration_since(*t) < Self::QUIET);
        }
        asked.insert(mac, now);
        drop(asked);
        self.notify.notify_one();
        true
    }

    /// Resolves when a sync was asked for.
    pub async fn asked(&self) {
        self.notify.notified().await;
    }
}

/// How the Proxmox sync is doing, for logs, `/metrics` and the status page.
#[derive(Debug, Clone, Default)]
pub struct SyncStatus {
    /// When the last sync finished (well or not).
    pub last_attempt: Option<SystemTime>,
    /// When the last sync that reached the guest list finished.
    pub last_success: Option<SystemTime>,
    /// How long the last sync took.
    pub last_duration: Duration,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
    /// Guests whose own calls failed in the last sync (they keep their last known state).
    pub guest_errors: Vec<(u32, String)>,
    /// Syncs that reached the guest list.
    pub ok_total: u64,
    /// Syncs that did not.
    pub failed_total: u64,
    /// Guests in the inventory.
    pub guests: usize,
    /// How long syncs took, for `/metrics`.
    pub durations: crate::http::metrics::DurationHistogram,
}

/// The inputs of `derive()` as of the last change, for read-only views (HTTP API, status
/// page). Published by the state task, which alone owns the live copies.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The inventory in use (the last good one).
    pub inventory: Inventory,
    /// Active DHCP leases.
    pub leases: Vec<Lease>,
    /// Live ARP observations.
    pub neighbors: Vec<Observation>,
}

/// What changes the inputs of `derive()`.
#[derive(Debug)]
pub enum Event {
    /// A new inventory from Proxmox.
    Inventory(Inventory),
    /// The active DHCP leases (from the DHCP server).
    Leases(Vec<Lease>),
    /// The live ARP observations (from the ARP watcher).
    Neighbors(Vec<Observation>),
}

/// A running leazzard: DNS server, sync task, state task.
pub struct Daemon {
    dns: DnsServer,
    arp: Option<ArpWatcher>,
    dhcp: Option<DhcpServer>,
    http: Option<crate::http::HttpServer>,
    /// What DHCP and ARP need of the naming rules' result (known guest MACs, static addresses).
    pub pool: Arc<ArcSwap<PoolView>>,
    /// The inputs of the current zone, for read-only views.
    pub inputs: Arc<ArcSwap<Inputs>>,
    /// ARP counters, when the watcher runs.
    pub arp_stats: Option<Arc<ArpStats>>,
    /// Everything the DNS sockets read (the current zone among it).
    pub dns_shared: Arc<DnsShared>,
    /// The sync's status.
    pub sync_status: Arc<ArcSwap<SyncStatus>>,
    /// Ask for a sync now (debounced). DHCP and ARP use this for a MAC no guest owns.
    pub early_sync: Arc<EarlySync>,
    /// Send events to the state task.
    pub events: mpsc::Sender<Event>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Starts everything `config` asks for. Errors name the setting to fix.
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        let proxmox = config
            .proxmox
            .clone()
            .context("PROXMOX_HOST: not set; expected a form like https://pve1.example:8006")?;
        let client = Arc::new(Client::new(&proxmox)?);
        let data_dir = config.data_dir.clone();
        let cached = {
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || prepare_data_dir(&dir)).await??
        };

        let lab = crate::netif::lab_interface(config.network, config.interface.as_deref());
        if (config.dhcp.is_some() || config.arp.is_some()) && lab.is_none() {
            anyhow::bail!(
                "NETWORK_CIDR: no interface of this host has an address in {}; DHCP and ARP serve on that network (or set DHCP_ENABLED=false and ARP_ENABLED=false for DNS only)",
                config.network
            );
        }
        let self_addr = lab.as_ref().map(|l| l.addr).or(match config.dns.listen {
            SocketAddr::V4(v4) if !v4.ip().is_unspecified() => Some(*v4.ip()),
            _ => None,
        });
        let zone_config = ZoneConfig {
            domain: config.dns.domain.clone(),
            network: config.network,
            self_addr: self_addr.filter(|a| config.network.contains(a)),
            initial_serial: unix_now_u32(),
        };

        let inventory = cached.unwrap_or_default();
        if !inventory.guests.is_empty() {
            tracing::info!(guests = inventory.guests.len(), file = %data_dir.join(INVENTORY_FILE).display(), "serving the cached inventory until the first sync");
        }
        let (zone, pool) = zone::derive(&inventory, &[], &[], &zone_config, None);
        let pool = Arc::new(ArcSwap::from_pointee(pool));
        let inputs = Arc::new(ArcSwap::from_pointee(Inputs {
            inventory: inventory.clone(),
            ..Inputs::default()
        }));
        let ttl = config.dns.ttl;
        let dns_shared = Arc::new(DnsShared {
            authority: ArcSwap::from_pointee(Authority::build(zone.clone(), ttl)),
            forwarder: Forwarder::new(config.dns.upstreams.clone()),
            access: Access {
                network: config.network,
            },
            stats: Default::default(),
        });
        let dns = DnsServer::start(config.dns.listen, dns_shared.clone())
            .await
            .with_context(|| format!("DNS_LISTEN: cannot listen on {}", config.dns.listen))?;

        let (shutdown, _) = watch::channel(false);
        let (events, rx) = mpsc::channel(64);
        let sync_status = Arc::new(ArcSwap::from_pointee(SyncStatus::default()));
        let early_sync = Arc::new(EarlySync::default());
        let state = StateTask {
            inventory,
            leases: Vec::new(),
            neighbors: Vec::new(),
            zone,
            zone_config,
            ttl,
            dns: dns_shared.clone(),
            pool: pool.clone(),
            inputs: inputs.clone(),
        };
        let api_stats = client.stats();
        let sync = SyncTask {
            client,
            interval: config.sync_interval,
            data_dir,
            events: events.clone(),
            status: sync_status.clone(),
            early: early_sync.clone(),
            last_good: state.inventory.clone(),
        };
        let tasks = vec![
            tokio::spawn(state.run(rx, shutdown.subscribe())),
            tokio::spawn(sync.run(shutdown.subscribe())),
        ];
        let arp = match (&config.arp, &lab) {
            (Some(arp), Some(interface)) => {
                let ctx = ArpContext {
                    interface: interface.clone(),
                    network: config.network,
                    interval: arp.check_interval,
                    events: events.clone(),
                    pool: pool.clone(),
                    early_sync: early_sync.clone(),
                };
                match ArpWatcher::start(ctx, shutdown.subscribe()) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "ARP watcher not started (it needs CAP_NET_RAW: docker cap_add NET_RAW); running without it: guests with hand-set addresses get no name");
                        None
                    }
                }
            }
            _ => None,
        };
        let arp_stats = arp.as_ref().map(|a| a.stats.clone());
        let dhcp = match (config.dhcp.clone(), lab) {
            (Some(dhcp), Some(interface)) => {
                let ctx = DhcpContext {
                    interface,
                    network: config.network,
                    domain: config.dns.domain.clone(),
                    config: dhcp,
                    data_dir: config.data_dir.clone(),
                    events: events.clone(),
                    pool: pool.clone(),
                    inputs: inputs.clone(),
                    early_sync: early_sync.clone(),
                    probe: arp
                        .as_ref()
                        .map(|a| a.prober() as Arc<dyn crate::dhcp::Probe>),
                    runtime: tokio::runtime::Handle::current(),
                };
                // Opening the lease store reads and may rewrite a file: off the runtime.
                Some(tokio::task::spawn_blocking(move || DhcpServer::start(ctx)).await??)
            }
            _ => None,
        };
        let dhcp_report = dhcp.as_ref().map(|d| {
            Arc::new(DhcpFigures(d.stats.clone())) as Arc<dyn crate::http::metrics::DhcpReport>
        });
        let mut components = vec![crate::http::Component {
            name: "dns",
            running: true,
            problem: None,
        }];
        if config.dhcp.is_some() {
            components.push(crate::http::Component {
                name: "dhcp",
                running: dhcp.is_some(),
                problem: None,
            });
        }
        if config.arp.is_some() {
            components.push(crate::http::Component {
                name: "arp",
                running: arp.is_some(),
                problem: arp.is_none().then(|| {
                    "The ARP watcher needs CAP_NET_RAW (docker: cap_add NET_RAW): guests with hand-set addresses get no name, and DHCP offers are not probed.".to_string()
                }),
            });
        }
        let http = match config.http_listen {
            Some(listen) => Some(
                crate::http::HttpServer::start(listen, crate::http::Sources { dns: dns_shared.clone(), sync: sync_status.clone(), inputs: inputs.clone(), api: api_stats, arp: arp_stats.clone(), dhcp: dhcp_report, components: components.clone() })
                    .await
                    .with_context(|| format!("HTTP_LISTEN: cannot listen on {listen}; set another address or empty to disable"))?,
            ),
            None => None,
        };
        Ok(Daemon {
            dns,
            arp,
            dhcp,
            http,
            pool,
            inputs,
            arp_stats,
            dns_shared,
            sync_status,
            early_sync,
            events,
            shutdown,
            tasks,
        })
    }

    /// Where the DNS server listens.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.local_addr()
    }

    /// Where the HTTP server listens, if it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.local_addr())
    }

    /// The zone being served now.
    pub fn zone(&self) -> Zone {
        self.dns_shared.authority.load().zone().clone()
    }

    /// Stops every task and the DNS server.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(http) = self.http {
            http.stop().await;
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
        if let Some(dhcp) = self.dhcp {
            dhcp.stop().await;
        }
        if let Some(arp) = self.arp {
            arp.stop().await;
        }
        self.dns.stop().await;
    }
}

/// Runs until SIGTERM or SIGINT, then stops cleanly.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let daemon = Daemon::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    daemon.stop().await;
    Ok(())
}

/// Resolves on SIGTERM (docker stop, systemd) or SIGINT (Ctrl-C).
pub async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

struct StateTask {
    inventory: Inventory,
    leases: Vec<Lease>,
    neighbors: Vec<Observation>,
    zone: Zone,
    zone_config: ZoneConfig,
    ttl: u32,
    dns: Arc<DnsShared>,
    pool: Arc<ArcSwap<PoolView>>,
    inputs: Arc<ArcSwap<Inputs>>,
}

impl StateTask {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let event = tokio::select! {
                e = events.recv() => match e { Some(e) => e, None => return },
                _ = shutdown.changed() => return,
            };
            self.apply(event);
            // Coalesce a burst: everything already queued goes into one derive.
            while let Ok(event) = events.try_recv() {
                self.apply(event);
            }
            self.inputs.store(Arc::new(Inputs {
                inventory: self.inventory.clone(),
                leases: self.leases.clone(),
                neighbors: self.neighbors.clone(),
            }));
            self.publish();
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Inventory(inv) => self.inventory = inv,
            Event::Leases(l) => self.leases = l,
            Event::Neighbors(n) => self.neighbors = n,
        }
    }

    fn publish(&mut self) {
        let (zone, pool) = zone::derive(
            &self.inventory,
            &self.leases,
            &self.neighbors,
            &self.zone_config,
            Some(&self.zone),
        );
        if **self.pool.load() != pool {
            self.pool.store(Arc::new(pool));
        }
        if zone == self.zone {
            return;
        }
        log_changes(&self.zone, &zone);
        self.dns
            .authority
            .store(Arc::new(Authority::build(zone.clone(), self.ttl)));
        tracing::info!(
            serial = zone.serial,
            records = zone.records.len(),
            "zone published"
        );
        self.zone = zone;
    }
}

fn log_changes(old: &Zone, new: &Zone) {
    for r in new.records.iter().filter(|r| !old.records.contains(r)) {
        tracing::info!(name = %r.fqdn, addr = %r.addr, source = %r.source, "record added");
    }
    for r in old.records.iter().filter(|r| !new.records.contains(r)) {
        tracing::info!(name = %r.fqdn, addr = %r.addr, source = %r.source, "record removed");
    }
    for c in new.conflicts.iter().filter(|c| !old.conflicts.contains(c)) {
        tracing::warn!(name = %c.label, winner = ?c.winner, losers = ?c.losers, "name claimed by more than one guest; the others are published as NAME-VMID");
    }
}

struct SyncTask {
    client: Arc<Client>,
    interval: Duration,
    data_dir: PathBuf,
    events: mpsc::Sender<Event>,
    status: Arc<ArcSwap<SyncStatus>>,
    early: Arc<EarlySync>,
    last_good: Inventory,
}

impl SyncTask {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            let ok = tokio::select! {
                ok = self.sync_once() => ok,
                _ = shutdown.changed() => return,
            };
            failures = if ok { 0 } else { failures.saturating_add(1) };
            let wait = if failures == 0 {
                self.interval
            } else {
                RETRY_FIRST
                    .saturating_mul(1 << failures.min(10).saturating_sub(1))
                    .min(self.interval)
            };
            let finished = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.early.asked() => {
                    let floor = EARLY_MIN_GAP.saturating_sub(finished.elapsed());
                    tokio::time::sleep(EARLY_DEBOUNCE.max(floor).min(wait)).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn sync_once(&mut self) -> bool {
        let started = Instant::now();
        let result = proxmox::fetch_inventory(self.client.clone(), &self.last_good).await;
        let mut status = (**self.status.load()).clone();
        status.last_attempt = Some(SystemTime::now());
        status.last_duration = started.elapsed();
        status.durations.observe(status.last_duration);
        let ok = match result {
            Ok(report) => {
                for (vmid, why) in &report.guest_errors {
                    tracing::warn!(vmid, error = %why, "guest not read; keeping its last known state");
                }
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "part of a guest config not understood");
                }
                status.last_success = status.last_attempt;
                status.last_error = None;
                status.ok_total += 1;
                status.guests = report.inventory.guests.len();
                status.guest_errors = report.guest_errors;
                tracing::debug!(
                    guests = status.guests,
                    requests = report.requests,
                    ms = status.last_duration.as_millis() as u64,
                    "sync done"
                );
                if report.inventory != self.last_good {
                    self.last_good = report.inventory.clone();
                    self.save(report.inventory.clone());
                    let _ = self.events.send(Event::Inventory(report.inventory)).await;
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "Proxmox sync failed; serving the last known inventory");
                status.last_error = Some(e.to_string());
                status.failed_total += 1;
                false
            }
        };
        self.status.store(Arc::new(status));
        ok
    }

    /// Writes the inventory cache in the background; a failure costs only the cache.
    fn save(&self, inventory: Inventory) {
        let path = self.data_dir.join(INVENTORY_FILE);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write_atomically(&path, &inventory) {
                tracing::warn!(file = %path.display(), error = %e, "cannot write the inventory cache");
            }
        });
    }
}

/// Creates `DATA_DIR` and reads the cached inventory, if any. A cache that cannot be read is
/// ignored (with a warning): it is only a cache.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<Option<Inventory>> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "DATA_DIR: cannot create {}; set DATA_DIR to a writable directory",
            dir.display()
        )
    })?;
    let path = dir.join(INVENTORY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(inv) => Ok(Some(inv)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "inventory cache unreadable; ignoring it");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "inventory cache unreadable; ignoring it");
            Ok(None)
        }
    }
}

/// Writes `value` as JSON to `path` so that a crash leaves the old file or the new one,
/// never a torn one: temporary file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, value: &Inventory) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(value)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn unix_now_u32() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The loopback address the demo and tests listen on.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The DHCP server's counters as `/metrics` reads them.
#[derive(Debug)]
struct DhcpFigures(Arc<DhcpStats>);

impl crate::http::metrics::DhcpReport for DhcpFigures {
    fn messages(&self) -> Vec<(&'static str, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        const RECEIVED: [&str; 6] = [
            "DISCOVER", "REQUEST", "DECLINE", "RELEASE", "INFORM", "OTHER",
        ];
        const SENT: [&str; 3] = ["OFFER", "ACK", "NAK"];
        debug_assert_eq!(RECEIVED.len(), RECEIVED_TYPES.len());
        debug_assert_eq!(SENT.len(), SENT_TYPES.len());
        let received = RECEIVED.iter().zip(&self.0.received);
        let sent = SENT.iter().zip(&self.0.sent);
        received
            .chain(sent)
            .map(|(name, n)| (*name, n.load(Relaxed)))
            .collect()
    }

    fn pool_size(&self) -> u64 {
        self.0.pool_size.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn pool_free(&self) -> u64 {
        self.0.pool_free.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_mac_asks_once_per_quiet_time() {
        let early = EarlySync::default();
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        assert!(early.unknown_mac(a));
        assert!(!early.unknown_mac(a), "the same MAC again within QUIET");
        assert!(early.unknown_mac(b));
        // The request is waiting for the sync task.
        tokio::time::timeout(Duration::from_millis(100), early.asked())
            .await
            .expect("a sync was asked for");
    }
}
