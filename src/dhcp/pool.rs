//! The address pool: which address of `DHCP_RANGE` each client has, is offered, or may get.
//!
//! Owns: bindings (one [`LeaseRecord`] per address, active or expired), short-lived offers,
//! DECLINE quarantines, addresses seen in use on the wire, the exclusions and known guest
//! MACs of the current [`PoolView`], and the indexes that make every operation O(log n):
//! an interval set of never-claimed addresses and an ordered set of reclaimable ones.
//!
//! Must not: do I/O, read the clock, or know about packets. Time comes in as `now` (Unix
//! seconds); changes come in as [`Change`]s (decided by `protocol`) and leave as
//! [`StoreRecord`]s for the caller to make durable.
//!
//! Invariants:
//! - An address is in `free` exactly when it is in the range, has no binding (not even an
//!   expired one) and no claim (exclusion, quarantine, offer, observation) at `now`; it is
//!   in `reclaimable` exactly when its only tie is an *expired* binding. [`Pool::refresh`]
//!   is the one place that restores this after any change, and [`Pool::expire`] must run
//!   before a decision so lapsed claims are gone (the checks also compare with `now`, so a
//!   late `expire` only makes the pool more cautious, never wrong).
//! - A client (by [`ClientKey`]) has at most one active binding and at most one offer.
//! - An address Proxmox assigns statically (`PoolView::excluded`) is never offered or bound.
//! - Unknown clients (MACs not in `PoolView::guest_macs`) never take the last
//!   [`RESERVE_PERCENT`]% of the pool: known guests always find room.
//!
//! Allocation order (RFC 2131 §4.3.1): the client's current binding; its outstanding offer;
//! its previous (expired or released) address, found by client id or else by MAC; the
//! address it asks for; then the first never-used address at or after a seed computed from
//! the MAC exactly as dnsmasq computes it (SDBM hash modulo the range size), wrapping; then
//! the address whose binding expired longest ago. The MAC seed rather than "lowest free"
//! keeps a device's address stable even when its history is gone (store lost, never
//! imported), agrees with the address dnsmasq would have picked for users migrating from it,
//! and spreads simultaneous newcomers instead of making them race for one address.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::config::DhcpRange;
use crate::inventory::MacAddr;
use crate::zone::{self, PoolView};

use super::lease::{ClientKey, LeaseRecord};
use super::store::StoreRecord;

/// How long an offered address stays reserved for the client it was offered to (seconds).
pub const OFFER_HOLD: u64 = 30;
/// How long a declined address is not offered again (seconds; dnsmasq uses 10 minutes).
pub const QUARANTINE: u64 = 600;
/// How long an address seen in use by some MAC stays barred to every other client after the
/// last sighting (seconds).
pub const OBSERVED_HOLD: u64 = 600;
/// The share of the pool (range minus static addresses) kept for known guests: unknown
/// clients get a new address only while more than this share is still available.
pub const RESERVE_PERCENT: u32 = 20;

/// A change to the pool that `protocol::decide` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Reserve `addr` for the client for [`OFFER_HOLD`] seconds. Not durable.
    Offer {
        /// The offered address.
        addr: Ipv4Addr,
        /// The client it is offered to.
        client: ClientKey,
        /// The client's MAC.
        mac: MacAddr,
        /// When the reservation lapses (Unix seconds).
        until: u64,
    },
    /// The client chose another server: drop its offer. Not durable.
    ForgetOffer {
        /// The client.
        client: ClientKey,
    },
    /// Bind (or extend) a lease. Durable: the ACK must wait for the store.
    Lease(LeaseRecord),
    /// The client gave the address back (RELEASE): the binding ends now but is remembered
    /// so the client gets the same address next time. Durable.
    Release {
        /// The released address.
        addr: Ipv4Addr,
    },
    /// The client found the address in use (DECLINE): the binding is forgotten and the
    /// address quarantined for [`QUARANTINE`] seconds. Durable.
    Decline {
        /// The declined address.
        addr: Ipv4Addr,
    },
}

/// Why an address cannot go to a given client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside `DHCP_RANGE`.
    OutOfRange,
    /// Proxmox assigns it statically to the NIC with this MAC.
    Static(MacAddr),
    /// Declined recently.
    Quarantined,
    /// Seen in use on the wire by another MAC.
    InUse(MacAddr),
    /// Offered to another client a moment ago.
    Offered,
    /// Leased to another client.
    Leased,
}

/// Why no address could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAddress {
    /// Every address is taken.
    Exhausted,
    /// The client is unknown and what is left is kept for known guests.
    Reserved,
}

/// An address chosen for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The address.
    pub addr: Ipv4Addr,
    /// We have no record of it ever being leased: probe it (ARP) before offering.
    pub fresh: bool,
}

/// A short reservation of an address for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    client: ClientKey,
    mac: MacAddr,
    until: u64,
}

/// What a timer entry ends. Each address has at most one claim of each kind, so
/// `(time, addr, kind)` is unique and a timer can be removed exactly when its claim changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Lease,
    Offer,
    Quarantine,
    Observed,
}

/// The DHCP address pool. See the module docs for its invariants.
#[derive(Debug, Clone)]
pub struct Pool {
    start: u32,
    end: u32,
    bindings: HashMap<u32, LeaseRecord>,
    by_client: HashMap<ClientKey, u32>,
    by_mac: HashMap<MacAddr, u32>,
    offers: HashMap<u32, Offer>,
    offer_by_client: HashMap<ClientKey, u32>,
    quarantine: HashMap<u32, u64>,
    observed: HashMap<u32, (MacAddr, u64)>,
    view: PoolView,
    capacity: u32,
    free: IntervalSet,
    reclaimable: BTreeSet<(u64, u32)>,
    reclaim_key: HashMap<u32, u64>,
    timers: BTreeSet<(u64, u32, Timer)>,
}

impl Pool {
    /// An empty pool over `range`.
    pub fn new(range: &DhcpRange) -> Pool {
        let (start, end) = (u32::from(range.start()), u32::from(range.end()));
        let mut free = IntervalSet::default();
        free.insert_run(start, end);
        Pool {
            start,
            end,
            bindings: HashMap::new(),
            by_client: HashMap::new(),
            by_mac: HashMap::new(),
            offers: HashMap::new(),
            offer_by_client: HashMap::new(),
            quarantine: HashMap::new(),
            observed: HashMap::new(),
            view: PoolView::default(),
            capacity: end - start + 1,
            free,
            reclaimable: BTreeSet::new(),
            reclaim_key: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }

    /// A pool over `range` holding `records` (the store's live set: at most one per
    /// address). Records outside the range are left out: the range changed since, and those
    /// clients will be told so (NAK) or ignored when they come back.
    pub fn from_records(range: &DhcpRange, records: Vec<LeaseRecord>, now: u64) -> Pool {
        let mut pool = Pool::new(range);
        let mut records: Vec<LeaseRecord> = records
            .into_iter()
            .filter(|r| range.contains(r.addr))
            .collect();
        // Oldest first, so where a client or MAC has several records its latest wins the
        // indexes.
        records.sort_by_key(|r| (r.expiry, u32::from(r.addr)));
        for record in records {
            let a = u32::from(record.addr);
            pool.free.remove(a);
            pool.index(a, &record);
            if record.expiry != super::lease::INFINITE {
                pool.timers.insert((record.expiry, a, Timer::Lease));
            }
            pool.bindings.insert(a, record);
            pool.refresh(a, now);
        }
        pool
    }

    /// Drops the claims that lapsed by `now` (offers, quarantines, observations) and moves
    /// expired leases to the reclaimable set. Call before each decision; cost is
    /// O(log n) per lapsed claim.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(t, a, kind)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            match kind {
                Timer::Offer => {
                    if let Some(offer) = self.offers.remove(&a) {
                        if self.offer_by_client.get(&offer.client) == Some(&a) {
                            self.offer_by_client.remove(&offer.client);
                        }
                    }
                }
                Timer::Quarantine => {
                    self.quarantine.remove(&a);
                }
                Timer::Observed => {
                    self.observed.remove(&a);
                }
                Timer::Lease => {}
            }
            self.refresh(a, now);
        }
    }

    /// Installs what Proxmox says (static addresses, known guest MACs) and releases the
    /// leases of guests that now have a static address ([`Pool::release_static_moves`]).
    /// Returns the records to make durable.
    pub fn set_view(&mut self, view: PoolView, now: u64) -> Vec<StoreRecord> {
        let old = std::mem::replace(&mut self.view, view);
        self.capacity = self.end - self.start + 1
            - self
                .view
                .excluded
                .range(Ipv4Addr::from(self.start)..=Ipv4Addr::from(self.end))
                .count() as u32;
        let changed: BTreeSet<Ipv4Addr> = old
            .excluded
            .keys()
            .filter(|a| !self.view.excluded.contains_key(a))
            .chain(
                self.view
                    .excluded
                    .keys()
                    .filter(|a| !old.excluded.contains_key(a)),
            )
            .copied()
            .collect();
        for a in changed {
            self.refresh(u32::from(a), now);
        }
        self.release_static_moves(now)
    }

    /// Ends the active lease of every MAC that Proxmox now gives a static address (its
    /// guest moved from DHCP to static config). The binding is kept as history, so the guest
    /// gets the same address back if it ever moves back to DHCP. Returns the records to make
    /// durable.
    pub fn release_static_moves(&mut self, now: u64) -> Vec<StoreRecord> {
        let macs: BTreeSet<MacAddr> = self.view.excluded.values().copied().collect();
        let mut out = Vec::new();
        for mac in macs {
            let Some(&a) = self.by_mac.get(&mac) else {
                continue;
            };
            let active = self
                .bindings
                .get(&a)
                .is_some_and(|b| b.mac == mac && b.is_active(now));
            if active {
                out.extend(self.end_binding(a, now));
            }
        }
        out
    }

    /// Notes that `mac` was seen using `addr` (ARP, or an answer to a probe): no other
    /// client is offered it for [`OBSERVED_HOLD`] seconds. A sighting of the address's own
    /// lease holder is not a conflict and is ignored.
    pub fn observe(&mut self, addr: Ipv4Addr, mac: MacAddr, now: u64) {
        let a = u32::from(addr);
        if !self.in_range(a) {
            return;
        }
        if self
            .bindings
            .get(&a)
            .is_some_and(|b| b.mac == mac && b.is_active(now))
        {
            return;
        }
        let until = now.saturating_add(OBSERVED_HOLD);
        if let Some((_, old)) = self.observed.insert(a, (mac, until)) {
            self.timers.remove(&(old, a, Timer::Observed));
        }
        self.timers.insert((until, a, Timer::Observed));
        self.refresh(a, now);
    }

    /// Applies a decision's change. Returns the records to make durable before the reply
    /// that goes with it is sent.
    pub fn apply(&mut self, change: &Change, now: u64) -> Vec<StoreRecord> {
        match change {
            Change::Offer {
                addr,
                client,
                mac,
                until,
            } => {
                self.set_offer(u32::from(*addr), client.clone(), *mac, *until, now);
                Vec::new()
            }
            Change::ForgetOffer { client } => {
                if let Some(a) = self.offer_by_client.remove(client) {
                    self.clear_offer(a, now);
                }
                Vec::new()
            }
            Change::Lease(record) => self.bind(record.clone(), now),
            Change::Release { addr } => self.end_binding(u32::from(*addr), now),
            Change::Decline { addr } => {
                let a = u32::from(*addr);
                if let Some(offer) = self.offers.get(&a) {
                    let client = offer.client.clone();
                    self.offer_by_client.remove(&client);
                    self.clear_offer(a, now);
                }
                let until = now.saturating_add(QUARANTINE);
                if let Some(old) = self.quarantine.insert(a, until) {
                    self.timers.remove(&(old, a, Timer::Quarantine));
                }
                self.timers.insert((until, a, Timer::Quarantine));
                let forgotten = self.forget_binding(a);
                self.refresh(a, now);
                if forgotten {
                    vec![StoreRecord::Remove(*addr)]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Chooses an address to offer the client `client` (MAC `mac`) that asked for
    /// `requested` (option 50), in the order of the module docs.
    pub fn choose(
        &self,
        client: &ClientKey,
        mac: MacAddr,
        requested: Option<Ipv4Addr>,
        now: u64,
    ) -> Result<Choice, NoAddress> {
        let ok = |a: Ipv4Addr| self.usable_by(a, client, mac, now).is_ok();
        let previous = self.binding_of(client, mac);
        if let Some(b) = previous.filter(|b| b.is_active(now) && ok(b.addr)) {
            return Ok(self.choice(b.addr));
        }
        if let Some(a) = self.offered_to(client, now).filter(|a| ok(*a)) {
            return Ok(self.choice(a));
        }
        // Anything below takes an address out of what is available.
        if !self.may_take_new(mac) {
            return Err(if self.available() == 0 {
                NoAddress::Exhausted
            } else {
                NoAddress::Reserved
            });
        }
        if let Some(b) = previous.filter(|b| ok(b.addr)) {
            return Ok(self.choice(b.addr));
        }
        if let Some(a) = requested.filter(|a| ok(*a)) {
            return Ok(self.choice(a));
        }
        let seed = self.seed(mac);
        if let Some(a) = self.free.first_at_or_after(seed) {
            return Ok(self.choice(Ipv4Addr::from(a)));
        }
        // Only expired bindings are left: take the one unused longest. Every member is
        // usable (blocked addresses are kept out of the set), but check anyway: cheap.
        self.reclaimable
            .iter()
            .map(|&(_, a)| Ipv4Addr::from(a))
            .find(|a| ok(*a))
            .map(|a| self.choice(a))
            .ok_or(NoAddress::Exhausted)
    }

    /// Whether `addr` may be bound to this client now, and if not, why.
    pub fn usable_by(
        &self,
        addr: Ipv4Addr,
        client: &ClientKey,
        mac: MacAddr,
        now: u64,
    ) -> Result<(), Refusal> {
        let a = u32::from(addr);
        if !self.in_range(a) {
            return Err(Refusal::OutOfRange);
        }
        if let Some(owner) = self.view.excluded.get(&addr) {
            return Err(Refusal::Static(*owner));
        }
        if self.quarantine.get(&a).is_some_and(|&t| t > now) {
            return Err(Refusal::Quarantined);
        }
        if let Some(&(seen, until)) = self.observed.get(&a) {
            if until > now && seen != mac {
                return Err(Refusal::InUse(seen));
            }
        }
        if let Some(offer) = self.offers.get(&a) {
            if offer.until > now && offer.client != *client && offer.mac != mac {
                return Err(Refusal::Offered);
            }
        }
        if let Some(b) = self.bindings.get(&a) {
            if b.is_active(now) && b.key() != *client && b.mac != mac {
                return Err(Refusal::Leased);
            }
        }
        Ok(())
    }

    /// The client's binding (active or expired): by client id, else by MAC (so a client that
    /// changed its client id, or a lease imported without one, still finds its address).
    pub fn binding_of(&self, client: &ClientKey, mac: MacAddr) -> Option<&LeaseRecord> {
        self.by_client
            .get(client)
            .and_then(|a| self.bindings.get(a))
            .filter(|b| b.key() == *client)
            .or_else(|| {
                self.by_mac
                    .get(&mac)
                    .and_then(|a| self.bindings.get(a))
                    .filter(|b| b.mac == mac)
            })
    }

    /// The binding of `addr`, active or expired.
    pub fn binding_at(&self, addr: Ipv4Addr) -> Option<&LeaseRecord> {
        self.bindings.get(&u32::from(addr))
    }

    /// The address offered to the client, if the offer still holds at `now`.
    pub fn offered_to(&self, client: &ClientKey, now: u64) -> Option<Ipv4Addr> {
        let a = *self.offer_by_client.get(client)?;
        self.offers
            .get(&a)
            .filter(|o| o.until > now)
            .map(|_| Ipv4Addr::from(a))
    }

    /// Whether `mac` belongs to a Proxmox guest NIC.
    pub fn is_known(&self, mac: MacAddr) -> bool {
        self.view.guest_macs.contains(&mac)
    }

    /// Whether a client with this MAC may take an address it does not hold yet: known guests
    /// always; unknown clients only while more than the reserve is available.
    pub fn may_take_new(&self, mac: MacAddr) -> bool {
        self.is_known(mac) || self.available() > self.reserve()
    }

    /// Addresses that could be handed out now (never used, or expired bindings).
    pub fn available(&self) -> u64 {
        self.free.len() + self.reclaimable.len() as u64
    }

    /// Addresses the pool can lease: the range minus addresses Proxmox assigns statically.
    pub fn capacity(&self) -> u64 {
        u64::from(self.capacity)
    }

    /// How many addresses are kept for known guests.
    pub fn reserve(&self) -> u64 {
        u64::from(self.capacity) * u64::from(RESERVE_PERCENT) / 100
    }

    /// The leases running at `now`, as the naming rules want them, in address order.
    pub fn active_leases(&self, now: u64) -> Vec<zone::Lease> {
        self.bindings()
            .into_iter()
            .filter(|b| b.is_active(now))
            .map(LeaseRecord::to_zone_lease)
            .collect()
    }

    /// Every binding, active or expired, in address order (for status pages and tests).
    pub fn bindings(&self) -> Vec<&LeaseRecord> {
        let mut out: Vec<&LeaseRecord> = self.bindings.values().collect();
        out.sort_by_key(|b| b.addr);
        out
    }

    fn in_range(&self, a: u32) -> bool {
        (self.start..=self.end).contains(&a)
    }

    fn choice(&self, addr: Ipv4Addr) -> Choice {
        Choice {
            addr,
            fresh: !self.bindings.contains_key(&u32::from(addr)),
        }
    }

    /// dnsmasq's seed (`address_allocate` in dnsmasq's `dhcp.c`): SDBM hash of the hardware
    /// address, 0 replaced by 1, modulo the range size, from the range start.
    fn seed(&self, mac: MacAddr) -> u32 {
        let mut j: u32 = 0;
        for &byte in &mac.0 {
            j = u32::from(byte)
                .wrapping_add(j << 6)
                .wrapping_add(j << 16)
                .wrapping_sub(j);
        }
        if j == 0 {
            j = 1;
        }
        let size = u64::from(self.end - self.start) + 1;
        self.start + (u64::from(j) % size) as u32
    }

    fn index(&mut self, a: u32, record: &LeaseRecord) {
        self.by_client.insert(record.key(), a);
        self.by_mac.insert(record.mac, a);
    }

    fn unindex(&mut self, a: u32, record: &LeaseRecord) {
        let key = record.key();
        if self.by_client.get(&key) == Some(&a) {
            self.by_client.remove(&key);
        }
        if self.by_mac.get(&record.mac) == Some(&a) {
            self.by_mac.remove(&record.mac);
        }
    }

    fn set_offer(&mut self, a: u32, client: ClientKey, mac: MacAddr, until: u64, now: u64) {
        if let Some(previous) = self.offer_by_client.insert(client.clone(), a) {
            if previous != a {
                self.clear_offer(previous, now);
            }
        }
        if let Some(old) = self.offers.insert(a, Offer { client, mac, until }) {
            self.timers.remove(&(old.until, a, Timer::Offer));
        }
        self.timers.insert((until, a, Timer::Offer));
        self.refresh(a, now);
    }

    fn clear_offer(&mut self, a: u32, now: u64) {
        if let Some(old) = self.offers.remove(&a) {
            self.timers.remove(&(old.until, a, Timer::Offer));
        }
        self.refresh(a, now);
    }

    /// Binds `record`. The client's other active binding, if any, ends (one per client),
    /// and the address's previous holder, if another client, loses its history there.
    fn bind(&mut self, record: LeaseRecord, now: u64) -> Vec<StoreRecord> {
        let a = u32::from(record.addr);
        let mut out = Vec::new();
        let key = record.key();
        if let Some(&other) = self.by_client.get(&key) {
            if other != a && self.bindings.get(&other).is_some_and(|b| b.is_active(now)) {
                out.extend(self.end_binding(other, now));
            }
        }
        if let Some(old) = self.bindings.remove(&a) {
            self.timers.remove(&(old.expiry, a, Timer::Lease));
            self.unindex(a, &old);
        }
        if let Some(&o) = self.offer_by_client.get(&key) {
            self.offer_by_client.remove(&key);
            self.clear_offer(o, now);
        }
        if let Some(offer) = self.offers.get(&a) {
            // Someone else's offer on this address: the lease wins, the offer goes.
            let other = offer.client.clone();
            self.offer_by_client.remove(&other);
            self.clear_offer(a, now);
        }
        self.free.remove(a);
        self.index(a, &record);
        if record.expiry != super::lease::INFINITE {
            self.timers.insert((record.expiry, a, Timer::Lease));
        }
        out.push(StoreRecord::Put(record.clone()));
        self.bindings.insert(a, record);
        self.refresh(a, now);
        out
    }

    /// Ends the binding of `a` now, keeping it as history.
    fn end_binding(&mut self, a: u32, now: u64) -> Vec<StoreRecord> {
        let Some(b) = self.bindings.get_mut(&a) else {
            return Vec::new();
        };
        let old = b.expiry;
        b.expiry = b.expiry.min(now);
        let record = b.clone();
        self.timers.remove(&(old, a, Timer::Lease));
        self.refresh(a, now);
        vec![StoreRecord::Put(record)]
    }

    /// Forgets the binding of `a` entirely. Returns whether there was one.
    fn forget_binding(&mut self, a: u32) -> bool {
        let Some(old) = self.bindings.remove(&a) else {
            return false;
        };
        self.timers.remove(&(old.expiry, a, Timer::Lease));
        self.unindex(a, &old);
        true
    }

    /// Puts `a` in the one index (free, reclaimable, neither) its state calls for.
    fn refresh(&mut self, a: u32, now: u64) {
        if !self.in_range(a) {
            return;
        }
        let blocked = self.view.excluded.contains_key(&Ipv4Addr::from(a))
            || self.quarantine.get(&a).is_some_and(|&t| t > now)
            || self.offers.get(&a).is_some_and(|o| o.until > now)
            || self.observed.get(&a).is_some_and(|&(_, t)| t > now);
        let binding = self.bindings.get(&a).map(|b| b.expiry);
        let free = !blocked && binding.is_none();
        let reclaim = match binding {
            Some(expiry) if !blocked && expiry <= now => Some(expiry),
            _ => None,
        };
        if free {
            self.free.insert(a);
        } else {
            self.free.remove(a);
        }
        let current = self.reclaim_key.get(&a).copied();
        if current != reclaim {
            if let Some(k) = current {
                self.reclaimable.remove(&(k, a));
                self.reclaim_key.remove(&a);
            }
            if let Some(k) = reclaim {
                self.reclaimable.insert((k, a));
                self.reclaim_key.insert(a, k);
            }
        }
    }
}

/// A set of `u32` kept as disjoint runs `start → end` (inclusive): a fresh /16 is one
/// entry, and "first member at or after x" is one B-tree lookup.
#[derive(Debug, Clone, Default)]
struct IntervalSet {
    runs: BTreeMap<u32, u32>,
    len: u64,
}

impl IntervalSet {
    fn len(&self) -> u64 {
        self.len
    }

    /// Adds `start..=end`, which must not overlap a member (used on an empty set).
    fn insert_run(&mut self, start: u32, end: u32) {
        self.runs.insert(start, end);
        self.len += u64::from(end - start) + 1;
    }

    fn run_containing(&self, x: u32) -> Option<(u32, u32)> {
        self.runs
            .range(..=x)
            .next_back()
            .filter(|(_, &e)| e >= x)
            .map(|(&s, &e)| (s, e))
    }

    fn insert(&mut self, x: u32) {
        if self.run_containing(x).is_some() {
            return;
        }
        let left = x
            .checked_sub(1)
            .and_then(|p| self.run_containing(p))
            .map(|(s, _)| s);
        let right = x.checked_add(1).and_then(|n| self.runs.get(&n).copied());
        let start = left.unwrap_or(x);
        let mut end = x;
        if let Some(right_end) = right {
            self.runs.remove(&(x + 1));
            end = right_end;
        }
        self.runs.insert(start, end);
        self.len += 1;
    }

    fn remove(&mut self, x: u32) -> bool {
        let Some((s, e)) = self.run_containing(x) else {
            return false;
        };
        self.runs.remove(&s);
        if s < x {
            self.runs.insert(s, x - 1);
        }
        if x < e {
            self.runs.insert(x + 1, e);
        }
        self.len -= 1;
        true
    }

    /// The first member ≥ `x`, else the first member (wrapping), else `None`.
    fn first_at_or_after(&self, x: u32) -> Option<u32> {
        if self.run_containing(x).is_some() {
            return Some(x);
        }
        self.runs
            .range(x..)
            .next()
            .or_else(|| self.runs.iter().next())
            .map(|(&s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::lease::INFINITE;

    fn range(s: &str) -> DhcpRange {
        DhcpRange::parse(s, "10.0.0.0/16".parse().unwrap()).unwrap()
    }

    fn mac(n: u32) -> MacAddr {
        let b = n.to_be_bytes();
        MacAddr([0x02, 0x00, b[0], b[1], b[2], b[3]])
    }

    fn lease(pool: &mut Pool, m: MacAddr, now: u64) -> Ipv4Addr {
        let key = ClientKey::Hw(m);
        let choice = pool.choose(&key, m, None, now).unwrap();
        pool.apply(
            &Change::Lease(LeaseRecord {
                addr: choice.addr,
                mac: m,
                client_id: None,
                expiry: now + 3600,
                hostname: None,
            }),
            now,
        );
        choice.addr
    }

    #[test]
    fn interval_set_merges_and_splits() {
        let mut s = IntervalSet::default();
        for x in [5, 7, 6, 1, 3, 2] {
            s.insert(x);
        }
        assert_eq!(s.runs, BTreeMap::from([(1, 3), (5, 7)]));
        assert_eq!(s.len(), 6);
        assert!(s.remove(6));
        assert!(!s.remove(6));
        assert_eq!(s.runs, BTreeMap::from([(1, 3), (5, 5), (7, 7)]));
        assert_eq!(s.first_at_or_after(4), Some(5));
        assert_eq!(s.first_at_or_after(8), Some(1));
        assert_eq!(s.first_at_or_after(2), Some(2));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn seed_matches_dnsmasq_formula() {
        let pool = Pool::new(&range("10.0.0.10,10.0.0.209"));
        // SDBM over 52:54:00:12:34:56, worked out by hand with u32 wrap-around.
        let m = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        let mut j: u32 = 0;
        for b in m.0 {
            j = (b as u32)
                .wrapping_add(j << 6)
                .wrapping_add(j << 16)
                .wrapping_sub(j);
        }
        assert_eq!(
            pool.seed(m),
            u32::from(Ipv4Addr::new(10, 0, 0, 10)) + j % 200
        );
    }

    #[test]
    fn sticky_address_across_expiry_and_release() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.20"));
        let a = MacAddr([2, 0, 0, 0, 0, 0xa]);
        let first = lease(&mut pool, a, 1000);
        // Expired long ago, and others came and went meanwhile: still comes back first.
        let now = 1000 + 3600 * 5;
        pool.expire(now);
        for n in 0..5 {
            lease(&mut pool, mac(n), now);
        }
        assert_eq!(
            pool.choose(&ClientKey::Hw(a), a, None, now).unwrap().addr,
            first
        );
        // Released, then asked again with a client id: the MAC finds it.
        pool.apply(&Change::Release { addr: first }, now);
        let with_id = ClientKey::Id(vec![1, 2, 3].into());
        assert_eq!(pool.choose(&with_id, a, None, now).unwrap().addr, first);
        assert!(!pool.choose(&with_id, a, None, now).unwrap().fresh);
    }

    #[test]
    fn expired_addresses_are_reclaimed_only_when_nothing_else_is_left() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.12"));
        let old = lease(&mut pool, mac(1), 0);
        let now = 7200;
        pool.expire(now);
        let b = lease(&mut pool, mac(2), now);
        let c = lease(&mut pool, mac(3), now);
        assert!(![b, c].contains(&old));
        let d = lease(&mut pool, mac(4), now);
        assert_eq!(d, old, "the expired one is taken last");
        assert_eq!(pool.binding_of(&ClientKey::Hw(mac(1)), mac(1)), None);
        assert_eq!(
            pool.choose(&ClientKey::Hw(mac(5)), mac(5), None, now),
            Err(NoAddress::Exhausted)
        );
    }

    #[test]
    fn static_addresses_are_never_offered_and_static_moves_release() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.13"));
        let guest = mac(99);
        let mine = lease(&mut pool, guest, 0);
        let mut view = PoolView::default();
        view.guest_macs.insert(guest);
        // Proxmox now gives the guest a static address: another one of the range.
        let static_addr = (10..=13)
            .map(|o| Ipv4Addr::new(10, 0, 0, o))
            .find(|a| *a != mine)
            .unwrap();
        view.excluded.insert(static_addr, guest);
        let released = pool.set_view(view, 10);
        assert_eq!(released.len(), 1);
        assert!(matches!(&released[0], StoreRecord::Put(r) if r.addr == mine && r.expiry == 10));
        assert!(pool.active_leases(10).is_empty());
        for n in 0..10 {
            let m = mac(n);
            if let Ok(c) = pool.choose(&ClientKey::Hw(m), m, Some(static_addr), 10) {
                assert_ne!(c.addr, static_addr);
                lease(&mut pool, m, 10);
            }
        }
        assert!(pool.binding_at(static_addr).is_none());
    }

    #[test]
    fn a_flood_of_unknown_macs_leaves_room_for_a_known_guest() {
        let mut pool = Pool::new(&range("10.0.0.1,10.0.39.255")); // 10,239 addresses
        let guest = MacAddr([0xbc, 0x24, 0x11, 0, 0, 1]);
        let mut view = PoolView::default();
        view.guest_macs.insert(guest);
        pool.set_view(view, 0);
        let mut refused = 0;
        for n in 0..10_000 {
            let m = mac(n);
            let key = ClientKey::Hw(m);
            match pool.choose(&key, m, None, 0) {
                Ok(c) => {
                    pool.apply(
                        &Change::Offer {
                            addr: c.addr,
                            client: key,
                            mac: m,
                            until: OFFER_HOLD,
                        },
                        0,
                    );
                }
                Err(e) => {
                    assert_eq!(e, NoAddress::Reserved);
                    refused += 1;
                }
            }
        }
        assert!(refused > 0, "the flood must hit the reserve");
        assert_eq!(pool.available(), pool.reserve());
        let c = pool.choose(&ClientKey::Hw(guest), guest, None, 0).unwrap();
        assert!(c.fresh);
    }

    #[test]
    fn decline_quarantines_and_forgets() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.11"));
        let m = mac(1);
        let a = lease(&mut pool, m, 0);
        let recs = pool.apply(&Change::Decline { addr: a }, 5);
        assert_eq!(recs, vec![StoreRecord::Remove(a)]);
        assert_eq!(
            pool.usable_by(a, &ClientKey::Hw(mac(2)), mac(2), 5),
            Err(Refusal::Quarantined)
        );
        let other = pool.choose(&ClientKey::Hw(m), m, Some(a), 5).unwrap();
        assert_ne!(other.addr, a);
        pool.expire(5 + QUARANTINE);
        assert_eq!(
            pool.usable_by(a, &ClientKey::Hw(mac(2)), mac(2), 5 + QUARANTINE),
            Ok(())
        );
        assert!(
            pool.choose(&ClientKey::Hw(mac(2)), mac(2), Some(a), 5 + QUARANTINE)
                .unwrap()
                .fresh
        );
    }

    #[test]
    fn addresses_seen_in_use_by_another_mac_are_not_offered() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.11"));
        let squatter = mac(7);
        pool.observe(Ipv4Addr::new(10, 0, 0, 10), squatter, 0);
        for n in 0..2 {
            let c = pool.choose(
                &ClientKey::Hw(mac(n)),
                mac(n),
                Some(Ipv4Addr::new(10, 0, 0, 10)),
                1,
            );
            if let Ok(c) = c {
                assert_ne!(c.addr, Ipv4Addr::new(10, 0, 0, 10));
                lease(&mut pool, mac(n), 1);
            }
        }
        // The squatter itself may have it.
        assert_eq!(
            pool.usable_by(
                Ipv4Addr::new(10, 0, 0, 10),
                &ClientKey::Hw(squatter),
                squatter,
                1
            ),
            Ok(())
        );
        pool.expire(1 + OBSERVED_HOLD);
        assert!(pool.available() >= 1);
    }

    #[test]
    fn offers_lapse_and_infinite_leases_never_do() {
        let mut pool = Pool::new(&range("10.0.0.10,10.0.0.10"));
        let a = Ipv4Addr::new(10, 0, 0, 10);
        pool.apply(
            &Change::Offer {
                addr: a,
                client: ClientKey::Hw(mac(1)),
                mac: mac(1),
                until: 30,
            },
            0,
        );
        assert_eq!(
            pool.choose(&ClientKey::Hw(mac(2)), mac(2), None, 1),
            Err(NoAddress::Exhausted)
        );
        pool.expire(30);
        assert_eq!(
            pool.choose(&ClientKey::Hw(mac(2)), mac(2), None, 30)
                .unwrap()
                .addr,
            a
        );
        pool.apply(
            &Change::Lease(LeaseRecord {
                addr: a,
                mac: mac(2),
                client_id: None,
                expiry: INFINITE,
                hostname: Some("printer".into()),
            }),
            30,
        );
        pool.expire(u64::MAX - 1);
        assert_eq!(pool.active_leases(u64::MAX - 1).len(), 1);
    }

    #[test]
    fn from_records_restores_bindings_and_indexes() {
        let r = range("10.0.0.10,10.0.0.20");
        let records = vec![
            LeaseRecord {
                addr: Ipv4Addr::new(10, 0, 0, 12),
                mac: mac(1),
                client_id: None,
                expiry: 500,
                hostname: None,
            },
            LeaseRecord {
                addr: Ipv4Addr::new(10, 0, 0, 15),
                mac: mac(2),
                client_id: Some(vec![1, 2]),
                expiry: 5000,
                hostname: Some("x".into()),
            },
            LeaseRecord {
                addr: Ipv4Addr::new(10, 0, 1, 1), // outside the range now
                mac: mac(3),
                client_id: None,
                expiry: 5000,
                hostname: None,
            },
        ];
        let pool = Pool::from_records(&r, records, 1000);
        assert_eq!(pool.active_leases(1000).len(), 1);
        assert_eq!(pool.available(), 11 - 1);
        assert_eq!(
            pool.choose(&ClientKey::Hw(mac(1)), mac(1), None, 1000)
                .unwrap()
                .addr,
            Ipv4Addr::new(10, 0, 0, 12)
        );
        let id = ClientKey::Id(vec![1, 2].into());
        assert_eq!(
            pool.binding_of(&id, mac(2)).map(|b| b.addr),
            Some(Ipv4Addr::new(10, 0, 0, 15))
        );
    }
}
