//! Field-level input errors, shared by every service's domain: a request is checked whole and
//! answers every offending field at once, in the user's terms.

mod names;

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

pub use names::{canonical_name, person_name};

/// One offending field of a request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's name as the API spells it, e.g. `profile.division`.
    pub field: &'static str,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            field,
            description: description.into(),
        }
    }
}

/// `field: why; field: why` for messages and logs.
pub fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects violations while a request is checked field by field.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: &'static str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// The value of a field check, remembering its violation.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    /// The value of a whole-part check (a nested message checked on its own), remembering all
    /// of its violations.
    pub fn absorb<T>(&mut self, result: Result<T, Vec<FieldViolation>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violations) => {
                self.0.extend(violations);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was wrong.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldViolation>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}

/// `text` for use inside a SQL `LIKE` pattern (default escape character `\\`): its `%`, `_`
/// and `\\` match themselves instead of acting as wildcards.
pub fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An ISO 8601 calendar date, `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, text: &str) -> Result<NaiveDate, FieldViolation> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| FieldViolation::new(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// A required free-text field, trimmed and in Unicode NFC, with a length cap in characters.
pub fn required_text(
    field: &'static str,
    text: &str,
    max_chars: usize,
) -> Result<String, FieldViolation> {
    let text: String = text.trim().nfc().collect();
    if text.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_normalized_and_capped() {
        // "e" + combining acute accent becomes the precomposed "é".
        assert_eq!(required_text("f", " e\u{301} ", 5).unwrap(), "\u{e9}");
        assert_eq!(required_text("f", "  ", 5).unwrap_err().field, "f");
        assert!(required_text("f", "abcdef", 5).is_err());
        assert!(required_text("f", "a\u{7}b", 5).is_err());
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_literal("实验小学"), "实验小学");
        assert_eq!(like_literal("100%_a\\b"), "100\\%\\_a\\\\b");
    }

    #[test]
    fn violations_collect_every_field() {
        let mut violations = Violations::default();
        assert_eq!(
            violations
                .check(parse_date("a", "2024-09-01"))
                .map(|d| d.to_string())
                .as_deref(),
            Some("2024-09-01")
        );
        assert!(violations.check(parse_date("b", "2024-13-01")).is_none());
        violations.add("c", "bad");
        let all = violations.finish(|| ()).unwrap_err();
        assert_eq!(
            describe(&all),
            "b: \"2024-13-01\" is not a date (YYYY-MM-DD); c: bad"
        );
    }
}
