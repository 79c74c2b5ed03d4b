//! What a file may hold before the reader refuses it: every bound that keeps a reader's memory
//! flat whatever the file (a zip bomb, a million columns, one giant cell, a shared string
//! referenced a million times).
//!
//! An XLSX is a zip: before the workbook is read, every part is decompressed once through a
//! counting reader, so a part that decompresses past its bound, an XML text or tag longer than
//! a cell may be, or too many shared strings, refuses the file before any of it is held. The
//! cells are then read with the column, cell-length, row-size and cell-count bounds.

use std::io::{Read, Seek};

use crate::SheetError;

/// The bounds a reader holds a file to. `Limits::default()` is what the registry's imports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of one worksheet part (streamed: costs time, not memory).
    pub max_sheet_part_bytes: u64,
    /// Decompressed bytes of the shared strings part, which the XLSX reader holds whole.
    pub max_shared_strings_bytes: u64,
    /// Strings in the shared strings part (each costs its bytes plus a fixed overhead).
    pub max_shared_strings: u64,
    /// Decompressed bytes of any other part (workbook, styles, relations).
    pub max_other_part_bytes: u64,
    /// Parts in the zip.
    pub max_parts: usize,
    /// The longest run of XML text or markup between two `<`/`>` (bounds what the XML reader
    /// buffers for one event).
    pub max_xml_run_bytes: u64,
    /// Columns of a row (a cell beyond refuses the file).
    pub max_columns: usize,
    /// Bytes of one cell's text: a longer cell is cut to this, marked, and so refused as a bad
    /// row by the field checks.
    pub max_cell_bytes: usize,
    /// Bytes of one row's cells together (a longer row refuses the file).
    pub max_row_bytes: usize,
    /// Cells of the worksheet.
    pub max_cells: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sheet_part_bytes: 8 << 30,
            max_shared_strings_bytes: 256 << 20,
            max_shared_strings: 4_000_000,
            max_other_part_bytes: 16 << 20,
            max_parts: 1_000,
            max_xml_run_bytes: 1 << 20,
            max_columns: 256,
            max_cell_bytes: 1024,
            max_row_bytes: 16 * 1024,
            max_cells: 200_000_000,
        }
    }
}

/// What a cut cell ends with: a field check then refuses its length, and a clerk reading the
/// error file sees why.
pub const CUT_MARK: &str = "…(cut)";

/// Cuts `text` to `max` bytes (on a character boundary) with [`CUT_MARK`].
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
}

/// The letters a spreadsheet shows for column `index` (0 = `A`).
pub(crate) fn column_letters(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// Decompresses every part of the zip once, counting, and refuses the file at the first bound
/// it passes. Leaves the reader where it found nothing (the caller rewinds).
pub(crate) fn check_xlsx_parts<R: Read + Seek>(
    reader: R,
    limits: &Limits,
) -> Result<(), SheetError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    if zip.len() > limits.max_parts {
        return Err(SheetError::TooLarge(format!(
            "the workbook has {} parts; a sheet of this registry has at most {}",
            zip.len(),
            limits.max_parts
        )));
    }
    let mut buffer = vec![0u8; 64 * 1024];
    for index in 0..zip.len() {
        let mut part = zip
            .by_index(index)
            .map_err(|e| SheetError::Xlsx(e.to_string()))?;
        let name = part.name().to_owned();
        let lower = name.to_ascii_lowercase();
        let shared_strings = lower.ends_with("sharedstrings.xml");
        let bound = if shared_strings {
            limits.max_shared_strings_bytes
        } else if lower.starts_with("xl/worksheets/") {
            limits.max_sheet_part_bytes
        } else {
            limits.max_other_part_bytes
        };
        let too_large = || {
            SheetError::TooLarge(format!(
                "part {name} of the workbook decompresses to more than {} MiB",
                bound >> 20
            ))
        };
        if part.size() > bound {
            return Err(too_large());
        }
        let mut total: u64 = 0;
        let mut run: u64 = 0;
        let mut strings: u64 = 0;
        // `<si` split across two reads is still counted once: the last three bytes of one
        // read open the next (a window of four never lies wholly inside them).
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let read = part
                .read(&mut buffer)
                .map_err(|e| SheetError::Xlsx(format!("part {name}: {e}")))?;
            if read == 0 {
                break;
            }
            total += read as u64;
            if total > bound {
                return Err(too_large());
            }
            let chunk = &buffer[..read];
            for &byte in chunk {
                if byte == b'<' || byte == b'>' {
                    run = 0;
                } else {
                    run += 1;
                    if run > limits.max_xml_run_bytes {
                        return Err(SheetError::TooLarge(format!(
                            "part {name} holds a text or tag longer than {} KiB; no cell of \
                             this registry is that long",
                            limits.max_xml_run_bytes >> 10
                        )));
                    }
                }
            }
            if shared_strings {
                let mut joined = std::mem::take(&mut carry);
                joined.extend_from_slice(chunk);
                strings += joined
                    .windows(4)
                    .filter(|w| w[..3] == *b"<si" && (w[3] == b'>' || w[3] == b' '))
                    .count() as u64;
                carry = joined[joined.len().saturating_sub(3)..].to_vec();
                if strings > limits.max_shared_strings {
                    return Err(SheetError::TooLarge(format!(
                        "the workbook's shared strings hold more than {} strings",
                        limits.max_shared_strings
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_spreadsheets_name_them() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(999_999), "BDWGN");
    }

    #[test]
    fn a_long_cell_is_cut_on_a_character_boundary_and_marked() {
        assert_eq!(cut("abc", 3), "abc");
        let cut_text = cut("林小雨", 4);
        assert_eq!(cut_text, format!("林{CUT_MARK}"));
    }
}
