//! The transfer service's ports wired to gRPC: identity's `TransferLedger` (hold, release, move the record)
//! and the school replica (`SchoolIntake.GetSchool`) inside its province, and the national node
//! (the relay between provinces, the calendar registry), over mutual TLS with the transfer
//! service's own certificate and token.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::future::BoxFuture;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;
use xueji_calendar::{CalendarDay, DayKind};
use xueji_client::replica::{ReplicaClient, published_school, replica_client, stages_of};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1::{self as ipb, transfer_ledger_client::TransferLedgerClient};
use xueji_proto::national::v1::{self as npb, calendar_registry_client::CalendarRegistryClient};
use xueji_proto::schools::v1 as spb;
use xueji_proto::transfers::v1::{self as tpb, transfer_relay_client::TransferRelayClient};
use xueji_rpc::{ExpectedServer, PeerChannel, PeerCredentials};

use crate::{
    TransferError,
    domain::{PublishedYear, SchoolFacts, StudentKey},
    links::{Arrival, CalendarSource, EnrollmentLedger, Held, RelayLink, SchoolList},
};

/// Identity's answer, in the transfer service's terms: a refusal keeps its reason and national
/// code; anything else transient is UNAVAILABLE (the saga retries).
fn from_identity(status: Status) -> TransferError {
    match status.code() {
        Code::FailedPrecondition => match status.get_details_error_info() {
            Some(info) => TransferError::Refused {
                reason: info.reason.clone(),
                national_code: info.metadata.get("national_code").cloned(),
                message: status.message().to_owned(),
            },
            None => TransferError::FailedPrecondition(status.message().to_owned()),
        },
        Code::InvalidArgument => TransferError::Internal(format!(
            "identity refused the transfer service's request: {}",
            status.message()
        )),
        _ => TransferError::Unavailable(format!(
            "the identity service did not answer: {}",
            status.message()
        )),
    }
}

#[derive(Debug, Clone)]
pub struct IdentityLedger {
    client: TransferLedgerClient<PeerChannel>,
}

impl IdentityLedger {
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, TransferError> {
        Ok(Arc::new(Self {
            client: TransferLedgerClient::new(
                credentials.channel(address, ExpectedServer::province(province, "identity"))?,
            ),
        }))
    }
}

impl EnrollmentLedger for IdentityLedger {
    fn hold<'a>(
        &'a self,
        task: Uuid,
        student: &'a StudentKey,
        name: &'a str,
        birth_date: NaiveDate,
    ) -> BoxFuture<'a, Result<Held, TransferError>> {
        Box::pin(async move {
            let (registry_number, id_number) = match student {
                StudentKey::RegistryNumber(n) => (n.to_string(), String::new()),
                StudentKey::IdNumber(id) => (String::new(), id.to_string()),
            };
            let held = self
                .client
                .clone()
                .hold_enrollment(ipb::HoldEnrollmentRequest {
                    task_id: task.to_string(),
                    registry_number,
                    id_number,
                    name: name.to_owned(),
                    birth_date: birth_date.to_string(),
                })
                .await
                .map_err(from_identity)?
                .into_inner();
            Ok(Held {
                registry_number: held.registry_number,
                school_code: held.school_code,
                grade: held.grade,
            })
        })
    }

    fn release(&self, task: Uuid) -> BoxFuture<'_, Result<(), TransferError>> {
        Box::pin(async move {
            self.client
                .clone()
                .release_hold(ipb::ReleaseHoldRequest {
                    task_id: task.to_string(),
                })
                .await
                .map_err(from_identity)?;
            Ok(())
        })
    }

    fn complete<'a>(
        &'a self,
        task: Uuid,
        arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>> {
        Box::pin(async move {
            self.client
                .clone()
                .complete_transfer(ipb::CompleteTransferRequest {
                    task_id: task.to_string(),
                    receiving_school_code: arrival.receiving_school.clone(),
                    grade: arrival.grade,
                    entry_date: arrival.entry_date.to_string(),
                    deciders: arrival.deciders.clone(),
                })
                .await
                .map_err(from_identity)?;
            Ok(())
        })
    }

    fn transfer_out(&self, task: Uuid) -> BoxFuture<'_, Result<ipb::MovedStudent, TransferError>> {
        Box::pin(async move {
            self.client
                .clone()
                .transfer_out(ipb::TransferOutRequest {
                    task_id: task.to_string(),
                })
                .await
                .map_err(from_identity)?
                .into_inner()
                .student
                .ok_or_else(|| {
                    TransferError::Internal(
                        "identity answered transfer_out without the student".into(),
                    )
                })
        })
    }

    fn transfer_in<'a>(
        &'a self,
        task: Uuid,
        student: &'a ipb::MovedStudent,
        arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>> {
        Box::pin(async move {
            self.client
                .clone()
                .transfer_in(ipb::TransferInRequest {
                    task_id: task.to_string(),
                    student: Some(student.clone()),
                    receiving_school_code: arrival.receiving_school.clone(),
                    grade: arrival.grade,
                    entry_date: arrival.entry_date.to_string(),
                    deciders: arrival.deciders.clone(),
                })
                .await
                .map_err(from_identity)?;
            Ok(())
        })
    }
}

/// The national node's relay of messages between provinces' transfer services.
#[derive(Debug, Clone)]
pub struct NationalHub {
    relay: TransferRelayClient<PeerChannel>,
    calendar: CalendarRegistryClient<PeerChannel>,
}

impl NationalHub {
    pub fn new(address: &str, credentials: &PeerCredentials) -> Result<Arc<Self>, TransferError> {
        let channel = credentials.channel(address, ExpectedServer::national("national"))?;
        Ok(Arc::new(Self {
            relay: TransferRelayClient::new(channel.clone())
                .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES),
            calendar: CalendarRegistryClient::new(channel)
                .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES),
        }))
    }
}

/// A calendar year as the national node answers it; a year that does not read is refused
/// whole (the pull stops there and is tried again).
fn published_year(year: npb::CalendarYear) -> Result<PublishedYear, TransferError> {
    let wrong = |what: String| {
        TransferError::Unavailable(format!(
            "the national node sent calendar year {} with {what}",
            year.year
        ))
    };
    let mut days = Vec::with_capacity(year.days.len());
    for day in &year.days {
        let date = day
            .date
            .parse()
            .map_err(|_| wrong(format!("the date {:?}", day.date)))?;
        let kind = match npb::CalendarDayKind::try_from(day.kind) {
            Ok(npb::CalendarDayKind::Holiday) => DayKind::Holiday,
            Ok(npb::CalendarDayKind::Workday) => DayKind::Workday,
            _ => return Err(wrong(format!("an unknown day kind {}", day.kind))),
        };
        days.push(CalendarDay {
            date,
            kind,
            name: day.name.clone(),
        });
    }
    let loaded_at = chrono::DateTime::parse_from_rfc3339(&year.loaded_at)
        .map_err(|_| wrong(format!("the load time {:?}", year.loaded_at)))?
        .to_utc();
    Ok(PublishedYear {
        year: year.year,
        days,
        version: year.version,
        loaded_by: year.loaded_by,
        loaded_at,
    })
}

impl CalendarSource for NationalHub {
    fn years_after(
        &self,
        version: i64,
    ) -> BoxFuture<'_, Result<Vec<PublishedYear>, TransferError>> {
        Box::pin(async move {
            let years = self
                .calendar
                .clone()
                .list_calendar_years(npb::ListCalendarYearsRequest {
                    after_version: version,
                })
                .await
                .map_err(|status| {
                    TransferError::Unavailable(format!(
                        "the national calendar registry did not answer: {}",
                        status.message()
                    ))
                })?
                .into_inner()
                .years;
            years.into_iter().map(published_year).collect()
        })
    }
}

impl RelayLink for NationalHub {
    fn relay(
        &self,
        messages: Vec<tpb::SagaMessage>,
    ) -> BoxFuture<'_, Result<Vec<(uuid::Uuid, String)>, TransferError>> {
        Box::pin(async move {
            let answer = self
                .relay
                .clone()
                .relay_messages(tpb::RelayMessagesRequest { messages })
                .await
                .map_err(|status| {
                    TransferError::Unavailable(format!(
                        "the national relay did not take the messages: {}",
                        status.message()
                    ))
                })?
                .into_inner();
            Ok(answer
                .refused
                .into_iter()
                .filter_map(|r| Some((r.message_id.parse().ok()?, r.reason)))
                .collect())
        })
    }
}

/// The province's replica of the published school list.
#[derive(Debug, Clone)]
pub struct ReplicaSchoolList {
    client: ReplicaClient,
}

impl ReplicaSchoolList {
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, TransferError> {
        Ok(Arc::new(Self {
            client: replica_client(credentials, address, province)?,
        }))
    }
}

impl SchoolList for ReplicaSchoolList {
    fn school<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<SchoolFacts>, TransferError>> {
        Box::pin(async move {
            let school = published_school(&self.client, code)
                .await
                .map_err(TransferError::Unavailable)?;
            Ok(school.and_then(|school| {
                let profile = school.profile.as_ref()?;
                (school.status() == spb::SchoolStatus::Open).then_some(())?;
                Some(SchoolFacts {
                    code: school.code.parse().ok()?,
                    division: profile.division.parse().ok()?,
                    registry_authority: profile.registry_authority.parse().ok()?,
                    township: (!profile.township.is_empty()).then(|| profile.township.clone()),
                    stages: stages_of(profile)?,
                })
            }))
        })
    }
}
