//! The Proxmox side of the configuration: API endpoints (`PROXMOX_HOST`), the API token
//! (`API_TOKEN_ID`, `API_TOKEN_SECRET`, `API_TOKEN_SECRET_FILE`) and how the server's
//! certificate is trusted (`VERIFY_SSL`, `PROXMOX_CA_FILE`, `PROXMOX_FINGERPRINT`).
//!
//! Invariants: reads only the files those variables name; contacts nothing. The token
//! secret lives only in a [`Secret`], whose `Debug` and `Display` print `***`, and no
//! message built here contains it: where a user may have pasted the secret into the
//! wrong variable (a whole `PVEAPIToken=…` header, a UUID as token ID), the value is not
//! quoted back.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::values::{parse_bool, parse_domain};
use super::ConfigError;

/// The port a bare `host` (no scheme) means: where `pveproxy` listens.
const PVEPROXY_PORT: u16 = 8006;

/// Everything needed to talk to the Proxmox VE API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxmoxConfig {
    /// Endpoints in the order given; the client fails over from one to the next. Never empty.
    pub hosts: Vec<ProxmoxHost>,
    /// `USER@REALM!TOKENID`, checked for that shape.
    pub token_id: String,
    /// The token's secret; see [`Secret`].
    pub token_secret: Secret,
    /// How the API's certificate is trusted.
    pub tls: TlsMode,
}

/// One Proxmox API endpoint, always HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxmoxHost {
    /// A lowercased DNS name, an IPv4 address, or an IPv6 address *without* brackets (what
    /// TLS name checks and socket APIs want); [`ProxmoxHost::base_url`] adds the brackets.
    pub host: String,
    /// TCP port: 443 for a URL without port, 8006 for a bare host without port.
    pub port: u16,
}

impl ProxmoxHost {
    /// `https://host:port`, IPv6 bracketed, without trailing slash; the API lives under
    /// `/api2/json` below it.
    pub fn base_url(&self) -> String {
        format!("https://{self}")
    }
}

impl fmt::Display for ProxmoxHost {
    /// `host:port`, IPv6 bracketed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A secret that must never be logged: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret (the demo builds one for its simulated API).
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that needs it: the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the Proxmox API's TLS certificate is trusted.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Verify the chain and the name: against the system roots, or only against the
    /// certificates of `PROXMOX_CA_FILE` (PEM bytes, known to hold a certificate) when set.
    Verify {
        /// The PEM text of `PROXMOX_CA_FILE`, if given.
        ca_pem: Option<Vec<u8>>,
        /// The path it was read from, for messages; `Some` exactly when `ca_pem` is.
        ca_file: Option<PathBuf>,
    },
    /// Accept exactly these end-entity certificates, by SHA-256 of their DER, whatever
    /// their chain or name (Proxmox's self-signed node certificates). One per node; never
    /// empty.
    Pinned(Vec<[u8; 32]>),
    /// Accept any certificate (`VERIFY_SSL=false`), as the old tool allowed.
    Insecure,
}

impl fmt::Debug for TlsMode {
    // The PEM bytes would fill a screen; their size says enough. Fingerprints print as
    // `pvenode cert info` shows them, so they can be compared by eye.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::Verify {
                ca_pem: Some(pem),
                ca_file,
            } => write!(
                f,
                "Verify {{ ca_file: {ca_file:?}, ca_pem: Some(<{} bytes of PEM>) }}",
                pem.len()
            ),
            TlsMode::Verify { ca_file, .. } => {
                write!(f, "Verify {{ ca_file: {ca_file:?}, ca_pem: None }}")
            }
            TlsMode::Pinned(fingerprints) => {
                let shown: Vec<String> = fingerprints.iter().map(format_fingerprint).collect();
                write!(f, "Pinned({shown:?})")
            }
            TlsMode::Insecure => f.write_str("Insecure"),
        }
    }
}

/// `AB:CD:…`, the way `pvenode cert info` prints a fingerprint.
pub fn format_fingerprint(fingerprint: &[u8; 32]) -> String {
    fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(crate) const EXAMPLE_HOST: &str = "https://pve1.example.net or pve1:8006,pve2:8006";
pub(crate) const EXAMPLE_TOKEN_ID: &str = "leazzard@pve!dns (USER@REALM!TOKENID)";
pub(crate) const EXAMPLE_SECRET: &str = "API_TOKEN_SECRET_FILE=/run/secrets/pve_token";
pub(crate) const EXAMPLE_BOOL: &str = "true or false";
pub(crate) const EXAMPLE_CA_FILE: &str = "/etc/leazzard/pve-root-ca.pem";
pub(crate) const EXAMPLE_FINGERPRINT: &str =
    "3A:5F:0B:…:9C (32 hex pairs, as `pvenode cert info` prints), comma-separated per node";

/// `PROXMOX_HOST`: one or several endpoints, comma-separated. Duplicates are dropped.
pub(crate) fn parse_hosts(s: &str) -> Result<Vec<ProxmoxHost>, ConfigError> {
    let mut hosts: Vec<ProxmoxHost> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let host =
            parse_host(entry).map_err(|p| ConfigError::new("PROXMOX_HOST", p, EXAMPLE_HOST))?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        return Err(ConfigError::new(
            "PROXMOX_HOST",
            format!("{s:?} names no host"),
            EXAMPLE_HOST,
        ));
    }
    Ok(hosts)
}

fn parse_host(entry: &str) -> Result<ProxmoxHost, String> {
    let (rest, default_port) = match entry.find("://") {
        Some(i) => match entry[..i].to_ascii_lowercase().as_str() {
            "https" => (&entry[i + 3..], 443),
            "http" => {
                return Err(format!(
                    "{entry:?} uses http://, but the Proxmox API only speaks HTTPS"
                ))
            }
            scheme => {
                return Err(format!(
                    "{entry:?} has scheme {scheme:?}; only https:// is supported"
                ))
            }
        },
        None => (entry, PVEPROXY_PORT),
    };
    if rest.contains('@') {
        // Not quoted: what precedes '@' may be a password.
        return Err(
            "an entry has user info before '@'; credentials go in API_TOKEN_ID and API_TOKEN_SECRET"
                .into(),
        );
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // The old tool's users wrote the API root (`…/api2/json`) or a trailing slash; the
    // client appends the API path itself, so anything else would be silently wrong.
    if !matches!(path.trim_end_matches('/'), "" | "/api2/json") {
        return Err(format!(
            "{entry:?} has path {path:?}; only / or /api2/json may follow the host"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inner, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{entry:?} has '[' without ']'"))?;
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("{entry:?}: {inner:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{entry:?} has {after:?} after ']'; expected :port"))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        let (name, port) = match authority.matches(':').count() {
            0 => (authority, None),
            1 => authority
                .split_once(':')
                .map(|(n, p)| (n, Some(p)))
                .unwrap_or((authority, None)),
            _ => {
                return Err(format!(
                    "{entry:?} looks like an IPv6 address without brackets; write [fd00::1]:8006"
                ))
            }
        };
        (parse_host_name(entry, name)?, port)
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 && p.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(format!("{entry:?} has port {p:?}; expected 1-65535")),
        },
    };
    Ok(ProxmoxHost { host, port })
}

/// A DNS name or an IPv4 address. Something made only of digits and dots is taken for an
/// address, so `10.0.0.256` is refused instead of being looked up as a name.
fn parse_host_name(entry: &str, name: &str) -> Result<String, String> {
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{entry:?}: {name:?} is not an IPv4 address"));
    }
    parse_domain(name).map_err(|_| format!("{entry:?}: {name:?} is not a host name"))
}

/// `API_TOKEN_ID`: `USER@REALM!TOKENID` with Proxmox's own rules for realm and token name
/// (a letter, then letters, digits, `.`, `-`, `_`).
pub(crate) fn parse_token_id(s: &str) -> Result<String, ConfigError> {
    let err = |problem: String| ConfigError::new("API_TOKEN_ID", problem, EXAMPLE_TOKEN_ID);
    let t = s.trim();
    // A whole header (`PVEAPIToken=user@realm!id=secret`) or `id=secret` holds the secret:
    // say what is wrong without quoting it.
    if t.contains('=') {
        return Err(err(
            "contains '=': give only the token ID here, and the secret in API_TOKEN_SECRET or API_TOKEN_SECRET_FILE"
                .into(),
        ));
    }
    if looks_like_uuid(t) {
        return Err(err(
            "looks like a token secret (a UUID), not a token ID; the secret goes in API_TOKEN_SECRET"
                .into(),
        ));
    }
    let (user_id, token) = t
        .rsplit_once('!')
        .ok_or_else(|| err(format!("{s:?} has no '!TOKENID' part")))?;
    let (user, realm) = user_id
        .rsplit_once('@')
        .ok_or_else(|| err(format!("{s:?} has no '@REALM' part")))?;
    if user.is_empty()
        || user
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/')
    {
        return Err(err(format!("{s:?} has no valid USER before '@'")));
    }
    if !is_proxmox_id(realm) {
        return Err(err(format!("{s:?} has no valid REALM between '@' and '!'")));
    }
    if !is_proxmox_id(token) {
        return Err(err(format!("{s:?} has no valid TOKENID after '!'")));
    }
    Ok(t.to_string())
}

fn is_proxmox_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The secret from `API_TOKEN_SECRET` or from the file `API_TOKEN_SECRET_FILE` names (a
/// Docker secret), trimmed. `Ok(None)` when neither is set; both set is an error. No message
/// here quotes the secret or the file's content.
pub(crate) fn read_secret(
    value: Option<&str>,
    file: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    let secret = match (value, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "API_TOKEN_SECRET",
                "both API_TOKEN_SECRET and API_TOKEN_SECRET_FILE are set; give only one",
                EXAMPLE_SECRET,
            ))
        }
        (Some(value), None) => check_secret("API_TOKEN_SECRET", value.trim())?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "API_TOKEN_SECRET_FILE",
                    format!("cannot read {path:?}: {e}"),
                    EXAMPLE_SECRET,
                )
            })?;
            check_secret("API_TOKEN_SECRET_FILE", text.trim())?
        }
    };
    Ok(Some(Secret(secret)))
}

fn check_secret(variable: &'static str, secret: &str) -> Result<String, ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::new(
            variable,
            "the secret is empty",
            EXAMPLE_SECRET,
        ));
    }
    // An inner space or newline means a file with more than the secret in it, or two
    // values pasted together; sending it would only earn a 401 later.
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            variable,
            "the secret contains whitespace; it should be the token's secret alone (a UUID)",
            EXAMPLE_SECRET,
        ));
    }
    Ok(secret.to_string())
}

/// `PROXMOX_FINGERPRINT`: comma-separated SHA-256 fingerprints, `AB:CD:…` (32 pairs, as
/// `pvenode cert info` prints them) or 64 hex digits, either case.
pub(crate) fn parse_fingerprints(s: &str) -> Result<Vec<[u8; 32]>, ConfigError> {
    let mut fingerprints = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let fingerprint = parse_fingerprint(entry)
            .map_err(|p| ConfigError::new("PROXMOX_FINGERPRINT", p, EXAMPLE_FINGERPRINT))?;
        if !fingerprints.contains(&fingerprint) {
            fingerprints.push(fingerprint);
        }
    }
    if fingerprints.is_empty() {
        return Err(ConfigError::new(
            "PROXMOX_FINGERPRINT",
            format!("{s:?} holds no fingerprint"),
            EXAMPLE_FINGERPRINT,
        ));
    }
    Ok(fingerprints)
}

fn parse_fingerprint(entry: &str) -> Result<[u8; 32], String> {
    let hex: String = if entry.contains(':') {
        let pairs: Vec<&str> = entry.split(':').collect();
        if pairs.iter().any(|p| p.len() != 2) {
            return Err(format!(
                "{entry:?} is not a fingerprint: with ':' every part is two hex digits"
            ));
        }
        pairs.concat()
    } else {
        entry.to_string()
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{entry:?} is not a fingerprint: not hex"));
    }
    if hex.len() != 64 {
        let hint = if hex.len() == 40 {
            " (a SHA-1 fingerprint? use the SHA-256 one)"
        } else {
            ""
        };
        return Err(format!(
            "{entry:?} has {} bytes; a SHA-256 fingerprint has 32{hint}",
            hex.len() / 2
        ));
    }
    let mut fingerprint = [0u8; 32];
    for (byte, pair) in fingerprint.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| format!("{entry:?} is not hex"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| format!("{entry:?} is not hex"))?;
    }
    Ok(fingerprint)
}

/// `PROXMOX_CA_FILE`: the file must be readable and hold at least one PEM certificate.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let err = |problem: String| ConfigError::new("PROXMOX_CA_FILE", problem, EXAMPLE_CA_FILE);
    let pem = std::fs::read(path).map_err(|e| err(format!("cannot read {path:?}: {e}")))?;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return Err(err(format!(
            "{path:?} holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
        )));
    }
    Ok(pem)
}

/// The raw TLS variables, resolved together because they decide one thing.
pub(crate) struct TlsInputs<'a> {
    pub verify_ssl: Option<&'a str>,
    pub ca_file: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
}

/// A pinned fingerprint wins over `VERIFY_SSL` (pinning is the stronger, explicit choice);
/// otherwise `VERIFY_SSL=false` means [`TlsMode::Insecure`]; otherwise verification, with
/// the CA file if given. Every variable given is validated even when it loses, so a typo is
/// found now rather than when the user later relies on it. Settings that lose are reported
/// in `warnings`.
pub(crate) fn resolve_tls(
    inputs: &TlsInputs<'_>,
    warnings: &mut Vec<String>,
) -> Result<TlsMode, ConfigError> {
    let verify = match inputs.verify_ssl {
        None => true,
        Some(s) => parse_bool(s).map_err(|p| ConfigError::new("VERIFY_SSL", p, EXAMPLE_BOOL))?,
    };
    let ca = match inputs.ca_file {
        None => None,
        Some(path) => {
            let path = PathBuf::from(path);
            Some((read_ca_file(&path)?, path))
        }
    };
    let fingerprints = inputs.fingerprint.map(parse_fingerprints).transpose()?;
    if let Some(fingerprints) = fingerprints {
        if ca.is_some() {
            warnings.push(
                "PROXMOX_CA_FILE is ignored: PROXMOX_FINGERPRINT pins the certificates".into(),
            );
        }
        if !verify {
            warnings.push(
                "VERIFY_SSL=false is ignored: PROXMOX_FINGERPRINT pins the certificates".into(),
            );
        }
        return Ok(TlsMode::Pinned(fingerprints));
    }
    if !verify {
        if ca.is_some() {
            warnings.push("PROXMOX_CA_FILE is ignored: VERIFY_SSL=false".into());
        }
        return Ok(TlsMode::Insecure);
    }
    let (ca_pem, ca_file) = ca.unzip();
    Ok(TlsMode::Verify { ca_pem, ca_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, port: u16) -> ProxmoxHost {
        ProxmoxHost {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_forms() {
        let cases: &[(&str, &[(&str, u16)])] = &[
            ("https://pve1.example.net", &[("pve1.example.net", 443)]),
            (
                "https://pve1.example.net:8006",
                &[("pve1.example.net", 8006)],
            ),
            ("HTTPS://PVE1:8006/", &[("pve1", 8006)]),
            ("https://pve1/api2/json", &[("pve1", 443)]),
            ("https://pve1:8006/api2/json/", &[("pve1", 8006)]),
            ("pve1", &[("pve1", 8006)]),
            ("pve1.lab.", &[("pve1.lab", 8006)]),
            ("pve1:443", &[("pve1", 443)]),
            ("198.18.0.10", &[("198.18.0.10", 8006)]),
            ("198.18.0.10:8443", &[("198.18.0.10", 8443)]),
            ("[fd00::10]", &[("fd00::10", 8006)]),
            ("[fd00::10]:8006", &[("fd00::10", 8006)]),
            ("https://[FD00::10]", &[("fd00::10", 443)]),
            ("https://[fd00::10]:8007/api2/json", &[("fd00::10", 8007)]),
            (
                "pve1, pve2:8006 ,https://pve3",
                &[("pve1", 8006), ("pve2", 8006), ("pve3", 443)],
            ),
            ("pve1,pve1:8006,", &[("pve1", 8006)]),
        ];
        for (s, want) in cases {
            let want: Vec<ProxmoxHost> = want.iter().map(|(h, p)| host(h, *p)).collect();
            assert_eq!(parse_hosts(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn host_errors() {
        let cases = [
            ("http://pve1:8006", "only speaks HTTPS"),
            ("ftp://pve1", "only https://"),
            ("https://pve1/pve", "path"),
            ("pve1/api2/json/nodes", "path"),
            ("fd00::10", "brackets"),
            ("[fd00::10", "without ']'"),
            ("[fd00::10]8006", "after ']'"),
            ("[pve1]:8006", "not an IPv6 address"),
            ("pve1:0", "port"),
            ("pve1:65536", "port"),
            ("pve1:+80", "port"),
            ("pve1:", "port"),
            ("10.0.0.256", "not an IPv4 address"),
            ("pve_1", "not a host name"),
            ("https://", "not a host name"),
            (":8006", "not a host name"),
            (",", "names no host"),
            ("pve1?x=1", "not a host name"),
        ];
        for (s, needle) in cases {
            let e = parse_hosts(s).expect_err(s);
            assert_eq!(e.variable, "PROXMOX_HOST");
            assert!(e.to_string().contains(needle), "{s}: {e}");
        }
        let e = parse_hosts("https://root:hunter22@pve1").unwrap_err();
        assert!(!e.to_string().contains("hunter22"), "{e}");
    }

    #[test]
    fn base_urls() {
        assert_eq!(host("pve1", 8006).base_url(), "https://pve1:8006");
        assert_eq!(
            host("198.18.0.10", 443).base_url(),
            "https://198.18.0.10:443"
        );
        assert_eq!(host("fd00::10", 8006).base_url(), "https://[fd00::10]:8006");
        assert_eq!(host("fd00::10", 8006).to_string(), "[fd00::10]:8006");
    }

    #[test]
    fn token_ids() {
        for s in [
            "leazzard@pve!dns",
            "root@pam!leazzard-1",
            "svc.dns@ldap_corp!t.1",
            " leazzard@pve!dns ",
        ] {
            assert_eq!(parse_token_id(s), Ok(s.trim().to_string()), "{s}");
        }
        for s in [
            "leazzard@pve",
            "leazzard!dns",
            "@pve!dns",
            "leazzard@pve!",
            "leazzard@p!dns",
            "leazzard@pve!1dns",
            "lea zzard@pve!dns",
            "leazzard@pve!d ns",
            "",
        ] {
            let e = parse_token_id(s).expect_err(s);
            assert_eq!(e.variable, "API_TOKEN_ID");
            assert!(e.to_string().contains("USER@REALM!TOKENID"), "{e}");
        }
        let secret = "0e9ad6d8-2d1c-4bb6-a23a-1f2a64a8c0de";
        for s in [
            format!("PVEAPIToken=leazzard@pve!dns={secret}"),
            format!("leazzard@pve!dns={secret}"),
            secret.to_string(),
        ] {
            let e = parse_token_id(&s).expect_err(&s);
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }

    #[test]
    fn secrets() {
        let dir = scratch_dir("secrets");
        let file = dir.join("token");
        std::fs::write(&file, "  0e9ad6d8-2d1c-4bb6-a23a-1f2a64a8c0de\n").unwrap();
        let file = file.to_str().unwrap();
        let secret = read_secret(None, Some(file)).unwrap().unwrap();
        assert_eq!(secret.expose(), "0e9ad6d8-2d1c-4bb6-a23a-1f2a64a8c0de");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(
            read_secret(Some(" abc "), None).unwrap().unwrap().expose(),
            "abc"
        );
        assert_eq!(read_secret(None, None), Ok(None));

        let two_lines = dir.join("two-lines");
        std::fs::write(&two_lines, "first\nsecond\n").unwrap();
        let blank = dir.join("blank");
        std::fs::write(&blank, " \n").unwrap();
        let missing = dir.join("missing");
        let cases = [
            (Some("abc"), Some(file), "API_TOKEN_SECRET", "give only one"),
            (Some("a b"), None, "API_TOKEN_SECRET", "whitespace"),
            (
                None,
                two_lines.to_str(),
                "API_TOKEN_SECRET_FILE",
                "whitespace",
            ),
            (None, blank.to_str(), "API_TOKEN_SECRET_FILE", "empty"),
            (
                None,
                missing.to_str(),
                "API_TOKEN_SECRET_FILE",
                "cannot read",
            ),
        ];
        for (value, file, variable, needle) in cases {
            let e = read_secret(value, file).unwrap_err();
            assert_eq!(e.variable, variable);
            assert!(e.to_string().contains(needle), "{e}");
            assert!(!e.to_string().contains("first"), "{e}");
        }
    }

    #[test]
    fn fingerprints() {
        let colons = "3A:5F:0B:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:9C";
        let plain = colons.replace(':', "").to_lowercase();
        let want: [u8; 32] = [
            0x3a, 0x5f, 0x0b, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
            0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
            0xaa, 0xbb, 0xcc, 0x9c,
        ];
        assert_eq!(parse_fingerprints(colons), Ok(vec![want]));
        assert_eq!(parse_fingerprints(&plain), Ok(vec![want]));
        let other = format!("{}01", &plain[..62]);
        assert_eq!(
            parse_fingerprints(&format!("{colons}, {other},{plain}")).map(|v| v.len()),
            Ok(2)
        );
        assert_eq!(format_fingerprint(&want), colons.to_uppercase());
        let sha1 = "AB:".repeat(19) + "AB";
        for (s, needle) in [
            (&plain[..62], "32"),
            (&format!("{plain}00"), "32"),
            (&sha1, "SHA-1"),
            (&colons.replace("3A:", "3:A"), "two hex digits"),
            (&plain.replace('a', "g"), "not hex"),
            (&plain.replace('a', "+"), "not hex"),
            (",", "no fingerprint"),
        ] {
            let e = parse_fingerprints(s).expect_err(s);
            assert_eq!(e.variable, "PROXMOX_FINGERPRINT");
            assert!(e.to_string().contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn tls_modes() {
        let dir = scratch_dir("tls");
        let ca = dir.join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let not_pem = dir.join("key.pem");
        std::fs::write(&not_pem, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let ca = ca.to_str().unwrap();
        let fp = "ab".repeat(32);
        let tls = |verify_ssl, ca_file, fingerprint| {
            let mut warnings = Vec::new();
            resolve_tls(
                &TlsInputs {
                    verify_ssl,
                    ca_file,
                    fingerprint,
                },
                &mut warnings,
            )
            .map(|mode| (mode, warnings.len()))
        };
        assert_eq!(
            tls(None, None, None),
            Ok((
                TlsMode::Verify {
                    ca_pem: None,
                    ca_file: None
                },
                0
            ))
        );
        assert_eq!(
            tls(Some("TRUE"), None, None).map(|t| t.0),
            Ok(TlsMode::Verify {
                ca_pem: None,
                ca_file: None
            })
        );
        assert_eq!(tls(Some("off"), None, None), Ok((TlsMode::Insecure, 0)));
        assert_eq!(tls(Some("0"), Some(ca), None), Ok((TlsMode::Insecure, 1)));
        assert!(matches!(
            tls(None, Some(ca), None),
            Ok((
                TlsMode::Verify {
                    ca_pem: Some(_),
                    ca_file: Some(_)
                },
                0
            ))
        ));
        assert_eq!(
            tls(Some("no"), Some(ca), Some(&fp)),
            Ok((TlsMode::Pinned(vec![[0xab; 32]]), 2))
        );
        let debug = format!("{:?}", tls(None, Some(ca), None).unwrap().0);
        assert!(debug.contains("bytes of PEM"), "{debug}");

        let missing = dir.join("missing.pem");
        for (verify, ca_file, fingerprint, variable) in [
            (Some("maybe"), None, None, "VERIFY_SSL"),
            (None, not_pem.to_str(), None, "PROXMOX_CA_FILE"),
            (None, missing.to_str(), None, "PROXMOX_CA_FILE"),
            (None, dir.to_str(), None, "PROXMOX_CA_FILE"),
            (None, None, Some("abc"), "PROXMOX_FINGERPRINT"),
            // A losing setting is still validated.
            (Some("false"), None, Some("abc"), "PROXMOX_FINGERPRINT"),
            (None, missing.to_str(), Some(fp.as_str()), "PROXMOX_CA_FILE"),
        ] {
            let e = tls(verify, ca_file, fingerprint).unwrap_err();
            assert_eq!(e.variable, variable, "{e}");
        }
    }

    /// A fresh directory for one test's files, under the system temp dir.
    pub(crate) fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "leazzard-config-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
