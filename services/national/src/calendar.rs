//! `CalendarRegistry`: the ministry loads each year's official schedule here; provincial nodes
//! pull what changed, as they pull the published school list.

use chrono::NaiveDate;
use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Jurisdiction, Role};
use xueji_calendar::{CalendarDay, DayKind, PublishedYear};
use xueji_proto::national::v1::{
    self as pb, calendar_registry_server::CalendarRegistry,
    calendar_registry_server::CalendarRegistryServer,
};
use xueji_validation::FieldViolation;

use crate::{
    NationalError,
    store::{Store, calendar::Loader},
};

#[derive(Debug, Clone)]
pub struct CalendarApi {
    store: Store,
}

impl CalendarApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn into_service(self) -> CalendarRegistryServer<Self> {
        CalendarRegistryServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }
}

/// Only the ministry's operators load the national calendar.
fn require_ministry_operator(caller: &Caller) -> Result<(), NationalError> {
    if caller.jurisdiction == Jurisdiction::Nation && caller.role == Role::Operator {
        Ok(())
    } else {
        Err(NationalError::PermissionDenied(
            "only a ministry operator may load the official calendar".into(),
        ))
    }
}

/// The request's days, read and checked as the schedule of its year.
fn schedule(request: &pb::LoadCalendarYearRequest) -> Result<Vec<CalendarDay>, NationalError> {
    let mut violations = Vec::new();
    let mut days = Vec::with_capacity(request.days.len());
    for (index, day) in request.days.iter().enumerate() {
        let date = NaiveDate::parse_from_str(day.date.trim(), "%Y-%m-%d");
        let kind = match pb::CalendarDayKind::try_from(day.kind) {
            Ok(pb::CalendarDayKind::Holiday) => Some(DayKind::Holiday),
            Ok(pb::CalendarDayKind::Workday) => Some(DayKind::Workday),
            _ => None,
        };
        if date.is_err() {
            violations.push(FieldViolation::new(
                "days",
                format!(
                    "days[{index}].date {:?} is not a date (YYYY-MM-DD)",
                    day.date
                ),
            ));
        }
        if kind.is_none() {
            violations.push(FieldViolation::new(
                "days",
                format!("days[{index}].kind must be HOLIDAY or WORKDAY"),
            ));
        }
        if let (Ok(date), Some(kind)) = (date, kind) {
            days.push(CalendarDay {
                date,
                kind,
                name: day.name.trim().replace([',', '\n', '\r'], " "),
            });
        }
    }
    if violations.is_empty() {
        violations.extend(
            xueji_calendar::check_year(request.year, &days)
                .into_iter()
                .map(|error| FieldViolation::new(error.field(), error.to_string())),
        );
    }
    if !violations.is_empty() {
        return Err(NationalError::InvalidArgument(violations));
    }
    days.sort_by_key(|day| day.date);
    Ok(days)
}

fn to_wire(year: PublishedYear) -> pb::CalendarYear {
    pb::CalendarYear {
        year: year.year,
        days: year
            .days
            .into_iter()
            .map(|day| pb::CalendarDay {
                date: day.date.to_string(),
                kind: match day.kind {
                    DayKind::Holiday => pb::CalendarDayKind::Holiday,
                    DayKind::Workday => pb::CalendarDayKind::Workday,
                } as i32,
                name: day.name,
            })
            .collect(),
        version: year.version,
        loaded_by: year.loaded_by,
        loaded_at: year.loaded_at.to_rfc3339(),
    }
}

#[tonic::async_trait]
impl CalendarRegistry for CalendarApi {
    async fn load_calendar_year(
        &self,
        request: Request<pb::LoadCalendarYearRequest>,
    ) -> Result<Response<pb::LoadCalendarYearResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        require_ministry_operator(caller)?;
        let days = schedule(request.get_ref())?;
        let (year, changed) = self
            .store
            .load_calendar_year(
                request.get_ref().year,
                &days,
                Loader {
                    description: &caller.describe(),
                    jurisdiction: &caller.jurisdiction.as_string(),
                    request_id,
                },
            )
            .await?;
        if changed {
            tracing::info!(
                year = year.year,
                version = year.version,
                "official calendar year loaded"
            );
        }
        Ok(Response::new(pb::LoadCalendarYearResponse {
            year: Some(to_wire(year)),
            changed,
        }))
    }

    async fn list_calendar_years(
        &self,
        request: Request<pb::ListCalendarYearsRequest>,
    ) -> Result<Response<pb::ListCalendarYearsResponse>, Status> {
        xueji_rpc::caller(&request)?;
        let after = request.get_ref().after_version.max(0);
        let years = self.store.calendar_years_after(after).await?;
        Ok(Response::new(pb::ListCalendarYearsResponse {
            years: years.into_iter().map(to_wire).collect(),
        }))
    }
}
