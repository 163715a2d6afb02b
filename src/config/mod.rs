//! Configuration: environment variables and command-line flags → one validated [`Config`].
//!
//! Owns the command line ([`Cli`]), the raw strings as given ([`RawConfig`]), their
//! validation into typed values ([`RawConfig::resolve`], [`RawConfig::resolve_demo`]), and,
//! in [`dnsmasq`], the parsers of the dnsmasq syntax of `DHCP_RANGE` and `DHCP_OPTION`. The
//! variable names are the old Python tool's, unchanged.
//!
//! Invariants:
//! - No I/O beyond reading the environment (through clap) and the files variables name
//!   (`API_TOKEN_SECRET_FILE`, `PROXMOX_CA_FILE`) and `/etc/resolv.conf`. Nothing is
//!   created, nothing is contacted.
//! - Every value is parsed once, here: a [`Config`] holds only typed, checked values
//!   (parse, don't validate), and no other module re-parses a string.
//! - A wrong value gives one [`ConfigError`] whose `Display` is one line: the variable, what
//!   is wrong, an example of the right form. Variables are checked in the fixed order of
//!   [`VARIABLES`] and the first problem is reported, so the same input always gives the
//!   same message. A value that is given is validated even where it ends up unused.
//! - The API token secret appears in no `Debug`, `Display` or error text: it lives in a
//!   [`Secret`], and as a last line of defence every error is scrubbed of it.
//! - An empty variable counts as unset (docker-compose turns `VAR: ${VAR}` into an empty
//!   value), except `HTTP_LISTEN`, where empty means "no HTTP server".

pub mod dnsmasq;
mod proxmox;
mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::Ipv4Net;

pub use dnsmasq::{DhcpOption, DhcpRange, LeaseTime, OptionValue};
pub use proxmox::{format_fingerprint, ProxmoxConfig, ProxmoxHost, Secret, TlsMode};
pub use values::{upstreams_from_resolv_conf, LogLevel, UnknownClients};

/// Every variable, in the order they are checked (and errors reported).
pub const VARIABLES: &[&str] = &[
    "PROXMOX_HOST",
    "API_TOKEN_ID",
    "API_TOKEN_SECRET",
    "API_TOKEN_SECRET_FILE",
    "VERIFY_SSL",
    "PROXMOX_CA_FILE",
    "PROXMOX_FINGERPRINT",
    "NETWORK_CIDR",
    "DNS_DOMAIN",
    "DNS_LISTEN",
    "DNS_TTL",
    "DNS_UPSTREAM",
    "HTTP_LISTEN",
    "DATA_DIR",
    "SYNC_INTERVAL",
    "LOG_LEVEL",
    "DHCP_ENABLED",
    "DHCP_INTERFACE",
    "DHCP_RANGE",
    "DHCP_OPTION",
    "DHCP_UNKNOWN_CLIENTS",
    "DHCP_IMPORT_LEASES",
    "ARP_ENABLED",
    "ARP_CHECK_INTERVAL",
    "ARP_SCAN_INTERVAL",
];

/// Where the default upstream DNS servers come from.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A wrong configuration value. `Display` is one line — `VARIABLE: problem; expected a form
/// like example` — for `main` to print before exiting with code 2. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}; expected a form like {example}")]
pub struct ConfigError {
    /// The environment variable at fault (its flag is the same name, lowercased, with `-`).
    pub variable: &'static str,
    /// What is wrong, quoting the value given (except where it may hold a secret).
    pub problem: String,
    /// An example of a right value.
    pub example: &'static str,
}

impl ConfigError {
    /// Builds an error; line breaks in `problem` become spaces so `Display` stays one line
    /// even for text that did not come through `{:?}` quoting (an `io::Error`, say).
    pub fn new(variable: &'static str, problem: impl Into<String>, example: &'static str) -> Self {
        ConfigError {
            variable,
            problem: problem.into().replace(['\n', '\r'], " "),
            example,
        }
    }

    /// Replaces each occurrence of `secret` in the problem with `***`. Very short strings
    /// are left alone: replacing them would garble the message and protect nothing.
    fn redact(mut self, secret: &str) -> Self {
        if secret.len() >= 4 {
            self.problem = self.problem.replace(secret, "***");
        }
        self
    }
}

/// The command line: `leazzard [run|demo|check] [--flag value]…`. Without a subcommand,
/// the flags given are those of `run`.
#[derive(Debug, Parser)]
#[command(
    name = "leazzard",
    version,
    about = "DHCP + authoritative DNS + Proxmox watcher: every Proxmox VE guest gets a DNS name on its lab network, live",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `run` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The settings of `run` when no subcommand is named.
    #[command(flatten)]
    pub run: RawConfig,
}

impl Cli {
    /// The subcommand to execute, with its settings: `run` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

/// A subcommand and its settings (all subcommands take the same ones).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DHCP and DNS for the lab network, watching Proxmox (the default).
    Run(RawConfig),
    /// Try it out: a simulated Proxmox API on loopback, DNS on 127.0.0.1:5353; every setting optional.
    Demo(RawConfig),
    /// Validate the configuration, reach every Proxmox host, check the token, print the records it would publish, and exit.
    Check(RawConfig),
}

/// The settings as given, one optional string per variable, in environment or flag.
///
/// clap checks nothing here (every field is a plain `Option<String>`): validation is
/// [`RawConfig::resolve`]'s, so that every mistake gets the same one-line message.
#[derive(Clone, Default, PartialEq, Eq, Args)]
pub struct RawConfig {
    /// `PROXMOX_HOST`: Proxmox API endpoint(s), comma-separated for failover: https://host\[:port\] (443 by default) or host\[:port\] (8006 by default)
    #[arg(
        long,
        env = "PROXMOX_HOST",
        value_name = "HOSTS",
        help_heading = "Proxmox",
        help = "Proxmox API endpoint(s), comma-separated for failover: https://host[:port] (443 by default) or host[:port] (8006 by default)"
    )]
    pub proxmox_host: Option<String>,
    /// `API_TOKEN_ID`: API token ID, USER@REALM!TOKENID
    #[arg(
        long,
        env = "API_TOKEN_ID",
        value_name = "ID",
        help_heading = "Proxmox",
        help = "API token ID, USER@REALM!TOKENID"
    )]
    pub api_token_id: Option<String>,
    /// `API_TOKEN_SECRET`: API token secret (prefer API_TOKEN_SECRET_FILE: a flag shows in `ps`)
    #[arg(
        long,
        env = "API_TOKEN_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "Proxmox",
        help = "API token secret (prefer API_TOKEN_SECRET_FILE: a flag shows in `ps`)"
    )]
    pub api_token_secret: Option<String>,
    /// `API_TOKEN_SECRET_FILE`: File holding the API token secret (a Docker secret)
    #[arg(
        long,
        env = "API_TOKEN_SECRET_FILE",
        value_name = "PATH",
        help_heading = "Proxmox",
        help = "File holding the API token secret (a Docker secret)"
    )]
    pub api_token_secret_file: Option<String>,
    /// `VERIFY_SSL`: Verify the API's TLS certificate \[default: true\]
    #[arg(
        long,
        env = "VERIFY_SSL",
        value_name = "BOOL",
        help_heading = "Proxmox",
        help = "Verify the API's TLS certificate [default: true]"
    )]
    pub verify_ssl: Option<String>,
    /// `PROXMOX_CA_FILE`: PEM file of the CA that signed the API's certificate
    #[arg(
        long,
        env = "PROXMOX_CA_FILE",
        value_name = "PATH",
        help_heading = "Proxmox",
        help = "PEM file of the CA that signed the API's certificate"
    )]
    pub proxmox_ca_file: Option<String>,
    /// `PROXMOX_FINGERPRINT`: SHA-256 fingerprint(s) of the nodes' certificates, as `pvenode cert info` prints them; comma-separated
    #[arg(
        long,
        env = "PROXMOX_FINGERPRINT",
        value_name = "SHA256",
        help_heading = "Proxmox",
        help = "SHA-256 fingerprint(s) of the nodes' certificates, as `pvenode cert info` prints them; comma-separated"
    )]
    pub proxmox_fingerprint: Option<String>,

    /// `NETWORK_CIDR`: The lab network, e.g. 198.18.0.0/23
    #[arg(
        long,
        env = "NETWORK_CIDR",
        value_name = "CIDR",
        help_heading = "Network",
        help = "The lab network, e.g. 198.18.0.0/23"
    )]
    pub network_cidr: Option<String>,
    /// `DNS_DOMAIN`: Domain the guests are named in \[default: lab\]
    #[arg(
        long,
        env = "DNS_DOMAIN",
        value_name = "DOMAIN",
        help_heading = "DNS",
        help = "Domain the guests are named in [default: lab]"
    )]
    pub dns_domain: Option<String>,
    /// `DNS_LISTEN`: DNS address, IP\[:port\] \[default: 0.0.0.0:53\]
    #[arg(
        long,
        env = "DNS_LISTEN",
        value_name = "ADDR",
        help_heading = "DNS",
        help = "DNS address, IP[:port] [default: 0.0.0.0:53]"
    )]
    pub dns_listen: Option<String>,
    /// `DNS_TTL`: TTL of the lab's records, seconds (0-86400) \[default: 30\]
    #[arg(
        long,
        env = "DNS_TTL",
        value_name = "SECONDS",
        help_heading = "DNS",
        help = "TTL of the lab's records, seconds (0-86400) [default: 30]"
    )]
    pub dns_ttl: Option<String>,
    /// `DNS_UPSTREAM`: Forwarders, comma-separated IP\[:port\] \[default: the nameservers of /etc/resolv.conf\]
    #[arg(
        long,
        env = "DNS_UPSTREAM",
        value_name = "ADDRS",
        help_heading = "DNS",
        help = "Forwarders, comma-separated IP[:port] [default: the nameservers of /etc/resolv.conf]"
    )]
    pub dns_upstream: Option<String>,
    /// `HTTP_LISTEN`: Metrics, API and status page, IP\[:port\]; empty disables \[default: 0.0.0.0:9153\]
    #[arg(
        long,
        env = "HTTP_LISTEN",
        value_name = "ADDR",
        help_heading = "Service",
        help = "Metrics, API and status page, IP[:port]; empty disables [default: 0.0.0.0:9153]"
    )]
    pub http_listen: Option<String>,
    /// `DATA_DIR`: Lease store and inventory cache \[default: /var/lib/leazzard\]
    #[arg(
        long,
        env = "DATA_DIR",
        value_name = "PATH",
        help_heading = "Service",
        help = "Lease store and inventory cache [default: /var/lib/leazzard]"
    )]
    pub data_dir: Option<String>,
    /// `SYNC_INTERVAL`: Time between Proxmox syncs: seconds, or 90s, 5m, 1h \[default: 300\]
    #[arg(
        long,
        env = "SYNC_INTERVAL",
        value_name = "DURATION",
        help_heading = "Proxmox",
        help = "Time between Proxmox syncs: seconds, or 90s, 5m, 1h [default: 300]"
    )]
    pub sync_interval: Option<String>,
    /// `LOG_LEVEL`: ERROR, WARN, INFO, DEBUG or TRACE \[default: INFO\]
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_name = "LEVEL",
        help_heading = "Service",
        help = "ERROR, WARN, INFO, DEBUG or TRACE [default: INFO]"
    )]
    pub log_level: Option<String>,

    /// `DHCP_ENABLED`: Serve DHCP \[default: true\]
    #[arg(
        long,
        env = "DHCP_ENABLED",
        value_name = "BOOL",
        help_heading = "DHCP",
        help = "Serve DHCP [default: true]"
    )]
    pub dhcp_enabled: Option<String>,
    /// `DHCP_INTERFACE`: The lab network's interface (DHCP serves it, ARP watches it)
    #[arg(
        long,
        env = "DHCP_INTERFACE",
        value_name = "IFACE",
        help_heading = "DHCP",
        help = "The lab network's interface (DHCP serves it, ARP watches it)"
    )]
    pub dhcp_interface: Option<String>,
    /// `DHCP_RANGE`: dnsmasq syntax: start,end\[,netmask\]\[,leasetime\], e.g. 198.18.0.100,198.18.0.200,12h (required with DHCP)
    #[arg(
        long,
        env = "DHCP_RANGE",
        value_name = "RANGE",
        help_heading = "DHCP",
        help = "dnsmasq syntax: start,end[,netmask][,leasetime], e.g. 198.18.0.100,198.18.0.200,12h (required with DHCP)"
    )]
    pub dhcp_range: Option<String>,
    /// `DHCP_OPTION`: dnsmasq syntax, entries separated by ';' or newlines: option:router,198.18.0.1;option:dns-server,0.0.0.0
    #[arg(
        long,
        env = "DHCP_OPTION",
        value_name = "OPTIONS",
        help_heading = "DHCP",
        help = "dnsmasq syntax, entries separated by ';' or newlines: option:router,198.18.0.1;option:dns-server,0.0.0.0"
    )]
    pub dhcp_option: Option<String>,
    /// `DHCP_UNKNOWN_CLIENTS`: Lease to devices Proxmox does not know: allow or deny \[default: allow\]
    #[arg(
        long,
        env = "DHCP_UNKNOWN_CLIENTS",
        value_name = "POLICY",
        help_heading = "DHCP",
        help = "Lease to devices Proxmox does not know: allow or deny [default: allow]"
    )]
    pub dhcp_unknown_clients: Option<String>,
    /// `DHCP_IMPORT_LEASES`: dnsmasq leases file to import on first start
    #[arg(
        long,
        env = "DHCP_IMPORT_LEASES",
        value_name = "PATH",
        help_heading = "DHCP",
        help = "dnsmasq leases file to import on first start"
    )]
    pub dhcp_import_leases: Option<String>,

    /// `ARP_ENABLED`: Watch ARP on the lab network \[default: true\]
    #[arg(
        long,
        env = "ARP_ENABLED",
        value_name = "BOOL",
        help_heading = "ARP",
        help = "Watch ARP on the lab network [default: true]"
    )]
    pub arp_enabled: Option<String>,
    /// `ARP_CHECK_INTERVAL`: Time between active ARP checks: seconds, or 90s, 5m, 1h \[default: 30, as the old ARP_SCAN_INTERVAL\]
    #[arg(
        long,
        env = "ARP_CHECK_INTERVAL",
        value_name = "DURATION",
        help_heading = "ARP",
        help = "Time between active ARP checks: seconds, or 90s, 5m, 1h [default: 30]"
    )]
    pub arp_check_interval: Option<String>,
    /// `ARP_SCAN_INTERVAL`: Old name of ARP_CHECK_INTERVAL, which wins when both are set
    #[arg(
        long,
        env = "ARP_SCAN_INTERVAL",
        value_name = "DURATION",
        help_heading = "ARP",
        help = "Old name of ARP_CHECK_INTERVAL, which wins when both are set"
    )]
    pub arp_scan_interval: Option<String>,
}

impl fmt::Debug for RawConfig {
    // Derived Debug would print the secret as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RawConfig");
        for (name, value) in VARIABLES.iter().zip(self.values()) {
            match value {
                Some(_) if *name == "API_TOKEN_SECRET" => s.field(name, &Some("***")),
                value => s.field(name, &value),
            };
        }
        s.finish()
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Proxmox API to watch. `None` only from [`RawConfig::resolve_demo`] without
    /// `PROXMOX_HOST`: the demo then builds one for its simulated API.
    pub proxmox: Option<ProxmoxConfig>,
    /// `SYNC_INTERVAL`: time between full Proxmox syncs (≥ 1 s).
    pub sync_interval: Duration,
    /// `NETWORK_CIDR`: the lab network, host bits cleared, prefix /8 to /30. Only addresses
    /// in it are published or leased.
    pub network: Ipv4Net,
    /// The DNS server's settings.
    pub dns: DnsConfig,
    /// `HTTP_LISTEN`: where `/metrics`, the API and the status page are served; `None`
    /// when disabled.
    pub http_listen: Option<SocketAddr>,
    /// `DATA_DIR`: lease store and inventory cache (not checked or created here).
    pub data_dir: PathBuf,
    /// `LOG_LEVEL`.
    pub log_level: LogLevel,
    /// `DHCP_INTERFACE`: the lab network's interface, for DHCP and ARP alike; `None` lets
    /// them pick by `NETWORK_CIDR`.
    pub interface: Option<String>,
    /// The DHCP server's settings; `None` when `DHCP_ENABLED` is false.
    pub dhcp: Option<DhcpConfig>,
    /// The ARP watcher's settings; `None` when `ARP_ENABLED` is false.
    pub arp: Option<ArpConfig>,
    /// Settings that were valid but have no effect, and the absence of any upstream DNS
    /// server: one line each, for `main` to log as warnings.
    pub warnings: Vec<String>,
}

/// The DNS server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// `DNS_DOMAIN`: lowercased, no trailing dot.
    pub domain: String,
    /// `DNS_LISTEN`: UDP and TCP address (port 0 lets the OS choose, for tests).
    pub listen: SocketAddr,
    /// `DNS_TTL`: TTL of the lab's records, 0–86400 s.
    pub ttl: u32,
    /// `DNS_UPSTREAM`, or the usable nameservers of `/etc/resolv.conf`; may be empty (then
    /// only the lab's zones are answered; see [`Config::warnings`]).
    pub upstreams: Vec<SocketAddr>,
}

/// The DHCP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// `DHCP_RANGE`: the dynamic pool, inside [`Config::network`].
    pub range: DhcpRange,
    /// `DHCP_OPTION`: options to send, codes unique, none of those the server owns.
    pub options: Vec<DhcpOption>,
    /// `DHCP_UNKNOWN_CLIENTS`.
    pub unknown_clients: UnknownClients,
    /// `DHCP_IMPORT_LEASES`: a dnsmasq leases file to import on first start (existence is
    /// not checked: after the first start it may well be gone).
    pub import_leases: Option<PathBuf>,
}

/// The ARP watcher's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpConfig {
    /// `ARP_CHECK_INTERVAL` (or its old name `ARP_SCAN_INTERVAL`): time between active
    /// checks (≥ 1 s).
    pub check_interval: Duration,
}

/// Which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// `run` and `check`: Proxmox and the network are required.
    Service,
    /// `demo`: everything optional, loopback addresses, DHCP and ARP off.
    Demo,
}

const EXAMPLE_NETWORK: &str = "198.18.0.0/23";
const EXAMPLE_DOMAIN: &str = "lab";
const EXAMPLE_DNS_LISTEN: &str = "0.0.0.0:53 or [::]:53";
const EXAMPLE_HTTP_LISTEN: &str = "0.0.0.0:9153 (or empty to disable)";
const EXAMPLE_UPSTREAM: &str = "1.1.1.1,[2606:4700:4700::1111]:53";
const EXAMPLE_TTL: &str = "30";
const EXAMPLE_INTERVAL: &str = "300, 90s, 5m or 1h";
const EXAMPLE_LOG_LEVEL: &str = "INFO";
const EXAMPLE_BOOL: &str = "true or false";
const EXAMPLE_INTERFACE: &str = "vmbr1";
const EXAMPLE_UNKNOWN_CLIENTS: &str = "allow or deny";
const EXAMPLE_RANGE: &str = "198.18.0.100,198.18.0.200,12h (or DHCP_ENABLED=false)";

/// The value, trimmed, or `None` when unset or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl RawConfig {
    /// Reads every variable through `lookup` by its environment name, as clap's `env` does
    /// but without the process environment: for tests and for embedding.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> RawConfig {
        RawConfig {
            proxmox_host: lookup("PROXMOX_HOST"),
            api_token_id: lookup("API_TOKEN_ID"),
            api_token_secret: lookup("API_TOKEN_SECRET"),
            api_token_secret_file: lookup("API_TOKEN_SECRET_FILE"),
            verify_ssl: lookup("VERIFY_SSL"),
            proxmox_ca_file: lookup("PROXMOX_CA_FILE"),
            proxmox_fingerprint: lookup("PROXMOX_FINGERPRINT"),
            network_cidr: lookup("NETWORK_CIDR"),
            dns_domain: lookup("DNS_DOMAIN"),
            dns_listen: lookup("DNS_LISTEN"),
            dns_ttl: lookup("DNS_TTL"),
            dns_upstream: lookup("DNS_UPSTREAM"),
            http_listen: lookup("HTTP_LISTEN"),
            data_dir: lookup("DATA_DIR"),
            sync_interval: lookup("SYNC_INTERVAL"),
            log_level: lookup("LOG_LEVEL"),
            dhcp_enabled: lookup("DHCP_ENABLED"),
            dhcp_interface: lookup("DHCP_INTERFACE"),
            dhcp_range: lookup("DHCP_RANGE"),
            dhcp_option: lookup("DHCP_OPTION"),
            dhcp_unknown_clients: lookup("DHCP_UNKNOWN_CLIENTS"),
            dhcp_import_leases: lookup("DHCP_IMPORT_LEASES"),
            arp_enabled: lookup("ARP_ENABLED"),
            arp_check_interval: lookup("ARP_CHECK_INTERVAL"),
            arp_scan_interval: lookup("ARP_SCAN_INTERVAL"),
        }
    }

    /// The raw values in [`VARIABLES`] order.
    fn values(&self) -> [&Option<String>; 25] {
        [
            &self.proxmox_host,
            &self.api_token_id,
            &self.api_token_secret,
            &self.api_token_secret_file,
            &self.verify_ssl,
            &self.proxmox_ca_file,
            &self.proxmox_fingerprint,
            &self.network_cidr,
            &self.dns_domain,
            &self.dns_listen,
            &self.dns_ttl,
            &self.dns_upstream,
            &self.http_listen,
            &self.data_dir,
            &self.sync_interval,
            &self.log_level,
            &self.dhcp_enabled,
            &self.dhcp_interface,
            &self.dhcp_range,
            &self.dhcp_option,
            &self.dhcp_unknown_clients,
            &self.dhcp_import_leases,
            &self.arp_enabled,
            &self.arp_check_interval,
            &self.arp_scan_interval,
        ]
    }

    /// Validates the settings for `run` and `check`: `PROXMOX_HOST`, `API_TOKEN_ID`, a
    /// secret and `NETWORK_CIDR` are required, and `DHCP_RANGE` unless `DHCP_ENABLED` is
    /// false. Without `DNS_UPSTREAM`, reads `/etc/resolv.conf`.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        self.resolve_with(Profile::Service, self.system_resolv_conf().as_deref())
    }

    /// Validates the settings for `demo`: nothing is required, and the defaults differ —
    /// `NETWORK_CIDR` 198.18.0.0/23, `DNS_LISTEN` 127.0.0.1:5353, `HTTP_LISTEN`
    /// 127.0.0.1:9153, DHCP and ARP off, `DATA_DIR` `leazzard-demo` under the system temp
    /// directory, `SYNC_INTERVAL` 5s. Whatever the user set still applies. Without
    /// `PROXMOX_HOST`, [`Config::proxmox`] is `None` and the demo fills in its simulated
    /// API; with it, the token is required as for `run`.
    pub fn resolve_demo(&self) -> Result<Config, ConfigError> {
        self.resolve_with(Profile::Demo, self.system_resolv_conf().as_deref())
    }

    /// `/etc/resolv.conf`, read only when it is needed (no `DNS_UPSTREAM`).
    fn system_resolv_conf(&self) -> Option<String> {
        match given(&self.dns_upstream) {
            Some(_) => None,
            None => std::fs::read_to_string(RESOLV_CONF).ok(),
        }
    }

    /// The core of [`resolve`](Self::resolve): `resolv_conf` is the text of
    /// `/etc/resolv.conf` (`None` if unreadable), so tests do not depend on the host.
    fn resolve_with(
        &self,
        profile: Profile,
        resolv_conf: Option<&str>,
    ) -> Result<Config, ConfigError> {
        // Read the secret before anything else, so that every error, whichever variable it
        // is about, can be scrubbed of it; its own error is reported in its turn.
        let secret = proxmox::read_secret(
            self.api_token_secret
                .as_deref()
                .filter(|s| !s.trim().is_empty()),
            given(&self.api_token_secret_file),
        );
        let raw_secret = given(&self.api_token_secret);
        self.resolve_checked(profile, resolv_conf, secret.clone())
            .map_err(|e| {
                let e = match raw_secret {
                    Some(raw) => e.redact(raw),
                    None => e,
                };
                match &secret {
                    Ok(Some(secret)) => e.redact(secret.expose()),
                    _ => e,
                }
            })
    }

    fn resolve_checked(
        &self,
        profile: Profile,
        resolv_conf: Option<&str>,
        secret: Result<Option<Secret>, ConfigError>,
    ) -> Result<Config, ConfigError> {
        let demo = profile == Profile::Demo;
        let mut warnings = Vec::new();

        // Proxmox. The demo may go without, but whatever is given is still checked.
        let hosts = match given(&self.proxmox_host) {
            Some(s) => Some(proxmox::parse_hosts(s)?),
            None if demo => None,
            None => {
                return Err(ConfigError::new(
                    "PROXMOX_HOST",
                    "not set (only `leazzard demo` runs without Proxmox)",
                    proxmox::EXAMPLE_HOST,
                ))
            }
        };
        let token_id = match given(&self.api_token_id) {
            Some(s) => Some(proxmox::parse_token_id(s)?),
            None if hosts.is_none() => None,
            None => return Err(missing("API_TOKEN_ID", proxmox::EXAMPLE_TOKEN_ID)),
        };
        let token_secret = match secret? {
            Some(secret) => Some(secret),
            None if hosts.is_none() => None,
            None => {
                return Err(ConfigError::new(
                    "API_TOKEN_SECRET",
                    "not set (nor API_TOKEN_SECRET_FILE)",
                    proxmox::EXAMPLE_SECRET,
                ))
            }
        };
        let tls = proxmox::resolve_tls(
            &proxmox::TlsInputs {
                verify_ssl: given(&self.verify_ssl),
                ca_file: given(&self.proxmox_ca_file),
                fingerprint: given(&self.proxmox_fingerprint),
            },
            &mut warnings,
        )?;
        let proxmox = match (hosts, token_id, token_secret) {
            (Some(hosts), Some(token_id), Some(token_secret)) => Some(ProxmoxConfig {
                hosts,
                token_id,
                token_secret,
                tls,
            }),
            _ => None,
        };

        let network = match given(&self.network_cidr) {
            Some(s) => values::parse_network(s)
                .map_err(|p| ConfigError::new("NETWORK_CIDR", p, EXAMPLE_NETWORK))?,
            None if demo => Ipv4Net::new([198, 18, 0, 0].into(), 23)
                .map_err(|_| missing("NETWORK_CIDR", EXAMPLE_NETWORK))?,
            None => return Err(missing("NETWORK_CIDR", EXAMPLE_NETWORK)),
        };

        let dns = self.resolve_dns(demo, resolv_conf, &mut warnings)?;

        let http_listen = match self.http_listen.as_deref().map(str::trim) {
            Some("") => None,
            Some(s) => Some(
                values::parse_socket_addr(s, 9153)
                    .map_err(|p| ConfigError::new("HTTP_LISTEN", p, EXAMPLE_HTTP_LISTEN))?,
            ),
            None if demo => Some(SocketAddr::from(([127, 0, 0, 1], 9153))),
            None => Some(SocketAddr::from(([0, 0, 0, 0], 9153))),
        };
        let data_dir = match given(&self.data_dir) {
            Some(s) => PathBuf::from(s),
            None if demo => std::env::temp_dir().join("leazzard-demo"),
            None => PathBuf::from("/var/lib/leazzard"),
        };
        let sync_interval = match given(&self.sync_interval) {
            Some(s) => values::parse_interval(s)
                .map_err(|p| ConfigError::new("SYNC_INTERVAL", p, EXAMPLE_INTERVAL))?,
            None if demo => Duration::from_secs(5),
            None => Duration::from_secs(300),
        };
        let log_level = match given(&self.log_level) {
            Some(s) => values::parse_log_level(s)
                .map_err(|p| ConfigError::new("LOG_LEVEL", p, EXAMPLE_LOG_LEVEL))?,
            None => LogLevel::Info,
        };

        let dhcp_enabled = parse_flag("DHCP_ENABLED", &self.dhcp_enabled, !demo)?;
        let interface = given(&self.dhcp_interface)
            .map(values::parse_interface)
            .transpose()
            .map_err(|p| ConfigError::new("DHCP_INTERFACE", p, EXAMPLE_INTERFACE))?;
        let dhcp = self.resolve_dhcp(dhcp_enabled, network, &mut warnings)?;

        let arp_enabled = parse_flag("ARP_ENABLED", &self.arp_enabled, !demo)?;
        let check_interval = given(&self.arp_check_interval)
            .map(values::parse_interval)
            .transpose()
            .map_err(|p| ConfigError::new("ARP_CHECK_INTERVAL", p, EXAMPLE_INTERVAL))?;
        let scan_interval = given(&self.arp_scan_interval)
            .map(values::parse_interval)
            .transpose()
            .map_err(|p| ConfigError::new("ARP_SCAN_INTERVAL", p, EXAMPLE_INTERVAL))?;
        if check_interval.is_some() && scan_interval.is_some() {
            warnings.push("ARP_SCAN_INTERVAL is ignored: ARP_CHECK_INTERVAL is set".into());
        }
        let arp = arp_enabled.then(|| ArpConfig {
            check_interval: check_interval
                .or(scan_interval)
                .unwrap_or(Duration::from_secs(30)),
        });

        Ok(Config {
            proxmox,
            sync_interval,
            network,
            dns,
            http_listen,
            data_dir,
            log_level,
            interface,
            dhcp,
            arp,
            warnings,
        })
    }

    fn resolve_dns(
        &self,
        demo: bool,
        resolv_conf: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Result<DnsConfig, ConfigError> {
        let domain = match given(&self.dns_domain) {
            Some(s) => values::parse_domain(s)
                .map_err(|p| ConfigError::new("DNS_DOMAIN", p, EXAMPLE_DOMAIN))?,
            None => "lab".to_string(),
        };
        let listen = match given(&self.dns_listen) {
            Some(s) => values::parse_socket_addr(s, 53)
                .map_err(|p| ConfigError::new("DNS_LISTEN", p, EXAMPLE_DNS_LISTEN))?,
            None if demo => SocketAddr::from(([127, 0, 0, 1], 5353)),
            None => SocketAddr::from(([0, 0, 0, 0], 53)),
        };
        let ttl = match given(&self.dns_ttl) {
            Some(s) => values::parse_seconds(s, values::INTERVAL_UNITS)
                .and_then(|secs| {
                    u32::try_from(secs)
                        .ok()
                        .filter(|secs| *secs <= 86_400)
                        .ok_or_else(|| format!("{s:?} is more than 86400 seconds (one day)"))
                })
                .map_err(|p| ConfigError::new("DNS_TTL", p, EXAMPLE_TTL))?,
            None => 30,
        };
        let upstreams = match given(&self.dns_upstream) {
            Some(s) => values::parse_upstreams(s)
                .map_err(|p| ConfigError::new("DNS_UPSTREAM", p, EXAMPLE_UPSTREAM))?,
            None => {
                let upstreams = resolv_conf
                    .map(|text| upstreams_from_resolv_conf(text, listen))
                    .unwrap_or_default();
                if upstreams.is_empty() {
                    warnings.push(format!(
                        "DNS_UPSTREAM is not set and {RESOLV_CONF} names no usable nameserver: names outside {domain} will not resolve"
                    ));
                }
                upstreams
            }
        };
        Ok(DnsConfig {
            domain,
            listen,
            ttl,
            upstreams,
        })
    }

    fn resolve_dhcp(
        &self,
        enabled: bool,
        network: Ipv4Net,
        warnings: &mut Vec<String>,
    ) -> Result<Option<DhcpConfig>, ConfigError> {
        let range = given(&self.dhcp_range)
            .map(|s| DhcpRange::parse(s, network))
            .transpose()?;
        let options = match given(&self.dhcp_option) {
            Some(s) => dnsmasq::parse_dhcp_options(s)?,
            None => Vec::new(),
        };
        let unknown_clients = given(&self.dhcp_unknown_clients)
            .map(values::parse_unknown_clients)
            .transpose()
            .map_err(|p| ConfigError::new("DHCP_UNKNOWN_CLIENTS", p, EXAMPLE_UNKNOWN_CLIENTS))?
            .unwrap_or_default();
        let import_leases = given(&self.dhcp_import_leases).map(PathBuf::from);
        if !enabled {
            let ignored: Vec<&str> = [
                ("DHCP_RANGE", &self.dhcp_range),
                ("DHCP_OPTION", &self.dhcp_option),
                ("DHCP_UNKNOWN_CLIENTS", &self.dhcp_unknown_clients),
                ("DHCP_IMPORT_LEASES", &self.dhcp_import_leases),
            ]
            .into_iter()
            .filter(|(_, value)| given(value).is_some())
            .map(|(name, _)| name)
            .collect();
            if !ignored.is_empty() {
                warnings.push(format!(
                    "{} ignored: DHCP is disabled (DHCP_ENABLED=false)",
                    ignored.join(", ")
                ));
            }
            return Ok(None);
        }
        let range = range.ok_or_else(|| {
            ConfigError::new(
                "DHCP_RANGE",
                "not set, but DHCP is enabled (DHCP_ENABLED=true)",
                EXAMPLE_RANGE,
            )
        })?;
        Ok(Some(DhcpConfig {
            range,
            options,
            unknown_clients,
            import_leases,
        }))
    }
}

fn missing(variable: &'static str, example: &'static str) -> ConfigError {
    ConfigError::new(variable, "not set", example)
}

fn parse_flag(
    variable: &'static str,
    value: &Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match given(value) {
        Some(s) => values::parse_bool(s).map_err(|p| ConfigError::new(variable, p, EXAMPLE_BOOL)),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    const SECRET: &str = "0e9ad6d8-2d1c-4bb6-a23a-1f2a64a8c0de";

    /// clap reads the process environment on every parse; tests that parse, or that
    /// change the environment, take this lock so they do not see each other's variables.
    static PROCESS_ENV: Mutex<()> = Mutex::new(());

    fn raw(vars: &[(&str, &str)]) -> RawConfig {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RawConfig::from_lookup(|name| map.get(name).cloned())
    }

    /// The smallest configuration `run` accepts.
    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PROXMOX_HOST", "pve1.example.net"),
            ("API_TOKEN_ID", "leazzard@pve!dns"),
            ("API_TOKEN_SECRET", SECRET),
            ("NETWORK_CIDR", "198.18.0.0/23"),
            ("DHCP_RANGE", "198.18.0.100,198.18.0.200"),
        ]
    }

    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = minimal();
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k, v));
        }
        vars
    }

    fn resolve(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        raw(vars).resolve_with(Profile::Service, Some("nameserver 198.18.0.1\n"))
    }

    fn resolve_demo(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        raw(vars).resolve_with(Profile::Demo, Some("nameserver 198.18.0.1\n"))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn minimal_config_and_defaults() {
        let config = resolve(&minimal()).unwrap();
        let proxmox = config.proxmox.as_ref().unwrap();
        assert_eq!(
            proxmox.hosts,
            [ProxmoxHost {
                host: "pve1.example.net".into(),
                port: 8006
            }]
        );
        assert_eq!(proxmox.token_id, "leazzard@pve!dns");
        assert_eq!(proxmox.token_secret.expose(), SECRET);
        assert_eq!(
            proxmox.tls,
            TlsMode::Verify {
                ca_pem: None,
                ca_file: None
            }
        );
        assert_eq!(config.network.to_string(), "198.18.0.0/23");
        assert_eq!(
            config.dns,
            DnsConfig {
                domain: "lab".into(),
                listen: addr("0.0.0.0:53"),
                ttl: 30,
                upstreams: vec![addr("198.18.0.1:53")],
            }
        );
        assert_eq!(config.http_listen, Some(addr("0.0.0.0:9153")));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/leazzard"));
        assert_eq!(config.sync_interval, Duration::from_secs(300));
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!(config.interface, None);
        let dhcp = config.dhcp.as_ref().unwrap();
        assert_eq!(dhcp.range.lease_time(), LeaseTime::DEFAULT);
        assert_eq!(dhcp.options, []);
        assert_eq!(dhcp.unknown_clients, UnknownClients::Allow);
        assert_eq!(dhcp.import_leases, None);
        assert_eq!(
            config.arp,
            Some(ArpConfig {
                check_interval: Duration::from_secs(30)
            })
        );
        assert_eq!(config.warnings, Vec::<String>::new());
    }

    #[test]
    fn every_variable_set() {
        let config = resolve(&with(&[
            ("PROXMOX_HOST", "https://pve1:8006/api2/json,pve2,[fd00::3]"),
            ("VERIFY_SSL", "no"),
            ("NETWORK_CIDR", "10.0.0/23"),
            ("DNS_DOMAIN", "Lab.Example.NET."),
            ("DNS_LISTEN", "198.18.0.2"),
            ("DNS_TTL", "5m"),
            ("DNS_UPSTREAM", "1.1.1.1,[2606:4700:4700::1111]:5353"),
            ("HTTP_LISTEN", "[::1]:8080"),
            ("DATA_DIR", "/srv/leazzard"),
            ("SYNC_INTERVAL", "90s"),
            ("LOG_LEVEL", "warning"),
            ("DHCP_ENABLED", "yes"),
            ("DHCP_INTERFACE", "vmbr1"),
            ("DHCP_RANGE", "10.0.0.100,10.0.1.200,255.255.254.0,12h"),
            (
                "DHCP_OPTION",
                "option:router,10.0.0.1\noption:dns-server,0.0.0.0",
            ),
            ("DHCP_UNKNOWN_CLIENTS", "deny"),
            ("DHCP_IMPORT_LEASES", "/var/lib/misc/dnsmasq.leases"),
            ("ARP_ENABLED", "on"),
            ("ARP_SCAN_INTERVAL", "2m"),
        ]))
        .unwrap();
        let proxmox = config.proxmox.as_ref().unwrap();
        let urls: Vec<String> = proxmox.hosts.iter().map(ProxmoxHost::base_url).collect();
        assert_eq!(
            urls,
            [
                "https://pve1:8006",
                "https://pve2:8006",
                "https://[fd00::3]:8006"
            ]
        );
        assert_eq!(proxmox.tls, TlsMode::Insecure);
        assert_eq!(config.network.to_string(), "10.0.0.0/23");
        assert_eq!(config.dns.domain, "lab.example.net");
        assert_eq!(config.dns.listen, addr("198.18.0.2:53"));
        assert_eq!(config.dns.ttl, 300);
        assert_eq!(
            config.dns.upstreams,
            [addr("1.1.1.1:53"), addr("[2606:4700:4700::1111]:5353")]
        );
        assert_eq!(config.http_listen, Some(addr("[::1]:8080")));
        assert_eq!(config.data_dir, PathBuf::from("/srv/leazzard"));
        assert_eq!(config.sync_interval, Duration::from_secs(90));
        assert_eq!(config.log_level, LogLevel::Warn);
        assert_eq!(config.interface.as_deref(), Some("vmbr1"));
        let dhcp = config.dhcp.as_ref().unwrap();
        assert_eq!(dhcp.range.start().to_string(), "10.0.0.100");
        assert_eq!(dhcp.range.end().to_string(), "10.0.1.200");
        assert_eq!(
            dhcp.range.lease_time(),
            LeaseTime::Finite(Duration::from_secs(43_200))
        );
        let codes: Vec<u8> = dhcp.options.iter().map(|o| o.code).collect();
        assert_eq!(codes, [3, 6]);
        assert_eq!(dhcp.unknown_clients, UnknownClients::Deny);
        assert_eq!(
            dhcp.import_leases.as_deref(),
            Some(std::path::Path::new("/var/lib/misc/dnsmasq.leases"))
        );
        assert_eq!(config.arp.unwrap().check_interval, Duration::from_secs(120));
    }

    #[test]
    fn missing_required_variables() {
        for name in [
            "PROXMOX_HOST",
            "API_TOKEN_ID",
            "API_TOKEN_SECRET",
            "NETWORK_CIDR",
            "DHCP_RANGE",
        ] {
            let vars: Vec<_> = minimal().into_iter().filter(|(k, _)| *k != name).collect();
            let e = resolve(&vars).unwrap_err();
            assert_eq!(e.variable, name, "{e}");
            assert!(e.to_string().contains("not set"), "{e}");
            // Blank is unset too.
            let e = resolve(&with(&[(name, "  ")])).unwrap_err();
            assert_eq!(e.variable, name, "{e}");
        }
        // DHCP_RANGE is needed only with DHCP.
        let vars: Vec<_> = with(&[("DHCP_ENABLED", "false")])
            .into_iter()
            .filter(|(k, _)| *k != "DHCP_RANGE")
            .collect();
        let config = resolve(&vars).unwrap();
        assert_eq!(config.dhcp, None);
        assert_eq!(config.warnings, Vec::<String>::new());
    }

    /// (variable, bad value, text the message must contain).
    const BAD_VALUES: &[(&str, &str, &str)] = &[
        ("PROXMOX_HOST", "http://pve1:8006", "only speaks HTTPS"),
        ("PROXMOX_HOST", "fd00::1", "brackets"),
        ("API_TOKEN_ID", "leazzard@pve", "'!TOKENID'"),
        ("VERIFY_SSL", "maybe", "not a boolean"),
        ("PROXMOX_CA_FILE", "/nonexistent/ca.pem", "cannot read"),
        ("PROXMOX_FINGERPRINT", "AB:CD", "32"),
        (
            "NETWORK_CIDR",
            "10.0.0",
            "\"10.0.0\" is not an IPv4 network",
        ),
        ("NETWORK_CIDR", "198.18.0.0/31", "between /8 and /30"),
        ("DNS_DOMAIN", "my_lab", "not a domain name"),
        ("DNS_LISTEN", "localhost:53", "IP[:port]"),
        ("DNS_TTL", "86401", "86400"),
        ("DNS_TTL", "-1", "not a duration"),
        ("DNS_UPSTREAM", "dns.google", "IP[:port]"),
        ("HTTP_LISTEN", "*:9153", "IP[:port]"),
        ("SYNC_INTERVAL", "0", "at least 1s"),
        ("SYNC_INTERVAL", "5 min", "not a duration"),
        ("LOG_LEVEL", "verbose", "not a log level"),
        ("DHCP_ENABLED", "sometimes", "not a boolean"),
        ("DHCP_INTERFACE", "eth 0", "not an interface name"),
        (
            "DHCP_RANGE",
            "198.18.0.100,198.18.4.1",
            "outside NETWORK_CIDR 198.18.0.0/23",
        ),
        ("DHCP_RANGE", "198.18.0.100,198.18.0.200,1m", "2 minutes"),
        (
            "DHCP_OPTION",
            "option:gateway,198.18.0.1",
            "unknown option name",
        ),
        ("DHCP_OPTION", "option:53,1", "set by the DHCP server"),
        ("DHCP_UNKNOWN_CLIENTS", "ignore", "neither allow nor deny"),
        ("ARP_ENABLED", "2", "not a boolean"),
        ("ARP_CHECK_INTERVAL", "1d", "not a duration"),
        ("ARP_SCAN_INTERVAL", "0s", "at least 1s"),
    ];

    #[test]
    fn bad_values_name_the_variable_and_an_example() {
        for (name, value, needle) in BAD_VALUES {
            let e = resolve(&with(&[(name, value)])).unwrap_err();
            let line = e.to_string();
            assert_eq!(e.variable, *name, "{line}");
            assert!(line.starts_with(&format!("{name}: ")), "{line}");
            assert!(line.contains(needle), "{name}={value:?}: {line}");
            assert!(!e.example.is_empty());
            assert!(
                line.ends_with(&format!("; expected a form like {}", e.example)),
                "{line}"
            );
            assert!(!line.contains('\n'), "{line}");
        }
        // The example of the brief, to the letter.
        assert_eq!(
            resolve(&with(&[("NETWORK_CIDR", "10.0.0")]))
                .unwrap_err()
                .to_string(),
            "NETWORK_CIDR: \"10.0.0\" is not an IPv4 network; expected a form like 198.18.0.0/23"
        );
        // A value with a line break is quoted on one line.
        let e = resolve(&with(&[("DNS_DOMAIN", "lab\nevil")])).unwrap_err();
        assert!(e.to_string().contains("\"lab\\nevil\""), "{e}");
    }

    #[test]
    fn first_error_in_a_fixed_order() {
        // All the bad values at once: the first variable of VARIABLES wins, every time.
        let all: Vec<(&str, &str)> = BAD_VALUES.iter().map(|(k, v, _)| (*k, *v)).collect();
        let mut vars = minimal();
        vars.extend(all.iter().rev());
        let first = resolve(&vars).unwrap_err();
        assert_eq!(first.variable, "PROXMOX_HOST");
        // Dropping variables one by one from the front walks VARIABLES in order.
        let mut seen = Vec::new();
        let mut remaining: BTreeMap<&str, &str> = minimal().into_iter().collect();
        for (k, v, _) in BAD_VALUES {
            remaining.insert(k, v);
        }
        loop {
            let vars: Vec<(&str, &str)> = remaining.iter().map(|(k, v)| (*k, *v)).collect();
            match resolve(&vars) {
                Ok(_) => break,
                Err(e) => {
                    seen.push(e.variable);
                    let good = minimal()
                        .into_iter()
                        .find(|(k, _)| *k == e.variable)
                        .map(|(_, v)| v);
                    match good {
                        Some(v) => remaining.insert(e.variable, v),
                        None => remaining.remove(e.variable),
                    };
                }
            }
        }
        let order: Vec<usize> = seen
            .iter()
            .map(|v| VARIABLES.iter().position(|x| x == v).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        let distinct: BTreeSet<&str> = BAD_VALUES.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(seen.len(), distinct.len(), "{seen:?}");
    }

    #[test]
    fn empty_means_unset_but_disables_http() {
        let config = resolve(&with(&[
            ("HTTP_LISTEN", ""),
            ("DNS_DOMAIN", ""),
            ("LOG_LEVEL", " "),
            ("VERIFY_SSL", ""),
        ]))
        .unwrap();
        assert_eq!(config.http_listen, None);
        assert_eq!(config.dns.domain, "lab");
        assert_eq!(config.log_level, LogLevel::Info);
        let config = resolve(&with(&[("HTTP_LISTEN", "127.0.0.1")])).unwrap();
        assert_eq!(config.http_listen, Some(addr("127.0.0.1:9153")));
    }

    #[test]
    fn dns_ttl_bounds() {
        for (value, ttl) in [("0", 0), ("30", 30), ("86400", 86_400), ("1h", 3600)] {
            let config = resolve(&with(&[("DNS_TTL", value)])).unwrap();
            assert_eq!(config.dns.ttl, ttl, "{value}");
        }
    }

    #[test]
    fn arp_interval_alias() {
        let interval = |vars: &[(&'static str, &'static str)]| {
            let config = resolve(&with(vars)).unwrap();
            (config.arp.unwrap().check_interval, config.warnings.len())
        };
        let secs = Duration::from_secs;
        assert_eq!(interval(&[]), (secs(30), 0));
        assert_eq!(interval(&[("ARP_SCAN_INTERVAL", "20")]), (secs(20), 0));
        assert_eq!(interval(&[("ARP_CHECK_INTERVAL", "45")]), (secs(45), 0));
        assert_eq!(
            interval(&[("ARP_CHECK_INTERVAL", "45"), ("ARP_SCAN_INTERVAL", "30")]),
            (secs(45), 1)
        );
        assert_eq!(
            resolve(&with(&[("ARP_ENABLED", "false")])).unwrap().arp,
            None
        );
    }

    #[test]
    fn upstreams_default_to_resolv_conf() {
        let resolv = "nameserver 127.0.0.53\nnameserver 9.9.9.9\n";
        let upstreams = |listen: &'static str, text: Option<&str>| {
            let config = raw(&with(&[("DNS_LISTEN", listen)]))
                .resolve_with(Profile::Service, text)
                .unwrap();
            (config.dns.upstreams, config.warnings.len())
        };
        assert_eq!(
            upstreams("0.0.0.0", Some(resolv)),
            (vec![addr("9.9.9.9:53")], 0)
        );
        assert_eq!(
            upstreams("127.0.0.1:5353", Some(resolv)),
            (vec![addr("127.0.0.53:53"), addr("9.9.9.9:53")], 0)
        );
        assert_eq!(
            upstreams("0.0.0.0", Some("nameserver 127.0.0.53\n")),
            (vec![], 1)
        );
        assert_eq!(upstreams("0.0.0.0", None), (vec![], 1));
        // DNS_UPSTREAM wins.
        let config = raw(&with(&[("DNS_UPSTREAM", "1.1.1.1")]))
            .resolve_with(Profile::Service, Some(resolv))
            .unwrap();
        assert_eq!(config.dns.upstreams, [addr("1.1.1.1:53")]);
    }

    #[test]
    fn dhcp_settings_ignored_when_disabled_are_still_checked() {
        let config = resolve(&with(&[
            ("DHCP_ENABLED", "0"),
            ("DHCP_OPTION", "option:router,198.18.0.1"),
        ]))
        .unwrap();
        assert_eq!(config.dhcp, None);
        assert_eq!(
            config.warnings,
            ["DHCP_RANGE, DHCP_OPTION ignored: DHCP is disabled (DHCP_ENABLED=false)"]
        );
        let e = resolve(&with(&[
            ("DHCP_ENABLED", "0"),
            ("DHCP_RANGE", "10.0.0.1,10.0.0.2"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "DHCP_RANGE");
    }

    #[test]
    fn tls_from_variables() {
        let fp = "AB:".repeat(31) + "AB";
        let config = resolve(&with(&[
            ("PROXMOX_FINGERPRINT", fp.as_str()),
            ("VERIFY_SSL", "false"),
        ]))
        .unwrap();
        assert_eq!(
            config.proxmox.unwrap().tls,
            TlsMode::Pinned(vec![[0xab; 32]])
        );
        assert_eq!(config.warnings.len(), 1);
    }

    #[test]
    fn demo_defaults() {
        let config = resolve_demo(&[]).unwrap();
        assert_eq!(config.proxmox, None);
        assert_eq!(config.network.to_string(), "198.18.0.0/23");
        assert_eq!(config.dns.domain, "lab");
        assert_eq!(config.dns.listen, addr("127.0.0.1:5353"));
        assert_eq!(config.http_listen, Some(addr("127.0.0.1:9153")));
        assert_eq!(config.dhcp, None);
        assert_eq!(config.arp, None);
        assert_eq!(config.data_dir, std::env::temp_dir().join("leazzard-demo"));
        assert_eq!(config.sync_interval, Duration::from_secs(5));
    }

    #[test]
    fn demo_honours_what_is_set() {
        let config = resolve_demo(&[
            ("NETWORK_CIDR", "198.19.4.0/24"),
            ("DNS_DOMAIN", "demo.test"),
            ("DNS_LISTEN", "127.0.0.1:15353"),
            ("HTTP_LISTEN", ""),
            ("SYNC_INTERVAL", "1"),
            ("DHCP_ENABLED", "true"),
            ("DHCP_RANGE", "198.19.4.10,198.19.4.20"),
            ("ARP_ENABLED", "true"),
        ])
        .unwrap();
        assert_eq!(config.network.to_string(), "198.19.4.0/24");
        assert_eq!(config.dns.domain, "demo.test");
        assert_eq!(config.dns.listen, addr("127.0.0.1:15353"));
        assert_eq!(config.http_listen, None);
        assert_eq!(config.sync_interval, Duration::from_secs(1));
        assert_eq!(config.dhcp.unwrap().range.size(), 11);
        assert!(config.arp.is_some());
        // Given values are checked in the demo too.
        let e = resolve_demo(&[("DNS_DOMAIN", "-x")]).unwrap_err();
        assert_eq!(e.variable, "DNS_DOMAIN");
        let e = resolve_demo(&[("DHCP_ENABLED", "true")]).unwrap_err();
        assert_eq!(e.variable, "DHCP_RANGE");
        let e = resolve_demo(&[("API_TOKEN_ID", "nope")]).unwrap_err();
        assert_eq!(e.variable, "API_TOKEN_ID");
        // A real Proxmox in the demo needs its token.
        let e = resolve_demo(&[("PROXMOX_HOST", "pve1")]).unwrap_err();
        assert_eq!(e.variable, "API_TOKEN_ID");
        let config = resolve_demo(&[
            ("PROXMOX_HOST", "pve1"),
            ("API_TOKEN_ID", "leazzard@pve!dns"),
            ("API_TOKEN_SECRET", SECRET),
        ])
        .unwrap();
        assert_eq!(config.proxmox.unwrap().hosts[0].port, 8006);
    }

    #[test]
    fn secret_from_file_and_conflicts() {
        let dir = std::env::temp_dir().join(format!("leazzard-config-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        let path = file.to_str().unwrap();
        let vars: Vec<(&str, &str)> = minimal()
            .into_iter()
            .filter(|(k, _)| *k != "API_TOKEN_SECRET")
            .chain([("API_TOKEN_SECRET_FILE", path)])
            .collect();
        let config = resolve(&vars).unwrap();
        assert_eq!(config.proxmox.unwrap().token_secret.expose(), SECRET);
        let mut both = vars.clone();
        both.push(("API_TOKEN_SECRET", SECRET));
        let e = resolve(&both).unwrap_err();
        assert_eq!(e.variable, "API_TOKEN_SECRET");
        assert!(e.to_string().contains("give only one"), "{e}");
        // An empty API_TOKEN_SECRET beside the file is "unset", not a conflict.
        let mut empty = vars.clone();
        empty.push(("API_TOKEN_SECRET", ""));
        assert!(resolve(&empty).is_ok());
    }

    #[test]
    fn secret_is_never_printed() {
        let dir =
            std::env::temp_dir().join(format!("leazzard-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, SECRET).unwrap();
        let file = file.to_str().unwrap().to_string();
        let assert_hidden = |what: &str, text: String| {
            assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
        };

        // A working configuration, the secret given either way.
        for secret in [
            ("API_TOKEN_SECRET", SECRET),
            ("API_TOKEN_SECRET_FILE", file.as_str()),
        ] {
            let mut vars: Vec<(&str, &str)> = minimal()
                .into_iter()
                .filter(|(k, _)| *k != "API_TOKEN_SECRET")
                .collect();
            vars.push(secret);
            let raw = raw(&vars);
            assert_hidden("RawConfig", format!("{raw:?}"));
            let config = raw.resolve_with(Profile::Service, None).unwrap();
            assert_hidden("Config", format!("{config:?} {config:#?}"));
            let proxmox = config.proxmox.unwrap();
            assert_hidden("Secret", format!("{0:?} {0}", proxmox.token_secret));
        }

        // Every error, with the secret set, in both forms.
        for secret in [
            ("API_TOKEN_SECRET", SECRET),
            ("API_TOKEN_SECRET_FILE", file.as_str()),
        ] {
            let base: Vec<(&str, &str)> = minimal()
                .into_iter()
                .filter(|(k, _)| *k != "API_TOKEN_SECRET")
                .chain([secret])
                .collect();
            let mut cases: Vec<Vec<(&str, &str)>> = BAD_VALUES
                .iter()
                .map(|(k, v, _)| {
                    let mut vars = base.clone();
                    vars.retain(|(name, _)| name != k);
                    vars.push((k, v));
                    vars
                })
                .collect();
            // The secret pasted where it does not belong.
            let header = format!("PVEAPIToken=leazzard@pve!dns={SECRET}");
            let http = format!("http://{SECRET}:8006");
            let misplaced = [
                ("API_TOKEN_ID", header.as_str()),
                ("API_TOKEN_ID", SECRET),
                ("DNS_LISTEN", SECRET),
                ("PROXMOX_HOST", http.as_str()),
                ("DNS_TTL", SECRET),
                ("DHCP_OPTION", SECRET),
                ("NETWORK_CIDR", SECRET),
            ];
            for (k, v) in misplaced {
                let mut vars = base.clone();
                vars.retain(|(name, _)| *name != k);
                vars.push((k, v));
                cases.push(vars);
            }
            for vars in cases {
                let e = resolve(&vars).unwrap_err();
                assert_hidden("ConfigError", format!("{e} {e:?}"));
            }
        }
        // The scrubbing itself: a message that would quote the secret shows *** instead.
        let http = format!("http://{SECRET}:8006");
        let e = resolve(&with(&[("PROXMOX_HOST", http.as_str())])).unwrap_err();
        assert!(e.to_string().contains("\"http://***:8006\""), "{e}");
        // Both given: neither message quotes it.
        let e = resolve(&with(&[("API_TOKEN_SECRET_FILE", file.as_str())])).unwrap_err();
        assert_hidden("ConfigError", format!("{e} {e:?}"));
        // A secret with a space: the message does not quote it.
        let spaced = format!("{SECRET} x");
        let e = resolve(&with(&[("API_TOKEN_SECRET", spaced.as_str())])).unwrap_err();
        assert_hidden("ConfigError", format!("{e} {e:?}"));
    }

    #[test]
    fn clap_env_names_match_the_variables() {
        let cmd = Cli::command();
        let mut envs = BTreeSet::new();
        for arg in cmd.get_arguments() {
            let env = arg
                .get_env()
                .and_then(|e| e.to_str())
                .expect("every flag has an env");
            let long = arg.get_long().expect("every flag is long");
            assert_eq!(long, env.to_ascii_lowercase().replace('_', "-"));
            envs.insert(env.to_string());
        }
        let want: BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(envs, want);
        // from_lookup asks for exactly the same names.
        let asked = std::cell::RefCell::new(Vec::new());
        RawConfig::from_lookup(|name| {
            asked.borrow_mut().push(name.to_string());
            None
        });
        assert_eq!(asked.into_inner(), VARIABLES);
        assert_eq!(VARIABLES.len(), RawConfig::default().values().len());
    }

    #[test]
    fn clap_flags_for_each_subcommand() {
        let _env = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
        let flags = [
            "--proxmox-host=pve1",
            "--api-token-id=leazzard@pve!dns",
            "--api-token-secret",
            SECRET,
            "--network-cidr",
            "10.0.0/23",
            "--dhcp-range=10.0.0.10,10.0.0.20,12h",
            "--dns-upstream=1.1.1.1",
            "--http-listen=",
        ];
        let parse = |pre: &[&str]| {
            let argv: Vec<&str> = ["leazzard"]
                .iter()
                .chain(pre)
                .chain(&flags)
                .copied()
                .collect();
            Cli::try_parse_from(argv).unwrap().into_command()
        };
        let check = |raw: &RawConfig| {
            assert_eq!(raw.proxmox_host.as_deref(), Some("pve1"));
            assert_eq!(raw.http_listen.as_deref(), Some(""));
            let config = raw.resolve_with(Profile::Service, None).unwrap();
            assert_eq!(config.network.to_string(), "10.0.0.0/23");
            assert_eq!(config.http_listen, None);
        };
        match parse(&[]) {
            Command::Run(raw) => check(&raw),
            other => panic!("{other:?}"),
        }
        match parse(&["run"]) {
            Command::Run(raw) => check(&raw),
            other => panic!("{other:?}"),
        }
        match parse(&["check"]) {
            Command::Check(raw) => check(&raw),
            other => panic!("{other:?}"),
        }
        match parse(&["demo"]) {
            Command::Demo(raw) => check(&raw),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Cli::try_parse_from(["leazzard", "demo"])
                .unwrap()
                .into_command(),
            Command::Demo(_)
        ));
        // A subcommand after top-level flags is refused, not silently dropped.
        assert!(Cli::try_parse_from(["leazzard", "--dns-domain=lab", "check"]).is_err());
        // clap itself never rejects a value: validation is ours.
        let cli = Cli::try_parse_from(["leazzard", "--dns-ttl=-5", "--network-cidr", "x"]).unwrap();
        assert_eq!(cli.run.dns_ttl.as_deref(), Some("-5"));
    }

    #[test]
    fn clap_reads_the_environment_and_help_hides_the_secret() {
        let _env = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
        let marker = "not-a-real-secret-4c1b7e";
        std::env::set_var("DHCP_INTERFACE", "lzt-env0");
        std::env::set_var("API_TOKEN_SECRET", marker);
        // Empty in the environment must reach us as empty (it disables HTTP), not as unset.
        std::env::set_var("HTTP_LISTEN", "");
        let parsed = Cli::try_parse_from(["leazzard", "check", "--dns-domain", "x.lab"])
            .map(Cli::into_command);
        let top = Cli::try_parse_from(["leazzard"]).map(Cli::into_command);
        let help = Cli::command().render_long_help().to_string();
        let sub_help = Cli::command()
            .find_subcommand_mut("run")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        std::env::remove_var("DHCP_INTERFACE");
        std::env::remove_var("API_TOKEN_SECRET");
        std::env::remove_var("HTTP_LISTEN");

        match parsed.unwrap() {
            Command::Check(raw) => {
                assert_eq!(raw.dhcp_interface.as_deref(), Some("lzt-env0"));
                assert_eq!(raw.dns_domain.as_deref(), Some("x.lab"));
                assert_eq!(raw.api_token_secret.as_deref(), Some(marker));
                assert_eq!(raw.http_listen.as_deref(), Some(""));
            }
            other => panic!("{other:?}"),
        }
        match top.unwrap() {
            Command::Run(raw) => assert_eq!(raw.dhcp_interface.as_deref(), Some("lzt-env0")),
            other => panic!("{other:?}"),
        }
        for help in [&help, &sub_help] {
            for variable in VARIABLES {
                let flag = format!("--{}", variable.to_ascii_lowercase().replace('_', "-"));
                assert!(help.contains(&flag), "{flag} missing from help");
                assert!(
                    help.contains(&format!("env: {variable}")),
                    "{variable} missing"
                );
            }
            assert!(help.contains("lzt-env0"), "help shows env values");
            assert!(!help.contains(marker), "help shows the secret");
        }
    }
}
