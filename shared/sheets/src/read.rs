//! Reading: one row at a time, every cell as text, each row with the number a spreadsheet
//! program shows for it (the header is row 1), so that a report can point a clerk at it.

use std::io::{Read, Seek};

use calamine::{DataRef, Reader, Xlsx};

use crate::{
    Limits, SheetError,
    limits::{check_xlsx_parts, column_letters, cut},
};

/// A row of a sheet: its number as a spreadsheet program shows it, and its cells as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub number: u64,
    pub cells: Vec<String>,
}

/// The text encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// GB18030 (a superset of GBK and GB2312): what Chinese editions of spreadsheet programs
    /// write when saving as CSV.
    Gb18030,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Gb18030 => "GB18030",
        }
    }

    /// `text` in this encoding (what an error file in the upload's encoding is written as).
    /// A character GB18030 cannot hold does not exist: it encodes all of Unicode.
    pub fn encode(self, text: &str) -> Vec<u8> {
        self.codec().encode(text).0.into_owned()
    }

    fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            Self::Utf8 => encoding_rs::UTF_8,
            Self::Gb18030 => encoding_rs::GB18030,
        }
    }
}

/// How many leading bytes decide a CSV file's encoding.
const SNIFF_BYTES: usize = 64 * 1024;

/// The encoding a file starting with `prefix` is in: UTF-8 when it has the UTF-8 byte-order
/// mark or its bytes are valid UTF-8 (a sequence cut at the end of the prefix allowed),
/// GB18030 otherwise. Chinese text in GB18030 is practically never valid UTF-8.
pub fn sniff_encoding(prefix: &[u8]) -> Encoding {
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Encoding::Utf8;
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => Encoding::Utf8,
        // `error_len() == None`: the input ended inside a sequence (the prefix's cut).
        Err(error) if error.error_len().is_none() => Encoding::Utf8,
        Err(_) => Encoding::Gb18030,
    }
}

/// Reads a CSV file row by row, decoding it (`encoding`, or sniffed from its first 64 KiB),
/// and hands each row to `each` until it answers `false`. Memory stays flat however long the
/// file is. Answers the encoding used.
pub fn read_csv<R: Read>(
    reader: R,
    encoding: Option<Encoding>,
    each: impl FnMut(Row) -> bool,
) -> Result<Encoding, SheetError> {
    read_csv_with(reader, encoding, &Limits::default(), each)
}

/// [`read_csv`] held to `limits`: a cell longer than `max_cell_bytes` is cut (and marked), a
/// row longer than `max_row_bytes` or wider than `max_columns` refuses the file, before the
/// reader buffers more of it.
pub fn read_csv_with<R: Read>(
    mut reader: R,
    encoding: Option<Encoding>,
    limits: &Limits,
    mut each: impl FnMut(Row) -> bool,
) -> Result<Encoding, SheetError> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut reader)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)?;
    let encoding = encoding.unwrap_or_else(|| sniff_encoding(&prefix));
    let since_row = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut decoded = Decoding::new(std::io::Cursor::new(prefix).chain(reader), encoding);
    // The CSV reader's own buffer comes on top of a row: a row is refused once the bytes read
    // since the last one pass the bound by more than that buffer.
    decoded.row_budget = Some((since_row.clone(), limits.max_row_bytes as u64 + 64 * 1024));
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(decoded);
    let mut record = csv::StringRecord::new();
    let mut number = 0;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(encoding),
            Ok(true) => {
                number += 1;
                since_row.set(0);
                if record.as_slice().len() > limits.max_row_bytes {
                    return Err(row_too_long(number, limits));
                }
                if record.len() > limits.max_columns {
                    return Err(too_wide(number, record.len() - 1, limits));
                }
                // PostgreSQL text holds no NUL; a file with them is binary, or UTF-16.
                if record.as_slice().contains('\0') {
                    return Err(SheetError::Csv(format!(
                        "row {number} holds a NUL byte: the file is not text, or is saved as \
                         UTF-16; save it as \"CSV UTF-8\" and import it again"
                    )));
                }
                let cells = record
                    .iter()
                    .map(|c| cut(crate::restored(c), limits.max_cell_bytes))
                    .collect();
                if !each(Row { number, cells }) {
                    return Ok(encoding);
                }
            }
            Err(error) if error.is_io_error() && since_row.get() > limits.max_row_bytes as u64 => {
                return Err(row_too_long(number + 1, limits));
            }
            Err(error) => {
                return Err(SheetError::Csv(match error.position() {
                    Some(at) => format!("near row {}: {error}", at.record() + 1),
                    None => error.to_string(),
                }));
            }
        }
    }
}

/// Reads the first worksheet of an XLSX workbook cell by cell (the shared strings table is
/// held; the cells are not), handing each non-empty row to `each` until it answers `false`.
/// Dates become `YYYY-MM-DD`; whole numbers are written without a decimal point.
pub fn read_xlsx<R: Read + Seek>(
    reader: R,
    each: impl FnMut(Row) -> bool,
) -> Result<(), SheetError> {
    read_xlsx_with(reader, &Limits::default(), each)
}

/// [`read_xlsx`] held to `limits`: every part is decompressed once, counting, before the
/// workbook is opened; then a cell past `max_columns`, a row past `max_row_bytes` or a sheet
/// past `max_cells` refuses the file, and a cell past `max_cell_bytes` is cut (and marked).
/// A shared string is measured before it is copied into a row.
pub fn read_xlsx_with<R: Read + Seek>(
    mut reader: R,
    limits: &Limits,
    mut each: impl FnMut(Row) -> bool,
) -> Result<(), SheetError> {
    check_xlsx_parts(&mut reader, limits)?;
    reader.rewind()?;
    let mut workbook = Xlsx::new(reader).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let first = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or(SheetError::NoWorksheet)?;
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let mut current: Option<Row> = None;
    let mut current_bytes = 0usize;
    let mut cell_count: u64 = 0;
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| SheetError::Xlsx(e.to_string()))?
    {
        let (row, column) = cell.get_position();
        let number = u64::from(row) + 1;
        cell_count += 1;
        if cell_count > limits.max_cells {
            return Err(SheetError::TooLarge(format!(
                "the worksheet holds more than {} cells",
                limits.max_cells
            )));
        }
        let column = column as usize;
        if column >= limits.max_columns {
            return Err(too_wide(number, column, limits));
        }
        let text = cell_text(cell.get_value(), limits.max_cell_bytes);
        if text.is_empty() {
            continue;
        }
        if current.as_ref().is_some_and(|r| r.number != number) {
            let done = current.take().expect("checked above");
            current_bytes = 0;
            if !each(done) {
                return Ok(());
            }
        }
        current_bytes += text.len();
        if current_bytes > limits.max_row_bytes {
            return Err(row_too_long(number, limits));
        }
        let row = current.get_or_insert_with(|| Row {
            number,
            cells: Vec::new(),
        });
        if row.cells.len() <= column {
            row.cells.resize(column + 1, String::new());
        }
        row.cells[column] = crate::restored(&text).to_owned();
    }
    if let Some(row) = current {
        each(row);
    }
    Ok(())
}

fn row_too_long(number: u64, limits: &Limits) -> SheetError {
    SheetError::TooLarge(format!(
        "row {number} holds more than {} KiB of text; no row of this registry's templates is \
         that long",
        limits.max_row_bytes >> 10
    ))
}

fn too_wide(number: u64, column: usize, limits: &Limits) -> SheetError {
    SheetError::TooLarge(format!(
        "row {number} has a cell in column {} (column {}); a sheet of this registry has at \
         most {} columns",
        column_letters(column),
        column + 1,
        limits.max_columns
    ))
}

/// A cell's text, at most `max` bytes (a longer one cut and marked). A shared string is
/// measured where the workbook holds it, never copied whole.
fn cell_text(value: &DataRef<'_>, max: usize) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(text) => cut(text, max),
        DataRef::SharedString(text) => cut(text, max),
        DataRef::Int(number) => number.to_string(),
        // Whole numbers (a grade, a phone number typed as a number) read as typed.
        DataRef::Float(number) if number.fract() == 0.0 && number.abs() < 1e15 => {
            format!("{}", *number as i64)
        }
        // Past 15 digits a spreadsheet's number has lost its last digits (an 18-digit ID
        // number pasted into a number cell): it reads as the spreadsheet shows it, in
        // scientific notation, never as digits it does not hold.
        DataRef::Float(number) => format!("{number:E}"),
        DataRef::Bool(flag) => if *flag { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(when) => match when.as_datetime() {
            Some(at) if at.time() == Default::default() => at.date().to_string(),
            Some(at) => at.to_string(),
            None => when.to_string(),
        },
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => cut(text, max),
        DataRef::Error(error) => format!("#{error:?}"),
    }
}

/// A reader that turns the bytes of `encoding` into UTF-8 as they are read, dropping a
/// leading byte-order mark. Bytes that are not valid in the encoding become U+FFFD, which
/// the field checks then refuse with the row's number.
struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    input_len: usize,
    output: Vec<u8>,
    output_start: usize,
    output_end: usize,
    finished: bool,
    /// Bytes decoded since the CSV reader last finished a row, and the most it may be.
    row_budget: Option<(std::rc::Rc<std::cell::Cell<u64>>, u64)>,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, encoding: Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.codec().new_decoder_with_bom_removal(),
            input: vec![0; 16 * 1024],
            input_len: 0,
            output: vec![0; 48 * 1024 + 16],
            output_start: 0,
            output_end: 0,
            finished: false,
            row_budget: None,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.output_start == self.output_end && !self.finished {
            let read = self.inner.read(&mut self.input[self.input_len..])?;
            self.input_len += read;
            let last = read == 0;
            let (_, consumed, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[..self.input_len], &mut self.output, last);
            self.input.copy_within(consumed..self.input_len, 0);
            self.input_len -= consumed;
            self.output_start = 0;
            self.output_end = written;
            self.finished = last && self.input_len == 0;
        }
        let n = buf.len().min(self.output_end - self.output_start);
        if let Some((since_row, max)) = &self.row_budget {
            since_row.set(since_row.get() + n as u64);
            if since_row.get() > *max {
                return Err(std::io::Error::other(
                    "a row is longer than the reader allows",
                ));
            }
        }
        buf[..n].copy_from_slice(&self.output[self.output_start..self.output_start + n]);
        self.output_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(bytes: &[u8]) -> (Encoding, Vec<Row>) {
        let mut rows = Vec::new();
        let encoding = read_csv(bytes, None, |row| {
            rows.push(row);
            true
        })
        .unwrap();
        (encoding, rows)
    }

    #[test]
    fn a_csv_row_past_the_bounds_refuses_the_file_and_a_long_cell_is_cut() {
        let limits = Limits {
            max_row_bytes: 1000,
            max_cell_bytes: 10,
            max_columns: 5,
            ..Limits::default()
        };
        let read = |bytes: &[u8]| {
            let mut rows = Vec::new();
            read_csv_with(bytes, None, &limits, |row| {
                rows.push(row);
                true
            })
            .map(|_| rows)
        };
        let rows = read("a,bbbbbbbbbbbbbbbb\n".as_bytes()).unwrap();
        assert_eq!(rows[0].cells[1], format!("bbbbbbbbbb{}", crate::CUT_MARK));
        let wide = read("a,b,c,d,e,f\n".as_bytes()).unwrap_err().to_string();
        assert!(
            wide.contains("column F") && wide.contains("at most 5 columns"),
            "{wide}"
        );
        // One endless quoted cell: refused once it passes the bound, not read whole.
        let mut endless = b"a\n\"".to_vec();
        endless.extend(std::iter::repeat_n(b'x', 10 << 20));
        let long = read(&endless).unwrap_err().to_string();
        assert!(long.contains("row 2 holds more than"), "{long}");
        let nul = read(b"a,b\n\0\0,c\n").unwrap_err().to_string();
        assert!(nul.contains("NUL") && nul.contains("row 2"), "{nul}");
    }

    #[test]
    fn gb18030_and_utf8_read_alike() {
        let text = "姓名,性别\n张𠀀三,男\n\"李,四\",女\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        let (utf8_encoding, utf8_rows) = rows_of(text.as_bytes());
        let (gb_encoding, gb_rows) = rows_of(&gb);
        assert_eq!(utf8_encoding, Encoding::Utf8);
        assert_eq!(gb_encoding, Encoding::Gb18030);
        assert_eq!(utf8_rows, gb_rows);
        assert_eq!(gb_rows[1].cells, ["张𠀀三", "男"]);
        assert_eq!(gb_rows[2].cells, ["李,四", "女"]);
        assert_eq!(gb_rows[2].number, 3);
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice("姓名\n王\n".as_bytes());
        let (_, rows) = rows_of(&bytes);
        assert_eq!(rows[0].cells, ["姓名"]);
    }

    #[test]
    fn a_long_file_decodes_across_buffer_edges() {
        let mut text = String::from("姓名\n");
        for i in 0..20_000 {
            text.push_str(&format!("学生{i}号𠀀\n"));
        }
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        let (_, rows) = rows_of(&gb);
        assert_eq!(rows.len(), 20_001);
        assert_eq!(rows[12_345].cells, [format!("学生{}号𠀀", 12_344)]);
    }
}
