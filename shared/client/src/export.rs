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

/// The monthly change report of a unit and its parts as a table's rows (what `xuejictl` and
/// the demo print): the heading, then one row per unit with its kinds one per line.
pub fn report_rows(answer: &pb::GetMonthlyReportResponse) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let kinds = |list: &[pb::KindCount]| {
        list.iter()
            .map(|k| format!("{} {}", k.kind, k.students))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let rows = answer
        .report
        .iter()
        .chain(&answer.parts)
        .map(|unit| {
            vec![
                unit.unit.clone(),
                unit.opening.to_string(),
                kinds(&unit.additions),
                kinds(&unit.removals),
                unit.closing.to_string(),
                if unit.reconciles { "yes" } else { "NO" }.to_owned(),
            ]
        })
        .collect();
    (
        vec![
            "unit",
            "opening",
            "additions",
            "removals",
            "closing",
            "reconciles",
        ],
        rows,
    )
}

/// The monthly change report of a unit and its parts: one row per unit.
pub fn monthly_report_sheet(
    answer: &pb::GetMonthlyReportResponse,
    format: Format,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = SheetWriter::new(format)?;
    let Some(report) = &answer.report else {
        return writer.finish();
    };
    let mut kinds: Vec<(String, bool)> = Vec::new();
    for unit in std::iter::once(report).chain(&answer.parts) {
        for (list, adding) in [(&unit.additions, true), (&unit.removals, false)] {
            for kind in list {
                if !kinds.iter().any(|(k, a)| *k == kind.kind && *a == adding) {
                    kinds.push((kind.kind.clone(), adding));
                }
            }
        }
    }
    kinds.sort();
    let mut heading = vec!["单位".to_owned(), "期初人数".to_owned()];
    heading.extend(
        kinds
            .iter()
            .map(|(kind, adding)| format!("{}:{kind}", if *adding { "增加" } else { "减少" })),
    );
    heading.extend(["期末人数".to_owned(), "平衡".to_owned()]);
    writer.write_row(&title(
        &[
            "月报",
            &report.month,
            &format!("{} 至 {}", report.from_date, report.to_date),
            &format!("数据位置 {}", report.feed_position),
        ],
        heading.len(),
    ))?;
    writer.write_row(&heading)?;
    for unit in std::iter::once(report).chain(&answer.parts) {
        let mut row = vec![unit.unit.clone(), unit.opening.to_string()];
        for (kind, adding) in &kinds {
            let list = if *adding {
                &unit.additions
            } else {
                &unit.removals
            };
            let students = list
                .iter()
                .find(|k| k.kind == *kind)
                .map_or(0, |k| k.students);
            row.push(students.to_string());
        }
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
