//! Parsers from Proxmox's own formats to the inventory: QEMU `netN` and `ipconfigN`, LXC
//! `netN`, cloud-init network dumps (v1 and v2), and whole guest configs → [`Guest`].
//!
//! Invariants: pure functions of their inputs, no I/O, no logging. A value is parsed once
//! into typed values (`MacAddr`, `Ipv4Net`, ...) and nothing downstream re-parses it.
//! Damage stays local: one malformed NIC is skipped and reported as a [`ParseWarning`]; one
//! malformed `ipconfigN` only loses that NIC's address; only a guest with NICs of which none
//! can be read is an error, so the caller keeps the guest's last known state.
//! Every error names the key it came from (`net1`, `ipconfig0`) and the form expected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use super::types::{ClusterResource, GuestConfig};
use crate::inventory::{Guest, GuestKind, Ipv4Config, Ipv6Config, MacAddr, Nic};

#[cfg(test)]
mod tests;

/// The form of a QEMU `netN` value, for error messages.
pub const QEMU_NET_FORM: &str = "MODEL=XX:XX:XX:XX:XX:XX,...";
/// The form of an LXC `netN` value, for error messages.
pub const LXC_NET_FORM: &str = "name=eth0,hwaddr=XX:XX:XX:XX:XX:XX,...";

const TAG_FORM: &str = "tag=N with N from 1 to 4094";
const LINK_DOWN_FORM: &str = "link_down=0 or link_down=1";
const QEMU_IP_FORM: &str = "ip=IPv4/PREFIX (like ip=198.18.0.20/23) or ip=dhcp";
const LXC_IP_FORM: &str = "ip=IPv4/PREFIX (like ip=198.18.0.10/23), ip=dhcp or ip=manual";
const QEMU_IP6_FORM: &str = "ip6=IPv6/PREFIX (like ip6=fd00::10/64), ip6=dhcp or ip6=auto";
const LXC_IP6_FORM: &str =
    "ip6=IPv6/PREFIX (like ip6=fd00::10/64), ip6=dhcp, ip6=auto or ip6=manual";
const GW_FORM: &str = "gw=IPv4 address (like gw=198.18.0.1)";
const GW6_FORM: &str = "gw6=IPv6 address (like gw6=fd00::1)";
const YAML_MAC_FORM: &str = "a MAC address like bc:24:11:2e:6a:01";
const YAML_ADDRESS_FORM: &str = "an IP address, optionally with /PREFIX (like 198.18.0.20/23)";
const YAML_NETMASK_FORM: &str = "a dotted netmask (255.255.254.0) or a prefix length (23)";
const YAML_GATEWAY_FORM: &str = "an IP address (like 198.18.0.1)";
const YAML_BOOL_FORM: &str = "true or false";
const V1_SUBNET_TYPES: &str =
    "static, static6, dhcp, dhcp4, dhcp6, ipv6_slaac, ipv6_dhcpv6-stateless, ipv6_dhcpv6-stateful or manual";

/// What is wrong with one value, before the caller says which key it came from
/// (see [`ValueError::in_key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A MAC is given but is not six hex pairs.
    #[error("{value:?} has no valid MAC; expected {expected}")]
    BadMac {
        /// The whole value.
        value: String,
        /// The form expected.
        expected: &'static str,
    },
    /// No MAC at all.
    #[error("{value:?} has no MAC; expected {expected}")]
    NoMac {
        /// The whole value.
        value: String,
        /// The form expected.
        expected: &'static str,
    },
    /// One `key=value` part of a property string is malformed.
    #[error("{value:?} has {field}={got:?}; expected {expected}")]
    BadProperty {
        /// The whole value.
        value: String,
        /// The part's key (`tag`, `ip`, ...).
        field: &'static str,
        /// The part's value.
        got: String,
        /// The form expected.
        expected: &'static str,
    },
    /// One field of a cloud-init document is malformed.
    #[error("{field}: {got:?} is not valid; expected {expected}")]
    BadField {
        /// Where in the document (`subnets[0].address`).
        field: String,
        /// What was there.
        got: String,
        /// The form expected.
        expected: &'static str,
    },
    /// The value is not text (an object, a list, null).
    #[error("{got} is not text; expected {expected}")]
    NotText {
        /// The value, as JSON.
        got: String,
        /// The form expected.
        expected: &'static str,
    },
}

impl ValueError {
    /// Attaches the key the value came from (`net1`, `ipconfig0`, `cloud-init eth0`).
    pub fn in_key(self, key: impl Into<String>) -> ParseError {
        ParseError::Value {
            key: key.into(),
            error: self,
        }
    }
}

/// A Proxmox value leazzard could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The value of one config key (or cloud-init interface) is malformed.
    #[error("{key}: {error}")]
    Value {
        /// `net1`, `ipconfig0`, `cloud-init eth0`.
        key: String,
        /// What is wrong with it.
        error: ValueError,
    },
    /// The cloud-init dump is not YAML.
    #[error("cloud-init network dump is not valid YAML: {message}")]
    CloudInitYaml {
        /// The YAML parser's message (with line and column).
        message: String,
    },
    /// The cloud-init dump is YAML but not a network config leazzard knows.
    #[error(
        "cloud-init network dump: {message}; expected network config version 1 (a `config:` list) \
         or 2 (an `ethernets:` map)"
    )]
    CloudInitShape {
        /// What is wrong with it.
        message: String,
    },
    /// A guest has NICs, and none of them could be read.
    #[error("{guest}: none of its {} NICs could be read: {}", .errors.len(), join(.errors))]
    NoUsableNic {
        /// `qemu/100`.
        guest: String,
        /// One error per NIC.
        errors: Vec<ParseError>,
    },
    /// A `qemu`/`lxc` entry of `/cluster/resources` lacks a usable `id`, `node` or `vmid`.
    #[error("cluster resource {id}: {message}")]
    Resource {
        /// The entry's `id`, or `?`.
        id: String,
        /// The deserializer's message.
        message: String,
    },
}

fn join(errors: &[ParseError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A problem that lost part of a guest (or of a list), not all of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseWarning {
    /// A `netN` could not be read; the guest is kept without that NIC.
    #[error("{0}; NIC skipped")]
    NicSkipped(ParseError),
    /// An `ipconfigN` could not be read; the NIC is kept.
    #[error(
        "{0}; the NIC's address comes from the cloud-init dump if it has one, else stays unset"
    )]
    AddressIgnored(ParseError),
    /// An interface, address or subnet of a cloud-init dump could not be read.
    #[error("{0}; ignored")]
    CloudInitIgnored(ParseError),
    /// An entry of `/cluster/resources` could not be read; that guest is left out of the list.
    #[error("{0}; guest skipped")]
    ResourceSkipped(ParseError),
}

/// A QEMU `netN` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuNet {
    /// `virtio`, `e1000`, ...; `None` when only `macaddr=` is given.
    pub model: Option<String>,
    /// The MAC (`MODEL=MAC` or `macaddr=MAC`).
    pub mac: MacAddr,
    /// `bridge=`.
    pub bridge: Option<String>,
    /// `tag=`.
    pub vlan: Option<u16>,
    /// `link_down=1`.
    pub link_down: bool,
}

/// Configured addressing of one interface: QEMU `ipconfigN`, the address keys of an LXC
/// `netN`, or one interface of a cloud-init dump. Missing parts are `Unset`/`None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpConfig {
    /// `ip=`.
    pub ipv4: Ipv4Config,
    /// `gw=`.
    pub gateway4: Option<Ipv4Addr>,
    /// `ip6=`.
    pub ipv6: Ipv6Config,
    /// `gw6=`.
    pub gateway6: Option<Ipv6Addr>,
}

impl Default for IpConfig {
    fn default() -> Self {
        IpConfig {
            ipv4: Ipv4Config::Unset,
            gateway4: None,
            ipv6: Ipv6Config::Unset,
            gateway6: None,
        }
    }
}

impl IpConfig {
    /// Per address family, `self` where it configures something, else `other`. A gateway goes
    /// with the address it came with, so the two sources are never mixed within a family.
    pub fn or(self, other: IpConfig) -> IpConfig {
        let (ipv4, gateway4) = match (self.ipv4, other.ipv4) {
            (Ipv4Config::Unset, Ipv4Config::Unset) => {
                (Ipv4Config::Unset, self.gateway4.or(other.gateway4))
            }
            (Ipv4Config::Unset, theirs) => (theirs, other.gateway4),
            (ours, _) => (ours, self.gateway4),
        };
        let (ipv6, gateway6) = match (self.ipv6, other.ipv6) {
            (Ipv6Config::Unset, Ipv6Config::Unset) => {
                (Ipv6Config::Unset, self.gateway6.or(other.gateway6))
            }
            (Ipv6Config::Unset, theirs) => (theirs, other.gateway6),
            (ours, _) => (ours, self.gateway6),
        };
        IpConfig {
            ipv4,
            gateway4,
            ipv6,
            gateway6,
        }
    }
}

/// An LXC `netN` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcNet {
    /// `name=` (the interface name inside the container).
    pub name: Option<String>,
    /// `hwaddr=`.
    pub mac: MacAddr,
    /// `bridge=`.
    pub bridge: Option<String>,
    /// `tag=`.
    pub vlan: Option<u16>,
    /// `link_down=1`.
    pub link_down: bool,
    /// `ip=`, `gw=`, `ip6=`, `gw6=`.
    pub ip: IpConfig,
}

/// One interface of a cloud-init network dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudInitIface {
    /// v1 `name`, or the v2 `ethernets` key.
    pub name: Option<String>,
    /// v1 `mac_address`, v2 `match: macaddress` (or `macaddress`); `None` when not given.
    pub mac: Option<MacAddr>,
    /// Its addressing.
    pub ip: IpConfig,
}

/// A parsed cloud-init network dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudInitNetwork {
    /// Ethernet interfaces, in document order.
    pub ifaces: Vec<CloudInitIface>,
    /// Interfaces or subnets that could not be read (the rest are still in `ifaces`).
    pub warnings: Vec<ParseWarning>,
}

/// A guest read from its config, with what had to be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedGuest {
    /// The guest, with every NIC that could be read.
    pub guest: Guest,
    /// What was skipped or ignored, for the log.
    pub warnings: Vec<ParseWarning>,
}

/// Reads a Proxmox boolean as property strings and older API releases write it:
/// `1|0`, `yes|no`, `on|off`, `true|false` (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Splits tags as Proxmox accepts them (`;`, `,` or whitespace between), dropping empty ones
/// and repeats.
pub fn split_tags(tags: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags.split(|c: char| c == ';' || c == ',' || c.is_whitespace()) {
        if !tag.is_empty() && !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

/// The `key=value` parts of a Proxmox property string; a part without `=` is a value for the
/// format's default key. Empty parts (a trailing comma) are skipped.
fn properties(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (part, None),
        })
}

/// NIC models qemu-server knows (`$nic_model_list`); each is also a key alias: `virtio=MAC`
/// means `model=virtio,macaddr=MAC`.
const QEMU_MODELS: &[&str] = &[
    "virtio",
    "e1000",
    "e1000e",
    "rtl8139",
    "vmxnet3",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
];

/// The other keys of a QEMU `netN`, so that an unknown `KEY=MAC` can be taken for a model
/// this list does not know yet, and nothing else can.
const QEMU_NET_KEYS: &[&str] = &[
    "model",
    "macaddr",
    "bridge",
    "firewall",
    "link_down",
    "tag",
    "trunks",
    "rate",
    "mtu",
    "queues",
];

struct PropertyParser<'a> {
    value: &'a str,
}

impl PropertyParser<'_> {
    fn bad(&self, field: &'static str, got: &str, expected: &'static str) -> ValueError {
        ValueError::BadProperty {
            value: self.value.to_string(),
            field,
            got: got.to_string(),
            expected,
        }
    }

    fn mac(&self, got: &str, expected: &'static str) -> Result<MacAddr, ValueError> {
        got.parse().map_err(|_| ValueError::BadMac {
            value: self.value.to_string(),
            expected,
        })
    }

    fn vlan(&self, got: &str) -> Result<u16, ValueError> {
        match got.parse::<u16>() {
            Ok(tag) if (1..=4094).contains(&tag) => Ok(tag),
            _ => Err(self.bad("tag", got, TAG_FORM)),
        }
    }

    fn link_down(&self, got: &str) -> Result<bool, ValueError> {
        parse_bool(got).ok_or_else(|| self.bad("link_down", got, LINK_DOWN_FORM))
    }

    fn ipv4(&self, got: &str, allow_manual: bool) -> Result<Ipv4Config, ValueError> {
        let expected = if allow_manual {
            LXC_IP_FORM
        } else {
            QEMU_IP_FORM
        };
        match got.to_ascii_lowercase().as_str() {
            "dhcp" => Ok(Ipv4Config::Dhcp),
            "manual" if allow_manual => Ok(Ipv4Config::Manual),
            // Proxmox requires the prefix; without it the network would be a guess.
            _ => got
                .parse::<Ipv4Net>()
                .map(Ipv4Config::Static)
                .map_err(|_| self.bad("ip", got, expected)),
        }
    }

    fn ipv6(&self, got: &str, allow_manual: bool) -> Result<Ipv6Config, ValueError> {
        let expected = if allow_manual {
            LXC_IP6_FORM
        } else {
            QEMU_IP6_FORM
        };
        match got.to_ascii_lowercase().as_str() {
            "dhcp" => Ok(Ipv6Config::Dhcp),
            "auto" => Ok(Ipv6Config::Auto),
            "manual" if allow_manual => Ok(Ipv6Config::Manual),
            _ => got
                .parse::<Ipv6Net>()
                .map(Ipv6Config::Static)
                .map_err(|_| self.bad("ip6", got, expected)),
        }
    }

    fn gw(&self, got: &str) -> Result<Ipv4Addr, ValueError> {
        got.parse().map_err(|_| self.bad("gw", got, GW_FORM))
    }

    fn gw6(&self, got: &str) -> Result<Ipv6Addr, ValueError> {
        got.parse().map_err(|_| self.bad("gw6", got, GW6_FORM))
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Parses a QEMU `netN` value: `MODEL=MAC,bridge=..,tag=N,link_down=0|1,...` in any key
/// order, also `model=MODEL,macaddr=MAC`. Keys leazzard does not use are ignored.
pub fn parse_qemu_net(value: &str) -> Result<QemuNet, ValueError> {
    let p = PropertyParser { value };
    let mut net = QemuNet {
        model: None,
        mac: MacAddr([0; 6]),
        bridge: None,
        vlan: None,
        link_down: false,
    };
    let mut mac = None;
    for (key, val) in properties(value) {
        match (key, val) {
            ("macaddr", Some(v)) => mac = Some(p.mac(v, QEMU_NET_FORM)?),
            ("model", Some(v)) => net.model = non_empty(v),
            ("bridge", Some(v)) => net.bridge = non_empty(v),
            ("tag", Some(v)) => net.vlan = Some(p.vlan(v)?),
            ("link_down", Some(v)) => net.link_down = p.link_down(v)?,
            // `model` is the format's default key.
            (model, None) => net.model = Some(model.to_string()),
            (model, Some(v)) if QEMU_MODELS.contains(&model) => {
                net.model = Some(model.to_string());
                mac = Some(p.mac(v, QEMU_NET_FORM)?);
            }
            // A model newer than our list: `KEY=MAC` with a key that is nothing else.
            (model, Some(v)) if !QEMU_NET_KEYS.contains(&model) => {
                if let Ok(m) = v.parse::<MacAddr>() {
                    net.model = Some(model.to_string());
                    mac = Some(m);
                }
            }
            _ => {}
        }
    }
    net.mac = mac.ok_or_else(|| ValueError::NoMac {
        value: value.to_string(),
        expected: QEMU_NET_FORM,
    })?;
    Ok(net)
}

/// Parses a QEMU `ipconfigN` value: `ip=IPv4/PREFIX|dhcp,gw=IPv4,ip6=IPv6/PREFIX|dhcp|auto,gw6=IPv6`.
/// Absent keys stay `Unset`/`None`.
pub fn parse_qemu_ipconfig(value: &str) -> Result<IpConfig, ValueError> {
    let p = PropertyParser { value };
    let mut ip = IpConfig::default();
    for (key, val) in properties(value) {
        match (key, val) {
            ("ip", Some(v)) => ip.ipv4 = p.ipv4(v, false)?,
            ("gw", Some(v)) => ip.gateway4 = Some(p.gw(v)?),
            ("ip6", Some(v)) => ip.ipv6 = p.ipv6(v, false)?,
            ("gw6", Some(v)) => ip.gateway6 = Some(p.gw6(v)?),
            _ => {}
        }
    }
    Ok(ip)
}

/// Parses an LXC `netN` value: `name=eth0,bridge=..,hwaddr=MAC,ip=..,gw=..,ip6=..,gw6=..,tag=..`
/// in any key order. Keys leazzard does not use (`type`, `firewall`, `mtu`, `rate`) are ignored.
pub fn parse_lxc_net(value: &str) -> Result<LxcNet, ValueError> {
    let p = PropertyParser { value };
    let mut mac = None;
    let mut net = LxcNet {
        name: None,
        mac: MacAddr([0; 6]),
        bridge: None,
        vlan: None,
        link_down: false,
        ip: IpConfig::default(),
    };
    for (key, val) in properties(value) {
        let Some(v) = val else { continue };
        match key {
            "hwaddr" => mac = Some(p.mac(v, LXC_NET_FORM)?),
            "name" => net.name = non_empty(v),
            "bridge" => net.bridge = non_empty(v),
            "tag" => net.vlan = Some(p.vlan(v)?),
            "link_down" => net.link_down = p.link_down(v)?,
            "ip" => net.ip.ipv4 = p.ipv4(v, true)?,
            "gw" => net.ip.gateway4 = Some(p.gw(v)?),
            "ip6" => net.ip.ipv6 = p.ipv6(v, true)?,
            "gw6" => net.ip.gateway6 = Some(p.gw6(v)?),
            _ => {}
        }
    }
    net.mac = mac.ok_or_else(|| ValueError::NoMac {
        value: value.to_string(),
        expected: LXC_NET_FORM,
    })?;
    Ok(net)
}

// ---------------------------------------------------------------------------------------------
// Cloud-init network dumps

/// Parses the YAML of `GET .../cloudinit/dump?type=network`: network config v1 (what Proxmox
/// generates: a `config:` list of `physical` entries with `subnets`) or v2 (netplan style, as
/// users write in `cicustom` snippets: an `ethernets:` map), at top level or under `network:`.
///
/// Only Ethernet interfaces are read (v1 `physical`, v2 `ethernets`): bonds, bridges and VLANs
/// have no MAC of their own to join on. Per family the first address wins. An empty dump, or
/// `config: disabled`, gives no interfaces. An unreadable interface or subnet is left out with
/// a warning; only a document that is not YAML, or not a network config, is an error.
pub fn parse_cloudinit_network(yaml: &str) -> Result<CloudInitNetwork, ParseError> {
    let mut out = CloudInitNetwork::default();
    if yaml.trim().is_empty() {
        return Ok(out);
    }
    let root: Yaml = serde_norway::from_str(yaml).map_err(|e| ParseError::CloudInitYaml {
        message: e.to_string(),
    })?;
    let root = untag(&root);
    let net = match root.get("network").map(untag) {
        Some(n @ Yaml::Mapping(_)) => n,
        _ => root,
    };
    match net {
        Yaml::Null => return Ok(out),
        Yaml::Mapping(_) => {}
        other => {
            return Err(ParseError::CloudInitShape {
                message: format!("the document is {}, not a mapping", yaml_kind(other)),
            })
        }
    }
    let version = net.get("version").and_then(yaml_text);
    match version.as_deref() {
        Some("1") => parse_v1(net, &mut out)?,
        Some("2") => parse_v2(net, &mut out)?,
        None if net.get("config").is_some() => parse_v1(net, &mut out)?,
        None if net.get("ethernets").is_some() => parse_v2(net, &mut out)?,
        None => {}
        Some(v) => {
            return Err(ParseError::CloudInitShape {
                message: format!("version {v} is not supported"),
            })
        }
    }
    Ok(out)
}

fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => untag(&t.value),
        _ => v,
    }
}

fn yaml_kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "empty",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A scalar as text; YAML may have typed what we read as text (`dhcp4: yes` stays a string
/// under YAML 1.2, a netmask may be a number).
fn yaml_text(v: &Yaml) -> Option<String> {
    match untag(v) {
        Yaml::String(s) => Some(s.trim().to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Renders a YAML value for an error message.
fn yaml_shown(v: &Yaml) -> String {
    yaml_text(v).unwrap_or_else(|| yaml_kind(v).to_string())
}

fn yaml_list(v: Option<&Yaml>) -> &[Yaml] {
    match v.map(untag) {
        Some(Yaml::Sequence(items)) => items,
        _ => &[],
    }
}

fn bad_field(field: impl Into<String>, got: &Yaml, expected: &'static str) -> ValueError {
    ValueError::BadField {
        field: field.into(),
        got: yaml_shown(got),
        expected,
    }
}

fn iface_key(name: Option<&str>, fallback: impl FnOnce() -> String) -> String {
    match name {
        Some(n) => format!("cloud-init {n}"),
        None => format!("cloud-init {}", fallback()),
    }
}

fn yaml_mac(v: &Yaml, field: &str) -> Result<MacAddr, ValueError> {
    yaml_text(v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_field(field, v, YAML_MAC_FORM))
}

/// An address with its prefix from `/prefix` or a separate netmask. Without either, the host
/// prefix: the address itself, which is what names need, is still right.
fn address_with_mask(address: &str, netmask: Option<&str>) -> Option<IpNet> {
    if address.contains('/') {
        return address.parse().ok();
    }
    let ip: IpAddr = address.parse().ok()?;
    match netmask {
        None => Some(IpNet::from(ip)),
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
            IpNet::new(ip, m.parse().ok()?).ok()
        }
        Some(m) => IpNet::with_netmask(ip, m.parse().ok()?).ok(),
    }
}

fn set_ipv4(ip: &mut IpConfig, config: Ipv4Config) {
    if ip.ipv4 == Ipv4Config::Unset {
        ip.ipv4 = config;
    }
}

fn set_ipv6(ip: &mut IpConfig, config: Ipv6Config) {
    if ip.ipv6 == Ipv6Config::Unset {
        ip.ipv6 = config;
    }
}

fn set_static(ip: &mut IpConfig, net: IpNet) {
    match net {
        IpNet::V4(n) => set_ipv4(ip, Ipv4Config::Static(n)),
        IpNet::V6(n) => set_ipv6(ip, Ipv6Config::Static(n)),
    }
}

fn set_gateway(ip: &mut IpConfig, gw: IpAddr) {
    match gw {
        IpAddr::V4(g) => ip.gateway4 = ip.gateway4.or(Some(g)),
        IpAddr::V6(g) => ip.gateway6 = ip.gateway6.or(Some(g)),
    }
}

fn parse_v1(net: &Yaml, out: &mut CloudInitNetwork) -> Result<(), ParseError> {
    let items = match net.get("config").map(untag) {
        None | Some(Yaml::Null) => return Ok(()),
        Some(Yaml::Sequence(items)) => items,
        // cloud-init's way to say "leave networking alone".
        Some(Yaml::String(s)) if s == "disabled" => return Ok(()),
        Some(other) => {
            return Err(ParseError::CloudInitShape {
                message: format!("`config` is {}, not a list", yaml_kind(other)),
            })
        }
    };
    for (i, item) in items.iter().enumerate() {
        if item.get("type").and_then(yaml_text).as_deref() != Some("physical") {
            continue;
        }
        let name = item.get("name").and_then(yaml_text);
        let key = iface_key(name.as_deref(), || format!("config[{i}]"));
        let mac = match item.get("mac_address") {
            None => None,
            Some(v) => match yaml_mac(v, "mac_address") {
                Ok(m) => Some(m),
                Err(e) => {
                    out.warnings
                        .push(ParseWarning::CloudInitIgnored(e.in_key(key)));
                    continue;
                }
            },
        };
        let mut ip = IpConfig::default();
        for (j, subnet) in yaml_list(item.get("subnets")).iter().enumerate() {
            if let Err(e) = apply_v1_subnet(&mut ip, subnet, j) {
                out.warnings
                    .push(ParseWarning::CloudInitIgnored(e.in_key(key.clone())));
            }
        }
        out.ifaces.push(CloudInitIface { name, mac, ip });
    }
    Ok(())
}

fn apply_v1_subnet(ip: &mut IpConfig, subnet: &Yaml, j: usize) -> Result<(), ValueError> {
    let field = |name: &str| format!("subnets[{j}].{name}");
    let kind = subnet
        .get("type")
        .and_then(yaml_text)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match kind.as_str() {
        "static" | "static6" => {
            let address = subnet.get("address").unwrap_or(&Yaml::Null);
            let netmask = subnet.get("netmask").or_else(|| subnet.get("prefix"));
            let net = yaml_text(address)
                .and_then(|a| address_with_mask(&a, netmask.and_then(yaml_text).as_deref()))
                .ok_or_else(|| match netmask {
                    Some(m) if yaml_text(address).is_some_and(|a| a.parse::<IpAddr>().is_ok()) => {
                        bad_field(field("netmask"), m, YAML_NETMASK_FORM)
                    }
                    _ => bad_field(field("address"), address, YAML_ADDRESS_FORM),
                })?;
            set_static(ip, net);
            if let Some(g) = subnet.get("gateway") {
                let gw: IpAddr = yaml_text(g)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad_field(field("gateway"), g, YAML_GATEWAY_FORM))?;
                set_gateway(ip, gw);
            }
        }
        "dhcp" | "dhcp4" => set_ipv4(ip, Ipv4Config::Dhcp),
        "dhcp6" | "ipv6_dhcpv6-stateful" => set_ipv6(ip, Ipv6Config::Dhcp),
        // Stateless DHCPv6 hands out options only; the address comes from SLAAC.
        "ipv6_slaac" | "ipv6_dhcpv6-stateless" => set_ipv6(ip, Ipv6Config::Auto),
        "manual" => set_ipv4(ip, Ipv4Config::Manual),
        _ => {
            return Err(bad_field(
                field("type"),
                subnet.get("type").unwrap_or(&Yaml::Null),
                V1_SUBNET_TYPES,
            ))
        }
    }
    Ok(())
}

fn parse_v2(net: &Yaml, out: &mut CloudInitNetwork) -> Result<(), ParseError> {
    let ethernets = match net.get("ethernets").map(untag) {
        None | Some(Yaml::Null) => return Ok(()),
        Some(Yaml::Mapping(m)) => m,
        Some(other) => {
            return Err(ParseError::CloudInitShape {
                message: format!("`ethernets` is {}, not a mapping", yaml_kind(other)),
            })
        }
    };
    for (i, (name, eth)) in ethernets.iter().enumerate() {
        let name = yaml_text(name);
        let key = iface_key(name.as_deref(), || format!("ethernets[{i}]"));
        let mac_field = eth
            .get("match")
            .and_then(|m| m.get("macaddress"))
            .map(|v| (v, "match.macaddress"))
            .or_else(|| eth.get("macaddress").map(|v| (v, "macaddress")));
        let mac = match mac_field {
            None => None,
            Some((v, field)) => match yaml_mac(v, field) {
                Ok(m) => Some(m),
                Err(e) => {
                    out.warnings
                        .push(ParseWarning::CloudInitIgnored(e.in_key(key)));
                    continue;
                }
            },
        };
        let mut ip = IpConfig::default();
        let mut warn = |e: ValueError| {
            out.warnings
                .push(ParseWarning::CloudInitIgnored(e.in_key(key.clone())))
        };
        // Static addresses first: where DHCP is also on, the static one is the one we know.
        for (j, entry) in yaml_list(eth.get("addresses")).iter().enumerate() {
            // netplan also allows `- 198.18.0.30/23: {lifetime: 0}`.
            let text = match untag(entry) {
                Yaml::Mapping(m) if m.len() == 1 => m.keys().next().and_then(yaml_text),
                _ => yaml_text(entry),
            };
            match text.and_then(|a| address_with_mask(&a, None)) {
                Some(n) => set_static(&mut ip, n),
                None => warn(bad_field(
                    format!("addresses[{j}]"),
                    entry,
                    YAML_ADDRESS_FORM,
                )),
            }
        }
        for flag in ["dhcp4", "dhcp6", "accept-ra"] {
            let Some(v) = eth.get(flag) else { continue };
            match (flag, yaml_bool(v)) {
                ("dhcp4", Some(true)) => set_ipv4(&mut ip, Ipv4Config::Dhcp),
                ("dhcp6", Some(true)) => set_ipv6(&mut ip, Ipv6Config::Dhcp),
                // Router advertisements accepted: SLAAC.
                ("accept-ra", Some(true)) => set_ipv6(&mut ip, Ipv6Config::Auto),
                (_, Some(_)) => {}
                (_, None) => warn(bad_field(flag, v, YAML_BOOL_FORM)),
            }
        }
        for field in ["gateway4", "gateway6"] {
            if let Some(v) = eth.get(field) {
                match yaml_text(v).and_then(|s| s.parse::<IpAddr>().ok()) {
                    Some(gw) => set_gateway(&mut ip, gw),
                    None => warn(bad_field(field, v, YAML_GATEWAY_FORM)),
                }
            }
        }
        for (j, route) in yaml_list(eth.get("routes")).iter().enumerate() {
            let to = route.get("to").and_then(yaml_text).unwrap_or_default();
            if !matches!(to.as_str(), "default" | "0.0.0.0/0" | "::/0") {
                continue;
            }
            let via = route.get("via").unwrap_or(&Yaml::Null);
            match yaml_text(via).and_then(|s| s.parse::<IpAddr>().ok()) {
                Some(gw) => set_gateway(&mut ip, gw),
                None => warn(bad_field(
                    format!("routes[{j}].via"),
                    via,
                    YAML_GATEWAY_FORM,
                )),
            }
        }
        out.ifaces.push(CloudInitIface { name, mac, ip });
    }
    Ok(())
}

/// netplan reads YAML 1.1, where `yes`/`on` are booleans too.
fn yaml_bool(v: &Yaml) -> Option<bool> {
    match untag(v) {
        Yaml::Bool(b) => Some(*b),
        other => yaml_text(other).and_then(|s| parse_bool(&s)),
    }
}

// ---------------------------------------------------------------------------------------------
// Guest lists and guest configs

/// Reads the entries of `GET /cluster/resources?type=vm` one by one: entries of other types
/// are skipped silently, a malformed guest entry with a warning, so one odd entry does not
/// lose the whole list.
pub fn parse_cluster_resources(entries: &[Json]) -> (Vec<ClusterResource>, Vec<ParseWarning>) {
    let mut resources = Vec::new();
    let mut warnings = Vec::new();
    for entry in entries {
        if !matches!(
            entry.get("type").and_then(Json::as_str),
            Some("qemu" | "lxc")
        ) {
            continue;
        }
        match ClusterResource::deserialize(entry) {
            Ok(r) => resources.push(r),
            Err(e) => warnings.push(ParseWarning::ResourceSkipped(ParseError::Resource {
                id: entry
                    .get("id")
                    .and_then(Json::as_str)
                    .unwrap_or("?")
                    .to_string(),
                message: e.to_string(),
            })),
        }
    }
    (resources, warnings)
}

/// A config value as text: Proxmox sends strings, and numbers for some keys.
fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn config_text(config: &GuestConfig, key: &str) -> Option<String> {
    config
        .get(key)
        .and_then(json_text)
        .filter(|s| !s.trim().is_empty())
}

/// N of `{prefix}N` (`net3` → 3).
fn key_index(key: &str, prefix: &str) -> Option<u32> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `netN` keys with their index, in index order (`net10` after `net2`).
fn net_keys(config: &GuestConfig) -> Vec<(u32, &String, &Json)> {
    let mut keys: Vec<_> = config
        .iter()
        .filter_map(|(k, v)| key_index(k, "net").map(|i| (i, k, v)))
        .collect();
    keys.sort_by_key(|(i, _, _)| *i);
    keys
}

/// `cicustom: network=...`: a user snippet replaces the network config Proxmox would generate
/// from `ipconfigN`, so the cloud-init dump, not `ipconfigN`, says what the guest gets.
fn cicustom_network(config: &GuestConfig) -> bool {
    config_text(config, "cicustom")
        .is_some_and(|c| properties(&c).any(|(k, v)| k == "network" && v.is_some()))
}

/// Whether `ipconfigN` gives this NIC an IPv4 configuration.
fn ipconfig_gives_ipv4(config: &GuestConfig, index: u32) -> bool {
    config_text(config, &format!("ipconfig{index}"))
        .and_then(|v| parse_qemu_ipconfig(&v).ok())
        .is_some_and(|ip| ip.ipv4 != Ipv4Config::Unset)
}

/// Whether the client should fetch this QEMU guest's cloud-init network dump: it has a
/// cloud-init drive (an `ideN`/`scsiN`/`sataN` volume named `...cloudinit`) or `cicustom`, and
/// some NIC's IPv4 is not known from `ipconfigN` alone (no `ipconfigN`, no `ip=` in it, or a
/// `cicustom` network snippet that overrides it).
pub fn needs_cloudinit_dump(config: &GuestConfig) -> bool {
    let has_drive = config.iter().any(|(k, v)| {
        ["ide", "scsi", "sata"]
            .iter()
            .any(|p| key_index(k, p).is_some())
            && json_text(v).is_some_and(|s| s.contains("cloudinit"))
    });
    if !has_drive && !config.contains_key("cicustom") {
        return false;
    }
    let nics = net_keys(config);
    if cicustom_network(config) {
        return !nics.is_empty();
    }
    nics.iter()
        .any(|(i, _, _)| !ipconfig_gives_ipv4(config, *i))
}

/// Builds the inventory's [`Guest`] from its entry in the guest list, its config and, for
/// QEMU, its parsed cloud-init network dump.
///
/// Every `netN` becomes a [`Nic`], in index order. QEMU addressing comes from `ipconfigN`,
/// and, per address family where that says nothing, from the dump's interface with the NIC's
/// MAC; with a `cicustom` network snippet the dump comes first. LXC addressing comes from
/// `netN`. Name: QEMU `name` / LXC `hostname`, else the list's `name`. Template: config or
/// list. Tags: config, else list.
///
/// A NIC that cannot be read is skipped with a warning; if the guest has NICs and none can be
/// read, that is an error, so the caller keeps what it knew of the guest.
pub fn guest_from_config(
    resource: &ClusterResource,
    config: &GuestConfig,
    cloudinit: Option<&[CloudInitIface]>,
) -> Result<ParsedGuest, ParseError> {
    let kind = resource.kind;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut nics = Vec::new();
    let dump_first = kind == GuestKind::Qemu && cicustom_network(config);
    for (index, key, value) in net_keys(config) {
        let nic = match json_text(value) {
            None => Err(ValueError::NotText {
                got: value.to_string(),
                expected: if kind == GuestKind::Qemu {
                    QEMU_NET_FORM
                } else {
                    LXC_NET_FORM
                },
            }),
            Some(text) => match kind {
                GuestKind::Qemu => parse_qemu_net(&text)
                    .map(|net| qemu_nic(index, net, config, cloudinit, dump_first, &mut warnings)),
                GuestKind::Lxc => parse_lxc_net(&text).map(|net| lxc_nic(index, net)),
            },
        };
        match nic {
            Ok(nic) => nics.push(nic),
            Err(e) => {
                let e = e.in_key(key.as_str());
                warnings.push(ParseWarning::NicSkipped(e.clone()));
                errors.push(e);
            }
        }
    }
    if nics.is_empty() && !errors.is_empty() {
        return Err(ParseError::NoUsableNic {
            guest: format!("{}/{}", kind.as_str(), resource.vmid),
            errors,
        });
    }

    let name_key = match kind {
        GuestKind::Qemu => "name",
        GuestKind::Lxc => "hostname",
    };
    let template = config
        .get("template")
        .and_then(json_text)
        .and_then(|t| parse_bool(&t))
        .unwrap_or(false)
        || resource.is_template();
    let tags = config_text(config, "tags")
        .or_else(|| resource.tags.clone())
        .unwrap_or_default();
    let guest = Guest {
        vmid: resource.vmid,
        kind,
        node: resource.node.clone(),
        name: config_text(config, name_key)
            .or_else(|| resource.name.clone().filter(|n| !n.is_empty())),
        status: resource
            .status
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
        template,
        tags: split_tags(&tags),
        nics,
    };
    Ok(ParsedGuest { guest, warnings })
}

fn qemu_nic(
    index: u32,
    net: QemuNet,
    config: &GuestConfig,
    cloudinit: Option<&[CloudInitIface]>,
    dump_first: bool,
    warnings: &mut Vec<ParseWarning>,
) -> Nic {
    let key = format!("ipconfig{index}");
    let from_ipconfig = match config.get(&key) {
        None => IpConfig::default(),
        Some(v) => {
            let parsed = json_text(v)
                .ok_or_else(|| ValueError::NotText {
                    got: v.to_string(),
                    expected: QEMU_IP_FORM,
                })
                .and_then(|text| parse_qemu_ipconfig(&text));
            parsed.unwrap_or_else(|e| {
                warnings.push(ParseWarning::AddressIgnored(e.in_key(key)));
                IpConfig::default()
            })
        }
    };
    // MacAddr compares bytes, so the dump's lower-case MAC matches the config's upper-case one.
    let from_dump = cloudinit
        .and_then(|ifaces| ifaces.iter().find(|i| i.mac == Some(net.mac)))
        .map(|i| i.ip)
        .unwrap_or_default();
    let ip = if dump_first {
        from_dump.or(from_ipconfig)
    } else {
        from_ipconfig.or(from_dump)
    };
    nic(index, net.mac, net.bridge, net.vlan, net.link_down, ip)
}

fn lxc_nic(index: u32, net: LxcNet) -> Nic {
    nic(index, net.mac, net.bridge, net.vlan, net.link_down, net.ip)
}

fn nic(
    index: u32,
    mac: MacAddr,
    bridge: Option<String>,
    vlan: Option<u16>,
    link_down: bool,
    ip: IpConfig,
) -> Nic {
    Nic {
        index,
        mac,
        bridge,
        vlan,
        ipv4: ip.ipv4,
        gateway4: ip.gateway4,
        ipv6: ip.ipv6,
        gateway6: ip.gateway6,
        link_down,
    }
}
