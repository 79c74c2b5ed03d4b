//! The students' sheet: the one column layout that import reads and export writes (so an
//! export imports back as it was), with the Chinese headings and coded values clerks use.
//! Pure: cells in, typed values or field violations out.

use std::collections::BTreeMap;

use xueji_codes::Gender;

use super::{
    DocumentType, EnrollmentStatus, EntryRoute, FieldViolation, RegistrationInput,
    provincial_fields::ProvincialField, status_change::LeftReason,
};

mod columns;
mod migration;
#[cfg(test)]
mod tests;
mod values;

pub use columns::{COLUMNS, Column};
pub use migration::{MigratedRecord, check_migration};
pub use values::ethnicity_choices;
use values::{
    DOCUMENT_TYPES, ENTRY_ROUTES, GENDERS, LEFT_REASONS, STATUSES, coded, ethnicity_code,
    ethnicity_label, label_of, normalize_date, parse_gender_word, parse_status_word, parse_yes_no,
    yes_no,
};

/// What an import does with its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// New students: pending registrations with `L` numbers, exactly as `RegisterStudent`.
    Intake,
    /// Existing records from a province's previous system, with their numbers and states.
    Migration,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Migration => "migration",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "intake" => Some(Self::Intake),
            "migration" => Some(Self::Migration),
            _ => None,
        }
    }
}

/// The heading of the column an error file adds; ignored when the file is imported again.
pub const ERRORS_HEADING: &str = "错误说明";

/// The heading of the column an error file adds after [`ERRORS_HEADING`]: the row's number in
/// the file as first imported, so a clerk finds it there. Ignored when the file is imported
/// again.
pub const ORIGINAL_ROW_HEADING: &str = "原行号";

/// One row of the sheet, read: what registration checks, plus what a migration carries.
#[derive(Debug, Clone)]
pub struct SheetRecord {
    pub input: RegistrationInput,
    pub provincial_fields: BTreeMap<String, String>,
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub status: Option<EnrollmentStatus>,
    pub left_reason: Option<LeftReason>,
    /// The class (班级) to seat the pupil in, and the seat (班内学号; `None`: the next free).
    pub class_name: Option<String>,
    pub class_seat: Option<u32>,
}

/// A student as export writes it.
#[derive(Debug, Clone)]
pub struct SheetStudent<'a> {
    pub registry_number: &'a str,
    pub aliases: &'a [String],
    pub name: &'a str,
    pub gender: Gender,
    pub birth_date: chrono::NaiveDate,
    pub ethnicity: &'a str,
    pub document_type: DocumentType,
    pub document_number: Option<&'a str>,
    pub school_code: &'a str,
    pub grade: u32,
    pub entry_date: chrono::NaiveDate,
    pub entry_route: EntryRoute,
    pub status: EnrollmentStatus,
    pub left_reason: Option<LeftReason>,
    pub guardian: &'a super::Guardian,
    pub provincial_fields: &'a BTreeMap<String, String>,
    pub flags: super::StudentFlags,
    /// The pupil's class and seat, if any.
    pub class: Option<(&'a str, u32)>,
}

/// The columns of one province's sheet: the national ones, then its provincial fields.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    provincial: &'a [ProvincialField],
}

/// Where each column of a given file is: its heading row matched to the layout.
#[derive(Debug, Clone)]
pub struct Bound {
    national: [Option<usize>; COLUMNS.len()],
    provincial: Vec<(String, usize)>,
    errors_column: Option<usize>,
    width: usize,
}

impl<'a> Layout<'a> {
    pub fn new(provincial: &'a [ProvincialField]) -> Self {
        Self { provincial }
    }

    /// What each column of [`headings`](Self::headings) holds, for a workbook to type its
    /// cells: codes as text (a number cell loses an ID number's digits), dates, the grade.
    pub fn column_kinds(&self) -> Vec<xueji_sheets::ColumnKind> {
        use xueji_sheets::ColumnKind;
        COLUMNS
            .iter()
            .map(|c| match c.field {
                "registry_number" | "aliases" | "document_number" | "school_code"
                | "guardian.phone" => ColumnKind::Code,
                "birth_date" | "entry_date" => ColumnKind::Date,
                "grade" | "class_seat" => ColumnKind::Number,
                _ => ColumnKind::Text,
            })
            .chain(self.provincial.iter().map(|_| ColumnKind::Text))
            .collect()
    }

    pub fn headings(&self) -> Vec<String> {
        COLUMNS
            .iter()
            .map(|c| c.heading.to_owned())
            .chain(self.provincial.iter().map(|f| f.label.clone()))
            .collect()
    }

    /// The heading of the column that fills `field` (`birth_date`, `provincial_fields.x`).
    pub fn heading_of(&self, field: &str) -> Option<String> {
        if let Some(name) = field.strip_prefix(super::provincial_fields::CORRECTED_PREFIX) {
            return self
                .provincial
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.label.clone());
        }
        COLUMNS
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.heading.to_owned())
    }

    /// Each column's note and, for a coded column, its values: the template's drop-downs.
    pub fn guide(&self) -> Vec<(String, Vec<String>)> {
        let words = |table: &[&str]| table.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let national = COLUMNS.iter().map(|column| {
            let values = match column.field {
                "gender" => words(&GENDERS.map(|(l, _)| l)),
                "ethnicity" => ethnicity_choices(),
                "document_type" => words(&DOCUMENT_TYPES.map(|(l, _)| l)),
                "entry_route" => words(&ENTRY_ROUTES.map(|(l, _)| l)),
                "status" => words(&STATUSES.map(|(l, _)| l)),
                "left_reason" => words(&LEFT_REASONS.map(|(l, _)| l)),
                "migrant_child" | "left_behind_child" => words(&["是", "否"]),
                _ => Vec::new(),
            };
            (column.note.to_owned(), values)
        });
        let provincial = self.provincial.iter().map(|field| {
            let values = match &field.kind {
                super::provincial_fields::FieldType::Choice(values) => values.clone(),
                _ => Vec::new(),
            };
            (
                format!("{} (provincial field {})", field.label, field.name),
                values,
            )
        });
        national.chain(provincial).collect()
    }

    /// Matches a file's heading row (headings, or the API's field names) to the layout.
    /// Refuses, naming them, unknown headings (a misspelt provincial field would otherwise be
    /// dropped silently) and the missing columns `kind` needs.
    pub fn bind(&self, headings: &[String], kind: ImportKind) -> Result<Bound, String> {
        let mut bound = Bound {
            national: [None; COLUMNS.len()],
            provincial: Vec::new(),
            errors_column: None,
            width: headings.len(),
        };
        let mut unknown = Vec::new();
        for (at, heading) in headings.iter().enumerate() {
            let heading = heading.trim();
            if heading.is_empty() {
                continue;
            }
            if heading == ERRORS_HEADING {
                bound.errors_column = Some(at);
            } else if heading == ORIGINAL_ROW_HEADING {
                // The error file's own column: what the row was, not what it says.
            } else if let Some(i) = COLUMNS
                .iter()
                .position(|c| c.heading == heading || c.field == heading)
            {
                bound.national[i] = Some(at);
            } else if let Some(field) = self
                .provincial
                .iter()
                .find(|f| f.label == heading || f.name == heading)
            {
                bound.provincial.push((field.name.clone(), at));
            } else {
                unknown.push(heading.to_owned());
            }
        }
        let mut needed = vec!["name", "gender", "birth_date", "school_code", "grade"];
        if kind == ImportKind::Migration {
            needed.extend(["registry_number", "status"]);
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .zip(&bound.national)
            .filter(|(c, at)| at.is_none() && needed.contains(&c.field))
            .map(|(c, _)| c.heading)
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing columns: {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            problems.push(format!(
                "unknown columns (not in this province's template): {}",
                unknown.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(bound)
        } else {
            Err(problems.join("; "))
        }
    }

    /// One student's cells, in [`headings`](Self::headings) order.
    pub fn cells(&self, student: &SheetStudent<'_>) -> Vec<String> {
        let mut cells = vec![
            student.registry_number.to_owned(),
            student.aliases.join(";"),
            student.name.to_owned(),
            label_of(&GENDERS, student.gender).to_owned(),
            student.birth_date.to_string(),
            ethnicity_label(student.ethnicity),
            label_of(&DOCUMENT_TYPES, student.document_type).to_owned(),
            student.document_number.unwrap_or_default().to_owned(),
            student.school_code.to_owned(),
            student.grade.to_string(),
            student.entry_date.to_string(),
            label_of(&ENTRY_ROUTES, student.entry_route).to_owned(),
            label_of(&STATUSES, student.status).to_owned(),
            student
                .left_reason
                .map(|r| label_of(&LEFT_REASONS, r).to_owned())
                .unwrap_or_default(),
            student.guardian.name.clone(),
            student.guardian.relation.clone(),
            student.guardian.phone.clone(),
            yes_no(student.flags.migrant_child).to_owned(),
            yes_no(student.flags.left_behind_child).to_owned(),
            student
                .class
                .map(|(name, _)| name.to_owned())
                .unwrap_or_default(),
            student
                .class
                .map(|(_, seat)| seat.to_string())
                .unwrap_or_default(),
        ];
        cells.extend(self.provincial.iter().map(|field| {
            student
                .provincial_fields
                .get(&field.name)
                .cloned()
                .unwrap_or_default()
        }));
        cells
    }
}

impl Bound {
    /// The cells of a row as they were, without the errors column: what an error file repeats.
    pub fn original<'c>(&self, cells: &'c [String]) -> Vec<&'c str> {
        (0..self.width.max(cells.len()))
            .filter(|at| Some(*at) != self.errors_column)
            .map(|at| cells.get(at).map_or("", String::as_str))
            .collect()
    }

    /// Whether a row has nothing in the layout's columns (a blank line between records).
    pub fn is_blank(&self, cells: &[String]) -> bool {
        cells
            .iter()
            .enumerate()
            .all(|(at, cell)| Some(at) == self.errors_column || cell.trim().is_empty())
    }

    /// Reads a row into a record. A cell that cannot be read for its column is a violation
    /// naming the field; the registration rules check the rest.
    pub fn read(&self, cells: &[String]) -> (SheetRecord, Vec<FieldViolation>) {
        let cell = |field: &str| -> &str {
            COLUMNS
                .iter()
                .position(|c| c.field == field)
                .and_then(|i| self.national[i])
                .and_then(|at| cells.get(at))
                .map_or("", |text| text.trim())
        };
        let mut violations = Vec::new();
        // A code typed into a number cell: the spreadsheet kept 15 digits of it (and shows
        // it as 3.50102E+17). Nothing is guessed; the clerk is told how to mend the column.
        for (field, heading) in [
            ("document_number", "证件号码"),
            ("registry_number", "全国学籍号"),
            ("school_code", "学校标识码"),
            ("aliases", "曾用学籍号"),
        ] {
            let text = cell(field);
            if looks_like_a_number_cell(text) {
                violations.push(FieldViolation::new(
                    field,
                    format!(
                        "{text:?} was stored as a number, and the spreadsheet lost its last digits: \
                         format the {heading} column as text (文本) and type the digits again"
                    ),
                ));
            }
        }
        let mut coded_cell = |field: &'static str, found: Option<()>, text: &str, means: &str| {
            if found.is_none() && !text.is_empty() {
                violations.push(FieldViolation::new(
                    field,
                    format!("{text:?} is not one of: {means}"),
                ));
            }
        };
        let gender_text = cell("gender");
        let gender = coded(&GENDERS, parse_gender_word, gender_text);
        coded_cell("gender", gender.map(|_| ()), gender_text, "男, 女");
        let document_text = cell("document_type");
        let document_type = if document_text.is_empty() {
            None
        } else {
            coded(&DOCUMENT_TYPES, DocumentType::parse, document_text)
        };
        coded_cell(
            "document_type",
            document_type.map(|_| ()),
            document_text,
            &DOCUMENT_TYPES.map(|(l, _)| l).join(", "),
        );
        let route_text = cell("entry_route");
        let entry_route = if route_text.is_empty() {
            Some(EntryRoute::Other)
        } else {
            coded(&ENTRY_ROUTES, EntryRoute::parse, route_text)
        };
        coded_cell(
            "entry_route",
            entry_route.map(|_| ()),
            route_text,
            &ENTRY_ROUTES.map(|(l, _)| l).join(", "),
        );
        let status_text = cell("status");
        let status = coded(&STATUSES, parse_status_word, status_text);
        coded_cell(
            "status",
            status.map(|_| ()),
            status_text,
            &STATUSES.map(|(l, _)| l).join(", "),
        );
        let left_text = cell("left_reason");
        let left_reason = coded(&LEFT_REASONS, LeftReason::parse, left_text);
        coded_cell(
            "left_reason",
            left_reason.map(|_| ()),
            left_text,
            &LEFT_REASONS.map(|(l, _)| l).join(", "),
        );
        let grade_text = cell("grade");
        let grade = match grade_text.parse::<u32>() {
            Ok(grade) => grade,
            Err(_) => {
                violations.push(FieldViolation::new(
                    "grade",
                    format!("{grade_text:?} is not a grade number 1–12"),
                ));
                0
            }
        };
        let guardian = super::Guardian {
            name: cell("guardian.name").to_owned(),
            relation: cell("guardian.relation").to_owned(),
            phone: cell("guardian.phone").to_owned(),
        };
        let has_guardian = [&guardian.name, &guardian.relation, &guardian.phone]
            .iter()
            .any(|part| !part.is_empty());
        let mut flag = |field: &'static str| {
            let text = cell(field);
            let value = parse_yes_no(text);
            if value.is_none() {
                violations.push(FieldViolation::new(
                    field,
                    format!("{text:?} is not one of: 是, 否"),
                ));
            }
            value.unwrap_or(false)
        };
        let flags = super::StudentFlags {
            migrant_child: flag("migrant_child"),
            left_behind_child: flag("left_behind_child"),
        };
        let class_name = match super::classes::check_name("class_name", cell("class_name")) {
            Ok(name) => Some(name),
            Err(_) if cell("class_name").is_empty() => None,
            Err(violation) => {
                violations.push(violation);
                None
            }
        };
        let seat_text = cell("class_seat");
        let class_seat = match seat_text.parse::<u32>() {
            _ if seat_text.is_empty() => None,
            Ok(seat) if (1..=super::classes::MAX_SEAT).contains(&seat) && class_name.is_some() => {
                Some(seat)
            }
            _ => {
                violations.push(FieldViolation::new(
                    "class_seat",
                    format!("{seat_text:?} is not a seat 1–999 of the row's 班级"),
                ));
                None
            }
        };
        let record = SheetRecord {
            input: RegistrationInput {
                idempotency_key: String::new(),
                name: cell("name").to_owned(),
                gender,
                birth_date: normalize_date(cell("birth_date")),
                ethnicity: ethnicity_code(cell("ethnicity")),
                document_type,
                document_number: cell("document_number").to_owned(),
                school_code: cell("school_code").to_owned(),
                grade,
                entry_date: normalize_date(cell("entry_date")),
                entry_route,
                guardian: has_guardian.then_some(guardian),
                flags,
            },
            provincial_fields: self
                .provincial
                .iter()
                .filter_map(|(name, at)| {
                    let value = cells.get(*at)?.trim();
                    (!value.is_empty()).then(|| (name.clone(), value.to_owned()))
                })
                .collect(),
            registry_number: cell("registry_number").to_owned(),
            aliases: cell("aliases")
                .split([';', '；', ','])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            status,
            left_reason,
            class_name,
            class_seat,
        };
        (record, violations)
    }
}

/// Whether a cell holds a number as a spreadsheet writes one in scientific notation
/// (`3.50102E+17`, `3.50102202003115E17`): digits of a code that were lost.
fn looks_like_a_number_cell(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.contains('E')
        && upper
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'E' | '+' | '-' | '.'))
        && upper.parse::<f64>().is_ok()
}
