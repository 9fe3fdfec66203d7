/// Errors from a [`Store`](crate::Store).
///
/// Messages do not repeat the underlying error; walk
/// [`source`](std::error::Error::source) for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing an operation needs (named in the payload) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing being created (named in the payload) already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The registry changed since the version a guarded write was checked against: check
    /// again and retry.
    #[error("the registry changed meanwhile")]
    Stale,
    /// The caller passed something the store cannot keep.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database failed or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Creating the database's directory failed.
    #[error("cannot create the database directory")]
    Io(#[from] std::io::Error),
    /// A stored value cannot be read back (bad blob, unparsable field).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err)
    }
}

impl StoreError {
    /// Maps constraint violations to domain errors: a unique violation means
    /// `what` already exists, a foreign-key violation means its parent
    /// (`parent`) does not.
    pub(crate) fn from_write(err: sqlx::Error, what: &'static str, parent: &'static str) -> Self {
        if let Some(db) = err.as_database_error() {
            if db.is_unique_violation() {
                return StoreError::Conflict(what);
            }
            if db.is_foreign_key_violation() {
                return StoreError::NotFound(parent);
            }
        }
        StoreError::Database(err)
    }
}
