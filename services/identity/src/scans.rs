//! Data-quality scans over the records already stored: a province's data arrives in bulk
//! (migration from its previous system) and its rules change, so what registration would refuse
//! today may be on file. A scan turns each such record into a problem record, to be corrected
//! or deleted through the workflow.

use crate::{
    IdentityError,
    domain::invalid_id_number,
    store::{Actor, Store},
};

/// Records read per batch.
const SCAN_BATCH: i64 = 10_000;

/// What a scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScanReport {
    /// Records with a resident ID number checked.
    pub checked: u64,
    /// Invalid numbers found that were not problems yet.
    pub found: u64,
    /// Invalid-ID problems open after the scan.
    pub open: u64,
}

/// Checks every live record's resident ID number; each invalid one becomes an
/// `invalid_id_number` problem (once). Audited as one entry with its counts.
pub(crate) async fn scan_id_numbers(
    store: &Store,
    actor: Actor<'_>,
) -> Result<ScanReport, IdentityError> {
    let mut report = ScanReport::default();
    let mut after = 0;
    loop {
        let batch = store.stored_id_numbers(after, SCAN_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.student_id;
        report.checked += batch.len() as u64;
        let invalid: Vec<(i64, String)> = batch
            .iter()
            .filter_map(|stored| {
                invalid_id_number(&stored.id_number).map(|why| (stored.student_id, why))
            })
            .collect();
        if !invalid.is_empty() {
            report.found += store.add_id_number_problems(&invalid).await?;
        }
    }
    report.open = store
        .finish_id_number_scan(report.checked, report.found, actor)
        .await?;
    tracing::info!(
        checked = report.checked,
        found = report.found,
        open = report.open,
        "resident ID numbers scanned"
    );
    Ok(report)
}
