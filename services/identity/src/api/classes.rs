//! Classes over gRPC (thin: decode, authorize against the school, call the store, encode). The
//! school's operators and its authorities keep its classes; the province and the ministry read
//! them.

use std::{collections::BTreeMap, sync::Arc};

use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Level};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1::{
    self as pb,
    class_service_server::{ClassService, ClassServiceServer},
};

use super::{IdentityApi, convert};
use crate::{
    IdentityError,
    cycle::CycleRunner,
    domain::{School, classes, school_year},
    store::{Actor, ClassRecord, NewClass, Seat},
};

/// The class service: shares the identity service's state and the annual cycle's dates.
#[derive(Debug, Clone)]
pub(crate) struct ClassApi {
    identity: Arc<IdentityApi>,
    runner: Arc<CycleRunner>,
}

fn class_to_wire(class: ClassRecord) -> pb::SchoolClass {
    pb::SchoolClass {
        id: class.id.to_string(),
        school_code: class.school_code,
        school_year: class.school_year.max(0) as u32,
        grade: class.grade.max(0) as u32,
        name: class.name,
        head_teacher: class.head_teacher.unwrap_or_default(),
        pupils: class.pupils.max(0) as u32,
    }
}

/// Keeping a school's classes is the school's and its authorities' work.
fn require_keeper(caller: &Caller) -> Result<(), IdentityError> {
    if matches!(caller.level, Level::School | Level::County | Level::City) {
        Ok(())
    } else {
        Err(IdentityError::PermissionDenied(
            "a school's classes are kept by the school and its authorities".into(),
        ))
    }
}

impl ClassApi {
    pub(crate) fn new(identity: Arc<IdentityApi>, runner: Arc<CycleRunner>) -> Self {
        Self { identity, runner }
    }

    pub(crate) fn into_service(self) -> ClassServiceServer<Self> {
        ClassServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// The school under `text` if the caller may see it; NOT_FOUND otherwise.
    async fn school(&self, caller: &Caller, text: &str) -> Result<School, IdentityError> {
        let code: SchoolCode = text
            .trim()
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        self.identity
            .visible_school(caller, &code)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("school {code}")))
    }

    /// The school year asked (0: the current one), checked.
    fn school_year(&self, field: &'static str, year: u32) -> Result<i16, IdentityError> {
        match year {
            0 => Ok(self.runner.school_year_now()),
            2000..=2100 => Ok(year as i16),
            _ => Err(IdentityError::invalid(
                field,
                "must be a school year between 2000 and 2100, or 0 for the current one",
            )),
        }
    }

    /// The school's class of `year` named `name`; NOT_FOUND as an unknown one.
    async fn class_named(
        &self,
        school: &School,
        year: i16,
        name: &str,
    ) -> Result<ClassRecord, IdentityError> {
        let name = classes::check_name("class_name", name)
            .map_err(|violation| IdentityError::InvalidArgument(vec![violation]))?;
        self.identity
            .store
            .class_named(school.code.as_str(), year, &name)
            .await?
            .ok_or_else(|| {
                IdentityError::NotFound(format!("class {name} of {year} at school {}", school.code))
            })
    }

    async fn create(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::CreateClassRequest,
    ) -> Result<pb::CreateClassResponse, IdentityError> {
        let school = self.school(caller, &request.school_code).await?;
        require_keeper(caller)?;
        let mut violations = xueji_validation::Violations::default();
        let name = violations.check(classes::check_name("name", &request.name));
        let head_teacher = request.head_teacher.trim();
        if head_teacher.chars().count() > classes::MAX_NAME {
            violations.add(
                "head_teacher",
                format!("must be at most {} characters", classes::MAX_NAME),
            );
        }
        if school.grade_place(request.grade).is_none() {
            violations.add(
                "grade",
                format!(
                    "school {} does not teach grade {}",
                    school.code, request.grade
                ),
            );
        }
        let year = match self.school_year("school_year", request.school_year) {
            Ok(year) => Some(year),
            Err(IdentityError::InvalidArgument(found)) => violations.absorb::<i16>(Err(found)),
            Err(other) => return Err(other),
        };
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(name), Some(year)) = (name, year) else {
            return Err(IdentityError::Internal("validated fields missing".into()));
        };
        let (class, created) = self
            .identity
            .store
            .create_class(
                &NewClass {
                    school_code: school.code.as_str(),
                    school_year: year,
                    grade: request.grade as i16,
                    name: &name,
                    head_teacher: (!head_teacher.is_empty()).then_some(head_teacher),
                },
                Actor { caller, request_id },
            )
            .await?;
        if class.grade != request.grade as i16 {
            return Err(IdentityError::AlreadyExists {
                field: "name",
                message: format!(
                    "class {name} of {year} was opened for grade {}",
                    class.grade
                ),
            });
        }
        Ok(pb::CreateClassResponse {
            class: Some(class_to_wire(class)),
            created,
        })
    }

    async fn list(
        &self,
        caller: &Caller,
        request: pb::ListClassesRequest,
    ) -> Result<pb::ListClassesResponse, IdentityError> {
        let school = self.school(caller, &request.school_code).await?;
        let year = self.school_year("school_year", request.school_year)?;
        let classes = self
            .identity
            .store
            .classes_of(school.code.as_str(), year)
            .await?;
        Ok(pb::ListClassesResponse {
            classes: classes.into_iter().map(class_to_wire).collect(),
            school_year: year as u32,
        })
    }

    async fn assign(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::AssignClassRequest,
    ) -> Result<pb::AssignClassResponse, IdentityError> {
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        require_keeper(caller)?;
        let seat = match request.seat {
            0 => None,
            n if n <= classes::MAX_SEAT => Some(n as i16),
            _ => {
                return Err(IdentityError::invalid(
                    "seat",
                    format!(
                        "must be 1–{}, or 0 for the next free one",
                        classes::MAX_SEAT
                    ),
                ));
            }
        };
        let place = if request.class_name.trim().is_empty() {
            None
        } else {
            let year = self.school_year("school_year", request.school_year)?;
            let class = self.class_named(&school, year, &request.class_name).await?;
            if class.grade.max(0) as u32 != record.grade {
                return Err(IdentityError::FailedPrecondition(format!(
                    "class {} is grade {}; {} is in grade {}",
                    class.name, class.grade, record.registry_number, record.grade
                )));
            }
            Some(Seat {
                class_id: class.id,
                seat,
            })
        };
        self.identity
            .store
            .assign_class(
                record.id,
                &record.registry_number,
                place,
                Actor { caller, request_id },
            )
            .await?;
        let student = self.identity.store.student(record.id).await?;
        Ok(pb::AssignClassResponse {
            student: Some(convert::student(student)),
        })
    }

    async fn roster(
        &self,
        caller: &Caller,
        request: pb::GetClassRosterRequest,
    ) -> Result<pb::GetClassRosterResponse, IdentityError> {
        let school = self.school(caller, &request.school_code).await?;
        let year = self.school_year("school_year", request.school_year)?;
        let class = self.class_named(&school, year, &request.class_name).await?;
        let seats = self.identity.store.roster(class.id).await?;
        let ids: Vec<i64> = seats.iter().map(|(_, id)| *id).collect();
        let mut students: BTreeMap<i64, _> = self
            .identity
            .store
            .students(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let pupils = seats
            .into_iter()
            .filter_map(|(seat, id)| {
                students.remove(&id).map(|s| pb::RosterEntry {
                    seat: seat.max(0) as u32,
                    student: Some(convert::student(s)),
                })
            })
            .collect();
        Ok(pb::GetClassRosterResponse {
            class: Some(class_to_wire(class)),
            pupils,
        })
    }

    async fn carry(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::CarryClassesForwardRequest,
    ) -> Result<pb::CarryClassesForwardResponse, IdentityError> {
        let school = self.school(caller, &request.school_code).await?;
        require_keeper(caller)?;
        if request.from_school_year == 0 {
            return Err(IdentityError::invalid(
                "from_school_year",
                "must name the school year whose classes move up",
            ));
        }
        let year = self.school_year("from_school_year", request.from_school_year)?;
        let graduating = school_year::graduating_grades(&school.stages);
        let carried: Vec<i16> = (1..=12u32)
            .filter(|g| school.grade_place(*g).is_some() && !graduating.contains(g))
            .map(|g| g as i16)
            .collect();
        let store = &self.identity.store;
        let plans = store
            .carry_plan(school.code.as_str(), year, &carried, |name, grade| {
                classes::carried_name(name, grade.max(0) as u32)
            })
            .await?;
        let mut carries = Vec::with_capacity(plans.len());
        for plan in plans {
            let not_carried = if !carried.contains(&plan.from.grade) {
                format!("grade {} graduates: its class ends", plan.from.grade)
            } else if plan.carried_to.is_some() {
                "carried before".to_owned()
            } else {
                String::new()
            };
            let to_id = match (&plan.carried_to, request.confirm && not_carried.is_empty()) {
                (Some(id), _) => id.to_string(),
                (None, true) => store
                    .carry_class(&plan, Actor { caller, request_id })
                    .await?
                    .to_string(),
                (None, false) => String::new(),
            };
            carries.push(pb::ClassCarry {
                to: Some(pb::SchoolClass {
                    id: to_id,
                    school_code: plan.from.school_code.clone(),
                    school_year: (plan.from.school_year + 1).max(0) as u32,
                    grade: plan.to_grade.max(0) as u32,
                    name: plan.to_name.clone(),
                    head_teacher: plan.from.head_teacher.clone().unwrap_or_default(),
                    pupils: plan.moving.max(0) as u32,
                }),
                pupils_moving: plan.moving.max(0) as u32,
                not_carried,
                from: Some(class_to_wire(plan.from)),
            });
        }
        Ok(pb::CarryClassesForwardResponse {
            carries,
            applied: request.confirm,
        })
    }
}

#[tonic::async_trait]
impl ClassService for ClassApi {
    async fn create_class(
        &self,
        request: Request<pb::CreateClassRequest>,
    ) -> Result<Response<pb::CreateClassResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.create(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn list_classes(
        &self,
        request: Request<pb::ListClassesRequest>,
    ) -> Result<Response<pb::ListClassesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }

    async fn assign_class(
        &self,
        request: Request<pb::AssignClassRequest>,
    ) -> Result<Response<pb::AssignClassResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.assign(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn get_class_roster(
        &self,
        request: Request<pb::GetClassRosterRequest>,
    ) -> Result<Response<pb::GetClassRosterResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.roster(&caller, request.into_inner()).await?,
        ))
    }

    async fn carry_classes_forward(
        &self,
        request: Request<pb::CarryClassesForwardRequest>,
    ) -> Result<Response<pb::CarryClassesForwardResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.carry(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }
}
