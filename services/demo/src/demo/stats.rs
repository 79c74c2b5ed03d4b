//! The demo's statistics: Fujian's monthly change report from its own node (built from
//! identity's change feed), then the nation's from the national node (the sum of the
//! provinces' reported aggregates), after the transfers and the school year's turnover.

use std::time::Duration;

use chrono::Datelike;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_proto::stats::v1 as pb;

use super::{DemoKeys, mint, step};
use xueji_client::{StatsClient, stats_client};

/// What the demo's reports showed.
#[derive(Debug, Default)]
pub(super) struct Reports {
    /// Fujian's report reconciled and its cities summed to it.
    pub fujian_reconciles: bool,
    /// The nation's closing count equals the sum of the provinces'.
    pub nation_is_sum_of_provinces: bool,
}

fn print(answer: &pb::GetMonthlyReportResponse) {
    let (heading, rows) = xueji_client::export::report_rows(answer);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(heading);
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

async fn report(
    client: &mut StatsClient,
    unit: &str,
    month: &str,
) -> anyhow::Result<pb::GetMonthlyReportResponse> {
    Ok(client
        .get_monthly_report(pb::GetMonthlyReportRequest {
            unit: unit.into(),
            month: month.into(),
        })
        .await?
        .into_inner())
}

pub(crate) async fn monthly_reports(
    fujian_address: &str,
    fujian_pki: &std::path::Path,
    national_address: &str,
    national_pki: &std::path::Path,
    keys: &DemoKeys,
) -> anyhow::Result<Reports> {
    let today = xueji_calendar::china_today(chrono::Utc::now());
    let month = format!("{:04}-{:02}", today.year(), today.month());
    step(&format!(
        "Statistics: Fujian's monthly change report for {month}, from its change feed"
    ));
    let token = mint(
        keys,
        "fujian-stats",
        Level::Province,
        "350000",
        Role::Operator,
    )?;
    let mut fujian = stats_client(fujian_address, fujian_pki, &token).await?;
    // The feed is read in the background: wait until a second read shows nothing new.
    let mut fujian_report = report(&mut fujian, "", &month).await?;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let again = report(&mut fujian, "", &month).await?;
        let settled = again.report.as_ref().map(|r| r.feed_position)
            == fujian_report.report.as_ref().map(|r| r.feed_position);
        fujian_report = again;
        if settled {
            break;
        }
    }
    print(&fujian_report);
    let fujian_closing = fujian_report.report.as_ref().map_or(0, |r| r.closing);

    step("The nation's report at the national node: the sum of the provinces' aggregates");
    let ministry = mint(keys, "ministry-stats", Level::Ministry, "", Role::Operator)?;
    let mut national = stats_client(national_address, national_pki, &ministry).await?;
    let mut nation = report(&mut national, "", &month).await?;
    for _ in 0..50 {
        let fujian_part = nation
            .parts
            .iter()
            .find(|p| p.unit == "province:35")
            .map(|p| p.closing);
        if fujian_part == Some(fujian_closing) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        nation = report(&mut national, "", &month).await?;
    }
    print(&nation);
    let reports = national
        .list_province_reports(pb::ListProvinceReportsRequest {})
        .await?
        .into_inner();
    for province in &reports.provinces {
        println!(
            "  province {} last reported at {} (feed position {}, {} rows)",
            province.province, province.reported_at, province.feed_position, province.rows
        );
    }
    let nation_closing = nation.report.as_ref().map_or(-1, |r| r.closing);
    Ok(Reports {
        fujian_reconciles: fujian_report.parts_reconcile
            && fujian_report.report.as_ref().is_some_and(|r| r.reconciles),
        nation_is_sum_of_provinces: nation.parts_reconcile
            && nation_closing == nation.parts.iter().map(|p| p.closing).sum::<i64>(),
    })
}
