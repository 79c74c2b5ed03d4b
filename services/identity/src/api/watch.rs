//! The authority's watch lists over gRPC (thin: decode, scope, read, encode). The lists sit on
//! the school-year service, whose runner knows the province's deadlines and the node's clock.

use xueji_auth::Caller;
use xueji_proto::identity::v1 as pb;

use super::{convert, school_year::SchoolYearApi};
use crate::{
    IdentityError,
    domain::{
        EnrollmentStatus,
        watch::{self, WatchList, WatchWindow},
    },
    store::{
        StudentRecord,
        watch::{WatchRow, WatchScope},
    },
};

/// Entries a page holds by default and at most.
const WATCH_PAGE: u32 = 100;
const MAX_WATCH_PAGE: u32 = 500;

fn list_from_wire(list: pb::WatchList) -> Option<WatchList> {
    Some(match list {
        pb::WatchList::Unspecified => return None,
        pb::WatchList::SuspensionsPastTerm => WatchList::SuspensionsPastTerm,
        pb::WatchList::PrimaryGraduatesUnplaced => WatchList::PrimaryGraduatesUnplaced,
        pb::WatchList::LateRegistrations => WatchList::LateRegistrations,
        pb::WatchList::ProblemsOpenLate => WatchList::ProblemsOpenLate,
    })
}

/// Why a record is on `list`, in words.
fn detail(list: WatchList, window: &WatchWindow, row: &WatchRow, record: &StudentRecord) -> String {
    match (list, row.since) {
        (WatchList::SuspensionsPastTerm, Some(until)) => format!(
            "suspended until {until}: {} days past the term (休学期满未复学)",
            (window.deadline - until).num_days()
        ),
        (WatchList::SuspensionsPastTerm, None) => {
            "suspended with no known term (休学期限不明)".to_owned()
        }
        (WatchList::PrimaryGraduatesUnplaced, since) => format!(
            "finished primary school{} and holds no junior-school enrollment after {} (小升初未升学)",
            since.map(|d| format!(" on {d}")).unwrap_or_default(),
            window.deadline
        ),
        (WatchList::LateRegistrations, since) => {
            let day = since.map(|d| d.to_string()).unwrap_or_default();
            if since.is_some_and(|d| d > window.deadline) {
                format!(
                    "registered on {day}, after the intake deadline {}",
                    window.deadline
                )
            } else {
                format!(
                    "registered on {day} and still {} after the intake deadline {}",
                    match record.status {
                        EnrollmentStatus::AwaitingNationalCheck => "awaiting the national check",
                        _ => "waiting for approval",
                    },
                    window.deadline
                )
            }
        }
        (WatchList::ProblemsOpenLate, since) => format!(
            "{} found{} and still open after the problems deadline {}",
            row.kinds.replace(',', ", "),
            since.map(|d| format!(" on {d}")).unwrap_or_default(),
            window.deadline
        ),
    }
}

impl SchoolYearApi {
    pub(super) async fn watch_list(
        &self,
        caller: &Caller,
        request: pb::ListWatchListRequest,
    ) -> Result<pb::ListWatchListResponse, IdentityError> {
        let list = list_from_wire(request.list()).ok_or_else(|| {
            IdentityError::invalid(
                "list",
                "must name a list: SUSPENSIONS_PAST_TERM, PRIMARY_GRADUATES_UNPLACED, \
                 LATE_REGISTRATIONS or PROBLEMS_OPEN_LATE",
            )
        })?;
        let limit = match request.page_size {
            0 => WATCH_PAGE,
            n if n <= MAX_WATCH_PAGE => n,
            _ => {
                return Err(IdentityError::invalid(
                    "page_size",
                    format!("must be at most {MAX_WATCH_PAGE}"),
                ));
            }
        };
        let after = match request.page_token.trim() {
            "" => 0,
            token => token.parse::<i64>().map_err(|_| {
                IdentityError::invalid("page_token", "is not a token this service issued")
            })?,
        };
        let identity = self.identity();
        let (counties, school) = identity
            .schools
            .scope_of(&identity.store, caller, &request.scope, "scope")
            .await?;
        let window = watch::window(list, &self.runner().dates(), self.runner().today());
        let scope = WatchScope {
            counties: &counties,
            school: school.as_deref(),
            after,
            limit: i64::from(limit) + 1,
        };
        let store = &identity.store;
        let mut rows = match list {
            WatchList::SuspensionsPastTerm => store.suspensions_past_term(&scope, &window).await?,
            WatchList::PrimaryGraduatesUnplaced => {
                store.primary_graduates_unplaced(&scope, &window).await?
            }
            WatchList::LateRegistrations => store.late_registrations(&scope, &window).await?,
            WatchList::ProblemsOpenLate => store.problems_open_late(&scope, &window).await?,
        };
        let total = rows.first().map_or(0, |row| row.total.max(0) as u64);
        let next_page_token = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|row| row.student_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<i64> = rows.iter().map(|row| row.student_id).collect();
        let mut records: std::collections::BTreeMap<i64, StudentRecord> = store
            .students(&ids)
            .await?
            .into_iter()
            .map(|record| (record.id, record))
            .collect();
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = records.remove(&row.student_id).ok_or_else(|| {
                IdentityError::Internal(format!(
                    "student {} of a watch list has no current record",
                    row.student_id
                ))
            })?;
            entries.push(pb::WatchEntry {
                since: row.since.map(|d| d.to_string()).unwrap_or_default(),
                detail: detail(list, &window, row, &record),
                student: Some(convert::student(record)),
            });
        }
        Ok(pb::ListWatchListResponse {
            entries,
            total,
            deadline: window.deadline.to_string(),
            next_page_token,
        })
    }
}
