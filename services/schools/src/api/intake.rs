//! `SchoolIntake`: the provincial role — applications from county to province, and the replica.

use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Jurisdiction, Level};
use xueji_proto::schools::v1::{
    self as pb,
    school_intake_server::{SchoolIntake, SchoolIntakeServer},
};
use xueji_validation::{Violations, parse_date, required_text};

use super::convert;
use crate::{
    SchoolsError,
    domain::{self, ApplicationStatus, PROFILE},
    replica::Replicator,
    store::{
        Actor,
        provincial::{Application, Filed, ProvincialStore},
    },
};

/// Successions listed at most in one page unless the caller asks for fewer.
const SUCCESSIONS_PER_PAGE: i64 = 500;

#[derive(Debug)]
pub struct IntakeApi {
    store: ProvincialStore,
    replicator: Replicator,
    /// The 2-digit province this node serves.
    province: String,
}

impl IntakeApi {
    pub fn new(store: ProvincialStore, replicator: Replicator, province: &str) -> Self {
        Self {
            store,
            replicator,
            province: province.to_owned(),
        }
    }

    pub fn into_service(self) -> SchoolIntakeServer<Self> {
        SchoolIntakeServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn file(
        &self,
        actor: &Actor,
        request: pb::FileApplicationRequest,
    ) -> Result<Application, SchoolsError> {
        let mut violations = Violations::default();
        let key = violations.check(required_text(
            "idempotency_key",
            &request.idempotency_key,
            128,
        ));
        let open_from = violations.check(parse_date("open_from", &request.open_from));
        let profile = violations
            .absorb(domain::validate_profile(
                &convert::profile_input(request.profile),
                PROFILE,
            ))
            .filter(|profile| {
                let ours = profile.province() == self.province;
                if !ours {
                    violations.add(
                        "profile.division",
                        format!(
                            "{} lies outside province {} that this node serves",
                            profile.division, self.province
                        ),
                    );
                }
                ours
            });
        // Every value is present exactly when no field was refused.
        let (key, open_from, profile) = match (key, open_from, profile) {
            (Some(key), Some(open_from), Some(profile)) if violations.is_empty() => {
                (key, open_from, profile)
            }
            _ => return Err(violations.into_vec().into()),
        };
        if !domain::may_file(&actor.caller, profile.division) {
            return Err(SchoolsError::PermissionDenied(format!(
                "a county files applications for schools in its own county; {} is not yours",
                profile.division
            )));
        }
        let fingerprint =
            Sha256::digest(serde_json::to_vec(&(&profile, open_from)).expect("serializable"));
        match self
            .store
            .file(
                &actor.caller.scoped_key(&key),
                fingerprint.as_slice(),
                &profile,
                open_from,
                actor,
            )
            .await?
        {
            Filed::New(application) | Filed::Replayed(application) => Ok(application),
            Filed::KeyReused => Err(SchoolsError::invalid(
                "idempotency_key",
                "was already used for a different application; use a new key",
            )),
        }
    }

    /// The application if the caller may see it; otherwise NOT_FOUND, as if it did not exist.
    async fn visible_application(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Application, SchoolsError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(SchoolsError::invalid("id", "must not be empty"));
        }
        self.store
            .application(id)
            .await?
            .filter(|a| domain::may_see_application(caller, a.county))
            .ok_or_else(|| SchoolsError::NotFound(format!("application {id}")))
    }

    async fn endorse(&self, actor: &Actor, id: &str) -> Result<Application, SchoolsError> {
        let application = self.visible_application(&actor.caller, id).await?;
        domain::check_turn(&actor.caller, application.status, application.county)?;
        let next = application.status.endorsed().ok_or_else(|| {
            SchoolsError::FailedPrecondition(format!(
                "the application is {}; nobody in the province endorses it now",
                application.status.as_str()
            ))
        })?;
        let endorsed = self
            .store
            .advance(
                &application.id,
                application.status,
                next,
                None,
                "endorse",
                "",
                actor,
            )
            .await?;
        if next != ApplicationStatus::ProvinceEndorsed {
            return Ok(endorsed);
        }
        match self.replicator.submit(&endorsed).await {
            Ok(submitted) => Ok(submitted),
            Err(error) => {
                // Endorsed all the same: the replicator hands it over on its next sync.
                tracing::warn!(%error, id = %endorsed.id, "submission deferred");
                Ok(endorsed)
            }
        }
    }

    async fn send_back(
        &self,
        actor: &Actor,
        request: pb::ReturnApplicationRequest,
    ) -> Result<Application, SchoolsError> {
        let reason = required_text("reason", &request.reason, 500)
            .map_err(|v| SchoolsError::from(vec![v]))?;
        let application = self.visible_application(&actor.caller, &request.id).await?;
        domain::check_turn(&actor.caller, application.status, application.county)?;
        self.store
            .advance(
                &application.id,
                application.status,
                ApplicationStatus::Returned,
                None,
                "return",
                &reason,
                actor,
            )
            .await
    }
}

fn wire_application(application: &Application) -> Option<pb::Application> {
    Some(convert::application(application))
}

#[tonic::async_trait]
impl SchoolIntake for IntakeApi {
    async fn file_application(
        &self,
        request: Request<pb::FileApplicationRequest>,
    ) -> Result<Response<pb::FileApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let application = self.file(&actor, request.into_inner()).await?;
        Ok(Response::new(pb::FileApplicationResponse {
            application: wire_application(&application),
        }))
    }

    async fn endorse_application(
        &self,
        request: Request<pb::EndorseApplicationRequest>,
    ) -> Result<Response<pb::EndorseApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let application = self.endorse(&actor, &request.get_ref().id).await?;
        Ok(Response::new(pb::EndorseApplicationResponse {
            application: wire_application(&application),
        }))
    }

    async fn return_application(
        &self,
        request: Request<pb::ReturnApplicationRequest>,
    ) -> Result<Response<pb::ReturnApplicationResponse>, Status> {
        let actor = super::actor_of(&request)?;
        let application = self.send_back(&actor, request.into_inner()).await?;
        Ok(Response::new(pb::ReturnApplicationResponse {
            application: wire_application(&application),
        }))
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let application = self
            .visible_application(&caller, &request.get_ref().id)
            .await?;
        Ok(Response::new(pb::GetApplicationResponse {
            application: wire_application(&application),
        }))
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let status = convert::status_filter(request.get_ref().status)?;
        let prefix = match &caller.jurisdiction {
            Jurisdiction::Nation => String::new(),
            Jurisdiction::Division(division) => super::prefix_of(*division),
            Jurisdiction::School(_) => {
                return Ok(Response::new(pb::ListApplicationsResponse::default()));
            }
        };
        let (size, after) =
            super::application_page(request.get_ref().page_size, &request.get_ref().page_token)?;
        let mut applications = self
            .store
            .applications(&prefix, status, after.as_deref(), size + 1)
            .await?;
        let next_page_token = super::cut_page(&mut applications, size, |a| a.id.clone());
        Ok(Response::new(pb::ListApplicationsResponse {
            applications: applications.iter().map(convert::application).collect(),
            next_page_token,
        }))
    }

    async fn sync_replica(
        &self,
        request: Request<pb::SyncReplicaRequest>,
    ) -> Result<Response<pb::SyncReplicaResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let may_sync =
            caller.jurisdiction == Jurisdiction::Nation || caller.level == Level::Province;
        if !may_sync {
            return Err(SchoolsError::PermissionDenied(
                "the province or the ministry runs the replica".into(),
            )
            .into());
        }
        let report = self.replicator.sync_to_the_end().await?;
        Ok(Response::new(pb::SyncReplicaResponse {
            replica_version: report.replica_version.max(0) as u64,
            publications_applied: report.publications_applied,
            decisions_applied: report.decisions_applied,
            applications_submitted: report.applications_submitted,
        }))
    }

    async fn get_school(
        &self,
        request: Request<pb::GetSchoolRequest>,
    ) -> Result<Response<pb::GetSchoolResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let school = super::get_school(&self.store, &caller, &request.get_ref().code).await?;
        let published_in = self.store.published_in(school.code.as_str()).await?;
        Ok(Response::new(pb::GetSchoolResponse {
            school: Some(convert::school(&school, published_in)),
        }))
    }

    async fn list_schools(
        &self,
        request: Request<pb::ListSchoolsRequest>,
    ) -> Result<Response<pb::ListSchoolsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        Ok(Response::new(
            super::list_schools(&self.store, &caller, request.get_ref()).await?,
        ))
    }

    async fn list_successions(
        &self,
        request: Request<pb::ListSuccessionsRequest>,
    ) -> Result<Response<pb::ListSuccessionsResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        let may_read =
            caller.jurisdiction == Jurisdiction::Nation || caller.level == Level::Province;
        if !may_read {
            return Err(SchoolsError::PermissionDenied(
                "the province's successions are read by the province or the ministry".into(),
            )
            .into());
        }
        let request = request.into_inner();
        let limit = match request.page_size {
            0 => SUCCESSIONS_PER_PAGE,
            n if n <= 1000 => i64::from(n),
            _ => {
                return Err(SchoolsError::invalid("page_size", "must be at most 1000").into());
            }
        };
        let after_version = i64::try_from(request.after_version)
            .map_err(|_| SchoolsError::invalid("after_version", "is beyond any version"))?;
        let after_code = request.after_code.trim();
        if !after_code.is_empty() && after_code.parse::<xueji_codes::SchoolCode>().is_err() {
            return Err(
                SchoolsError::invalid("after_code", "is not a 10-digit school code").into(),
            );
        }
        let successions = self
            .store
            .successions(after_version, after_code, limit)
            .await?;
        let replica_version = self.store.replica_state().await?.version.max(0) as u64;
        Ok(Response::new(pb::ListSuccessionsResponse {
            successions: successions
                .iter()
                .map(|succession| pb::Succession {
                    link: Some(convert::lineage(&succession.link)),
                    version: succession.version.max(0) as u64,
                })
                .collect(),
            replica_version,
        }))
    }

    async fn get_lineage(
        &self,
        request: Request<pb::GetLineageRequest>,
    ) -> Result<Response<pb::GetLineageResponse>, Status> {
        let caller = super::actor_of(&request)?.caller;
        Ok(Response::new(
            super::get_lineage(&self.store, &caller, &request.get_ref().code).await?,
        ))
    }
}
