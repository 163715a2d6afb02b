//! The DHCPv4 server's core: protocol decisions, the address pool, the durable lease store.
//!
//! The path of a packet (dora's shape: decode → decide → persist → encode):
//!
//! 1. [`protocol::decode`] turns the datagram into a `dhcproto` message.
//! 2. [`Pool::expire`] drops lapsed offers and quarantines; [`protocol::decide`] — pure —
//!    says what to answer, where ([`Destination`]), and which [`Change`] the pool needs.
//! 3. [`Pool::apply`] makes the change and returns the [`StoreRecord`]s to persist;
//!    [`Store::commit`] makes them durable with group commit.
//! 4. Only then is the reply ([`protocol::Reply::encode`]) sent.
//!
//! [`Engine`] does steps 1–3 for one packet, synchronously and without I/O; the server
//! layer (sockets, the writer thread's callbacks, ARP probes) wraps it.
//!
//! Owns: leases. Must not: name anything (the naming rules are `zone`'s; DHCP gives them
//! [`Pool::active_leases`] and takes a [`PoolView`]), or block the async runtime (the store
//! writes on its own thread).
//!
//! Invariants: a DHCPACK leaves only after its lease is on disk; an address Proxmox assigns
//! statically is never offered; unknown clients never take the last
//! [`pool::RESERVE_PERCENT`]% of the pool.
//!
//! What the server layer must do around [`Engine::handle`]:
//! - send `Outcome::reply` only once `Outcome::persist` is durable (empty: at once);
//! - before sending an OFFER with `Outcome::probe` set, ask a [`Probe`]; if someone answers,
//!   call [`Engine::conflict`] and handle the same packet again (it gets another address);
//! - for [`Destination::Hardware`], insert an ARP entry and unicast, or broadcast;
//! - feed ARP sightings to [`Pool::observe`] and each new [`PoolView`] to
//!   [`Pool::set_view`], persisting what that returns (leases of guests gone static).

pub mod lease;
pub mod pool;
pub mod protocol;
pub mod store;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;

use ipnet::Ipv4Net;

use crate::config::DhcpConfig;
use crate::inventory::MacAddr;
use crate::zone::PoolView;

pub use lease::{ClientKey, LeaseRecord, INFINITE};
pub use pool::{Change, Pool};
pub use protocol::{decide, decode, Context, Decision, Destination, Ignored, Reply};
pub use store::{LoadReport, Store, StoreError, StoreRecord};

/// Checks, before an address nobody has had is offered, that nobody uses it already (an ARP
/// request for it: RFC 2131 §2.2 asks servers to probe). Implemented by the `arp` module;
/// [`NoProbe`] where probing is off.
pub trait Probe: Send + Sync {
    /// Resolves to the MAC that answered for `addr`, or `None` when nobody did within the
    /// probe's timeout (a few hundred milliseconds: the client is waiting).
    fn probe(&self, addr: Ipv4Addr) -> Pin<Box<dyn Future<Output = Option<MacAddr>> + Send + '_>>;
}

/// A [`Probe`] that never finds anyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    fn probe(&self, _addr: Ipv4Addr) -> Pin<Box<dyn Future<Output = Option<MacAddr>> + Send + '_>> {
        Box::pin(std::future::ready(None))
    }
}

/// A reply ready to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Where to.
    pub to: Destination,
}

/// What handling one packet produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The decision, for logs and counters (its reply is `reply`, encoded).
    pub decision: Decision,
    /// The reply to send once `persist` is durable, if any.
    pub reply: Option<Outbound>,
    /// Records to make durable before the reply goes out.
    pub persist: Vec<StoreRecord>,
    /// An address to probe before sending the OFFER.
    pub probe: Option<Ipv4Addr>,
}

/// The synchronous DHCP core: the pool plus what decisions need to know. Owned by one task
/// (the DHCP socket loop); no locks.
#[derive(Debug)]
pub struct Engine {
    pool: Pool,
    server: Ipv4Addr,
    network: Ipv4Net,
    domain: String,
    dhcp: DhcpConfig,
}

/// Why a packet was not handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Not a DHCP request we can read.
    #[error(transparent)]
    Decode(#[from] protocol::DecodeError),
    /// The reply could not be encoded (an option over 255 bytes, say).
    #[error("cannot encode reply: {0}")]
    Encode(#[from] dhcproto::error::EncodeError),
}

impl Engine {
    /// A core serving `dhcp` on `network` from our address `server`, starting with the
    /// store's `leases`.
    pub fn new(
        server: Ipv4Addr,
        network: Ipv4Net,
        domain: &str,
        dhcp: DhcpConfig,
        leases: Vec<LeaseRecord>,
        now: u64,
    ) -> Engine {
        Engine {
            pool: Pool::from_records(&dhcp.range, leases, now),
            server,
            network,
            domain: domain.to_string(),
            dhcp,
        }
    }

    /// Decodes, decides and applies one packet received at `now` (Unix seconds).
    pub fn handle(&mut self, packet: &[u8], now: u64) -> Result<Outcome, HandleError> {
        let msg = decode(packet)?;
        self.pool.expire(now);
        let ctx = Context {
            server: self.server,
            network: self.network,
            domain: &self.domain,
            dhcp: &self.dhcp,
            now,
        };
        let decision = decide(&msg, &ctx, &self.pool);
        let (change, reply, probe) = match &decision {
            Decision::Reply(r) => (
                r.change.as_ref(),
                Some(Outbound {
                    bytes: r.encode()?,
                    to: r.to,
                }),
                r.probe,
            ),
            Decision::Update(c) => (Some(c), None, None),
            Decision::Ignore(_) => (None, None, None),
        };
        let persist = change.map(|c| self.pool.apply(c, now)).unwrap_or_default();
        Ok(Outcome {
            decision,
            reply,
            persist,
            probe,
        })
    }

    /// A probe found `mac` answering for `addr`: nobody else is offered it for a while
    /// ([`pool::OBSERVED_HOLD`]). The client's offer of it lapses by itself: handled again,
    /// its packet gets another address, whose offer replaces this one.
    pub fn conflict(&mut self, addr: Ipv4Addr, mac: MacAddr, now: u64) {
        self.pool.observe(addr, mac, now);
    }

    /// Installs a new view from the naming rules; returns records to persist.
    pub fn set_view(&mut self, view: PoolView, now: u64) -> Vec<StoreRecord> {
        self.pool.set_view(view, now)
    }

    /// The pool, for status and the naming rules.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool, for ARP sightings.
    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dnsmasq::parse_dhcp_options;
    use crate::config::{DhcpRange, UnknownClients};
    use crate::dhcp::store::tests::TestDir;
    use dhcproto::v4::{DhcpOption, HType, Message, MessageType, OptionCode};
    use dhcproto::{Decodable, Encodable};

    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const T0: u64 = 1_700_000_000;

    fn engine(leases: Vec<LeaseRecord>) -> Engine {
        let network: Ipv4Net = "198.18.0.0/23".parse().unwrap();
        let dhcp = DhcpConfig {
            range: DhcpRange::parse("198.18.0.100,198.18.0.200,1h", network).unwrap(),
            options: parse_dhcp_options("option:router,198.18.0.254").unwrap(),
            unknown_clients: UnknownClients::Allow,
            import_leases: None,
        };
        Engine::new(SERVER, network, "lab", dhcp, leases, T0)
    }

    fn packet(kind: MessageType, mac: MacAddr, opts: Vec<DhcpOption>) -> Vec<u8> {
        let z = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(7, z, z, z, z, &mac.0);
        m.set_htype(HType::Eth);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o);
        }
        m.to_vec().unwrap()
    }

    fn reply_of(outcome: &Outcome) -> Message {
        Message::from_bytes(&outcome.reply.as_ref().unwrap().bytes).unwrap()
    }

    #[test]
    fn ack_is_released_after_the_store_and_survives_a_restart() {
        let dir = TestDir::new("engine");
        let mac = MacAddr([0xbc, 0x24, 0x11, 1, 2, 3]);
        let (store, leases, _) = Store::open(&dir.0, None).unwrap();
        let mut core = engine(leases);
        let offer = core
            .handle(&packet(MessageType::Discover, mac, vec![]), T0)
            .unwrap();
        assert!(offer.persist.is_empty());
        let addr = reply_of(&offer).yiaddr();
        assert_eq!(offer.probe, Some(addr));
        let request = packet(
            MessageType::Request,
            mac,
            vec![
                DhcpOption::RequestedIpAddress(addr),
                DhcpOption::ServerIdentifier(SERVER),
                DhcpOption::Hostname("db1".into()),
            ],
        );
        let ack = core.handle(&request, T0 + 1).unwrap();
        assert_eq!(ack.persist.len(), 1);
        assert_eq!(reply_of(&ack).opts().msg_type(), Some(MessageType::Ack));
        store.commit_wait(ack.persist.clone()).unwrap(); // then the server would send
        store.close();

        let (_store, leases, _) = Store::open(&dir.0, None).unwrap();
        let mut core = engine(leases);
        let names = core.pool().active_leases(T0 + 2);
        assert_eq!(names.len(), 1);
        assert_eq!((names[0].mac, names[0].addr), (mac, addr));
        assert_eq!(names[0].client_hostname.as_deref(), Some("db1"));
        let reboot = packet(
            MessageType::Request,
            mac,
            vec![DhcpOption::RequestedIpAddress(addr)],
        );
        let ack = core.handle(&reboot, T0 + 60).unwrap();
        assert_eq!(reply_of(&ack).opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(reply_of(&ack).yiaddr(), addr);
    }

    #[test]
    fn a_probe_answer_moves_the_offer_elsewhere() {
        let mut core = engine(Vec::new());
        let mac = MacAddr([0xbc, 0x24, 0x11, 1, 2, 4]);
        let discover = packet(MessageType::Discover, mac, vec![]);
        let first = core.handle(&discover, T0).unwrap();
        let probed = first.probe.unwrap();
        core.conflict(probed, MacAddr([0, 0x11, 0x22, 0x33, 0x44, 0x55]), T0);
        let second = core.handle(&discover, T0).unwrap();
        let addr = reply_of(&second).yiaddr();
        assert_ne!(addr, probed);
        assert_eq!(second.probe, Some(addr));
        // The old offer no longer holds the probed address for this client either.
        let request = packet(
            MessageType::Request,
            mac,
            vec![
                DhcpOption::RequestedIpAddress(probed),
                DhcpOption::ServerIdentifier(SERVER),
            ],
        );
        let nak = core.handle(&request, T0).unwrap();
        assert_eq!(reply_of(&nak).opts().msg_type(), Some(MessageType::Nak));
        assert!(reply_of(&nak).opts().get(OptionCode::Message).is_some());
    }

    /// The core's own cost per 4-way exchange (no I/O): printed, not asserted. Run with
    /// `--release -- --nocapture engine_throughput`.
    #[test]
    fn engine_throughput() {
        let network: Ipv4Net = "10.0.0.0/16".parse().unwrap();
        let dhcp = DhcpConfig {
            range: DhcpRange::parse("10.0.0.1,10.0.255.254,1h", network).unwrap(),
            options: parse_dhcp_options("option:router,10.0.0.1").unwrap(),
            unknown_clients: UnknownClients::Allow,
            import_leases: None,
        };
        let mut core = Engine::new(
            Ipv4Addr::new(10, 0, 0, 1),
            network,
            "lab",
            dhcp,
            Vec::new(),
            T0,
        );
        let n: u32 = 40_000;
        let started = std::time::Instant::now();
        for i in 0..n {
            let b = i.to_be_bytes();
            let mac = MacAddr([2, 0, b[0], b[1], b[2], b[3]]);
            let mut relay = |kind, opts| {
                let mut p = packet(kind, mac, opts);
                p[24..28].copy_from_slice(&[10, 0, 0, 2]); // giaddr, as perfdhcp sends
                core.handle(&p, T0).unwrap()
            };
            let offer = relay(MessageType::Discover, vec![]);
            let addr = reply_of(&offer).yiaddr();
            let ack = relay(
                MessageType::Request,
                vec![
                    DhcpOption::RequestedIpAddress(addr),
                    DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)),
                ],
            );
            assert_eq!(ack.persist.len(), 1);
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "engine: {n} DISCOVER+REQUEST exchanges (decode, decide, apply, encode) in {secs:.3} s = {:.0}/s",
            f64::from(n) / secs
        );
    }
}
pub mod server;
