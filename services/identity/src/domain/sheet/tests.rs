//! The sheet layout read back as written, clerks' spellings, bad headings and cells.

use super::values::{ethnicity_choices, ethnicity_code, normalize_date};
use super::*;

fn headings() -> Vec<String> {
    Layout::new(&[]).headings()
}

#[test]
fn cells_read_back_as_written() {
    let layout = Layout::new(&[]);
    let guardian = crate::domain::Guardian {
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
        flags: crate::domain::StudentFlags {
            migrant_child: false,
            left_behind_child: true,
        },
        class: Some(("四年级(2)班", 7)),
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
    assert_eq!(
        (cells[17].as_str(), cells[18].as_str()),
        ("否", "是"),
        "the flags are written 是/否"
    );
    assert!(record.input.flags.left_behind_child && !record.input.flags.migrant_child);
    assert_eq!(
        (record.class_name.as_deref(), record.class_seat),
        (Some("四年级(2)班"), Some(7)),
        "the class columns read back"
    );

    // An ID number a spreadsheet held as a number (digits lost) is refused, never stored.
    let mut lossy = cells.clone();
    lossy[7] = "3.50102201503090E17".into();
    let (_, violations) = bound.read(&lossy);
    assert!(
        violations
            .iter()
            .any(|v| v.field == "document_number" && v.description.contains("文本")),
        "{violations:?}"
    );
}

#[test]
fn the_flags_columns_may_be_left_out_and_are_read_as_clerks_write_them() {
    let layout = Layout::new(&[]);
    let mut headings = headings();
    headings.retain(|h| h != "随迁子女" && h != "留守儿童");
    let bound = layout.bind(&headings, ImportKind::Intake).unwrap();
    let (record, _) = bound.read(&vec![String::new(); headings.len()]);
    assert_eq!(record.input.flags, crate::domain::StudentFlags::default());
    let headings = self::headings();
    let bound = layout.bind(&headings, ImportKind::Intake).unwrap();
    let mut cells = vec![String::new(); headings.len()];
    cells[17] = "Y".into();
    cells[18] = "大概".into();
    let (record, violations) = bound.read(&cells);
    assert!(record.input.flags.migrant_child);
    assert!(
        violations.iter().any(|v| v.field == "left_behind_child"),
        "{violations:?}"
    );
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
