//! `/metrics`: the Prometheus text exposition format (version 0.0.4), encoded by
//! `prometheus-client` from a registry built afresh for each scrape out of the snapshots in
//! [`Sources`]. Units are in the names (`_seconds`), counters end in `_total`.
//!
//! Invariants: no state of its own — every value is read from a snapshot or a counter owned
//! elsewhere at scrape time; label values are bounded (record names follow the zone, API
//! endpoints are templates, DNS types and codes are fixed lists); the token secret is never a
//! label or a value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::Sources;
use crate::zone::Owner;

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the sync duration histogram's buckets: a small cluster syncs in
/// tens of milliseconds, a large or struggling one in seconds; a guest call gives up at 15 s.
pub const SYNC_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How long syncs took, as a histogram: a plain value the sync task updates in its
/// `SyncStatus` and `/metrics` reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationHistogram {
    /// Observations per bucket of [`SYNC_BUCKETS`] (not cumulative); the last slot is `+Inf`.
    pub buckets: [u64; SYNC_BUCKETS.len() + 1],
    /// Sum of all observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl DurationHistogram {
    /// Adds one observation.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = SYNC_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(SYNC_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += secs;
        self.count += 1;
    }
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = SYNC_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.buckets.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// What the DHCP server reports for `/metrics`. The DHCP server implements it and the daemon
/// hands it to [`Sources::dhcp`]; without it the DHCP series are left out.
pub trait DhcpReport: Send + Sync + std::fmt::Debug {
    /// DHCP messages handled since start, by message type (`DISCOVER`, `REQUEST`, `OFFER`,
    /// `ACK`, `NAK`, `RELEASE`, `DECLINE`, `INFORM`).
    fn messages(&self) -> Vec<(&'static str, u64)>;
    /// Addresses in the dynamic range.
    fn pool_size(&self) -> u64;
    /// Addresses of the range neither leased nor excluded.
    fn pool_free(&self) -> u64;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    name: String,
    address: String,
    source: String,
    vmid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DnsLabels {
    r#type: String,
    rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn gauge_f64(value: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(value);
    g
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The whole exposition, as of now.
pub fn render(sources: &Sources) -> String {
    let registry = registry(sources, SystemTime::now());
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a metric type.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::warn!(error = %e, "cannot encode /metrics");
    }
    out
}

fn registry(sources: &Sources, now: SystemTime) -> Registry {
    let mut r = Registry::with_prefix("leazzard");
    let version = Family::<VersionLabel, Gauge>::default();
    version
        .get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
    r.register("build_info", "leazzard's version (always 1)", version);
    let up = Family::<ComponentLabel, Gauge>::default();
    for c in &sources.components {
        up.get_or_create(&ComponentLabel {
            component: c.name.to_string(),
        })
        .set(i64::from(c.running));
    }
    r.register(
        "component_up",
        "Whether a configured part runs (1) or not (0: ARP without CAP_NET_RAW, say)",
        up,
    );

    // The zone.
    let authority = sources.dns.authority.load();
    let zone = authority.zone();
    let info = Family::<RecordLabels, Gauge>::default();
    let by_source = Family::<SourceLabel, Gauge>::default();
    for record in &zone.records {
        let vmid = match &record.owner {
            Owner::Guest { vmid, .. } => vmid.to_string(),
            _ => String::new(),
        };
        let source = record.source.as_str();
        info.get_or_create(&RecordLabels {
            name: record.fqdn.clone(),
            address: record.addr.to_string(),
            source: source.to_string(),
            vmid,
        })
        .set(1);
        by_source
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .inc();
    }
    for source in ["static", "lease", "arp", "server"] {
        // Every source has a series, zero or not, so a query need not guess.
        let _ = by_source.get_or_create(&SourceLabel {
            source: source.to_string(),
        });
    }
    r.register(
        "record_info",
        "One series per published A record (always 1): name, address, source (static, lease, arp, server), vmid (empty for non-guests)",
        info,
    );
    r.register(
        "records",
        "Published A records by where the address came from",
        by_source,
    );
    r.register(
        "ptr_records",
        "Published PTR records",
        gauge(count(zone.ptr.len())),
    );
    r.register(
        "conflicts",
        "Names claimed by more than one guest",
        gauge(count(zone.conflicts.len())),
    );
    r.register(
        "zone_serial",
        "SOA serial of the published zone",
        gauge(i64::from(zone.serial)),
    );
    let inputs = sources.inputs.load();
    r.register(
        "guests",
        "Guests in the inventory in use",
        gauge(count(inputs.inventory.guests.len())),
    );

    // DHCP, when it runs.
    if let Some(dhcp) = &sources.dhcp {
        let messages = Family::<TypeLabel, Counter>::default();
        for (kind, n) in dhcp.messages() {
            messages
                .get_or_create(&TypeLabel {
                    r#type: kind.to_string(),
                })
                .inc_by(n);
        }
        r.register("dhcp_messages", "DHCP messages handled, by type", messages);
        r.register(
            "dhcp_pool_addresses",
            "Addresses in the DHCP range",
            gauge(i64::try_from(dhcp.pool_size()).unwrap_or(i64::MAX)),
        );
        r.register(
            "dhcp_pool_free_addresses",
            "Addresses in the DHCP range neither leased nor excluded",
            gauge(i64::try_from(dhcp.pool_free()).unwrap_or(i64::MAX)),
        );
    }
    r.register(
        "dhcp_leases",
        "Active DHCP leases",
        gauge(count(inputs.leases.len())),
    );

    // DNS.
    let stats = &sources.dns.stats;
    let queries = Family::<DnsLabels, Counter>::default();
    for (qtype, rcode, n) in stats.queries.snapshot() {
        queries
            .get_or_create(&DnsLabels {
                r#type: qtype.to_string(),
                rcode: rcode.to_string(),
            })
            .inc_by(n);
    }
    r.register(
        "dns_queries",
        "DNS queries by type and response code (dropped: not answered)",
        queries,
    );
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    r.register(
        "dns_forwarded",
        "Queries forwarded upstream (names outside our zones)",
        counter(load(&stats.forwarded)),
    );
    r.register(
        "dns_forward_cache_hits",
        "Forwarded queries answered from the cache",
        counter(load(&stats.cache_hits)),
    );
    r.register(
        "dns_forward_errors",
        "Forwarded queries that failed upstream (SERVFAIL sent)",
        counter(load(&stats.forward_errors)),
    );
    r.register(
        "dns_malformed_queries",
        "Queries that could not be parsed",
        counter(load(&stats.malformed)),
    );

    // The Proxmox sync and API.
    let sync = sources.sync.load();
    r.register_with_unit(
        "sync_duration",
        "How long Proxmox syncs took",
        Unit::Seconds,
        sync.durations.clone(),
    );
    let results = Family::<ResultLabel, Counter>::default();
    results
        .get_or_create(&ResultLabel {
            result: "ok".into(),
        })
        .inc_by(sync.ok_total);
    results
        .get_or_create(&ResultLabel {
            result: "failed".into(),
        })
        .inc_by(sync.failed_total);
    r.register(
        "syncs",
        "Proxmox syncs by result (failed: the guest list could not be read)",
        results,
    );
    r.register(
        "sync_guest_errors",
        "Guests whose own API calls failed in the last sync (they keep their last known state)",
        gauge(count(sync.guest_errors.len())),
    );
    if let Some(last) = sync.last_success {
        let age = now.duration_since(last).unwrap_or_default();
        r.register_with_unit(
            "sync_last_success_age",
            "Time since the last sync that read the guest list",
            Unit::Seconds,
            gauge_f64(age.as_secs_f64()),
        );
        let at = last
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        r.register_with_unit(
            "sync_last_success_timestamp",
            "Unix time of the last sync that read the guest list",
            Unit::Seconds,
            gauge_f64(at.as_secs_f64()),
        );
    }
    let requests = Family::<ApiLabels, Counter>::default();
    let errors = Family::<ApiLabels, Counter>::default();
    for (endpoint, outcome, n) in sources.api.snapshot() {
        let labels = ApiLabels {
            endpoint,
            status: outcome.label(),
        };
        if outcome.is_error() {
            errors.get_or_create(&labels).inc_by(n);
        }
        requests.get_or_create(&labels).inc_by(n);
    }
    r.register(
        "proxmox_api_requests",
        "Requests to the Proxmox API by endpoint and HTTP status (none: no answer)",
        requests,
    );
    r.register(
        "proxmox_api_errors",
        "Proxmox API requests that did not succeed (not 2xx, or no answer), by endpoint and status",
        errors,
    );

    // ARP.
    r.register(
        "arp_neighbors",
        "Live ARP observations (MAC, address) inside the network",
        gauge(count(inputs.neighbors.len())),
    );
    if let Some(arp) = &sources.arp {
        r.register(
            "arp_sightings",
            "ARP packets seen that told a (MAC, address) inside the network",
            counter(load(&arp.sightings)),
        );
        r.register(
            "arp_requests_sent",
            "ARP requests sent by sweeps",
            counter(load(&arp.requests_sent)),
        );
        r.register(
            "arp_sweeps",
            "Completed ARP sweeps",
            counter(load(&arp.sweeps)),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use crate::arp::ArpStats;
    use crate::dns::{Access, Authority, DnsShared, Forwarder};
    use crate::zone::Zone;

    #[derive(Debug)]
    struct FakeDhcp;

    impl DhcpReport for FakeDhcp {
        fn messages(&self) -> Vec<(&'static str, u64)> {
            vec![("DISCOVER", 3), ("ACK", 2)]
        }
        fn pool_size(&self) -> u64 {
            254
        }
        fn pool_free(&self) -> u64 {
            250
        }
    }

    fn sources(arp: Option<Arc<ArpStats>>, dhcp: Option<Arc<dyn DhcpReport>>) -> Sources {
        let zone = Zone {
            domain: "lab".into(),
            network: "198.18.0.0/23".parse().unwrap(),
            serial: 42,
            records: vec![],
            ptr: Default::default(),
            conflicts: vec![],
        };
        Sources {
            dns: Arc::new(DnsShared {
                authority: ArcSwap::from_pointee(Authority::build(zone, 30)),
                forwarder: Forwarder::new(vec![]),
                access: Access {
                    network: "198.18.0.0/23".parse().unwrap(),
                },
                stats: Default::default(),
            }),
            sync: Default::default(),
            inputs: Default::default(),
            components: vec![crate::http::Component {
                name: "arp",
                running: false,
                problem: Some("needs CAP_NET_RAW".into()),
            }],
            api: Default::default(),
            arp,
            dhcp,
        }
    }

    #[test]
    fn arp_and_dhcp_series_appear_when_they_run() {
        let without = render(&sources(None, None));
        assert!(!without.contains("leazzard_arp_sightings_total"));
        assert!(!without.contains("leazzard_dhcp_messages_total"));
        assert!(without.contains("leazzard_zone_serial 42\n"));
        // Before the first good sync there is no age to tell.
        assert!(!without.contains("leazzard_sync_last_success_age_seconds"));

        let arp = Arc::new(ArpStats::default());
        arp.sightings.store(5, Ordering::Relaxed);
        arp.sweeps.store(2, Ordering::Relaxed);
        let text = render(&sources(Some(arp), Some(Arc::new(FakeDhcp))));
        for line in [
            "leazzard_arp_sightings_total 5",
            "leazzard_arp_sweeps_total 2",
            "leazzard_arp_requests_sent_total 0",
            "leazzard_dhcp_messages_total{type=\"DISCOVER\"} 3",
            "leazzard_dhcp_messages_total{type=\"ACK\"} 2",
            "leazzard_dhcp_pool_addresses 254",
            "leazzard_dhcp_pool_free_addresses 250",
            "# TYPE leazzard_dhcp_messages_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let mut h = DurationHistogram::default();
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(51));
        h.observe(Duration::from_secs(120));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[SYNC_BUCKETS.len()], 1);
        assert_eq!(h.count, 3);
        assert!((h.sum - 120.101).abs() < 1e-9);
    }
}
