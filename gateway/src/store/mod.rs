//! The SQLite store: users, keys, teams, repos, rules, trusted GPG keys and the audit trail.
//!
//! Every store function takes `&mut SqliteConnection`, which a pooled connection and a
//! transaction both deref to, so callers decide whether several changes share one transaction.

pub mod audit;
pub mod gpg_keys;
pub mod keys;
mod migrations;
pub mod repos;
pub mod rules;
pub mod teams;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
pub use sqlx::SqliteConnection;
use sqlx::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} \"{name}\" already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("unknown {kind} \"{name}\"")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            name: name.into(),
        }
    }
}

/// Turns a UNIQUE violation into a readable "already exists" error.
pub(crate) fn map_unique(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
    let name = name.to_string();
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate { kind, name },
        _ => StoreError::Db(e),
    }
}

/// Current time as RFC 3339 UTC with millisecond precision (sorts as text).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(15));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrations::migrator().run(&pool).await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Marks SQL assembled from this module's own constant fragments (never user input) as safe.
pub(crate) fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}
