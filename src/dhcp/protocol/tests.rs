//! Packet-level tests: every message a client sends is built with `dhcproto`, encoded, and
//! goes through [`decode`] and [`decide`]; every reply is encoded with [`Reply::encode`] and
//! decoded again, so the assertions are on what a client would see.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    fqdn::{ClientFQDN, FqdnFlags},
    Flags, HType,
};
use dhcproto::Name;

use super::*;
use crate::config::dnsmasq::parse_dhcp_options;
use crate::config::DhcpRange;
use crate::dhcp::pool::{Pool, QUARANTINE};
use crate::dhcp::store::StoreRecord;
use crate::zone::PoolView;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const T0: u64 = 1_700_000_000;
const OPTIONS: &str =
    "option:router,198.18.0.254;option:ntp-server,0.0.0.0;option:domain-search,lab,example.com";

fn network() -> Ipv4Net {
    "198.18.0.0/23".parse().unwrap()
}

fn dhcp_config(range: &str, options: &str, unknown: UnknownClients) -> DhcpConfig {
    DhcpConfig {
        range: DhcpRange::parse(range, network()).unwrap(),
        options: parse_dhcp_options(options).unwrap(),
        unknown_clients: unknown,
        import_leases: None,
    }
}

/// A server and the pool it decides from; `send` is one packet through the whole core.
struct Lab {
    dhcp: DhcpConfig,
    pool: Pool,
    now: u64,
    persisted: Vec<StoreRecord>,
}

impl Lab {
    fn new() -> Lab {
        Lab::with(dhcp_config(
            "198.18.0.100,198.18.0.200,12h",
            OPTIONS,
            UnknownClients::Allow,
        ))
    }

    fn with(dhcp: DhcpConfig) -> Lab {
        Lab {
            pool: Pool::new(&dhcp.range),
            dhcp,
            now: T0,
            persisted: Vec::new(),
        }
    }

    /// Encodes `msg` as a client would, decodes it as the server does, decides, applies.
    fn send(&mut self, msg: &Message) -> Decision {
        let bytes = msg.to_vec().unwrap();
        let decoded = decode(&bytes).unwrap();
        self.pool.expire(self.now);
        let ctx = Context {
            server: SERVER,
            network: network(),
            domain: "lab",
            dhcp: &self.dhcp,
            now: self.now,
        };
        let decision = decide(&decoded, &ctx, &self.pool);
        let change = match &decision {
            Decision::Reply(r) => r.change.clone(),
            Decision::Update(c) => Some(c.clone()),
            Decision::Ignore(_) => None,
        };
        if let Some(c) = change {
            self.persisted.extend(self.pool.apply(&c, self.now));
        }
        decision
    }

    /// `send`, expecting a reply; returns it with the client's view of its bytes.
    fn exchange(&mut self, msg: &Message) -> (Reply, Message) {
        match self.send(msg) {
            Decision::Reply(r) => {
                let wire = Message::from_bytes(&r.encode().unwrap()).unwrap();
                (r, wire)
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// DISCOVER, OFFER, REQUEST, ACK; returns the address.
    fn dora(&mut self, mac: MacAddr) -> Ipv4Addr {
        let (_, offer) = self.exchange(&client(MessageType::Discover, mac));
        let mut req = client(MessageType::Request, mac);
        req.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        req.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
        let (_, ack) = self.exchange(&req);
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        ack.yiaddr()
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, n])
}

/// A client message as dhclient would build it: xid, chaddr, type, a parameter request list.
fn client(kind: MessageType, mac: MacAddr) -> Message {
    let mut m = Message::new_with_id(
        0x1234_5678,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac.0,
    );
    m.set_htype(HType::Eth);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::DomainName,
        OptionCode::NtpServers,
    ]));
    m
}

/// The option codes of an encoded reply, in wire order.
fn wire_order(bytes: &[u8]) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut i = 240;
    while i < bytes.len() && bytes[i] != 255 {
        if bytes[i] == 0 {
            i += 1;
            continue;
        }
        codes.push(bytes[i]);
        i += 2 + usize::from(bytes[i + 1]);
    }
    codes
}

fn raw(m: &Message, code: u8) -> Option<Vec<u8>> {
    m.opts().get(OptionCode::from(code)).map(|o| {
        let mut v = o.to_vec().unwrap();
        v.drain(..2);
        v
    })
}

fn in_range(a: Ipv4Addr) -> bool {
    (Ipv4Addr::new(198, 18, 0, 100)..=Ipv4Addr::new(198, 18, 0, 200)).contains(&a)
}

#[test]
fn discover_gets_an_offer_with_defaults_and_configured_options() {
    let mut lab = Lab::new();
    let (reply, offer) = lab.exchange(&client(MessageType::Discover, mac(1)));
    assert_eq!(offer.opcode(), Opcode::BootReply);
    assert_eq!(offer.xid(), 0x1234_5678);
    assert_eq!(offer.chaddr(), &mac(1).0);
    assert!(in_range(offer.yiaddr()));
    assert_eq!(offer.ciaddr(), Ipv4Addr::UNSPECIFIED);
    let o = offer.opts();
    assert_eq!(o.msg_type(), Some(MessageType::Offer));
    assert_eq!(
        o.get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        o.get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 254, 0)))
    );
    assert_eq!(
        o.get(OptionCode::BroadcastAddr),
        Some(&DhcpOption::BroadcastAddr(Ipv4Addr::new(198, 18, 1, 255)))
    );
    assert_eq!(
        o.get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![SERVER]))
    );
    assert_eq!(
        o.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("lab".into()))
    );
    assert_eq!(
        o.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(43_200))
    );
    assert_eq!(
        o.get(OptionCode::Renewal),
        Some(&DhcpOption::Renewal(21_600))
    );
    assert_eq!(
        o.get(OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(37_800))
    );
    // DHCP_OPTION, through the real parser: router as given, 0.0.0.0 = this server.
    assert_eq!(
        o.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![Ipv4Addr::new(198, 18, 0, 254)]))
    );
    assert_eq!(
        o.get(OptionCode::NtpServers),
        Some(&DhcpOption::NtpServers(vec![SERVER]))
    );
    assert_eq!(
        raw(&offer, 119).unwrap(),
        b"\x03lab\x00\x07example\x03com\x00"
    );
    // Ordering: 53, 54, lease times, the client's request order, the rest by code.
    let bytes = reply.encode().unwrap();
    assert_eq!(
        wire_order(&bytes),
        vec![53, 54, 51, 58, 59, 1, 3, 6, 15, 42, 28, 119]
    );
    // Not relayed, no broadcast flag, no ciaddr: unicast to yiaddr at chaddr.
    assert_eq!(
        reply.to,
        Destination::Hardware {
            addr: offer.yiaddr(),
            mac: mac(1)
        }
    );
    assert_eq!(reply.to.socket_addr().to_string(), "255.255.255.255:68");
    // Never leased: probe first. The offer holds the address for this client.
    assert_eq!(reply.probe, Some(offer.yiaddr()));
    assert!(matches!(reply.change, Some(Change::Offer { addr, .. }) if addr == offer.yiaddr()));
    assert!(lab.persisted.is_empty(), "an offer is not persisted");
    let (_, again) = lab.exchange(&client(MessageType::Discover, mac(1)));
    assert_eq!(again.yiaddr(), offer.yiaddr());
    let (_, other) = lab.exchange(&client(MessageType::Discover, mac(2)));
    assert_ne!(other.yiaddr(), offer.yiaddr());
}

#[test]
fn discover_with_requested_address_gets_it_when_free() {
    let mut lab = Lab::new();
    let want = Ipv4Addr::new(198, 18, 0, 150);
    let mut d = client(MessageType::Discover, mac(1));
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(want));
    assert_eq!(lab.exchange(&d).1.yiaddr(), want);
    // Outside the range, or already offered to someone else: another address.
    for (n, asked) in [(2, Ipv4Addr::new(198, 18, 0, 20)), (3, want)] {
        let mut d = client(MessageType::Discover, mac(n));
        d.opts_mut().insert(DhcpOption::RequestedIpAddress(asked));
        let got = lab.exchange(&d).1.yiaddr();
        assert!(in_range(got) && got != asked && got != want);
    }
}

#[test]
fn client_id_is_the_identity_and_is_echoed() {
    let mut lab = Lab::new();
    let id = vec![0xff, 0, 0, 0, 1, 0, 1, 0x2c, 0xaa];
    let mut d = client(MessageType::Discover, mac(1));
    d.opts_mut()
        .insert(DhcpOption::ClientIdentifier(id.clone()));
    let (reply, offer) = lab.exchange(&d);
    assert_eq!(
        offer.opts().get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(id.clone()))
    );
    assert_eq!(*wire_order(&reply.encode().unwrap()).last().unwrap(), 61);
    let mut r = client(MessageType::Request, mac(1));
    r.opts_mut()
        .insert(DhcpOption::ClientIdentifier(id.clone()));
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    let (reply, _) = lab.exchange(&r);
    match reply.change {
        Some(Change::Lease(rec)) => assert_eq!(rec.client_id, Some(id.clone())),
        other => panic!("{other:?}"),
    }
    // Another NIC presenting the same client id is the same client (RFC 2131 §4.2).
    let mut d = client(MessageType::Discover, mac(9));
    d.opts_mut().insert(DhcpOption::ClientIdentifier(id));
    assert_eq!(lab.exchange(&d).1.yiaddr(), offer.yiaddr());
}

#[test]
fn relayed_discover_is_answered_to_the_relay() {
    let mut lab = Lab::new();
    let mut d = client(MessageType::Discover, mac(1));
    d.set_giaddr(RELAY);
    let (reply, offer) = lab.exchange(&d);
    assert_eq!(reply.to, Destination::Relay(RELAY));
    assert_eq!(reply.to.socket_addr().to_string(), "198.18.1.254:67");
    assert_eq!(offer.giaddr(), RELAY);
    // A relay from a network we do not serve is ignored.
    let mut d = client(MessageType::Discover, mac(2));
    d.set_giaddr(Ipv4Addr::new(10, 9, 9, 1));
    assert_eq!(
        lab.send(&d),
        Decision::Ignore(Ignored::ForeignRelay(Ipv4Addr::new(10, 9, 9, 1)))
    );
}

#[test]
fn broadcast_flag_gets_a_broadcast() {
    let mut lab = Lab::new();
    let mut d = client(MessageType::Discover, mac(1));
    d.set_flags(Flags::default().set_broadcast());
    let (reply, offer) = lab.exchange(&d);
    assert_eq!(reply.to, Destination::Broadcast);
    assert!(offer.flags().broadcast());
}

#[test]
fn selecting_request_is_acked_after_the_lease_is_recorded() {
    let mut lab = Lab::new();
    let (_, offer) = lab.exchange(&client(MessageType::Discover, mac(1)));
    let mut r = client(MessageType::Request, mac(1));
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    r.opts_mut().insert(DhcpOption::Hostname("web1".into()));
    let (reply, ack) = lab.exchange(&r);
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    assert_eq!(
        ack.opts().get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(43_200))
    );
    let expected = LeaseRecord {
        addr: offer.yiaddr(),
        mac: mac(1),
        client_id: None,
        expiry: T0 + 43_200,
        hostname: Some("web1".into()),
    };
    assert_eq!(reply.change, Some(Change::Lease(expected.clone())));
    assert_eq!(lab.persisted, vec![StoreRecord::Put(expected)]);
    assert_eq!(lab.pool.active_leases(T0).len(), 1);
    assert_eq!(
        lab.pool.active_leases(T0)[0].client_hostname.as_deref(),
        Some("web1")
    );
}

#[test]
fn request_for_another_server_forgets_our_offer() {
    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.100",
        "",
        UnknownClients::Allow,
    ));
    let (_, offer) = lab.exchange(&client(MessageType::Discover, mac(1)));
    assert_eq!(
        lab.send(&client(MessageType::Discover, mac(2))),
        Decision::Ignore(Ignored::NoAddress(NoAddress::Exhausted))
    );
    let mut r = client(MessageType::Request, mac(1));
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    r.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(198, 18, 0, 2)));
    assert!(matches!(
        lab.send(&r),
        Decision::Update(Change::ForgetOffer { .. })
    ));
    assert_eq!(
        lab.exchange(&client(MessageType::Discover, mac(2)))
            .1
            .yiaddr(),
        offer.yiaddr()
    );
    assert_eq!(
        lab.send(&r),
        Decision::Ignore(Ignored::OtherServer(Ipv4Addr::new(198, 18, 0, 2)))
    );
}

#[test]
fn selecting_an_address_someone_else_holds_is_naked() {
    let mut lab = Lab::new();
    let taken = lab.dora(mac(1));
    let mut r = client(MessageType::Request, mac(2));
    r.opts_mut().insert(DhcpOption::RequestedIpAddress(taken));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    let (reply, nak) = lab.exchange(&r);
    assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
    assert_eq!(reply.change, None);
    assert_eq!(reply.to, Destination::Broadcast);
}

fn init_reboot(m: MacAddr, addr: Ipv4Addr) -> Message {
    let mut r = client(MessageType::Request, m);
    r.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    r
}

#[test]
fn init_reboot_with_the_right_address_is_acked() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    lab.now += 600;
    let (reply, ack) = lab.exchange(&init_reboot(mac(1), addr));
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), addr);
    assert!(matches!(reply.change, Some(Change::Lease(ref r)) if r.expiry == T0 + 600 + 43_200));
}

#[test]
fn init_reboot_on_the_wrong_subnet_or_address_is_naked() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    for wrong in [
        Ipv4Addr::new(192, 168, 1, 50),
        Ipv4Addr::new(198, 18, 0, 199),
    ] {
        assert_ne!(wrong, addr);
        let (reply, nak) = lab.exchange(&init_reboot(mac(1), wrong));
        assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
        assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(reply.to, Destination::Broadcast);
        // A NAK says nothing but who, and why (RFC 2131 table 3).
        let bytes = reply.encode().unwrap();
        assert_eq!(wire_order(&bytes), vec![53, 54, 56]);
        assert_eq!(bytes.len(), 300, "padded to the BOOTP minimum");
        assert_eq!(reply.change, None);
    }
    // Relayed, the NAK goes to the relay with the broadcast bit set for it.
    let mut r = init_reboot(mac(1), Ipv4Addr::new(192, 168, 1, 50));
    r.set_giaddr(RELAY);
    let (reply, nak) = lab.exchange(&r);
    assert_eq!(reply.to, Destination::Relay(RELAY));
    assert!(nak.flags().broadcast());
}

#[test]
fn init_reboot_of_a_client_we_do_not_know_gets_silence() {
    let mut lab = Lab::new();
    let taken = lab.dora(mac(1));
    assert_eq!(
        lab.send(&init_reboot(mac(2), Ipv4Addr::new(198, 18, 0, 150))),
        Decision::Ignore(Ignored::NotOurs)
    );
    // …unless it claims an address we know is someone else's.
    assert!(
        matches!(lab.send(&init_reboot(mac(2), taken)), Decision::Reply(r) if r.kind() == Some(MessageType::Nak))
    );
}

#[test]
fn renewing_is_unicast_to_ciaddr_and_extends() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    lab.now += 21_600;
    let mut r = client(MessageType::Request, mac(1));
    r.set_ciaddr(addr);
    let (reply, ack) = lab.exchange(&r);
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), addr);
    assert_eq!(ack.ciaddr(), addr);
    assert_eq!(reply.to, Destination::Unicast(addr));
    assert_eq!(reply.to.socket_addr().to_string(), format!("{addr}:68"));
    assert!(matches!(reply.change, Some(Change::Lease(ref l)) if l.expiry == T0 + 21_600 + 43_200));
}

#[test]
fn rebinding_after_expiry_revives_a_free_address_and_strangers_get_silence() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    lab.now += 50_000; // past expiry; the address is still nobody else's
    let mut r = client(MessageType::Request, mac(1));
    r.set_ciaddr(addr);
    r.set_flags(Flags::default().set_broadcast());
    let (reply, ack) = lab.exchange(&r);
    assert_eq!(ack.yiaddr(), addr);
    assert_eq!(
        reply.to,
        Destination::Unicast(addr),
        "ciaddr wins over the broadcast flag"
    );
    let mut stranger = client(MessageType::Request, mac(7));
    stranger.set_ciaddr(Ipv4Addr::new(198, 18, 0, 160));
    assert_eq!(lab.send(&stranger), Decision::Ignore(Ignored::NotOurs));
    // A NAK is broadcast even to a client with a ciaddr: that address is what is wrong.
    stranger.set_ciaddr(Ipv4Addr::new(10, 1, 1, 1));
    assert!(matches!(lab.send(&stranger),
        Decision::Reply(r) if r.kind() == Some(MessageType::Nak) && r.to == Destination::Broadcast));
}

#[test]
fn decline_quarantines_the_address() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    let mut d = client(MessageType::Decline, mac(1));
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    d.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    assert_eq!(lab.send(&d), Decision::Update(Change::Decline { addr }));
    assert_eq!(lab.persisted.last(), Some(&StoreRecord::Remove(addr)));
    // The client (and anyone else asking for it) gets another address.
    let mut again = client(MessageType::Discover, mac(1));
    again
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(addr));
    assert_ne!(lab.exchange(&again).1.yiaddr(), addr);
    // A DECLINE for an address that is not the client's changes nothing.
    let mut bogus = client(MessageType::Decline, mac(5));
    bogus
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 18, 0, 170,
        )));
    assert_eq!(lab.send(&bogus), Decision::Ignore(Ignored::NotOurs));
    lab.now += QUARANTINE + 31;
    let mut later = client(MessageType::Discover, mac(6));
    later
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(addr));
    assert_eq!(
        lab.exchange(&later).1.yiaddr(),
        addr,
        "free again after the quarantine"
    );
}

#[test]
fn release_ends_the_lease_but_the_address_stays_the_clients() {
    let mut lab = Lab::new();
    let addr = lab.dora(mac(1));
    let mut r = client(MessageType::Release, mac(1));
    r.set_ciaddr(addr);
    r.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    assert_eq!(lab.send(&r), Decision::Update(Change::Release { addr }));
    assert!(matches!(lab.persisted.last(), Some(StoreRecord::Put(l)) if l.expiry == T0));
    assert!(lab.pool.active_leases(T0).is_empty());
    assert_eq!(
        lab.send(&r),
        Decision::Ignore(Ignored::NotOurs),
        "already released"
    );
    lab.now += 100;
    assert_eq!(lab.dora(mac(1)), addr);
}

#[test]
fn sticky_address_across_expiry() {
    let mut lab = Lab::new();
    let first = lab.dora(mac(1));
    lab.now += 3 * 43_200;
    for n in 10..40 {
        lab.dora(mac(n));
    }
    assert_eq!(lab.dora(mac(1)), first);
}

#[test]
fn inform_gets_options_but_no_lease() {
    let mut lab = Lab::new();
    let mut i = client(MessageType::Inform, mac(1));
    i.set_ciaddr(Ipv4Addr::new(198, 18, 0, 30));
    let (reply, ack) = lab.exchange(&i);
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(ack.ciaddr(), Ipv4Addr::new(198, 18, 0, 30));
    for code in [51u8, 58, 59] {
        assert!(
            raw(&ack, code).is_none(),
            "option {code} in an INFORM reply"
        );
    }
    assert_eq!(raw(&ack, 3).unwrap(), vec![198, 18, 0, 254]);
    assert_eq!(
        reply.to,
        Destination::Unicast(Ipv4Addr::new(198, 18, 0, 30))
    );
    assert_eq!(reply.change, None);
}

#[test]
fn parameter_request_order_and_maximum_size_are_respected() {
    let long = "x".repeat(200);
    let options =
        format!("option:router,198.18.0.254;option:bootfile-name,{long};option:tftp-server,{long}");
    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.200",
        &options,
        UnknownClients::Allow,
    ));
    let mut d = client(MessageType::Discover, mac(1));
    d.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::DomainName,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::SubnetMask,
    ]));
    let (reply, _) = lab.exchange(&d);
    let bytes = reply.encode().unwrap();
    // No option 57: 576 - 28 bytes at most; one of the two long options does not fit.
    assert!(bytes.len() <= 548, "{} bytes", bytes.len());
    let order = wire_order(&bytes);
    assert_eq!(&order[..9], &[53, 54, 51, 58, 59, 15, 3, 6, 1]);
    assert_eq!(order.iter().filter(|c| [66, 67].contains(c)).count(), 1);
    // With a larger maximum, everything goes.
    d.opts_mut().insert(DhcpOption::MaxMessageSize(1500));
    let bytes = lab.exchange(&d).0.encode().unwrap();
    let order = wire_order(&bytes);
    assert!(order.contains(&66) && order.contains(&67), "{order:?}");
    assert!(bytes.len() > 548);
}

#[test]
fn fqdn_is_preferred_over_hostname_and_ascii_fqdn_does_not_hide_later_options() {
    let mut lab = Lab::new();
    let (_, offer) = lab.exchange(&client(MessageType::Discover, mac(1)));
    let mut r = client(MessageType::Request, mac(1));
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    r.opts_mut().insert(DhcpOption::Hostname("short".into()));
    r.opts_mut().insert(DhcpOption::ClientFQDN(ClientFQDN::new(
        FqdnFlags::default().set_e(true),
        Name::from_ascii("laptop.example.").unwrap(),
    )));
    match lab.exchange(&r).0.change {
        Some(Change::Lease(l)) => assert_eq!(l.hostname.as_deref(), Some("laptop.example")),
        other => panic!("{other:?}"),
    }
    // Windows style: option 81 in ASCII (E clear) before 55 and 61. Hand-built bytes.
    let mut bytes = client(MessageType::Discover, mac(2)).to_vec().unwrap();
    bytes.truncate(240);
    bytes.extend_from_slice(&[53, 1, 1]);
    bytes.extend_from_slice(&[81, 12, 0, 0, 0]);
    bytes.extend_from_slice(b"pc.corp.");
    bytes.push(b'x'); // pad the name to 9 bytes: "pc.corp.x"
    bytes.extend_from_slice(&[55, 2, 3, 1]);
    bytes.extend_from_slice(&[61, 7, 1, 0x52, 0x54, 0, 0x12, 0x34, 2]);
    bytes.push(255);
    let msg = decode(&bytes).unwrap();
    assert!(
        matches!(msg.opts().get(OptionCode::ClientIdentifier), Some(DhcpOption::ClientIdentifier(id)) if id.len() == 7)
    );
    assert!(msg.opts().get(OptionCode::ParameterRequestList).is_some());
    assert_eq!(client_hostname(&msg).as_deref(), Some("pc.corp.x"));
}

#[test]
fn decode_survives_hostile_packets() {
    let good = client(MessageType::Discover, mac(1)).to_vec().unwrap();
    assert!(matches!(
        decode(&good[..100]),
        Err(DecodeError::TooShort(100))
    ));
    let mut reply = good.clone();
    reply[0] = 2;
    assert!(matches!(decode(&reply), Err(DecodeError::NotARequest)));
    let mut magic = good.clone();
    magic[236] = 0;
    assert!(matches!(decode(&magic), Err(DecodeError::NoMagic)));
    let mut hlen = good.clone();
    hlen[2] = 200;
    assert!(matches!(decode(&hlen), Err(DecodeError::BadHlen(200))));
    // Options dhcproto asserts on in debug builds, a short FQDN, a truncated tail: the
    // message still decodes, with what could be read.
    let mut hostile = good[..240].to_vec();
    hostile.extend_from_slice(&[53, 1, 1, 80, 1, 0, 94, 1, 0, 151, 0, 81, 1, 0, 152, 2, 0, 0]);
    hostile.extend_from_slice(&[61, 3, 1, 2, 3, 61, 2, 4, 5]); // RFC 3396: split option
    hostile.extend_from_slice(&[12, 40, b'a']);
    let msg = decode(&hostile).unwrap();
    assert_eq!(msg.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(
        msg.opts().get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(vec![1, 2, 3, 4, 5]))
    );
    assert!(msg.opts().get(OptionCode::Hostname).is_none());
    // Every prefix of a full message decodes or is refused; none panics.
    let mut full = client(MessageType::Request, mac(1));
    full.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![1; 20]));
    full.opts_mut().insert(DhcpOption::Hostname("h".repeat(60)));
    let full = full.to_vec().unwrap();
    for cut in 0..full.len() {
        let _ = decode(&full[..cut]);
    }
}

#[test]
fn bootp_and_server_messages_are_ignored() {
    let mut lab = Lab::new();
    let mut bootp = client(MessageType::Discover, mac(1));
    bootp.opts_mut().remove(OptionCode::MessageType);
    assert_eq!(lab.send(&bootp), Decision::Ignore(Ignored::Bootp));
    let offer = client(MessageType::Offer, mac(1));
    assert_eq!(
        lab.send(&offer),
        Decision::Ignore(Ignored::Unsupported(MessageType::Offer))
    );
}

#[test]
fn unknown_clients_denied_known_guests_served() {
    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.200",
        "",
        UnknownClients::Deny,
    ));
    let mut view = PoolView::default();
    view.guest_macs.insert(mac(1));
    lab.pool.set_view(view, T0);
    assert_eq!(
        lab.send(&client(MessageType::Discover, mac(2))),
        Decision::Ignore(Ignored::UnknownClient)
    );
    assert!(in_range(lab.dora(mac(1))));
}

#[test]
fn static_addresses_are_never_offered_and_a_move_to_static_releases() {
    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.101",
        "",
        UnknownClients::Allow,
    ));
    let guest = mac(1);
    let addr = lab.dora(guest);
    let other = if addr == Ipv4Addr::new(198, 18, 0, 100) {
        Ipv4Addr::new(198, 18, 0, 101)
    } else {
        Ipv4Addr::new(198, 18, 0, 100)
    };
    // Proxmox gives another guest the other address statically: nobody is offered it.
    let mut view = PoolView::default();
    view.guest_macs.extend([guest, mac(2)]);
    view.excluded.insert(other, mac(2));
    assert!(lab.pool.set_view(view.clone(), lab.now).is_empty());
    let mut d = client(MessageType::Discover, mac(3));
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(other));
    assert_eq!(
        lab.send(&d),
        Decision::Ignore(Ignored::NoAddress(NoAddress::Exhausted))
    );
    assert!(
        matches!(lab.send(&init_reboot(mac(3), other)), Decision::Reply(r) if r.kind() == Some(MessageType::Nak))
    );
    // Now the first guest moves to a static address too: its lease is released…
    view.excluded.insert(addr, guest);
    let released = lab.pool.set_view(view, lab.now);
    assert!(
        matches!(&released[..], [StoreRecord::Put(l)] if l.addr == addr && l.expiry == lab.now)
    );
    assert!(lab.pool.active_leases(lab.now).is_empty());
    // …and a renewal from its old DHCP client is refused.
    let mut r = client(MessageType::Request, guest);
    r.set_ciaddr(addr);
    assert!(matches!(lab.send(&r), Decision::Reply(r) if r.kind() == Some(MessageType::Nak)));
}

#[test]
fn infinite_and_configured_lease_times() {
    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.200,infinite",
        "",
        UnknownClients::Allow,
    ));
    let (_, offer) = lab.exchange(&client(MessageType::Discover, mac(1)));
    assert_eq!(raw(&offer, 51).unwrap(), vec![0xff; 4]);
    assert!(raw(&offer, 58).is_none() && raw(&offer, 59).is_none());
    lab.dora(mac(1));
    assert!(matches!(lab.persisted.last(), Some(StoreRecord::Put(l)) if l.expiry == INFINITE));

    let mut lab = Lab::with(dhcp_config(
        "198.18.0.100,198.18.0.200,12h",
        "option:lease-time,7200",
        UnknownClients::Allow,
    ));
    lab.dora(mac(1));
    assert!(matches!(lab.persisted.last(), Some(StoreRecord::Put(l)) if l.expiry == T0 + 7200));
    let (_, offer) = lab.exchange(&client(MessageType::Discover, mac(2)));
    assert_eq!(raw(&offer, 51).unwrap(), 7200u32.to_be_bytes());
    assert_eq!(raw(&offer, 58).unwrap(), 3600u32.to_be_bytes());
    assert_eq!(raw(&offer, 59).unwrap(), 6300u32.to_be_bytes());
}

#[test]
fn relay_agent_information_is_echoed_last() {
    let mut lab = Lab::new();
    let mut bytes = client(MessageType::Discover, mac(1)).to_vec().unwrap();
    bytes.truncate(240);
    bytes.extend_from_slice(&[53, 1, 1, 82, 6, 1, 4, b'e', b't', b'h', b'0', 255]);
    bytes[24..28].copy_from_slice(&RELAY.octets()); // giaddr
    let msg = decode(&bytes).unwrap();
    let ctx = Context {
        server: SERVER,
        network: network(),
        domain: "lab",
        dhcp: &lab.dhcp,
        now: lab.now,
    };
    lab.pool.expire(lab.now);
    let Decision::Reply(reply) = decide(&msg, &ctx, &lab.pool) else {
        panic!()
    };
    let out = reply.encode().unwrap();
    assert_eq!(*wire_order(&out).last().unwrap(), 82);
    let at = out.windows(2).position(|w| w == [82, 6]).unwrap();
    assert_eq!(&out[at + 2..at + 8], &[1, 4, b'e', b't', b'h', b'0']);
}
