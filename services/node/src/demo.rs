//! `xueji demo`: a node on an embedded PostgreSQL playing both the national school authority
//! and Fujian's provincial node. The sample school list is issued and published, the province
//! replicates it, the bundled students are registered by their schools' operators over mutual
//! TLS and approved by the registry authorities; then a new school's application goes from the
//! county through the city and the province to a national code and into the replica.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use xueji_auth::{Level, Role};
use xueji_codes::{DivisionLevel, Divisions};
use xueji_db::Durability;
use xueji_proto::{identity::v1 as pb, schools::v1 as spb};
use xueji_schools::store::national::NationalStore;

use crate::{
    client::{authority_client, identity_client, intake_client, mint},
    config::NodeConfig,
    node::{Database, RunningNode},
    pki, sample, seed,
};

#[derive(Debug)]
pub struct DemoOptions {
    /// Keep serving after the demo until Ctrl-C.
    pub wait: bool,
    /// Where to keep the PKI and the database; a temporary folder when `None`.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct DemoSummary {
    pub registered: usize,
    pub refused: usize,
    pub approved: usize,
    pub problems: usize,
    /// Schools in the province's replica after the seed.
    pub replicated_schools: u64,
    /// The code the national authority issued for the demo's new school.
    pub new_school_code: String,
    pub audit_intact: bool,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<DemoSummary> {
    let temporary = tempfile::Builder::new().prefix("xueji-demo-").tempdir()?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let pki_dir = dir.join("pki");
    if !pki_dir.join("ca.pem").exists() {
        pki::init(&pki_dir)?;
    }
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        pki_dir: pki_dir.clone(),
        data_dir: dir.join("data"),
        ..NodeConfig::default()
    };

    step(
        "Starting a node on an embedded PostgreSQL: the national school authority and Fujian (35)",
    );
    let database = Database::open(&config, Durability::Throwaway).await?;
    let node = RunningNode::start(&config, database).await?;
    let address = node.address.to_string();
    println!("  node listening on {address} (mutual TLS)");

    let signer = pki::signer(&pki_dir)?;
    let mut summary = DemoSummary::default();

    step("Issuing the sample school list (Fujian and Anhui) and publishing it");
    let national = NationalStore::new(node.database.pool.clone());
    match seed::load(&national, |_, _| {}).await? {
        seed::Seeded::Loaded { schools, version } => {
            println!("  {schools} school codes issued, published as version {version}")
        }
        seed::Seeded::AlreadySeeded { codes } => {
            println!("  the registry already holds {codes} codes")
        }
    }
    let province_token = mint(
        &signer,
        "province-operator",
        Level::Province,
        "350000",
        Role::Operator,
    )?;
    let mut province_intake = intake_client(&address, &pki_dir, &province_token).await?;
    let report = province_intake
        .sync_replica(spb::SyncReplicaRequest {})
        .await?
        .into_inner();
    let fujian_schools = province_intake
        .list_schools(spb::ListSchoolsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .schools
        .len();
    summary.replicated_schools = fujian_schools as u64;
    println!(
        "  Fujian replicated {} publication(s), now at version {}: {fujian_schools} Fujian schools open",
        report.publications_applied, report.replica_version
    );
    let schools = sample::parse_schools(sample::SCHOOLS_CSV)?;
    let students = sample::parse_students(sample::STUDENTS_CSV)?;

    step(&format!(
        "Registering {} students at {} schools, each by its own school operator",
        students.len(),
        schools.len()
    ));
    let progress = ProgressBar::new(students.len() as u64).with_style(
        ProgressStyle::with_template("  {bar:40} {pos}/{len} {msg}").expect("valid template"),
    );
    let mut clients = BTreeMap::new();
    for school in &schools {
        let token = mint(
            &signer,
            &format!("operator@{}", school.code),
            Level::School,
            school.code.as_str(),
            Role::Operator,
        )?;
        clients.insert(
            school.code.to_string(),
            identity_client(&address, &pki_dir, &token).await?,
        );
    }
    let mut refusals = Vec::new();
    for request in students {
        let key = request.idempotency_key.clone();
        let client = clients
            .get_mut(&request.school_code)
            .context("sample student at an unknown school")?;
        match client.register_student(request).await {
            Ok(_) => summary.registered += 1,
            Err(status) => {
                summary.refused += 1;
                refusals.push((key, xueji_rpc::describe_status(&status)));
            }
        }
        progress.inc(1);
    }
    progress.finish_with_message("done");
    for (key, why) in &refusals {
        println!("  refused {key}: {why}");
    }

    step("Approving every pending registration by its registry authority's approver");
    let mut authorities: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for school in &schools {
        authorities
            .entry(school.registry_authority.to_string())
            .or_default()
            .push(school.code.to_string());
    }
    let mut rows = Vec::new();
    for (authority, codes) in &authorities {
        let level = match Divisions::bundled()
            .get(authority.parse()?)
            .map(|d| d.level)
        {
            Some(DivisionLevel::City) => Level::City,
            _ => Level::County,
        };
        let token = mint(
            &signer,
            &format!("approver@{authority}"),
            level,
            authority,
            Role::Approver,
        )?;
        let mut approver = identity_client(&address, &pki_dir, &token).await?;
        for code in codes {
            let listed = approver
                .list_students(pb::ListStudentsRequest {
                    school_code: code.clone(),
                    page_size: 500,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            for student in listed.students {
                let approved = approver
                    .approve_registration(pb::ApproveRegistrationRequest {
                        registry_number: student.registry_number.clone(),
                    })
                    .await?
                    .into_inner()
                    .student
                    .context("approval without a student")?;
                summary.approved += 1;
                rows.push(approved);
            }
        }
    }

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "registry number",
        "was",
        "name",
        "school",
        "grade",
        "status",
        "problems",
    ]);
    rows.sort_by(|a, b| (&a.school_code, &a.name).cmp(&(&b.school_code, &b.name)));
    for student in &rows {
        table.add_row([
            student.registry_number.clone(),
            student.aliases.join(", "),
            student.name.clone(),
            student.school_code.clone(),
            student.grade.to_string(),
            student
                .status()
                .as_str_name()
                .trim_start_matches("ENROLLMENT_STATUS_")
                .to_lowercase(),
            student
                .problems()
                .map(|p| {
                    p.as_str_name()
                        .trim_start_matches("PROBLEM_KIND_")
                        .to_lowercase()
                })
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    println!("{table}");

    step("Problem records seen by the province");
    let mut province = identity_client(&address, &pki_dir, &province_token).await?;
    let problems = province
        .list_problem_records(pb::ListProblemRecordsRequest::default())
        .await?
        .into_inner()
        .problems;
    summary.problems = problems.len();
    for problem in &problems {
        println!(
            "  {} {} at {}: {} (with {})",
            problem.registry_number,
            problem.name,
            problem.school_code,
            problem.detail,
            problem.related_registry_numbers.join(", ")
        );
    }

    summary.new_school_code = new_school(&address, &pki_dir, &signer, &mut province_intake).await?;

    step("Verifying the audit chain");
    xueji_audit::seal_all(&node.database.pool).await?;
    let report = xueji_audit::verify(&node.database.pool, |_| {}).await?;
    summary.audit_intact = report.is_intact();
    println!(
        "  {} entries sealed, chain {}; head {}",
        report.sealed,
        if report.is_intact() {
            "intact"
        } else {
            "BROKEN"
        },
        &report.head_hash[..16]
    );

    if options.wait {
        let ministry = mint(&signer, "ministry", Level::Ministry, "", Role::Operator)?;
        step("The node keeps running. Try it:");
        println!(
            "  export XUEJI_NODE={address} XUEJI_PKI_DIR={pki} XUEJI_TOKEN={ministry}\n  \
             cargo run -q -p xuejictl -- show {first}\n  \
             cargo run -q -p xuejictl -- list --school 2135000101\n  \
             cargo run -q -p xuejictl -- problems\n  \
             cargo run -q -p xuejictl -- school show {new_school}\n  \
             cargo run -q -p xuejictl -- school diff --from 1 --to 2\n  \
             # any gRPC client, through reflection (client certificate: {pki}/operator.pem):\n  \
             grpcurl -cacert {pki}/ca.pem -cert {pki}/operator.pem -key {pki}/operator.key \\\n    \
             -H \"authorization: Bearer $XUEJI_TOKEN\" {address} list\n\
             Press Ctrl-C to stop.",
            pki = pki_dir.display(),
            new_school = summary.new_school_code,
            first = rows
                .first()
                .map(|s| s.registry_number.as_str())
                .unwrap_or(""),
        );
        tokio::signal::ctrl_c().await?;
    }
    node.stop().await?;
    Ok(summary)
}

/// A county applies for a new school; county, city and province endorse; the ministry
/// approves and publishes; the province replicates. Returns the issued code.
async fn new_school(
    address: &str,
    pki_dir: &std::path::Path,
    signer: &xueji_auth::TokenSigner,
    province_intake: &mut crate::client::IntakeClient,
) -> anyhow::Result<String> {
    step(
        "A new school: Gulou county applies, county, city and province endorse, the ministry issues the code",
    );
    let token =
        |user: &str, level, jurisdiction: &str, role| mint(signer, user, level, jurisdiction, role);
    let mut county = intake_client(
        address,
        pki_dir,
        &token("gulou-operator", Level::County, "350102", Role::Operator)?,
    )
    .await?;
    let filed = county
        .file_application(spb::FileApplicationRequest {
            idempotency_key: "demo-new-school".into(),
            profile: Some(spb::SchoolProfile {
                name: "福州市鼓楼区温泉实验小学".into(),
                category: "21".into(),
                stages: vec![spb::StageOffered {
                    stage: spb::Stage::Primary as i32,
                    years: 6,
                }],
                division: "350102".into(),
                registry_authority: "350102".into(),
                operator_type: spb::OperatorType::Public as i32,
                address: "福州市鼓楼区温泉路8号".into(),
            }),
            open_from: "2025-09-01".into(),
        })
        .await?
        .into_inner()
        .application
        .context("filing answered no application")?;
    println!("  filed by the county: application {}", filed.id);
    for (who, level, jurisdiction) in [
        ("county", Level::County, "350102"),
        ("city", Level::City, "350100"),
        ("province", Level::Province, "350000"),
    ] {
        let mut approver = intake_client(
            address,
            pki_dir,
            &token(
                &format!("{who}-approver"),
                level,
                jurisdiction,
                Role::Approver,
            )?,
        )
        .await?;
        let endorsed = approver
            .endorse_application(spb::EndorseApplicationRequest {
                id: filed.id.clone(),
            })
            .await?
            .into_inner()
            .application
            .context("endorsement answered no application")?;
        println!(
            "  endorsed by the {who} ({jurisdiction}): now {}",
            endorsed
                .status()
                .as_str_name()
                .trim_start_matches("APPLICATION_STATUS_")
                .to_lowercase()
        );
    }
    let mut ministry = authority_client(
        address,
        pki_dir,
        &token("ministry-approver", Level::Ministry, "", Role::Approver)?,
    )
    .await?;
    let school = ministry
        .approve_application(spb::ApproveApplicationRequest {
            id: filed.id.clone(),
        })
        .await?
        .into_inner()
        .school
        .context("approval answered no school")?;
    println!("  approved by the ministry: code {}", school.code);
    let publication = ministry
        .publish(spb::PublishRequest {
            note: "new schools".into(),
        })
        .await?
        .into_inner()
        .publication
        .context("publishing answered no publication")?;
    let report = province_intake
        .sync_replica(spb::SyncReplicaRequest {})
        .await?
        .into_inner();
    let replicated = county
        .get_school(spb::GetSchoolRequest {
            code: school.code.clone(),
        })
        .await?
        .into_inner()
        .school
        .context("the replica answered no school")?;
    let decided = county
        .get_application(spb::GetApplicationRequest { id: filed.id })
        .await?
        .into_inner()
        .application
        .context("no application")?;
    println!(
        "  published as version {} ({} change); Fujian's replica is at version {} and shows {} {} (open from {});\n  the county sees its application {}",
        publication.version,
        publication.changes.len(),
        report.replica_version,
        replicated.code,
        replicated.profile.map(|p| p.name).unwrap_or_default(),
        replicated.open_from,
        decided
            .status()
            .as_str_name()
            .trim_start_matches("APPLICATION_STATUS_")
            .to_lowercase(),
    );
    Ok(school.code)
}

fn step(text: &str) {
    println!("\n==> {text}");
}
