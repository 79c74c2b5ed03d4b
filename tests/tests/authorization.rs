//! The authorization matrix, proven against a running federation: every RPC of the proto
//! descriptors × every principal × {an object of the principal's own, a foreign one, a missing
//! one}, each answered as `proto/xueji/authorization.toml` declares, and foreign exactly like
//! missing. An RPC without a row (or without a request here) fails the test.

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    service::interceptor::InterceptedService,
    transport::Channel,
};
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, national::v1 as npb, schools::v1 as spb};
use xueji_rpc::{AuthorizationMatrix, BearerToken, ClientConfig, ExpectedServer, Row, TlsSource};
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
};

/// Requests and answers as bytes: one generic caller for every RPC.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

type Client = InterceptedService<Channel, BearerToken>;

async fn call(client: &Client, method: &str, request: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(client.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_str(&format!("/{method}")).expect("a path");
    grpc.unary(tonic::Request::new(request), path, RawCodec)
        .await
        .map(|_| ())
}

/// Every RPC of the Xueji services in the bundled descriptors, as `package.Service/Method`.
fn described_rpcs() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(xueji_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors decode");
    let mut rpcs = BTreeSet::new();
    for file in set.file {
        let package = file.package().to_owned();
        if !package.starts_with("xueji.") {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                rpcs.insert(format!("{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    rpcs
}

/// Who calls: the certificate (node folder and stem), and what the token grants.
#[derive(Debug, Clone)]
struct Principal {
    name: &'static str,
    pki: &'static str,
    stem: &'static str,
    level: Level,
    jurisdiction: String,
    role: Role,
}

impl Principal {
    /// How far the principal reaches, to choose its own and foreign objects.
    fn reach(&self) -> Reach {
        match self.level {
            Level::Ministry => Reach::Nation,
            Level::Province => Reach::Province,
            Level::City => Reach::City,
            Level::County => Reach::County,
            Level::School => Reach::School,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Nation,
    Province,
    City,
    County,
    School,
}

fn principals(fixture: &Fixture) -> Vec<Principal> {
    let human = |name, pki, level, jurisdiction: &str, role| Principal {
        name,
        pki,
        stem: "operator",
        level,
        jurisdiction: jurisdiction.to_owned(),
        role,
    };
    let service = |name, pki, stem, level, jurisdiction: &str| Principal {
        name,
        pki,
        stem,
        level,
        jurisdiction: jurisdiction.to_owned(),
        role: Role::Operator,
    };
    vec![
        human(
            "ministry-operator",
            "national",
            Level::Ministry,
            "",
            Role::Operator,
        ),
        human(
            "ministry-approver",
            "national",
            Level::Ministry,
            "",
            Role::Approver,
        ),
        human(
            "province-operator",
            "35",
            Level::Province,
            "350000",
            Role::Operator,
        ),
        human(
            "province-approver",
            "35",
            Level::Province,
            "350000",
            Role::Approver,
        ),
        human("city-operator", "35", Level::City, "350100", Role::Operator),
        human("city-approver", "35", Level::City, "350100", Role::Approver),
        human(
            "county-operator",
            "35",
            Level::County,
            "350102",
            Role::Operator,
        ),
        human(
            "county-approver",
            "35",
            Level::County,
            "350102",
            Role::Approver,
        ),
        human(
            "school-operator",
            "35",
            Level::School,
            &fixture.gulou,
            Role::Operator,
        ),
        service(
            "identity-service",
            "35",
            "identity",
            Level::Province,
            "350000",
        ),
        service(
            "schools-service",
            "35",
            "schools",
            Level::Province,
            "350000",
        ),
        service(
            "national-service",
            "national",
            "national",
            Level::Ministry,
            "",
        ),
        service(
            "national-schools-service",
            "national",
            "schools",
            Level::Ministry,
            "",
        ),
    ]
}

/// What each call is made on.
struct Fixture {
    /// Primary schools: Gulou (350102), Taijiang (350103, the same city), Xiamen (350203),
    /// and one in Anhui.
    gulou: String,
    taijiang: String,
    xiamen: String,
    anhui: String,
    /// A pending student at each.
    students: BTreeMap<&'static str, String>,
    /// Applications filed in Gulou, waiting for the county, the city and the province: one set
    /// to endorse, one to send back.
    applications: std::collections::HashMap<Level, String>,
    returnable: std::collections::HashMap<Level, String>,
    /// Applications filed in Taijiang and in Xiamen.
    taijiang_application: String,
    xiamen_application: String,
    /// An application waiting for the ministry.
    submitted: String,
}

impl Fixture {
    fn own(&self, method: &str, object: &str, principal: &Principal) -> Option<String> {
        let applications = if method.ends_with("/ReturnApplication") {
            &self.returnable
        } else {
            &self.applications
        };
        match object {
            "student" => Some(self.students["gulou"].clone()),
            "school" => Some(self.gulou.clone()),
            // Schools have no part in applications: nothing there is a school's own.
            "application" if principal.reach() == Reach::School => None,
            "application" => Some(
                applications
                    .get(&principal.level)
                    .unwrap_or(&applications[&Level::County])
                    .clone(),
            ),
            "submitted" => Some(self.submitted.clone()),
            _ => None,
        }
    }

    fn foreign(&self, object: &str, principal: &Principal) -> Option<String> {
        let reach = principal.reach();
        match (object, reach) {
            (_, Reach::Nation) => None,
            ("student", Reach::School | Reach::County) => Some(self.students["taijiang"].clone()),
            ("student", Reach::City) => Some(self.students["xiamen"].clone()),
            ("student", Reach::Province) => Some(self.students["anhui"].clone()),
            ("school", Reach::School | Reach::County) => Some(self.taijiang.clone()),
            ("school", Reach::City) => Some(self.xiamen.clone()),
            ("school", Reach::Province) => Some(self.anhui.clone()),
            ("application", Reach::County | Reach::School) => {
                Some(self.taijiang_application.clone())
            }
            ("application", Reach::City) => Some(self.xiamen_application.clone()),
            _ => None,
        }
    }

    /// A key nobody holds, in the place of `foreign` when there is one (a missing school of the
    /// same province as the foreign one, say), so that the two must answer alike.
    fn missing(object: &str, foreign: Option<&str>) -> String {
        match (object, foreign) {
            ("student", Some(foreign)) => format!("L{}200001019999", &foreign[1..7]),
            ("student", None) => "L350102200001019999".into(),
            ("school", Some(foreign)) => format!("{}999999", &foreign[..4]),
            ("school", None) => "2135999999".into(),
            (_, Some(foreign)) => format!(
                "{}-00000000000000000000000000000000",
                foreign.split('-').next().unwrap_or("350102")
            ),
            (_, None) => "350102-00000000000000000000000000000000".into(),
        }
    }
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A registration nobody made before.
fn fresh_registration(school: &str) -> ipb::RegisterStudentRequest {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let date =
        chrono::NaiveDate::from_ymd_opt(2016, 1, 1).unwrap() + chrono::Days::new((n / 400).into());
    let id = resident_id(&format!(
        "350102{}{:03}",
        date.format("%Y%m%d"),
        (n % 400) * 2 + 1
    ));
    registration_at(&format!("matrix-{n}"), &format!("矩阵{n}"), school, &id)
}

fn profile(division: &str) -> spb::SchoolProfile {
    spb::SchoolProfile {
        name: format!("矩阵测试小学{}", SEQUENCE.fetch_add(1, Ordering::Relaxed)),
        category: "21".into(),
        stages: vec![spb::StageOffered {
            stage: spb::Stage::Primary as i32,
            years: 6,
        }],
        division: division.into(),
        registry_authority: division.into(),
        operator_type: spb::OperatorType::Public as i32,
        address: "福州市鼓楼区学府路1号".into(),
    }
}

/// The request of `method` on `object` (a key; `None` for calls without an object).
fn request(method: &str, object: Option<&str>, fixture: &Fixture) -> Vec<u8> {
    let key = object.unwrap_or_default().to_owned();
    let service = method.split('/').next().unwrap_or_default();
    let name = method.rsplit('/').next().unwrap_or_default();
    let invalid_date = "not-a-date".to_owned();
    match (service, name) {
        ("xueji.identity.v1.IdentityService", "RegisterStudent") => {
            fresh_registration(&key).encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ApproveRegistration") => {
            ipb::ApproveRegistrationRequest {
                registry_number: key,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "RejectRegistration") => {
            ipb::RejectRegistrationRequest {
                registry_number: key,
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "GetStudent") => {
            ipb::GetStudentRequest { number: key }.encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ListStudents") => ipb::ListStudentsRequest {
            school_code: key,
            page_size: 5,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.identity.v1.IdentityService", "ListProblemRecords") => {
            ipb::ListProblemRecordsRequest {
                jurisdiction: key,
                page_size: 5,
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "GetSchoolWorkload") => {
            ipb::GetSchoolWorkloadRequest { school_code: key }.encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ListRejectedMessages") => {
            ipb::ListRejectedMessagesRequest::default().encode_to_vec()
        }
        ("xueji.national.v1.NationalIndex", "Deliver") => {
            npb::DeliverRequest { messages: vec![] }.encode_to_vec()
        }
        ("xueji.national.v1.NationalIndex", "PullNotices") => npb::PullNoticesRequest {
            after_sequence: 0,
            limit: 5,
        }
        .encode_to_vec(),
        // A head that does not parse: an allowed caller is told so, nothing is witnessed.
        ("xueji.national.v1.NationalIndex", "WitnessAuditHead") => npb::WitnessAuditHeadRequest {
            seq: 1,
            hash: "not hex".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.national.v1.NationalIndex", "ListWitnessedHeads") => {
            npb::ListWitnessedHeadsRequest::default().encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "ListProvinces") => {
            npb::ListProvincesRequest {}.encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "FindStudent") => {
            npb::FindStudentRequest { number: key }.encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "GetIndexEntry") => {
            npb::GetIndexEntryRequest { number: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "SubmitApplication") => {
            spb::SubmitApplicationRequest {
                application: Some(spb::Application {
                    id: format!(
                        "350102-{:032x}",
                        u128::from(SEQUENCE.fetch_add(1, Ordering::Relaxed)) + 1
                    ),
                    profile: Some(profile("350102")),
                    open_from: "2025-09-01".into(),
                    ..Default::default()
                }),
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ListSubmittedApplications") => {
            spb::ListSubmittedApplicationsRequest::default().encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ApproveApplication") => {
            spb::ApproveApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "RejectApplication") => {
            spb::RejectApplicationRequest {
                id: key,
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ListDecisions") => spb::ListDecisionsRequest {
            province: "35".into(),
            after_cursor: 0,
        }
        .encode_to_vec(),
        // Lifecycle steps with a date that does not parse: an allowed caller is told so, and
        // nothing changes.
        ("xueji.schools.v1.SchoolAuthority", "RenameSchool") => spb::RenameSchoolRequest {
            code: fixture.gulou.clone(),
            new_name: "改名小学".into(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "MergeSchools") => spb::MergeSchoolsRequest {
            predecessors: vec![fixture.gulou.clone(), fixture.taijiang.clone()],
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ChangeCategory") => spb::ChangeCategoryRequest {
            code: fixture.gulou.clone(),
            new_category: "31".into(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "CloseSchool") => spb::CloseSchoolRequest {
            code: fixture.gulou.clone(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ReopenSchool") => spb::ReopenSchoolRequest {
            code: fixture.gulou.clone(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "GetSchool") => {
            spb::GetSchoolRequest { code: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "ListSchools") => {
            spb::ListSchoolsRequest {
                page_size: 5,
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "GetLineage") => {
            spb::GetLineageRequest { code: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "Publish") => spb::PublishRequest {
            note: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ListPublications") => spb::ListPublicationsRequest {
            after_version: 0,
            limit: 1,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "Diff") => spb::DiffRequest {
            from_version: 0,
            to_version: 1,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "FileApplication") => spb::FileApplicationRequest {
            idempotency_key: format!("matrix-{}", SEQUENCE.fetch_add(1, Ordering::Relaxed)),
            profile: Some(profile("350102")),
            open_from: "2025-09-01".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "EndorseApplication") => {
            spb::EndorseApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "ReturnApplication") => spb::ReturnApplicationRequest {
            id: key,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "GetApplication") => {
            spb::GetApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "ListApplications") => {
            spb::ListApplicationsRequest::default().encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "SyncReplica") => {
            spb::SyncReplicaRequest {}.encode_to_vec()
        }
        _ => panic!("{method} has a row but no request in this test: add one"),
    }
}

/// The node serving `method`'s service.
fn node_of(federation: &Federation, method: &str) -> String {
    if method.starts_with("xueji.identity.") || method.starts_with("xueji.schools.v1.SchoolIntake")
    {
        federation.province("35").address()
    } else {
        federation.national.address()
    }
}

async fn client(federation: &Federation, principal: &Principal, address: &str) -> Client {
    let config = ClientConfig {
        tls: TlsSource::from_dir(&federation.pki(principal.pki), principal.stem).expect("TLS"),
        server: ExpectedServer::AnyNode,
        request_timeout: Duration::from_secs(30),
    };
    let channel = xueji_rpc::connect(address, &config)
        .await
        .expect("connects");
    let token = federation.token(principal.level, &principal.jurisdiction, principal.role);
    InterceptedService::new(channel, BearerToken::new(&token).unwrap())
}

/// A primary school of `division`'s counties in the replica of `province`.
async fn school_in(federation: &Federation, province: &str, division: &str) -> String {
    sqlx::query_scalar(
        "SELECT code FROM schools_provincial.schools WHERE code LIKE '21%' \
         AND division LIKE $1 || '%' AND record->>'status' = 'open' ORDER BY code LIMIT 1",
    )
    .bind(division)
    .fetch_one(&federation.province(province).pool)
    .await
    .unwrap_or_else(|e| panic!("no primary school in {division}: {e}"))
}

async fn register(federation: &Federation, province: &str, school: &str) -> String {
    federation
        .identity(province, Level::School, school, Role::Operator)
        .await
        .register_student(fresh_registration(school))
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student")
        .registry_number
}

async fn file(federation: &Federation, county: &str) -> String {
    let mut intake = xueji_node::client::intake_client(
        &federation.province("35").address(),
        &federation.pki("35"),
        &federation.token(Level::County, county, Role::Operator),
    )
    .await
    .unwrap();
    intake
        .file_application(spb::FileApplicationRequest {
            idempotency_key: format!("fixture-{}", SEQUENCE.fetch_add(1, Ordering::Relaxed)),
            profile: Some(profile(county)),
            open_from: "2025-09-01".into(),
        })
        .await
        .expect("filed")
        .into_inner()
        .application
        .expect("application")
        .id
}

async fn endorse(federation: &Federation, id: &str, level: Level, jurisdiction: &str) {
    xueji_node::client::intake_client(
        &federation.province("35").address(),
        &federation.pki("35"),
        &federation.token(level, jurisdiction, Role::Approver),
    )
    .await
    .unwrap()
    .endorse_application(spb::EndorseApplicationRequest { id: id.into() })
    .await
    .expect("endorsed");
}

async fn fixture(federation: &Federation) -> Fixture {
    let gulou = school_in(federation, "35", "350102").await;
    let taijiang = school_in(federation, "35", "350103").await;
    let xiamen = school_in(federation, "35", "350203").await;
    let anhui = school_in(federation, "34", "34").await;
    let mut students = BTreeMap::new();
    students.insert("gulou", register(federation, "35", &gulou).await);
    students.insert("taijiang", register(federation, "35", &taijiang).await);
    students.insert("xiamen", register(federation, "35", &xiamen).await);
    let mut anhui_registration = fresh_registration(&anhui);
    anhui_registration.document_type = ipb::DocumentType::Passport as i32;
    anhui_registration.document_number = "E-ANHUI-1".into();
    students.insert(
        "anhui",
        federation
            .identity("34", Level::School, &anhui, Role::Operator)
            .await
            .register_student(anhui_registration)
            .await
            .expect("registered in Anhui")
            .into_inner()
            .student
            .expect("student")
            .registry_number,
    );
    federation.delivered("35").await;
    federation.delivered("34").await;

    let mut applications = std::collections::HashMap::new();
    applications.insert(Level::County, file(federation, "350102").await);
    let waiting_city = file(federation, "350102").await;
    endorse(federation, &waiting_city, Level::County, "350102").await;
    applications.insert(Level::City, waiting_city);
    let waiting_province = file(federation, "350102").await;
    endorse(federation, &waiting_province, Level::County, "350102").await;
    endorse(federation, &waiting_province, Level::City, "350100").await;
    applications.insert(Level::Province, waiting_province);
    let mut returnable = std::collections::HashMap::new();
    returnable.insert(Level::County, file(federation, "350102").await);
    let waiting_city = file(federation, "350102").await;
    endorse(federation, &waiting_city, Level::County, "350102").await;
    returnable.insert(Level::City, waiting_city);
    let waiting_province = file(federation, "350102").await;
    endorse(federation, &waiting_province, Level::County, "350102").await;
    endorse(federation, &waiting_province, Level::City, "350100").await;
    returnable.insert(Level::Province, waiting_province);

    let submitted = format!("350102-{:032x}", 0xfeed_u128);
    // Submitted as Fujian's schools service does it: with that service's certificate.
    let config = ClientConfig {
        tls: TlsSource::from_dir(&federation.pki("35"), "schools").unwrap(),
        server: ExpectedServer::national("schools"),
        request_timeout: Duration::from_secs(30),
    };
    let channel = xueji_rpc::connect(&federation.national.address(), &config)
        .await
        .unwrap();
    let token = federation.token(Level::Province, "350000", Role::Operator);
    spb::school_authority_client::SchoolAuthorityClient::new(InterceptedService::new(
        channel,
        BearerToken::new(&token).unwrap(),
    ))
    .submit_application(spb::SubmitApplicationRequest {
        application: Some(spb::Application {
            id: submitted.clone(),
            profile: Some(profile("350102")),
            open_from: "2025-09-01".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("submitted");

    Fixture {
        taijiang_application: file(federation, "350103").await,
        xiamen_application: file(federation, "350203").await,
        gulou,
        taijiang,
        xiamen,
        anhui,
        students,
        applications,
        returnable,
        submitted,
    }
}

/// A call's answer, reduced to what the matrix speaks of.
fn answered(status: &Result<(), Status>) -> bool {
    match status {
        Ok(()) => true,
        Err(status) => !matches!(
            status.code(),
            Code::PermissionDenied
                | Code::Unauthenticated
                | Code::NotFound
                | Code::Unavailable
                | Code::Internal
                | Code::Unknown
        ),
    }
}

fn describe(answer: &Result<(), Status>) -> String {
    match answer {
        Ok(()) => "OK".into(),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Checks one principal's calls of one RPC; answers the mismatches.
async fn check(
    federation: &Federation,
    fixture: &Fixture,
    method: &str,
    row: &Row,
    principal: &Principal,
    client: &Client,
) -> Vec<String> {
    let allowed = row.allow.iter().any(|p| p == principal.name);
    let mut wrong = Vec::new();
    let mut fail = |what: String| wrong.push(format!("{method} as {}: {what}", principal.name));
    if row.object == "none" {
        let answer = call(client, method, request(method, None, fixture)).await;
        let ok = if allowed {
            answered(&answer)
        } else {
            matches!(&answer, Err(s) if s.code() == Code::PermissionDenied)
        };
        if !ok {
            fail(format!(
                "expected {}, got {}",
                if allowed {
                    "an answer"
                } else {
                    "PERMISSION_DENIED"
                },
                describe(&answer)
            ));
        }
        return wrong;
    }
    if let Some(own) = fixture.own(method, &row.object, principal) {
        let answer = call(client, method, request(method, Some(&own), fixture)).await;
        let ok = if allowed {
            answered(&answer)
        } else {
            matches!(&answer, Err(s) if s.code() == Code::PermissionDenied)
        };
        if !ok {
            fail(format!(
                "own {own}: expected {}, got {}",
                if allowed {
                    "an answer"
                } else {
                    "PERMISSION_DENIED"
                },
                describe(&answer)
            ));
        }
    }
    let foreign = fixture.foreign(&row.object, principal);
    let missing_key = Fixture::missing(&row.object, foreign.as_deref());
    let missing = call(client, method, request(method, Some(&missing_key), fixture)).await;
    // Nothing is hidden from the nation: a missing object may be answered (a workload of zero).
    let hidden_or_answered = principal.reach() == Reach::Nation && answered(&missing);
    match &missing {
        _ if hidden_or_answered => {}
        Err(status)
            if allowed && matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {}
        Err(status)
            if !allowed
                && matches!(
                    status.code(),
                    Code::NotFound | Code::PermissionDenied | Code::InvalidArgument
                ) => {}
        other => fail(format!("missing {missing_key}: got {}", describe(other))),
    }
    if let Some(foreign) = foreign {
        let answer = call(client, method, request(method, Some(&foreign), fixture)).await;
        let same = match (&answer, &missing) {
            (Err(a), Err(m)) => {
                a.code() == m.code() && a.message().replace(&foreign, &missing_key) == m.message()
            }
            _ => false,
        };
        if !same {
            fail(format!(
                "foreign {foreign} answered {} but missing {missing_key} {}",
                describe(&answer),
                describe(&missing)
            ));
        }
    }
    let _ = federation;
    wrong
}

#[tokio::test]
async fn every_rpc_answers_every_principal_as_the_matrix_declares() {
    let matrix = AuthorizationMatrix::bundled();
    let described = described_rpcs();
    let declared: BTreeSet<String> = matrix.rpc.keys().cloned().collect();
    assert_eq!(
        described.difference(&declared).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "RPCs without a row in proto/xueji/authorization.toml"
    );
    assert_eq!(
        declared.difference(&described).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for RPCs the protos no longer have"
    );

    let federation = Federation::start().await;
    let fixture = fixture(&federation).await;
    let principals = principals(&fixture);
    let mut wrong = Vec::new();
    let mut calls = 0;
    for principal in &principals {
        let to_province =
            client(&federation, principal, &federation.province("35").address()).await;
        let to_national = client(&federation, principal, &federation.national.address()).await;
        for (method, row) in &matrix.rpc {
            let client = if node_of(&federation, method) == federation.national.address() {
                &to_national
            } else {
                &to_province
            };
            wrong.extend(check(&federation, &fixture, method, row, principal, client).await);
            calls += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} (RPC, principal) pairs answered against the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
