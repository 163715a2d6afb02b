//! The naming rules: `derive()` turns what we know (Proxmox inventory, our DHCP leases, ARP
//! observations, configuration) into the `Zone` the DNS server publishes and the `PoolView`
//! the DHCP server allocates from.
//!
//! "Why does `web1.lab` point there?" is answered in this file and nowhere else:
//!
//! 1. A guest's **name** is its Proxmox name (QEMU `name`, LXC `hostname`) made a DNS label
//!    by [`sanitize_label`]; never the hostname its DHCP client sends. Templates get no name.
//! 2. Each guest NIC's **address** comes from the best source that has one inside
//!    `NETWORK_CIDR`: static Proxmox config (`ipconfigN`, LXC `ip=`, cloud-init) first, then
//!    our DHCP lease for the NIC's MAC, then an ARP observation of the MAC. Every NIC counts,
//!    so a guest with two NICs on the lab network has two A records.
//! 3. A name two guests claim goes to one winner: the running guest before a stopped one,
//!    then the lower VMID. The loser is published as `name-VMID` so it stays reachable, and
//!    the conflict is reported.
//! 4. A device Proxmox does not know (a lease whose MAC no guest owns) is published under its
//!    sanitised DHCP client hostname, only where no guest holds that name.
//! 5. Each published address gets one PTR record; where two names share an address, the PTR
//!    goes to the one from the strongest source (static, lease, ARP), then the lower VMID.
//! 6. The SOA serial grows by one whenever the records change, and only then.
//!
//! Invariants: pure — no I/O, no clock, no randomness. The same inputs give the same zone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::inventory::{Guest, GuestKind, Inventory, Ipv4Config, MacAddr};

/// The first label of the name server we publish for our own zones (`leazzard.lab`).
pub const NS_LABEL: &str = "leazzard";

/// An address our DHCP server leased to a MAC, as `derive()` needs it. Only leases that are
/// still active are passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// The leased address.
    pub addr: Ipv4Addr,
    /// The hostname the client sent (option 12 or 81), as sent.
    pub client_hostname: Option<String>,
    /// When it ends, in Unix seconds (`None`: never). Not a naming input: shown to users.
    pub expires: Option<u64>,
}

/// An address seen on the wire for a MAC (ARP). Only observations that have not expired are
/// passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The sender's hardware address.
    pub mac: MacAddr,
    /// The sender's protocol address.
    pub addr: Ipv4Addr,
}

/// What `derive()` needs to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The lab domain, lowercase, without trailing dot (`lab`).
    pub domain: String,
    /// Only addresses inside this network are published.
    pub network: Ipv4Net,
    /// Our own address on the lab network, published as `leazzard.<domain>`, if known.
    pub self_addr: Option<Ipv4Addr>,
    /// The serial of the first zone (the daemon passes the Unix time of its start, so the
    /// serial also grows across restarts).
    pub initial_serial: u32,
}

/// Where a published address came from, strongest first (the order is the precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Proxmox configuration (`ipconfigN`, LXC `ip=`, cloud-init network).
    Static,
    /// Our own DHCP lease.
    Lease,
    /// Seen on the wire (ARP).
    Arp,
    /// Our own address (the name server record).
    Server,
}

impl Source {
    /// The source's name in logs, metrics labels and the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Lease => "lease",
            Source::Arp => "arp",
            Source::Server => "server",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Owner {
    /// A Proxmox guest's NIC.
    Guest {
        /// VMID.
        vmid: u32,
        /// QEMU or LXC.
        guest: GuestKind,
        /// The node it runs on.
        node: String,
        /// N of `netN`.
        nic: u32,
        /// The NIC's MAC.
        mac: MacAddr,
    },
    /// A device Proxmox does not know, named by its DHCP hostname.
    Device {
        /// Its MAC.
        mac: MacAddr,
    },
    /// leazzard itself.
    Server,
}

/// One forward record: `fqdn` has address `addr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Record {
    /// Fully qualified name, lowercase, without trailing dot (`web1.lab`).
    pub fqdn: String,
    /// The address.
    pub addr: Ipv4Addr,
    /// Where the address came from.
    pub source: Source,
    /// Who it belongs to.
    pub owner: Owner,
}

/// A name that more than one guest (or device) wanted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Conflict {
    /// The contested label.
    pub label: String,
    /// VMID of the guest that got the name (`None`: a device got it).
    pub winner: Option<u32>,
    /// VMIDs of the guests that did not, each published as `label-VMID` instead.
    pub losers: Vec<u32>,
}

/// The published zone: every forward record, every PTR, the serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// The lab domain (`lab`).
    pub domain: String,
    /// The lab network; its reverse zones are ours too.
    pub network: Ipv4Net,
    /// SOA serial; grows whenever `records` change.
    pub serial: u32,
    /// Forward records, sorted by name then address.
    pub records: Vec<Record>,
    /// PTR records: address → fully qualified name.
    pub ptr: BTreeMap<Ipv4Addr, String>,
    /// Names claimed twice, with who won.
    pub conflicts: Vec<Conflict>,
}

/// What the DHCP server must respect when it hands out addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolView {
    /// Addresses that Proxmox assigns statically to a guest NIC: never offered to anyone.
    pub excluded: BTreeMap<Ipv4Addr, MacAddr>,
    /// MACs of every known guest NIC (they are "known clients").
    pub guest_macs: BTreeSet<MacAddr>,
}

/// Makes `name` a valid DNS label the way a user would expect:
/// lowercase; a name with dots keeps its first label (`web1.example.com` → `web1`);
/// every run of characters outside `a-z0-9` becomes one `-` (`My_VM 2` → `my-vm-2`);
/// no `-` at either end; at most 63 characters. `None` when nothing is left.
pub fn sanitize_label(name: &str) -> Option<String> {
    let first = name.trim().split('.').find(|l| !l.is_empty())?;
    let mut out = String::with_capacity(first.len());
    for c in first.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The label for a guest: its sanitised Proxmox name, or `vm-VMID` / `ct-VMID` when it has
/// none that survives sanitising (that is how Proxmox itself shows an unnamed guest).
pub fn guest_label(guest: &Guest) -> String {
    guest
        .name
        .as_deref()
        .and_then(sanitize_label)
        .unwrap_or_else(|| match guest.kind {
            GuestKind::Qemu => format!("vm-{}", guest.vmid),
            GuestKind::Lxc => format!("ct-{}", guest.vmid),
        })
}

/// One NIC's published address before names are settled.
struct Candidate<'a> {
    guest: &'a Guest,
    nic: u32,
    mac: MacAddr,
    addr: Ipv4Addr,
    source: Source,
}

/// Applies the naming rules (see the module docs) to the inputs. `previous` is the zone
/// published before, whose serial this one continues.
pub fn derive(
    inventory: &Inventory,
    leases: &[Lease],
    neighbors: &[Observation],
    config: &ZoneConfig,
    previous: Option<&Zone>,
) -> (Zone, PoolView) {
    let inside = |a: &Ipv4Addr| config.network.contains(a);
    let lease_of: BTreeMap<MacAddr, Ipv4Addr> = leases
        .iter()
        .filter(|l| inside(&l.addr))
        .map(|l| (l.mac, l.addr))
        .collect();
    let seen_at: BTreeMap<MacAddr, Ipv4Addr> = neighbors
        .iter()
        .filter(|o| inside(&o.addr))
        .map(|o| (o.mac, o.addr))
        .collect();

    let mut pool = PoolView::default();
    for guest in &inventory.guests {
        for nic in &guest.nics {
            pool.guest_macs.insert(nic.mac);
            if let Ipv4Config::Static(net) = nic.ipv4 {
                if inside(&net.addr()) {
                    pool.excluded.insert(net.addr(), nic.mac);
                }
            }
        }
    }

    // Each guest's published addresses, keyed by the guest's wanted label.
    let mut wanted: BTreeMap<String, Vec<(&Guest, Vec<Candidate>)>> = BTreeMap::new();
    for guest in inventory.guests.iter().filter(|g| !g.template) {
        let candidates: Vec<Candidate> = guest
            .nics
            .iter()
            .filter_map(|nic| {
                let configured = match nic.ipv4 {
                    Ipv4Config::Static(net) => Some(net.addr()).filter(inside),
                    _ => None,
                };
                let (addr, source) = configured
                    .map(|a| (a, Source::Static))
                    .or_else(|| lease_of.get(&nic.mac).map(|a| (*a, Source::Lease)))
                    .or_else(|| seen_at.get(&nic.mac).map(|a| (*a, Source::Arp)))?;
                Some(Candidate {
                    guest,
                    nic: nic.index,
                    mac: nic.mac,
                    addr,
                    source,
                })
            })
            .collect();
        if !candidates.is_empty() {
            wanted
                .entry(guest_label(guest))
                .or_default()
                .push((guest, candidates));
        }
    }

    let mut records = Vec::new();
    let mut conflicts = Vec::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut deferred = Vec::new();
    for (label, mut claimants) in wanted {
        // Running before stopped, then lower VMID: stable, and what a user would pick.
        claimants.sort_by_key(|(g, _)| (g.status != "running", g.vmid));
        let mut claimants = claimants.into_iter();
        let Some((winner, cands)) = claimants.next() else {
            continue;
        };
        let losers: Vec<_> = claimants.collect();
        if !losers.is_empty() {
            conflicts.push(Conflict {
                label: label.clone(),
                winner: Some(winner.vmid),
                losers: losers.iter().map(|(g, _)| g.vmid).collect(),
            });
        }
        push_guest_records(&mut records, &label, &config.domain, cands);
        taken.insert(label);
        deferred.extend(losers);
    }
    for (guest, cands) in deferred {
        let label = format!("{}-{}", guest_label(guest), guest.vmid);
        if taken.insert(label.clone()) {
            push_guest_records(&mut records, &label, &config.domain, cands);
        }
    }

    if let Some(addr) = config.self_addr.filter(inside) {
        if taken.insert(NS_LABEL.to_string()) {
            records.push(Record {
                fqdn: format!("{NS_LABEL}.{}", config.domain),
                addr,
                source: Source::Server,
                owner: Owner::Server,
            });
        }
    }

    // Devices Proxmox does not know, by their DHCP hostname, where no guest holds the name.
    let mut devices: BTreeMap<String, Vec<&Lease>> = BTreeMap::new();
    for lease in leases.iter().filter(|l| inside(&l.addr)) {
        if pool.guest_macs.contains(&lease.mac) {
            continue;
        }
        if let Some(label) = lease.client_hostname.as_deref().and_then(sanitize_label) {
            devices.entry(label).or_default().push(lease);
        }
    }
    for (label, mut claimants) in devices {
        if taken.contains(&label) {
            continue;
        }
        claimants.sort_by_key(|l| l.mac);
        let lease = claimants[0];
        if claimants.len() > 1 {
            conflicts.push(Conflict {
                label: label.clone(),
                winner: None,
                losers: Vec::new(),
            });
        }
        records.push(Record {
            fqdn: format!("{label}.{}", config.domain),
            addr: lease.addr,
            source: Source::Lease,
            owner: Owner::Device { mac: lease.mac },
        });
        taken.insert(label);
    }

    records.sort();
    records.dedup_by(|a, b| a.fqdn == b.fqdn && a.addr == b.addr);

    let mut ptr: BTreeMap<Ipv4Addr, (Source, u32, String)> = BTreeMap::new();
    for r in &records {
        let vmid = match r.owner {
            Owner::Guest { vmid, .. } => vmid,
            _ => u32::MAX,
        };
        let key = (r.source, vmid, r.fqdn.clone());
        ptr.entry(r.addr)
            .and_modify(|best| {
                if key < *best {
                    *best = key.clone();
                }
            })
            .or_insert(key);
    }
    let ptr: BTreeMap<Ipv4Addr, String> = ptr.into_iter().map(|(a, (_, _, n))| (a, n)).collect();

    let serial = match previous {
        None => config.initial_serial,
        Some(prev) if prev.records == records && prev.ptr == ptr => prev.serial,
        Some(prev) => prev.serial.wrapping_add(1).max(1),
    };
    let zone = Zone {
        domain: config.domain.clone(),
        network: config.network,
        serial,
        records,
        ptr,
        conflicts,
    };
    (zone, pool)
}

fn push_guest_records(records: &mut Vec<Record>, label: &str, domain: &str, cands: Vec<Candidate>) {
    for c in cands {
        records.push(Record {
            fqdn: format!("{label}.{domain}"),
            addr: c.addr,
            source: c.source,
            owner: Owner::Guest {
                vmid: c.guest.vmid,
                guest: c.guest.kind,
                node: c.guest.node.clone(),
                nic: c.nic,
                mac: c.mac,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Ipv6Config, Nic};

    fn mac(last: u8) -> MacAddr {
        MacAddr([0xBC, 0x24, 0x11, 0, 0, last])
    }

    fn nic(index: u32, last: u8, ipv4: Ipv4Config) -> Nic {
        Nic {
            index,
            mac: mac(last),
            bridge: Some("vmbr0".into()),
            vlan: None,
            ipv4,
            gateway4: None,
            ipv6: Ipv6Config::Unset,
            gateway6: None,
            link_down: false,
        }
    }

    fn st(a: &str) -> Ipv4Config {
        Ipv4Config::Static(a.parse().unwrap())
    }

    fn guest(vmid: u32, name: &str, nics: Vec<Nic>) -> Guest {
        Guest {
            vmid,
            kind: GuestKind::Qemu,
            node: "pve1".into(),
            name: Some(name.into()),
            status: "running".into(),
            template: false,
            tags: vec![],
            nics,
        }
    }

    fn cfg() -> ZoneConfig {
        ZoneConfig {
            domain: "lab".into(),
            network: "198.18.0.0/23".parse().unwrap(),
            self_addr: None,
            initial_serial: 1000,
        }
    }

    fn run(guests: Vec<Guest>, leases: &[Lease], seen: &[Observation]) -> Zone {
        derive(&Inventory { guests }, leases, seen, &cfg(), None).0
    }

    fn names(z: &Zone) -> Vec<(String, String, Source)> {
        z.records
            .iter()
            .map(|r| (r.fqdn.clone(), r.addr.to_string(), r.source))
            .collect()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn sanitize_labels_like_a_user_expects() {
        for (input, want) in [
            ("web1", Some("web1")),
            ("Web1", Some("web1")),
            ("my_vm 2", Some("my-vm-2")),
            ("web1.example.com", Some("web1")),
            ("--edge--", Some("edge")),
            ("a__b", Some("a-b")),
            ("café", Some("caf")),
            ("___", None),
            ("", None),
            (".lab", Some("lab")),
        ] {
            assert_eq!(sanitize_label(input).as_deref(), want, "{input:?}");
        }
        let long = "x".repeat(80);
        assert_eq!(sanitize_label(&long).unwrap().len(), 63);
        let edge = format!("{}-y", "x".repeat(62));
        assert_eq!(sanitize_label(&edge).unwrap(), "x".repeat(62));
    }

    #[test]
    fn static_address_gives_a_record_and_ptr() {
        let z = run(
            vec![guest(100, "web1", vec![nic(0, 1, st("198.18.0.20/23"))])],
            &[],
            &[],
        );
        assert_eq!(
            names(&z),
            vec![("web1.lab".into(), "198.18.0.20".into(), Source::Static)]
        );
        assert_eq!(
            z.ptr.get(&ip("198.18.0.20")).map(String::as_str),
            Some("web1.lab")
        );
        assert_eq!(z.serial, 1000);
    }

    #[test]
    fn addresses_outside_the_network_are_not_published() {
        let z = run(
            vec![guest(
                200,
                "ct-dns",
                vec![
                    nic(0, 1, st("198.18.0.10/23")),
                    nic(1, 2, st("172.30.5.10/24")),
                ],
            )],
            &[],
            &[],
        );
        assert_eq!(
            names(&z),
            vec![("ct-dns.lab".into(), "198.18.0.10".into(), Source::Static)]
        );
        assert!(!z.ptr.contains_key(&ip("172.30.5.10")));
    }

    #[test]
    fn every_nic_in_the_network_counts() {
        let z = run(
            vec![guest(
                100,
                "multi",
                vec![
                    nic(0, 1, st("198.18.0.20/23")),
                    nic(1, 2, st("198.18.1.20/23")),
                ],
            )],
            &[],
            &[],
        );
        assert_eq!(z.records.len(), 2);
        assert_eq!(z.ptr.len(), 2);
    }

    #[test]
    fn precedence_static_then_lease_then_arp() {
        let leases = [
            Lease {
                mac: mac(1),
                addr: ip("198.18.0.101"),
                client_hostname: None,
                expires: None,
            },
            Lease {
                mac: mac(2),
                addr: ip("198.18.0.102"),
                client_hostname: Some("ubuntu".into()),
                expires: None,
            },
        ];
        let seen = [
            Observation {
                mac: mac(1),
                addr: ip("198.18.0.201"),
            },
            Observation {
                mac: mac(2),
                addr: ip("198.18.0.202"),
            },
            Observation {
                mac: mac(3),
                addr: ip("198.18.0.203"),
            },
        ];
        let z = run(
            vec![
                guest(100, "a", vec![nic(0, 1, st("198.18.0.20/23"))]),
                guest(101, "b", vec![nic(0, 2, Ipv4Config::Dhcp)]),
                guest(102, "c", vec![nic(0, 3, Ipv4Config::Unset)]),
            ],
            &leases,
            &seen,
        );
        assert_eq!(
            names(&z),
            vec![
                ("a.lab".into(), "198.18.0.20".into(), Source::Static),
                ("b.lab".into(), "198.18.0.102".into(), Source::Lease),
                ("c.lab".into(), "198.18.0.203".into(), Source::Arp),
            ]
        );
    }

    #[test]
    fn static_outside_network_falls_back_to_lease() {
        let leases = [Lease {
            mac: mac(1),
            addr: ip("198.18.0.101"),
            client_hostname: None,
            expires: None,
        }];
        let z = run(
            vec![guest(100, "a", vec![nic(0, 1, st("10.9.0.5/24"))])],
            &leases,
            &[],
        );
        assert_eq!(
            names(&z),
            vec![("a.lab".into(), "198.18.0.101".into(), Source::Lease)]
        );
    }

    #[test]
    fn proxmox_name_wins_over_dhcp_hostname() {
        let leases = [Lease {
            mac: mac(2),
            addr: ip("198.18.0.102"),
            client_hostname: Some("localhost".into()),
            expires: None,
        }];
        let z = run(
            vec![guest(102, "dyn-vm", vec![nic(0, 2, Ipv4Config::Dhcp)])],
            &leases,
            &[],
        );
        assert_eq!(
            names(&z),
            vec![("dyn-vm.lab".into(), "198.18.0.102".into(), Source::Lease)]
        );
    }

    #[test]
    fn templates_get_no_record() {
        let mut t = guest(9000, "tmpl", vec![nic(0, 9, st("198.18.0.90/23"))]);
        t.template = true;
        let z = run(vec![t], &[], &[]);
        assert!(z.records.is_empty());
    }

    #[test]
    fn duplicate_names_have_one_deterministic_winner() {
        let mut stopped = guest(100, "Web1", vec![nic(0, 1, st("198.18.0.20/23"))]);
        stopped.status = "stopped".into();
        let running = guest(105, "web1", vec![nic(0, 2, st("198.18.0.25/23"))]);
        let a = run(vec![stopped.clone(), running.clone()], &[], &[]);
        let b = run(vec![running, stopped], &[], &[]);
        assert_eq!(a, b, "order of the inventory must not matter");
        assert_eq!(
            names(&a),
            vec![
                ("web1-100.lab".into(), "198.18.0.20".into(), Source::Static),
                ("web1.lab".into(), "198.18.0.25".into(), Source::Static),
            ]
        );
        assert_eq!(
            a.conflicts,
            vec![Conflict {
                label: "web1".into(),
                winner: Some(105),
                losers: vec![100]
            }]
        );
    }

    #[test]
    fn same_status_lower_vmid_wins() {
        let z = run(
            vec![
                guest(300, "dup", vec![nic(0, 3, st("198.18.0.30/23"))]),
                guest(200, "DUP", vec![nic(0, 2, st("198.18.0.29/23"))]),
            ],
            &[],
            &[],
        );
        assert_eq!(
            z.records.iter().find(|r| r.fqdn == "dup.lab").unwrap().addr,
            ip("198.18.0.29")
        );
        assert_eq!(z.conflicts[0].winner, Some(200));
    }

    #[test]
    fn unnamed_guest_is_vm_or_ct_vmid() {
        let mut g = guest(42, "", vec![nic(0, 1, st("198.18.0.42/23"))]);
        g.name = None;
        let mut c = g.clone();
        c.kind = GuestKind::Lxc;
        c.vmid = 43;
        c.nics[0] = nic(0, 2, st("198.18.0.43/23"));
        let z = run(vec![g, c], &[], &[]);
        let n: Vec<_> = z.records.iter().map(|r| r.fqdn.as_str()).collect();
        assert_eq!(n, vec!["ct-43.lab", "vm-42.lab"]);
    }

    #[test]
    fn unknown_device_named_by_hostname_unless_a_guest_has_it() {
        let leases = [
            Lease {
                mac: mac(50),
                addr: ip("198.18.0.150"),
                client_hostname: Some("Printer_1".into()),
                expires: None,
            },
            Lease {
                mac: mac(51),
                addr: ip("198.18.0.151"),
                client_hostname: Some("web1".into()),
                expires: None,
            },
            Lease {
                mac: mac(52),
                addr: ip("198.18.0.152"),
                client_hostname: None,
                expires: None,
            },
        ];
        let z = run(
            vec![guest(100, "web1", vec![nic(0, 1, st("198.18.0.20/23"))])],
            &leases,
            &[],
        );
        assert_eq!(
            names(&z),
            vec![
                ("printer-1.lab".into(), "198.18.0.150".into(), Source::Lease),
                ("web1.lab".into(), "198.18.0.20".into(), Source::Static),
            ]
        );
    }

    #[test]
    fn arp_of_unknown_mac_names_nothing() {
        let seen = [Observation {
            mac: mac(77),
            addr: ip("198.18.0.77"),
        }];
        assert!(run(vec![], &[], &seen).records.is_empty());
    }

    #[test]
    fn shared_address_ptr_goes_to_strongest_source() {
        let leases = [Lease {
            mac: mac(2),
            addr: ip("198.18.0.20"),
            client_hostname: None,
            expires: None,
        }];
        let z = run(
            vec![
                guest(101, "leased", vec![nic(0, 2, Ipv4Config::Dhcp)]),
                guest(150, "fixed", vec![nic(0, 1, st("198.18.0.20/23"))]),
            ],
            &leases,
            &[],
        );
        assert_eq!(
            z.ptr.get(&ip("198.18.0.20")).map(String::as_str),
            Some("fixed.lab")
        );
    }

    #[test]
    fn serial_grows_only_on_change() {
        let inv = Inventory {
            guests: vec![guest(100, "web1", vec![nic(0, 1, st("198.18.0.20/23"))])],
        };
        let (z1, _) = derive(&inv, &[], &[], &cfg(), None);
        let (z2, _) = derive(&inv, &[], &[], &cfg(), Some(&z1));
        assert_eq!(z2.serial, z1.serial);
        let mut renamed = inv.clone();
        renamed.guests[0].name = Some("web2".into());
        let (z3, _) = derive(&renamed, &[], &[], &cfg(), Some(&z2));
        assert_eq!(z3.serial, z1.serial + 1);
        assert_eq!(z3.records[0].fqdn, "web2.lab");
    }

    #[test]
    fn pool_view_excludes_static_addresses_and_knows_guest_macs() {
        let inv = Inventory {
            guests: vec![guest(
                100,
                "web1",
                vec![
                    nic(0, 1, st("198.18.0.20/23")),
                    nic(1, 2, Ipv4Config::Dhcp),
                    nic(2, 3, st("10.0.0.1/8")),
                ],
            )],
        };
        let (_, pool) = derive(&inv, &[], &[], &cfg(), None);
        assert_eq!(
            pool.excluded.keys().copied().collect::<Vec<_>>(),
            vec![ip("198.18.0.20")]
        );
        assert_eq!(pool.guest_macs.len(), 3);
    }

    #[test]
    fn server_record_when_self_address_known() {
        let mut c = cfg();
        c.self_addr = Some(ip("198.18.0.2"));
        let (z, _) = derive(&Inventory::default(), &[], &[], &c, None);
        assert_eq!(z.records[0].fqdn, "leazzard.lab");
        assert_eq!(
            z.ptr.get(&ip("198.18.0.2")).map(String::as_str),
            Some("leazzard.lab")
        );
    }
}
