//! Figures as spreadsheet rows (CSV or XLSX through `xueji-sheets`), with the date they
//! describe and the feed position they were computed at: what `xuejictl stats … --output`
//! writes, in the words of the forms clerks know.

use xueji_proto::stats::v1 as pb;
use xueji_sheets::{Format, SheetError, SheetWriter};

/// A title row (what the sheet is, the date it describes, the feed position) as wide as the
/// table under it, so that a CSV stays rectangular for programs that insist on it.
fn title(parts: &[&str], width: usize) -> Vec<String> {
    let mut row: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    row.resize(width.max(parts.len()), String::new());
    row
}

/// The additions of the 学籍变动统计表, in the form's order: the kind as the report names it,
/// and its heading. Every column is shown, zeros included.
pub const ADDITION_COLUMNS: [(&str, &str); 13] = [
    ("new_registration", "新生注册"),
    ("transfer_in", "转入"),
    ("resumption", "休学复学"),
    ("return", "辍学复学"),
    ("reinstatement", "恢复学籍"),
    ("found", "失踪恢复"),
    ("return_from_abroad", "出国(境)复学"),
    ("progression", "升学"),
    ("promotion", "升级"),
    ("succession_in", "学校合并转入"),
    ("migration", "系统迁入"),
    ("correction", "信息更正"),
    ("other_addition", "其他增加"),
];

/// The removals of the 学籍变动统计表, in the form's order (see [`ADDITION_COLUMNS`]).
pub const REMOVAL_COLUMNS: [(&str, &str); 15] = [
    ("transfer_out", "转出"),
    ("suspension", "休学"),
    ("dropout", "辍学"),
    ("withdrawal", "退学"),
    ("expulsion", "开除"),
    ("missing", "失踪"),
    ("abroad", "出国(境)"),
    ("death", "死亡"),
    ("graduation", "毕业"),
    ("promotion", "升级"),
    ("succession_out", "学校合并转出"),
    ("deletion", "删除"),
    ("departure", "其他离校"),
    ("correction", "信息更正"),
    ("other_removal", "其他减少"),
];

/// The columns of a report: every fixed column of the form, then (never dropped) any kind
/// a newer node reports that this build does not know, headed by its name. `(kind, heading,
/// adding)`.
fn report_columns(answer: &pb::GetMonthlyReportResponse) -> Vec<(String, String, bool)> {
    let mut columns: Vec<(String, String, bool)> = ADDITION_COLUMNS
        .iter()
        .map(|(kind, heading)| ((*kind).to_owned(), format!("增加:{heading}"), true))
        .chain(
            REMOVAL_COLUMNS
                .iter()
                .map(|(kind, heading)| ((*kind).to_owned(), format!("减少:{heading}"), false)),
        )
        .collect();
    for unit in answer.report.iter().chain(&answer.parts) {
        for (list, adding) in [(&unit.additions, true), (&unit.removals, false)] {
            for kind in list {
                if !columns
                    .iter()
                    .any(|(k, _, a)| *k == kind.kind && *a == adding)
                {
                    let side = if adding { "增加" } else { "减少" };
                    columns.push((kind.kind.clone(), format!("{side}:{}", kind.kind), adding));
                }
            }
        }
    }
    columns
}

/// Students of `kind` on one side of a unit's report (0 when it names none).
fn students_of(unit: &pb::MonthlyReport, kind: &str, adding: bool) -> i64 {
    let list = if adding {
        &unit.additions
    } else {
        &unit.removals
    };
    list.iter()
        .find(|k| k.kind == kind)
        .map_or(0, |k| k.students)
}

/// The monthly change report of a unit and its parts as a table's rows (what `xuejictl` and
/// the demo print), in the 学籍变动统计表's terms: the heading, then one row per unit with
/// every addition and removal of the form one per line, zeros included.
pub fn report_rows(answer: &pb::GetMonthlyReportResponse) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let columns = report_columns(answer);
    let side = |unit: &pb::MonthlyReport, adding: bool| {
        columns
            .iter()
            .filter(|(_, _, a)| *a == adding)
            .map(|(kind, heading, _)| {
                let label = heading.split_once(':').map_or(heading.as_str(), |(_, l)| l);
                format!("{label} {}", students_of(unit, kind, adding))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let rows = answer
        .report
        .iter()
        .chain(&answer.parts)
        .map(|unit| {
            vec![
                if unit.unit_name.is_empty() {
                    unit.unit.clone()
                } else {
                    format!("{}\n{}", unit.unit_name, unit.unit)
                },
                unit.opening.to_string(),
                side(unit, true),
                side(unit, false),
                unit.closing.to_string(),
                if unit.reconciles { "是" } else { "否" }.to_owned(),
            ]
        })
        .collect();
    (
        vec!["单位", "期初人数", "增加", "减少", "期末人数", "平衡"],
        rows,
    )
}

/// The monthly change report of a unit and its parts as the 学籍变动统计表: one row per unit,
/// every column of the form in its order, zeros included.
pub fn monthly_report_sheet(
    answer: &pb::GetMonthlyReportResponse,
    format: Format,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = SheetWriter::new(format)?;
    let Some(report) = &answer.report else {
        return writer.finish();
    };
    let columns = report_columns(answer);
    let mut heading = vec![
        "单位".to_owned(),
        "单位名称".to_owned(),
        "期初人数".to_owned(),
    ];
    heading.extend(columns.iter().map(|(_, heading, _)| heading.clone()));
    heading.extend(["期末人数".to_owned(), "平衡".to_owned()]);
    writer.write_row(&title(
        &[
            "学籍变动统计表",
            &report.month,
            &format!("{} 至 {}", report.from_date, report.to_date),
            &format!("数据位置 {}", report.feed_position),
        ],
        heading.len(),
    ))?;
    writer.write_row(&heading)?;
    for unit in std::iter::once(report).chain(&answer.parts) {
        let mut row = vec![
            unit.unit.clone(),
            unit.unit_name.clone(),
            unit.opening.to_string(),
        ];
        row.extend(
            columns
                .iter()
                .map(|(kind, _, adding)| students_of(unit, kind, *adding).to_string()),
        );
        row.push(unit.closing.to_string());
        row.push(if unit.reconciles { "是" } else { "否" }.to_owned());
        writer.write_row(&row)?;
    }
    writer.finish()
}

/// The school summary table: one row per school, with its open problem records (identity's,
/// counted by the caller: `problems` by school code).
pub fn school_summary_sheet(
    answer: &pb::GetSchoolSummaryResponse,
    problems: &std::collections::BTreeMap<String, u64>,
    format: Format,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = SheetWriter::new(format)?;
    let grades: Vec<u32> = {
        let mut grades: Vec<u32> = answer
            .schools
            .iter()
            .flat_map(|s| s.grades.iter().map(|g| g.grade))
            .collect();
        grades.sort_unstable();
        grades.dedup();
        grades
    };
    let mut heading: Vec<String> = ["学校标识码", "区县", "在籍学生", "男", "女"]
        .map(String::from)
        .to_vec();
    for grade in &grades {
        heading.push(format!("{grade}年级男"));
        heading.push(format!("{grade}年级女"));
    }
    heading.extend(["少数民族", "随迁子女", "留守儿童", "问题学籍"].map(String::from));
    writer.write_row(&title(
        &[
            "学校汇总表",
            &answer.date,
            &format!("数据位置 {}", answer.feed_position),
        ],
        heading.len(),
    ))?;
    writer.write_row(&heading)?;
    for school in &answer.schools {
        let mut row = vec![
            school.school_code.clone(),
            school.county.clone(),
            school.students.to_string(),
            school.male.to_string(),
            school.female.to_string(),
        ];
        for grade in &grades {
            let found = school.grades.iter().find(|g| g.grade == *grade);
            row.push(found.map_or(0, |g| g.male).to_string());
            row.push(found.map_or(0, |g| g.female).to_string());
        }
        row.push(school.ethnic_minorities.to_string());
        row.push(school.migrant_children.to_string());
        row.push(school.left_behind_children.to_string());
        row.push(
            problems
                .get(&school.school_code)
                .copied()
                .unwrap_or(0)
                .to_string(),
        );
        writer.write_row(&row)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_school_summary_reads_back_with_its_grades_and_problem_records() {
        let answer = pb::GetSchoolSummaryResponse {
            date: "2026-09-30".into(),
            feed_position: 42,
            schools: vec![pb::SchoolSummaryRow {
                school_code: "2135000101".into(),
                county: "350102".into(),
                students: 5,
                male: 3,
                female: 2,
                grades: vec![
                    pb::GradeCount {
                        grade: 1,
                        male: 2,
                        female: 1,
                    },
                    pb::GradeCount {
                        grade: 2,
                        male: 1,
                        female: 1,
                    },
                ],
                ethnic_minorities: 1,
                migrant_children: 2,
                left_behind_children: 0,
                entry_routes: vec![],
            }],
        };
        let problems = [("2135000101".to_owned(), 4)].into_iter().collect();
        let bytes = school_summary_sheet(&answer, &problems, Format::Csv).unwrap();
        let mut rows = Vec::new();
        xueji_sheets::read_csv(bytes.as_slice(), None, |row| {
            rows.push(row.cells);
            true
        })
        .unwrap();
        assert_eq!(rows[0][..2], ["学校汇总表", "2026-09-30"]);
        let heading = &rows[1];
        let at = |name: &str| heading.iter().position(|h| h == name).expect(name);
        let school = &rows[2];
        assert_eq!(school[at("在籍学生")], "5");
        assert_eq!(school[at("1年级男")], "2");
        assert_eq!(school[at("2年级女")], "1");
        assert_eq!(school[at("随迁子女")], "2");
        assert_eq!(school[at("问题学籍")], "4");
    }
}
