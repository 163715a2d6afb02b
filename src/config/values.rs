//! Parsers for the plain values that several variables share: booleans, durations, the lab
//! network, domain names, socket addresses, log levels, interface names, `resolv.conf`.
//!
//! Invariants: no I/O. Each parser returns the *problem* as a `String` without a variable
//! name; the caller wraps it into a [`ConfigError`](super::ConfigError) that names its own
//! variable and example. A user's value is always quoted with `{:?}`, which escapes control
//! characters, so a message can never span two lines.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;

/// Units accepted by `SYNC_INTERVAL`, `ARP_CHECK_INTERVAL` and `DNS_TTL`.
pub(crate) const INTERVAL_UNITS: &[(char, u64)] = &[('s', 1), ('m', 60), ('h', 3600)];

/// Units accepted by dnsmasq for lease times (`DHCP_RANGE`, `option:lease-time`).
pub(crate) const LEASE_UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 604_800),
];

/// The narrowest and widest lab network we accept. Wider than /8 would make the reverse
/// zone and the ARP sweep absurd; narrower than /30 leaves no address to hand out.
const MIN_PREFIX: u8 = 8;
const MAX_PREFIX: u8 = 30;

/// A boolean as the old tool (and most container images) wrote it.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{s:?} is not a boolean (true/false, 1/0, yes/no, on/off)"
        )),
    }
}

/// A number of seconds, bare (the old tool's form) or followed by one of `units`.
pub(crate) fn parse_seconds(s: &str, units: &[(char, u64)]) -> Result<u64, String> {
    let t = s.trim();
    let unit_list = || {
        units
            .iter()
            .map(|(u, _)| u.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bad = || {
        format!(
            "{s:?} is not a duration (a whole number of seconds, or a number with unit {})",
            unit_list()
        )
    };
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits_end == 0 {
        return Err(bad());
    }
    let number: u64 = t[..digits_end].parse().map_err(|_| bad())?;
    let mut rest = t[digits_end..].chars();
    let factor = match (rest.next(), rest.next()) {
        (None, _) => 1,
        (Some(unit), None) => {
            let unit = unit.to_ascii_lowercase();
            units
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// An interval of at least one second (`SYNC_INTERVAL`, `ARP_CHECK_INTERVAL`).
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_seconds(s, INTERVAL_UNITS)? {
        0 => Err(format!("{s:?} is zero; the interval must be at least 1s")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// The lab network. Accepts the old tool's short form (`10.0.0/23` = `10.0.0.0/23`) and
/// clears host bits (`198.18.0.5/23` = `198.18.0.0/23`), which is what users mean.
pub(crate) fn parse_network(s: &str) -> Result<Ipv4Net, String> {
    let not_network = || format!("{s:?} is not an IPv4 network");
    let (addr, prefix) = s.trim().split_once('/').ok_or_else(not_network)?;
    let octets: Vec<&str> = addr.split('.').collect();
    if octets.len() > 4 {
        return Err(not_network());
    }
    let mut bytes = [0u8; 4];
    for (byte, octet) in bytes.iter_mut().zip(&octets) {
        *byte = parse_decimal_u8(octet).ok_or_else(not_network)?;
    }
    let prefix = parse_decimal_u8(prefix).ok_or_else(not_network)?;
    if prefix > 32 {
        return Err(format!("{s:?} has prefix length /{prefix}; at most /32"));
    }
    if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
        return Err(format!(
            "{s:?} has prefix length /{prefix}; the lab network must be between /{MIN_PREFIX} and /{MAX_PREFIX}"
        ));
    }
    Ipv4Net::new(Ipv4Addr::from(bytes), prefix)
        .map(|net| net.trunc())
        .map_err(|_| not_network())
}

/// 1–3 decimal digits, at most 255. Stricter than `str::parse` (which allows `+`).
fn parse_decimal_u8(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A DNS domain name, lowercased, without trailing dot; labels of 1–63 letters, digits and
/// hyphens, not starting or ending with a hyphen; at most 253 characters in all.
pub(crate) fn parse_domain(s: &str) -> Result<String, String> {
    let lower = s.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(format!("{s:?} is not a domain name (it is empty)"));
    }
    if name.len() > 253 {
        return Err(format!(
            "{s:?} is {} characters long; a domain name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        let problem = if label.is_empty() {
            Some("has an empty label")
        } else if label.len() > 63 {
            Some("has a label longer than 63 characters")
        } else if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Some("has a character other than a-z, 0-9 or '-'")
        } else if label.starts_with('-') || label.ends_with('-') {
            Some("has a label starting or ending with '-'")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!("{s:?} is not a domain name: it {problem}"));
        }
    }
    Ok(name.to_string())
}

/// `IP[:port]` or `[IPv6][:port]`; a bare IPv6 address is also accepted (as `resolv.conf`
/// writes it), since without brackets a port could not be told apart anyway.
pub(crate) fn parse_socket_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Ok(SocketAddr::new(ip.into(), default_port));
        }
    }
    Err(format!(
        "{s:?} is not an address of the form IP[:port] or [IPv6]:port"
    ))
}

/// A comma-separated list of upstream DNS servers; port 0 is refused since nothing answers
/// there.
pub(crate) fn parse_upstreams(s: &str) -> Result<Vec<SocketAddr>, String> {
    let mut upstreams = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let addr = parse_socket_addr(entry, 53)?;
        if addr.port() == 0 {
            return Err(format!("{entry:?} has port 0"));
        }
        upstreams.push(addr);
    }
    if upstreams.is_empty() {
        return Err(format!("{s:?} names no server"));
    }
    Ok(upstreams)
}

/// The `nameserver` addresses of a `resolv.conf`, in order, minus those that would send our
/// own forwarded queries back to us: a loopback address while we listen on port 53 of a
/// wildcard or loopback address. Lines that do not parse (e.g. an IPv6 address with a
/// `%zone`) are skipped, not fatal: the file is the system's, not the user's input to us.
/// An empty result means "no upstream"; the caller decides whether to warn.
pub fn upstreams_from_resolv_conf(text: &str, dns_listen: SocketAddr) -> Vec<SocketAddr> {
    let listen_ip = dns_listen.ip();
    let could_be_us =
        dns_listen.port() == 53 && (listen_ip.is_unspecified() || listen_ip.is_loopback());
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .filter(|ip| !(could_be_us && ip.is_loopback()))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// How much the process logs (`LOG_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    /// Only failures.
    Error,
    /// Failures and things that look wrong.
    Warn,
    /// One line per notable event (the default).
    #[default]
    Info,
    /// Decisions and their reasons.
    Debug,
    /// Everything, packets included.
    Trace,
}

impl LogLevel {
    /// The directive for a `tracing` filter (`"error"`, `"warn"`, …).
    pub fn as_filter(&self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Python's level names too (the old tool was Python): `WARNING`, and `CRITICAL`/`FATAL`
/// which we have no separate level for and read as `ERROR`.
pub(crate) fn parse_log_level(s: &str) -> Result<LogLevel, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" | "critical" | "fatal" => Ok(LogLevel::Error),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        "trace" => Ok(LogLevel::Trace),
        _ => Err(format!(
            "{s:?} is not a log level (ERROR, WARN, INFO, DEBUG, TRACE)"
        )),
    }
}

/// What the DHCP server does for a MAC that no Proxmox guest owns (`DHCP_UNKNOWN_CLIENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownClients {
    /// Lease to anyone (the default, as dnsmasq does).
    #[default]
    Allow,
    /// Lease only to guests Proxmox knows.
    Deny,
}

pub(crate) fn parse_unknown_clients(s: &str) -> Result<UnknownClients, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "allow" => Ok(UnknownClients::Allow),
        "deny" => Ok(UnknownClients::Deny),
        _ => Err(format!("{s:?} is neither allow nor deny")),
    }
}

/// A Linux interface name: 1–15 bytes (IFNAMSIZ less the NUL), no `/` and no whitespace,
/// which the kernel refuses.
pub(crate) fn parse_interface(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() > 15 {
        return Err(format!(
            "{s:?} is longer than 15 characters, the limit of an interface name"
        ));
    }
    if t.is_empty() || t == "." || t == ".." || t.chars().any(|c| c == '/' || c.is_whitespace()) {
        return Err(format!("{s:?} is not an interface name"));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for s in ["true", "TRUE", "1", "yes", "On", " on "] {
            assert_eq!(parse_bool(s), Ok(true), "{s}");
        }
        for s in ["false", "False", "0", "no", "OFF"] {
            assert_eq!(parse_bool(s), Ok(false), "{s}");
        }
        for s in ["", "2", "y", "enable", "truee"] {
            assert!(parse_bool(s).is_err(), "{s}");
        }
    }

    #[test]
    fn intervals() {
        let cases = [
            ("300", 300),
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("2H", 7200),
            (" 1 ", 1),
        ];
        for (s, secs) in cases {
            assert_eq!(parse_interval(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        for s in [
            "0", "0s", "", "m", "5 m", "1.5m", "-5", "5x", "1d", "5ms", "+5",
        ] {
            assert!(parse_interval(s).is_err(), "{s}");
        }
        assert!(parse_interval("99999999999999999999h").is_err());
        assert!(parse_seconds("18446744073709551615h", INTERVAL_UNITS).is_err());
    }

    #[test]
    fn networks() {
        let cases = [
            ("198.18.0.0/23", "198.18.0.0/23"),
            ("10.0.0/23", "10.0.0.0/23"),
            ("10/8", "10.0.0.0/8"),
            ("198.18.0.5/23", "198.18.0.0/23"),
            ("198.18.1.255/23", "198.18.0.0/23"),
            (" 192.168.1.0/24 ", "192.168.1.0/24"),
            ("10.0.0.0/30", "10.0.0.0/30"),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_network(s).map(|n| n.to_string()),
                Ok(want.into()),
                "{s}"
            );
        }
        for s in [
            "10.0.0",
            "",
            "198.18.0.0",
            "198.18.0.0/",
            "198.18.0.0/33",
            "198.18.0.0/31",
            "198.18.0.0/32",
            "0.0.0.0/0",
            "10.0.0.0/7",
            "198.18.0.256/23",
            "1.2.3.4.5/23",
            "a.b.c.d/23",
            "198.18..0/23",
            "198.18.0.0/+3",
            "fd00::/64",
        ] {
            assert!(parse_network(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_network("10.0.0"),
            Err("\"10.0.0\" is not an IPv4 network".into())
        );
    }

    #[test]
    fn domains() {
        let cases = [
            ("lab", "lab"),
            ("Lab.Example.NET.", "lab.example.net"),
            ("a-b.c9", "a-b.c9"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (s, want) in cases {
            assert_eq!(parse_domain(s), Ok(want.to_string()), "{s}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(63).as_str(); 4].join(".");
        for s in [
            "",
            ".",
            "a..b",
            "-lab",
            "lab-",
            "la_b",
            "lab lab",
            "bücher",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(parse_domain(s).is_err(), "{s}");
        }
        assert!(parse_domain(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn socket_addrs() {
        let cases = [
            ("1.1.1.1", "1.1.1.1:53"),
            ("1.1.1.1:5353", "1.1.1.1:5353"),
            ("[2606:4700::1111]:853", "[2606:4700::1111]:853"),
            ("[2606:4700::1111]", "[2606:4700::1111]:53"),
            ("2606:4700::1111", "[2606:4700::1111]:53"),
            ("0.0.0.0:0", "0.0.0.0:0"),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_socket_addr(s, 53).map(|a| a.to_string()),
                Ok(want.into()),
                "{s}"
            );
        }
        for s in [
            "",
            "dns.google",
            "1.1.1.1:",
            "1.1.1.1:65536",
            "[::1",
            "1.1.1:53",
        ] {
            assert!(parse_socket_addr(s, 53).is_err(), "{s}");
        }
    }

    #[test]
    fn upstream_lists() {
        assert_eq!(
            parse_upstreams("1.1.1.1, [2606:4700::1111]:53,9.9.9.9:5353,"),
            Ok(vec![
                "1.1.1.1:53".parse().unwrap(),
                "[2606:4700::1111]:53".parse().unwrap(),
                "9.9.9.9:5353".parse().unwrap(),
            ])
        );
        for s in [",", "1.1.1.1:0", "1.1.1.1;8.8.8.8", "one.one.one.one"] {
            assert!(parse_upstreams(s).is_err(), "{s}");
        }
    }

    #[test]
    fn resolv_conf() {
        let text = "\
# generated by NetworkManager
search lab example.net
nameserver 127.0.0.53
nameserver 198.18.0.1 # the router
nameserver   2001:db8::53
nameserver fe80::1%eth0
; nameserver 9.9.9.9
nameserver ::1
nameserver
options edns0 trust-ad
nameserver 1.1.1.1
";
        let addrs = |listen: &str| -> Vec<String> {
            upstreams_from_resolv_conf(text, listen.parse().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        // Listening on port 53 of a wildcard or loopback address: loopback would be us.
        let without_loopback = ["198.18.0.1:53", "[2001:db8::53]:53", "1.1.1.1:53"];
        assert_eq!(addrs("0.0.0.0:53"), without_loopback);
        assert_eq!(addrs("[::]:53"), without_loopback);
        assert_eq!(addrs("127.0.0.1:53"), without_loopback);
        // Elsewhere, a local resolver (systemd-resolved) is a fine upstream.
        let all = [
            "127.0.0.53:53",
            "198.18.0.1:53",
            "[2001:db8::53]:53",
            "[::1]:53",
            "1.1.1.1:53",
        ];
        assert_eq!(addrs("127.0.0.1:5353"), all);
        assert_eq!(addrs("198.18.0.2:53"), all);
        assert!(upstreams_from_resolv_conf(
            "nameserver 127.0.0.11\n",
            "0.0.0.0:53".parse().unwrap()
        )
        .is_empty());
        assert!(upstreams_from_resolv_conf("", "0.0.0.0:53".parse().unwrap()).is_empty());
    }

    #[test]
    fn log_levels() {
        let cases = [
            ("ERROR", LogLevel::Error, "error"),
            ("critical", LogLevel::Error, "error"),
            ("warn", LogLevel::Warn, "warn"),
            ("WARNING", LogLevel::Warn, "warn"),
            ("Info", LogLevel::Info, "info"),
            ("DEBUG", LogLevel::Debug, "debug"),
            ("trace", LogLevel::Trace, "trace"),
        ];
        for (s, level, filter) in cases {
            assert_eq!(parse_log_level(s), Ok(level), "{s}");
            assert_eq!(level.as_filter(), filter);
        }
        for s in ["", "verbose", "5", "notice"] {
            assert!(parse_log_level(s).is_err(), "{s}");
        }
    }

    #[test]
    fn unknown_clients_and_interfaces() {
        assert_eq!(parse_unknown_clients("ALLOW"), Ok(UnknownClients::Allow));
        assert_eq!(parse_unknown_clients("deny"), Ok(UnknownClients::Deny));
        assert!(parse_unknown_clients("ignore").is_err());
        assert_eq!(parse_interface("vmbr1"), Ok("vmbr1".into()));
        assert_eq!(parse_interface("eth0.100"), Ok("eth0.100".into()));
        for s in ["", "a/b", "a b", "..", "sixteen-chars-xx"] {
            assert!(parse_interface(s).is_err(), "{s}");
        }
    }
}
