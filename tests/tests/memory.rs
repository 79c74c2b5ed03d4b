//! Hostile files against a running federation, with the process's peak memory measured while
//! each is read. A binary of its own: the peak is the process's, and no other test's
//! federation may run beside it (the end-to-end suite runs its tests side by side).

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use xueji_auth::Level;
use xueji_client::ImportKind;
use xueji_proto::identity::v1 as pb;
use xueji_tests::{
    federation::Federation,
    imports::{HEADINGS, import_as, students_at},
};

/// Reading a hostile workbook may add at most this much to the process's peak memory (KiB):
/// the README's bound for one import. The whole federation runs in this process, so the figure
/// carries its background work too.
const IMPORT_MEMORY_BOUND_KIB: u64 = 256 * 1024;

/// Hostile files, as a school operator could send them: each fails its job with the reason, in
/// the clerk's terms, nothing is written, and the node's peak memory stays within the bound
/// while it reads them (the review's 34 KB workbook took a node to 2.66 GB).
#[tokio::test]
async fn hostile_files_fail_their_job_in_bounded_memory_and_write_nothing() {
    if !xueji_tests::slow_suite_runs("the hostile files' peak memory") {
        return;
    }
    use xueji_tests::hostile;
    let federation = Federation::start().await;
    let gulou = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &gulou).await;
    let before = students_at(&federation, &gulou).await;

    let nul = {
        let mut text = HEADINGS.join(",");
        text.push_str("\n\0\0,\0\n");
        text.into_bytes()
    };
    let long_row = {
        let mut text = HEADINGS.join(",");
        text.push('\n');
        text.push_str(&",".repeat(16));
        text.push_str(&"长".repeat(10_000));
        text.push('\n');
        text.into_bytes()
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "a zip bomb (shared strings of 1.1 GB)",
            "bomb.xlsx",
            hostile::bytes_of(hostile::shared_strings_bomb()),
            "decompresses to more than 256 MiB",
        ),
        (
            "one 32 MiB shared string",
            "giant.xlsx",
            hostile::bytes_of(hostile::giant_string()),
            "longer than 1024 KiB",
        ),
        (
            "a row of 1,000,000 columns",
            "wide.xlsx",
            hostile::bytes_of(hostile::million_columns(&HEADINGS)),
            "at most 256 columns",
        ),
        ("a CSV with NUL bytes", "nul.csv", nul, "NUL byte"),
        (
            "a CSV row of 30 KB",
            "long.csv",
            long_row,
            "more than 16 KiB",
        ),
    ];
    for (what, name, bytes, reason) in cases {
        let (job, grew) = hostile::peak_growth_kib(import_as(
            &federation,
            "35",
            Level::County,
            &county,
            ImportKind::Intake,
            name,
            &bytes,
        ))
        .await;
        let job = job.unwrap_or_else(|status| panic!("{what}: answered {status:?}"));
        println!(
            "{what} ({} bytes): job {:?}, peak memory +{grew} KiB: {}",
            bytes.len(),
            pb::ImportJobState::try_from(job.state),
            job.failure
        );
        assert_eq!(
            job.state,
            pb::ImportJobState::Failed as i32,
            "{what}: {job:?}"
        );
        assert!(job.failure.contains(reason), "{what}: {}", job.failure);
        assert!(
            grew < IMPORT_MEMORY_BOUND_KIB,
            "{what}: the peak grew {grew} KiB"
        );
    }
    assert_eq!(students_at(&federation, &gulou).await, before);
}
