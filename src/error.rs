//! The one error type of the service. It carries a stable snake_case code and a human message;
//! `api::error` maps each kind to its HTTP status and JSON body. Nothing here knows HTTP.

use serde::Serialize;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed (bad JSON, bad query string, bad id).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The object does not exist or the caller may not see it: the two are indistinguishable.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// If-Match named a revision that is no longer current.
    #[error("the {what} was changed by someone else (current revision {current})")]
    PreconditionFailed { what: &'static str, current: i64 },
    /// What the client asks for is no longer kept (e.g. a pull cursor older than the deletion
    /// history): it must start over.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The client stopped sending its request body.
    #[error("{message}")]
    RequestTimeout { message: String },
    #[error("{message}")]
    PayloadTooLarge { message: String },
    /// A byte range that lies outside a file of `size` bytes.
    #[error("the requested range is outside the file ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    /// Well-formed input that breaks a rule; `details` lists each field's problem.
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    /// The disk (or the database's disk) is full: nothing was stored, retry once an operator
    /// has made room.
    #[error("{message}")]
    InsufficientStorage { message: String },
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A push would take the device's open quarantine entries beyond its limit: nothing of it
    /// was applied; the device keeps it and sends it again once an administrator has dealt
    /// with the entries.
    #[error(
        "this device already has {open} refused mutations waiting for an administrator (at most \
         {limit}); nothing of this push was applied: keep it and send it again later"
    )]
    QuarantineFull {
        open: usize,
        limit: usize,
        retry_after_secs: u64,
    },
    /// The database is busy or unreachable: the client should retry.
    #[error("the service is temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A creation named an id some record already holds: the same answer whoever holds it,
    /// so that it says nothing about records outside the caller's scope.
    pub fn id_taken() -> Self {
        Error::conflict(
            "already_exists",
            "this id cannot be used for a new record; create it with a new id",
        )
    }

    pub fn invalid(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", details.len()),
        };
        Error::Validation { message, details }
    }

    pub fn invalid_field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Error::invalid(vec![FieldError::new(field, code, message)])
    }

    /// The stable snake_case code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unauthorized { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Conflict { code, .. }
            | Error::Gone { code, .. } => code,
            Error::NotFound { .. } => "not_found",
            Error::PreconditionFailed { .. } => "precondition_failed",
            Error::RequestTimeout { .. } => "request_timeout",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::UnsupportedMediaType { .. } => "unsupported_media_type",
            Error::Validation { .. } => "validation_failed",
            Error::InsufficientStorage { .. } => "insufficient_storage",
            Error::RateLimited { .. } => "rate_limited",
            Error::QuarantineFull { .. } => "quarantine_full",
            Error::Unavailable(_) => "service_unavailable",
            Error::Internal(_) => "internal_error",
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match err {
            D::NotFound => Error::NotFound { what: "record" },
            // The driver's text names tables, columns and constraints: it stays out of the
            // answer. The answer is the same whoever owns the record that holds the id, so it
            // says nothing about records outside the caller's scope.
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                if violates_primary_key(info.as_ref()) {
                    Error::id_taken()
                } else {
                    Error::conflict(
                        "already_exists",
                        "a record with the same key already exists",
                    )
                }
            }
            D::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => Error::conflict(
                "referenced_record_missing",
                "a referenced record does not exist or is still referenced",
            ),
            D::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                Error::Unavailable(info.message().to_owned())
            }
            D::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Error::Unavailable(info.message().to_owned())
            }
            // PostgreSQL cannot store NUL in text (SQLite can). Input is screened for control
            // characters before it gets here; should one slip through, it is the client's
            // input, not a server fault.
            D::DatabaseError(_, info) if info.message().contains("0x00") => {
                Error::bad_request("invalid_characters", "text must not contain NUL characters")
            }
            D::DatabaseError(_, info) if is_busy(info.message()) => {
                Error::Unavailable(info.message().to_owned())
            }
            D::DatabaseError(_, info) if is_disk_full(info.message()) => {
                Error::InsufficientStorage {
                    message: "the database's disk is full; nothing was stored".into(),
                }
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Whether a unique violation is on a table's primary key (an id chosen by the client) rather
/// than on another unique key. PostgreSQL names the constraint (`<table>_pkey`); SQLite lists
/// the columns in its message (`UNIQUE constraint failed: attendance.id`).
fn violates_primary_key(info: &dyn diesel::result::DatabaseErrorInformation) -> bool {
    match info.constraint_name() {
        Some(constraint) => constraint.ends_with("_pkey"),
        None => info
            .message()
            .strip_prefix("UNIQUE constraint failed: ")
            .is_some_and(|columns| !columns.contains(',') && columns.ends_with(".id")),
    }
}

/// SQLite reports lock contention only in its message text; PostgreSQL's lock_timeout and
/// statement_timeout cancel the statement (55P03, 57014), which diesel does not tell apart.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked")
        || message.contains("database is busy")
        || message.contains("canceling statement due to lock timeout")
        || message.contains("canceling statement due to statement timeout")
}

/// SQLite's SQLITE_FULL, and PostgreSQL's disk_full (53100) / "could not extend file" (an
/// ENOSPC underneath).
fn is_disk_full(message: &str) -> bool {
    message.contains("database or disk is full") || message.contains("No space left on device")
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        Error::Unavailable(format!("no database connection available: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each kind whose code is the kind's own (the other kinds carry the code the
    /// place that makes them chose).
    fn one_of_each_kind_with_its_own_code() -> Vec<Error> {
        let message = String::new;
        vec![
            Error::NotFound { what: "course" },
            Error::PreconditionFailed {
                what: "course",
                current: 1,
            },
            Error::RequestTimeout { message: message() },
            Error::PayloadTooLarge { message: message() },
            Error::RangeNotSatisfiable { size: 1 },
            Error::UnsupportedMediaType { message: message() },
            Error::invalid_field("title", "required", "must not be empty"),
            Error::InsufficientStorage { message: message() },
            Error::RateLimited {
                retry_after_secs: 1,
            },
            Error::QuarantineFull {
                open: 1,
                limit: 1,
                retry_after_secs: 1,
            },
            Error::Unavailable(message()),
            Error::Internal(message()),
        ]
    }

    #[test]
    fn the_web_apps_say_each_kind_of_error_in_both_languages() {
        // The apps show a code's words from their catalogue and fall back to the server's
        // English message only for a code the catalogue lacks.
        let catalogue = include_str!("../web/shared/strings.js");
        for error in one_of_each_kind_with_its_own_code() {
            let key = format!("'code.{}':", error.code());
            assert_eq!(
                catalogue.matches(&key).count(),
                2,
                "{key} in Vietnamese and English"
            );
        }
    }

    #[test]
    fn a_single_field_error_names_the_field_in_the_message() {
        let err = Error::invalid_field("phone", "invalid_phone", "must have 10 digits");
        assert_eq!(err.code(), "validation_failed");
        assert_eq!(err.to_string(), "phone: must have 10 digits");
    }

    /// A database error as a driver reports it: a message and maybe a constraint (PostgreSQL
    /// names one, SQLite does not).
    #[derive(Debug)]
    struct Reported(&'static str, Option<&'static str>);

    impl diesel::result::DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.1
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn reported(message: &'static str) -> Error {
        Error::from(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(Reported(message, None)),
        ))
    }

    #[test]
    fn a_full_disk_under_either_database_is_insufficient_storage() {
        // SQLite's SQLITE_FULL, and PostgreSQL failing to extend a table file.
        for message in [
            "database or disk is full",
            "could not extend file \"base/16384/16385\": No space left on device",
        ] {
            assert_eq!(
                reported(message).code(),
                "insufficient_storage",
                "{message}"
            );
        }
        assert_eq!(reported("database is locked").code(), "service_unavailable");
        for message in [
            "canceling statement due to lock timeout",
            "canceling statement due to statement timeout",
        ] {
            assert_eq!(reported(message).code(), "service_unavailable", "{message}");
        }
        assert_eq!(reported("something else").code(), "internal_error");
    }

    fn unique_violation(
        info: Box<dyn diesel::result::DatabaseErrorInformation + Send + Sync>,
    ) -> Error {
        Error::from(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ))
    }

    #[test]
    fn a_unique_violation_answers_without_the_drivers_text() {
        let sqlite_id = unique_violation(Box::new(Reported(
            "UNIQUE constraint failed: attendance.id",
            None,
        )));
        let postgres_id = unique_violation(Box::new(Reported(
            "duplicate key value violates unique constraint \"attendance_pkey\"",
            Some("attendance_pkey"),
        )));
        let sqlite_key = unique_violation(Box::new(Reported(
            "UNIQUE constraint failed: units.code, units.valid_from",
            None,
        )));
        let postgres_key = unique_violation(Box::new(Reported(
            "duplicate key value violates unique constraint \"users_username_key\"",
            Some("users_username_key"),
        )));
        for err in [&sqlite_id, &postgres_id, &sqlite_key, &postgres_key] {
            assert_eq!(err.code(), "already_exists");
            let text = err.to_string();
            for driver_word in [
                "UNIQUE",
                "constraint",
                "duplicate key",
                "attendance",
                "pkey",
            ] {
                assert!(!text.contains(driver_word), "{text}");
            }
        }
        assert_eq!(sqlite_id.to_string(), postgres_id.to_string());
        assert_eq!(sqlite_key.to_string(), postgres_key.to_string());
        assert_ne!(sqlite_id.to_string(), sqlite_key.to_string());
    }

    #[test]
    fn not_found_from_diesel_maps_to_not_found() {
        assert_eq!(
            Error::from(diesel::result::Error::NotFound).code(),
            "not_found"
        );
    }
}
