//! The durable lease store: an append-only log of lease records in `DATA_DIR/leases.log`,
//! written by one dedicated thread with group commit.
//!
//! Owns: the log file and its format, loading it (and, on first start, importing a dnsmasq
//! leases file), compaction, and the writer thread.
//!
//! Must not: decide anything about leases (the pool does), or block the async runtime: all
//! file I/O after [`Store::open`] happens on the writer thread, and callers learn of
//! durability through a callback or a future.
//!
//! Invariants:
//! - A commit's completion runs only after its records are written *and* `fdatasync`ed; a
//!   DHCPACK waits for it, so a crash loses no acknowledged lease.
//! - Group commit: the writer takes every commit queued while it was busy, writes them with
//!   one `write`, makes them durable with one `fdatasync`, then completes them all.
//! - A record is `len: u32 LE | crc: u32 LE | payload`, the CRC-32 (IEEE) covering the
//!   length bytes and the payload. On load, a record that does not check out ends the log
//!   (a torn tail, truncated away) unless a valid record follows somewhere after it (then
//!   the damaged bytes are skipped and the log is compacted at once). Neither is fatal.
//! - Compaction writes the live set to `leases.log.tmp`, fsyncs it, renames it over the
//!   log and fsyncs the directory: at every instant one complete log exists.
//!
//! CRC-32 is written here (a 256-entry table, a few lines) rather than taken from
//! `crc32fast`: records are ~50 bytes, so its SIMD speed buys nothing measurable next to
//! the fsync, and the crate is not otherwise in the dependency tree.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::inventory::MacAddr;

use super::lease::{LeaseRecord, INFINITE};

/// The log's file name inside `DATA_DIR`.
pub const LOG_FILE: &str = "leases.log";
/// The first bytes of a log: names the format and its version.
const MAGIC: &[u8; 8] = b"LZLEASE1";
/// No valid record is longer (a client id and a hostname of at most 255 bytes each, plus
/// fixed fields): a larger length is damage, not data.
const MAX_PAYLOAD: usize = 1024;
/// Compact when the log is this many times the live set…
const COMPACT_FACTOR: u64 = 4;
/// …and larger than this, so a small store is not rewritten over and over.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRecord {
    /// The binding of `addr` is now this (new, renewed, released or expired).
    Put(LeaseRecord),
    /// The address has no binding any more (declined).
    Remove(Ipv4Addr),
}

impl StoreRecord {
    fn addr(&self) -> Ipv4Addr {
        match self {
            StoreRecord::Put(r) => r.addr,
            StoreRecord::Remove(a) => *a,
        }
    }
}

/// A lease store failure. Cloneable: one failed `fdatasync` fails every commit of its batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("lease store {path}: cannot {action}: {source}; check that DATA_DIR is writable and not full")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("write", "fsync", …).
        action: &'static str,
        /// The error from the OS.
        #[source]
        source: Arc<io::Error>,
    },
    /// The file exists but is not a leazzard lease log; it is left alone.
    #[error("lease store {0}: not a leazzard lease log (bad header); move it away to start with an empty store")]
    NotALog(PathBuf),
    /// The writer thread is gone (the store was closed).
    #[error("lease store closed")]
    Closed,
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |e| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source: Arc::new(e),
    }
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Valid records read (before folding into the live set).
    pub records: usize,
    /// Damaged bytes skipped in the middle of the log (then compacted away).
    pub skipped_bytes: u64,
    /// Bytes of a torn tail truncated away.
    pub truncated_bytes: u64,
    /// The dnsmasq import done on this (first) start, if any.
    pub import: Option<ImportReport>,
}

/// What a dnsmasq leases import found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The file read.
    pub path: PathBuf,
    /// Leases imported.
    pub imported: usize,
    /// Lines not understood, with their 1-based number and why (IPv6 lines are not counted).
    pub rejected: Vec<(usize, String)>,
    /// Why the file could not be read at all, if so (a missing file is not an error: it
    /// may have been removed after an earlier import).
    pub unreadable: Option<String>,
}

/// Counters of the writer thread, for `/metrics` and benchmarks.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// `fdatasync` calls that completed a batch.
    pub syncs: AtomicU64,
    /// Records made durable.
    pub records: AtomicU64,
    /// Commits completed (successfully or not).
    pub commits: AtomicU64,
    /// Compactions done.
    pub compactions: AtomicU64,
    /// Time spent in `fdatasync`, in microseconds (divide by `syncs` for the mean).
    pub sync_micros: AtomicU64,
}

/// A callback run on the writer thread once a commit is durable (or failed). It must be
/// quick: it delays the next batch. Sending a packet or a message is fine.
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>;

struct Job {
    records: Vec<StoreRecord>,
    done: Option<Done>,
}

/// The lease store: a handle to the writer thread. Dropping it drains the queue, then stops
/// the thread.
pub struct Store {
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    stats: Arc<StoreStats>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating `dir` and the log if needed) the store in `dir`, returning it with
    /// the live leases (one per address, active or expired). On first start (no log yet),
    /// `import` names a dnsmasq leases file whose leases become the initial log. A torn or
    /// damaged log is repaired, not refused; only an unreadable directory or a file that is
    /// not a lease log stops the start.
    pub fn open(
        dir: &Path,
        import: Option<&Path>,
    ) -> Result<(Store, Vec<LeaseRecord>, LoadReport), StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let path = dir.join(LOG_FILE);
        let mut report = LoadReport::default();
        let live: HashMap<Ipv4Addr, LeaseRecord> = match fs::read(&path) {
            Ok(bytes) => load(&path, &bytes, &mut report)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut live = HashMap::new();
                if let Some(source) = import {
                    let imp = import_dnsmasq(source);
                    for r in &imp.1 {
                        live.insert(r.addr, r.clone());
                    }
                    report.import = Some(imp.0);
                }
                // Written atomically: a crash during the import leaves no log, and the next
                // start imports again.
                rewrite(&path, live.values())?;
                live
            }
            Err(e) => return Err(io_err(&path, "read")(e)),
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "open"))?;
        let log_bytes = file.metadata().map_err(io_err(&path, "stat"))?.len();
        let mut writer = Writer {
            path: path.clone(),
            file,
            live: live
                .values()
                .map(|r| (r.addr, frame(&StoreRecord::Put(r.clone()))))
                .collect(),
            live_bytes: 0,
            log_bytes,
            stats: Arc::new(StoreStats::default()),
        };
        writer.live_bytes = writer.live.values().map(|f| f.len() as u64).sum();
        let stats = writer.stats.clone();
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("lease-store".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(&path, "start the writer thread for"))?;
        let mut leases: Vec<LeaseRecord> = live.into_values().collect();
        leases.sort_by_key(|r| r.addr);
        Ok((
            Store {
                tx: Some(tx),
                writer: Some(thread),
                stats,
                path,
            },
            leases,
            report,
        ))
    }

    /// Queues `records`; `done` runs on the writer thread once they are durable (or the
    /// write failed). Never blocks.
    pub fn commit(
        &self,
        records: Vec<StoreRecord>,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        let job = Job {
            records,
            done: Some(Box::new(done)),
        };
        if let Some(tx) = &self.tx {
            if let Err(mpsc::SendError(job)) = tx.send(job) {
                if let Some(done) = job.done {
                    done(Err(StoreError::Closed));
                }
            }
        }
    }

    /// Queues `records` and resolves once they are durable: for async callers.
    pub fn commit_async(
        &self,
        records: Vec<StoreRecord>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commit(records, move |r| {
            let _ = tx.send(r);
        });
        async move { rx.await.unwrap_or(Err(StoreError::Closed)) }
    }

    /// Queues `records` and blocks until they are durable: for threads off the runtime.
    pub fn commit_wait(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit(records, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// The writer's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Completes every queued commit, then stops the writer thread. Blocks until then (as
    /// dropping the store does): call it off the async runtime (`spawn_blocking`).
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.writer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    file: File,
    /// The live set, one framed `Put` per address: what compaction writes.
    live: HashMap<Ipv4Addr, Vec<u8>>,
    live_bytes: u64,
    log_bytes: u64,
    stats: Arc<StoreStats>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut batch: Vec<Job> = Vec::new();
        while let Ok(first) = rx.recv() {
            batch.push(first);
            // Everything queued while the previous fsync ran shares the next one.
            while let Ok(job) = rx.try_recv() {
                batch.push(job);
            }
            buf.clear();
            let mut framed: Vec<(Ipv4Addr, bool, usize)> = Vec::new();
            for job in &batch {
                for r in &job.records {
                    let f = frame(r);
                    framed.push((r.addr(), matches!(r, StoreRecord::Put(_)), buf.len()));
                    buf.extend_from_slice(&f);
                }
            }
            let result = self.append(&buf);
            match &result {
                Ok(()) => {
                    let ends = framed.iter().skip(1).map(|f| f.2).chain([buf.len()]);
                    for (&(addr, put, start), end) in framed.iter().zip(ends) {
                        if let Some(old) = self.live.remove(&addr) {
                            self.live_bytes -= old.len() as u64;
                        }
                        if put {
                            self.live_bytes += (end - start) as u64;
                            self.live.insert(addr, buf[start..end].to_vec());
                        }
                    }
                    self.stats
                        .records
                        .fetch_add(framed.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "lease store write failed; the ACKs of this batch are withheld")
                }
            }
            for job in batch.drain(..) {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                if let Some(done) = job.done {
                    done(result.clone());
                }
            }
            if self.log_bytes > COMPACT_MIN_BYTES
                && self.log_bytes > COMPACT_FACTOR * self.live_bytes.max(1)
            {
                if let Err(e) = self.compact() {
                    tracing::warn!(error = %e, "lease store compaction failed; will retry");
                }
            }
        }
    }

    /// Appends `buf` and makes it durable. On failure the file is cut back to where it was,
    /// so a half-written batch never precedes later records.
    fn append(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all(buf)
            .map_err(io_err(&self.path, "write"))
            .and_then(|()| {
                let started = std::time::Instant::now();
                let synced = self.file.sync_data().map_err(io_err(&self.path, "fsync"));
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.stats.sync_micros.fetch_add(micros, Ordering::Relaxed);
                synced
            });
        match result {
            Ok(()) => {
                self.log_bytes += buf.len() as u64;
                self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.log_bytes);
                Err(e)
            }
        }
    }

    fn compact(&mut self) -> Result<(), StoreError> {
        let bytes = write_log(&self.path, self.live.values().map(|f| f.as_slice()))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path, "reopen"))?;
        self.log_bytes = bytes;
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(path = %self.path.display(), bytes, leases = self.live.len(), "lease store compacted");
        Ok(())
    }
}

/// Rewrites the log at `path` to hold exactly `records`, atomically.
fn rewrite<'a>(
    path: &Path,
    records: impl Iterator<Item = &'a LeaseRecord>,
) -> Result<u64, StoreError> {
    let frames: Vec<Vec<u8>> = records
        .map(|r| frame(&StoreRecord::Put(r.clone())))
        .collect();
    write_log(path, frames.iter().map(|f| f.as_slice()))
}

/// Writes header + `frames` to `path.tmp`, fsyncs, renames over `path`, fsyncs the
/// directory. Returns the new log's size.
fn write_log<'a>(path: &Path, frames: impl Iterator<Item = &'a [u8]>) -> Result<u64, StoreError> {
    let tmp = path.with_extension("log.tmp");
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(MAGIC);
    for f in frames {
        buf.extend_from_slice(f);
    }
    let mut file = File::create(&tmp).map_err(io_err(&tmp, "create"))?;
    file.write_all(&buf).map_err(io_err(&tmp, "write"))?;
    file.sync_all().map_err(io_err(&tmp, "fsync"))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path, "rename over"))?;
    sync_dir(path)?;
    Ok(buf.len() as u64)
}

/// Makes a rename or truncation in `path`'s directory durable.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))
}

/// Reads a log: valid records folded into the live set; a torn tail truncated away;
/// damage in the middle skipped and compacted away.
fn load(
    path: &Path,
    bytes: &[u8],
    report: &mut LoadReport,
) -> Result<HashMap<Ipv4Addr, LeaseRecord>, StoreError> {
    let mut live = HashMap::new();
    if bytes.len() < MAGIC.len() {
        if MAGIC.starts_with(bytes) {
            // A crash while the first header was written: nothing was ever committed.
            report.truncated_bytes = bytes.len() as u64;
            rewrite(path, live.values())?;
            return Ok(live);
        }
        return Err(StoreError::NotALog(path.to_path_buf()));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::NotALog(path.to_path_buf()));
    }
    let mut pos = MAGIC.len();
    while pos < bytes.len() {
        if let Some((record, next)) = unframe(bytes, pos) {
            report.records += 1;
            match record {
                StoreRecord::Put(r) => {
                    live.insert(r.addr, r);
                }
                StoreRecord::Remove(a) => {
                    live.remove(&a);
                }
            }
            pos = next;
            continue;
        }
        // Damage: a valid record further on means the middle was hit (skip to it);
        // none means the tail was torn (cut it off).
        match (pos + 1..bytes.len()).find(|&p| unframe(bytes, p).is_some()) {
            Some(p) => {
                tracing::warn!(path = %path.display(), offset = pos, bytes = p - pos, "lease log damaged; skipping");
                report.skipped_bytes += (p - pos) as u64;
                pos = p;
            }
            None => {
                tracing::warn!(path = %path.display(), offset = pos, bytes = bytes.len() - pos, "lease log has a torn tail; truncating");
                report.truncated_bytes = (bytes.len() - pos) as u64;
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path, "open"))?;
                file.set_len(pos as u64).map_err(io_err(path, "truncate"))?;
                file.sync_all().map_err(io_err(path, "fsync"))?;
                break;
            }
        }
    }
    if report.skipped_bytes > 0 {
        rewrite(path, live.values())?;
    }
    Ok(live)
}

/// Frames a record: `len | crc | payload`.
fn frame(record: &StoreRecord) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64);
    match record {
        StoreRecord::Put(r) => {
            payload.push(1);
            payload.extend_from_slice(&r.addr.octets());
            payload.extend_from_slice(&r.mac.0);
            payload.extend_from_slice(&r.expiry.to_le_bytes());
            put_bytes(&mut payload, r.client_id.as_deref());
            put_bytes(&mut payload, r.hostname.as_deref().map(str::as_bytes));
        }
        StoreRecord::Remove(a) => {
            payload.push(2);
            payload.extend_from_slice(&a.octets());
        }
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = Crc32::new();
    crc.update(&len);
    crc.update(&payload);
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// An optional byte string: `u8` presence, `u16 LE` length, bytes. Longer than
/// [`u8::MAX`] bytes is cut (neither option 61 nor a hostname can legitimately be).
fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(b) => {
            let b = &b[..b.len().min(255)];
            out.push(1);
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// Reads the record framed at `pos`, if it is whole and checks out; returns it with the
/// offset after it.
fn unframe(bytes: &[u8], pos: usize) -> Option<(StoreRecord, usize)> {
    let header = bytes.get(pos..pos + 8)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(pos + 8..pos + 8 + len)?;
    let mut crc = Crc32::new();
    crc.update(&header[..4]);
    crc.update(payload);
    if crc.finish() != u32::from_le_bytes(header[4..8].try_into().ok()?) {
        return None;
    }
    Some((parse_payload(payload)?, pos + 8 + len))
}

fn parse_payload(p: &[u8]) -> Option<StoreRecord> {
    let mut r = Reader(p);
    let record = match r.u8()? {
        1 => {
            let addr = Ipv4Addr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?);
            let mac = MacAddr(<[u8; 6]>::try_from(r.take(6)?).ok()?);
            let expiry = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
            let client_id = r.bytes()?.map(<[u8]>::to_vec);
            let hostname = match r.bytes()? {
                Some(b) => Some(String::from_utf8(b.to_vec()).ok()?),
                None => None,
            };
            StoreRecord::Put(LeaseRecord {
                addr,
                mac,
                client_id,
                expiry,
                hostname,
            })
        }
        2 => StoreRecord::Remove(Ipv4Addr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?)),
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Some(None),
            1 => {
                let n = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
                Some(Some(self.take(n)?))
            }
            _ => None,
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and Ethernet compute it.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

/// Reads a dnsmasq leases file (`expiry mac ip hostname client-id` per line, `*` for none,
/// expiry 0 = infinite). IPv6 lines (after a `duid` line, or with an IPv6 address) are
/// skipped silently: this server is DHCPv4 only.
pub fn import_dnsmasq(path: &Path) -> (ImportReport, Vec<LeaseRecord>) {
    let mut report = ImportReport {
        path: path.to_path_buf(),
        ..ImportReport::default()
    };
    let text = match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            report.unreadable = Some("not found".into());
            return (report, Vec::new());
        }
        Err(e) => {
            report.unreadable = Some(e.to_string());
            return (report, Vec::new());
        }
    };
    let (records, rejected) = parse_dnsmasq_leases(&text);
    report.imported = records.len();
    report.rejected = rejected;
    for (line, why) in &report.rejected {
        tracing::warn!(path = %path.display(), line, reason = %why, "dnsmasq lease not imported");
    }
    tracing::info!(path = %path.display(), leases = report.imported, "dnsmasq leases imported");
    (report, records)
}

/// Parses the text of a dnsmasq leases file; see [`import_dnsmasq`].
pub fn parse_dnsmasq_leases(text: &str) -> (Vec<LeaseRecord>, Vec<(usize, String)>) {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "duid" {
            continue;
        }
        if fields.get(2).is_some_and(|ip| ip.contains(':')) {
            continue; // an IPv6 lease
        }
        match parse_dnsmasq_line(&fields) {
            Ok(r) => records.push(r),
            Err(why) => rejected.push((i + 1, why)),
        }
    }
    (records, rejected)
}

fn parse_dnsmasq_line(fields: &[&str]) -> Result<LeaseRecord, String> {
    if fields.len() < 4 {
        return Err(format!(
            "{} fields, expected `expiry mac ip hostname [client-id]`",
            fields.len()
        ));
    }
    let expiry: u64 = fields[0]
        .parse()
        .map_err(|_| format!("expiry {:?} is not a number", fields[0]))?;
    let mac: MacAddr = fields[1]
        .parse()
        .map_err(|_| format!("{:?} is not an Ethernet MAC", fields[1]))?;
    let addr: Ipv4Addr = fields[2]
        .parse()
        .map_err(|_| format!("{:?} is not an IPv4 address", fields[2]))?;
    let hostname = Some(fields[3]).filter(|h| *h != "*").map(str::to_string);
    let client_id = match fields.get(4) {
        None | Some(&"*") => None,
        Some(hex) => Some(
            hex.split(':')
                .map(|b| u8::from_str_radix(b, 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| format!("client id {hex:?} is not hex bytes"))?,
        ),
    };
    Ok(LeaseRecord {
        addr,
        mac,
        client_id,
        expiry: if expiry == 0 { INFINITE } else { expiry },
        hostname,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// A fresh directory for one test (on the real disk: /tmp is not tmpfs here, and a
    /// tmpfs would make fsync figures meaningless), removed when dropped.
    pub(crate) struct TestDir(pub PathBuf);

    impl TestDir {
        pub(crate) fn new(name: &str) -> TestDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let base = std::env::var_os("LEAZZARD_TEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let dir = base.join(format!(
                "leazzard-dhcp-{}-{name}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            TestDir(dir)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(n: u8, expiry: u64) -> LeaseRecord {
        LeaseRecord {
            addr: Ipv4Addr::new(10, 0, 0, n),
            mac: MacAddr([2, 0, 0, 0, 0, n]),
            client_id: (n % 2 == 0).then(|| vec![1, 2, 0, 0, 0, 0, n]),
            expiry,
            hostname: (n % 3 == 0).then(|| format!("host-{n}")),
        }
    }

    #[test]
    fn crc32_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_with_puts_and_removes() {
        let dir = TestDir::new("roundtrip");
        {
            let (store, leases, report) = Store::open(&dir.0, None).unwrap();
            assert!(leases.is_empty());
            assert_eq!(report, LoadReport::default());
            store
                .commit_wait(vec![
                    StoreRecord::Put(record(1, 100)),
                    StoreRecord::Put(record(2, INFINITE)),
                    StoreRecord::Put(record(3, 300)),
                ])
                .unwrap();
            store
                .commit_wait(vec![
                    StoreRecord::Remove(Ipv4Addr::new(10, 0, 0, 2)),
                    StoreRecord::Put(record(3, 999)),
                ])
                .unwrap();
            assert_eq!(store.stats().syncs.load(Ordering::Relaxed), 2);
        }
        let (_store, leases, report) = Store::open(&dir.0, None).unwrap();
        assert_eq!(leases, vec![record(1, 100), record(3, 999)]);
        assert_eq!(report.records, 5);
    }

    /// Writes `n` single-record commits and returns the log bytes and each record's end.
    fn log_with(dir: &Path, n: u8) -> (Vec<u8>, Vec<usize>) {
        let (store, _, _) = Store::open(dir, None).unwrap();
        for i in 1..=n {
            store
                .commit_wait(vec![StoreRecord::Put(record(i, 1000 + u64::from(i)))])
                .unwrap();
        }
        store.close();
        let bytes = fs::read(dir.join(LOG_FILE)).unwrap();
        let mut ends = Vec::new();
        let mut pos = MAGIC.len();
        while let Some((_, next)) = unframe(&bytes, pos) {
            ends.push(next);
            pos = next;
        }
        (bytes, ends)
    }

    #[test]
    fn torn_tail_at_every_offset_keeps_every_earlier_record() {
        let dir = TestDir::new("torn");
        let (bytes, ends) = log_with(&dir.0, 4);
        assert_eq!(ends.len(), 4);
        let last_start = ends[2];
        for cut in last_start..bytes.len() {
            fs::write(dir.0.join(LOG_FILE), &bytes[..cut]).unwrap();
            let (store, leases, report) = Store::open(&dir.0, None).unwrap();
            assert_eq!(
                leases,
                (1..=3)
                    .map(|i| record(i, 1000 + u64::from(i)))
                    .collect::<Vec<_>>(),
                "cut at {cut}"
            );
            assert_eq!(
                report.truncated_bytes as usize,
                cut - last_start,
                "cut at {cut}"
            );
            let size = fs::metadata(dir.0.join(LOG_FILE)).unwrap().len();
            assert_eq!(
                size as usize, last_start,
                "tail cut off the file, cut at {cut}"
            );
            // The tail is gone from the file, and appending after it works.
            store
                .commit_wait(vec![StoreRecord::Put(record(9, 5))])
                .unwrap();
            store.close();
            let (_s, leases, report) = Store::open(&dir.0, None).unwrap();
            assert_eq!(leases.len(), 4, "cut at {cut}");
            assert_eq!((report.truncated_bytes, report.skipped_bytes), (0, 0));
        }
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_compacted_away() {
        let dir = TestDir::new("crc");
        let (mut bytes, ends) = log_with(&dir.0, 4);
        // Flip a payload byte of the second record: its CRC no longer matches.
        bytes[ends[0] + 10] ^= 0x40;
        fs::write(dir.0.join(LOG_FILE), &bytes).unwrap();
        let (store, leases, report) = Store::open(&dir.0, None).unwrap();
        let addrs: Vec<u8> = leases.iter().map(|l| l.addr.octets()[3]).collect();
        assert_eq!(addrs, vec![1, 3, 4]);
        assert_eq!(report.skipped_bytes as usize, ends[1] - ends[0]);
        store.close();
        let (_s, leases, report) = Store::open(&dir.0, None).unwrap();
        assert_eq!(leases.len(), 3);
        assert_eq!(report.skipped_bytes, 0, "compacted at the previous open");
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = TestDir::new("foreign");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(
            dir.0.join(LOG_FILE),
            b"1700000000 52:54:00:12:34:56 10.0.0.5 x *\n",
        )
        .unwrap();
        assert!(matches!(
            Store::open(&dir.0, None),
            Err(StoreError::NotALog(_))
        ));
        assert!(fs::read(dir.0.join(LOG_FILE))
            .unwrap()
            .starts_with(b"1700000000"));
    }

    #[test]
    fn compaction_keeps_the_live_set() {
        let dir = TestDir::new("compact");
        let (store, _, _) = Store::open(&dir.0, None).unwrap();
        // ~150 live leases renewed over and over: the log outgrows 4× the live set.
        for round in 0..200u64 {
            let records: Vec<StoreRecord> = (1..=150)
                .map(|i| StoreRecord::Put(record(i, 10_000 + round)))
                .collect();
            store.commit_wait(records).unwrap();
        }
        store
            .commit_wait(vec![StoreRecord::Remove(Ipv4Addr::new(10, 0, 0, 7))])
            .unwrap();
        assert!(store.stats().compactions.load(Ordering::Relaxed) >= 1);
        let size = fs::metadata(store.path()).unwrap().len();
        store.close();
        assert!(size < 4 * 150 * 64 + (1 << 20), "log is {size} bytes");
        let (_s, leases, _) = Store::open(&dir.0, None).unwrap();
        assert_eq!(leases.len(), 149);
        assert!(leases.iter().all(|l| l.expiry == 10_199));
        assert!(!leases.iter().any(|l| l.addr == Ipv4Addr::new(10, 0, 0, 7)));
    }

    const DNSMASQ_SAMPLE: &str = "\
1718000000 52:54:00:12:34:56 198.18.0.101 web1 01:52:54:00:12:34:56
0 bc:24:11:aa:bb:cc 198.18.0.102 * *
1718000500 bc:24:11:aa:bb:cd 198.18.0.103 printer ff:00:00:00:01:00:01:2c:aa
garbage line
1718000000 52:54:00:12:34:57 198.18.0.999 bad *
duid 00:01:00:01:2c:aa:bb:cc:dd:ee:ff:00:11:22
1718000000 12345678 fd00::5 web1 00:01:00:01
";

    #[test]
    fn dnsmasq_import_on_first_start_only() {
        let dir = TestDir::new("import");
        fs::create_dir_all(&dir.0).unwrap();
        let src = dir.0.join("dnsmasq.leases");
        fs::write(&src, DNSMASQ_SAMPLE).unwrap();
        let data = dir.0.join("data");
        let (store, leases, report) = Store::open(&data, Some(&src)).unwrap();
        let import = report.import.unwrap();
        assert_eq!(import.imported, 3);
        assert_eq!(
            import.rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(
            leases[0],
            LeaseRecord {
                addr: Ipv4Addr::new(198, 18, 0, 101),
                mac: "52:54:00:12:34:56".parse().unwrap(),
                client_id: Some(vec![1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                expiry: 1_718_000_000,
                hostname: Some("web1".into()),
            }
        );
        assert_eq!(leases[1].expiry, INFINITE);
        assert_eq!(leases[1].hostname, None);
        assert_eq!(leases[1].client_id, None);
        store.close();
        // The second start reads the log; the dnsmasq file is not imported again.
        fs::write(&src, "1718000000 52:54:00:12:34:99 198.18.0.150 new *\n").unwrap();
        let (_s, again, report) = Store::open(&data, Some(&src)).unwrap();
        assert_eq!(report.import, None);
        assert_eq!(again, leases);
    }

    #[test]
    fn missing_import_file_is_not_fatal() {
        let dir = TestDir::new("noimport");
        let (_s, leases, report) =
            Store::open(&dir.0, Some(Path::new("/nonexistent/leases"))).unwrap();
        assert!(leases.is_empty());
        assert_eq!(
            report.import.unwrap().unreadable.as_deref(),
            Some("not found")
        );
    }

    /// Group commit throughput on this machine's disk: printed, not asserted (the figure
    /// depends on the disk). Run with `--release -- --nocapture group_commit`.
    #[test]
    fn group_commit_throughput() {
        let dir = TestDir::new("bench");
        let (store, _, _) = Store::open(&dir.0, None).unwrap();
        let store = Arc::new(store);
        let n: u32 = std::env::var("LEAZZARD_BENCH_RECORDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000);
        let rec = |i: u32| {
            let b = i.to_be_bytes();
            StoreRecord::Put(LeaseRecord {
                addr: Ipv4Addr::new(10, b[1], b[2], b[3]),
                mac: MacAddr([2, 0, b[0], b[1], b[2], b[3]]),
                client_id: Some(vec![1, 2, 0, b[0], b[1], b[2], b[3]]),
                expiry: 1_800_000_000,
                hostname: Some(format!("client-{i}")),
            })
        };

        // Open loop: one commit per record, submitted as fast as a decide loop could.
        let (syncs0, t0) = (store.stats().syncs.load(Ordering::Relaxed), Instant::now());
        let (tx, rx) = mpsc::channel();
        for i in 0..n {
            let tx = tx.clone();
            store.commit(vec![rec(i)], move |r| {
                let _ = tx.send(r.is_ok());
            });
        }
        drop(tx);
        assert_eq!(rx.iter().filter(|ok| *ok).count(), n as usize);
        let secs = t0.elapsed().as_secs_f64();
        let syncs = store.stats().syncs.load(Ordering::Relaxed) - syncs0;
        println!(
            "group commit, open loop: {n} records in {secs:.3} s = {:.0} records/s, {syncs} fsyncs = {:.0} fsyncs/s, {:.1} records/fsync",
            f64::from(n) / secs,
            syncs as f64 / secs,
            f64::from(n) / syncs as f64
        );

        // Closed loop: K clients each wait for their record before the next (perfdhcp-like
        // with K exchanges outstanding), so batches are at most K.
        for k in [1u32, 4, 16, 64, 256] {
            let per = (n / k).clamp(1, 500);
            let (syncs0, t0) = (store.stats().syncs.load(Ordering::Relaxed), Instant::now());
            let micros0 = store.stats().sync_micros.load(Ordering::Relaxed);
            let threads: Vec<_> = (0..k)
                .map(|c| {
                    let store = store.clone();
                    std::thread::spawn(move || {
                        for i in 0..per {
                            store.commit_wait(vec![rec(c * per + i)]).unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let secs = t0.elapsed().as_secs_f64();
            let total = f64::from(k * per);
            let syncs = store.stats().syncs.load(Ordering::Relaxed) - syncs0;
            let micros = store.stats().sync_micros.load(Ordering::Relaxed) - micros0;
            println!(
                "group commit, closed loop, {k} outstanding: {total} records in {secs:.3} s = {:.0} records/s, {:.0} fsyncs/s, {:.1} records/fsync, fdatasync mean {:.0} µs",
                total / secs,
                syncs as f64 / secs,
                total / syncs as f64,
                micros as f64 / syncs as f64
            );
        }
    }
}
