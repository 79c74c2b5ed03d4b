//! Statistics end to end: registrations approved in a province reach its figures through
//! identity's change feed, the province reports its aggregates to the national node, and
//! every caller sees only its jurisdiction's figures. Real nodes, real mTLS, real PostgreSQL.

use std::time::Duration;

use chrono::Datelike;
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, stats::v1 as st};
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
};

fn this_month() -> String {
    let today = xueji_calendar::china_today(chrono::Utc::now());
    format!("{:04}-{:02}", today.year(), today.month())
}

/// Registers and approves `count` pupils at `school`; answers their numbers.
async fn enroll(federation: &Federation, school: &str, county: &str, count: u32) -> Vec<String> {
    let mut as_school = federation
        .identity("35", Level::School, school, Role::Operator)
        .await;
    let mut as_county = federation
        .identity("35", Level::County, county, Role::Approver)
        .await;
    let mut numbers = Vec::new();
    for n in 0..count {
        // Born in 2020, of first-grade age; the second pupil four years older.
        let year = if n == 1 { 2016 } else { 2020 };
        let id = resident_id(&format!("{county}{year}030{}{:03}", n % 9 + 1, 100 + n));
        let mut request = registration_at(&format!("stats-{school}-{n}"), "陈小明", school, &id);
        request.migrant_child = n == 0;
        if n == 2 {
            // The third pupil's guardian has no phone: a key field missing.
            if let Some(guardian) = request.guardian.as_mut() {
                guardian.phone.clear();
            }
        }
        let number = as_school
            .register_student(request)
            .await
            .expect("registered")
            .into_inner()
            .student
            .expect("student")
            .registry_number;
        as_county
            .approve_registration(pb::ApproveRegistrationRequest {
                registry_number: number.clone(),
            })
            .await
            .expect("approved");
        numbers.push(number);
    }
    numbers
}

/// Asks until `done` holds (the feed and the reports run in the background).
async fn eventually<T, F, Fut>(mut ask: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..300 {
        let answer = ask().await;
        if done(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the figures never arrived");
}

#[tokio::test]
async fn approvals_reach_the_figures_of_every_level_and_the_nation() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    enroll(&federation, &school, &county, 3).await;

    // The school sees its own counts, by breakdown, once the feed has brought them.
    let mut as_school = federation
        .stats("35", Level::School, &school, Role::Operator)
        .await;
    let counts = eventually(
        || {
            let mut client = as_school.clone();
            async move {
                client
                    .get_counts(st::GetCountsRequest::default())
                    .await
                    .expect("counts")
                    .into_inner()
            }
        },
        |counts| counts.total == 3,
    )
    .await;
    assert_eq!(counts.unit, format!("school:{school}"));
    assert!(counts.feed_position > 0);
    let cell = |dimension: &str, value: &str| {
        counts
            .cells
            .iter()
            .find(|c| c.dimension == dimension && c.value == value)
            .map_or(0, |c| c.students)
    };
    assert_eq!(cell("grade", "1"), 3);
    assert_eq!(cell("stage", "primary"), 3);
    assert_eq!(cell("migrant_child", "yes"), 1);
    assert_eq!(cell("ethnicity", "01"), 3);

    // The monthly report: three new registrations, reconciling, at the school and its county,
    // whose parts (its schools) sum to it.
    let report = as_school
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("report")
        .into_inner();
    let school_report = report.report.expect("report");
    assert!(school_report.reconciles);
    assert_eq!(school_report.closing - school_report.opening, 3);
    assert!(
        school_report
            .additions
            .iter()
            .any(|k| k.kind == "new_registration" && k.students == 3),
        "{school_report:?}"
    );
    let mut as_county = federation
        .stats("35", Level::County, &county, Role::Operator)
        .await;
    let county_report = as_county
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("county report")
        .into_inner();
    assert!(county_report.parts_reconcile);
    assert!(
        county_report
            .parts
            .iter()
            .any(|p| p.unit == format!("school:{school}"))
    );

    // The county's report as a workbook (what `xuejictl stats report --output x.xlsx`
    // writes), read back: the month, the unit rows and the school's three registrations.
    let workbook =
        xueji_client::export::monthly_report_sheet(&county_report, xueji_sheets::Format::Xlsx)
            .expect("workbook");
    let mut rows = Vec::new();
    xueji_sheets::read_xlsx(std::io::Cursor::new(workbook), |row| {
        rows.push(row.cells);
        true
    })
    .expect("an XLSX workbook reads back");
    assert_eq!(rows[0][0], "学籍变动统计表");
    assert_eq!(rows[0][1], this_month());
    let heading = &rows[1];
    let column = |name: &str| heading.iter().position(|h| h == name).expect(name);
    // The form's fixed columns, in its order, whether or not anything moved.
    let fixed: Vec<String> = xueji_client::export::ADDITION_COLUMNS
        .iter()
        .map(|(_, h)| format!("增加:{h}"))
        .chain(
            xueji_client::export::REMOVAL_COLUMNS
                .iter()
                .map(|(_, h)| format!("减少:{h}")),
        )
        .collect();
    assert_eq!(
        heading[..3],
        ["单位", "单位名称", "期初人数"],
        "{heading:?}"
    );
    assert_eq!(heading[3..heading.len() - 2], fixed[..], "{heading:?}");
    let school_row = rows
        .iter()
        .find(|r| r[0] == format!("school:{school}"))
        .expect("the school's row");
    assert_eq!(school_row[column("增加:新生注册")], "3");
    assert_eq!(school_row[column("减少:退学")], "0", "a zero, not a gap");
    assert_eq!(school_row[column("平衡")], "是");
    // Each unit named as the form prints it: the county by the division codes, the school by
    // the province's school list.
    let school_name: String = sqlx::query_scalar(
        "SELECT record->'profile'->>'name' FROM schools_provincial.schools WHERE code = $1",
    )
    .bind(&school)
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap();
    assert_eq!(school_row[column("单位名称")], school_name);
    let county_row = rows
        .iter()
        .find(|r| r[0] == format!("county:{county}"))
        .expect("the county's row");
    assert_eq!(
        county_row[column("单位名称")],
        xueji_codes::Divisions::bundled()
            .known(&county)
            .unwrap()
            .name
    );

    // The data-quality lists: the older pupil is far from the age of the first grade, the
    // third lacks the guardian's phone.
    let lists = as_county
        .list_data_quality(st::ListDataQualityRequest::default())
        .await
        .expect("quality lists")
        .into_inner();
    assert_eq!(lists.age_grade_outliers.len(), 1, "{lists:?}");
    assert_eq!(lists.missing_key_fields.len(), 1, "{lists:?}");
    assert!(lists.age_grade_outliers[0].birth_date.starts_with("2016"));
    assert_ne!(
        lists.age_grade_outliers[0].registry_number,
        lists.missing_key_fields[0].registry_number
    );
    assert_eq!(
        lists.missing_key_fields[0].missing_fields,
        ["guardian.phone"]
    );
    assert_eq!(lists.age_grade_outliers[0].grade, 1);

    // Jurisdiction: another county does not see this school; a school not another's figures;
    // a provincial node does not serve the nation.
    let mut as_xiamen = federation
        .stats("35", Level::County, "350203", Role::Operator)
        .await;
    let refused = as_xiamen
        .get_counts(st::GetCountsRequest {
            unit: school.clone(),
            date: String::new(),
        })
        .await
        .expect_err("outside the county");
    assert_eq!(refused.code(), Code::NotFound);
    let refused = as_school
        .get_counts(st::GetCountsRequest {
            unit: county.clone(),
            date: String::new(),
        })
        .await
        .expect_err("a school sees its own figures only");
    assert_eq!(refused.code(), Code::NotFound);
    let bad = as_school
        .get_counts(st::GetCountsRequest {
            unit: "abc".into(),
            date: String::new(),
        })
        .await
        .expect_err("not a unit");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let mut as_province = federation
        .stats("35", Level::Province, "350000", Role::Operator)
        .await;
    let refused = as_province
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: "nation".into(),
            month: this_month(),
        })
        .await
        .expect_err("a province does not see the nation");
    assert_eq!(refused.code(), Code::NotFound);

    // The national node: Fujian's report arrives; the nation is the sum of the provinces.
    let mut ministry = federation
        .stats("national", Level::Ministry, "", Role::Operator)
        .await;
    let fujian = eventually(
        || {
            let mut client = ministry.clone();
            async move {
                client
                    .get_monthly_report(st::GetMonthlyReportRequest {
                        unit: "35".into(),
                        month: this_month(),
                    })
                    .await
                    .expect("Fujian at the national node")
                    .into_inner()
            }
        },
        |r| r.report.as_ref().is_some_and(|r| r.closing >= 3),
    )
    .await;
    assert!(fujian.parts_reconcile, "cities sum to Fujian");
    let nation = ministry
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("nation")
        .into_inner();
    let nation_report = nation.report.expect("report");
    assert_eq!(nation_report.unit, "nation");
    assert_eq!(
        nation_report.closing,
        nation.parts.iter().map(|p| p.closing).sum::<i64>(),
        "the nation is the sum of the provinces"
    );
    assert!(nation.parts_reconcile && nation_report.reconciles);

    // One province's figures cannot poison the nation (review M1): a count past any sane
    // bound, a report that does not reconcile and another province's unit are each refused,
    // naming the unit, and the nation's report still computes.
    let mut anhui = xueji_tests::relay::national_stats_as(&federation, "34").await;
    let row = |unit: &str, students: i64| st::AggregateRow {
        unit: unit.into(),
        month: this_month(),
        direction: "addition".into(),
        kind: "new_registration".into(),
        students,
    };
    for (rows, names) in [
        (
            vec![
                row("county:340102", i64::MAX),
                row("city:3401", 1),
                row("province:34", 1),
            ],
            "county:340102",
        ),
        (
            vec![
                row("province:34", 5),
                row("city:3401", 4),
                row("county:340102", 4),
            ],
            "province:34",
        ),
        (vec![row("county:350102", 1)], "350102"),
    ] {
        let refused = anhui
            .report_aggregates(st::ReportAggregatesRequest {
                province: "34".into(),
                feed_position: u64::MAX / 2,
                rows,
            })
            .await
            .expect_err("a poisoned report is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(names), "{refused:?}");
    }
    let after = ministry
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("the nation still computes")
        .into_inner();
    assert_eq!(after.report.expect("report").closing, nation_report.closing);
    let reports = ministry
        .list_province_reports(st::ListProvinceReportsRequest {})
        .await
        .expect("reports")
        .into_inner();
    assert!(
        reports
            .provinces
            .iter()
            .any(|p| p.province == "35" && p.rows > 0)
    );

    // Reconciliation: clean, then an injected row at the school is found at the school (its
    // rows against its breakdown counts) and at its county (its parts against it).
    let check = as_province
        .check_reconciliation(st::CheckReconciliationRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("check")
        .into_inner();
    assert!(check.mismatches.is_empty(), "{:?}", check.mismatches);
    assert!(check.units_checked >= 4);
    sqlx::query(
        "INSERT INTO stats.monthly_changes (unit, month, direction, kind, students)
         VALUES ($1, date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date,
                 'addition', 'transfer_in', 1)",
    )
    .bind(format!("school:{school}"))
    .execute(&federation.province("35").pool)
    .await
    .expect("injected");
    let check = as_province
        .check_reconciliation(st::CheckReconciliationRequest {
            unit: String::new(),
            month: this_month(),
        })
        .await
        .expect("check")
        .into_inner();
    let units: Vec<&str> = check.mismatches.iter().map(|m| m.unit.as_str()).collect();
    assert!(
        units.contains(&format!("school:{school}").as_str()),
        "{units:?}"
    );
    assert!(
        units.contains(&format!("county:{county}").as_str()),
        "{units:?}"
    );
}

/// Every kind the statistics name, as an addition or a removal, has its column in the
/// 学籍变动统计表 the CLI and the exports print (a kind without one would only show under its
/// English name, after the form's columns).
#[test]
fn every_kind_of_the_statistics_has_its_column_in_the_form() {
    for kind in xueji_stats::domain::ChangeKind::ALL {
        assert!(
            xueji_client::export::ADDITION_COLUMNS
                .iter()
                .any(|(name, _)| *name == kind.addition()),
            "{kind:?} adds as {}",
            kind.addition()
        );
        assert!(
            xueji_client::export::REMOVAL_COLUMNS
                .iter()
                .any(|(name, _)| *name == kind.removal()),
            "{kind:?} removes as {}",
            kind.removal()
        );
    }
}

/// An authority asking for the report of an empty school of its area gets a report of zeros,
/// as the 学籍变动统计表 has a row for every school; a school outside the area is not found.
#[tokio::test]
async fn an_empty_school_of_the_county_reports_zeros() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let mut as_county = federation
        .stats("35", Level::County, &county, Role::Operator)
        .await;
    let report = as_county
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: school.clone(),
            month: this_month(),
        })
        .await
        .expect("an empty school's report")
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.unit, format!("school:{school}"));
    assert_eq!((report.opening, report.closing), (0, 0));
    assert!(
        report.additions.iter().all(|k| k.students == 0)
            && report.removals.iter().all(|k| k.students == 0),
        "{report:?}"
    );
    let mut elsewhere = None;
    for code in federation.primary_schools("35").await {
        if federation.school_county("35", &code).await != county {
            elsewhere = Some(code);
            break;
        }
    }
    let elsewhere = elsewhere.expect("a school of another county");
    let hidden = as_county
        .get_monthly_report(st::GetMonthlyReportRequest {
            unit: elsewhere,
            month: this_month(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
}
