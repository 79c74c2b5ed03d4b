//! The integration-test harness: a provincial node on a real socket with real mutual TLS, on
//! its own fresh PostgreSQL database, and clients for any level, jurisdiction and role.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

pub mod federation;
pub mod hostile;
pub mod imports;
pub mod matrix_fixture;
pub mod raw_rpc;
pub mod relay;
pub mod transfers;

use futures::FutureExt;
use tonic_types::StatusExt;
use xueji_auth::{Level, Role, TokenSigner};
use xueji_client::{
    AuthorityClient, IdentityClient, IntakeClient, authority_client, identity_client,
    intake_client, mint,
};
use xueji_demo::sample;
use xueji_node::{
    config::NodeConfig,
    node::{Database, RunningNode},
    pki,
};
use xueji_proto::identity::v1 as pb;

pub struct TestNode {
    pub node: RunningNode,
    pub dir: tempfile::TempDir,
    pub signer: TokenSigner,
    pub pool: sqlx::PgPool,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a node after `adjust` had its say on the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki_dir = dir.path().join("pki");
        pki::init(&pki_dir).expect("pki");
        let schools_file = dir.path().join("schools.csv");
        std::fs::write(&schools_file, sample::SCHOOLS_CSV).expect("schools");
        let database = xueji_testkit::database("node", |pool| {
            async move {
                xueji_identity::store::migrate(&pool).await?;
                xueji_schools::store::provincial::migrate(&pool).await?;
                xueji_schools::store::national::migrate(&pool).await?;
                xueji_national::store::migrate(&pool).await?;
                Ok(())
            }
            .boxed()
        })
        .await;
        let mut config = NodeConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            pki_dir: pki_dir.clone(),
            database_url: database.url.clone(),
            data_dir: dir.path().join("data"),
            schools_file: Some(schools_file),
            database_connections: 8,
            ..NodeConfig::default()
        };
        adjust(&mut config);
        let opened = Database::open(&config, xueji_db::Durability::Throwaway)
            .await
            .expect("database");
        let node = RunningNode::start(&config, opened).await.expect("node");
        let signer = pki::signer(&pki_dir).expect("signer");
        Self {
            node,
            dir,
            signer,
            pool: database.pool,
        }
    }

    /// A node whose registrations read the replica of the published school list (no fixed
    /// list), serving the national authority as well.
    pub async fn start_registry() -> Self {
        Self::start_with(|config| config.schools_file = None).await
    }

    pub async fn intake(&self, level: Level, jurisdiction: &str, role: Role) -> IntakeClient {
        intake_client(
            &self.address(),
            &self.pki_dir(),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("client")
    }

    pub async fn authority(&self, level: Level, jurisdiction: &str, role: Role) -> AuthorityClient {
        authority_client(
            &self.address(),
            &self.pki_dir(),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("client")
    }

    /// The national authority as a province's schools service reaches it: with the node's own
    /// certificate (a service identity), not an operator's.
    pub async fn authority_as_service(&self, jurisdiction: &str) -> AuthorityClient {
        let channel = xueji_rpc::connect(
            &self.address(),
            &xueji_rpc::ClientConfig {
                tls: xueji_rpc::TlsSource::from_dir(&self.pki_dir(), "node").expect("node TLS"),
                server: xueji_rpc::ExpectedServer::AnyNode,
                request_timeout: std::time::Duration::from_secs(30),
            },
        )
        .await
        .expect("channel");
        let token = self.token(Level::Province, jurisdiction, Role::Operator);
        AuthorityClient::new(tonic::service::interceptor::InterceptedService::new(
            channel,
            xueji_rpc::BearerToken::new(&token).expect("token"),
        ))
    }

    /// The actions of every audit entry so far, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT action FROM audit.entries ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .expect("audit entries")
    }

    pub fn pki_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("pki")
    }

    pub fn address(&self) -> String {
        self.node.address.to_string()
    }

    pub fn token(&self, level: Level, jurisdiction: &str, role: Role) -> String {
        mint(&self.signer, "tester", level, jurisdiction, role).expect("token")
    }

    pub async fn client(&self, level: Level, jurisdiction: &str, role: Role) -> IdentityClient {
        identity_client(
            &self.address(),
            &self.pki_dir(),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("client")
    }

    /// A status-change client of this node.
    pub async fn status_changes(
        &self,
        level: Level,
        jurisdiction: &str,
        role: Role,
    ) -> xueji_client::StatusChangeClient {
        xueji_client::status_change_client(
            &self.address(),
            &self.pki_dir(),
            &self.token(level, jurisdiction, role),
        )
        .await
        .expect("status-change client")
    }

    /// (students, enrollments, audit entries)
    pub async fn counts(&self) -> (i64, i64, i64) {
        xueji_identity::store::Store::new(self.pool.clone())
            .counts()
            .await
            .expect("counts")
    }
}

/// Uploads a small PNG as evidence of student `number` through `desk`; answers its id.
pub async fn png_evidence(
    desk: &mut xueji_client::StatusChangeClient,
    number: &str,
    file_name: &str,
) -> Result<String, tonic::Status> {
    Ok(desk
        .upload_evidence(pb::UploadEvidenceRequest {
            registry_number: number.into(),
            file_name: file_name.into(),
            content: matrix_fixture::PNG.to_vec(),
        })
        .await?
        .into_inner()
        .file
        .expect("an uploaded file")
        .id)
}

/// A resident ID number from its first 17 digits.
pub fn resident_id(body17: &str) -> String {
    xueji_codes::ResidentId::from_body(body17)
        .expect("a valid body")
        .to_string()
}

/// A valid registration at the Gulou primary school (2135000101).
pub fn registration(key: &str, name: &str, sequence: u32) -> pb::RegisterStudentRequest {
    // Odd sequence digits are male.
    let id = resident_id(&format!("35010220180307{:03}", sequence * 2 + 1));
    pb::RegisterStudentRequest {
        class_name: String::new(),
        migrant_child: false,
        left_behind_child: false,
        continues_registry_number: String::new(),
        provincial_fields: Default::default(),
        idempotency_key: key.into(),
        name: name.into(),
        gender: pb::Gender::Male as i32,
        birth_date: "2018-03-07".into(),
        ethnicity: "01".into(),
        document_type: pb::DocumentType::ResidentIdCard as i32,
        document_number: id,
        school_code: "2135000101".into(),
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

/// The fields a status's `google.rpc.BadRequest` detail names.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Approves `number` as `approver` and answers the student once the national check answered.
/// The approval answers `active` itself when the national node answers within its patience;
/// when it does not (a loaded machine), the student is awaiting the national check and this
/// waits for the answer (up to 60 s) instead of assuming it came within 3 s.
pub async fn approve_until_active(approver: &mut IdentityClient, number: &str) -> pb::Student {
    let approved = approver
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: number.to_owned(),
        })
        .await
        .expect("approved")
        .into_inner()
        .student
        .expect("student");
    if approved.status() != pb::EnrollmentStatus::AwaitingNationalCheck {
        return approved;
    }
    for _ in 0..600 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let student = approver
            .get_student(pb::GetStudentRequest {
                number: number.to_owned(),
            })
            .await
            .expect("the student")
            .into_inner()
            .student
            .expect("student");
        if student.status() != pb::EnrollmentStatus::AwaitingNationalCheck {
            return student;
        }
    }
    panic!("the national check of {number} did not answer within 60 s");
}

/// The environment variable that runs the slow suites (a national-size publication, the
/// hostile files' peak memory). `.ci/run` sets it; a developer's `cargo test` skips them.
pub const SLOW_TESTS: &str = "XUEJI_SLOW_TESTS";

/// Whether the slow suite `name` runs here; when it does not, says so on stderr (the test then
/// returns, passing without checking anything, which its output makes plain).
pub fn slow_suite_runs(name: &str) -> bool {
    if std::env::var_os(SLOW_TESTS).is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    eprintln!("skipped: {name} is a slow suite; {SLOW_TESTS}=1 runs it (as .ci/run does)");
    false
}
