//! The students' sheet: the one column layout that import reads and export writes (so an
//! export imports back as it was), with the Chinese headings and coded values clerks use.
//! Pure: cells in, typed values or field violations out.

use std::collections::BTreeMap;

use xueji_codes::{Gender, RegistryKind, RegistryNumber};

use super::{
    DocumentType, EnrollmentStatus, EntryRoute, FieldViolation, RegistrationInput,
    provincial_fields::ProvincialField, status_change::LeftReason,
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

/// One national column: the field it fills (as the API names it), its heading, its meaning.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub field: &'static str,
    pub heading: &'static str,
    pub note: &'static str,
}

/// The national columns, in sheet order. Provincial fields follow, headed by their labels.
pub const COLUMNS: [Column; 17] = [
    Column {
        field: "registry_number",
        heading: "全国学籍号",
        note: "G/J/L + 18 characters. Migration: required. Intake: leave empty (an L number is issued).",
    },
    Column {
        field: "aliases",
        heading: "曾用学籍号",
        note: "Migration: earlier numbers of the record, separated by ;",
    },
    Column {
        field: "name",
        heading: "姓名",
        note: "Full name; rare characters allowed.",
    },
    Column {
        field: "gender",
        heading: "性别",
        note: "男 or 女",
    },
    Column {
        field: "birth_date",
        heading: "出生日期",
        note: "YYYY-MM-DD",
    },
    Column {
        field: "ethnicity",
        heading: "民族",
        note: "GB/T 3304: code and name, e.g. 01 汉族",
    },
    Column {
        field: "document_type",
        heading: "证件类型",
        note: "居民身份证, 港澳居民来往内地通行证, 台湾居民来往大陆通行证, 港澳台居民居住证, 护照, 其他, 无",
    },
    Column {
        field: "document_number",
        heading: "证件号码",
        note: "Empty when 证件类型 is 无. Type it as text (a number cell loses digits).",
    },
    Column {
        field: "school_code",
        heading: "学校标识码",
        note: "10-digit school code",
    },
    Column {
        field: "grade",
        heading: "年级",
        note: "National grade 1–12 (primary 1–6, junior 7–9, senior 10–12)",
    },
    Column {
        field: "entry_date",
        heading: "入学日期",
        note: "YYYY-MM-DD",
    },
    Column {
        field: "entry_route",
        heading: "入学方式",
        note: "就近入学, 考试入学, 推荐入学, 随迁子女入学, 其他",
    },
    Column {
        field: "status",
        heading: "学籍状态",
        note: "Migration: 在籍, 待审核, 休学, 离校, 毕业, 结业, 肄业, 辍学, 死亡. Intake: leave empty.",
    },
    Column {
        field: "left_reason",
        heading: "离校原因",
        note: "When 学籍状态 is 离校: 退学, 开除, 出国出境, 失踪, 其他",
    },
    Column {
        field: "guardian.name",
        heading: "监护人姓名",
        note: "The guardian's full name",
    },
    Column {
        field: "guardian.relation",
        heading: "监护人关系",
        note: "e.g. 父亲, 母亲",
    },
    Column {
        field: "guardian.phone",
        heading: "监护人电话",
        note: "Digits, optionally with + and -",
    },
];

/// The heading of the column an error file adds; ignored when the file is imported again.
pub const ERRORS_HEADING: &str = "错误说明";

const GENDERS: [(&str, Gender); 2] = [("男", Gender::Male), ("女", Gender::Female)];

const DOCUMENT_TYPES: [(&str, DocumentType); 7] = [
    ("居民身份证", DocumentType::ResidentIdCard),
    ("港澳居民来往内地通行证", DocumentType::HkMacaoTravelPermit),
    (
        "台湾居民来往大陆通行证",
        DocumentType::TaiwanCompatriotPermit,
    ),
    ("港澳台居民居住证", DocumentType::HmtResidencePermit),
    ("护照", DocumentType::Passport),
    ("其他", DocumentType::Other),
    ("无", DocumentType::None),
];

const ENTRY_ROUTES: [(&str, EntryRoute); 5] = [
    ("就近入学", EntryRoute::NearbyAdmission),
    ("考试入学", EntryRoute::EntranceExam),
    ("推荐入学", EntryRoute::Recommendation),
    ("随迁子女入学", EntryRoute::MigrantAdmission),
    ("其他", EntryRoute::Other),
];

/// The states a migrated record may arrive in. A transferred-out archive is not one: the
/// student's current record is elsewhere, and is migrated there.
const STATUSES: [(&str, EnrollmentStatus); 9] = [
    ("在籍", EnrollmentStatus::Active),
    ("待审核", EnrollmentStatus::Pending),
    ("休学", EnrollmentStatus::Suspended),
    ("离校", EnrollmentStatus::Left),
    ("毕业", EnrollmentStatus::Graduated),
    ("结业", EnrollmentStatus::Completed),
    ("肄业", EnrollmentStatus::Incomplete),
    ("辍学", EnrollmentStatus::DroppedOut),
    ("死亡", EnrollmentStatus::Deceased),
];

const LEFT_REASONS: [(&str, LeftReason); 5] = [
    ("退学", LeftReason::Withdrawal),
    ("开除", LeftReason::Expulsion),
    ("出国出境", LeftReason::Abroad),
    ("失踪", LeftReason::Missing),
    ("其他", LeftReason::Other),
];

/// GB/T 3304 names, code order (01 汉族 … 56 基诺族), then 97 and 98.
const ETHNICITIES: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];
const OTHER_ETHNICITIES: [(&str, &str); 2] = [("97", "其他"), ("98", "外国血统中国籍人士")];

/// Every ethnicity as the sheet writes it: `01 汉族`.
pub fn ethnicity_choices() -> Vec<String> {
    ETHNICITIES
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{:02} {name}", i + 1))
        .chain(OTHER_ETHNICITIES.iter().map(|(c, n)| format!("{c} {n}")))
        .collect()
}

fn ethnicity_label(code: &str) -> String {
    ethnicity_choices()
        .into_iter()
        .find(|choice| choice.starts_with(code) && choice.as_bytes().get(2) == Some(&b' '))
        .unwrap_or_else(|| code.to_owned())
}

/// `01`, `1`, `01 汉族` or `汉族` → `01`; anything else is passed on for the registration
/// rule to refuse.
fn ethnicity_code(cell: &str) -> String {
    let code: String = cell.chars().take_while(char::is_ascii_digit).collect();
    if !code.is_empty() {
        return format!("{:0>2}", code);
    }
    if let Some(i) = ETHNICITIES.iter().position(|name| *name == cell) {
        return format!("{:02}", i + 1);
    }
    OTHER_ETHNICITIES
        .iter()
        .find(|(_, name)| *name == cell)
        .map_or_else(|| cell.to_owned(), |(code, _)| (*code).to_owned())
}

fn label_of<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(label, _)| label)
}

/// A coded cell: its Chinese label, or the API's own word for it (`male`, `active`).
fn coded<T: Copy>(
    table: &[(&'static str, T)],
    english: impl Fn(&str) -> Option<T>,
    cell: &str,
) -> Option<T> {
    table
        .iter()
        .find(|(label, _)| *label == cell)
        .map(|(_, v)| *v)
        .or_else(|| english(cell))
}

/// Dates as clerks type them: `2015-03-09`, `2015/3/9`, `20150309`, `2015.3.9` → `2015-03-09`;
/// anything else is passed on for the date rule to refuse.
fn normalize_date(cell: &str) -> String {
    if cell.len() == 8 && cell.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{}-{}-{}", &cell[..4], &cell[4..6], &cell[6..]);
    }
    let parts: Vec<&str> = cell.split(['-', '/', '.']).collect();
    if let [year, month, day] = parts[..]
        && year.len() == 4
        && [year, month, day]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("{year}-{month:0>2}-{day:0>2}");
    }
    cell.to_owned()
}

/// One row of the sheet, read: what registration checks, plus what a migration carries.
#[derive(Debug, Clone)]
pub struct SheetRecord {
    pub input: RegistrationInput,
    pub provincial_fields: BTreeMap<String, String>,
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub status: Option<EnrollmentStatus>,
    pub left_reason: Option<LeftReason>,
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
        };
        (record, violations)
    }
}

/// A migrated record that passed every rule: what the bulk writer stores.
#[derive(Debug, Clone)]
pub struct MigratedRecord {
    pub registration: super::Registration,
    pub registry_number: RegistryNumber,
    pub aliases: Vec<RegistryNumber>,
    pub status: EnrollmentStatus,
    pub left_reason: Option<LeftReason>,
}

/// Checks a migration row: the registration rules (`registration`, already checked with the
/// school and provincial fields), then what a record from the previous system must agree on
/// (its number with its state and ID number, its aliases, a reason for a departure).
pub fn check_migration(
    record: &SheetRecord,
    registration: super::Registration,
) -> Result<MigratedRecord, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let number = match record.registry_number.parse::<RegistryNumber>() {
        Ok(number) => Some(number),
        Err(e) => {
            violations.push(FieldViolation::new(
                "registry_number",
                format!("registry number {e}"),
            ));
            None
        }
    };
    let status = record.status;
    if status.is_none() {
        violations.push(FieldViolation::new(
            "status",
            "a migrated record needs its state (学籍状态)",
        ));
    }
    if let Some(number) = &number {
        match number.kind() {
            RegistryKind::G => {
                let expected = registration.resident_id.as_ref().map(|id| id.as_str());
                if expected != Some(&number.as_str()[1..]) {
                    violations.push(FieldViolation::new(
                        "registry_number",
                        "a G number is G + the student's resident ID number (证件号码)",
                    ));
                }
            }
            RegistryKind::L | RegistryKind::J => {}
        }
        if status == Some(EnrollmentStatus::Pending) && number.kind() != RegistryKind::L {
            violations.push(FieldViolation::new(
                "status",
                "a record awaiting approval (待审核) carries a temporary L number",
            ));
        }
    }
    let mut aliases = Vec::new();
    for alias in &record.aliases {
        match alias.parse::<RegistryNumber>() {
            Ok(alias) if Some(&alias) == number.as_ref() || aliases.contains(&alias) => {}
            Ok(alias) => aliases.push(alias),
            Err(e) => violations.push(FieldViolation::new(
                "aliases",
                format!("{alias:?}: registry number {e}"),
            )),
        }
    }
    match (status, record.left_reason) {
        (Some(EnrollmentStatus::Left), None) => violations.push(FieldViolation::new(
            "left_reason",
            "a record that left (离校) needs its reason",
        )),
        (Some(status), Some(_)) if status != EnrollmentStatus::Left => violations.push(
            FieldViolation::new("left_reason", "only a record that left (离校) has a reason"),
        ),
        _ => {}
    }
    match (number, status) {
        (Some(registry_number), Some(status)) if violations.is_empty() => Ok(MigratedRecord {
            registration,
            registry_number,
            aliases,
            status,
            left_reason: record.left_reason,
        }),
        _ => Err(violations),
    }
}

fn parse_gender_word(text: &str) -> Option<Gender> {
    match text {
        "male" | "1" => Some(Gender::Male),
        "female" | "2" => Some(Gender::Female),
        _ => None,
    }
}

fn parse_status_word(text: &str) -> Option<EnrollmentStatus> {
    STATUSES
        .iter()
        .map(|(_, s)| *s)
        .find(|s| s.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headings() -> Vec<String> {
        Layout::new(&[]).headings()
    }

    #[test]
    fn cells_read_back_as_written() {
        let layout = Layout::new(&[]);
        let guardian = super::super::Guardian {
            name: "王芳".into(),
            relation: "母亲".into(),
            phone: "13800000000".into(),
        };
        let fields = BTreeMap::new();
        let aliases = vec!["L350102201503090001".to_owned()];
        let student = SheetStudent {
            registry_number: "G350102201503090013",
            aliases: &aliases,
            name: "张𠀀三",
            gender: Gender::Male,
            birth_date: "2015-03-09".parse().unwrap(),
            ethnicity: "05",
            document_type: DocumentType::ResidentIdCard,
            document_number: Some("350102201503090013"),
            school_code: "3501000001",
            grade: 4,
            entry_date: "2021-09-01".parse().unwrap(),
            entry_route: EntryRoute::NearbyAdmission,
            status: EnrollmentStatus::Suspended,
            left_reason: None,
            guardian: &guardian,
            provincial_fields: &fields,
        };
        let cells = layout.cells(&student);
        assert_eq!(cells[5], "05 维吾尔族");
        let bound = layout.bind(&headings(), ImportKind::Migration).unwrap();
        let (record, violations) = bound.read(&cells);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(record.input.ethnicity, "05");
        assert_eq!(record.input.gender, Some(Gender::Male));
        assert_eq!(record.status, Some(EnrollmentStatus::Suspended));
        assert_eq!(record.aliases, aliases);
        assert_eq!(record.input.guardian.unwrap().relation, "母亲");
    }

    #[test]
    fn clerks_spellings_are_read() {
        assert_eq!(normalize_date("2015/3/9"), "2015-03-09");
        assert_eq!(normalize_date("20150309"), "2015-03-09");
        assert_eq!(normalize_date("2015.03.09"), "2015-03-09");
        assert_eq!(normalize_date("去年"), "去年");
        assert_eq!(ethnicity_code("1"), "01");
        assert_eq!(ethnicity_code("回族"), "03");
        assert_eq!(ethnicity_code("98 外国血统中国籍人士"), "98");
        assert_eq!(ethnicity_choices().len(), 58);
    }

    #[test]
    fn bad_headings_and_cells_are_named() {
        let layout = Layout::new(&[]);
        let mut headings = headings();
        headings.push("户口性质X".into());
        headings.retain(|h| h != "学籍状态");
        let error = layout.bind(&headings, ImportKind::Migration).unwrap_err();
        assert!(
            error.contains("学籍状态") && error.contains("户口性质X"),
            "{error}"
        );
        headings.pop();
        let bound = layout.bind(&headings, ImportKind::Intake).unwrap();
        let mut cells = vec![String::new(); headings.len()];
        cells[3] = "男生".into();
        cells[9] = "三".into();
        let (_, violations) = bound.read(&cells);
        let fields: Vec<&str> = violations.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["gender", "grade"]);
    }
}
