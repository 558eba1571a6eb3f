//! The gateway's audit spool: every query's record is on disk before its
//! answer completes, and reaches the catalog exactly once, whenever the
//! catalog is there to take it.
//!
//! - **Writing** ([`Spool::record`]): records go to one writer thread, which
//!   appends everything waiting as JSON lines to the open segment
//!   (`<data dir>/audit/<n>.jsonl`), fsyncs once for the lot (group commit)
//!   and then answers each query, whose stream ends only then.
//! - **Shipping** ([`Spool::ship`]): a task reads the segments in order from
//!   its cursor (`audit/cursor`, saved after each accepted batch), sends
//!   batches to the catalog and deletes a segment once it is shipped. After a
//!   restart it resends from the cursor: the catalog stores a query id once,
//!   so a batch sent twice is kept once.
//! - **Bounded** ([`AuditConfig`]): records on disk not yet shipped may take
//!   `spool_bytes`; beyond, new queries are refused (`when_full = "refuse"`,
//!   the default: nothing is served unaudited) or records are dropped and
//!   counted (`"drop"`). Fullness and counters are in [`SpoolStats`].

use std::io::{BufRead as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_contracts::api::{AuditBatch, AuditRecord};
use tokio::sync::{Notify, oneshot};

use crate::config::{AuditConfig, WhenFull};
use crate::engine::{AuditSink, LogAudit, QueryRecord, Saving};
use crate::error::QueryError;
use crate::sync::{BundleSource, audit_record};

/// A segment is closed (and a new one opened) past this size.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Records per batch sent to the catalog.
const BATCH: usize = 500;
/// Records the writer takes in one group commit.
const GROUP: usize = 4096;

/// What the spool holds and did, for `/metrics` and `/ready`.
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Bytes on disk not yet shipped.
    pub pending_bytes: AtomicU64,
    /// Records written (since start).
    pub written: AtomicU64,
    /// Records the catalog accepted (since start).
    pub shipped: AtomicU64,
    /// Records dropped because the spool was full (`when_full = "drop"`).
    pub dropped: AtomicU64,
    /// Queries refused because the spool was full.
    pub refused: AtomicU64,
}

struct Entry {
    line: Vec<u8>,
    kept: oneshot::Sender<Result<(), String>>,
}

/// The audit spool of one gateway (see the module's documentation).
pub struct Spool {
    /// Held for the spool's life (see [`Spool::open`]).
    _lock: std::fs::File,
    dir: PathBuf,
    config: AuditConfig,
    writer: std::sync::mpsc::Sender<Entry>,
    written: Arc<Notify>,
    stats: Arc<SpoolStats>,
}

impl Spool {
    /// Opens the spool in `data_dir/audit` (created 0700), counting what an
    /// earlier run left unshipped, and starts its writer thread.
    pub fn open(data_dir: &Path, config: AuditConfig) -> std::io::Result<Arc<Self>> {
        let dir = data_dir.join("audit");
        tessera_lake::private_dir(&dir)?;
        // One process per spool: two writers would share segment numbers and
        // the cursor. The lock goes with the process, however it ends.
        let lock = std::fs::File::create(dir.join("lock"))?;
        lock.try_lock().map_err(|e| {
            std::io::Error::other(format!(
                "another process uses the audit spool in {} (one gateway per data_dir): {e}",
                dir.display()
            ))
        })?;
        let stats = Arc::new(SpoolStats::default());
        let cursor = Cursor::load(&dir)?;
        let mut pending = 0;
        let segments = segments(&dir)?;
        for (n, path) in &segments {
            let len = std::fs::metadata(path)?.len();
            pending += if *n == cursor.segment {
                len.saturating_sub(cursor.offset)
            } else {
                len
            };
        }
        stats.pending_bytes.store(pending, Ordering::Relaxed);
        // Each run appends to a segment of its own: an earlier run's last one
        // may end in a torn line (written, never acknowledged).
        let next = segments.last().map_or(1, |(n, _)| n + 1).max(cursor.segment + 1);
        let (writer, queue) = std::sync::mpsc::channel::<Entry>();
        let written = Arc::new(Notify::new());
        let mut segment = Segment::create(&dir, next)?;
        let (notify, counters) = (Arc::clone(&written), Arc::clone(&stats));
        let dir_for_writer = dir.clone();
        std::thread::Builder::new()
            .name("tessera-audit-spool".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    group.extend(queue.try_iter().take(GROUP));
                    // Counted before they are written: the shipper may send
                    // (and subtract) them as soon as they are.
                    let bytes: u64 = group.iter().map(|e| e.line.len() as u64).sum();
                    counters.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
                    let outcome = segment.append(&group).map_err(|e| e.to_string());
                    if let Err(e) = &outcome {
                        tracing::error!(error = %e, "cannot write the audit spool: queries are refused");
                        counters.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
                    } else {
                        counters.written.fetch_add(group.len() as u64, Ordering::Relaxed);
                    }
                    for entry in group {
                        let _ = entry.kept.send(outcome.clone());
                    }
                    notify.notify_one();
                    // A failed append may have left half a line: what follows
                    // goes to a new segment, so that no record shares its line.
                    if outcome.is_err() || segment.len >= SEGMENT_BYTES {
                        match Segment::create(&dir_for_writer, segment.number + 1) {
                            Ok(next) => segment = next,
                            Err(e) => tracing::error!(error = %e, "cannot open a new audit spool segment"),
                        }
                    }
                }
            })?;
        Ok(Arc::new(Self {
            _lock: lock,
            dir,
            config,
            writer,
            written,
            stats,
        }))
    }

    pub fn stats(&self) -> &SpoolStats {
        &self.stats
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    fn full(&self) -> bool {
        self.stats.pending_bytes.load(Ordering::Relaxed) >= self.config.spool_bytes
    }

    /// Whether queries are admitted (see [`AuditSink::admit`]), without
    /// counting a refusal: the bytes waiting if so.
    pub fn admit_check(&self) -> Result<u64, QueryError> {
        if self.full() && self.config.when_full == WhenFull::Refuse {
            return Err(QueryError::AuditUnavailable(format!(
                "its audit spool holds {} bytes not yet delivered to the catalog, its limit",
                self.config.spool_bytes
            )));
        }
        Ok(self.stats.pending_bytes.load(Ordering::Relaxed))
    }

    /// Ships the spool to `source` for ever (run it as a task), as gateway `name`.
    pub async fn ship(self: Arc<Self>, source: Arc<dyn BundleSource>, name: String) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.ship_once(source.as_ref(), &name).await {
                Ok(true) => backoff = Duration::from_millis(200),
                Ok(false) => {
                    // Nothing to send: until the writer writes, or a second passes.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.written.notified()).await;
                }
                Err(e) => {
                    let pending = self.stats.pending_bytes.load(Ordering::Relaxed);
                    tracing::warn!(error = %e, pending_bytes = pending, "cannot ship query audit; kept on disk");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sends the next batch after the cursor; `false` when there was none.
    async fn ship_once(&self, source: &dyn BundleSource, name: &str) -> Result<bool, String> {
        let dir = self.dir.clone();
        let read = tokio::task::spawn_blocking(move || next_batch(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(batch) = read else {
            return Ok(false);
        };
        if !batch.records.is_empty() {
            let records = batch.records.len() as u64;
            source
                .audit(&AuditBatch {
                    gateway: name.to_string(),
                    records: batch.records,
                })
                .await
                .map_err(|e| e.to_string())?;
            self.stats.shipped.fetch_add(records, Ordering::Relaxed);
        }
        let shipped = batch.bytes;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || batch.cursor.save(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let _ = self
            .stats
            .pending_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(shipped))
            });
        Ok(true)
    }
}

impl AuditSink for Spool {
    fn record(&self, record: QueryRecord) -> Saving {
        LogAudit.record(record.clone());
        if self.full() && self.config.when_full == WhenFull::Drop {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Saving::done();
        }
        let mut line = match serde_json::to_vec(&audit_record(&record)) {
            Ok(line) => line,
            Err(e) => return refused(e.to_string()),
        };
        line.push(b'\n');
        let (kept, saving) = oneshot::channel();
        if self.writer.send(Entry { line, kept }).is_err() {
            return refused("the audit spool's writer stopped".into());
        }
        Saving::pending(saving)
    }

    fn admit(&self) -> Result<(), QueryError> {
        self.admit_check().map(drop).inspect_err(|_| {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        })
    }
}

fn refused(why: String) -> Saving {
    let (kept, saving) = oneshot::channel();
    let _ = kept.send(Err(why));
    Saving::pending(saving)
}

/// The open segment, appended to by the writer thread.
struct Segment {
    number: u64,
    file: std::fs::File,
    len: u64,
}

impl Segment {
    fn create(dir: &Path, number: u64) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(segment_path(dir, number))?;
        let len = file.metadata()?.len();
        // The new file's name is durable only once its directory is.
        std::fs::File::open(dir)?.sync_all()?;
        Ok(Self { number, file, len })
    }

    fn append(&mut self, group: &[Entry]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(group.iter().map(|e| e.line.len()).sum());
        for entry in group {
            bytes.extend_from_slice(&entry.line);
        }
        self.file.write_all(&bytes)?;
        self.file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:012}.jsonl"))
}

/// The segments on disk, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

/// How far the catalog has taken the spool: the segment being read and the
/// offset after its last shipped line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    segment: u64,
    offset: u64,
}

impl Cursor {
    fn load(dir: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(dir.join("cursor")) {
            Ok(text) => {
                let mut parts = text.split_whitespace().map(str::parse::<u64>);
                match (parts.next(), parts.next()) {
                    (Some(Ok(segment)), Some(Ok(offset))) => Ok(Self { segment, offset }),
                    _ => Err(std::io::Error::other(format!(
                        "unreadable audit cursor {}",
                        dir.join("cursor").display()
                    ))),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Saved atomically; not fsynced: a cursor lost to a crash resends
    /// records the catalog already holds, which it keeps once.
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("cursor.tmp");
        std::fs::write(&tmp, format!("{} {}\n", self.segment, self.offset))?;
        std::fs::rename(tmp, dir.join("cursor"))
    }
}

/// The next records to ship, and the cursor after them.
struct Batch {
    records: Vec<AuditRecord>,
    cursor: Cursor,
    /// Bytes of the spool the batch moves past (shipped or skipped).
    bytes: u64,
}

/// Reads up to [`BATCH`] complete lines after the cursor. A segment read to
/// its end is deleted once a later one exists (the writer has moved on); a
/// torn last line there (a crash mid-write, never acknowledged) is skipped.
fn next_batch(dir: &Path) -> std::io::Result<Option<Batch>> {
    let mut cursor = Cursor::load(dir)?;
    let segments = segments(dir)?;
    let Some(index) = segments.iter().position(|(n, _)| *n >= cursor.segment) else {
        return Ok(None);
    };
    let (number, path) = &segments[index];
    if *number != cursor.segment {
        cursor = Cursor {
            segment: *number,
            offset: 0,
        };
    }
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(std::io::SeekFrom::Start(cursor.offset))?;
    let mut reader = std::io::BufReader::new(file);
    let mut records = Vec::new();
    let mut offset = cursor.offset;
    let mut line = Vec::new();
    while records.len() < BATCH {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        offset += read as u64;
        match serde_json::from_slice::<AuditRecord>(&line) {
            Ok(record) => records.push(record),
            Err(e) => tracing::error!(error = %e, segment = %path.display(), "unreadable audit record skipped"),
        }
    }
    let later = segments.get(index + 1).map(|(n, _)| *n);
    if records.is_empty() && offset == cursor.offset {
        let Some(later) = later else {
            return Ok(None);
        };
        // Read to its end (a torn tail aside): the writer has moved on.
        std::fs::remove_file(path)?;
        return Ok(Some(Batch {
            records,
            cursor: Cursor {
                segment: later,
                offset: 0,
            },
            bytes: len.saturating_sub(cursor.offset),
        }));
    }
    Ok(Some(Batch {
        records,
        bytes: offset - cursor.offset,
        cursor: Cursor {
            segment: cursor.segment,
            offset,
        },
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use async_trait::async_trait;
    use tessera_contracts::api::GatewayReport;

    use super::*;
    use crate::engine::{Protocol, Touched};
    use crate::sync::{Fetched, SyncError};

    /// The catalog's side of audit: stores each query id once (as its
    /// database does), counts every delivery, and can be away.
    #[derive(Default)]
    struct Catalog {
        up: AtomicBool,
        deliveries: Mutex<HashMap<String, u32>>,
    }

    #[async_trait]
    impl BundleSource for Catalog {
        async fn wait(&self, _after: i64) -> Result<i64, SyncError> {
            Err(SyncError("not in this test".into()))
        }
        async fn fetch(&self, _held: Option<&str>) -> Result<Fetched, SyncError> {
            Err(SyncError("not in this test".into()))
        }
        async fn report(&self, _gateway: &str, _report: &GatewayReport) -> Result<(), SyncError> {
            Ok(())
        }
        async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError> {
            if !self.up.load(Ordering::Relaxed) {
                return Err(SyncError("connection refused".into()));
            }
            let mut deliveries = self.deliveries.lock().expect("lock");
            for record in &batch.records {
                *deliveries.entry(record.query_id.clone()).or_default() += 1;
            }
            Ok(())
        }
    }

    fn record(n: usize) -> QueryRecord {
        QueryRecord {
            id: uuid::Uuid::new_v4(),
            principal: format!("analyst_{n}"),
            protocol: Protocol::Postgres,
            purpose: None,
            refused_purpose: None,
            touched: Touched::default(),
            sql: format!("SELECT {n}"),
            bundle_version: 3,
            rows: 1,
            bytes: 8,
            elapsed: Duration::from_millis(2),
            outcome: Ok(()),
        }
    }

    /// Ships until the spool has nothing left (or the catalog refuses).
    async fn drain(spool: &Spool, catalog: &Catalog) -> Result<(), String> {
        while spool.ship_once(catalog, "edge").await? {}
        Ok(())
    }

    #[tokio::test]
    async fn acknowledged_records_survive_a_restart_and_reach_the_catalog_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Catalog::default();
        let total = BATCH * 2 + 7;
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("opens");
        let mut ids = Vec::new();
        for n in 0..total {
            let r = record(n);
            ids.push(r.id.to_string());
            spool.record(r).await.expect("kept");
        }
        assert_eq!(spool.stats().written.load(Ordering::Relaxed), total as u64);
        // The catalog is away: nothing leaves, nothing is lost.
        assert!(drain(&spool, &catalog).await.is_err());
        let pending = spool.stats().pending_bytes.load(Ordering::Relaxed);
        assert!(pending > 0);
        drop(spool);

        // A new process: what was acknowledged is still there, counted.
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("reopens");
        assert_eq!(spool.stats().pending_bytes.load(Ordering::Relaxed), pending);
        catalog.up.store(true, Ordering::Relaxed);
        // One batch goes, then the process dies before anything else.
        assert!(spool.ship_once(&catalog, "edge").await.expect("ships"));
        drop(spool);
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("reopens");
        drain(&spool, &catalog).await.expect("ships");
        assert_eq!(spool.stats().pending_bytes.load(Ordering::Relaxed), 0);
        let deliveries = catalog.deliveries.lock().expect("lock").clone();
        assert_eq!(deliveries.len(), total, "every record arrived");
        assert!(ids.iter().all(|id| deliveries.get(id) == Some(&1)), "each exactly once");
        // Shipped segments are gone; a further restart sends nothing again.
        drop(spool);
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("reopens");
        drain(&spool, &catalog).await.expect("nothing to ship");
        assert_eq!(
            catalog.deliveries.lock().expect("lock").values().sum::<u32>(),
            total as u32
        );
        let left = segments(&dir.path().join("audit")).expect("lists");
        assert!(left.len() <= 1, "shipped segments are deleted: {left:?}");
    }

    #[tokio::test]
    async fn one_process_at_a_time_uses_a_spool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("opens");
        let second = Spool::open(dir.path(), AuditConfig::default()).err().expect("locked");
        assert!(second.to_string().contains("another process"), "{second}");
        drop(spool);
        Spool::open(dir.path(), AuditConfig::default()).expect("free again");
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped_and_the_rest_shipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("opens");
        spool.record(record(1)).await.expect("kept");
        let (number, path) = segments(&dir.path().join("audit"))
            .expect("lists")
            .pop()
            .expect("a segment");
        drop(spool);
        // A crash mid-write (never acknowledged): half a line at the end.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("opens");
        file.write_all(br#"{"query_id":"torn"#).expect("writes");
        let spool = Spool::open(dir.path(), AuditConfig::default()).expect("reopens");
        let catalog = Catalog::default();
        catalog.up.store(true, Ordering::Relaxed);
        drain(&spool, &catalog).await.expect("ships");
        assert_eq!(catalog.deliveries.lock().expect("lock").len(), 1);
        assert!(!path.exists(), "segment {number} is shipped and deleted");
    }

    #[tokio::test]
    async fn a_full_spool_refuses_queries_or_drops_records_as_configured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let refuse = AuditConfig {
            spool_bytes: 1,
            when_full: WhenFull::Refuse,
        };
        let spool = Spool::open(&dir.path().join("refuse"), refuse).expect("opens");
        assert!(spool.admit().is_ok());
        spool.record(record(1)).await.expect("kept");
        let refused = spool.admit().expect_err("full");
        assert_eq!(refused.sqlstate(), "53100");
        assert_eq!(refused.http_status(), 503);
        assert_eq!(spool.stats().refused.load(Ordering::Relaxed), 1);
        // The catalog takes the records: queries are admitted again.
        let catalog = Catalog::default();
        catalog.up.store(true, Ordering::Relaxed);
        drain(&spool, &catalog).await.expect("ships");
        assert!(spool.admit().is_ok());

        let drop_config = AuditConfig {
            spool_bytes: 1,
            when_full: WhenFull::Drop,
        };
        let spool = Spool::open(&dir.path().join("drop"), drop_config).expect("opens");
        spool.record(record(1)).await.expect("kept");
        assert!(spool.admit().is_ok(), "queries run");
        spool.record(record(2)).await.expect("dropped, not failed");
        assert_eq!(spool.stats().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(spool.stats().written.load(Ordering::Relaxed), 1);
    }
}
