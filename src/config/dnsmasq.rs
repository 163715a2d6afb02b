//! dnsmasq syntax, as the old tool passed it through: `DHCP_RANGE` (dnsmasq's
//! `--dhcp-range`) and `DHCP_OPTION` (`--dhcp-option`).
//!
//! Owns: turning those strings into a [`DhcpRange`] and a list of [`DhcpOption`]s whose
//! payloads are the wire bytes (RFC 2132; RFC 3397 for `domain-search`, RFC 3442 for
//! `classless-static-route`).
//!
//! Invariants:
//! - No I/O; pure functions of their input (and of the lab network, for the range).
//! - A [`DhcpRange`] lies inside the lab network, start ≤ end, neither end being the
//!   network's own or broadcast address.
//! - A [`DhcpOption`]'s `payload` is exactly what follows the code and length bytes on the
//!   wire, 1–255 bytes, and agrees with its `value`. Codes are unique in a list.
//! - Options the DHCP server itself owns (message type, server identifier, …) are refused
//!   here, so the server never has to choose between the user's value and its own.
//! - `0.0.0.0` in an address-list option is kept as given: dnsmasq reads it as "this
//!   server's address", which only the DHCP server knows; it substitutes it with
//!   [`DhcpOption::payload_for_server`].
//!
//! Deliberately not supported (refused with a message, never silently ignored): tags
//! (`set:`, `tag:`), `encap:`, `vi-encap:`, `vendor:`, `option6:`, dnsmasq's `static` and
//! `proxy` range modes, and options with no value.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::values::{parse_domain, parse_seconds, LEASE_UNITS};
use super::ConfigError;

const EXAMPLE_RANGE: &str = "198.18.0.100,198.18.0.200,255.255.254.0,12h";
const EXAMPLE_OPTIONS: &str = "option:router,198.18.0.1;option:dns-server,198.18.0.1";

/// How long a lease lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTime {
    /// At least [`LeaseTime::MIN`], below the DHCP "infinite" value.
    Finite(Duration),
    /// Never expires (dnsmasq's `infinite`; 0xffffffff on the wire).
    Infinite,
}

impl LeaseTime {
    /// dnsmasq's default lease time, used when `DHCP_RANGE` gives none.
    pub const DEFAULT: LeaseTime = LeaseTime::Finite(Duration::from_secs(3600));

    /// dnsmasq's minimum; shorter leases mostly make clients renew in a storm.
    pub const MIN: Duration = Duration::from_secs(120);

    /// The value of DHCP option 51: seconds, or 0xffffffff for infinite.
    pub fn as_wire_secs(&self) -> u32 {
        match self {
            // Parsing keeps finite times below u32::MAX, so this never saturates.
            LeaseTime::Finite(d) => u32::try_from(d.as_secs()).unwrap_or(u32::MAX - 1),
            LeaseTime::Infinite => u32::MAX,
        }
    }
}

/// A lease time in dnsmasq's words: `45m`, `12h`, `1d`, `2w`, `infinite`, or seconds.
pub(crate) fn parse_lease_time(s: &str) -> Result<LeaseTime, String> {
    if s.trim().eq_ignore_ascii_case("infinite") {
        return Ok(LeaseTime::Infinite);
    }
    let secs = parse_seconds(s, LEASE_UNITS).map_err(|_| {
        format!("{s:?} is not a lease time (45m, 12h, 1d, 2w, infinite or seconds)")
    })?;
    if secs < LeaseTime::MIN.as_secs() {
        return Err(format!(
            "lease time {s:?} is shorter than dnsmasq's minimum of 2 minutes"
        ));
    }
    if secs >= u64::from(u32::MAX) {
        return Err(format!(
            "lease time {s:?} is longer than DHCP can say; write infinite"
        ));
    }
    Ok(LeaseTime::Finite(Duration::from_secs(secs)))
}

/// The addresses the DHCP server hands out dynamically, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpRange {
    start: Ipv4Addr,
    end: Ipv4Addr,
    lease_time: LeaseTime,
}

impl DhcpRange {
    /// Parses `start,end[,netmask][,leasetime]` and checks it against the lab `network`:
    /// both ends inside it (and neither its network nor broadcast address), start ≤ end,
    /// and a netmask, if given, equal to the network's. Errors name `DHCP_RANGE`.
    pub fn parse(s: &str, network: Ipv4Net) -> Result<DhcpRange, ConfigError> {
        let err = |problem: String| ConfigError::new("DHCP_RANGE", problem, EXAMPLE_RANGE);
        let fields: Vec<&str> = s.split(',').map(str::trim).collect();
        if let Some(first) = fields.first() {
            let lower = first.to_ascii_lowercase();
            if ["set:", "tag:", "tag:!"]
                .iter()
                .any(|t| lower.starts_with(t))
            {
                return Err(err(format!(
                    "{s:?} uses a dnsmasq tag ({first:?}); tags are not supported"
                )));
            }
        }
        if fields.len() < 2 {
            return Err(err(format!("{s:?} has no end address")));
        }
        let address = |field: &str| -> Result<Ipv4Addr, ConfigError> {
            if ["static", "proxy"].contains(&field.to_ascii_lowercase().as_str()) {
                return Err(err(format!(
                    "{s:?} uses dnsmasq's {field} mode, which is not supported"
                )));
            }
            field
                .parse()
                .map_err(|_| err(format!("{s:?}: {field:?} is not an IPv4 address")))
        };
        let start = address(fields[0])?;
        let end = address(fields[1])?;
        let mut rest = &fields[2..];
        if let Some(mask) = rest.first().and_then(|f| f.parse::<Ipv4Addr>().ok()) {
            rest = &rest[1..];
            let bits = u32::from(mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(err(format!("{s:?}: {mask} is not a netmask")));
            }
            if mask != network.netmask() {
                return Err(err(format!(
                    "{s:?}: netmask {mask} differs from NETWORK_CIDR {network} (netmask {})",
                    network.netmask()
                )));
            }
        }
        let lease_time = match rest {
            [] => LeaseTime::DEFAULT,
            [time] => parse_lease_time(time).map_err(|p| err(format!("{s:?}: {p}")))?,
            [first, ..] => {
                return Err(err(format!(
                    "{s:?} has unexpected fields from {first:?} on; the form is start,end[,netmask][,leasetime]"
                )))
            }
        };
        for address in [start, end] {
            if !network.contains(&address) {
                return Err(err(format!(
                    "{s:?}: {address} is outside NETWORK_CIDR {network}"
                )));
            }
            if address == network.network() || address == network.broadcast() {
                return Err(err(format!(
                    "{s:?}: {address} is the network or broadcast address of NETWORK_CIDR {network}"
                )));
            }
        }
        if start > end {
            return Err(err(format!("{s:?}: start {start} is after end {end}")));
        }
        Ok(DhcpRange {
            start,
            end,
            lease_time,
        })
    }

    /// First address of the range.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }

    /// Last address of the range (inclusive).
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }

    /// The lease time given, or [`LeaseTime::DEFAULT`].
    pub fn lease_time(&self) -> LeaseTime {
        self.lease_time
    }

    /// Whether `address` is in the range.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&address)
    }

    /// How many addresses the range holds (at least 1).
    pub fn size(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }
}

/// One DHCP option to send, parsed from a `DHCP_OPTION` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpOption {
    /// The option code (RFC 2132 and later).
    pub code: u8,
    /// dnsmasq's name for the code, when it is one we know (also when given by number).
    pub name: Option<&'static str>,
    /// The value as understood; tells, among others, where 0.0.0.0 means "this server".
    pub value: OptionValue,
    /// The wire payload (after code and length), 1–255 bytes, 0.0.0.0 left as is.
    pub payload: Vec<u8>,
}

impl DhcpOption {
    /// The payload with each `0.0.0.0` of an address list replaced by `server`, the
    /// address the DHCP server answers from (dnsmasq's meaning of 0.0.0.0). Other kinds of
    /// value are returned unchanged: in a route, 0.0.0.0 means "on-link", not "this server".
    pub fn payload_for_server(&self, server: Ipv4Addr) -> Vec<u8> {
        match &self.value {
            OptionValue::Ipv4List(addresses) => addresses
                .iter()
                .map(|a| if a.is_unspecified() { server } else { *a })
                .flat_map(|a| a.octets())
                .collect(),
            _ => self.payload.clone(),
        }
    }
}

/// The typed value of a [`DhcpOption`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// Addresses of servers (router, dns-server, ntp-server, …). `0.0.0.0` stands for the
    /// DHCP server's own address.
    Ipv4List(Vec<Ipv4Addr>),
    /// A single address that is not a server (netmask, broadcast); no substitution.
    Ipv4(Ipv4Addr),
    /// Text (hostname, domain-name, tftp-server, bootfile-name, or an unknown option's
    /// string), sent as its bytes without NUL.
    Text(String),
    /// One byte 0/1.
    Bool(bool),
    /// A one-byte number.
    U8(u8),
    /// A two-byte number, network order.
    U16(u16),
    /// A four-byte number, network order (also the times 51, 58, 59).
    U32(u32),
    /// Option 33: (destination, router) pairs.
    StaticRoutes(Vec<(Ipv4Addr, Ipv4Addr)>),
    /// Option 121: (destination network, router) pairs; a router 0.0.0.0 means on-link.
    ClasslessRoutes(Vec<(Ipv4Net, Ipv4Addr)>),
    /// Option 119: domain names, lowercased, encoded uncompressed.
    DomainList(Vec<String>),
    /// Raw bytes of an unknown option given as hex (`01:02:ff`) or as a number.
    Bytes(Vec<u8>),
}

/// How the values of a known option are read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ipv4,
    Ipv4List,
    Text,
    Domain,
    Bool,
    U8,
    U16,
    Seconds,
    StaticRoutes,
    ClasslessRoutes,
    DomainList,
}

struct Known {
    code: u8,
    name: &'static str,
    kind: Kind,
    example: &'static str,
}

const fn known(code: u8, name: &'static str, kind: Kind, example: &'static str) -> Known {
    Known {
        code,
        name,
        kind,
        example,
    }
}

/// The options we know by name, with dnsmasq's names (`dnsmasq --help dhcp`).
const KNOWN: &[Known] = &[
    known(1, "netmask", Kind::Ipv4, "option:netmask,255.255.254.0"),
    known(3, "router", Kind::Ipv4List, "option:router,198.18.0.1"),
    known(
        6,
        "dns-server",
        Kind::Ipv4List,
        "option:dns-server,198.18.0.1,198.18.0.2",
    ),
    known(
        7,
        "log-server",
        Kind::Ipv4List,
        "option:log-server,198.18.0.5",
    ),
    known(12, "hostname", Kind::Text, "option:hostname,gateway"),
    known(15, "domain-name", Kind::Domain, "option:domain-name,lab"),
    known(
        19,
        "ip-forward-enable",
        Kind::Bool,
        "option:ip-forward-enable,0",
    ),
    known(26, "mtu", Kind::U16, "option:mtu,1500"),
    known(28, "broadcast", Kind::Ipv4, "option:broadcast,198.18.1.255"),
    known(
        33,
        "static-route",
        Kind::StaticRoutes,
        "option:static-route,10.1.0.5,198.18.0.1",
    ),
    known(
        42,
        "ntp-server",
        Kind::Ipv4List,
        "option:ntp-server,198.18.0.1",
    ),
    known(
        44,
        "netbios-ns",
        Kind::Ipv4List,
        "option:netbios-ns,198.18.0.5",
    ),
    known(
        46,
        "netbios-nodetype",
        Kind::U8,
        "option:netbios-nodetype,8",
    ),
    known(51, "lease-time", Kind::Seconds, "option:lease-time,12h"),
    known(58, "T1", Kind::Seconds, "option:T1,6h"),
    known(59, "T2", Kind::Seconds, "option:T2,10h"),
    known(
        66,
        "tftp-server",
        Kind::Text,
        "option:tftp-server,198.18.0.5",
    ),
    known(
        67,
        "bootfile-name",
        Kind::Text,
        "option:bootfile-name,pxelinux.0",
    ),
    known(
        119,
        "domain-search",
        Kind::DomainList,
        "option:domain-search,lab,example.net",
    ),
    known(
        121,
        "classless-static-route",
        Kind::ClasslessRoutes,
        "option:classless-static-route,10.1.0.0/16,198.18.0.1",
    ),
];

/// Codes the DHCP server sets itself (or that only clients send), with dnsmasq's names
/// where it has one, so `option:server-ip-address` is refused as owned, not as unknown.
const SERVER_OWNED: &[(u8, &str)] = &[
    (0, "pad"),
    (50, "requested-address"),
    (52, "overload"),
    (53, "message-type"),
    (54, "server-ip-address"),
    (55, "parameter-request"),
    (57, "max-message-size"),
    (61, "client-id"),
    (81, "FQDN"),
    (82, "agent-id"),
    (255, "end"),
];

/// Parses `DHCP_OPTION`: entries separated by `;` or newlines (outside double quotes),
/// each `option:NAME,values`, `option:NUMBER,values` or `NUMBER,values`. Blank entries are
/// skipped. Errors name `DHCP_OPTION`, the entry and the option's expected form.
///
/// Values of a known option are read by its type. For a number we do not know, the values
/// are read the way dnsmasq does, approximately: all IPv4 addresses → an address list;
/// else a single value that is `"quoted"` → that text; `xx:xx:…` → those bytes; a decimal
/// number → the smallest of 1, 2 or 4 bytes that holds it; anything else → the text as
/// written (commas included).
pub fn parse_dhcp_options(s: &str) -> Result<Vec<DhcpOption>, ConfigError> {
    let entries = split_outside_quotes(s, |c| c == ';' || c == '\n').ok_or_else(|| {
        ConfigError::new(
            "DHCP_OPTION",
            format!("{s:?} has an unclosed double quote"),
            EXAMPLE_OPTIONS,
        )
    })?;
    let mut options: Vec<DhcpOption> = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let option = parse_entry(entry)?;
        if options.iter().any(|o| o.code == option.code) {
            return Err(ConfigError::new(
                "DHCP_OPTION",
                format!("{entry:?}: option {} is given twice", describe(option.code)),
                EXAMPLE_OPTIONS,
            ));
        }
        options.push(option);
    }
    Ok(options)
}

/// `router (3)` or `option 224`.
fn describe(code: u8) -> String {
    match KNOWN.iter().find(|k| k.code == code) {
        Some(k) => format!("{} ({code})", k.name),
        None => format!("{code}"),
    }
}

fn parse_entry(entry: &str) -> Result<DhcpOption, ConfigError> {
    let err = |problem: String, example| ConfigError::new("DHCP_OPTION", problem, example);
    // Entries were split outside quotes already, so quotes are balanced here.
    let fields = split_outside_quotes(entry, |c| c == ',').unwrap_or_else(|| vec![entry]);
    let key = fields[0].trim();
    let values: Vec<&str> = fields[1..].iter().map(|v| v.trim()).collect();
    let lower = key.to_ascii_lowercase();
    for prefix in ["tag:", "set:", "encap:", "vi-encap:", "vendor:", "option6:"] {
        if lower.starts_with(prefix) {
            return Err(err(
                format!("{entry:?}: dnsmasq's {prefix} form is not supported"),
                EXAMPLE_OPTIONS,
            ));
        }
    }
    let code = match lower.strip_prefix("option:") {
        Some(number) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            parse_code(entry, number)?
        }
        Some(name) => code_by_name(entry, name)?,
        None if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) => {
            parse_code(entry, &lower)?
        }
        None => {
            let hint = match KNOWN.iter().find(|k| k.name.eq_ignore_ascii_case(key)) {
                Some(k) => format!("; write option:{}", k.name),
                None => String::new(),
            };
            return Err(err(
                format!("{entry:?} does not start with option:NAME or a number{hint}"),
                EXAMPLE_OPTIONS,
            ));
        }
    };
    let known = KNOWN.iter().find(|k| k.code == code);
    let example = known.map_or("224,01:02:ff", |k| k.example);
    if values.is_empty() || values.iter().all(|v| v.is_empty()) {
        return Err(err(
            format!("{entry:?}: option {} has no value", describe(code)),
            example,
        ));
    }
    let value = match known {
        Some(k) => parse_known(k.kind, code, &values),
        None => parse_unknown(&values),
    }
    .map_err(|p| {
        err(
            format!("{entry:?}: option {}: {p}", describe(code)),
            example,
        )
    })?;
    let payload = encode(&value);
    if payload.len() > 255 {
        return Err(err(
            format!(
                "{entry:?}: option {} is {} bytes long; at most 255 fit in one option",
                describe(code),
                payload.len()
            ),
            example,
        ));
    }
    Ok(DhcpOption {
        code,
        name: known.map(|k| k.name),
        value,
        payload,
    })
}

fn parse_code(entry: &str, number: &str) -> Result<u8, ConfigError> {
    let code = number.parse::<u8>().map_err(|_| {
        ConfigError::new(
            "DHCP_OPTION",
            format!("{entry:?}: {number} is not an option code (1-254)"),
            EXAMPLE_OPTIONS,
        )
    })?;
    // Pad (0) and end (255) are in the owned list, so every code left is 1-254.
    check_not_owned(entry, code)?;
    Ok(code)
}

fn code_by_name(entry: &str, name: &str) -> Result<u8, ConfigError> {
    if let Some(k) = KNOWN.iter().find(|k| k.name.eq_ignore_ascii_case(name)) {
        return Ok(k.code);
    }
    if let Some((code, _)) = SERVER_OWNED
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
    {
        check_not_owned(entry, *code)?;
    }
    let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
    Err(ConfigError::new(
        "DHCP_OPTION",
        format!(
            "{entry:?}: unknown option name {name:?}; known names: {} (or give the number, as in 3,198.18.0.1)",
            names.join(", ")
        ),
        EXAMPLE_OPTIONS,
    ))
}

fn check_not_owned(entry: &str, code: u8) -> Result<(), ConfigError> {
    match SERVER_OWNED.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => Err(ConfigError::new(
            "DHCP_OPTION",
            format!("{entry:?}: option {code} ({name}) is set by the DHCP server itself"),
            EXAMPLE_OPTIONS,
        )),
        None => Ok(()),
    }
}

fn parse_known(kind: Kind, code: u8, values: &[&str]) -> Result<OptionValue, String> {
    Ok(match kind {
        Kind::Ipv4 => {
            let address = parse_ipv4(one(values)?)?;
            if code == 1 && !is_netmask(address) {
                return Err(format!("{address} is not a netmask"));
            }
            OptionValue::Ipv4(address)
        }
        Kind::Ipv4List => OptionValue::Ipv4List(
            values
                .iter()
                .map(|v| parse_ipv4(v))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Text => OptionValue::Text(parse_text(one(values)?)?),
        Kind::Domain => OptionValue::Text(parse_domain(&parse_text(one(values)?)?)?),
        Kind::Bool => {
            let v = one(values)?;
            OptionValue::Bool(match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(format!("{v:?} is not 0 or 1")),
            })
        }
        Kind::U8 => {
            let v = one(values)?;
            let n: u8 = parse_number(v)?;
            // RFC 2132 §8.7: B-node, P-node, M-node, H-node.
            if code == 46 && ![1, 2, 4, 8].contains(&n) {
                return Err(format!("{v:?} is not a node type (1, 2, 4 or 8)"));
            }
            OptionValue::U8(n)
        }
        Kind::U16 => {
            let v = one(values)?;
            let n: u16 = parse_number(v)?;
            // RFC 2132 §5.1: the smallest legal MTU is 68.
            if code == 26 && n < 68 {
                return Err(format!("{v:?} is below the minimum MTU of 68"));
            }
            OptionValue::U16(n)
        }
        Kind::Seconds => {
            let v = one(values)?;
            if v.eq_ignore_ascii_case("infinite") {
                OptionValue::U32(u32::MAX)
            } else {
                let secs = parse_seconds(v, LEASE_UNITS)?;
                OptionValue::U32(u32::try_from(secs).map_err(|_| format!("{v:?} is too long"))?)
            }
        }
        Kind::StaticRoutes => {
            let pairs = pairs(values)?;
            let mut routes = Vec::with_capacity(pairs.len());
            for (destination, router) in pairs {
                let destination = parse_ipv4(destination)?;
                // RFC 2132 §5.8: the default route is illegal here (use option 3 or 121).
                if destination.is_unspecified() {
                    return Err(
                        "destination 0.0.0.0 is not allowed (use option:router)".to_string()
                    );
                }
                routes.push((destination, parse_ipv4(router)?));
            }
            OptionValue::StaticRoutes(routes)
        }
        Kind::ClasslessRoutes => {
            let pairs = pairs(values)?;
            let mut routes = Vec::with_capacity(pairs.len());
            for (destination, router) in pairs {
                let net = Ipv4Net::from_str(destination)
                    .map_err(|_| format!("{destination:?} is not a network like 10.1.0.0/16"))?;
                // Only the prefix's octets go on the wire; host bits would be dropped
                // silently and route something else than what was written.
                if net.trunc() != net {
                    return Err(format!(
                        "{destination:?} has host bits set; did you mean {}?",
                        net.trunc()
                    ));
                }
                routes.push((net, parse_ipv4(router)?));
            }
            OptionValue::ClasslessRoutes(routes)
        }
        Kind::DomainList => OptionValue::DomainList(
            values
                .iter()
                .map(|v| parse_text(v).and_then(|t| parse_domain(&t)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// dnsmasq's guesswork for options it has no type for; see [`parse_dhcp_options`].
fn parse_unknown(values: &[&str]) -> Result<OptionValue, String> {
    if let Ok(addresses) = values
        .iter()
        .map(|v| v.parse::<Ipv4Addr>())
        .collect::<Result<Vec<_>, _>>()
    {
        return Ok(OptionValue::Ipv4List(addresses));
    }
    if let [value] = values {
        if value.starts_with('"') {
            return parse_text(value).map(OptionValue::Text);
        }
        if let Some(bytes) = parse_hex_bytes(value) {
            return Ok(OptionValue::Bytes(bytes));
        }
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = parse_number(value)?;
            let bytes = n.to_be_bytes();
            let width = match n {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                _ => 4,
            };
            return Ok(OptionValue::Bytes(bytes[4 - width..].to_vec()));
        }
    }
    parse_text(&values.join(",")).map(OptionValue::Text)
}

/// `01:02:ff`: two or more pairs of hex digits joined by `:`.
fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let pairs: Vec<&str> = s.split(':').collect();
    if pairs.len() < 2 {
        return None;
    }
    pairs
        .iter()
        .map(|p| {
            if p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()) {
                u8::from_str_radix(p, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

fn one<'a>(values: &[&'a str]) -> Result<&'a str, String> {
    match values {
        [value] => Ok(value),
        _ => Err(format!(
            "takes one value, got {} (quote a text that contains commas)",
            values.len()
        )),
    }
}

fn pairs<'a>(values: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    if values.len() % 2 != 0 {
        return Err(format!(
            "takes destination,router pairs, got {} values",
            values.len()
        ));
    }
    Ok(values.chunks(2).map(|c| (c[0], c[1])).collect())
}

fn parse_ipv4(v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("{v:?} is not an IPv4 address"))
}

fn parse_number<T: FromStr>(v: &str) -> Result<T, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not a number"));
    }
    v.parse().map_err(|_| format!("{v:?} is out of range"))
}

/// A text value, plain or in double quotes (which may hold commas and `;`). Not empty.
fn parse_text(v: &str) -> Result<String, String> {
    let text = match v.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains('"'))
            .ok_or_else(|| format!("{v:?} is not a properly quoted text"))?,
        None if v.contains('"') => return Err(format!("{v:?} has a stray double quote")),
        None => v,
    };
    if text.is_empty() {
        return Err("the text is empty".to_string());
    }
    Ok(text.to_string())
}

fn is_netmask(address: Ipv4Addr) -> bool {
    let bits = u32::from(address);
    bits.leading_ones() + bits.trailing_zeros() == 32
}

/// The wire payload of a value.
fn encode(value: &OptionValue) -> Vec<u8> {
    match value {
        OptionValue::Ipv4List(addresses) => addresses.iter().flat_map(|a| a.octets()).collect(),
        OptionValue::Ipv4(address) => address.octets().to_vec(),
        OptionValue::Text(text) => text.as_bytes().to_vec(),
        OptionValue::Bool(b) => vec![u8::from(*b)],
        OptionValue::U8(n) => vec![*n],
        OptionValue::U16(n) => n.to_be_bytes().to_vec(),
        OptionValue::U32(n) => n.to_be_bytes().to_vec(),
        OptionValue::StaticRoutes(routes) => routes
            .iter()
            .flat_map(|(d, r)| d.octets().into_iter().chain(r.octets()))
            .collect(),
        // RFC 3442 §3: prefix length, then only the significant octets of the
        // destination, then the router.
        OptionValue::ClasslessRoutes(routes) => routes
            .iter()
            .flat_map(|(net, router)| {
                let significant = usize::from(net.prefix_len()).div_ceil(8);
                std::iter::once(net.prefix_len())
                    .chain(net.network().octets().into_iter().take(significant))
                    .chain(router.octets())
            })
            .collect(),
        // RFC 3397: names in DNS wire format; compression is optional and we do not
        // compress, which every client must accept.
        OptionValue::DomainList(names) => names
            .iter()
            .flat_map(|name| {
                name.split('.')
                    .flat_map(|label| {
                        // parse_domain keeps labels at ≤ 63 bytes, so the length fits.
                        std::iter::once(label.len() as u8).chain(label.bytes())
                    })
                    .chain(std::iter::once(0))
                    .collect::<Vec<u8>>()
            })
            .collect(),
        OptionValue::Bytes(bytes) => bytes.clone(),
    }
}

/// Splits at separators that are not inside double quotes; `None` if a quote is unclosed.
fn split_outside_quotes(s: &str, is_separator: impl Fn(char) -> bool) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && is_separator(c) {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Ipv4Net {
        "198.18.0.0/23".parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn secs(n: u64) -> LeaseTime {
        LeaseTime::Finite(Duration::from_secs(n))
    }

    #[test]
    fn lease_times() {
        let cases = [
            ("45m", secs(2700)),
            ("12h", secs(43_200)),
            ("1d", secs(86_400)),
            ("2w", secs(1_209_600)),
            ("120", secs(120)),
            ("2m", secs(120)),
            ("3600s", secs(3600)),
            ("12H", secs(43_200)),
            ("infinite", LeaseTime::Infinite),
            ("INFINITE", LeaseTime::Infinite),
        ];
        for (s, want) in cases {
            assert_eq!(parse_lease_time(s), Ok(want), "{s}");
        }
        for (s, needle) in [
            ("119", "2 minutes"),
            ("1m", "2 minutes"),
            ("0", "2 minutes"),
            ("1y", "not a lease time"),
            ("forever", "not a lease time"),
            ("-1", "not a lease time"),
            ("1000000w", "infinite"),
        ] {
            let e = parse_lease_time(s).expect_err(s);
            assert!(e.contains(needle), "{s}: {e}");
        }
        assert_eq!(LeaseTime::DEFAULT.as_wire_secs(), 3600);
        assert_eq!(LeaseTime::Infinite.as_wire_secs(), 0xffff_ffff);
    }

    #[test]
    fn range_forms() {
        let cases = [
            (
                "198.18.0.100,198.18.0.200",
                "198.18.0.100",
                "198.18.0.200",
                LeaseTime::DEFAULT,
            ),
            (
                "198.18.0.100,198.18.0.200,255.255.254.0,12h",
                "198.18.0.100",
                "198.18.0.200",
                secs(43_200),
            ),
            (
                "198.18.0.100, 198.18.1.200 ,45m",
                "198.18.0.100",
                "198.18.1.200",
                secs(2700),
            ),
            (
                "198.18.0.1,198.18.1.254,255.255.254.0",
                "198.18.0.1",
                "198.18.1.254",
                LeaseTime::DEFAULT,
            ),
            (
                "198.18.0.9,198.18.0.9,infinite",
                "198.18.0.9",
                "198.18.0.9",
                LeaseTime::Infinite,
            ),
            (
                "198.18.0.100,198.18.0.200,86400",
                "198.18.0.100",
                "198.18.0.200",
                secs(86_400),
            ),
        ];
        for (s, start, end, lease) in cases {
            let range = DhcpRange::parse(s, net()).expect(s);
            assert_eq!(
                (range.start(), range.end(), range.lease_time()),
                (ip(start), ip(end), lease),
                "{s}"
            );
        }
        let range = DhcpRange::parse("198.18.0.100,198.18.0.200", net()).unwrap();
        assert_eq!(range.size(), 101);
        assert!(range.contains(ip("198.18.0.150")));
        assert!(!range.contains(ip("198.18.0.201")));
    }

    #[test]
    fn range_errors() {
        let cases = [
            ("198.18.0.100", "no end address"),
            ("198.18.0.100,", "not an IPv4 address"),
            ("198.18.0.100,198.18.0.300", "not an IPv4 address"),
            ("198.18.0.100,static", "static mode"),
            ("198.18.0.0,proxy", "proxy mode"),
            ("set:lab,198.18.0.100,198.18.0.200", "tag"),
            ("198.18.0.200,198.18.0.100", "after end"),
            (
                "198.18.0.100,198.18.2.10",
                "198.18.2.10 is outside NETWORK_CIDR 198.18.0.0/23",
            ),
            ("10.0.0.1,10.0.0.9", "outside NETWORK_CIDR 198.18.0.0/23"),
            ("198.18.0.0,198.18.0.9", "network or broadcast"),
            ("198.18.0.10,198.18.1.255", "network or broadcast"),
            (
                "198.18.0.100,198.18.0.200,255.255.255.0",
                "differs from NETWORK_CIDR",
            ),
            ("198.18.0.100,198.18.0.200,255.0.255.0", "not a netmask"),
            ("198.18.0.100,198.18.0.200,1m", "2 minutes"),
            ("198.18.0.100,198.18.0.200,12x", "not a lease time"),
            (
                "198.18.0.100,198.18.0.200,255.255.254.0,12h,x",
                "unexpected fields",
            ),
            (
                "198.18.0.100,198.18.0.200,12h,255.255.254.0",
                "unexpected fields",
            ),
        ];
        for (s, needle) in cases {
            let e = DhcpRange::parse(s, net()).expect_err(s);
            let line = e.to_string();
            assert_eq!(e.variable, "DHCP_RANGE");
            assert!(line.starts_with("DHCP_RANGE: "), "{line}");
            assert!(line.contains(needle), "{s}: {line}");
            assert!(line.ends_with(EXAMPLE_RANGE), "{line}");
        }
    }

    fn one_option(s: &str) -> DhcpOption {
        let options = parse_dhcp_options(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(options.len(), 1, "{s}");
        options.into_iter().next().unwrap()
    }

    #[test]
    fn option_payloads() {
        let cases: &[(&str, u8, &[u8])] = &[
            ("option:router,198.18.0.1", 3, &[198, 18, 0, 1]),
            ("3,198.18.0.1", 3, &[198, 18, 0, 1]),
            ("option:3,198.18.0.1", 3, &[198, 18, 0, 1]),
            ("OPTION:Router , 198.18.0.1 ", 3, &[198, 18, 0, 1]),
            (
                "option:dns-server,198.18.0.1,1.1.1.1",
                6,
                &[198, 18, 0, 1, 1, 1, 1, 1],
            ),
            ("option:dns-server,0.0.0.0", 6, &[0, 0, 0, 0]),
            ("option:netmask,255.255.254.0", 1, &[255, 255, 254, 0]),
            ("option:broadcast,198.18.1.255", 28, &[198, 18, 1, 255]),
            ("option:log-server,198.18.0.5", 7, &[198, 18, 0, 5]),
            ("option:hostname,gw", 12, b"gw"),
            ("option:domain-name,lab", 15, b"lab"),
            ("option:domain-name,Lab.Example.", 15, b"lab.example"),
            ("option:domain-name,\"lab\"", 15, b"lab"),
            ("option:ip-forward-enable,0", 19, &[0]),
            ("option:ip-forward-enable,1", 19, &[1]),
            ("option:mtu,1500", 26, &[0x05, 0xdc]),
            ("option:mtu,9000", 26, &[0x23, 0x28]),
            (
                "option:static-route,10.1.0.5,198.18.0.1,10.2.0.0,198.18.0.2",
                33,
                &[10, 1, 0, 5, 198, 18, 0, 1, 10, 2, 0, 0, 198, 18, 0, 2],
            ),
            ("option:ntp-server,198.18.0.1", 42, &[198, 18, 0, 1]),
            ("option:netbios-ns,198.18.0.5", 44, &[198, 18, 0, 5]),
            ("option:netbios-nodetype,8", 46, &[8]),
            ("option:lease-time,3600", 51, &[0, 0, 0x0e, 0x10]),
            ("option:lease-time,1h", 51, &[0, 0, 0x0e, 0x10]),
            ("option:lease-time,infinite", 51, &[0xff, 0xff, 0xff, 0xff]),
            ("option:T1,30m", 58, &[0, 0, 0x07, 0x08]),
            ("option:t2,3150", 59, &[0, 0, 0x0c, 0x4e]),
            ("option:tftp-server,198.18.0.5", 66, b"198.18.0.5"),
            ("option:bootfile-name,pxelinux.0", 67, b"pxelinux.0"),
            ("option:bootfile-name,\"a,b;c\"", 67, b"a,b;c"),
            ("67,\"boot file\"", 67, b"boot file"),
            (
                "option:domain-search,lab,Example.NET",
                119,
                b"\x03lab\x00\x07example\x03net\x00",
            ),
            (
                "option:classless-static-route,10.1.0.0/16,198.18.0.1",
                121,
                &[16, 10, 1, 198, 18, 0, 1],
            ),
            (
                "option:classless-static-route,0.0.0.0/0,198.18.0.1,10.0.0.0/8,198.18.0.2,192.168.1.0/24,0.0.0.0,10.9.8.7/32,198.18.0.3,10.128.0.0/9,198.18.0.4",
                121,
                &[
                    0, 198, 18, 0, 1, //
                    8, 10, 198, 18, 0, 2, //
                    24, 192, 168, 1, 0, 0, 0, 0, //
                    32, 10, 9, 8, 7, 198, 18, 0, 3, //
                    9, 10, 128, 198, 18, 0, 4,
                ],
            ),
            // Unknown codes: dnsmasq's guesses.
            ("224,198.18.0.1,198.18.0.2", 224, &[198, 18, 0, 1, 198, 18, 0, 2]),
            ("option:224,01:02:ff", 224, &[1, 2, 0xff]),
            ("224,\"hello, world\"", 224, b"hello, world"),
            ("224,hello", 224, b"hello"),
            ("224,hello,world", 224, b"hello,world"),
            ("224,7", 224, &[7]),
            ("224,300", 224, &[1, 44]),
            ("224,70000", 224, &[0, 1, 0x11, 0x70]),
        ];
        for (s, code, payload) in cases {
            let option = one_option(s);
            assert_eq!(option.code, *code, "{s}");
            assert_eq!(option.payload, *payload, "{s}");
            assert_eq!(option.payload, encode(&option.value), "{s}");
        }
        assert_eq!(one_option("3,198.18.0.1").name, Some("router"));
        assert_eq!(one_option("224,1").name, None);
        assert_eq!(
            one_option("option:dns-server,198.18.0.1,1.1.1.1").value,
            OptionValue::Ipv4List(vec![ip("198.18.0.1"), ip("1.1.1.1")])
        );
    }

    #[test]
    fn server_address_marker() {
        let option = one_option("option:dns-server,0.0.0.0,1.1.1.1");
        assert_eq!(option.payload, [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(
            option.payload_for_server(ip("198.18.0.2")),
            [198, 18, 0, 2, 1, 1, 1, 1]
        );
        // In a classless route, 0.0.0.0 means "on-link" and must stay.
        let route = one_option("option:classless-static-route,10.1.0.0/16,0.0.0.0");
        assert_eq!(
            route.payload_for_server(ip("198.18.0.2")),
            [16, 10, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn option_lists() {
        for s in [
            "option:router,198.18.0.1;option:dns-server,198.18.0.1,198.18.0.2;option:domain-name,lab",
            "option:router,198.18.0.1\noption:dns-server,198.18.0.1,198.18.0.2\n\noption:domain-name,lab\n",
            " option:router,198.18.0.1 ;\r\noption:dns-server,198.18.0.1,198.18.0.2; option:domain-name,lab;",
        ] {
            let options = parse_dhcp_options(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            let codes: Vec<u8> = options.iter().map(|o| o.code).collect();
            assert_eq!(codes, [3, 6, 15], "{s:?}");
        }
        assert_eq!(parse_dhcp_options(""), Ok(vec![]));
        assert_eq!(parse_dhcp_options(" ;\n"), Ok(vec![]));
    }

    #[test]
    fn option_errors() {
        let cases = [
            (
                "option:routr,198.18.0.1",
                "unknown option name \"routr\"; known names: netmask, router",
            ),
            ("router,198.18.0.1", "write option:router"),
            ("option:router", "has no value"),
            ("option:router,", "has no value"),
            (
                "option:router,198.18.0",
                "option router (3): \"198.18.0\" is not an IPv4 address",
            ),
            ("option:router,gw.lab", "not an IPv4 address"),
            ("option:mtu,15000000", "out of range"),
            ("option:mtu,60", "minimum MTU"),
            ("option:mtu,1500,9000", "takes one value"),
            ("option:mtu,x", "not a number"),
            ("option:netmask,255.0.255.0", "not a netmask"),
            ("option:netbios-nodetype,3", "node type"),
            ("option:ip-forward-enable,2", "not 0 or 1"),
            ("option:domain-name,la_b", "not a domain name"),
            ("option:domain-name,lab,example", "takes one value"),
            ("option:domain-search,lab,-bad", "not a domain name"),
            ("option:hostname,\"gw", "unclosed double quote"),
            ("option:hostname,g\"w\"", "stray double quote"),
            ("option:hostname,\"\"", "empty"),
            ("option:classless-static-route,10.1.0.0/16", "pairs"),
            (
                "option:classless-static-route,10.1.0.5/16,198.18.0.1",
                "host bits",
            ),
            (
                "option:classless-static-route,10.1.0.0,198.18.0.1",
                "not a network",
            ),
            (
                "option:classless-static-route,10.1.0.0/33,198.18.0.1",
                "not a network",
            ),
            ("option:static-route,10.1.0.5", "pairs"),
            ("option:static-route,0.0.0.0,198.18.0.1", "not allowed"),
            ("option:lease-time,forever", "not a duration"),
            ("option:53,1", "set by the DHCP server"),
            ("54,198.18.0.1", "set by the DHCP server"),
            (
                "option:server-ip-address,198.18.0.1",
                "set by the DHCP server",
            ),
            ("option:client-id,01:02", "set by the DHCP server"),
            ("61,01:02", "set by the DHCP server"),
            ("option:0,1", "set by the DHCP server"),
            ("option:255,1", "set by the DHCP server"),
            ("option:256,1", "not an option code"),
            (
                "tag:lab,option:router,198.18.0.1",
                "tag: form is not supported",
            ),
            ("option6:dns-server,[::]", "option6: form is not supported"),
            (
                "vendor:PXEClient,1,0.0.0.0",
                "vendor: form is not supported",
            ),
            ("option:router,198.18.0.1;3,198.18.0.2", "given twice"),
            (
                "option:router,198.18.0.1\nbogus",
                "does not start with option:NAME",
            ),
        ];
        for (s, needle) in cases {
            let e = parse_dhcp_options(s).expect_err(s);
            let line = e.to_string();
            assert_eq!(e.variable, "DHCP_OPTION");
            assert!(line.starts_with("DHCP_OPTION: "), "{line}");
            assert!(line.contains("; expected a form like "), "{line}");
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains(needle), "{s:?}: {line}");
        }
        // The example fits the option that was wrong.
        let e = parse_dhcp_options("option:mtu,x").unwrap_err();
        assert_eq!(e.example, "option:mtu,1500");
        let long = format!("option:domain-search,{}", vec!["a".repeat(60); 5].join(","));
        let e = parse_dhcp_options(&long).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
    }
}
