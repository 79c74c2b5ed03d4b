//! StatsService and NationalStats: decode, check the unit against the caller's jurisdiction,
//! call the use case, encode. The one mapping of [`StatsError`] to a gRPC status is here.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::StreamExt;
use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Clock, Jurisdiction};
use xueji_calendar::WorkingCalendar;
use xueji_policy::Live;
use xueji_proto::stats::v1::{
    self as pb,
    national_stats_server::{NationalStats, NationalStatsServer},
    stats_service_server::{StatsService, StatsServiceServer},
};

use crate::{
    StatsError,
    adapters::SchoolPlaces,
    domain::{Month, MonthlyReport, Unit, dropouts::DropoutPolicy},
    feed::IDENTITY_FEED,
    figures,
    store::{Dropout, ListedStudent, ReportedRow, Store},
};

impl From<StatsError> for Status {
    fn from(error: StatsError) -> Status {
        match error {
            StatsError::InvalidArgument(violations) => xueji_rpc::invalid_argument(&violations),
            StatsError::NotFound(what) => Status::not_found(format!("{what} not found")),
            StatsError::PermissionDenied(why) => Status::permission_denied(why),
            StatsError::FailedPrecondition(why) => Status::failed_precondition(why),
            // Each Unavailable names what did not answer (the database, identity's feed, the
            // national node) in words meant for the caller.
            StatsError::Unavailable(why) => {
                tracing::warn!(%why, "stats unavailable");
                Status::unavailable(why)
            }
            StatsError::Internal(why) => xueji_rpc::internal_status(&why),
        }
    }
}

/// Which figures a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// A province's own, from identity's feed.
    Province,
    /// The nation's and each province's, from the provinces' reports.
    National,
    /// One node playing both (development): its own feed, the nation included.
    Standalone,
}

#[derive(Clone)]
pub struct StatsApi {
    store: Store,
    tier: Tier,
    province: String,
    /// The dropout grace days in force (a reload replaces them).
    policy: Live<DropoutPolicy>,
    calendar: Arc<WorkingCalendar>,
    clock: Clock,
    /// Where a school lies when no pupil of it was counted yet.
    places: Option<Arc<dyn SchoolPlaces>>,
}

impl StatsApi {
    pub fn new(
        store: Store,
        tier: Tier,
        province: &str,
        clock: Clock,
        policy: Live<DropoutPolicy>,
    ) -> Self {
        Self {
            store,
            tier,
            province: province.to_owned(),
            policy,
            calendar: Arc::new(WorkingCalendar::bundled().clone()),
            clock,
            places: None,
        }
    }

    /// Reads where a school lies from `places` when the figures hold none of its pupils.
    pub fn with_places(mut self, places: Arc<dyn SchoolPlaces>) -> Self {
        self.places = Some(places);
        self
    }

    /// The county of a school: as the figures know it, else as the school list does.
    async fn county_of(&self, code: &str) -> Result<Option<String>, StatsError> {
        if let Some(county) = self.store.county_of(code).await? {
            return Ok(Some(county));
        }
        let (Some(places), Ok(code)) = (&self.places, code.parse::<xueji_codes::SchoolCode>())
        else {
            return Ok(None);
        };
        Ok(places.place(&code).await?.map(|place| place.county))
    }

    /// The unit's name as the form prints it: the nation, a division by the bundled division
    /// codes, a school by the school list (empty where it is not known).
    async fn unit_name(&self, unit: &Unit) -> String {
        let division = |code: String| {
            xueji_codes::Divisions::bundled()
                .known(&code)
                .map(|d| d.name.clone())
                .unwrap_or_default()
        };
        match unit {
            Unit::Nation => "全国".to_owned(),
            Unit::Province(p) => division(format!("{p}0000")),
            Unit::City(c) => division(format!("{c}00")),
            Unit::County(c) => division(c.clone()),
            Unit::School(code) => {
                let (Some(places), Ok(code)) =
                    (&self.places, code.parse::<xueji_codes::SchoolCode>())
                else {
                    return String::new();
                };
                // A name is a courtesy of the form: a list that does not answer leaves it empty.
                match places.place(&code).await {
                    Ok(Some(place)) => place.name,
                    _ => String::new(),
                }
            }
        }
    }

    pub fn into_service(self) -> StatsServiceServer<Self> {
        StatsServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    pub fn national_service(self) -> NationalStatsServer<Self> {
        NationalStatsServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    fn today(&self) -> NaiveDate {
        xueji_calendar::china_today(self.clock.now())
    }

    fn day(&self, field: &'static str, text: &str) -> Result<NaiveDate, StatsError> {
        if text.trim().is_empty() {
            return Ok(self.today());
        }
        xueji_validation::parse_date(field, text).map_err(|v| StatsError::InvalidArgument(vec![v]))
    }

    /// The unit asked for (the caller's own when empty), if the caller may see it: a unit
    /// outside the jurisdiction is NOT_FOUND, as an unknown school is.
    async fn unit(&self, caller: &Caller, text: &str) -> Result<Unit, StatsError> {
        let own = match &caller.jurisdiction {
            Jurisdiction::Nation => Unit::Nation,
            Jurisdiction::Division(d) => {
                Unit::parse(d.as_str()).map_err(|e| StatsError::Internal(e.to_string()))?
            }
            Jurisdiction::School(s) => Unit::School(s.to_string()),
        };
        let unit = if text.trim().is_empty() {
            own.clone()
        } else {
            Unit::parse(text).map_err(|e| StatsError::invalid("unit", e))?
        };
        let visible = match (&own, &unit) {
            (Unit::Nation, _) => true,
            (Unit::School(mine), Unit::School(asked)) => mine == asked,
            (Unit::School(_), _) => false,
            (area, Unit::School(code)) => self
                .county_of(code)
                .await?
                .is_some_and(|county| county.starts_with(area.code())),
            (_, Unit::Nation) => false,
            (area, asked) => {
                asked.code().starts_with(area.code()) && asked.code().len() >= area.code().len()
            }
        };
        if !visible {
            return Err(StatsError::NotFound(format!("unit {}", text.trim())));
        }
        match (self.tier, &unit) {
            (Tier::Province, Unit::Nation) => Err(StatsError::FailedPrecondition(
                "national figures are served by the national node".into(),
            )),
            (Tier::National, Unit::School(_)) => Err(StatsError::FailedPrecondition(
                "a school's figures are kept by its province's node; the national node holds \
                 province, city and county aggregates"
                    .into(),
            )),
            (Tier::Province, other) if !other.code().starts_with(&self.province) => {
                if let Unit::School(_) = other {
                    Ok(unit)
                } else {
                    Err(StatsError::NotFound(format!("unit {}", text.trim())))
                }
            }
            _ => Ok(unit),
        }
    }

    /// Counts, summaries and lists of students need the breakdowns a provincial node keeps.
    fn provincial_only(&self, what: &str) -> Result<(), StatsError> {
        if self.tier == Tier::National {
            return Err(StatsError::FailedPrecondition(format!(
                "{what} are served by provincial nodes; the national node holds aggregates only"
            )));
        }
        Ok(())
    }

    async fn position(&self) -> Result<u64, StatsError> {
        if self.tier == Tier::National {
            let reports = self.store.province_reports().await?;
            return Ok(reports.iter().map(|r| r.position).min().unwrap_or(0));
        }
        self.store.position(IDENTITY_FEED).await
    }

    async fn report_to_wire(&self, report: MonthlyReport, position: u64) -> pb::MonthlyReport {
        let unit_name = self.unit_name(&report.unit).await;
        let first = report.month.first_day();
        let last = report.month.last_day();
        let kinds = |list: &[(&str, i64)]| {
            list.iter()
                .map(|(kind, students)| pb::KindCount {
                    kind: (*kind).to_owned(),
                    students: *students,
                })
                .collect()
        };
        pb::MonthlyReport {
            unit: report.unit.key(),
            month: format!("{:04}-{:02}", report.month.year, report.month.month),
            from_date: first.to_string(),
            to_date: last.to_string(),
            opening: report.opening,
            additions: kinds(&report.additions),
            removals: kinds(&report.removals),
            closing: report.closing,
            reconciles: report.reconciles(),
            feed_position: position,
            unit_name,
        }
    }
}

fn month(text: &str) -> Result<Month, StatsError> {
    let bad = || StatsError::invalid("month", "must be YYYY-MM");
    let (year, month) = text.trim().split_once('-').ok_or_else(bad)?;
    let month = Month {
        year: year.parse().map_err(|_| bad())?,
        month: month.parse().map_err(|_| bad())?,
    };
    if !(1..=12).contains(&month.month) || !(1900..=9999).contains(&month.year) {
        return Err(bad());
    }
    Ok(month)
}

#[tonic::async_trait]
impl StatsService for StatsApi {
    async fn get_monthly_report(
        &self,
        request: Request<pb::GetMonthlyReportRequest>,
    ) -> Result<Response<pb::GetMonthlyReportResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let month = month(&body.month)?;
        let unit = self.unit(caller, &body.unit).await?;
        let position = self.position().await?;
        let found = figures::report_with_parts(&self.store, &unit, month).await?;
        // A county's parts are its schools: their names are asked of the school list side by
        // side, in the parts' order.
        let parts: Vec<pb::MonthlyReport> = futures::stream::iter(found.parts)
            .map(|part| self.report_to_wire(part, position))
            .buffered(16)
            .collect()
            .await;
        Ok(Response::new(pb::GetMonthlyReportResponse {
            report: Some(self.report_to_wire(found.report, position).await),
            parts,
            parts_reconcile: found.parts_reconcile,
        }))
    }

    async fn get_counts(
        &self,
        request: Request<pb::GetCountsRequest>,
    ) -> Result<Response<pb::GetCountsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let day = self.day("date", &body.date)?;
        let unit = self.unit(caller, &body.unit).await?;
        self.provincial_only("counts by breakdown")?;
        let position = self.position().await?;
        let cells = self.store.cells(&unit, day).await.map_err(Status::from)?;
        let total = cells
            .iter()
            .filter(|c| c.dimension == "gender")
            .map(|c| c.students)
            .sum();
        Ok(Response::new(pb::GetCountsResponse {
            unit: unit.key(),
            date: day.to_string(),
            total,
            cells: cells
                .into_iter()
                .map(|c| pb::Cell {
                    dimension: c.dimension,
                    value: c.value,
                    students: c.students,
                })
                .collect(),
            feed_position: position,
        }))
    }

    async fn get_school_summary(
        &self,
        request: Request<pb::GetSchoolSummaryRequest>,
    ) -> Result<Response<pb::GetSchoolSummaryResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let day = self.day("date", &body.date)?;
        let unit = self.unit(caller, &body.unit).await?;
        self.provincial_only("school summaries")?;
        let position = self.position().await?;
        let rows = figures::school_summary(&self.store, &unit, day).await?;
        Ok(Response::new(pb::GetSchoolSummaryResponse {
            date: day.to_string(),
            schools: rows
                .into_iter()
                .map(|row| pb::SchoolSummaryRow {
                    school_code: row.school,
                    county: row.county,
                    students: row.students,
                    male: row.male,
                    female: row.female,
                    grades: row
                        .grades
                        .into_iter()
                        .map(|(grade, (male, female))| pb::GradeCount {
                            grade: u32::from(grade),
                            male,
                            female,
                        })
                        .collect(),
                    ethnic_minorities: row.ethnic_minorities,
                    migrant_children: row.migrant_children,
                    left_behind_children: row.left_behind_children,
                    entry_routes: row
                        .entry_routes
                        .into_iter()
                        .map(|(kind, students)| pb::KindCount { kind, students })
                        .collect(),
                })
                .collect(),
            feed_position: position,
        }))
    }

    async fn check_reconciliation(
        &self,
        request: Request<pb::CheckReconciliationRequest>,
    ) -> Result<Response<pb::CheckReconciliationResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let month = month(&body.month)?;
        let unit = self.unit(caller, &body.unit).await?;
        let (checked, mismatches) = figures::reconcile(&self.store, &unit, month).await?;
        Ok(Response::new(pb::CheckReconciliationResponse {
            units_checked: checked as u64,
            mismatches: mismatches
                .into_iter()
                .map(|(unit, detail)| pb::Mismatch {
                    unit: unit.key(),
                    detail,
                })
                .collect(),
        }))
    }

    async fn list_dropouts(
        &self,
        request: Request<pb::ListDropoutsRequest>,
    ) -> Result<Response<pb::ListDropoutsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let as_of = self.day("as_of", &body.as_of)?;
        let unit = self.unit(caller, &body.unit).await?;
        self.provincial_only("dropout lists")?;
        let allowed = self.policy.current().working_days(&self.province);
        let lists = figures::dropouts(&self.store, &self.calendar, &unit, as_of, allowed).await?;
        let wire = |(d, days): (Dropout, u32)| {
            let (returned_on, returned_to) = d.returned.unzip();
            pb::DropoutStudent {
                registry_number: d.registry_number,
                name: d.name,
                school_code: d.school,
                county: d.county,
                left_on: d.left_on.to_string(),
                kind: d.kind,
                working_days_unplaced: days,
                returned_on: returned_on.map(|on| on.to_string()).unwrap_or_default(),
                returned_to_school: returned_to.unwrap_or_default(),
            }
        };
        Ok(Response::new(pb::ListDropoutsResponse {
            working_days: allowed,
            students: lists.unplaced.into_iter().map(wire).collect(),
            returned: lists.returned.into_iter().map(wire).collect(),
        }))
    }

    async fn list_data_quality(
        &self,
        request: Request<pb::ListDataQualityRequest>,
    ) -> Result<Response<pb::ListDataQualityResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let as_of = self.day("as_of", &body.as_of)?;
        let unit = self.unit(caller, &body.unit).await?;
        self.provincial_only("data-quality lists")?;
        let lists = self
            .store
            .quality_lists(&unit, as_of, 2)
            .await
            .map_err(Status::from)?;
        let wire = |list: Vec<ListedStudent>| -> Vec<pb::ListedStudent> {
            list.into_iter()
                .map(|s| pb::ListedStudent {
                    registry_number: s.registry_number,
                    name: s.name,
                    school_code: s.school,
                    grade: u32::try_from(s.grade).unwrap_or_default(),
                    birth_date: s.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                    missing_fields: s.missing,
                })
                .collect()
        };
        Ok(Response::new(pb::ListDataQualityResponse {
            age_grade_outliers: wire(lists.age_grade_outliers),
            missing_key_fields: wire(lists.missing_key_fields),
        }))
    }

    async fn list_province_reports(
        &self,
        request: Request<pb::ListProvinceReportsRequest>,
    ) -> Result<Response<pb::ListProvinceReportsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if caller.jurisdiction != Jurisdiction::Nation {
            return Err(StatsError::PermissionDenied(
                "the provinces' reports are the ministry's to see".into(),
            )
            .into());
        }
        if self.tier == Tier::Province {
            return Err(StatsError::FailedPrecondition(
                "provinces' reports are kept by the national node".into(),
            )
            .into());
        }
        let reports = self.store.province_reports().await?;
        Ok(Response::new(pb::ListProvinceReportsResponse {
            provinces: reports
                .into_iter()
                .map(|r| pb::ProvinceReport {
                    province: r.province,
                    feed_position: r.position,
                    reported_at: r.reported_at.to_rfc3339(),
                    rows: u32::try_from(r.rows).unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl NationalStats for StatsApi {
    async fn report_aggregates(
        &self,
        request: Request<pb::ReportAggregatesRequest>,
    ) -> Result<Response<pb::ReportAggregatesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let body = request.get_ref();
        let province = body.province.trim();
        let own = match &caller.jurisdiction {
            Jurisdiction::Division(d) => d.as_str().get(..2).unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StatsError::invalid("province", "must be two digits").into());
        }
        if province != own {
            return Err(StatsError::PermissionDenied(format!(
                "a province reports its own aggregates only (this caller is province {own:?})"
            ))
            .into());
        }
        let mut rows = Vec::with_capacity(body.rows.len());
        for (n, row) in body.rows.iter().enumerate() {
            let inside = Unit::from_key(&row.unit).is_some_and(|unit| {
                matches!(unit, Unit::Province(_) | Unit::City(_) | Unit::County(_))
                    && unit.code().starts_with(province)
            });
            if !inside {
                return Err(StatsError::invalid(
                    "rows.unit",
                    format!(
                        "row {n}: {:?} is not a unit of province {province}",
                        row.unit
                    ),
                )
                .into());
            }
            if !matches!(row.direction.as_str(), "addition" | "removal") {
                return Err(StatsError::invalid(
                    "rows.direction",
                    format!("row {n}: must be addition or removal"),
                )
                .into());
            }
            if crate::domain::ChangeKind::known_name(&row.kind).is_none() {
                return Err(StatsError::invalid(
                    "rows.kind",
                    format!("row {n}: unknown kind {:?}", row.kind),
                )
                .into());
            }
            rows.push(ReportedRow {
                unit: row.unit.clone(),
                month: month(&row.month)
                    .map_err(|_| {
                        StatsError::invalid("rows.month", format!("row {n}: must be YYYY-MM"))
                    })?
                    .first_day(),
                direction: row.direction.clone(),
                kind: row.kind.clone(),
                students: row.students,
            });
        }
        // Checked whole before anything is stored: a report that does not reconcile, or whose
        // counts no unit could have, is refused, and the nation's sum never sees it.
        let checked: Vec<crate::domain::intake::Row<'_>> = rows
            .iter()
            .map(|r| crate::domain::intake::Row {
                unit: &r.unit,
                month: r.month.to_string(),
                direction: &r.direction,
                kind: &r.kind,
                students: r.students,
            })
            .collect();
        crate::domain::intake::check_report(&checked)
            .map_err(|why| StatsError::invalid("rows", why))?;
        let accepted = self
            .store
            .receive_report(province, body.feed_position, &rows, self.clock.now())
            .await?;
        Ok(Response::new(pb::ReportAggregatesResponse { accepted }))
    }
}
