//! The school-code registry wires itself, in either role: the provincial intake with its
//! replica of the national list (and the loop that keeps it in sync), or the national
//! authority (which asks every province's identity service before it closes a school).

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use xueji_auth::{Authority, Level};
use xueji_db::PgPool;
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    api::{authority::AuthorityApi, intake::IntakeApi},
    links::{ProvinceIdentities, WorkloadSource, Workloads, authority_client},
    replica::Replicator,
    store::{national::NationalStore, provincial::ProvincialStore},
};

/// What the provincial intake and replica need of the node.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// The province (2 digits).
    pub province: String,
    /// The national authority the replica pulls from.
    pub national_address: String,
    /// How often the replica pulls.
    pub replica_sync: Duration,
}

/// Mounts the provincial intake and starts its replica's sync.
pub fn mount_intake(
    settings: IntakeSettings,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<()> {
    let province = settings.province.as_str();
    let as_province = credentials.for_service(
        "schools",
        &format!("service:schools-{province}"),
        Level::Province,
        &format!("{province}0000"),
        vec![Authority::National],
    )?;
    let replica = ProvincialStore::new(pool);
    let replicator = Replicator::new(
        replica.clone(),
        authority_client(&as_province, &settings.national_address)?,
        province,
    );
    mount.serve(IntakeApi::new(replica, replicator.clone(), province).into_service());
    mount.spawn(replicator.run(settings.replica_sync));
    Ok(())
}

/// Mounts the national authority. `province_nodes` maps each province to its node, whose
/// identity service says whether a school still has students; `audience` is every province
/// its token is for.
pub fn mount_authority(
    province_nodes: &HashMap<String, String>,
    audience: Vec<Authority>,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<()> {
    let as_ministry = credentials.for_service(
        "schools",
        "service:schools-national",
        Level::Ministry,
        "",
        audience,
    )?;
    let identities: Arc<dyn WorkloadSource> =
        Arc::new(ProvinceIdentities::new(province_nodes, &as_ministry)?);
    mount.serve(
        AuthorityApi::new(NationalStore::new(pool), Workloads::new(vec![identities]))
            .into_service(),
    );
    Ok(())
}

/// Runs the migrations of the provincial schema (intake, replica).
pub async fn migrate_provincial(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::provincial::migrate(pool)
        .await
        .context("migrating the provincial schools schema")
}

/// Runs the migrations of the national schema (the authority).
pub async fn migrate_national(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::national::migrate(pool)
        .await
        .context("migrating the national schools schema")
}
