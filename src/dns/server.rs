//! The DNS server's sockets: UDP and TCP on `DNS_LISTEN`, answering from the current
//! [`Authority`] snapshot and handing other names to the [`Forwarder`].
//!
//! UDP is the hot path: one `SO_REUSEPORT` socket per core, each read by a blocking loop on
//! its own thread (not the async runtime), with a 1 MiB receive buffer so bursts are not
//! dropped. A query for one of our names is answered from the pre-encoded templates without
//! parsing the whole message; anything else is decided by [`decide`] with hickory-proto, and
//! forwarding is done by a task on the async runtime that sends the answer back on the same
//! socket. TCP (for truncated answers and zone-sized replies) runs on the async runtime.
//!
//! Invariants: the snapshot is read lock-free (`ArcSwap`); a zone swap never makes a query
//! fail or wait; the server never forwards for clients outside `NETWORK_CIDR` and loopback.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use ipnet::Ipv4Net;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::authority::{response_to, Answer, Authority, EDNS_PAYLOAD};
use super::forward::{servfail, Forwarder};

/// Receive buffer asked for each UDP socket (NSD's value; the 208 KiB default drops bursts).
const RECV_BUFFER: usize = 1 << 20;
/// Forwarded queries in flight at most; past that new ones are dropped (clients retry).
const MAX_FORWARDS: usize = 1024;
/// TCP connections at most, and how long one may sit idle.
const MAX_TCP: usize = 256;
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The query types counted one by one; every other type counts as `other`.
pub const QTYPES: [(&str, u16); 11] = [
    ("A", 1),
    ("AAAA", 28),
    ("PTR", 12),
    ("SOA", 6),
    ("NS", 2),
    ("CNAME", 5),
    ("MX", 15),
    ("TXT", 16),
    ("SRV", 33),
    ("HTTPS", 65),
    ("ANY", 255),
];
/// The response codes counted one by one (by the 4 bits of the header), then `other`, then
/// `dropped` for a query that got no answer.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other", "dropped",
];
const QTYPE_SLOTS: usize = QTYPES.len() + 1;
const RCODE_OTHER: usize = 6;
const RCODE_DROPPED: usize = 7;

/// Queries by type and response code: a fixed table of atomics, so that counting on the hot
/// path is one relaxed increment, with no lock and no allocation.
#[derive(Debug, Default)]
pub struct QueryCounts {
    counts: [[AtomicU64; RCODES.len()]; QTYPE_SLOTS],
}

impl QueryCounts {
    /// Counts a query of type `qtype` (`None`: unreadable) answered with the header's 4-bit
    /// `rcode` (`None`: not answered).
    pub fn record(&self, qtype: Option<u16>, rcode: Option<u8>) {
        let row = qtype
            .and_then(|t| QTYPES.iter().position(|(_, code)| *code == t))
            .unwrap_or(QTYPES.len());
        let col = match rcode {
            Some(r) if usize::from(r) < RCODE_OTHER => usize::from(r),
            Some(_) => RCODE_OTHER,
            None => RCODE_DROPPED,
        };
        self.counts[row][col].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a query answered with `reply` (its header says the code).
    pub fn answered(&self, query: &[u8], reply: &[u8]) {
        self.record(wire_qtype(query), reply.get(3).map(|b| b & 0x0F));
    }

    /// Every (type, rcode) pair counted at least once, with its count.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (row, counts) in self.counts.iter().enumerate() {
            let qtype = QTYPES.get(row).map_or("other", |(name, _)| name);
            for (col, count) in counts.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((qtype, RCODES[col], n));
                }
            }
        }
        out
    }
}

/// The type of the first question of a DNS message, read straight from the wire (no parse,
/// no allocation); `None` when the message is too short or the name is malformed.
pub fn wire_qtype(message: &[u8]) -> Option<u16> {
    let mut i = 12;
    loop {
        let len = usize::from(*message.get(i)?);
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None; // no compression pointers in a question name
        }
        i += len + 1;
    }
    let t = message.get(i + 1..i + 3)?;
    Some(u16::from_be_bytes([t[0], t[1]]))
}

/// Counters of the DNS server, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct DnsStats {
    /// Queries by type and response code (UDP and TCP).
    pub queries: QueryCounts,
    /// Queries over UDP.
    pub udp_queries: AtomicU64,
    /// Queries over TCP.
    pub tcp_queries: AtomicU64,
    /// Answered from the pre-encoded templates.
    pub fast_answers: AtomicU64,
    /// Answered authoritatively by the general path (NXDOMAIN, NODATA, SOA, ...).
    pub authoritative_answers: AtomicU64,
    /// Sent to the forwarder.
    pub forwarded: AtomicU64,
    /// Forwarded queries answered from the cache.
    pub cache_hits: AtomicU64,
    /// Forwarded queries that failed (SERVFAIL sent).
    pub forward_errors: AtomicU64,
    /// Refused (forwarding for a client outside the lab network, or a non-IN class).
    pub refused: AtomicU64,
    /// Malformed queries (FORMERR sent or dropped).
    pub malformed: AtomicU64,
}

/// Who may use us as a resolver (everyone gets our own zones).
#[derive(Debug, Clone)]
pub struct Access {
    /// The lab network.
    pub network: Ipv4Net,
}

impl Access {
    /// Whether `client` may have names outside our zones forwarded.
    pub fn may_forward(&self, client: IpAddr) -> bool {
        match client {
            IpAddr::V4(v4) => v4.is_loopback() || self.network.contains(&v4),
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6
                        .to_ipv4_mapped()
                        .is_some_and(|v4| v4.is_loopback() || self.network.contains(&v4))
            }
        }
    }
}

/// What to do with one query.
pub enum Action {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Resolve it upstream, then answer.
    Forward(Message),
    /// Say nothing (responses, garbage without a header).
    Drop,
}

/// Everything the sockets share.
pub struct DnsShared {
    /// The current zone snapshot; swapped whole by the state task.
    pub authority: ArcSwap<Authority>,
    /// Upstream resolution with cache.
    pub forwarder: Forwarder,
    /// Forwarding policy.
    pub access: Access,
    /// Counters.
    pub stats: DnsStats,
}

/// The general path for one query (anything the fast path passed on).
pub fn decide(shared: &DnsShared, bytes: &[u8], client: IpAddr, max_len: usize) -> Action {
    let stats = &shared.stats;
    let query = match Message::from_vec(bytes) {
        Ok(q) => q,
        Err(_) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            return formerr(bytes);
        }
    };
    if query.message_type() == MessageType::Response {
        return Action::Drop;
    }
    let mut reply = response_to(&query);
    if query.op_code() != OpCode::Query {
        reply.add_queries(query.queries().to_vec());
        reply.set_response_code(ResponseCode::NotImp);
        return encode(&reply, max_len);
    }
    if query.queries().len() != 1 {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        reply.set_response_code(ResponseCode::FormErr);
        return encode(&reply, max_len);
    }
    if query.extensions().as_ref().is_some_and(|e| e.version() > 0) {
        reply.add_queries(query.queries().to_vec());
        reply.set_response_code(ResponseCode::BADVERS);
        return encode(&reply, max_len);
    }
    let authority = shared.authority.load();
    match authority.answer(&query) {
        Answer::Authoritative(msg) => {
            if msg.response_code() == ResponseCode::Refused {
                stats.refused.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.authoritative_answers.fetch_add(1, Ordering::Relaxed);
            }
            encode(&msg, max_len)
        }
        Answer::NotOurs if shared.access.may_forward(client) => {
            stats.forwarded.fetch_add(1, Ordering::Relaxed);
            Action::Forward(query)
        }
        Answer::NotOurs => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            reply.add_queries(query.queries().to_vec());
            reply.set_response_code(ResponseCode::Refused);
            encode(&reply, max_len)
        }
    }
}

/// The most a client takes over UDP: 512 bytes, or its EDNS payload size (capped at ours).
fn udp_limit(query: &Message) -> usize {
    query.extensions().as_ref().map_or(512, |e| {
        usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD))
    })
}

/// Encodes `msg`; if it is larger than `max_len`, sends it truncated (TC set, no records) so
/// the client retries over TCP.
fn encode(msg: &Message, max_len: usize) -> Action {
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= max_len => Action::Reply(bytes),
        Ok(_) => msg.truncate().to_vec().map_or(Action::Drop, Action::Reply),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode DNS response");
            Action::Drop
        }
    }
}

/// FORMERR for bytes hickory could not parse, if they at least carry a query header.
fn formerr(bytes: &[u8]) -> Action {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return Action::Drop;
    }
    let mut reply = bytes[..12].to_vec();
    reply[2] = 0x80 | (bytes[2] & 0x79);
    reply[3] = ResponseCode::FormErr.low();
    reply[4..12].fill(0);
    Action::Reply(reply)
}

/// A forwarded query waiting for the runtime.
struct ForwardJob {
    query: Message,
    client: SocketAddr,
    socket: Arc<UdpSocket>,
}

/// A running DNS server. Dropping it does not stop it; call [`DnsServer::stop`].
pub struct DnsServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` (port 0 picks one, the same for both) and starts
    /// serving. Must be called within a Tokio runtime.
    pub async fn start(listen: SocketAddr, shared: Arc<DnsShared>) -> io::Result<DnsServer> {
        // SO_REUSEPORT lets our per-core sockets share the port, but it would also let us
        // join another server (a second leazzard, a dnsmasq of the same user) and silently
        // take half its queries. A plain bind first says whether the port is really free.
        if listen.port() != 0 {
            drop(UdpSocket::bind(listen)?);
        }
        let first = udp_socket(listen)?;
        let local = first.local_addr()?;
        let tcp = TcpListener::bind(local).await?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(udp_socket(local)?);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<ForwardJob>(MAX_FORWARDS);
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (shared, stop, tx) = (shared.clone(), stop.clone(), tx.clone());
            let socket = Arc::new(socket);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || udp_loop(socket, shared, tx, stop))?,
            );
        }
        let tasks = vec![
            tokio::spawn(forward_loop(rx, shared.clone())),
            tokio::spawn(tcp_loop(tcp, shared)),
        ];
        tracing::info!(listen = %local, udp_workers = workers, "DNS server listening");
        Ok(DnsServer {
            local,
            stop,
            threads,
            tasks,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving: the UDP threads end within their read timeout, the tasks at once.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    if socket.recv_buffer_size()? < RECV_BUFFER {
        force_recv_buffer(&socket);
    }
    // The loop wakes up this often to notice a stop request.
    socket.set_read_timeout(Some(Duration::from_millis(250)))?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// As root, `SO_RCVBUFFORCE` goes past `net.core.rmem_max` (as NSD does); elsewhere the
/// kernel's cap stays and we say so once.
fn force_recv_buffer(socket: &Socket) {
    use std::os::fd::AsRawFd;
    let size = RECV_BUFFER as libc::c_int;
    // SAFETY: setsockopt with a valid fd, a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(
            wanted = RECV_BUFFER,
            "cannot raise the UDP receive buffer past net.core.rmem_max; bursts may be dropped"
        );
    }
}

fn udp_loop(
    socket: Arc<UdpSocket>,
    shared: Arc<DnsShared>,
    forward: mpsc::Sender<ForwardJob>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (n, client) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        shared.stats.udp_queries.fetch_add(1, Ordering::Relaxed);
        let query = &buf[..n];
        if shared
            .authority
            .load()
            .fast_answer(query, &mut out, Some(usize::from(EDNS_PAYLOAD)))
        {
            shared.stats.fast_answers.fetch_add(1, Ordering::Relaxed);
            shared.stats.queries.answered(query, &out);
            let _ = socket.send_to(&out, client);
            continue;
        }
        let limit = Message::from_vec(query).map_or(512, |q| udp_limit(&q));
        match decide(&shared, query, client.ip(), limit) {
            Action::Reply(bytes) => {
                shared.stats.queries.answered(query, &bytes);
                let _ = socket.send_to(&bytes, client);
            }
            Action::Forward(query) => {
                let qtype = query.queries().first().map(|q| u16::from(q.query_type()));
                let job = ForwardJob {
                    query,
                    client,
                    socket: socket.clone(),
                };
                if forward.try_send(job).is_err() {
                    shared.stats.queries.record(qtype, None);
                    tracing::debug!(client = %client, "forward queue full; query dropped");
                }
            }
            Action::Drop => shared.stats.queries.record(wire_qtype(query), None),
        }
    }
}

/// Runs forwarded UDP queries on the async runtime, at most [`MAX_FORWARDS`] at once.
async fn forward_loop(mut jobs: mpsc::Receiver<ForwardJob>, shared: Arc<DnsShared>) {
    let limit = Arc::new(Semaphore::new(MAX_FORWARDS));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = forward_reply(&shared, &job.query).await;
            let limit = udp_limit(&job.query);
            if let Action::Reply(bytes) = encode(&reply, limit) {
                // A UDP send does not block in practice; a full socket buffer drops the
                // datagram, as it would for the client's own network.
                let _ = job.socket.send_to(&bytes, job.client);
            }
        });
    }
}

/// Resolves `query` upstream (or SERVFAIL) and counts it by type and response code.
async fn forward_reply(shared: &DnsShared, query: &Message) -> Message {
    let reply = forward_resolve(shared, query).await;
    let qtype = query.queries().first().map(|q| u16::from(q.query_type()));
    shared
        .stats
        .queries
        .record(qtype, Some(reply.response_code().low()));
    reply
}

async fn forward_resolve(shared: &DnsShared, query: &Message) -> Message {
    match shared.forwarder.resolve(query).await {
        Ok((msg, from_cache)) => {
            if from_cache {
                shared.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            }
            msg
        }
        Err(e) => {
            shared.stats.forward_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "forwarding failed");
            servfail(query)
        }
    }
}

async fn tcp_loop(listener: TcpListener, shared: Arc<DnsShared>) {
    let limit = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let Ok((stream, client)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue; // over the limit: the connection is closed at once
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = tcp_connection(stream, client, &shared).await {
                tracing::debug!(client = %client, error = %e, "TCP connection ended");
            }
        });
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    client: SocketAddr,
    shared: &DnsShared,
) -> io::Result<()> {
    let mut out = Vec::new();
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return Ok(()),
        };
        let mut query = vec![0u8; len];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        shared.stats.tcp_queries.fetch_add(1, Ordering::Relaxed);
        let reply = if shared.authority.load().fast_answer(&query, &mut out, None) {
            shared.stats.fast_answers.fetch_add(1, Ordering::Relaxed);
            shared.stats.queries.answered(&query, &out);
            std::mem::take(&mut out)
        } else {
            match decide(shared, &query, client.ip(), usize::from(u16::MAX)) {
                Action::Reply(bytes) => {
                    shared.stats.queries.answered(&query, &bytes);
                    bytes
                }
                Action::Forward(q) => match forward_reply(shared, &q).await.to_vec() {
                    Ok(bytes) => bytes,
                    Err(_) => continue,
                },
                Action::Drop => {
                    shared.stats.queries.record(wire_qtype(&query), None);
                    return Ok(());
                }
            }
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Zone;
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RecordType};

    fn shared() -> DnsShared {
        let zone = Zone {
            domain: "lab".into(),
            network: "198.18.0.0/23".parse().unwrap(),
            serial: 1,
            records: vec![],
            ptr: Default::default(),
            conflicts: vec![],
        };
        DnsShared {
            authority: ArcSwap::from_pointee(Authority::build(zone, 30)),
            forwarder: Forwarder::new(vec![]),
            access: Access {
                network: "198.18.0.0/23".parse().unwrap(),
            },
            stats: DnsStats::default(),
        }
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    fn rcode(action: Action) -> ResponseCode {
        match action {
            Action::Reply(bytes) => Message::from_vec(&bytes).unwrap().response_code(),
            Action::Forward(_) => panic!("forwarded"),
            Action::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn queries_are_counted_by_type_and_rcode() {
        let counts = QueryCounts::default();
        let a = query("web1.lab.");
        assert_eq!(wire_qtype(&a), Some(1));
        let mut reply = a.clone();
        reply[3] = 3; // NXDOMAIN
        counts.answered(&a, &reply);
        counts.answered(&a, &reply);
        counts.record(Some(28), Some(0));
        counts.record(Some(99), Some(9));
        counts.record(None, None);
        let snap = counts.snapshot();
        assert!(snap.contains(&("A", "NXDOMAIN", 2)), "{snap:?}");
        assert!(snap.contains(&("AAAA", "NOERROR", 1)), "{snap:?}");
        assert!(snap.contains(&("other", "other", 1)), "{snap:?}");
        assert!(snap.contains(&("other", "dropped", 1)), "{snap:?}");
        assert_eq!(snap.len(), 4);
        assert_eq!(wire_qtype(&[0; 11]), None);
        assert_eq!(wire_qtype(&a[..a.len() - 3]), None);
    }

    #[test]
    fn not_an_open_resolver() {
        let s = shared();
        let q = query("example.com.");
        for client in ["198.18.0.50", "127.0.0.1", "::1", "::ffff:198.18.1.7"] {
            assert!(
                matches!(
                    decide(&s, &q, client.parse().unwrap(), 512),
                    Action::Forward(_)
                ),
                "{client} may use us as a resolver"
            );
        }
        for client in ["203.0.113.9", "198.18.2.1", "2001:db8::1"] {
            assert_eq!(
                rcode(decide(&s, &q, client.parse().unwrap(), 512)),
                ResponseCode::Refused,
                "{client}"
            );
        }
        // Our own zones answer everyone.
        let lab = query("nope.lab.");
        assert_eq!(
            rcode(decide(&s, &lab, "203.0.113.9".parse().unwrap(), 512)),
            ResponseCode::NXDomain
        );
        assert_eq!(s.stats.refused.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn malformed_and_odd_queries() {
        let s = shared();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        // Garbage with a header gets FORMERR with the same ID; shorter garbage is dropped.
        let mut garbage = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 63];
        garbage.extend_from_slice(&[b'x'; 5]);
        match decide(&s, &garbage, client, 512) {
            Action::Reply(b) => {
                assert_eq!(&b[..2], &[0xAB, 0xCD]);
                assert_eq!(b[3] & 0x0F, 1);
            }
            _ => panic!("FORMERR expected"),
        }
        assert!(matches!(decide(&s, &[1, 2, 3], client, 512), Action::Drop));
        // A response is never answered (no reflection loops).
        let mut resp = query("web1.lab.");
        resp[2] |= 0x80;
        assert!(matches!(decide(&s, &resp, client, 512), Action::Drop));
        // Other opcodes: NOTIMP.
        let mut notify = query("lab.");
        notify[2] = (notify[2] & 0x87) | (4 << 3);
        assert_eq!(
            rcode(decide(&s, &notify, client, 512)),
            ResponseCode::NotImp
        );
    }
}
