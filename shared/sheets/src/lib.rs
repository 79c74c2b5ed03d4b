//! Spreadsheets as clerks have them: CSV files (UTF-8, with or without a byte-order mark, or
//! GB18030 as Chinese spreadsheet programs save them) and XLSX workbooks, read one row at a time
//! as text cells, and written streaming (an XLSX in constant memory). The meaning of the columns
//! belongs to the caller; this crate only moves text in and out of files.

mod limits;
mod read;
mod write;

pub use limits::{CUT_MARK, Limits};
pub use read::{Encoding, Row, read_csv, read_csv_with, read_xlsx, read_xlsx_with, sniff_encoding};
pub use write::{Choices, ColumnKind, SheetWriter, XLSX_MAX_ROWS};

/// The first characters that make a spreadsheet read a text cell as a formula (OWASP's CSV
/// injection list, with the full-width forms Chinese input methods type).
const FORMULA_STARTS: [char; 10] = ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'];

/// `text` as the system writes it into any sheet: a text that a spreadsheet would evaluate
/// (`=HYPERLINK(…)`, `+1`, `@SUM(…)`) gets a leading `'`, which spreadsheets show as text
/// and never run. [`restored`] undoes it when the file comes back.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A cell as read back: the `'` that [`neutralised`] put before a formula-like text is
/// dropped, so a value survives export and re-import unchanged.
pub fn restored(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// A file format a sheet can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// The format a file name's extension names (`.csv`, `.xlsx`), case-insensitively.
    pub fn of_file_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".xlsx") {
            Some(Self::Xlsx)
        } else {
            None
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "xlsx" => Some(Self::Xlsx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }
}

/// Why a sheet could not be read or written, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("the file is not a readable CSV file: {0}")]
    Csv(String),
    #[error("the file is not a readable XLSX workbook: {0}")]
    Xlsx(String),
    #[error("the workbook has no worksheet")]
    NoWorksheet,
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("an XLSX worksheet holds at most {XLSX_MAX_ROWS} rows; export this many as CSV")]
    TooManyRows,
    /// The file passes a bound of [`Limits`]: refused before the reader holds it.
    #[error("the file is refused: {0}")]
    TooLarge(String),
}
