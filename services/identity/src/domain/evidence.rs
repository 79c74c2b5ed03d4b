//! Evidence files: what is accepted (JPEG, PNG or PDF, told by the content, never by the name;
//! at most 2 MiB), and the digest kept with each.

use sha2::{Digest, Sha256};

use super::FieldViolation;

/// The largest evidence file: 2 MiB.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The media type the content is, by its signature; `None` for anything else.
pub fn media_type_of(content: &[u8]) -> Option<&'static str> {
    if content.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if content.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if content.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// A checked evidence upload: its file name, media type and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEvidence {
    pub file_name: String,
    pub media_type: &'static str,
    pub sha256: Vec<u8>,
}

/// Checks an upload: a file name (1–200 characters), content of at most 2 MiB that is a JPEG,
/// PNG or PDF by its bytes. A name whose extension says otherwise than the content (a PNG
/// named `.pdf`) is refused: the file is not what it claims to be.
pub fn check_evidence(
    file_name: &str,
    content: &[u8],
) -> Result<CheckedEvidence, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let name = file_name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        violations.push(FieldViolation::new(
            "file_name",
            "must be 1–200 characters without control characters",
        ));
    }
    let media_type = if content.is_empty() {
        violations.push(FieldViolation::new("content", "is empty"));
        None
    } else if content.len() > MAX_BYTES {
        violations.push(FieldViolation::new(
            "content",
            format!(
                "is {} bytes; evidence files are at most {MAX_BYTES} bytes (2 MiB)",
                content.len()
            ),
        ));
        None
    } else {
        match media_type_of(content) {
            Some(media_type) => Some(media_type),
            None => {
                violations.push(FieldViolation::new(
                    "content",
                    "is not a JPEG, PNG or PDF file (judged by its content)",
                ));
                None
            }
        }
    };
    if let Some(media_type) = media_type {
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase());
        let claimed = match extension.as_deref() {
            Some("jpg" | "jpeg") => Some("image/jpeg"),
            Some("png") => Some("image/png"),
            Some("pdf") => Some("application/pdf"),
            _ => None,
        };
        if claimed.is_some_and(|claimed| claimed != media_type) {
            violations.push(FieldViolation::new(
                "content",
                format!("is {media_type}, but the file is named {name:?}"),
            ));
        }
    }
    match media_type {
        Some(media_type) if violations.is_empty() => Ok(CheckedEvidence {
            file_name: name.to_owned(),
            media_type,
            sha256: Sha256::digest(content).to_vec(),
        }),
        _ => Err(violations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];

    #[test]
    fn files_are_told_by_their_content() {
        assert_eq!(
            check_evidence("证明.png", PNG).unwrap().media_type,
            "image/png"
        );
        assert_eq!(
            check_evidence("scan", b"%PDF-1.7\n").unwrap().media_type,
            "application/pdf"
        );
        assert_eq!(
            check_evidence("photo.JPG", &[0xFF, 0xD8, 0xFF, 0xE0])
                .unwrap()
                .media_type,
            "image/jpeg"
        );
        let fields = |r: Result<CheckedEvidence, Vec<FieldViolation>>| {
            r.unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(check_evidence("证明.pdf", PNG)), ["content"]);
        assert_eq!(
            fields(check_evidence("letter.pdf", b"hello, not a pdf")),
            ["content"]
        );
        assert_eq!(fields(check_evidence("", PNG)), ["file_name"]);
        let mut big = PNG.to_vec();
        big.resize(MAX_BYTES + 1, 0);
        assert_eq!(fields(check_evidence("big.png", &big)), ["content"]);
        big.truncate(MAX_BYTES);
        assert!(check_evidence("big.png", &big).is_ok());
    }
}
