//! The lease as the DHCP module keeps it: who holds which address until when. Shared by
//! the pool (which decides), the store (which makes it durable) and the protocol (which
//! turns it into replies).
//!
//! Invariants: plain values, no I/O. Times are absolute Unix seconds, so a lease read back
//! after a restart means the same thing; [`INFINITE`] stands for "never expires".

use std::net::Ipv4Addr;

use crate::inventory::MacAddr;

/// The expiry of a lease that never expires (dnsmasq's `infinite`, 0xffffffff on the wire).
pub const INFINITE: u64 = u64::MAX;

/// Who a client is, for binding purposes (RFC 2131 §4.2): its client identifier
/// (option 61) when it sends one, else its hardware address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// The bytes of option 61, type byte included.
    Id(Box<[u8]>),
    /// The Ethernet `chaddr` of a client that sent no option 61.
    Hw(MacAddr),
}

impl ClientKey {
    /// The key of a client that sent `client_id` (if any) from `mac`.
    pub fn new(client_id: Option<&[u8]>, mac: MacAddr) -> ClientKey {
        match client_id {
            Some(id) if !id.is_empty() => ClientKey::Id(id.into()),
            _ => ClientKey::Hw(mac),
        }
    }
}

/// One address bound to one client: the unit the pool hands out and the store keeps.
/// A record whose `expiry` has passed is history: it still tells which client had the
/// address last, so that client gets it back first (sticky addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The leased address.
    pub addr: Ipv4Addr,
    /// The client's hardware address (`chaddr`).
    pub mac: MacAddr,
    /// Option 61 as the client sent it, if it did.
    pub client_id: Option<Vec<u8>>,
    /// Absolute expiry in Unix seconds; [`INFINITE`] for a lease that never expires.
    pub expiry: u64,
    /// The hostname the client sent (option 81, else 12), for naming a non-guest device.
    pub hostname: Option<String>,
}

impl LeaseRecord {
    /// The client this lease is bound to.
    pub fn key(&self) -> ClientKey {
        ClientKey::new(self.client_id.as_deref(), self.mac)
    }

    /// The lease as the naming rules and the status page see it.
    pub fn to_zone_lease(&self) -> crate::zone::Lease {
        crate::zone::Lease {
            mac: self.mac,
            addr: self.addr,
            client_hostname: self.hostname.clone(),
            expires: (self.expiry != INFINITE).then_some(self.expiry),
        }
    }

    /// Whether the lease still runs at `now` (Unix seconds).
    pub fn is_active(&self, now: u64) -> bool {
        self.expiry > now
    }
}
