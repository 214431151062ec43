//! Checking and converting input values. A `Checker` collects every field's problem so that one
//! response lists them all; serde helpers print stored times as RFC 3339.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serializer;
use uuid::Uuid;

use super::text;
use crate::error::{Error, FieldError, Result};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 4000;

/// A new server-side id: time-ordered UUIDv7, so that ids created together sort together.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// Parses a client-supplied id into canonical lower-case hyphenated form.
pub fn parse_id(raw: &str) -> Option<String> {
    Uuid::parse_str(raw.trim()).ok().map(|id| id.to_string())
}

/// Parses a path id; anything that is not a UUID cannot name a record, so it is simply not found.
pub fn path_id(raw: &str, what: &'static str) -> Result<String> {
    parse_id(raw).ok_or(Error::NotFound { what })
}

pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn serialize_ms<S: Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_ms(*ms))
}

pub fn serialize_opt_ms<S: Serializer>(
    ms: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_ms(*ms)),
        None => s.serialize_none(),
    }
}

/// The id of a record being created or replaced: a replacement keeps its id (a different one in
/// the body is an error); a creation takes the client's UUID or a new one.
pub(crate) fn resolve_id(
    check: &mut Checker,
    existing: Option<&str>,
    given: Option<&str>,
) -> String {
    match (existing, given) {
        (Some(current), Some(given)) => {
            if parse_id(given).as_deref() != Some(current) {
                check.fail("id", "id_mismatch", "does not match the id in the path");
            }
            current.to_owned()
        }
        (Some(current), None) => current.to_owned(),
        (None, Some(given)) => check.id("id", given),
        (None, None) => new_id(),
    }
}

/// Collects field problems while converting input.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Required text: NFC, trimmed, non-empty, at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let cleaned = text::clean(value);
        if cleaned.is_empty() {
            self.fail(field, "required", "must not be empty");
        } else if cleaned.chars().count() > max {
            self.fail(
                field,
                "too_long",
                format!("must be at most {max} characters"),
            );
        } else if cleaned.chars().any(char::is_control) {
            self.fail(
                field,
                "invalid_characters",
                "must not contain control characters",
            );
        }
        cleaned
    }

    /// Optional text; an empty string counts as absent.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let value = value.map(text::clean).filter(|v| !v.is_empty())?;
        Some(self.text(field, &value, max))
    }

    /// Free text such as a description or note: NFC and trimmed, line breaks kept.
    pub fn opt_long_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        use unicode_normalization::UnicodeNormalization;
        let value = value.map(|v| v.nfc().collect::<String>().trim().to_owned());
        let value = value.filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.fail(
                field,
                "too_long",
                format!("must be at most {max} characters"),
            );
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            self.fail(
                field,
                "invalid_characters",
                "must not contain control characters",
            );
        }
        Some(value)
    }

    pub fn one_of(&mut self, field: &str, value: &str, allowed: &[&str]) -> String {
        if !allowed.contains(&value) {
            self.fail(
                field,
                "invalid_value",
                format!("must be one of: {}", allowed.join(", ")),
            );
        }
        value.to_owned()
    }

    pub fn opt_one_of(
        &mut self,
        field: &str,
        value: Option<&str>,
        allowed: &[&str],
    ) -> Option<String> {
        value.map(|v| self.one_of(field, v, allowed))
    }

    pub fn id(&mut self, field: &str, value: &str) -> String {
        parse_id(value).unwrap_or_else(|| {
            self.fail(field, "invalid_id", "must be a UUID");
            value.to_owned()
        })
    }

    /// An id that names a record by its natural key, which an update may not change: `immutable`
    /// when it names another than `stored` (`instead` says how to make that change).
    pub fn unchanged_id(&mut self, field: &str, value: &str, stored: &str, instead: &str) {
        if self.id(field, value) != stored {
            self.fail(field, "immutable", format!("cannot change; {instead}"));
        }
    }

    pub fn opt_id(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        value.map(|v| self.id(field, v))
    }

    /// A calendar date `YYYY-MM-DD`, returned in canonical form.
    pub fn date(&mut self, field: &str, value: &str) -> String {
        match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
            Ok(date) if (1900..=2200).contains(&chrono::Datelike::year(&date)) => {
                date.format("%Y-%m-%d").to_string()
            }
            _ => {
                self.fail(field, "invalid_date", "must be a date YYYY-MM-DD");
                value.to_owned()
            }
        }
    }

    pub fn opt_date(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        value.map(|v| self.date(field, v))
    }

    /// An instant in RFC 3339 with an offset, stored as Unix milliseconds.
    pub fn instant(&mut self, field: &str, value: &str) -> i64 {
        match DateTime::parse_from_rfc3339(value.trim()) {
            Ok(t) if (1900..=2200).contains(&chrono::Datelike::year(&t)) => t.timestamp_millis(),
            _ => {
                self.fail(
                    field,
                    "invalid_datetime",
                    "must be an RFC 3339 date-time with offset",
                );
                0
            }
        }
    }

    pub fn opt_instant(&mut self, field: &str, value: Option<&str>) -> Option<i64> {
        value.map(|v| self.instant(field, v))
    }

    /// `first` must not come after `second` (both already checked).
    pub fn ordered<T: PartialOrd>(&mut self, field: &str, first: &T, second: &T, message: &str) {
        if first > second {
            self.fail(field, "invalid_range", message);
        }
    }

    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonicalised() {
        assert_eq!(
            parse_id(" 6F9619FF-8B86-D011-B42D-00C04FC964FF").as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
        assert_eq!(parse_id("../etc/passwd"), None);
    }

    #[test]
    fn checker_collects_every_problem() {
        let mut check = Checker::new();
        check.text("name", "   ", 10);
        check.date("birth_date", "2001-02-30");
        check.instant("starts_at", "2026-12-08 08:00");
        check.one_of("kind", "county", &["commune", "ward"]);
        let Err(Error::Validation { details, .. }) = check.finish() else {
            panic!("expected validation error")
        };
        let fields: Vec<_> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["name", "birth_date", "starts_at", "kind"]);
    }

    #[test]
    fn instants_keep_their_offset_and_print_in_utc() {
        let mut check = Checker::new();
        let ms = check.instant("t", "2026-12-08T08:00:00+07:00");
        check.finish().unwrap();
        assert_eq!(format_ms(ms), "2026-12-08T01:00:00.000Z");
    }

    #[test]
    fn long_text_keeps_line_breaks_but_not_other_controls() {
        let mut check = Checker::new();
        assert_eq!(
            check.opt_long_text("d", Some(" a\nb "), 10).as_deref(),
            Some("a\nb")
        );
        check.opt_long_text("d", Some("a\u{0}b"), 10);
        assert!(check.finish().is_err());
    }
}
