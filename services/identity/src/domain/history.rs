//! A student's history (修改留痕): every value each field has had, with who set it, when, why
//! and the decision that approved it, assembled from the registration, the numbers issued, the
//! enrollments and the approved requests. Pure.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::{
    correction::{FieldChange, KeyField, KeyValues},
    details::DETAIL_FIELDS,
    provincial_fields::CORRECTED_PREFIX,
};

/// One value a field had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub field: String,
    pub value: String,
    pub since: DateTime<Utc>,
    pub changed_by: String,
    pub reason: String,
    pub approved_by: String,
    pub change_id: Option<Uuid>,
}

/// The registration: who registered the record, when, and who approved it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub by: String,
    pub at: DateTime<Utc>,
    /// The first enrollment's approval: who, when.
    pub approved: Option<(String, DateTime<Utc>)>,
    /// The key fields as they stand now.
    pub current: KeyValues,
    /// The province's own fields as they stand now.
    pub provincial: BTreeMap<String, String>,
}

/// A number the student was given.
#[derive(Debug, Clone)]
pub struct IssuedNumber {
    pub number: String,
    pub issued_at: DateTime<Utc>,
}

/// One enrollment, as it stands.
#[derive(Debug, Clone)]
pub struct EnrollmentTrace {
    pub school_code: String,
    pub began: DateTime<Utc>,
    pub entry_route: String,
    pub status: String,
    pub grade: u32,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The transfer that opened it, if one did.
    pub transfer: Option<TransferTrace>,
}

/// The transfer that opened an enrollment: its id, the state a pupil who had left school was
/// picked up from, and who decided its steps.
#[derive(Debug, Clone)]
pub struct TransferTrace {
    pub task: Uuid,
    pub picked_up_from: Option<String>,
    pub deciders: Vec<String>,
}

/// An approved request (a status change or a correction).
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    pub id: Uuid,
    pub kind: String,
    pub reason: String,
    pub requested_by: String,
    /// The last approval: who, when.
    pub approved_by: String,
    pub approved_at: DateTime<Utc>,
    pub corrections: Vec<FieldChange>,
    /// A status change's state and grade after it.
    pub status_after: Option<(String, i64)>,
    /// A correction's new registry number, when it gave one.
    pub number_after: Option<String>,
}

/// The kind of an [`ApprovedRequest`] that is an update of non-key fields: made by the school,
/// approved by nobody.
pub const DETAIL_UPDATE: &str = "detail_update";

fn approval(by: &str, at: DateTime<Utc>) -> String {
    format!(
        "{by} at {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Every value of every field, grouped by field, oldest first within a field.
pub fn assemble(
    registered: &Registered,
    numbers: &[IssuedNumber],
    enrollments: &[EnrollmentTrace],
    approved: &[ApprovedRequest],
) -> Vec<HistoryEntry> {
    let registration_approval = registered
        .approved
        .as_ref()
        .map(|(by, at)| approval(by, *at))
        .unwrap_or_default();
    let mut entries = Vec::new();
    for field in KeyField::ALL {
        let current = registered.current.value(field);
        field_history(
            &mut entries,
            registered,
            &registration_approval,
            approved,
            field.as_str(),
            current,
        );
    }
    // The non-key national fields an update changed (the others keep their registered value).
    for field in DETAIL_FIELDS {
        let touched = approved
            .iter()
            .flat_map(|r| &r.corrections)
            .any(|c| c.field == field);
        if touched {
            let current = approved
                .iter()
                .flat_map(|r| &r.corrections)
                .rfind(|c| c.field == field)
                .map(|c| c.to.clone())
                .unwrap_or_default();
            field_history(
                &mut entries,
                registered,
                &registration_approval,
                approved,
                field,
                current,
            );
        }
    }
    // The province's own fields: every one the record holds or a correction touched.
    let mut provincial: Vec<String> = registered.provincial.keys().cloned().collect();
    for request in approved {
        for change in &request.corrections {
            if let Some(name) = change.field.strip_prefix(CORRECTED_PREFIX)
                && !provincial.iter().any(|known| known == name)
            {
                provincial.push(name.to_owned());
            }
        }
    }
    provincial.sort();
    for name in provincial {
        let field = format!("{CORRECTED_PREFIX}{name}");
        let current = registered
            .provincial
            .get(&name)
            .cloned()
            .unwrap_or_default();
        field_history(
            &mut entries,
            registered,
            &registration_approval,
            approved,
            &field,
            current,
        );
    }
    for (index, issued) in numbers.iter().enumerate() {
        let by_correction = approved
            .iter()
            .find(|r| r.number_after.as_deref() == Some(issued.number.as_str()));
        entries.push(match by_correction {
            Some(request) => HistoryEntry {
                field: "registry_number".into(),
                value: issued.number.clone(),
                since: issued.issued_at,
                changed_by: request.requested_by.clone(),
                reason: format!("correction of the ID number: {}", request.reason),
                approved_by: approval(&request.approved_by, request.approved_at),
                change_id: Some(request.id),
            },
            None => HistoryEntry {
                field: "registry_number".into(),
                value: issued.number.clone(),
                since: issued.issued_at,
                changed_by: registered.by.clone(),
                reason: if index == 0 {
                    "registration (temporary number)".into()
                } else {
                    "issued when the registration was approved".into()
                },
                approved_by: if index == 0 {
                    String::new()
                } else {
                    registration_approval.clone()
                },
                change_id: None,
            },
        });
    }
    // The record was in school from its approval (the state before any change).
    if let Some((by, at)) = &registered.approved {
        entries.push(HistoryEntry {
            field: "status".into(),
            value: "active".into(),
            since: *at,
            changed_by: registered.by.clone(),
            reason: "registration approved".into(),
            approved_by: approval(by, *at),
            change_id: None,
        });
    }
    for enrollment in enrollments {
        let approved_by = match (&enrollment.decided_by, enrollment.decided_at) {
            (Some(by), Some(at)) => approval(by, at),
            _ => String::new(),
        };
        let Some(transfer) = &enrollment.transfer else {
            entries.push(HistoryEntry {
                field: "school".into(),
                value: enrollment.school_code.clone(),
                since: enrollment.began,
                changed_by: registered.by.clone(),
                reason: format!("enrollment ({})", enrollment.entry_route),
                approved_by,
                change_id: None,
            });
            continue;
        };
        // A move names its transfer and the people who decided it, not the service that
        // applied it; a pick-up says what the pupil came back from.
        let reason = match &transfer.picked_up_from {
            Some(state) => format!(
                "transfer {}: picked up from {state} (劝返复学, 接收)",
                transfer.task
            ),
            None => format!("transfer {}", transfer.task),
        };
        let changed_by = transfer
            .deciders
            .first()
            .cloned()
            .or_else(|| enrollment.decided_by.clone())
            .unwrap_or_default();
        let approved_by = if transfer.deciders.is_empty() {
            approved_by
        } else {
            transfer.deciders.join("; ")
        };
        for (field, value) in [
            ("school", enrollment.school_code.clone()),
            ("status", "active".to_owned()),
        ] {
            entries.push(HistoryEntry {
                field: field.into(),
                value,
                since: enrollment.began,
                changed_by: changed_by.clone(),
                reason: reason.clone(),
                approved_by: approved_by.clone(),
                change_id: Some(transfer.task),
            });
        }
    }
    for request in approved {
        if let Some((status, grade)) = &request.status_after {
            for (field, value) in [("status", status.clone()), ("grade", grade.to_string())] {
                entries.push(HistoryEntry {
                    field: field.into(),
                    value,
                    since: request.approved_at,
                    changed_by: request.requested_by.clone(),
                    reason: format!("{}: {}", request.kind, request.reason),
                    approved_by: approval(&request.approved_by, request.approved_at),
                    change_id: Some(request.id),
                });
            }
        }
    }
    // The record as it stands (promotions and graduations of the school year's cycle included).
    if let Some(current) = enrollments.last() {
        for (field, value) in [
            ("status", current.status.clone()),
            ("grade", current.grade.to_string()),
        ] {
            let last = entries
                .iter()
                .filter(|e| e.field == field)
                .max_by_key(|e| e.since);
            if last.is_none_or(|e| e.value != value) {
                entries.push(HistoryEntry {
                    field: field.into(),
                    value,
                    since: current.decided_at.unwrap_or(current.began),
                    changed_by: "system".into(),
                    reason: "as the record stands now (registration, approval or the school \
                             year's cycle)"
                        .into(),
                    approved_by: String::new(),
                    change_id: None,
                });
            }
        }
    }
    let order = |field: &str| {
        [
            "name",
            "gender",
            "birth_date",
            "id_number",
            "photo",
            "registry_number",
            "school",
            "status",
            "grade",
        ]
        .iter()
        .position(|f| *f == field)
        .unwrap_or(usize::MAX)
    };
    entries.sort_by(|a, b| {
        order(&a.field)
            .cmp(&order(&b.field))
            .then(a.since.cmp(&b.since))
    });
    entries
}

/// The values of one field, oldest first: the registered one (unless empty), then each
/// approved correction's.
fn field_history(
    entries: &mut Vec<HistoryEntry>,
    registered: &Registered,
    registration_approval: &str,
    approved: &[ApprovedRequest],
    name: &str,
    current: String,
) {
    let changes: Vec<(&ApprovedRequest, &FieldChange)> = approved
        .iter()
        .flat_map(|request| {
            request
                .corrections
                .iter()
                .filter(move |c| c.field == name)
                .map(move |c| (request, c))
        })
        .collect();
    let first = match changes.first() {
        Some((_, change)) => change.from.clone(),
        None => current,
    };
    if !first.is_empty() {
        entries.push(HistoryEntry {
            field: name.to_owned(),
            value: first,
            since: registered.at,
            changed_by: registered.by.clone(),
            reason: "registration".into(),
            approved_by: registration_approval.to_owned(),
            change_id: None,
        });
    }
    for (request, change) in changes {
        let (reason, approved_by) = if request.kind == DETAIL_UPDATE {
            (
                format!("update by the school (non-key field): {}", request.reason),
                String::new(),
            )
        } else {
            (
                format!("correction: {}", request.reason),
                approval(&request.approved_by, request.approved_at),
            )
        };
        entries.push(HistoryEntry {
            field: name.to_owned(),
            value: change.to.clone(),
            since: request.approved_at,
            changed_by: request.requested_by.clone(),
            reason,
            approved_by,
            change_id: Some(request.id),
        });
    }
}
