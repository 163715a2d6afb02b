//! The JSON API (`/api/v1/...`) and the views it shares with the status page: what a script
//! or a person wants to know about each guest, record, lease and device, joined from the
//! inputs of the zone (inventory, leases, ARP) and the published zone itself.
//!
//! Invariants: pure functions of snapshots (no I/O, no state); the shapes here are a public
//! interface, so they are their own types, not the internal ones serialized as they are.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::daemon::{Inputs, SyncStatus};
use crate::inventory::{GuestKind, Ipv4Config, MacAddr};
use crate::zone::{Conflict, Owner, Record, Zone};

/// One published A record (`GET /api/v1/records`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordView {
    /// Fully qualified name, `web1.lab`.
    pub name: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Where the address came from: `static`, `lease`, `arp`, `server`.
    pub source: &'static str,
    /// `guest`, `device` (not in Proxmox) or `server` (leazzard itself).
    pub owner: &'static str,
    /// The guest's VMID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u32>,
    /// The guest's node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `qemu` or `lxc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<GuestKind>,
    /// N of the guest's `netN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nic: Option<u32>,
    /// The MAC the address belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// Whether the reverse (PTR) record for the address names this record.
    pub ptr: bool,
}

/// One NIC of a guest, with the address published for it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicView {
    /// N of `netN`.
    pub index: u32,
    /// Its MAC.
    pub mac: MacAddr,
    /// Its bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// How Proxmox configures its IPv4: `static 198.18.0.20/23`, `dhcp`, `manual`, `unset`.
    pub configured: String,
    /// The published address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Where that address came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// The name published for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When its DHCP lease ends (RFC 3339), when the address comes from a lease that ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<String>,
}

/// One Proxmox guest (`GET /api/v1/guests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestView {
    /// VMID.
    pub vmid: u32,
    /// The Proxmox name as Proxmox has it (not made a DNS label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxmox_name: Option<String>,
    /// Every name published for it (one per NIC with an address; empty if none).
    pub names: Vec<String>,
    /// `qemu` or `lxc`.
    pub kind: GuestKind,
    /// Its node.
    pub node: String,
    /// `running`, `stopped`, `unknown`, ...
    pub status: String,
    /// Templates get no name.
    pub template: bool,
    /// Proxmox tags.
    pub tags: Vec<String>,
    /// Every NIC.
    pub nics: Vec<NicView>,
}

/// One active DHCP lease (`GET /api/v1/leases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseView {
    /// The client's MAC.
    pub mac: MacAddr,
    /// The leased address.
    pub address: Ipv4Addr,
    /// The hostname the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hostname: Option<String>,
    /// The guest owning the MAC, if Proxmox knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u32>,
    /// The name published for the address, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the lease ends (RFC 3339); absent for an infinite lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A device on the network that Proxmox does not know: it has a lease or was seen by ARP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// Its MAC.
    pub mac: MacAddr,
    /// Its address.
    pub address: Ipv4Addr,
    /// `lease` or `arp`.
    pub source: &'static str,
    /// The name published for it (from its DHCP hostname), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A guest whose own calls failed in the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestError {
    /// VMID.
    pub vmid: u32,
    /// Why.
    pub error: String,
}

/// How the Proxmox sync is doing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncView {
    /// When the last sync finished (RFC 3339, UTC).
    pub last_attempt: Option<String>,
    /// When the last sync that read the guest list finished.
    pub last_success: Option<String>,
    /// Seconds since then.
    pub last_success_age_seconds: Option<f64>,
    /// How long the last sync took, seconds.
    pub duration_seconds: f64,
    /// Why the last sync failed, if it did.
    pub error: Option<String>,
    /// Guests not read in the last sync.
    pub guest_errors: Vec<GuestError>,
    /// Syncs that read the guest list.
    pub ok_total: u64,
    /// Syncs that did not.
    pub failed_total: u64,
}

/// Everything on the status page (`GET /api/v1/status`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// Whether the zone holds what Proxmox said (see `/readyz`).
    pub ready: bool,
    /// The lab domain.
    pub domain: String,
    /// The lab network.
    pub network: String,
    /// The SOA serial.
    pub serial: u32,
    /// Published A records.
    pub records: usize,
    /// The sync.
    pub sync: SyncView,
    /// Every guest.
    pub guests: Vec<GuestView>,
    /// Devices outside Proxmox.
    pub devices: Vec<DeviceView>,
    /// Names claimed twice.
    pub conflicts: Vec<Conflict>,
    /// The parts configured, and whether they run.
    pub components: Vec<super::Component>,
}

fn ptr_names(zone: &Zone, record: &Record) -> bool {
    zone.ptr.get(&record.addr) == Some(&record.fqdn)
}

/// Every published record.
pub fn records(zone: &Zone) -> Vec<RecordView> {
    zone.records
        .iter()
        .map(|r| {
            let mut view = RecordView {
                name: r.fqdn.clone(),
                address: r.addr,
                source: r.source.as_str(),
                owner: "server",
                vmid: None,
                node: None,
                kind: None,
                nic: None,
                mac: None,
                ptr: ptr_names(zone, r),
            };
            match &r.owner {
                Owner::Guest {
                    vmid,
                    guest,
                    node,
                    nic,
                    mac,
                } => {
                    view.owner = "guest";
                    view.vmid = Some(*vmid);
                    view.node = Some(node.clone());
                    view.kind = Some(*guest);
                    view.nic = Some(*nic);
                    view.mac = Some(*mac);
                }
                Owner::Device { mac } => {
                    view.owner = "device";
                    view.mac = Some(*mac);
                }
                Owner::Server => {}
            }
            view
        })
        .collect()
}

fn configured(c: &Ipv4Config) -> String {
    match c {
        Ipv4Config::Static(net) => format!("static {net}"),
        Ipv4Config::Dhcp => "dhcp".into(),
        Ipv4Config::Manual => "manual".into(),
        Ipv4Config::Unset => "unset".into(),
    }
}

/// Every guest of the inventory in use, with what was published for each NIC.
pub fn guests(inputs: &Inputs, zone: &Zone) -> Vec<GuestView> {
    let mut by_nic: BTreeMap<(u32, u32), &Record> = BTreeMap::new();
    for r in &zone.records {
        if let Owner::Guest { vmid, nic, .. } = &r.owner {
            by_nic.insert((*vmid, *nic), r);
        }
    }
    inputs
        .inventory
        .guests
        .iter()
        .map(|g| {
            let nics: Vec<NicView> = g
                .nics
                .iter()
                .map(|n| {
                    let record = by_nic.get(&(g.vmid, n.index));
                    NicView {
                        index: n.index,
                        mac: n.mac,
                        bridge: n.bridge.clone(),
                        configured: configured(&n.ipv4),
                        address: record.map(|r| r.addr),
                        source: record.map(|r| r.source.as_str()),
                        name: record.map(|r| r.fqdn.clone()),
                        lease_expires: record
                            .filter(|r| r.source == crate::zone::Source::Lease)
                            .and_then(|r| lease_expiry(inputs, n.mac, r.addr)),
                    }
                })
                .collect();
            let mut names: Vec<String> = nics.iter().filter_map(|n| n.name.clone()).collect();
            names.sort();
            names.dedup();
            GuestView {
                vmid: g.vmid,
                proxmox_name: g.name.clone(),
                names,
                kind: g.kind,
                node: g.node.clone(),
                status: g.status.clone(),
                template: g.template,
                tags: g.tags.clone(),
                nics,
            }
        })
        .collect()
}

/// Every active lease.
pub fn leases(inputs: &Inputs, zone: &Zone) -> Vec<LeaseView> {
    inputs
        .leases
        .iter()
        .map(|l| LeaseView {
            mac: l.mac,
            address: l.addr,
            client_hostname: l.client_hostname.clone(),
            vmid: inputs.inventory.find_mac(l.mac).map(|(g, _)| g.vmid),
            name: zone.ptr.get(&l.addr).cloned(),
            expires: l.expires.map(unix_rfc3339),
        })
        .collect()
}

/// When the lease of `mac` on `addr` ends, as RFC 3339.
fn lease_expiry(inputs: &Inputs, mac: MacAddr, addr: Ipv4Addr) -> Option<String> {
    inputs
        .leases
        .iter()
        .find(|l| l.mac == mac && l.addr == addr)
        .and_then(|l| l.expires)
        .map(unix_rfc3339)
}

fn unix_rfc3339(secs: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Devices Proxmox does not know: leases and ARP observations of MACs no guest owns.
pub fn devices(inputs: &Inputs, zone: &Zone) -> Vec<DeviceView> {
    let named: BTreeMap<MacAddr, &str> = zone
        .records
        .iter()
        .filter_map(|r| match r.owner {
            Owner::Device { mac } => Some((mac, r.fqdn.as_str())),
            _ => None,
        })
        .collect();
    let mut out: BTreeMap<MacAddr, DeviceView> = BTreeMap::new();
    let unknown = |mac: MacAddr| inputs.inventory.find_mac(mac).is_none();
    // ARP first, so a lease (the stronger source) replaces it.
    let seen = inputs
        .neighbors
        .iter()
        .map(|o| (o.mac, o.addr, "arp"))
        .chain(inputs.leases.iter().map(|l| (l.mac, l.addr, "lease")));
    for (mac, address, source) in seen.filter(|(mac, _, _)| unknown(*mac)) {
        out.insert(
            mac,
            DeviceView {
                mac,
                address,
                source,
                name: named.get(&mac).map(|n| n.to_string()),
            },
        );
    }
    out.into_values().collect()
}

/// The sync's status as of `now`.
pub fn sync(status: &SyncStatus, now: SystemTime) -> SyncView {
    SyncView {
        last_attempt: status.last_attempt.map(rfc3339),
        last_success: status.last_success.map(rfc3339),
        last_success_age_seconds: status
            .last_success
            .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64()),
        duration_seconds: status.last_duration.as_secs_f64(),
        error: status.last_error.clone(),
        guest_errors: status
            .guest_errors
            .iter()
            .map(|(vmid, error)| GuestError {
                vmid: *vmid,
                error: error.clone(),
            })
            .collect(),
        ok_total: status.ok_total,
        failed_total: status.failed_total,
    }
}

/// Whether the zone holds what Proxmox said: a sync has read the guest list, or the
/// inventory cached on disk is being served.
pub fn ready(status: &SyncStatus, inputs: &Inputs) -> bool {
    status.last_success.is_some() || !inputs.inventory.guests.is_empty()
}

/// The whole status.
pub fn status(inputs: &Inputs, zone: &Zone, sync_status: &SyncStatus) -> StatusView {
    StatusView {
        ready: ready(sync_status, inputs),
        domain: zone.domain.clone(),
        network: zone.network.to_string(),
        serial: zone.serial,
        records: zone.records.len(),
        sync: sync(sync_status, SystemTime::now()),
        guests: guests(inputs, zone),
        devices: devices(inputs, zone),
        conflicts: zone.conflicts.clone(),
        components: Vec::new(),
    }
}

/// `t` as RFC 3339 in UTC, to the second: `2026-08-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Guest, Inventory, Ipv6Config, Nic};
    use crate::zone::{derive, Lease, Observation, ZoneConfig};

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59Z");
    }

    fn nic(index: u32, mac: &str, ipv4: Ipv4Config) -> Nic {
        Nic {
            index,
            mac: mac.parse().unwrap(),
            bridge: Some("vmbr0".into()),
            vlan: None,
            ipv4,
            gateway4: None,
            ipv6: Ipv6Config::Unset,
            gateway6: None,
            link_down: false,
        }
    }

    #[test]
    fn views_join_inputs_and_zone() {
        let inventory = Inventory {
            guests: vec![Guest {
                vmid: 100,
                kind: GuestKind::Qemu,
                node: "pve1".into(),
                name: Some("Web1".into()),
                status: "running".into(),
                template: false,
                tags: vec![],
                nics: vec![
                    nic(
                        0,
                        "BC:24:11:00:00:01",
                        Ipv4Config::Static("198.18.0.20/23".parse().unwrap()),
                    ),
                    nic(1, "BC:24:11:00:00:02", Ipv4Config::Dhcp),
                    nic(2, "BC:24:11:00:00:03", Ipv4Config::Manual),
                ],
            }],
        };
        let inputs = Inputs {
            inventory,
            leases: vec![
                Lease {
                    mac: "BC:24:11:00:00:02".parse().unwrap(),
                    addr: "198.18.1.5".parse().unwrap(),
                    client_hostname: Some("whatever".into()),
                    expires: Some(1_785_000_000),
                },
                Lease {
                    mac: "02:00:00:00:00:09".parse().unwrap(),
                    addr: "198.18.1.9".parse().unwrap(),
                    client_hostname: Some("printer".into()),
                    expires: None,
                },
            ],
            neighbors: vec![Observation {
                mac: "02:00:00:00:00:0A".parse().unwrap(),
                addr: "198.18.1.10".parse().unwrap(),
            }],
        };
        let config = ZoneConfig {
            domain: "lab".into(),
            network: "198.18.0.0/23".parse().unwrap(),
            self_addr: None,
            initial_serial: 1,
        };
        let (zone, _) = derive(
            &inputs.inventory,
            &inputs.leases,
            &inputs.neighbors,
            &config,
            None,
        );
        let g = &guests(&inputs, &zone)[0];
        assert_eq!(g.proxmox_name.as_deref(), Some("Web1"));
        assert_eq!(g.names, vec!["web1.lab".to_string()]);
        assert_eq!(g.nics[0].source, Some("static"));
        assert_eq!(g.nics[0].configured, "static 198.18.0.20/23");
        assert_eq!(g.nics[1].source, Some("lease"));
        assert_eq!(g.nics[1].address, Some("198.18.1.5".parse().unwrap()));
        assert_eq!(g.nics[2].address, None);
        assert_eq!(g.nics[2].configured, "manual");

        let d = devices(&inputs, &zone);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].name.as_deref(), Some("printer.lab"));
        assert_eq!(d[0].source, "lease");
        assert_eq!(d[1].source, "arp");
        assert_eq!(d[1].name, None);

        let l = leases(&inputs, &zone);
        assert_eq!(l[0].vmid, Some(100));
        assert_eq!(l[1].vmid, None);
        let r = records(&zone);
        assert!(r
            .iter()
            .any(|r| r.name == "printer.lab" && r.owner == "device"));
        assert!(r.iter().all(|r| r.ptr));
    }
}
