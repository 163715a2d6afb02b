//! The inventory: what Proxmox says exists — guests, their NICs, MACs and configured
//! addresses. Plain values shared by `proxmox` (which builds them), `zone` (which names them)
//! and `daemon` (which caches them on disk).
//!
//! Invariants: no I/O here; every type is `Serialize`/`Deserialize` so the last good
//! inventory can be written to `DATA_DIR` and read back after a restart.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit Ethernet MAC address. Displayed upper-case, colon-separated, as Proxmox writes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// A MAC address string was not six hex pairs separated by `:` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex pairs like BC:24:11:2E:6A:01")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The two kinds of Proxmox guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// A QEMU/KVM virtual machine (`/nodes/{node}/qemu/{vmid}`).
    Qemu,
    /// An LXC container (`/nodes/{node}/lxc/{vmid}`).
    Lxc,
}

impl GuestKind {
    /// The path segment Proxmox uses for this kind (`qemu` or `lxc`).
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Qemu => "qemu",
            GuestKind::Lxc => "lxc",
        }
    }
}

/// How a NIC gets its IPv4 address, as Proxmox configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "address")]
pub enum Ipv4Config {
    /// A static address with its prefix (`ip=198.18.0.20/23`).
    Static(Ipv4Net),
    /// `ip=dhcp`: the address comes from a DHCP server (ours, hopefully).
    Dhcp,
    /// `ip=manual` (LXC): set inside the guest; only the wire can tell.
    Manual,
    /// Nothing configured (no cloud-init, no `ip=`): only the wire can tell.
    Unset,
}

/// How a NIC gets its IPv6 address, as Proxmox configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "address")]
pub enum Ipv6Config {
    /// A static address with its prefix (`ip6=fd00::10/64`).
    Static(Ipv6Net),
    /// `ip6=dhcp` (DHCPv6).
    Dhcp,
    /// `ip6=auto` (SLAAC).
    Auto,
    /// `ip6=manual` (LXC).
    Manual,
    /// Nothing configured.
    Unset,
}

/// One network interface of a guest (`netN`), joined with its address configuration
/// (`ipconfigN` for QEMU, the `ip=`/`ip6=` keys of `netN` for LXC, or the cloud-init dump).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// N of `netN`.
    pub index: u32,
    /// The NIC's MAC address (`virtio=MAC`, `macaddr=`, or LXC `hwaddr=`).
    pub mac: MacAddr,
    /// The bridge it is plugged into (`bridge=vmbr0`), if any.
    pub bridge: Option<String>,
    /// The VLAN tag (`tag=20`), if any.
    pub vlan: Option<u16>,
    /// Configured IPv4.
    pub ipv4: Ipv4Config,
    /// Configured IPv4 gateway (`gw=`), if any.
    pub gateway4: Option<Ipv4Addr>,
    /// Configured IPv6.
    pub ipv6: Ipv6Config,
    /// Configured IPv6 gateway (`gw6=`), if any.
    pub gateway6: Option<Ipv6Addr>,
    /// `link_down=1`: the NIC is unplugged.
    pub link_down: bool,
}

/// One Proxmox guest (VM or container), as last known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    /// The guest's VMID, unique in the cluster.
    pub vmid: u32,
    /// QEMU or LXC.
    pub kind: GuestKind,
    /// The node it lives on.
    pub node: String,
    /// The Proxmox name (QEMU `name`, LXC `hostname`), not yet made a DNS label.
    /// `None` when Proxmox has never told us one.
    pub name: Option<String>,
    /// `running`, `stopped`, `unknown` (node down), ...
    pub status: String,
    /// Templates get no DNS records.
    pub template: bool,
    /// Proxmox tags (`tags: "prod;web"` split on `;`).
    pub tags: Vec<String>,
    /// Every NIC, in `netN` order.
    pub nics: Vec<Nic>,
}

/// Everything Proxmox told us, as of one sync (or merged with the last good one for the
/// guests whose own calls failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Guests sorted by VMID.
    pub guests: Vec<Guest>,
}

impl Inventory {
    /// The guest that owns `mac`, with the NIC, if any.
    pub fn find_mac(&self, mac: MacAddr) -> Option<(&Guest, &Nic)> {
        self.guests
            .iter()
            .find_map(|g| g.nics.iter().find(|n| n.mac == mac).map(|n| (g, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_both_cases_and_separators() {
        let a: MacAddr = "bc:24:11:2e:6a:01".parse().unwrap();
        let b: MacAddr = "BC-24-11-2E-6A-01".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "BC:24:11:2E:6A:01");
    }

    #[test]
    fn mac_rejects_bad_forms() {
        for bad in [
            "",
            "bc:24:11:2e:6a",
            "bc:24:11:2e:6a:01:02",
            "bc:24:11:2e:6a:0",
            "zz:24:11:2e:6a:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn inventory_round_trips_through_json() {
        let inv = Inventory {
            guests: vec![Guest {
                vmid: 100,
                kind: GuestKind::Qemu,
                node: "pve1".into(),
                name: Some("web1".into()),
                status: "running".into(),
                template: false,
                tags: vec!["prod".into()],
                nics: vec![Nic {
                    index: 0,
                    mac: "BC:24:11:2E:6A:01".parse().unwrap(),
                    bridge: Some("vmbr0".into()),
                    vlan: None,
                    ipv4: Ipv4Config::Static("198.18.0.20/23".parse().unwrap()),
                    gateway4: None,
                    ipv6: Ipv6Config::Auto,
                    gateway6: None,
                    link_down: false,
                }],
            }],
        };
        let text = serde_json::to_string(&inv).unwrap();
        let back: Inventory = serde_json::from_str(&text).unwrap();
        assert_eq!(inv, back);
    }
}
