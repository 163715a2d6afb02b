//! The DHCPv4 protocol (RFC 2131, options RFC 2132): what to answer to a client message.
//!
//! Owns: decoding a datagram into a [`Message`] ([`decode`], which shields the decoder from
//! malformed options), the decision ([`decide`]: reply or not, with which address and
//! options, to which destination, and what the pool must change), and the reply's wire
//! form ([`Reply::encode`]: options in the client's requested order, within its maximum
//! message size).
//!
//! Must not: touch sockets, files or the clock, or change the pool. [`decide`] is a pure
//! function of the message, the [`Context`] (which carries `now`) and the pool; the caller
//! applies the [`Change`] it returns, makes the change durable when it is a lease, and only
//! then sends the reply.
//!
//! Invariants:
//! - A DHCPACK that binds an address always carries [`Change::Lease`], so it cannot be sent
//!   before the lease is durable by mistake.
//! - Replies carry option 54 (our address) and echo option 61 (RFC 6842) and option 82
//!   (RFC 3046, last); a DHCPNAK carries nothing else but option 56.
//! - Silence wherever RFC 2131 asks for it: a REQUEST for another server, an INIT-REBOOT or
//!   RENEWING/REBINDING client we have no record of and no reason to contradict.
//!
//! Destinations follow RFC 2131 §4.1 ([`Destination`]). For a client without an address
//! that did not set the broadcast flag the RFC wants a unicast to `yiaddr` at `chaddr`,
//! which needs an ARP cache entry: [`Destination::Hardware`] leaves that to the server
//! layer, which may insert the entry (SIOCSARP) or fall back to broadcast.

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{
    DhcpOption, DhcpOptions, HType, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Encodable};
use ipnet::Ipv4Net;

use crate::config::{DhcpConfig, LeaseTime, OptionValue, UnknownClients};
use crate::inventory::MacAddr;

use super::lease::{ClientKey, LeaseRecord, INFINITE};
use super::pool::{Change, NoAddress, Pool, Refusal, OFFER_HOLD};

/// The DHCP server port (where relays receive our replies).
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port.
pub const CLIENT_PORT: u16 = 68;
/// Replies are padded to the BOOTP minimum: some relays and old clients drop shorter ones.
const MIN_REPLY: usize = 300;
/// What every client must accept (RFC 2131 §2), IP and UDP headers included.
const MIN_MAX_MESSAGE: usize = 576;
/// IPv4 + UDP headers, which option 57 counts (as dnsmasq and ISC read it).
const IP_UDP: usize = 28;
/// We never send more than fits an Ethernet frame unfragmented, whatever a client accepts.
const MAX_REPLY: usize = 1500 - IP_UDP;
const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// What `decide` needs besides the message and the pool.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Our address on the lab network: option 54, and the default DNS server.
    pub server: Ipv4Addr,
    /// `NETWORK_CIDR`: subnet mask and broadcast of the replies; requests for addresses
    /// outside it are refused.
    pub network: Ipv4Net,
    /// `DNS_DOMAIN`, sent as option 15 (unless `DHCP_OPTION` sets 15).
    pub domain: &'a str,
    /// The DHCP settings.
    pub dhcp: &'a DhcpConfig,
    /// Now, in Unix seconds.
    pub now: u64,
}

/// What to do with a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send a reply (after making `change` durable when it is a lease).
    Reply(Reply),
    /// Send nothing, but change the pool (RELEASE, DECLINE, a REQUEST for another server).
    Update(Change),
    /// Send nothing, change nothing.
    Ignore(Ignored),
}

/// Why a message gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A BOOTREPLY, not a request.
    NotARequest,
    /// No message type (option 53): a BOOTP client, which we do not serve.
    Bootp,
    /// Not Ethernet with a 6-byte `chaddr`.
    NotEthernet,
    /// Relayed from a network we do not serve (its `giaddr`).
    ForeignRelay(Ipv4Addr),
    /// `DHCP_UNKNOWN_CLIENTS=deny` and the MAC is no Proxmox guest's.
    UnknownClient,
    /// The message names another server (option 54).
    OtherServer(Ipv4Addr),
    /// No address for the client.
    NoAddress(NoAddress),
    /// The client is not ours to judge (RFC 2131: remain silent).
    NotOurs,
    /// A field the message type requires is missing.
    Malformed(&'static str),
    /// A message type a server does not act on (OFFER, ACK, … sent to us).
    Unsupported(MessageType),
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `giaddr`:67: the relay agent passes it on.
    Relay(Ipv4Addr),
    /// `ciaddr`:68: the client has a working address (RENEWING, INFORM).
    Unicast(Ipv4Addr),
    /// 255.255.255.255:68: the client asked for it (broadcast flag), or a DHCPNAK.
    Broadcast,
    /// `yiaddr`:68 at link address `mac`: the client has no address yet and did not ask for
    /// broadcast. Needs an ARP entry, which only the server layer can insert; it may
    /// broadcast instead ([`Destination::socket_addr`] gives that safe default).
    Hardware {
        /// The address being offered or acknowledged.
        addr: Ipv4Addr,
        /// The client's MAC.
        mac: MacAddr,
    },
}

impl Destination {
    /// The UDP destination, with broadcast standing in for [`Destination::Hardware`].
    pub fn socket_addr(&self) -> SocketAddrV4 {
        match *self {
            Destination::Relay(a) => SocketAddrV4::new(a, SERVER_PORT),
            Destination::Unicast(a) => SocketAddrV4::new(a, CLIENT_PORT),
            Destination::Broadcast | Destination::Hardware { .. } => {
                SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
            }
        }
    }
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply; its options are ordered and size-limited by [`Reply::encode`].
    pub message: Message,
    /// Where it goes.
    pub to: Destination,
    /// What the pool must change first: [`Change::Offer`] for an OFFER,
    /// [`Change::Lease`] (durable before sending!) for an ACK that binds.
    pub change: Option<Change>,
    /// An OFFER of an address never leased before: probe it (ARP) first; if anyone
    /// answers, tell the pool ([`Pool::observe`]) and decide again.
    pub probe: Option<Ipv4Addr>,
    /// The client's parameter request list (option 55), for the order of options.
    order: Vec<u8>,
    /// The largest DHCP message (UDP payload) the client accepts.
    max_len: usize,
}

impl Reply {
    /// The reply's message type.
    pub fn kind(&self) -> Option<MessageType> {
        self.message.opts().msg_type()
    }

    /// The reply's bytes: the fixed header, then options 53 and 54, the lease times, the
    /// options in the order the client asked for them, the rest by code, then 61 and 82;
    /// options that would exceed the client's maximum message size are left out, and the
    /// message is padded to 300 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
        let mut header = self.message.clone();
        header.set_opts(DhcpOptions::new());
        let mut out = header.to_vec()?;
        let opts = self.message.opts();
        let mut done = [false; 256];
        let last = [61u8, 82];
        done[61] = true;
        done[82] = true;
        let order = [53u8, 54, 51, 58, 59]
            .into_iter()
            .chain(self.order.iter().copied())
            .chain(opts.iter().map(|(c, _)| u8::from(*c)));
        let mut encoded = Vec::new();
        for code in order {
            if std::mem::replace(&mut done[usize::from(code)], true) {
                continue;
            }
            if let Some(opt) = opts.get(OptionCode::from(code)) {
                encoded.push(opt.to_vec()?);
            }
        }
        for code in last {
            if let Some(opt) = opts.get(OptionCode::from(code)) {
                encoded.push(opt.to_vec()?);
            }
        }
        for bytes in encoded {
            // One byte stays free for the End option.
            if out.len() + bytes.len() < self.max_len {
                out.extend_from_slice(&bytes);
            } else {
                tracing::debug!(
                    option = bytes[0],
                    "option left out: over the client's maximum message size"
                );
            }
        }
        out.push(u8::from(OptionCode::End));
        if out.len() < MIN_REPLY {
            out.resize(MIN_REPLY, 0);
        }
        Ok(out)
    }
}

/// A datagram that is not a DHCP request we can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the fixed header and magic cookie.
    #[error("{0} bytes: too short for DHCP")]
    TooShort(usize),
    /// `op` is not BOOTREQUEST.
    #[error("not a BOOTREQUEST")]
    NotARequest,
    /// No DHCP magic cookie.
    #[error("no DHCP magic cookie")]
    NoMagic,
    /// `hlen` over 16.
    #[error("hardware address length {0} over 16")]
    BadHlen(u8),
    /// The decoder refused it.
    #[error("undecodable: {0}")]
    Wire(#[from] dhcproto::error::DecodeError),
}

/// Decodes a datagram received on port 67.
///
/// The options a server acts on are checked and re-laid before `dhcproto` sees them, and
/// every other option is dropped: `dhcproto` stops at the first option it cannot parse
/// (losing the ones after it, such as a client id behind a Windows-style ASCII FQDN), and
/// its debug builds assert on lengths that a client controls. Split options (RFC 3396) are
/// joined; option 81 is normalised to the canonical wire encoding.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    const FIXED: usize = 236;
    if bytes.len() < FIXED + MAGIC.len() {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[0] != 1 {
        return Err(DecodeError::NotARequest);
    }
    if bytes[FIXED..FIXED + 4] != MAGIC {
        return Err(DecodeError::NoMagic);
    }
    if bytes[2] > 16 {
        // dhcproto slices chaddr by hlen.
        return Err(DecodeError::BadHlen(bytes[2]));
    }
    let mut joined: Vec<Vec<u8>> = vec![Vec::new(); 256];
    let mut seen = [false; 256];
    let mut i = FIXED + 4;
    while i < bytes.len() {
        let code = bytes[i];
        match code {
            0 => i += 1,
            255 => break,
            _ => {
                let Some(&len) = bytes.get(i + 1) else { break };
                let Some(value) = bytes.get(i + 2..i + 2 + usize::from(len)) else {
                    break; // truncated: keep what came before
                };
                seen[usize::from(code)] = true;
                joined[usize::from(code)].extend_from_slice(value);
                i += 2 + usize::from(len);
            }
        }
    }
    let mut buf = Vec::with_capacity(bytes.len());
    buf.extend_from_slice(&bytes[..FIXED + 4]);
    for code in 1..=254u8 {
        if !seen[usize::from(code)] {
            continue;
        }
        let value = &joined[usize::from(code)];
        let kept: Option<std::borrow::Cow<[u8]>> = match code {
            53 if value.len() == 1 => Some(value.into()),
            50 | 54 if value.len() == 4 => Some(value.into()),
            57 if value.len() == 2 => Some(value.into()),
            55 | 61 | 82 if !value.is_empty() => Some(value.into()),
            12 if !value.is_empty() => Some(
                String::from_utf8_lossy(value)
                    .into_owned()
                    .into_bytes()
                    .into(),
            ),
            81 => normalize_fqdn(value).map(Into::into),
            _ => None,
        };
        if let Some(value) = kept {
            for chunk in value.chunks(255) {
                buf.push(code);
                buf.push(chunk.len() as u8);
                buf.extend_from_slice(chunk);
            }
        }
    }
    buf.push(255);
    Ok(Message::from_bytes(&buf)?)
}

/// Option 81 (RFC 4702) in canonical form: flags with E set, the two RCODEs, the name in
/// wire format ending in the root label. Accepts the deprecated ASCII form (E clear, as
/// Windows sends it) and partial wire names. `None` if the name is not a DNS name.
fn normalize_fqdn(value: &[u8]) -> Option<Vec<u8>> {
    let (&flags, rest) = value.split_first()?;
    let name = rest.get(2..)?;
    let labels: Vec<&[u8]> = if flags & 0x04 != 0 {
        let mut labels = Vec::new();
        let mut i = 0;
        while let Some(&len) = name.get(i) {
            if len == 0 {
                break;
            }
            if len > 63 {
                return None; // compression pointers are not allowed here
            }
            labels.push(name.get(i + 1..i + 1 + usize::from(len))?);
            i += 1 + usize::from(len);
        }
        labels
    } else {
        name.split(|&b| b == b'.')
            .filter(|l| !l.is_empty())
            .collect()
    };
    let mut out = vec![flags | 0x04, rest[0], rest[1]];
    for label in labels {
        if label.len() > 63 || !label.iter().all(|b| b.is_ascii_graphic() && *b != b'.') {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    (out.len() - 3 <= 255).then_some(out)
}

/// The client, as far as the decision goes.
struct Client {
    key: ClientKey,
    mac: MacAddr,
}

/// Decides what to answer `msg`. The caller must have run [`Pool::expire`] for `ctx.now`.
pub fn decide(msg: &Message, ctx: &Context<'_>, pool: &Pool) -> Decision {
    if msg.opcode() != Opcode::BootRequest {
        return Decision::Ignore(Ignored::NotARequest);
    }
    let Some(kind) = msg.opts().msg_type() else {
        return Decision::Ignore(Ignored::Bootp);
    };
    let Some(mac) = client_mac(msg) else {
        return Decision::Ignore(Ignored::NotEthernet);
    };
    let giaddr = msg.giaddr();
    if !giaddr.is_unspecified() && !ctx.network.contains(&giaddr) {
        return Decision::Ignore(Ignored::ForeignRelay(giaddr));
    }
    let client = Client {
        key: ClientKey::new(client_id(msg), mac),
        mac,
    };
    let denied = ctx.dhcp.unknown_clients == UnknownClients::Deny && !pool.is_known(mac);
    if denied
        && matches!(
            kind,
            MessageType::Discover | MessageType::Request | MessageType::Inform
        )
    {
        return Decision::Ignore(Ignored::UnknownClient);
    }
    match kind {
        MessageType::Discover => discover(msg, ctx, pool, &client),
        MessageType::Request => request(msg, ctx, pool, &client),
        MessageType::Decline => decline(msg, ctx, pool, &client),
        MessageType::Release => release(msg, ctx, pool, &client),
        MessageType::Inform => inform(msg, ctx),
        other => Decision::Ignore(Ignored::Unsupported(other)),
    }
}

fn discover(msg: &Message, ctx: &Context<'_>, pool: &Pool, client: &Client) -> Decision {
    let choice = match pool.choose(&client.key, client.mac, requested_ip(msg), ctx.now) {
        Ok(c) => c,
        Err(e) => return Decision::Ignore(Ignored::NoAddress(e)),
    };
    let mut reply = reply_to(msg, MessageType::Offer, ctx);
    reply.message.set_yiaddr(choice.addr);
    reply.message.set_ciaddr(Ipv4Addr::UNSPECIFIED);
    config_options(reply.message.opts_mut(), ctx, Some(lease_secs(ctx)));
    reply.to = destination(msg, MessageType::Offer, choice.addr, client.mac);
    reply.change = Some(Change::Offer {
        addr: choice.addr,
        client: client.key.clone(),
        mac: client.mac,
        until: ctx.now.saturating_add(OFFER_HOLD),
    });
    reply.probe = choice.fresh.then_some(choice.addr);
    Decision::Reply(reply)
}

fn request(msg: &Message, ctx: &Context<'_>, pool: &Pool, client: &Client) -> Decision {
    let ciaddr = msg.ciaddr();
    if let Some(server) = server_id(msg) {
        if server != ctx.server {
            // SELECTING another server's offer: ours is free again.
            return match pool.offered_to(&client.key, ctx.now) {
                Some(_) => Decision::Update(Change::ForgetOffer {
                    client: client.key.clone(),
                }),
                None => Decision::Ignore(Ignored::OtherServer(server)),
            };
        }
        // SELECTING our offer. Old clients put the address in ciaddr instead of option 50.
        let Some(addr) = requested_ip(msg).or((!ciaddr.is_unspecified()).then_some(ciaddr)) else {
            return Decision::Ignore(Ignored::Malformed("REQUEST without requested address"));
        };
        let held = pool.offered_to(&client.key, ctx.now) == Some(addr)
            || pool
                .binding_of(&client.key, client.mac)
                .is_some_and(|b| b.addr == addr);
        if pool
            .usable_by(addr, &client.key, client.mac, ctx.now)
            .is_err()
            || (!held && !pool.may_take_new(client.mac))
        {
            return nak(msg, ctx, "requested address not available");
        }
        return ack(msg, ctx, pool, client, addr);
    }
    // INIT-REBOOT (no ciaddr: the address is in option 50) or RENEWING/REBINDING (ciaddr).
    let addr = if ciaddr.is_unspecified() {
        match requested_ip(msg) {
            Some(a) => a,
            None => {
                return Decision::Ignore(Ignored::Malformed("REQUEST without requested address"))
            }
        }
    } else {
        ciaddr
    };
    if !ctx.network.contains(&addr) {
        return nak(msg, ctx, "address not on this network");
    }
    match pool.binding_of(&client.key, client.mac) {
        Some(b) if b.addr == addr => match pool.usable_by(addr, &client.key, client.mac, ctx.now) {
            Ok(()) => ack(msg, ctx, pool, client, addr),
            Err(_) => nak(msg, ctx, "address no longer available"),
        },
        Some(_) => nak(msg, ctx, "not your address"),
        None => match pool.usable_by(addr, &client.key, client.mac, ctx.now) {
            // We know better: it is someone else's.
            Err(Refusal::Leased) => nak(msg, ctx, "address leased to another client"),
            Err(Refusal::Static(owner)) if owner != client.mac => {
                nak(msg, ctx, "address assigned statically")
            }
            _ => Decision::Ignore(Ignored::NotOurs),
        },
    }
}

fn decline(msg: &Message, ctx: &Context<'_>, pool: &Pool, client: &Client) -> Decision {
    if let Some(server) = server_id(msg).filter(|s| *s != ctx.server) {
        return Decision::Ignore(Ignored::OtherServer(server));
    }
    let Some(addr) = requested_ip(msg) else {
        return Decision::Ignore(Ignored::Malformed("DECLINE without requested address"));
    };
    let ours = pool.offered_to(&client.key, ctx.now) == Some(addr)
        || pool
            .binding_at(addr)
            .is_some_and(|b| b.key() == client.key || b.mac == client.mac);
    if ours {
        Decision::Update(Change::Decline { addr })
    } else {
        Decision::Ignore(Ignored::NotOurs)
    }
}

fn release(msg: &Message, ctx: &Context<'_>, pool: &Pool, client: &Client) -> Decision {
    if let Some(server) = server_id(msg).filter(|s| *s != ctx.server) {
        return Decision::Ignore(Ignored::OtherServer(server));
    }
    let addr = msg.ciaddr();
    let ours = pool
        .binding_at(addr)
        .is_some_and(|b| b.is_active(ctx.now) && (b.key() == client.key || b.mac == client.mac));
    if ours {
        Decision::Update(Change::Release { addr })
    } else {
        Decision::Ignore(Ignored::NotOurs)
    }
}

fn inform(msg: &Message, ctx: &Context<'_>) -> Decision {
    let ciaddr = msg.ciaddr();
    if msg.giaddr().is_unspecified() && !ciaddr.is_unspecified() && !ctx.network.contains(&ciaddr) {
        return Decision::Ignore(Ignored::NotOurs);
    }
    let mut reply = reply_to(msg, MessageType::Ack, ctx);
    reply.message.set_ciaddr(ciaddr);
    config_options(reply.message.opts_mut(), ctx, None);
    reply.to = destination(
        msg,
        MessageType::Ack,
        Ipv4Addr::UNSPECIFIED,
        MacAddr([0; 6]),
    );
    Decision::Reply(reply)
}

/// A DHCPACK binding `addr` to the client for the configured lease time.
fn ack(msg: &Message, ctx: &Context<'_>, pool: &Pool, client: &Client, addr: Ipv4Addr) -> Decision {
    let secs = lease_secs(ctx);
    let previous = pool.binding_at(addr).filter(|b| b.mac == client.mac);
    let record = LeaseRecord {
        addr,
        mac: client.mac,
        client_id: client_id(msg).map(<[u8]>::to_vec),
        expiry: if secs == u32::MAX {
            INFINITE
        } else {
            ctx.now.saturating_add(u64::from(secs))
        },
        // A renewal without a hostname keeps the one sent before.
        hostname: client_hostname(msg).or_else(|| previous.and_then(|b| b.hostname.clone())),
    };
    let mut reply = reply_to(msg, MessageType::Ack, ctx);
    reply.message.set_yiaddr(addr);
    reply.message.set_ciaddr(msg.ciaddr());
    config_options(reply.message.opts_mut(), ctx, Some(secs));
    reply.to = destination(msg, MessageType::Ack, addr, client.mac);
    reply.change = Some(Change::Lease(record));
    Decision::Reply(reply)
}

fn nak(msg: &Message, ctx: &Context<'_>, why: &str) -> Decision {
    let mut reply = reply_to(msg, MessageType::Nak, ctx);
    reply
        .message
        .opts_mut()
        .insert(DhcpOption::Message(why.to_string()));
    if !msg.giaddr().is_unspecified() {
        // RFC 2131 §4.1: so the relay broadcasts it to the client.
        reply.message.set_flags(msg.flags().set_broadcast());
    }
    reply.to = destination(
        msg,
        MessageType::Nak,
        Ipv4Addr::UNSPECIFIED,
        MacAddr([0; 6]),
    );
    Decision::Reply(reply)
}

/// A reply skeleton: header fields copied from the request, options 53, 54, 61 and 82.
fn reply_to(msg: &Message, kind: MessageType, ctx: &Context<'_>) -> Reply {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(msg.htype())
        .set_chaddr(msg.chaddr())
        .set_xid(msg.xid())
        .set_flags(msg.flags())
        .set_giaddr(msg.giaddr());
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(ctx.server));
    for code in [
        OptionCode::ClientIdentifier,
        OptionCode::RelayAgentInformation,
    ] {
        if let Some(o) = msg.opts().get(code) {
            opts.insert(o.clone());
        }
    }
    let order = match msg.opts().get(OptionCode::ParameterRequestList) {
        Some(DhcpOption::ParameterRequestList(codes)) => {
            codes.iter().map(|c| u8::from(*c)).collect()
        }
        _ => Vec::new(),
    };
    let max_len = match msg.opts().get(OptionCode::MaxMessageSize) {
        Some(DhcpOption::MaxMessageSize(n)) => usize::from(*n).max(MIN_MAX_MESSAGE),
        _ => MIN_MAX_MESSAGE,
    }
    .min(MAX_REPLY + IP_UDP)
        - IP_UDP;
    Reply {
        message: m,
        to: Destination::Broadcast,
        change: None,
        probe: None,
        order,
        max_len,
    }
}

/// The lease time in seconds (0xffffffff: infinite): `DHCP_OPTION`'s `lease-time` if set
/// (raised to dnsmasq's 2-minute minimum, as `DHCP_RANGE`'s is), else `DHCP_RANGE`'s.
fn lease_secs(ctx: &Context<'_>) -> u32 {
    let configured = ctx.dhcp.options.iter().find(|o| o.code == 51);
    match configured.map(|o| &o.value) {
        Some(OptionValue::U32(secs)) => {
            let min = u32::try_from(LeaseTime::MIN.as_secs()).unwrap_or(120);
            (*secs).max(min)
        }
        _ => match ctx.dhcp.range.lease_time() {
            t @ LeaseTime::Finite(_) => t.as_wire_secs(),
            LeaseTime::Infinite => u32::MAX,
        },
    }
}

/// The options of an OFFER or ACK: lease times (when binding), dnsmasq's defaults (subnet
/// mask, broadcast, our address as DNS server, `DNS_DOMAIN`), then `DHCP_OPTION`, which
/// overrides a default of the same code.
fn config_options(opts: &mut DhcpOptions, ctx: &Context<'_>, lease: Option<u32>) {
    if let Some(secs) = lease {
        opts.insert(DhcpOption::AddressLeaseTime(secs));
        if secs != u32::MAX {
            // RFC 2131 §4.4.5: T1 = 0.5, T2 = 0.875 of the lease.
            opts.insert(DhcpOption::Renewal(secs / 2));
            opts.insert(DhcpOption::Rebinding((u64::from(secs) * 7 / 8) as u32));
        }
    }
    opts.insert(DhcpOption::SubnetMask(ctx.network.netmask()));
    opts.insert(DhcpOption::BroadcastAddr(ctx.network.broadcast()));
    opts.insert(DhcpOption::DomainNameServer(vec![ctx.server]));
    if !ctx.domain.is_empty() {
        opts.insert(DhcpOption::DomainName(ctx.domain.to_string()));
    }
    for o in &ctx.dhcp.options {
        if o.code == 51 {
            // Already in `lease` (see `lease_secs`); and RFC 2131 wants none in an INFORM reply.
            continue;
        }
        opts.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(o.code),
            o.payload_for_server(ctx.server),
        )));
    }
}

/// RFC 2131 §4.1, in its order: relay, then NAK broadcast, then ciaddr, then the
/// broadcast flag, then unicast to the hardware address.
fn destination(msg: &Message, kind: MessageType, yiaddr: Ipv4Addr, mac: MacAddr) -> Destination {
    let giaddr = msg.giaddr();
    if !giaddr.is_unspecified() {
        Destination::Relay(giaddr)
    } else if kind == MessageType::Nak {
        Destination::Broadcast
    } else if !msg.ciaddr().is_unspecified() {
        Destination::Unicast(msg.ciaddr())
    } else if msg.flags().broadcast() || yiaddr.is_unspecified() {
        Destination::Broadcast
    } else {
        Destination::Hardware { addr: yiaddr, mac }
    }
}

fn client_mac(msg: &Message) -> Option<MacAddr> {
    if msg.htype() != HType::Eth {
        return None;
    }
    <[u8; 6]>::try_from(msg.chaddr()).ok().map(MacAddr)
}

fn client_id(msg: &Message) -> Option<&[u8]> {
    match msg.opts().get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

fn requested_ip(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(a)) if !a.is_unspecified() => Some(*a),
        _ => None,
    }
}

fn server_id(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    }
}

/// The hostname the client sent: option 81's name (RFC 4702 prefers it over 12), else
/// option 12, without a trailing dot or NUL; `None` if empty.
pub fn client_hostname(msg: &Message) -> Option<String> {
    let fqdn = match msg.opts().get(OptionCode::ClientFQDN) {
        Some(DhcpOption::ClientFQDN(f)) => Some(f.domain().to_string()),
        _ => None,
    };
    let host = match msg.opts().get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => Some(h.clone()),
        _ => None,
    };
    fqdn.into_iter()
        .chain(host)
        .map(|n| {
            // Some clients NUL-terminate option 12.
            n.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .trim_end_matches('.')
                .to_string()
        })
        .find(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
