//! `SchoolAuthority`: the national role.

use tonic::{Request, Response, Status};
use xueji_auth::Jurisdiction;
use xueji_proto::schools::v1::{
    self as pb,
    school_authority_server::{SchoolAuthority, SchoolAuthorityServer},
};
use xueji_validation::{FieldViolation, Violations, parse_date, required_text};

use super::convert;
use crate::{
    SchoolsError,
    domain::{self, MERGED, PROFILE, StepOrder},
    links::Workloads,
    registry::{EndorsedApplication, Registry},
    store::{
        Actor,
        national::{Merger, NationalStore},
    },
};

const PUBLICATIONS_PER_PAGE: u32 = 20;
const DECISIONS_PER_PAGE: i64 = 500;
use crate::store::national::CHANGES_PER_PAGE;

/// Thin handlers: decode into domain values, authorize, call the [`Registry`] (changes) or
/// the store (reads), encode.
#[derive(Debug)]
pub struct AuthorityApi {
    /// Reads: schools, applications, publications.
    store: NationalStore,
    /// Changes: the registry's use cases.
    registry: Registry,
}

impl AuthorityApi {
    pub fn new(store: NationalStore, workloads: Workloads) -> Self {
        Self {
            registry: Registry::new(store.clone(), workloads),
            store,
        }
    }

    pub fn into_service(self) -> SchoolAuthorityServer<Self> {
        SchoolAuthorityServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn submit(
        &self,
        actor: &Actor,
        request: pb::SubmitApplicationRequest,
    ) -> Result<pb::SubmitApplicationResponse, SchoolsError> {
        let application = request.application.unwrap_or_default();
        let mut violations = Violations::default();
        if application.id.trim().is_empty() {
            violations.add("application.id", "must not be empty");
        }
        let open_from =
            violations.check(parse_date("application.open_from", &application.open_from));
        let profile = violations.absorb(domain::validate_profile(
            &convert::profile_input(application.profile),
            PROFILE,
        ));
        // Every value is present exactly when no field was refused.
        let (open_from, profile) = match (open_from, profile) {
            (Some(open_from), Some(profile)) if violations.is_empty() => (open_from, profile),
            _ => return Err(violations.into_vec().into()),
        };
        let held = self
            .registry
            .submit(
                EndorsedApplication {
                    id: application.id.trim().to_owned(),
                    profile,
                    open_from,
                    filed_by: application.filed_by,
                },
                actor,
            )
            .await?;
        Ok(pb::SubmitApplicationResponse {
            application: Some(convert::national_application(&held)),
        })
    }

    async fn close(
        &self,
        actor: &Actor,
        request: pb::CloseSchoolRequest,
    ) -> Result<pb::CloseSchoolResponse, SchoolsError> {
        domain::require_ministry(&actor.caller, "close a school")?;
        let order = lifecycle_fields(&request.code, &request.effective_date, &request.reason)?;
        let school = self.registry.close(&order, actor).await?;
        Ok(pb::CloseSchoolResponse {
            school: Some(convert::school(&school, 0)),
        })
    }
}

/// Checks the fields every lifecycle step takes, adding their violations to the request's.
fn step_fields(
    violations: &mut Violations,
    code: &str,
    effective_date: &str,
    reason: &str,
) -> Option<StepOrder> {
    let code = violations.check(
        code.trim()
            .parse::<xueji_codes::SchoolCode>()
            .map_err(|e| FieldViolation::new("code", format!("school code {e}"))),
    );
    let date = violations.check(parse_date("effective_date", effective_date));
    let reason = violations.check(required_text("reason", reason, 500));
    Some(StepOrder {
        code: code?,
        effective_date: date?,
        reason: reason?,
    })
}

/// The lifecycle fields of a step that takes nothing else.
fn lifecycle_fields(
    code: &str,
    effective_date: &str,
    reason: &str,
) -> Result<StepOrder, SchoolsError> {
    let mut violations = Violations::default();
    step_fields(&mut violations, code, effective_date, reason)
        .ok_or_else(|| violations.into_vec().into())
}

/// The school as the registry holds it now (not yet published: `published_in` 0).
fn registry_school(school: &domain::SchoolRecord) -> Option<pb::School> {
    Some(convert::school(school, 0))
}

#[tonic::async_trait]
impl SchoolAuthority for AuthorityApi {
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        Ok(Response::new(
            self.submit(&actor, request.into_inner()).await?,
        ))
    }

    async fn list_submitted_applications(
        &self,
        request: Request<pb::ListSubmittedApplicationsRequest>,
    ) -> Result<Response<pb::ListSubmittedApplicationsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        if caller.jurisdiction != Jurisdiction::Nation {
            return Err(SchoolsError::PermissionDenied(
                "the national queue of applications is the ministry's".into(),
            )
            .into());
        }
        let (size, after) =
            super::application_page(request.get_ref().page_size, &request.get_ref().page_token)?;
        let mut applications = self
            .store
            .submitted_applications(after.as_deref(), size + 1)
            .await
            .map_err(Status::from)?;
        let next_page_token = super::cut_page(&mut applications, size, |a| a.id.clone());
        Ok(Response::new(pb::ListSubmittedApplicationsResponse {
            applications: applications
                .iter()
                .map(convert::national_application)
                .collect(),
            next_page_token,
        }))
    }

    async fn approve_application(
        &self,
        request: Request<pb::ApproveApplicationRequest>,
    ) -> Result<Response<pb::ApproveApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "approve an application")?;
        let id = request.get_ref().id.trim();
        if id.is_empty() {
            return Err(SchoolsError::invalid("id", "must not be empty").into());
        }
        let school = self.registry.approve(id, &actor).await?;
        Ok(Response::new(pb::ApproveApplicationResponse {
            school: Some(convert::school(&school, 0)),
        }))
    }

    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "reject an application")?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        if request.id.trim().is_empty() {
            violations.add("id", "must not be empty");
        }
        let reason = match violations.check(required_text("reason", &request.reason, 500)) {
            Some(reason) if violations.is_empty() => reason,
            _ => return Err(SchoolsError::from(violations.into_vec()).into()),
        };
        let application = self
            .registry
            .reject(request.id.trim(), &reason, &actor)
            .await?;
        Ok(Response::new(pb::RejectApplicationResponse {
            application: Some(convert::national_application(&application)),
        }))
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let request = request.into_inner();
        let province: xueji_codes::DivisionCode = format!("{}0000", request.province.trim())
            .parse()
            .ok()
            .filter(|code| xueji_codes::Divisions::bundled().get(*code).is_some())
            .ok_or_else(|| SchoolsError::invalid("province", "must be a 2-digit province code"))?;
        let allowed = match &caller.jurisdiction {
            Jurisdiction::Nation => true,
            Jurisdiction::Division(division) => *division == province,
            Jurisdiction::School(_) => false,
        };
        if !allowed {
            return Err(SchoolsError::PermissionDenied(format!(
                "decisions on province {}'s applications go to that province",
                request.province
            ))
            .into());
        }
        let decisions = self
            .store
            .decisions(
                request.province.trim(),
                request.after_cursor.min(i64::MAX as u64) as i64,
                DECISIONS_PER_PAGE,
            )
            .await?;
        Ok(Response::new(pb::ListDecisionsResponse {
            decisions: decisions.iter().map(convert::decision).collect(),
        }))
    }

    async fn rename_school(
        &self,
        request: Request<pb::RenameSchoolRequest>,
    ) -> Result<Response<pb::RenameSchoolResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "rename a school")?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let fields = step_fields(
            &mut violations,
            &request.code,
            &request.effective_date,
            &request.reason,
        );
        let name = violations.check(required_text("new_name", &request.new_name, 100));
        let (Some(order), Some(name)) = (fields, name) else {
            return Err(SchoolsError::from(violations.into_vec()).into());
        };
        let school = self.registry.rename(&order, &name, &actor).await?;
        Ok(Response::new(pb::RenameSchoolResponse {
            school: registry_school(&school),
        }))
    }

    async fn merge_schools(
        &self,
        request: Request<pb::MergeSchoolsRequest>,
    ) -> Result<Response<pb::MergeSchoolsResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "merge schools")?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let mut predecessors = Vec::new();
        for text in &request.predecessors {
            match text.trim().parse() {
                Ok(code) => predecessors.push(code),
                Err(e) => violations.add("predecessors", format!("{text:?}: school code {e}")),
            }
        }
        let keep = match request.keep_code.trim() {
            "" => None,
            text => match text.parse() {
                Ok(code) => Some(code),
                Err(e) => {
                    violations.add("keep_code", format!("school code {e}"));
                    None
                }
            },
        };
        let merged = violations.absorb(domain::validate_profile(
            &convert::profile_input(request.merged),
            MERGED,
        ));
        let date = violations.check(parse_date("effective_date", &request.effective_date));
        let reason = violations.check(required_text("reason", &request.reason, 500));
        let (merged, effective_date, reason) = match (merged, date, reason) {
            (Some(merged), Some(date), Some(reason)) if violations.is_empty() => {
                (merged, date, reason)
            }
            _ => return Err(SchoolsError::from(violations.into_vec()).into()),
        };
        let school = self
            .registry
            .merge(
                &Merger {
                    predecessors,
                    merged,
                    keep,
                    effective_date,
                    reason,
                },
                &actor,
            )
            .await?;
        Ok(Response::new(pb::MergeSchoolsResponse {
            school: registry_school(&school),
        }))
    }

    async fn change_category(
        &self,
        request: Request<pb::ChangeCategoryRequest>,
    ) -> Result<Response<pb::ChangeCategoryResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "change a school's category")?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let fields = step_fields(
            &mut violations,
            &request.code,
            &request.effective_date,
            &request.reason,
        );
        let category = violations.check(domain::parse_category(
            "new_category",
            &request.new_category,
        ));
        let stages = violations.check(domain::parse_stages(
            "stages",
            category,
            &convert::stage_input(&request.stages),
        ));
        let (Some(order), Some(category), Some(stages)) = (fields, category, stages) else {
            return Err(SchoolsError::from(violations.into_vec()).into());
        };
        let school = self
            .registry
            .change_category(&order, category, &stages, &actor)
            .await?;
        Ok(Response::new(pb::ChangeCategoryResponse {
            school: registry_school(&school),
        }))
    }

    async fn close_school(
        &self,
        request: Request<pb::CloseSchoolRequest>,
    ) -> Result<Response<pb::CloseSchoolResponse>, Status> {
        let actor = super::actor_of(&request)?;
        Ok(Response::new(
            self.close(&actor, request.into_inner()).await?,
        ))
    }

    async fn reopen_school(
        &self,
        request: Request<pb::ReopenSchoolRequest>,
    ) -> Result<Response<pb::ReopenSchoolResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "reopen a school")?;
        let request = request.into_inner();
        let order = lifecycle_fields(&request.code, &request.effective_date, &request.reason)?;
        let school = self.registry.reopen(&order, &actor).await?;
        Ok(Response::new(pb::ReopenSchoolResponse {
            school: registry_school(&school),
        }))
    }

    async fn get_school(
        &self,
        request: Request<pb::SchoolAuthorityGetSchoolRequest>,
    ) -> Result<Response<pb::SchoolAuthorityGetSchoolResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let school = super::get_school(&self.store, &caller, &request.get_ref().code).await?;
        Ok(Response::new(pb::SchoolAuthorityGetSchoolResponse {
            school: registry_school(&school),
        }))
    }

    async fn list_schools(
        &self,
        request: Request<pb::SchoolAuthorityListSchoolsRequest>,
    ) -> Result<Response<pb::SchoolAuthorityListSchoolsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let request = request.into_inner();
        // The same filters as the replica's `ListSchools`.
        let filters = pb::ListSchoolsRequest {
            division: request.division,
            name_contains: request.name_contains,
            category: request.category,
            include_void: request.include_void,
            page_size: request.page_size,
            page_token: request.page_token,
        };
        let page = super::list_schools(&self.store, &caller, &filters).await?;
        Ok(Response::new(pb::SchoolAuthorityListSchoolsResponse {
            schools: page.schools,
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_lineage(
        &self,
        request: Request<pb::SchoolAuthorityGetLineageRequest>,
    ) -> Result<Response<pb::SchoolAuthorityGetLineageResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let lineage = super::get_lineage(&self.store, &caller, &request.get_ref().code).await?;
        Ok(Response::new(pb::SchoolAuthorityGetLineageResponse {
            links: lineage.links,
        }))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let caller = &actor.caller;
        domain::require_ministry(caller, "publish the code list")?;
        let note = request.get_ref().note.trim().to_owned();
        let publication = self.registry.publish(&note, &actor).await?;
        Ok(Response::new(pb::PublishResponse {
            publication: Some(convert::publication(&publication)),
        }))
    }

    async fn list_publications(
        &self,
        request: Request<pb::ListPublicationsRequest>,
    ) -> Result<Response<pb::ListPublicationsResponse>, Status> {
        super::actor_of(&request)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => PUBLICATIONS_PER_PAGE,
            n => n.min(PUBLICATIONS_PER_PAGE),
        };
        let max_changes = match i64::from(request.max_changes) {
            0 => CHANGES_PER_PAGE,
            n => n.min(CHANGES_PER_PAGE),
        };
        let publications = self
            .store
            .publications(
                request.after_version.min(i64::MAX as u64) as i64,
                request.after_change_id.min(i64::MAX as u64) as i64,
                i64::from(limit),
                max_changes,
            )
            .await?;
        Ok(Response::new(pb::ListPublicationsResponse {
            publications: publications.iter().map(convert::publication).collect(),
            latest_version: self.store.latest_version().await?.max(0) as u64,
        }))
    }

    async fn diff(
        &self,
        request: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        super::actor_of(&request)?;
        let request = request.into_inner();
        let latest = self.store.latest_version().await?.max(0) as u64;
        let mut violations = Violations::default();
        if request.to_version > latest {
            violations.add(
                "to_version",
                format!("only versions up to {latest} are published"),
            );
        }
        if request.from_version > request.to_version {
            violations.add("from_version", "must not be after to_version");
        }
        if !violations.is_empty() {
            return Err(SchoolsError::from(violations.into_vec()).into());
        }
        let page_size = match i64::from(request.page_size) {
            0 => CHANGES_PER_PAGE,
            n => n.min(CHANGES_PER_PAGE),
        };
        let after = match request.page_token.as_str() {
            "" => 0,
            token => token.parse::<i64>().map_err(|_| {
                SchoolsError::invalid("page_token", "is not a token this service issued")
            })?,
        };
        let mut changes = self
            .store
            .changes_page(
                request.from_version as i64,
                request.to_version as i64,
                after,
                page_size + 1,
            )
            .await?;
        let next_page_token = if changes.len() as i64 > page_size {
            changes.truncate(page_size as usize);
            changes.last().map(|c| c.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::DiffResponse {
            changes: changes.iter().map(convert::change).collect(),
            next_page_token,
        }))
    }
}
