//! Readings of the province's school replica shared by the services that consult it
//! (registration in identity, the transfer saga).

use tonic::Code;
use xueji_codes::{SchoolCode, Stage, StageOffered};
use xueji_proto::schools::v1::{self as pb, school_intake_client::SchoolIntakeClient};
use xueji_rpc::{ExpectedServer, PeerChannel, PeerCredentials, UnreachablePeer};

/// A client of a province's school replica (`SchoolIntake`), as a service of that province
/// reaches it.
pub type ReplicaClient = SchoolIntakeClient<PeerChannel>;

/// The replica of `province` served at `address`, talking only to that province's schools
/// service.
pub fn replica_client(
    credentials: &PeerCredentials,
    address: &str,
    province: &str,
) -> Result<ReplicaClient, UnreachablePeer> {
    Ok(SchoolIntakeClient::new(credentials.channel(
        address,
        ExpectedServer::province(province, "schools"),
    )?))
}

/// A school of the province's replica (`SchoolIntake.GetSchool`): `None` when the list does not
/// hold it; an error, in the user's terms, when the replica did not answer.
pub async fn published_school(
    client: &ReplicaClient,
    code: &SchoolCode,
) -> Result<Option<pb::School>, String> {
    match client
        .clone()
        .get_school(pb::GetSchoolRequest {
            code: code.to_string(),
        })
        .await
    {
        Ok(response) => Ok(response.into_inner().school),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(format!(
            "the school list did not answer: {}",
            status.message()
        )),
    }
}

/// The stages of a published profile; `None` if one is not a stage this node knows.
pub fn stages_of(profile: &pb::SchoolProfile) -> Option<Vec<StageOffered>> {
    profile
        .stages
        .iter()
        .map(|offered| {
            let stage = match pb::Stage::try_from(offered.stage).ok()? {
                pb::Stage::Primary => Stage::Primary,
                pb::Stage::Junior => Stage::Junior,
                pb::Stage::Senior => Stage::Senior,
                pb::Stage::Special => Stage::Special,
                pb::Stage::Unspecified => return None,
            };
            Some(StageOffered {
                stage,
                years: offered.years,
            })
        })
        .collect()
}
