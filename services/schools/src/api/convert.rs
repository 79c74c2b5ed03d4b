//! Between the wire (prost messages) and the domain. Decoding only shapes the input; the domain
//! checks it.

use xueji_proto::schools::v1 as pb;

use crate::{
    SchoolsError,
    domain::{
        ApplicationStatus, OperatorType, Profile, ProfileInput, SchoolRecord, SchoolStatus, Stage,
        StageOffered,
    },
    store::{
        national::{Change, Decision, LineageLink, NationalApplication, Publication},
        provincial::Application,
    },
};

pub fn stage_input(stages: &[pb::StageOffered]) -> Vec<(Option<Stage>, u32)> {
    stages
        .iter()
        .map(|s| {
            let stage = match pb::Stage::try_from(s.stage) {
                Ok(pb::Stage::Primary) => Some(Stage::Primary),
                Ok(pb::Stage::Junior) => Some(Stage::Junior),
                Ok(pb::Stage::Senior) => Some(Stage::Senior),
                Ok(pb::Stage::Special) => Some(Stage::Special),
                _ => None,
            };
            (stage, s.years)
        })
        .collect()
}

pub fn profile_input(profile: Option<pb::SchoolProfile>) -> ProfileInput {
    let profile = profile.unwrap_or_default();
    ProfileInput {
        operator_type: match pb::OperatorType::try_from(profile.operator_type) {
            Ok(pb::OperatorType::Public) => Some(OperatorType::Public),
            Ok(pb::OperatorType::Private) => Some(OperatorType::Private),
            _ => None,
        },
        stages: stage_input(&profile.stages),
        name: profile.name,
        category: profile.category,
        division: profile.division,
        registry_authority: profile.registry_authority,
        address: profile.address,
        township: profile.township,
    }
}

fn stage(stage: Stage) -> pb::Stage {
    match stage {
        Stage::Primary => pb::Stage::Primary,
        Stage::Junior => pb::Stage::Junior,
        Stage::Senior => pb::Stage::Senior,
        Stage::Special => pb::Stage::Special,
    }
}

pub fn stages(stages: &[StageOffered]) -> Vec<pb::StageOffered> {
    stages
        .iter()
        .map(|s| pb::StageOffered {
            stage: stage(s.stage) as i32,
            years: s.years,
        })
        .collect()
}

pub fn profile(profile: &Profile) -> pb::SchoolProfile {
    pb::SchoolProfile {
        name: profile.name.clone(),
        category: profile.category.digits(),
        stages: stages(&profile.stages),
        division: profile.division.to_string(),
        registry_authority: profile.registry_authority.to_string(),
        operator_type: match profile.operator_type {
            OperatorType::Public => pb::OperatorType::Public,
            OperatorType::Private => pb::OperatorType::Private,
        } as i32,
        address: profile.address.clone(),
        township: profile.township.clone().unwrap_or_default(),
    }
}

pub fn school(record: &SchoolRecord, published_in: i64) -> pb::School {
    pb::School {
        code: record.code.to_string(),
        profile: Some(profile(&record.profile)),
        status: match record.status {
            SchoolStatus::Open => pb::SchoolStatus::Open,
            SchoolStatus::Closed => pb::SchoolStatus::Closed,
            SchoolStatus::Voided => pb::SchoolStatus::Voided,
        } as i32,
        open_from: record.open_from.to_string(),
        open_until: record.open_until.map(|d| d.to_string()).unwrap_or_default(),
        former_names: record
            .former_names
            .iter()
            .map(|f| pb::NameChange {
                name: f.name.clone(),
                effective_date: f.replaced_on.to_string(),
            })
            .collect(),
        successors: record.successors.iter().map(|c| c.to_string()).collect(),
        published_in: published_in.max(0) as u64,
    }
}

pub fn application_status(status: ApplicationStatus) -> pb::ApplicationStatus {
    match status {
        ApplicationStatus::Filed => pb::ApplicationStatus::Filed,
        ApplicationStatus::CountyEndorsed => pb::ApplicationStatus::CountyEndorsed,
        ApplicationStatus::CityEndorsed => pb::ApplicationStatus::CityEndorsed,
        ApplicationStatus::ProvinceEndorsed => pb::ApplicationStatus::ProvinceEndorsed,
        ApplicationStatus::Submitted => pb::ApplicationStatus::Submitted,
        ApplicationStatus::Approved => pb::ApplicationStatus::Approved,
        ApplicationStatus::Rejected => pb::ApplicationStatus::Rejected,
        ApplicationStatus::Returned => pb::ApplicationStatus::Returned,
    }
}

/// The filter of a list request: `None` for "every status".
pub fn status_filter(status: i32) -> Result<Option<ApplicationStatus>, SchoolsError> {
    Ok(match pb::ApplicationStatus::try_from(status) {
        Ok(pb::ApplicationStatus::Unspecified) => None,
        Ok(pb::ApplicationStatus::Filed) => Some(ApplicationStatus::Filed),
        Ok(pb::ApplicationStatus::CountyEndorsed) => Some(ApplicationStatus::CountyEndorsed),
        Ok(pb::ApplicationStatus::CityEndorsed) => Some(ApplicationStatus::CityEndorsed),
        Ok(pb::ApplicationStatus::ProvinceEndorsed) => Some(ApplicationStatus::ProvinceEndorsed),
        Ok(pb::ApplicationStatus::Submitted) => Some(ApplicationStatus::Submitted),
        Ok(pb::ApplicationStatus::Approved) => Some(ApplicationStatus::Approved),
        Ok(pb::ApplicationStatus::Rejected) => Some(ApplicationStatus::Rejected),
        Ok(pb::ApplicationStatus::Returned) => Some(ApplicationStatus::Returned),
        Err(_) => return Err(SchoolsError::invalid("status", "is not a known status")),
    })
}

pub fn application(application: &Application) -> pb::Application {
    pb::Application {
        id: application.id.clone(),
        profile: Some(profile(&application.profile)),
        open_from: application.open_from.to_string(),
        status: application_status(application.status) as i32,
        steps: application
            .steps
            .iter()
            .map(|s| pb::ApplicationStep {
                action: s.action.clone(),
                actor: s.actor.clone(),
                reason: s.reason.clone(),
                at: s.at.to_rfc3339(),
            })
            .collect(),
        code: application.code.clone().unwrap_or_default(),
        filed_by: application.filed_by.clone(),
    }
}

fn national_status(status: &str) -> pb::ApplicationStatus {
    match status {
        "approved" => pb::ApplicationStatus::Approved,
        "rejected" => pb::ApplicationStatus::Rejected,
        _ => pb::ApplicationStatus::Submitted,
    }
}

pub fn national_application(application: &NationalApplication) -> pb::Application {
    pb::Application {
        id: application.id.clone(),
        profile: Some(profile(&application.profile)),
        open_from: application.open_from.to_string(),
        status: national_status(&application.status) as i32,
        steps: application
            .reason
            .iter()
            .map(|reason| pb::ApplicationStep {
                action: application.status.clone(),
                actor: "national".into(),
                reason: reason.clone(),
                at: String::new(),
            })
            .collect(),
        code: application.code.clone().unwrap_or_default(),
        filed_by: application.filed_by.clone(),
    }
}

pub fn decision(decision: &Decision) -> pb::Decision {
    pb::Decision {
        cursor: decision.cursor.max(0) as u64,
        application_id: decision.application_id.clone(),
        status: national_status(&decision.status) as i32,
        code: decision.code.clone().unwrap_or_default(),
        reason: decision.reason.clone().unwrap_or_default(),
    }
}

pub fn lineage(link: &LineageLink) -> pb::LineageLink {
    pb::LineageLink {
        predecessor: link.predecessor.clone(),
        successor: link.successor.clone(),
        kind: match link.kind.as_str() {
            "merge" => pb::LineageKind::Merge,
            "category_change" => pb::LineageKind::CategoryChange,
            _ => pb::LineageKind::Unspecified,
        } as i32,
        effective_date: link.effective_date.to_string(),
    }
}

pub fn change(change: &Change) -> pb::Change {
    pb::Change {
        version: change.version.max(0) as u64,
        kind: match change.kind.as_str() {
            "added" => pb::ChangeKind::Added,
            "renamed" => pb::ChangeKind::Renamed,
            "merged" => pb::ChangeKind::Merged,
            "voided" => pb::ChangeKind::Voided,
            "reopened" => pb::ChangeKind::Reopened,
            _ => pb::ChangeKind::Unspecified,
        } as i32,
        code: change.code.clone(),
        school: Some(school(&change.school, change.version)),
        predecessors: change.predecessors.clone(),
        effective_date: change.effective_date.to_string(),
        reason: change.reason.clone(),
        change_id: change.id.max(0) as u64,
    }
}

pub fn publication(publication: &Publication) -> pb::Publication {
    pb::Publication {
        version: publication.version.max(0) as u64,
        published_at: publication.published_at.to_rfc3339(),
        note: publication.note.clone(),
        changes: publication.changes.iter().map(change).collect(),
        complete: publication.complete,
    }
}

/// A publication as received from the national authority, for the replica.
pub fn received_publication(publication: pb::Publication) -> Result<Publication, SchoolsError> {
    let bad = |what: String| {
        SchoolsError::Unavailable(format!(
            "the national authority sent publication {} with {what}",
            publication.version
        ))
    };
    let mut changes = Vec::new();
    for change in &publication.changes {
        let school = change
            .school
            .as_ref()
            .ok_or_else(|| bad(format!("a change of {} without its school", change.code)))?;
        changes.push(Change {
            id: change.change_id.min(i64::MAX as u64) as i64,
            version: publication.version as i64,
            kind: match pb::ChangeKind::try_from(change.kind) {
                Ok(pb::ChangeKind::Added) => "added",
                Ok(pb::ChangeKind::Renamed) => "renamed",
                Ok(pb::ChangeKind::Merged) => "merged",
                Ok(pb::ChangeKind::Voided) => "voided",
                Ok(pb::ChangeKind::Reopened) => "reopened",
                _ => return Err(bad(format!("an unknown change kind {}", change.kind))),
            }
            .to_owned(),
            code: change.code.clone(),
            school: received_school(school).map_err(bad)?,
            predecessors: change.predecessors.clone(),
            effective_date: change
                .effective_date
                .parse()
                .map_err(|_| bad(format!("effective date {:?}", change.effective_date)))?,
            reason: change.reason.clone(),
        });
    }
    Ok(Publication {
        version: publication.version as i64,
        published_at: chrono::DateTime::parse_from_rfc3339(&publication.published_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| bad(format!("publication time {:?}", publication.published_at)))?,
        note: publication.note,
        changes,
        complete: publication.complete,
    })
}

fn received_school(school: &pb::School) -> Result<SchoolRecord, String> {
    let input = profile_input(school.profile.clone());
    let profile = crate::domain::validate_profile(&input, crate::domain::PROFILE)
        .map_err(|v| format!("school {}: {}", school.code, xueji_validation::describe(&v)))?;
    let date = |text: &str| {
        text.parse::<chrono::NaiveDate>()
            .map_err(|_| format!("school {}: date {text:?}", school.code))
    };
    Ok(SchoolRecord {
        code: school
            .code
            .parse()
            .map_err(|e| format!("school code {}: {e}", school.code))?,
        profile,
        status: match pb::SchoolStatus::try_from(school.status) {
            Ok(pb::SchoolStatus::Open) => SchoolStatus::Open,
            Ok(pb::SchoolStatus::Closed) => SchoolStatus::Closed,
            Ok(pb::SchoolStatus::Voided) => SchoolStatus::Voided,
            _ => return Err(format!("school {}: status {}", school.code, school.status)),
        },
        open_from: date(&school.open_from)?,
        open_until: if school.open_until.is_empty() {
            None
        } else {
            Some(date(&school.open_until)?)
        },
        former_names: school
            .former_names
            .iter()
            .map(|f| {
                Ok(crate::domain::FormerName {
                    name: f.name.clone(),
                    replaced_on: date(&f.effective_date)?,
                })
            })
            .collect::<Result<_, String>>()?,
        successors: school
            .successors
            .iter()
            .map(|c| c.parse().map_err(|e| format!("successor {c}: {e}")))
            .collect::<Result<_, String>>()?,
    })
}
