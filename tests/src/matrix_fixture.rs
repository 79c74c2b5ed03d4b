//! The federation the authorization matrix is tried against: its principals (who calls, with
//! which certificate and token) and the objects each call is made on (own, foreign, missing).

use std::{
    collections::{BTreeMap, HashMap},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tonic::service::interceptor::InterceptedService;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, schools::v1 as spb};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsSource};

use crate::{
    federation::{Federation, registration_at},
    raw_rpc::Client,
    resident_id,
};

/// Who calls: the certificate (node folder and stem), and what the token grants.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: &'static str,
    pub pki: &'static str,
    pub stem: &'static str,
    pub level: Level,
    pub jurisdiction: String,
    pub role: Role,
}

impl Principal {
    /// How far the principal reaches, to choose its own and foreign objects.
    pub fn reach(&self) -> Reach {
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
pub enum Reach {
    Nation,
    Province,
    City,
    County,
    School,
}

pub fn principals(fixture: &Fixture) -> Vec<Principal> {
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
            "transfers-service",
            "35",
            "transfers",
            Level::Province,
            "350000",
        ),
        service("stats-service", "35", "stats", Level::Province, "350000"),
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
pub struct Fixture {
    /// Primary schools: Gulou (350102), Taijiang (350103, the same city), Xiamen (350203),
    /// and one in Anhui.
    pub gulou: String,
    pub taijiang: String,
    pub xiamen: String,
    pub anhui: String,
    /// A pending student at each.
    pub students: BTreeMap<&'static str, String>,
    /// Applications filed in Gulou, waiting for the county, the city and the province: one set
    /// to endorse, one to send back.
    pub applications: HashMap<Level, String>,
    pub returnable: HashMap<Level, String>,
    /// Applications filed in Taijiang and in Xiamen.
    pub taijiang_application: String,
    pub xiamen_application: String,
    /// An application waiting for the ministry.
    pub submitted: String,
    /// Transfers in progress between two schools of one county: Gulou (into the Gulou school),
    /// Taijiang, Xiamen.
    pub transfers: BTreeMap<&'static str, String>,
    /// An evidence file of an active student of each of those schools.
    pub evidence: BTreeMap<&'static str, String>,
    /// A suspension of that student, approved by the school, waiting for the county.
    pub status_changes: BTreeMap<&'static str, String>,
    /// An intake import job each of those schools' operator ran.
    pub import_jobs: BTreeMap<&'static str, String>,
}

impl Fixture {
    pub fn own(&self, method: &str, object: &str, principal: &Principal) -> Option<String> {
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
            "transfer" => Some(self.transfers["gulou"].clone()),
            "evidence" => Some(self.evidence["gulou"].clone()),
            "status_change" => Some(self.status_changes["gulou"].clone()),
            "import_job" => Some(self.import_jobs["gulou"].clone()),
            _ => None,
        }
    }

    pub fn foreign(&self, object: &str, principal: &Principal) -> Option<String> {
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
            ("transfer", Reach::School | Reach::County) => Some(self.transfers["taijiang"].clone()),
            ("transfer", Reach::City) => Some(self.transfers["xiamen"].clone()),
            ("evidence", Reach::School | Reach::County) => Some(self.evidence["taijiang"].clone()),
            ("evidence", Reach::City) => Some(self.evidence["xiamen"].clone()),
            ("status_change", Reach::School | Reach::County) => {
                Some(self.status_changes["taijiang"].clone())
            }
            ("status_change", Reach::City) => Some(self.status_changes["xiamen"].clone()),
            ("import_job", Reach::School | Reach::County) => {
                Some(self.import_jobs["taijiang"].clone())
            }
            ("import_job", Reach::City) => Some(self.import_jobs["xiamen"].clone()),
            _ => None,
        }
    }

    /// A key nobody holds, in the place of `foreign` when there is one (a missing school of the
    /// same province as the foreign one, say), so that the two must answer alike.
    pub fn missing(object: &str, foreign: Option<&str>) -> String {
        match (object, foreign) {
            ("student", Some(foreign)) => format!("L{}200001019999", &foreign[1..7]),
            ("student", None) => "L350102200001019999".into(),
            ("school", Some(foreign)) => format!("{}999999", &foreign[..4]),
            ("school", None) => "2135999999".into(),
            ("transfer" | "evidence" | "status_change" | "import_job", _) => {
                "00000000-0000-4000-8000-000000000000".into()
            }
            (_, Some(foreign)) => format!(
                "{}-00000000000000000000000000000000",
                foreign.split('-').next().unwrap_or("350102")
            ),
            (_, None) => "350102-00000000000000000000000000000000".into(),
        }
    }
}

pub static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A registration nobody made before.
pub fn fresh_registration(school: &str) -> ipb::RegisterStudentRequest {
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

pub fn profile(division: &str) -> spb::SchoolProfile {
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
        township: format!("{division}001"),
    }
}

/// The node serving `method`'s service.
pub fn node_of(federation: &Federation, method: &str) -> String {
    if method.starts_with("xueji.transfers.v1.TransferRelay/") {
        federation.national.address()
    } else if method.starts_with("xueji.identity.")
        || method.starts_with("xueji.transfers.")
        || method.starts_with("xueji.schools.v1.SchoolIntake")
        || method.starts_with("xueji.stats.v1.StatsService")
        || method.starts_with("xueji.node.")
    {
        federation.province("35").address()
    } else {
        federation.national.address()
    }
}

pub async fn client(federation: &Federation, principal: &Principal, address: &str) -> Client {
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
pub async fn school_in(federation: &Federation, province: &str, division: &str) -> String {
    nth_school_in(federation, province, division, 0).await
}

/// The `nth` primary school (by code) of `division`'s counties in the replica of `province`.
pub async fn nth_school_in(
    federation: &Federation,
    province: &str,
    division: &str,
    nth: i64,
) -> String {
    sqlx::query_scalar(
        "SELECT code FROM schools_provincial.schools WHERE code LIKE '21%' \
         AND division LIKE $1 || '%' AND record->>'status' = 'open' ORDER BY code \
         LIMIT 1 OFFSET $2",
    )
    .bind(division)
    .bind(nth)
    .fetch_one(&federation.province(province).pool)
    .await
    .unwrap_or_else(|e| panic!("no primary school in {division}: {e}"))
}

pub async fn register(federation: &Federation, province: &str, school: &str) -> String {
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

pub async fn file(federation: &Federation, county: &str) -> String {
    let mut intake = xueji_client::intake_client(
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

pub async fn endorse(federation: &Federation, id: &str, level: Level, jurisdiction: &str) {
    xueji_client::intake_client(
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

pub async fn fixture(federation: &Federation) -> Fixture {
    let gulou = school_in(federation, "35", "350102").await;
    let taijiang = school_in(federation, "35", "350103").await;
    let xiamen = school_in(federation, "35", "350203").await;
    let anhui = school_in(federation, "34", "34").await;
    let mut students = BTreeMap::new();
    students.insert("gulou", register(federation, "35", &gulou).await);
    // A class of the Gulou school, for the roster's readers.
    federation
        .classes(&gulou)
        .await
        .create_class(ipb::CreateClassRequest {
            school_code: gulou.clone(),
            school_year: 0,
            grade: 1,
            name: "矩阵班".into(),
            head_teacher: String::new(),
        })
        .await
        .expect("a class");
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

    let mut applications = HashMap::new();
    applications.insert(Level::County, file(federation, "350102").await);
    let waiting_city = file(federation, "350102").await;
    endorse(federation, &waiting_city, Level::County, "350102").await;
    applications.insert(Level::City, waiting_city);
    let waiting_province = file(federation, "350102").await;
    endorse(federation, &waiting_province, Level::County, "350102").await;
    endorse(federation, &waiting_province, Level::City, "350100").await;
    applications.insert(Level::Province, waiting_province);
    let mut returnable = HashMap::new();
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

    let mut transfers = BTreeMap::new();
    for (name, division, receiving) in [
        ("gulou", "350102", &gulou),
        ("taijiang", "350103", &taijiang),
        ("xiamen", "350203", &xiamen),
    ] {
        let sending = nth_school_in(federation, "35", division, 1).await;
        let (number, student, birth) =
            crate::transfers::active_student(federation, "35", &sending).await;
        let transfer = federation
            .transfers("35", Level::School, receiving, Role::Operator)
            .await
            .start_transfer(crate::transfers::start_request(
                receiving, &number, &student, &birth,
            ))
            .await
            .expect("a transfer for the matrix")
            .into_inner()
            .transfer
            .expect("transfer");
        transfers.insert(name, transfer.id);
    }

    let (mut evidence, mut status_changes) = (BTreeMap::new(), BTreeMap::new());
    for (name, school) in [
        ("gulou", &gulou),
        ("taijiang", &taijiang),
        ("xiamen", &xiamen),
    ] {
        let (file, change) = suspension_waiting_for_the_county(federation, school).await;
        evidence.insert(name, file);
        status_changes.insert(name, change);
    }

    let mut import_jobs = BTreeMap::new();
    for (name, school, body) in [
        ("gulou", &gulou, "35010220150301771"),
        ("taijiang", &taijiang, "35010320150301772"),
        ("xiamen", &xiamen, "35020320150301773"),
    ] {
        let request = registration_at("unused", "导入学生", school, &resident_id(body));
        let file = crate::imports::file_of(&[crate::imports::row_of(&request, "", "")], "csv");
        let job = crate::imports::import_as(
            federation,
            "35",
            Level::School,
            school,
            xueji_client::ImportKind::Intake,
            "新生.csv",
            &file,
        )
        .await
        .expect("an import job for the matrix");
        import_jobs.insert(name, job.id);
    }

    Fixture {
        import_jobs,
        evidence,
        status_changes,
        transfers,
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

/// The smallest file that is a PNG by its content.
pub const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];

/// An active student of `school`, an evidence file of theirs, and a suspension the school's
/// approver approved, waiting for the registry authority: (evidence id, change id).
pub async fn suspension_waiting_for_the_county(
    federation: &Federation,
    school: &str,
) -> (String, String) {
    let (number, _, _) = crate::transfers::active_student(federation, "35", school).await;
    let mut desk = federation
        .status_changes("35", Level::School, school, Role::Operator)
        .await;
    let file = desk
        .upload_evidence(ipb::UploadEvidenceRequest {
            registry_number: number.clone(),
            file_name: "病历.png".into(),
            content: PNG.to_vec(),
        })
        .await
        .expect("evidence")
        .into_inner()
        .file
        .expect("file");
    let change = desk
        .request_status_change(ipb::RequestStatusChangeRequest {
            idempotency_key: format!("fixture-suspension-{number}"),
            registry_number: number,
            kind: ipb::StatusChangeKind::Suspension as i32,
            reason: "因病休学".into(),
            grounds: String::new(),
            effective_date: chrono::Utc::now().date_naive().to_string(),
            evidence_ids: vec![file.id.clone()],
        })
        .await
        .expect("status change")
        .into_inner()
        .change
        .expect("change");
    federation
        .status_changes("35", Level::School, school, Role::Approver)
        .await
        .decide_status_change(ipb::DecideStatusChangeRequest {
            id: change.id.clone(),
            step: 0,
            approve: true,
            remark: String::new(),
        })
        .await
        .expect("the school approves");
    (file.id, change.id)
}
