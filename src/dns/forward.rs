//! The forwarder: names outside our zones go to `DNS_UPSTREAM`, with a cache.
//!
//! Each upstream query goes out from a fresh UDP socket (a random source port, as RFC 5452
//! asks of a resolver) with a fresh random ID, and the answer is only taken when ID and
//! question match. A truncated answer is fetched again over TCP. Upstreams are tried in
//! order; when all fail the client gets SERVFAIL.
//!
//! The cache keys on (lowercased name, type, class, DO, CD) and keeps an answer for its
//! smallest TTL (negative answers: the SOA's minimum), at most [`MAX_TTL`]; served copies have
//! their TTLs counted down, as dnsmasq does. SERVFAIL is never cached.
//!
//! Invariants: no naming rules; the cache lock is never held across an `.await`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::authority::response_to;

/// How long one upstream gets to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest time an answer is cached, whatever its TTL.
pub const MAX_TTL: u32 = 3600;
/// Cache entries at most; past that, expired ones go first, then the oldest.
const CACHE_ENTRIES: usize = 10_000;

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    name: String,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

struct Cached {
    response: Message,
    stored: Instant,
    ttl: u32,
}

/// Why forwarding gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// `DNS_UPSTREAM` is empty.
    #[error("no upstream resolver configured (set DNS_UPSTREAM)")]
    NoUpstream,
    /// Every upstream timed out or failed.
    #[error("every upstream failed; last: {0}")]
    AllFailed(String),
}

/// Forwards queries to the upstream resolvers and caches their answers.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

impl Forwarder {
    /// A forwarder to `upstreams`, tried in order.
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The configured upstreams.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The answer to `query` from the cache or an upstream, with the query's ID and letter
    /// case. On failure the caller answers SERVFAIL.
    pub async fn resolve(&self, query: &Message) -> Result<(Message, bool), ForwardError> {
        let key = cache_key(query);
        if let Some(key) = &key {
            if let Some(hit) = self.lookup(key) {
                return Ok((with_query_identity(hit, query), true));
            }
        }
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let mut last = String::new();
        for upstream in &self.upstreams {
            match ask(*upstream, query).await {
                Ok(response) => {
                    if let Some(key) = key {
                        self.store(key, &response);
                    }
                    return Ok((with_query_identity(response, query), false));
                }
                Err(e) => {
                    tracing::debug!(upstream = %upstream, error = %e, "upstream failed");
                    last = format!("{upstream}: {e}");
                }
            }
        }
        Err(ForwardError::AllFailed(last))
    }

    fn lookup(&self, key: &CacheKey) -> Option<Message> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        let age = u32::try_from(entry.stored.elapsed().as_secs()).unwrap_or(u32::MAX);
        if age >= entry.ttl {
            return None;
        }
        let mut msg = entry.response.clone();
        let count_down = |records: &mut Vec<hickory_proto::rr::Record>| {
            for record in records.iter_mut() {
                let ttl = record.ttl().saturating_sub(age).max(1);
                record.set_ttl(ttl);
            }
        };
        count_down(msg.answers_mut());
        count_down(msg.name_servers_mut());
        count_down(msg.additionals_mut());
        Some(msg)
    }

    fn store(&self, key: CacheKey, response: &Message) {
        let Some(ttl) = cache_ttl(response) else {
            return;
        };
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, c| c.stored.elapsed().as_secs() < u64::from(c.ttl));
            if cache.len() >= CACHE_ENTRIES {
                if let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.stored)
                    .map(|(k, _)| k.clone())
                {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(
            key,
            Cached {
                response: response.clone(),
                stored: Instant::now(),
                ttl,
            },
        );
    }

    /// Number of cached answers (for metrics and tests).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

fn cache_key(query: &Message) -> Option<CacheKey> {
    let q = query.queries().first()?;
    Some(CacheKey {
        name: q.name().to_lowercase().to_ascii(),
        qtype: q.query_type().into(),
        qclass: q.query_class().into(),
        dnssec_ok: query
            .extensions()
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok),
        checking_disabled: query.checking_disabled(),
    })
}

/// How long `response` may be cached, or `None` when it must not be.
fn cache_ttl(response: &Message) -> Option<u32> {
    if response.truncated() {
        return None;
    }
    let ttl =
        match response.response_code() {
            ResponseCode::NoError if !response.answers().is_empty() => {
                response.answers().iter().map(|r| r.ttl()).min()?
            }
            // Negative answers (NXDOMAIN, NODATA): the SOA's minimum, bounded by its TTL (RFC 2308).
            ResponseCode::NoError | ResponseCode::NXDomain => response
                .name_servers()
                .iter()
                .find_map(|r| match r.data() {
                    RData::SOA(soa) => Some(soa.minimum().min(r.ttl())),
                    _ => None,
                })?,
            _ => return None,
        };
    (ttl > 0).then_some(ttl.min(MAX_TTL))
}

/// `response` re-addressed to `query`: its ID, its question exactly as asked (0x20), and
/// AA cleared — we are not authoritative for what we forward.
fn with_query_identity(mut response: Message, query: &Message) -> Message {
    response.set_id(query.id());
    response.set_authoritative(false);
    *response.queries_mut() = query.queries().to_vec();
    response
}

/// One exchange with one upstream: UDP, then TCP if the answer was truncated.
async fn ask(upstream: SocketAddr, query: &Message) -> Result<Message, String> {
    let mut outgoing = query.clone();
    let id: u16 = rand_id();
    outgoing.set_id(id);
    let bytes = outgoing.to_vec().map_err(|e| format!("encode: {e}"))?;

    let bind: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(upstream).await.map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    let mut buf = vec![0u8; 65535];
    let response = loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        // Anything that is not the answer to this very question is ignored (spoofing, late
        // answers to an earlier query on a reused port).
        if let Ok(msg) = Message::from_vec(&buf[..n]) {
            if matches_query(&msg, &outgoing) {
                break msg;
            }
        }
    };
    if !response.truncated() {
        return Ok(response);
    }
    tokio::time::timeout(UPSTREAM_TIMEOUT, ask_tcp(upstream, &bytes, &outgoing))
        .await
        .map_err(|_| "timed out over TCP".to_string())?
}

async fn ask_tcp(
    upstream: SocketAddr,
    bytes: &[u8],
    outgoing: &Message,
) -> Result<Message, String> {
    let mut stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let len = stream.read_u16().await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::from(len)];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let msg = Message::from_vec(&buf).map_err(|e| e.to_string())?;
    if matches_query(&msg, outgoing) {
        Ok(msg)
    } else {
        Err("answer does not match the question".into())
    }
}

fn matches_query(response: &Message, query: &Message) -> bool {
    response.message_type() == MessageType::Response
        && response.id() == query.id()
        && response.queries().len() == query.queries().len()
        && response
            .queries()
            .iter()
            .zip(query.queries())
            .all(|(a, b)| a.name().eq_case(b.name()) || a.name() == b.name())
}

/// A random 16-bit ID, from the OS's random source via std's hasher keys (good enough for
/// ID randomisation, and no extra dependency).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u16
}

/// SERVFAIL for `query` (every upstream failed).
pub fn servfail(query: &Message) -> Message {
    let mut msg = response_to(query);
    msg.add_queries(query.queries().to_vec());
    msg.set_response_code(ResponseCode::ServFail);
    msg
}
