//! Checkpoints off the writer's path.
//!
//! A WAL checkpoint copies the log's pages into the database file and calls `fsync` twice (the
//! log before the copy, the file after). SQLite's automatic checkpoint runs on the connection
//! that commits, so the writer waited for both. On this machine's busy shared disk one `fsync`
//! took up to 2 s: `strace -f -T -e trace=fsync netmond --config target/bench/daemon-1-on.yaml`
//! over big.pcap counted 23 `fsync` calls by the writer thread, 7 s in all. While the writer
//! waited, its queue filled and the whole pipeline stood still.
//!
//! Here the writing connection turns the automatic checkpoint off (`wal_autocheckpoint=0`)
//! and learns the log's size after each commit (a WAL hook). Every `pages` frames
//! ([`crate::SqliteConfig::checkpoint_pages`]) it nudges a thread that holds a connection of
//! its own and runs `wal_checkpoint(PASSIVE)`. That copies what the log holds without the
//! write lock, so the writer goes on committing meanwhile.
//!
//! The log starts over from its beginning only when a transaction begins while every frame
//! is copied. A writer that never pauses appends frames during each background checkpoint, so
//! that moment may never come. So when the log reaches [`WRITER_FACTOR`] × `pages` frames, the
//! writer copies the rest itself (`wal_checkpoint(PASSIVE)` from the writing connection, which
//! writes nothing meanwhile): the background thread has copied most frames by then, and the
//! next transaction starts the log over. While the background thread is at work the writer's
//! checkpoint would fail (one checkpoint at a time), so the writer tries again after its next
//! commit; from twice that size on, it waits for the background checkpoint to end. The log so
//! holds at most 2 × [`WRITER_FACTOR`] × `pages` frames plus one transaction's, unless a
//! reader's snapshot still needs its frames. A quiet writer (a live capture commits about
//! once a second) leaves the log to the background thread alone.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError, bounded};
use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

/// The log's size at which the writer checkpoints itself, in units of
/// [`crate::SqliteConfig::checkpoint_pages`].
pub const WRITER_FACTOR: u32 = 4;

thread_local! {
    /// The log's frame count after the last commit on this thread (0: no commit since read).
    /// The WAL hook is a plain function, so it cannot reach the store; it runs on the
    /// committing thread, which reads this right after its commit returns.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// The WAL hook: remembers the log's size after a commit.
fn note_frames(_wal: &Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(u32::try_from(frames).unwrap_or(0).max(1));
    Ok(())
}

/// How the checkpoints of a [`crate::SqliteStore`] went (see
/// [`crate::SqliteStore::checkpoint_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints the background thread ran.
    pub background: u64,
    /// Background checkpoints that failed (the next nudge tries again).
    pub background_failed: u64,
    /// Checkpoints the writer ran itself because the log reached its bound.
    pub writer: u64,
    /// Frames (pages) the log held after the last commit.
    pub log_frames: u64,
    /// Most frames the log held after a commit.
    pub max_log_frames: u64,
}

#[derive(Debug, Default)]
struct Counts {
    background: AtomicU64,
    failed: AtomicU64,
    /// Held by whoever checkpoints: the thread, or the writer when the log is at its bound.
    busy: Mutex<()>,
}

/// The background checkpoint thread of one writing connection, and the writer's bookkeeping.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    nudge: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
    /// Frames between nudges.
    pages: u32,
    /// The log's frame count when the thread was last nudged.
    nudged_at: u32,
    writer: u64,
    frames: u32,
    max_frames: u32,
}

impl Checkpointer {
    /// Opens a second connection on `path` and starts the thread; then hands the checkpoints
    /// of `conn` (the writing connection) to it. `None` when any step fails: `conn` then keeps
    /// SQLite's automatic checkpoint, which is slower on a busy disk but as safe.
    pub(crate) fn start(conn: &Connection, path: &Path, pages: u32) -> Option<Checkpointer> {
        let own = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        // A checkpoint reads the log's frames one by one; it does not use the page cache.
        own.pragma_update(None, "cache_size", -64).ok()?;
        let counts = Arc::new(Counts::default());
        let (tx, rx) = bounded::<()>(1);
        let c = Arc::clone(&counts);
        let thread = std::thread::Builder::new()
            .name("netmon-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // A poisoned lock guards nothing: `()` has no state to break.
                    let _busy = c.busy.lock().unwrap_or_else(|p| p.into_inner());
                    let r = own.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    let n = if r.is_ok() { &c.background } else { &c.failed };
                    n.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok()?;
        let mut ck = Checkpointer {
            nudge: Some(tx),
            thread: Some(thread),
            counts,
            pages: pages.max(1),
            nudged_at: 0,
            writer: 0,
            frames: 0,
            max_frames: 0,
        };
        // `wal_autocheckpoint` installs SQLite's own WAL hook (or removes it, with 0): set it
        // first, then ours.
        if conn.pragma_update(None, "wal_autocheckpoint", 0).is_err() {
            ck.stop();
            return None;
        }
        conn.wal_hook(Some(note_frames));
        WAL_FRAMES.set(0);
        Some(ck)
    }

    /// After a commit of `conn`: nudges the thread or checkpoints here, as the module's
    /// documentation says.
    pub(crate) fn after_commit(&mut self, conn: &Connection) {
        let frames = WAL_FRAMES.take();
        if frames == 0 {
            return;
        }
        self.frames = frames;
        self.max_frames = self.max_frames.max(frames);
        if frames < self.nudged_at {
            // The log started over.
            self.nudged_at = 0;
        }
        let bound = self.pages.saturating_mul(WRITER_FACTOR);
        if frames >= bound {
            let counts = Arc::clone(&self.counts);
            let busy = match counts.busy.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if frames >= bound.saturating_mul(2) => {
                    Some(counts.busy.lock().unwrap_or_else(|p| p.into_inner()))
                }
                // The background thread is copying: try again after the next commit.
                Err(TryLockError::WouldBlock) => None,
            };
            if busy.is_some()
                && conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    .is_ok()
            {
                self.writer += 1;
            }
        } else if frames >= self.nudged_at.saturating_add(self.pages) {
            if let Some(tx) = &self.nudge {
                match tx.try_send(()) {
                    // Full: a nudge is waiting already.
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    Err(TrySendError::Disconnected(())) => {
                        // The thread is gone (its loop cannot panic; this is defence only):
                        // SQLite checkpoints on this connection from now on.
                        self.nudge = None;
                        let _ = conn.pragma_update(None, "wal_autocheckpoint", self.pages);
                    }
                }
            }
            self.nudged_at = frames;
        }
    }

    /// See [`crate::SqliteStore::checkpoint_stats`].
    pub(crate) fn stats(&self) -> CheckpointStats {
        CheckpointStats {
            background: self.counts.background.load(Ordering::Relaxed),
            background_failed: self.counts.failed.load(Ordering::Relaxed),
            writer: self.writer,
            log_frames: self.frames.into(),
            max_log_frames: self.max_frames.into(),
        }
    }

    /// Stops the thread after the checkpoint it is running, if any.
    pub(crate) fn stop(&mut self) {
        self.nudge = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
