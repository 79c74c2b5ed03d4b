//! A federation on real sockets with real mutual TLS: the national node and provincial nodes
//! (Fujian 35, Anhui 34), each on its own database and port, with certificates from a
//! federation PKI (national root, one intermediate per province, per-service certificates).
//! Nodes can be killed and restarted on the same address and database.

use std::collections::BTreeMap;

use futures::FutureExt;
use tokio::net::TcpListener;
use xueji_auth::{Authority, Clock, Grant, Level, Role, TokenSigner};
use xueji_client::{
    DirectoryClient, IdentityClient, IntakeClient, directory_client, identity_client, intake_client,
};
use xueji_demo::seed;
use xueji_node::{
    config::{NodeConfig, Tier},
    node::{Database, RunningNode},
    pki,
};
use xueji_proto::{identity::v1 as pb, schools::v1 as spb};

pub const PROVINCES: [&str; 2] = ["35", "34"];

/// A province (Zhejiang) that holds the federation's certificates and its own token key but runs
/// no node and is in no directory: the third party of the trust tests, misbehaving with what a
/// province legitimately has.
pub const OUTSIDER: &str = "33";

/// One node of the federation: its configuration, its database, and the node while it runs.
pub struct Member {
    pub config: NodeConfig,
    pub pool: sqlx::PgPool,
    pub node: Option<RunningNode>,
}

impl Member {
    pub fn address(&self) -> String {
        self.config.listen.to_string()
    }

    /// Starts the node on `listener` (bound when the federation chose its addresses), or on
    /// its address again after a kill.
    async fn start_on(&mut self, listener: Option<TcpListener>) {
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(self.config.listen)
                .await
                .expect("the node's address is free again"),
        };
        let database = Database::open(&self.config, xueji_db::Durability::Throwaway)
            .await
            .expect("database");
        self.node = Some(
            RunningNode::start_on(&self.config, database, listener)
                .await
                .expect("node starts"),
        );
    }
}

pub struct Federation {
    pub dir: tempfile::TempDir,
    pub signer: TokenSigner,
    /// The time every node mints and checks tokens at; tests move it forward to live through
    /// weeks.
    pub clock: Clock,
    pub national: Member,
    pub provinces: BTreeMap<String, Member>,
}

impl Federation {
    /// Starts the national node and both provinces, seeds and publishes the school list on the
    /// national node, and has both provinces replicate it.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki_root = dir.path().join("pki");
        pki::init_federation(&pki_root, &[PROVINCES[0], PROVINCES[1], OUTSIDER])
            .expect("federation pki");
        let signer = pki::signer(&pki_root.join("national")).expect("signer");
        let clock = Clock::system();

        // Every node's listener is bound before any node starts, so that each knows the others'
        // addresses, and kept until its node takes it: a port released in between could be
        // taken by another test's node.
        let mut addresses = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        for name in ["national", PROVINCES[0], PROVINCES[1]] {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addresses.insert(name, listener.local_addr().expect("address"));
            listeners.insert(name, listener);
        }
        let national_db = xueji_testkit::database("national-node", |pool| {
            async move {
                xueji_schools::store::national::migrate(&pool).await?;
                xueji_national::store::migrate(&pool).await?;
                xueji_stats::store::migrate(&pool).await?;
                Ok(())
            }
            .boxed()
        })
        .await;
        let mut national = Member {
            config: NodeConfig {
                listen: addresses["national"],
                tier: Tier::National,
                province: "35".into(),
                pki_dir: pki_root.join("national"),
                database_url: national_db.url.clone(),
                data_dir: dir.path().join("national-data"),
                province_nodes: PROVINCES
                    .iter()
                    .map(|p| (p.to_string(), addresses[p].to_string()))
                    .collect(),
                database_connections: 8,
                clock: clock.clone(),
                // Tests drive intake-sized loads through one operator; the budget is tested
                // on its own.
                operator_requests_per_second: 0,
                audit_witness_secs: 1,
                metrics_listen: "127.0.0.1:0".into(),
                ..NodeConfig::default()
            },
            pool: national_db.pool.clone(),
            node: None,
        };
        national.start_on(listeners.remove("national")).await;
        let authority = xueji_schools::store::national::NationalStore::new(national_db.pool);
        seed::load(&authority, |_, _| {}).await.expect("seed");

        let mut provinces = BTreeMap::new();
        for province in PROVINCES {
            let db = xueji_testkit::database("province-node", |pool| {
                async move {
                    xueji_identity::store::migrate(&pool).await?;
                    xueji_schools::store::provincial::migrate(&pool).await?;
                    xueji_transfers::store::migrate(&pool).await?;
                    xueji_stats::store::migrate(&pool).await?;
                    Ok(())
                }
                .boxed()
            })
            .await;
            let mut member = Member {
                config: NodeConfig {
                    listen: addresses[province],
                    tier: Tier::Province,
                    province: province.into(),
                    pki_dir: pki_root.join(province),
                    database_url: db.url.clone(),
                    data_dir: dir.path().join(format!("{province}-data")),
                    national_address: addresses["national"].to_string(),
                    replica_sync_secs: 3600,
                    calendar_sync_secs: 1,
                    outbox_interval_ms: 200,
                    database_connections: 8,
                    clock: clock.clone(),
                    operator_requests_per_second: 0,
                    audit_witness_secs: 1,
                    stats_report_ms: 500,
                    metrics_listen: "127.0.0.1:0".into(),
                    ..NodeConfig::default()
                },
                pool: db.pool,
                node: None,
            };
            member.start_on(listeners.remove(province)).await;
            provinces.insert(province.to_owned(), member);
        }
        let federation = Self {
            dir,
            signer,
            clock,
            national,
            provinces,
        };
        for province in PROVINCES {
            let mut intake = intake_client(
                &federation.provinces[province].address(),
                &federation.pki(province),
                &federation.token(Level::Province, &format!("{province}0000"), Role::Operator),
            )
            .await
            .expect("intake");
            intake
                .sync_replica(spb::SyncReplicaRequest {})
                .await
                .expect("replica sync over mutual TLS");
        }
        federation
    }

    /// The PKI folder of `node` ("national", "35", "34", or "authorities": the CA keys).
    pub fn pki(&self, node: &str) -> std::path::PathBuf {
        self.dir.path().join("pki").join(node)
    }

    /// A token signed by the national node (which may grant any scope), for every node of the
    /// federation.
    pub fn token(&self, level: Level, jurisdiction: &str, role: Role) -> String {
        let mut audience = vec![Authority::National];
        audience.extend(
            PROVINCES
                .iter()
                .map(|p| Authority::Province((*p).to_owned())),
        );
        self.mint(&self.signer, level, jurisdiction, role, audience)
    }

    /// A token signed by `province`'s own key, for its node and the national node.
    pub fn province_token(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> String {
        let signer = pki::signer(&self.pki(province)).expect("the province's signing key");
        let audience = vec![
            Authority::Province(province.to_owned()),
            Authority::National,
        ];
        self.mint(&signer, level, jurisdiction, role, audience)
    }

    /// A token signed by the national node for `user` (every other token is the user
    /// "tester"'s), for every node of the federation.
    pub fn token_of(&self, user: &str, level: Level, jurisdiction: &str, role: Role) -> String {
        let mut audience = vec![Authority::National];
        audience.extend(
            PROVINCES
                .iter()
                .map(|p| Authority::Province((*p).to_owned())),
        );
        self.mint_for(user, &self.signer, level, jurisdiction, role, audience)
    }

    /// A token of `signer`'s valid for 12 hours from the federation's clock.
    fn mint(
        &self,
        signer: &TokenSigner,
        level: Level,
        jurisdiction: &str,
        role: Role,
        audience: Vec<Authority>,
    ) -> String {
        self.mint_for("tester", signer, level, jurisdiction, role, audience)
    }

    fn mint_for(
        &self,
        user: &str,
        signer: &TokenSigner,
        level: Level,
        jurisdiction: &str,
        role: Role,
        audience: Vec<Authority>,
    ) -> String {
        let grant = Grant {
            user: user.into(),
            level,
            jurisdiction: jurisdiction.into(),
            role,
            audience,
        };
        signer
            .mint(&grant, self.clock.now(), chrono::Duration::hours(12))
            .expect("token")
    }

    /// An identity client of `province`'s node with that province's operator certificate.
    pub async fn identity(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> IdentityClient {
        identity_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("identity client")
    }

    /// A statistics client of a node (`national` or a province code) with that node's operator
    /// certificate.
    pub async fn stats(
        &self,
        node: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::StatsClient {
        let address = if node == "national" {
            self.national.address()
        } else {
            self.provinces[node].address()
        };
        xueji_client::stats_client(
            &address,
            &self.pki(node),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("stats client")
    }

    /// A status-change client of `province`'s node with that province's operator certificate.
    pub async fn status_changes(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::StatusChangeClient {
        xueji_client::status_change_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("status-change client")
    }

    /// An import client of `province`'s node with that province's operator certificate.
    pub async fn imports(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::ImportClient {
        xueji_client::import_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("import client")
    }

    /// A channel to `province`'s node with that province's operator certificate and a token
    /// of `level`, `jurisdiction` and `role` (for a client the federation has no method for).
    pub async fn operator_channel(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::OperatorChannel {
        xueji_client::operator_channel(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("operator channel")
    }

    /// A class-service client of Fujian's node as the operator of `school`.
    pub async fn classes(
        &self,
        school: &str,
    ) -> xueji_proto::identity::v1::class_service_client::ClassServiceClient<
        xueji_client::OperatorChannel,
    > {
        xueji_proto::identity::v1::class_service_client::ClassServiceClient::new(
            self.operator_channel("35", Level::School, school, Role::Operator)
                .await,
        )
    }

    /// A school-year client of `province`'s node with that province's operator certificate.
    pub async fn school_year(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::SchoolYearClient {
        xueji_client::school_year_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("school-year client")
    }

    /// A transfer-service client of `province`'s node with that province's operator
    /// certificate.
    pub async fn transfers(
        &self,
        province: &str,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::TransfersClient {
        xueji_client::transfers_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("transfers client")
    }

    /// A client of the national directory, with the operator certificate of `pki` ("national"
    /// or a province).
    pub async fn directory(&self, pki: &str, token: &str) -> DirectoryClient {
        directory_client(&self.national.address(), &self.pki(pki), token)
            .await
            .expect("directory client")
    }

    /// A client of the national calendar registry, with the national operator certificate.
    pub async fn calendar(&self, token: &str) -> xueji_client::CalendarClient {
        let channel =
            xueji_client::operator_channel(&self.national.address(), &self.pki("national"), token)
                .await
                .expect("a channel to the national node");
        xueji_client::CalendarClient::new(channel)
    }

    pub fn province(&self, province: &str) -> &Member {
        &self.provinces[province]
    }

    pub async fn kill_national(&mut self) {
        self.national.node.take().expect("running").kill().await;
    }

    pub async fn restart_national(&mut self) {
        self.national.start_on(None).await;
    }

    pub async fn kill_province(&mut self, province: &str) {
        let member = self.provinces.get_mut(province).expect("province");
        member.node.take().expect("running").kill().await;
    }

    pub async fn restart_province(&mut self, province: &str) {
        self.provinces
            .get_mut(province)
            .expect("province")
            .start_on(None)
            .await;
    }

    /// The registry authority of a school, from `province`'s replica.
    pub async fn school_county(&self, province: &str, school: &str) -> String {
        sqlx::query_scalar(
            "SELECT record->'profile'->>'registry_authority' FROM schools_provincial.schools \
             WHERE code = $1",
        )
        .bind(school)
        .fetch_one(&self.province(province).pool)
        .await
        .expect("school in the replica")
    }

    /// Open primary schools of `province` in its replica, by code.
    pub async fn primary_schools(&self, province: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT code FROM schools_provincial.schools WHERE code LIKE '21' || $1 || '%' \
             AND record->>'status' = 'open' ORDER BY code",
        )
        .bind(province)
        .fetch_all(&self.province(province).pool)
        .await
        .expect("schools")
    }

    /// A client of `province`'s school intake (and replica), as a province operator.
    pub async fn intake(&self, province: &str) -> IntakeClient {
        intake_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(Level::Province, &format!("{province}0000"), Role::Operator),
        )
        .await
        .expect("intake")
    }

    /// What `node`'s `/metrics` answers now.
    pub async fn metrics(&self, node: &Member) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = node
            .node
            .as_ref()
            .and_then(|running| running.metrics_address)
            .expect("the node serves metrics");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("answer");
        answer
    }

    /// The first open primary school of `province`'s replica.
    pub async fn a_primary_school(&self, province: &str) -> String {
        let mut intake = intake_client(
            &self.provinces[province].address(),
            &self.pki(province),
            &self.token(Level::Province, &format!("{province}0000"), Role::Operator),
        )
        .await
        .expect("intake");
        intake
            .list_schools(spb::ListSchoolsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("schools")
            .into_inner()
            .schools
            .into_iter()
            .map(|school| school.code)
            .find(|code| code.starts_with("21"))
            .expect("a primary school")
    }

    /// Waits until `province`'s outbox is fully delivered (or panics after 120 s: a bound for a
    /// loaded machine, not a timing the test assumes).
    pub async fn delivered(&self, province: &str) {
        let pool = &self.provinces[province].pool;
        for _ in 0..1200 {
            let (undelivered, _) = xueji_identity::store::outbox::backlog(pool)
                .await
                .expect("backlog");
            if undelivered == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("province {province}'s outbox was not delivered within 120 s");
    }
}

/// A registration at `school` of a student with resident ID `id_number`.
pub fn registration_at(
    key: &str,
    name: &str,
    school: &str,
    id_number: &str,
) -> pb::RegisterStudentRequest {
    let id: xueji_codes::ResidentId = id_number.parse().expect("valid ID");
    let birth = id.birth_date();
    pb::RegisterStudentRequest {
        class_name: String::new(),
        migrant_child: false,
        left_behind_child: false,
        continues_registry_number: String::new(),
        provincial_fields: Default::default(),
        idempotency_key: key.into(),
        name: name.into(),
        gender: match id.gender() {
            xueji_codes::Gender::Male => pb::Gender::Male,
            xueji_codes::Gender::Female => pb::Gender::Female,
        } as i32,
        birth_date: birth.to_string(),
        ethnicity: "01".into(),
        document_type: pb::DocumentType::ResidentIdCard as i32,
        document_number: id_number.into(),
        school_code: school.into(),
        grade: 1,
        entry_date: "2024-09-01".into(),
        entry_route: pb::EntryRoute::NearbyAdmission as i32,
        guardian: Some(pb::Guardian {
            name: "王建国".into(),
            relation: "父亲".into(),
            phone: "13800000000".into(),
        }),
    }
}
