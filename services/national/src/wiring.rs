//! The national node's own service wires itself: the index (keyed with the node's index key),
//! the province directory, the relay between provinces' transfer services (and its loop), and
//! the calendar registry.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use xueji_auth::{Authority, Level, TokenVerifier};
use xueji_codes::Divisions;
use xueji_db::PgPool;
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    api::NationalApi, calendar::CalendarApi, index_key::IndexKey, provinces::ProvinceClients,
    relay::Relay, store::Store,
};

/// What the national service needs of the node.
#[derive(Debug, Clone)]
pub struct NationalSettings {
    /// Each province's node (2-digit code → `host:port`): the directory.
    pub province_nodes: HashMap<String, String>,
    /// The audience of the national service's token: every province it calls.
    pub every_province: Vec<Authority>,
    /// The index key's file (`index-key.secret` in the node's PKI folder).
    pub index_key_file: std::path::PathBuf,
    /// How often the relay forwards what it holds.
    pub relay_sweep: Duration,
    /// The token keys the index checks witnessed audit heads with.
    pub verifier: TokenVerifier,
    /// Counted when a province's audit head does not extend the one witnessed before.
    pub witness_alarms: Counter,
}

/// Mounts the national index, the directory, the relay and the calendar registry.
pub async fn mount(
    settings: NationalSettings,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<()> {
    let index_key = Arc::new(
        IndexKey::load(&settings.index_key_file)
            .context("the national index keys ID numbers and names with it")?,
    );
    crate::store::key_index(&pool, &index_key)
        .await
        .map_err(|e| anyhow::anyhow!("keying the national index: {e}"))?;
    let store = Store::new(pool.clone());
    let divisions = Divisions::bundled();
    for (code, address) in &settings.province_nodes {
        let name = format!("{code}0000")
            .parse()
            .ok()
            .and_then(|division| divisions.get(division))
            .map(|division| division.name.clone())
            .with_context(|| format!("province_nodes: {code:?} is not a province code"))?;
        store
            .upsert_province(
                code,
                &name,
                address,
                &xueji_pki::province_service_id(code, "identity"),
            )
            .await
            .with_context(|| format!("recording province {code} in the directory"))?;
    }
    let as_ministry = credentials.for_service(
        "national",
        "service:national",
        Level::Ministry,
        "",
        settings.every_province,
    )?;
    let provinces = Arc::new(ProvinceClients::new(
        as_ministry.tls.clone(),
        as_ministry.request_timeout,
        as_ministry.token.clone(),
        as_ministry.also_accept.clone(),
    ));
    let national = NationalApi::new(
        store,
        provinces.clone(),
        settings.verifier,
        settings.witness_alarms,
        index_key.clone(),
    );
    mount.serve(national.index_service());
    mount.serve(national.directory_service());
    let relay = Relay::new(
        Store::new(pool.clone()),
        provinces,
        index_key,
        as_ministry.tls.clone(),
    );
    mount.spawn(relay.clone().run(settings.relay_sweep));
    mount.serve(relay.into_service());
    mount.serve(CalendarApi::new(Store::new(pool)).into_service());
    Ok(())
}

/// Runs the national schema's migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::migrate(pool)
        .await
        .context("migrating the national index schema")
}
