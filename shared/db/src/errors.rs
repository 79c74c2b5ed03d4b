//! The one classification of database errors every store uses. A service's error enum holds a
//! [`DbFailure`], never an `sqlx::Error`, and maps it to a status in one place: a transient
//! failure is worth retrying (UNAVAILABLE), a conflict between writers is retried whole
//! (ABORTED), a violated constraint the store did not turn into the domain's answer is a bug,
//! and so is data that does not read (both INTERNAL, without internals sent to the client).

/// What a failed statement means, in terms a service can answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbFailure {
    /// The database could not be reached, or did not answer in time, or is shutting down.
    #[error("the database is unavailable: {0}")]
    Transient(String),
    /// Two writers raced on the same rows (a deadlock, a serialization failure): the unit of
    /// work may be retried whole.
    #[error("concurrent writers conflicted: {0}")]
    Conflict(String),
    /// A constraint refused the write; `constraint` names it (empty when PostgreSQL did not).
    #[error("constraint {constraint:?} ({kind:?}) refused the write: {detail}")]
    Constraint {
        constraint: String,
        kind: ConstraintKind,
        detail: String,
    },
    /// A value that does not decode, a missing column or type, a statement the database
    /// refused for another reason: a bug or corrupt data.
    #[error("corrupt data or a bug: {0}")]
    Corrupt(String),
}

/// The answer a service gives a [`DbFailure`] nothing more specific handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAnswer {
    /// UNAVAILABLE: the database will be back; retry later.
    RetryLater,
    /// ABORTED: another writer won a race; retry the whole request.
    RetryWhole,
    /// INTERNAL: a bug or corrupt data; nothing the client can do.
    Bug,
}

/// Which kind of constraint refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Unique,
    ForeignKey,
    Check,
    NotNull,
    Exclusion,
}

impl DbFailure {
    /// The unique (or exclusion) constraint this failure violated, if it is one.
    pub fn unique_constraint(&self) -> Option<&str> {
        match self {
            Self::Constraint {
                constraint,
                kind: ConstraintKind::Unique | ConstraintKind::Exclusion,
                ..
            } => Some(constraint),
            _ => None,
        }
    }

    /// How a service answers this failure when nothing more specific applies. A passing fault
    /// is logged here; a bug is logged once where it becomes INTERNAL (its detail goes to the
    /// log, never to the client).
    pub fn answer(&self) -> DbAnswer {
        match self {
            Self::Transient(_) => {
                tracing::warn!(failure = %self, "database unavailable");
                DbAnswer::RetryLater
            }
            Self::Conflict(_) => {
                tracing::info!(failure = %self, "concurrent writers");
                DbAnswer::RetryWhole
            }
            Self::Constraint { .. } | Self::Corrupt(_) => DbAnswer::Bug,
        }
    }

    /// Whether retrying the same work may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Conflict(_))
    }
}

impl From<sqlx::Error> for DbFailure {
    fn from(error: sqlx::Error) -> Self {
        classify(&error)
    }
}

/// Classifies a failed statement (SQLSTATE classes as PostgreSQL documents them).
pub fn classify(error: &sqlx::Error) -> DbFailure {
    let detail = error.to_string();
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let kind = match code.as_str() {
                "23505" => Some(ConstraintKind::Unique),
                "23503" => Some(ConstraintKind::ForeignKey),
                "23514" => Some(ConstraintKind::Check),
                "23502" => Some(ConstraintKind::NotNull),
                "23P01" => Some(ConstraintKind::Exclusion),
                _ => None,
            };
            if let Some(kind) = kind {
                return DbFailure::Constraint {
                    constraint: db.constraint().unwrap_or_default().to_owned(),
                    kind,
                    detail,
                };
            }
            match code.get(..2).unwrap_or_default() {
                // Deadlock detected, serialization failure.
                _ if matches!(code.as_str(), "40P01" | "40001") => DbFailure::Conflict(detail),
                // Insufficient resources, operator intervention (shutdown, cancelled by a
                // timeout), system errors, connection exceptions.
                "53" | "57" | "58" | "08" => DbFailure::Transient(detail),
                _ => DbFailure::Corrupt(detail),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => DbFailure::Transient(detail),
        _ => DbFailure::Corrupt(detail),
    }
}

/// The constraint a statement violated, when it failed on a unique or exclusion constraint.
pub fn unique_violation(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_that_timed_out_is_transient_and_a_decode_failure_is_not() {
        assert!(matches!(
            classify(&sqlx::Error::PoolTimedOut),
            DbFailure::Transient(_)
        ));
        assert!(classify(&sqlx::Error::PoolClosed).is_retryable());
        let decode = sqlx::Error::Decode("unexpected value".into());
        assert!(matches!(classify(&decode), DbFailure::Corrupt(_)));
        assert!(!classify(&decode).is_retryable());
        let missing = sqlx::Error::ColumnNotFound("grade".into());
        assert!(matches!(classify(&missing), DbFailure::Corrupt(_)));
    }
}
