//! Figures as spreadsheet rows (CSV or XLSX through `xueji-sheets`), with the date they
//! describe and the feed position they were computed at: what `xuejictl stats … --output`
//! writes, in the words of the forms clerks know.

use xueji_proto::stats::v1 as pb;
use xueji_sheets::{Format, SheetError, SheetWriter};

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
    writer.write_row(&[
        "月报",
        &report.month,
        &format!("{} 至 {}", report.from_date, report.to_date),
        &format!("数据位置 {}", report.feed_position),
    ])?;
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

/// The school summary table: one row per school.
pub fn school_summary_sheet(
    answer: &pb::GetSchoolSummaryResponse,
    format: Format,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = SheetWriter::new(format)?;
    writer.write_row(&[
        "学校汇总表",
        &answer.date,
        &format!("数据位置 {}", answer.feed_position),
    ])?;
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
    heading.extend(["少数民族", "随迁子女", "留守儿童"].map(String::from));
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
        writer.write_row(&row)?;
    }
    writer.finish()
}
