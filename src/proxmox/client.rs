//! The HTTP client of the Proxmox API: token auth, TLS as configured, timeouts, failover
//! across the hosts of `PROXMOX_HOST`, and errors that name the endpoint and the status.
//!
//! Failover: a request goes to the host that answered last; a transport failure (refused,
//! timeout, TLS) or a 5xx that the host itself produced moves on to the next host. A 595/596
//! is the contacted node saying *another* node is unreachable, so it is returned as it is,
//! as are 401 and 403 (another host would say the same).
//!
//! Every request is counted in [`ApiStats`] by endpoint template and status, for `/metrics`.
//!
//! Invariants: the token secret is only ever in the `Authorization` header; no error, log
//! line or `Debug` output contains it. Endpoints are counted as templates
//! (`/nodes/:node/qemu/:vmid/config`), so the counters stay few whatever the cluster's size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::tls;
use crate::config::{ProxmoxConfig, ProxmoxHost};

/// Time allowed for connecting to a host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request. Proxmox gives up on a down node after 30 s; we do not
/// wait that long for one guest.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed API call. Each variant names the endpoint; none carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: the token is unknown, wrong, expired, or its user is disabled.
    #[error("GET {endpoint}: 401 {reason} — the API token was refused; check API_TOKEN_ID (USER@REALM!TOKENID) and API_TOKEN_SECRET")]
    Unauthorized {
        /// The path asked.
        endpoint: String,
        /// The reason phrase (the only place Proxmox explains a 401).
        reason: String,
    },
    /// 403: the token lacks a privilege.
    #[error("GET {endpoint}: 403 {message} — grant the token VM.Audit on /vms (see the README)")]
    Forbidden {
        /// The path asked.
        endpoint: String,
        /// Proxmox's message (`Permission check failed (/vms/100, VM.Audit)`).
        message: String,
    },
    /// Any other non-success status.
    #[error("GET {endpoint}: {status} {message}")]
    Status {
        /// The path asked.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// Proxmox's message, or the reason phrase when the body is empty (595, 596).
        message: String,
    },
    /// No host could be reached (every host was tried).
    #[error("GET {endpoint}: no Proxmox host answered ({detail})")]
    Unreachable {
        /// The path asked.
        endpoint: String,
        /// What went wrong with each host.
        detail: String,
    },
    /// The body was not what the API returns.
    #[error("GET {endpoint}: unexpected response: {detail}")]
    Decode {
        /// The path asked.
        endpoint: String,
        /// What did not fit.
        detail: String,
    },
    /// The client could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl ApiError {
    /// The HTTP status, if the API answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What a request to the API came to, as counted: the HTTP status, or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The host answered with this HTTP status.
    Status(u16),
    /// No answer: cannot connect, TLS refused, timed out, connection dropped.
    NoAnswer,
}

impl Outcome {
    /// The `status` label: the code (`200`, `403`, `595`) or `none`.
    pub fn label(self) -> String {
        match self {
            Outcome::Status(code) => code.to_string(),
            Outcome::NoAnswer => "none".to_string(),
        }
    }

    /// Whether this counts as an error (anything but 2xx).
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Status(200..=299))
    }
}

/// Requests made to the Proxmox API, by endpoint template and outcome, since start.
///
/// A `Mutex` around a small map is enough: a sync makes a few requests per guest, each
/// costing milliseconds of network, and the lock is held for one map update.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: Mutex<BTreeMap<(String, Outcome), u64>>,
}

impl ApiStats {
    /// Counts one request to `path` (a concrete path, query string allowed).
    pub fn record(&self, path: &str, outcome: Outcome) {
        let key = (endpoint_template(path), outcome);
        let mut map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry(key).or_default() += 1;
    }

    /// Every (endpoint template, outcome) counted so far, with its count.
    pub fn snapshot(&self) -> Vec<(String, Outcome, u64)> {
        let map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|((e, o), n)| (e.clone(), *o, *n)).collect()
    }
}

/// The endpoint of `path` with its variable parts named, so that label values are few:
/// `/nodes/pve1/qemu/100/config?x=1` → `/nodes/:node/qemu/:vmid/config`. The query string
/// goes; a segment after `nodes` is `:node`, a number is `:vmid`.
pub fn endpoint_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    let mut previous = "";
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        if previous == "nodes" {
            out.push_str(":node");
        } else if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(":vmid");
        } else {
            out.push_str(segment);
        }
        previous = segment;
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A client of one Proxmox cluster.
pub struct Client {
    http: reqwest::Client,
    hosts: Vec<ProxmoxHost>,
    auth: HeaderValue,
    preferred: AtomicUsize,
    stats: Arc<ApiStats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(serde::Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
}

impl Client {
    /// A client for the cluster in `config`.
    pub fn new(config: &ProxmoxConfig) -> Result<Client, ApiError> {
        let tls = tls::client_config(&config.tls).map_err(|e| ApiError::Setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ApiError::Setup(format!("HTTP client: {e}")))?;
        let mut auth = HeaderValue::from_str(&format!(
            "PVEAPIToken={}={}",
            config.token_id,
            config.token_secret.expose()
        ))
        .map_err(|_| {
            ApiError::Setup(
                "API_TOKEN_ID or API_TOKEN_SECRET holds characters not allowed in an HTTP header"
                    .into(),
            )
        })?;
        auth.set_sensitive(true);
        Ok(Client {
            http,
            hosts: config.hosts.clone(),
            auth,
            preferred: AtomicUsize::new(0),
            stats: Arc::default(),
        })
    }

    /// The hosts, in failover order.
    pub fn hosts(&self) -> &[ProxmoxHost] {
        &self.hosts
    }

    /// The request counters of this client.
    pub fn stats(&self) -> Arc<ApiStats> {
        self.stats.clone()
    }

    /// `GET /api2/json{path}` and the `data` of the answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for offset in 0..self.hosts.len() {
            let index = (start + offset) % self.hosts.len();
            let host = &self.hosts[index];
            match self.get_from(host, path).await {
                Ok(found) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(found);
                }
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::NextHost(why)) => {
                    tracing::debug!(host = %host.base_url(), endpoint = path, error = %why, "Proxmox host failed");
                    failures.push(format!("{}: {why}", host.base_url()));
                }
            }
        }
        Err(ApiError::Unreachable {
            endpoint: path.to_string(),
            detail: failures.join("; "),
        })
    }

    /// One request to one host.
    pub async fn get_from<T: DeserializeOwned>(
        &self,
        host: &ProxmoxHost,
        path: &str,
    ) -> Result<T, Attempt> {
        let url = format!("{}/api2/json{path}", host.base_url());
        let response = match self
            .http
            .get(&url)
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.stats.record(path, Outcome::NoAnswer);
                return Err(Attempt::NextHost(describe(&e)));
            }
        };
        let status = response.status();
        self.stats.record(path, Outcome::Status(status.as_u16()));
        if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Attempt::NextHost(describe(&e)))?;
            return serde_json::from_slice::<Envelope<T>>(&bytes)
                .map(|e| e.data)
                .map_err(|e| {
                    Attempt::Final(ApiError::Decode {
                        endpoint: path.to_string(),
                        detail: e.to_string(),
                    })
                });
        }
        // Proxmox puts the reason in the reason phrase (always) and in `message` (when
        // there is a body); 401, 595 and 596 have an empty body (PROXMOX.md §4).
        let reason = reason_phrase(&response);
        let body: ErrorBody = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let message = body
            .message
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or(reason);
        let endpoint = path.to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => Attempt::Final(ApiError::Unauthorized {
                endpoint,
                reason: message,
            }),
            StatusCode::FORBIDDEN => Attempt::Final(ApiError::Forbidden { endpoint, message }),
            s if s.as_u16() == 595 || s.as_u16() == 596 || s.is_client_error() => {
                Attempt::Final(ApiError::Status {
                    endpoint,
                    status: s.as_u16(),
                    message,
                })
            }
            // A 500 about a guest's own config is the same on every host; only a host that
            // is itself failing (502/503) is worth leaving.
            s if s.as_u16() == 500 => Attempt::Final(ApiError::Status {
                endpoint,
                status: 500,
                message,
            }),
            s => Attempt::NextHost(format!("{} {message}", s.as_u16())),
        })
    }
}

/// The outcome of one try at one host.
#[derive(Debug)]
pub enum Attempt {
    /// The answer is final (another host would say the same).
    Final(ApiError),
    /// This host failed; try the next.
    NextHost(String),
}

/// The reason phrase as the server sent it (hyper keeps non-canonical phrases).
fn reason_phrase(response: &reqwest::Response) -> String {
    response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
        .map(str::to_string)
        .or_else(|| response.status().canonical_reason().map(str::to_string))
        .unwrap_or_default()
}

/// A transport error in a few words, with its causes (reqwest's top line alone says
/// little), and never the request headers.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_templated() {
        for (path, want) in [
            ("/cluster/resources?type=vm", "/cluster/resources"),
            (
                "/nodes/pve1/qemu/100/config",
                "/nodes/:node/qemu/:vmid/config",
            ),
            (
                "/nodes/pve-2/lxc/20001/config",
                "/nodes/:node/lxc/:vmid/config",
            ),
            (
                "/nodes/pve1/qemu/104/cloudinit/dump?type=network",
                "/nodes/:node/qemu/:vmid/cloudinit/dump",
            ),
            ("/access/permissions?path=/vms/100", "/access/permissions"),
            ("/version", "/version"),
            ("", "/"),
        ] {
            assert_eq!(endpoint_template(path), want, "{path}");
        }
    }

    #[test]
    fn stats_count_by_template_and_outcome() {
        let stats = ApiStats::default();
        stats.record("/nodes/pve1/qemu/100/config", Outcome::Status(200));
        stats.record("/nodes/pve2/qemu/101/config", Outcome::Status(200));
        stats.record("/nodes/pve2/qemu/101/config", Outcome::Status(595));
        stats.record("/version", Outcome::NoAnswer);
        let snap = stats.snapshot();
        assert!(snap.contains(&(
            "/nodes/:node/qemu/:vmid/config".into(),
            Outcome::Status(200),
            2
        )));
        assert!(snap.contains(&(
            "/nodes/:node/qemu/:vmid/config".into(),
            Outcome::Status(595),
            1
        )));
        assert!(snap.contains(&("/version".into(), Outcome::NoAnswer, 1)));
        assert!(Outcome::Status(595).is_error() && !Outcome::Status(200).is_error());
        assert_eq!(Outcome::NoAnswer.label(), "none");
    }
}
