//! Each service's settings, read from the node's configuration: the one place that knows both
//! the configuration's names and the services' own.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use xueji_auth::{Authority, TokenVerifier};
use xueji_telemetry::metrics::NodeMetrics;

use crate::config::{NodeConfig, Service, Tier};

/// Where a node's services find their peers: an address left empty in the configuration is
/// this node's own.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    pub(crate) national: String,
    pub(crate) schools: String,
    pub(crate) identity: String,
    /// Each province's node as the national side calls it: the directory of the
    /// configuration, plus this node's own province when it is standalone.
    pub(crate) province_nodes: HashMap<String, String>,
}

impl Peers {
    /// The audience of a national service's token: every province of the directory (a
    /// national node with an empty directory calls nobody, but its token needs some audience
    /// all the same).
    pub(crate) fn every_province(&self) -> Vec<Authority> {
        let mut every: Vec<Authority> = self
            .province_nodes
            .keys()
            .map(|code| Authority::Province(code.clone()))
            .collect();
        every.sort();
        if every.is_empty() {
            every.push(Authority::National);
        }
        every
    }

    pub(crate) fn of(config: &NodeConfig, own: SocketAddr) -> Self {
        let own = own.to_string();
        let or_own = |configured: &str| {
            if configured.is_empty() {
                own.clone()
            } else {
                configured.to_owned()
            }
        };
        let mut province_nodes = config.province_nodes.clone();
        if config.is_provincial() {
            province_nodes
                .entry(config.province.clone())
                .or_insert_with(|| own.clone());
        }
        Self {
            national: or_own(&config.national_address),
            schools: or_own(&config.schools_address),
            identity: or_own(&config.identity_address),
            province_nodes,
        }
    }
}

pub(crate) fn identity(
    config: &NodeConfig,
    peers: &Peers,
    metrics: &NodeMetrics,
) -> xueji_identity::wiring::IdentitySettings {
    xueji_identity::wiring::IdentitySettings {
        province: config.province.clone(),
        national_address: peers.national.clone(),
        schools_address: peers.schools.clone(),
        schools_file: config.schools_file.clone(),
        policy_dir: config.policy_dir.clone(),
        clock: config.clock.clone(),
        outbox_interval: Duration::from_millis(config.outbox_interval_ms),
        succession_sync: Duration::from_millis(config.succession_sync_ms),
        cycle_check: Duration::from_secs(config.cycle_check_secs),
        cycle_batch: config.cycle_batch,
        status_change_sweep: Duration::from_millis(config.status_change_sweep_ms),
        upload_limits: xueji_identity::imports::UploadLimits {
            max_bytes: config.import_max_upload_mib << 20,
            idle: Duration::from_secs(config.import_idle_secs),
            at_once: config.imports_at_once,
        },
        outbox_delivered: metrics.outbox_delivered.clone(),
        outbox_rejected: metrics.outbox_rejected.clone(),
    }
}

pub(crate) fn intake(config: &NodeConfig, peers: &Peers) -> xueji_schools::wiring::IntakeSettings {
    xueji_schools::wiring::IntakeSettings {
        province: config.province.clone(),
        national_address: peers.national.clone(),
        replica_sync: Duration::from_secs(config.replica_sync_secs),
    }
}

pub(crate) fn transfers(
    config: &NodeConfig,
    peers: &Peers,
    metrics: &NodeMetrics,
) -> xueji_transfers::wiring::TransferSettings {
    xueji_transfers::wiring::TransferSettings {
        province: config.province.clone(),
        identity_address: peers.identity.clone(),
        schools_address: peers.schools.clone(),
        // Only a provincial node of a federation has other provinces to transfer with.
        national_address: (config.tier == Tier::Province).then(|| peers.national.clone()),
        policy_dir: config.policy_dir.clone(),
        clock: config.clock.clone(),
        sweep: Duration::from_millis(config.transfer_sweep_ms),
        calendar_sync: Duration::from_secs(config.calendar_sync_secs),
        gauges: xueji_transfers::saga::SagaGauges {
            estimated_deadlines: metrics.transfer_deadlines_estimated.clone(),
            overdue_steps: metrics.transfer_steps_overdue.clone(),
            effects_pending: metrics.transfer_effects_pending.clone(),
            messages_set_aside: metrics.transfer_messages_set_aside.clone(),
        },
    }
}

pub(crate) fn stats(config: &NodeConfig, peers: &Peers) -> xueji_stats::wiring::StatsSettings {
    use xueji_stats::api::Tier as StatsTier;
    xueji_stats::wiring::StatsSettings {
        tier: match config.tier {
            Tier::Province => StatsTier::Province,
            Tier::National => StatsTier::National,
            Tier::Standalone => StatsTier::Standalone,
        },
        province: config.province.clone(),
        identity_address: peers.identity.clone(),
        schools_address: peers.schools.clone(),
        national_address: peers.national.clone(),
        policy_dir: config.policy_dir.clone(),
        clock: config.clock.clone(),
        feed_interval: Duration::from_millis(config.stats_feed_ms),
        report_interval: Duration::from_millis(config.stats_report_ms),
    }
}

pub(crate) fn national(
    config: &NodeConfig,
    peers: &Peers,
    verifier: TokenVerifier,
    metrics: &NodeMetrics,
) -> xueji_national::wiring::NationalSettings {
    xueji_national::wiring::NationalSettings {
        every_province: peers.every_province(),
        province_nodes: peers.province_nodes.clone(),
        index_key_file: config.pki_dir.join(xueji_national::index_key::FILE),
        relay_sweep: Duration::from_millis(config.transfer_sweep_ms),
        verifier,
        witness_alarms: metrics.audit_witness_alarms.clone(),
    }
}

/// Identity, schools, transfers and the national index write audit entries; the sealer
/// chains them.
pub(crate) fn audited(config: &NodeConfig) -> bool {
    config.runs(Service::Identity)
        || config.runs(Service::Schools)
        || config.runs(Service::Transfers)
        || (config.is_national() && config.runs(Service::National))
}
