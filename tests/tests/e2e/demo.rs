//! The README's main job, run in-process: a federation (national node, Fujian, Anhui) that must
//! register the sample, refuse the bad row, approve everything else through the national
//! duplicate check, flag the duplicate pair, catch a cross-province duplicate, let the ministry
//! find a student through the national node, carry a new school from its county's application to
//! a code in the province's replica, and leave intact audit chains.

use xueji_demo::demo::{self, DemoOptions};

#[tokio::test]
async fn the_demo_runs_from_nothing() {
    let summary = demo::run(DemoOptions {
        wait: false,
        dir: None,
    })
    .await
    .expect("demo runs");
    assert_eq!(summary.registered, 45);
    assert_eq!(summary.refused, 1);
    assert_eq!(summary.approved, 45);
    assert_eq!(summary.problems, 2);
    assert!(
        summary.replicated_schools > 100,
        "{}",
        summary.replicated_schools
    );
    assert!(
        summary.new_school_code.starts_with("2135"),
        "{}",
        summary.new_school_code
    );
    assert!(summary.cross_province_refused);
    assert_eq!(
        (summary.intake_imported, summary.intake_refused),
        (4, 2),
        "the intake spreadsheet: four pupils in, two rows in the error report"
    );
    assert!(summary.ministry_found);
    assert!(summary.audit_intact);
    assert!(summary.transfer_completed);
    assert!(summary.transfer_across_completed);
    assert!(
        summary.fujian_report_reconciles,
        "Fujian's monthly report reconciles"
    );
    assert!(
        summary.nation_is_sum_of_provinces,
        "the nation's report is the sum of the provinces'"
    );
    assert!(summary.transfer_on_timeout_completed);
    assert!(summary.suspended, "the suspension went through");
    assert!(
        summary.corrected,
        "the name correction went through and shows in the history"
    );
    assert!(
        summary.graduated >= 1 && summary.promoted >= 1,
        "{summary:?}"
    );
    assert!(summary.continued_with_same_number);
}
