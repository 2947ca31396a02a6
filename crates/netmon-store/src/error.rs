//! Errors, each naming the database file and, where SQLite's code says what usually went
//! wrong, a hint.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused an operation (open, a pragma, a statement, a commit).
    #[error("{path}: {op}: {source}{hint}", path = .path.display())]
    Sqlite {
        /// The database file (`:memory:` for an in-memory database).
        path: PathBuf,
        /// What the store was doing (`open`, `insert flows`, `query flows`, ...).
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
        /// A hint derived from SQLite's error code (empty when there is none).
        hint: Hint,
    },
    /// The file is a SQLite database of some other program, or not a database at all.
    #[error(
        "{path}: not a netmon database ({reason}); point storage.path at a new file or at a database netmon created",
        path = .path.display()
    )]
    NotNetmon {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The database was written by a newer netmon: this one does not know its schema.
    #[error(
        "{path}: schema version {found} is newer than this netmon supports ({supported}); upgrade netmon, or point storage.path at another file",
        path = .path.display()
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this crate knows.
        supported: i64,
    },
    /// A read-only connection found a database without netmon's schema yet.
    #[error(
        "{path}: the database has no netmon schema yet (version {found}); open it read-write once (netmond does) to create it",
        path = .path.display()
    )]
    NotInitialised {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
    },
    /// SQLite would not switch the file to write-ahead logging.
    #[error(
        "{path}: journal_mode=WAL refused (the mode stayed '{mode}'): the file system may lack shared-memory support (network file systems); put the database on a local disk",
        path = .path.display()
    )]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// A stored value does not decode (the file was edited or damaged).
    #[error("{path}: corrupt {table} row {seq}: {what}", path = .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The row's `seq`.
        seq: i64,
        /// What did not decode.
        what: String,
    },
    /// A paging cursor that this store did not hand out for this sort order.
    #[error("bad cursor '{cursor}': {reason}")]
    BadCursor {
        /// The cursor as given.
        cursor: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A history query whose host, port, app or domain filter matches more flows than one
    /// query may gather ([`crate::SqliteConfig::max_key_matches`]): a client error, with what
    /// to do about it.
    #[error(
        "more than {max} stored flows match the {filter} filter: narrow the time range (from, to) or add another filter"
    )]
    TooBroad {
        /// The filter (`host`, `port`, `app`, `domain`).
        filter: &'static str,
        /// The bound.
        max: usize,
    },
    /// The writer thread is gone (closed, or it panicked): nothing more can be queued.
    #[error("the store writer has stopped")]
    WriterStopped,
    /// A remote store cannot be reached now (connection refused or lost, server shutting
    /// down): the write may succeed later. A [`crate::SpoolingStore`] spools the rows.
    #[error("{op}: the database is unreachable: {reason}")]
    Unavailable {
        /// What the store was doing.
        op: &'static str,
        /// The underlying error, as text.
        reason: String,
    },
    /// The PostgreSQL server refused an operation (not a connection problem: retrying the
    /// same rows would fail again).
    #[cfg(feature = "postgres")]
    #[error("postgresql: {op}: {source}")]
    Postgres {
        /// What the store was doing.
        op: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The spool directory could not be read or written.
    #[error("spool {path}: {op}: {source}", path = .path.display())]
    Spool {
        /// The file or directory.
        path: PathBuf,
        /// What the spool was doing.
        op: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store does not implement this operation.
    #[error("{0} is not supported by this store")]
    Unsupported(&'static str),
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}

impl StoreError {
    /// Wraps a SQLite error with the file, the operation and a hint.
    pub(crate) fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> StoreError {
        let hint = Hint::of(&source);
        StoreError::Sqlite {
            path: path.to_path_buf(),
            op,
            source,
            hint,
        }
    }

    /// Whether the error says the store is unreachable for now ([`StoreError::Unavailable`]):
    /// the same write may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// SQLite's primary error code, when the error came from SQLite.
    pub fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            StoreError::Sqlite { source, .. } => source.sqlite_error_code(),
            _ => None,
        }
    }
}

/// A hint for the person reading an error, chosen from SQLite's error code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hint(pub Option<&'static str>);

impl Hint {
    fn of(e: &rusqlite::Error) -> Hint {
        Hint(match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Some(
                "the database is locked by another connection for longer than the busy timeout: \
                 is another netmond writing to the same file?",
            ),
            Some(ErrorCode::NotADatabase) => {
                Some("the file is not a SQLite database: point storage.path at a new file")
            }
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
                Some(
                    "check that the directory exists and that netmond's user may write the file \
                     and create FILE-wal and FILE-shm beside it (after the privilege drop too)",
                )
            }
            Some(ErrorCode::DiskFull) => {
                Some("the disk is full: free space or lower storage.retention")
            }
            Some(ErrorCode::DatabaseCorrupt) => Some(
                "the file is damaged: move it aside (with FILE-wal and FILE-shm) and start a new one",
            ),
            Some(ErrorCode::SystemIoFailure) => {
                Some("an I/O error: check the disk and the kernel log")
            }
            _ => None,
        })
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, " (hint: {h})"),
            None => Ok(()),
        }
    }
}
