//! `xueji demo`: a federation on one embedded PostgreSQL cluster: the national node and two
//! provincial nodes (Fujian 35, Anhui 34), each with its own database and port, talking mutual
//! TLS with certificates from a federation PKI. The sample school list is issued and published
//! nationally and replicated by both provinces; the bundled students are registered in Fujian by
//! their schools' operators and approved by their registry authorities (each `G` after the
//! national duplicate check); Anhui registers a student Fujian already holds and the national
//! check refuses it, flagging both sides; a ministry operator finds a student through the
//! national node; a new school's application goes from a county to a national code and back into
//! the replica.

mod imports;
mod school_year;
mod stats;
pub(crate) mod transfers;

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;
use xueji_auth::{Level, Role};
use xueji_codes::{DivisionLevel, Divisions};
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres};
use xueji_proto::{identity::v1 as pb, national::v1 as npb, schools::v1 as spb};
use xueji_schools::store::national::NationalStore;

use crate::{sample, seed};
use xueji_client::{authority_client, directory_client, identity_client, intake_client};
use xueji_node::config::{NodeConfig, Tier};
use xueji_node::node::{Database, RunningNode};
use xueji_node::pki;

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
    /// Anhui's approval of a student Fujian holds was refused by the national check.
    pub cross_province_refused: bool,
    /// A ministry operator found a student through the national node.
    pub ministry_found: bool,
    pub audit_intact: bool,
    /// The transfer inside Fujian completed through its three parties.
    pub transfer_completed: bool,
    /// The transfer from Anhui to Fujian completed through its four parties.
    pub transfer_across_completed: bool,
    /// The transfer inside Anhui whose deadlines passed completed under Anhui's policy.
    pub transfer_on_timeout_completed: bool,
    /// A pupil's suspension went through the school's approver and the county.
    pub suspended: bool,
    /// A pupil's name correction went through both approvers and shows in the history.
    pub corrected: bool,
    /// The summer's cycle graduated and promoted this many students.
    pub graduated: u64,
    pub promoted: u64,
    /// A graduate continued at the junior school with the same registry number.
    pub continued_with_same_number: bool,
    /// The summer whose cycle ran.
    pub summer: i32,
    /// Rows of the demo's intake spreadsheet imported, and refused (in its error report).
    pub intake_imported: u64,
    pub intake_refused: u64,
    /// Fujian's monthly report reconciled, its cities summing to it.
    pub fujian_report_reconciles: bool,
    /// The national node's report of the nation is the sum of the provinces'.
    pub nation_is_sum_of_provinces: bool,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<DemoSummary> {
    let temporary = tempfile::Builder::new().prefix("xueji-demo-").tempdir()?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let DemoFederation {
        cluster,
        nodes,
        pki_root,
        keys: signer,
        national_address,
        replicated_schools,
    } = start_federation(&dir, true).await?;
    let address = nodes["35"].address.to_string();
    let pki_dir = pki_root.join("35");
    let national_pki = pki_root.join("national");
    let mut summary = DemoSummary {
        replicated_schools,
        ..DemoSummary::default()
    };
    let province_token = mint(
        &signer,
        "province-operator",
        Level::Province,
        "350000",
        Role::Operator,
    )?;
    let mut province_intake = intake_client(&address, &pki_dir, &province_token).await?;
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

    let intake = imports::intake_from_a_spreadsheet(&address, &pki_dir, &signer, &dir).await?;
    summary.intake_imported = intake.imported;
    summary.intake_refused = intake.bad;

    let sample_schools: Vec<(String, String)> = schools
        .iter()
        .map(|s| (s.code.to_string(), s.registry_authority.to_string()))
        .collect();
    let transfer =
        transfers::inside_fujian(&address, &pki_dir, &signer, &rows, &sample_schools).await?;
    summary.transfer_completed = transfer.is_some_and(|(state, _)| state == "completed");

    summary.suspended = school_year::suspension(&address, &pki_dir, &signer, &rows).await?;
    let suspended = rows
        .iter()
        .find(|s| {
            s.school_code == "2135000103"
                && s.status() == pb::EnrollmentStatus::Active
                && s.problems.is_empty()
        })
        .map(|s| s.registry_number.clone());
    summary.corrected =
        school_year::correction(&address, &pki_dir, &signer, &rows, suspended.as_deref()).await?;

    let duplicate = cross_province_duplicate(&nodes, &pki_root, &signer, &rows).await?;
    summary.cross_province_refused = duplicate.is_some();

    step("A ministry operator finds a Fujian student through the national node");
    let ministry = mint(&signer, "ministry", Level::Ministry, "", Role::Operator)?;
    let mut directory = directory_client(&national_address, &national_pki, &ministry).await?;
    if let Some(student) = rows.first() {
        let found = directory
            .find_student(npb::FindStudentRequest {
                number: student.document_number.clone(),
            })
            .await?
            .into_inner();
        summary.ministry_found = found.student.is_some();
        println!(
            "  ID number {} → province {}, {} {}",
            student.document_number,
            found.province,
            found
                .student
                .as_ref()
                .map(|s| s.registry_number.as_str())
                .unwrap_or("?"),
            found
                .student
                .as_ref()
                .map(|s| s.name.as_str())
                .unwrap_or("?"),
        );
    }

    summary.new_school_code = new_school(
        &address,
        &pki_dir,
        &national_address,
        &national_pki,
        &signer,
        &mut province_intake,
    )
    .await?;

    let year = school_year::turn_the_year(&address, &pki_dir, &signer).await?;
    summary.graduated = year.graduated;
    summary.promoted = year.promoted;
    summary.continued_with_same_number = year.continued_with_same_number;
    summary.summer = year.summer;

    // Last: the second of these moves the federation's clock forward.
    let anhui = nodes["34"].address.to_string();
    let (across, on_timeout) = transfers::from_anhui(&address, &anhui, &pki_root, &signer).await?;
    summary.transfer_across_completed = across;
    summary.transfer_on_timeout_completed = on_timeout;

    let reports = stats::monthly_reports(
        &address,
        &pki_dir,
        &national_address,
        &national_pki,
        &signer,
    )
    .await?;
    summary.fujian_report_reconciles = reports.fujian_reconciles;
    summary.nation_is_sum_of_provinces = reports.nation_is_sum_of_provinces;

    step("Verifying each node's audit chain");
    summary.audit_intact = true;
    for (name, node) in &nodes {
        xueji_audit::seal_all(&node.database.pool).await?;
        let report = xueji_audit::verify(&node.database.pool, |_| {}).await?;
        summary.audit_intact &= report.is_intact();
        println!(
            "  {name:<8} {} entries sealed, chain {}",
            report.sealed,
            if report.is_intact() {
                "intact"
            } else {
                "BROKEN"
            },
        );
    }

    if options.wait {
        let fujian = mint(&signer, "fujian", Level::Province, "350000", Role::Operator)?;
        step("The federation keeps running. Try it:");
        println!(
            "  # Fujian's node, as a Fujian province operator:\n  \
             export XUEJI_NODE={address} XUEJI_PKI_DIR={pki} XUEJI_TOKEN={fujian}\n  \
             cargo run -q -p xuejictl -- show {first}\n  \
             cargo run -q -p xuejictl -- list --school 2135000101\n  \
             cargo run -q -p xuejictl -- problems\n  \
             cargo run -q -p xuejictl -- cycle status --year {summer}\n  \
             cargo run -q -p xuejictl -- school show {new_school}\n  \
             # the national node, as a ministry operator (national certificate):\n  \
             export XUEJI_NODE={national_address} XUEJI_PKI_DIR={national_pki} XUEJI_TOKEN={ministry}\n  \
             cargo run -q -p xuejictl -- find {first}\n  \
             cargo run -q -p xuejictl -- provinces\n  \
             cargo run -q -p xuejictl -- school diff --from 1 --to 2\n  \
             # any gRPC client, through reflection:\n  \
             grpcurl -cacert {national_pki}/ca.pem -cert {national_pki}/operator.pem \\\n    \
             -key {national_pki}/operator.key -H \"authorization: Bearer $XUEJI_TOKEN\" {national_address} list\n  \
             # each node alone: cargo run --release -p xueji-node --bin xueji -- serve --config {dir}/35.toml\n\
             Press Ctrl-C to stop.",
            pki = pki_dir.display(),
            national_pki = national_pki.display(),
            dir = dir.display(),
            new_school = summary.new_school_code,
            summer = summary.summer,
            first = rows
                .first()
                .map(|s| s.registry_number.as_str())
                .unwrap_or(""),
        );
        tokio::signal::ctrl_c().await?;
    }
    for (_, node) in nodes {
        node.stop().await?;
    }
    drop(cluster);
    Ok(summary)
}

fn database_name(node: &str) -> String {
    match node {
        "national" => "xueji_national".to_owned(),
        province => format!("xueji_{province}"),
    }
}

/// Writes the node's configuration as `<dir>/<name>.toml`, so that it can be started alone with
/// `xueji serve --config` (against the same database and PKI).
fn write_config(dir: &std::path::Path, name: &str, config: &NodeConfig) -> anyhow::Result<()> {
    let mut text = format!(
        "# Written by `xueji demo`: start this node alone with `xueji serve --config {name}.toml`.\n\
         tier = \"{}\"\nprovince = \"{}\"\nlisten = \"{}\"\npki_dir = \"pki/{}\"\n\
         database_url = \"{}\"\n",
        config.tier, config.province, config.listen, name, config.database_url
    );
    if !config.national_address.is_empty() {
        text.push_str(&format!(
            "national_address = \"{}\"\n",
            config.national_address
        ));
    }
    if !config.province_nodes.is_empty() {
        text.push_str("[province_nodes]\n");
        let mut nodes: Vec<_> = config.province_nodes.iter().collect();
        nodes.sort();
        for (province, address) in nodes {
            text.push_str(&format!("\"{province}\" = \"{address}\"\n"));
        }
    }
    // The config holds the database password: readable by its owner only.
    xueji_pki::write_secret(&dir.join(format!("{name}.toml")), text.as_bytes())?;
    Ok(())
}

/// Anhui registers a student whose resident ID number Fujian already holds; approving it asks
/// the national node, which refuses and flags both provinces. Answers the refusal.
async fn cross_province_duplicate(
    nodes: &BTreeMap<&str, RunningNode>,
    pki_root: &std::path::Path,
    signer: &DemoKeys,
    fujian_students: &[pb::Student],
) -> anyhow::Result<Option<String>> {
    step("Anhui registers a student Fujian already holds: the national duplicate check");
    let Some(holder) = fujian_students
        .iter()
        .find(|s| s.registry_number.starts_with('G'))
    else {
        println!("  (no approved Fujian student to collide with)");
        return Ok(None);
    };
    let anhui = nodes["34"].address.to_string();
    let anhui_pki = pki_root.join("34");
    let province = mint(signer, "anhui", Level::Province, "340000", Role::Operator)?;
    let mut intake = intake_client(&anhui, &anhui_pki, &province).await?;
    let school = intake
        .list_schools(spb::ListSchoolsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .schools
        .into_iter()
        .find(|s| s.code.starts_with("21"))
        .context("Anhui has no primary school in its replica")?;
    let profile = school.profile.clone().unwrap_or_default();
    let operator = mint(
        signer,
        "operator",
        Level::School,
        &school.code,
        Role::Operator,
    )?;
    let mut registrar = identity_client(&anhui, &anhui_pki, &operator).await?;
    let request = pb::RegisterStudentRequest {
        migrant_child: false,
        left_behind_child: false,
        continues_registry_number: String::new(),
        provincial_fields: Default::default(),
        idempotency_key: format!("demo-duplicate-{}", holder.document_number),
        name: holder.name.clone(),
        gender: holder.gender,
        birth_date: holder.birth_date.clone(),
        ethnicity: holder.ethnicity.clone(),
        document_type: holder.document_type,
        document_number: holder.document_number.clone(),
        school_code: school.code.clone(),
        grade: holder.grade,
        entry_date: holder.entry_date.clone(),
        entry_route: holder.entry_route,
        guardian: holder.guardian.clone(),
    };
    let registered = registrar
        .register_student(request)
        .await?
        .into_inner()
        .student
        .context("registration without a student")?;
    println!(
        "  Anhui registered {} {} at {} ({}) — Fujian holds {}",
        registered.registry_number,
        registered.name,
        school.code,
        profile.name,
        holder.registry_number
    );
    let approver_token = mint(
        signer,
        "approver",
        Level::County,
        &profile.registry_authority,
        Role::Approver,
    )?;
    let mut approver = identity_client(&anhui, &anhui_pki, &approver_token).await?;
    let refusal = match approver
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: registered.registry_number.clone(),
        })
        .await
    {
        Ok(_) => {
            println!("  the national check did not refuse it (already resolved?)");
            return Ok(None);
        }
        Err(status) => status.message().to_owned(),
    };
    println!("  Anhui's approval refused: {refusal}");
    // The national node's notices reach both provinces with their next delivery round.
    for (province, pki, token) in [
        ("34", anhui_pki.clone(), province.clone()),
        (
            "35",
            pki_root.join("35"),
            mint(signer, "fujian", Level::Province, "350000", Role::Operator)?,
        ),
    ] {
        let mut client =
            identity_client(&nodes[province].address.to_string(), &pki, &token).await?;
        let mut listed = Vec::new();
        for _ in 0..50 {
            listed = client
                .list_problem_records(pb::ListProblemRecordsRequest::default())
                .await?
                .into_inner()
                .problems
                .into_iter()
                .filter(|p| p.kind == pb::ProblemKind::DuplicateIdNumber as i32)
                .collect();
            if !listed.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        for problem in listed {
            println!(
                "  province {province} problem record: {} {} — {}",
                problem.registry_number, problem.name, problem.detail
            );
        }
    }
    Ok(Some(refusal))
}

/// A county applies for a new school; county, city and province endorse; the ministry
/// approves and publishes; the province replicates. Returns the issued code.
async fn new_school(
    address: &str,
    pki_dir: &std::path::Path,
    national_address: &str,
    national_pki: &std::path::Path,
    signer: &DemoKeys,
    province_intake: &mut xueji_client::IntakeClient,
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
                township: "350102003".into(),
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
        national_address,
        national_pki,
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

/// The token keys of the demo's authorities: the national node's for the ministry, each
/// province's for its own operators.
pub(crate) struct DemoKeys {
    national: xueji_auth::TokenSigner,
    provinces: HashMap<String, xueji_auth::TokenSigner>,
    /// The federation's clock (moved forward to let deadlines pass): tokens are minted on it.
    clock: xueji_auth::Clock,
}

impl DemoKeys {
    fn load(pki_root: &Path, clock: xueji_auth::Clock) -> anyhow::Result<Self> {
        let mut provinces = HashMap::new();
        for province in seed::SEED_PROVINCES {
            provinces.insert(province.to_owned(), pki::signer(&pki_root.join(province))?);
        }
        Ok(Self {
            national: pki::signer(&pki_root.join("national"))?,
            provinces,
            clock,
        })
    }

    /// Now, on the federation's clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// A token for `user`, signed by the authority that may grant it: the national node for the
/// ministry, the jurisdiction's province otherwise; meant for the signer's node and the
/// national node.
pub(crate) fn mint(
    keys: &DemoKeys,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
) -> anyhow::Result<String> {
    let province = xueji_auth::Jurisdiction::for_level(level, jurisdiction)
        .map_err(anyhow::Error::msg)?
        .province_digits()
        .map(str::to_owned);
    let signer = match &province {
        None => &keys.national,
        Some(province) => keys
            .provinces
            .get(province)
            .with_context(|| format!("the demo has no key of province {province}"))?,
    };
    let mut audience = vec![xueji_auth::Authority::National];
    if let Some(province) = province {
        audience.push(xueji_auth::Authority::Province(province));
    }
    xueji_client::mint_at(
        signer,
        user,
        level,
        jurisdiction,
        role,
        audience,
        keys.clock.now(),
    )
}

/// The federation the demo and the transfer benchmark run: the national node, Fujian and Anhui
/// on one embedded PostgreSQL (a database each), the sample school list issued, published and
/// replicated to both provinces.
pub(crate) struct DemoFederation {
    /// Kept alive while the nodes run.
    pub(crate) cluster: EmbeddedPostgres,
    pub(crate) nodes: BTreeMap<&'static str, RunningNode>,
    pub(crate) pki_root: PathBuf,
    pub(crate) keys: DemoKeys,
    pub(crate) national_address: String,
    /// Schools open in Fujian's replica.
    pub(crate) replicated_schools: u64,
}

/// `operator_budget`: whether operators' requests are limited per second as in service (the
/// benchmark's scripted parties poll, and are not).
pub(crate) async fn start_federation(
    dir: &Path,
    operator_budget: bool,
) -> anyhow::Result<DemoFederation> {
    let budget = if operator_budget {
        NodeConfig::default().operator_requests_per_second
    } else {
        0
    };
    let pki_root = dir.join("pki");
    if !pki_root.join("national/ca.pem").exists() {
        pki::init_federation(&pki_root, &seed::SEED_PROVINCES)?;
    }

    step(
        "Starting the federation on an embedded PostgreSQL: the national node, Fujian (35), Anhui (34)",
    );
    let cluster_options = ClusterOptions {
        data_dir: Some(dir.join("postgres")),
        durability: Durability::Throwaway,
        ..ClusterOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(cluster_options))
        .await?
        .context("starting the embedded PostgreSQL")?;
    let mut listeners = BTreeMap::new();
    for name in ["national", "35", "34"] {
        xueji_db::create_database(&cluster.url("postgres"), &database_name(name), None).await?;
        listeners.insert(name, TcpListener::bind("127.0.0.1:0").await?);
    }
    let address_of =
        |name: &str| -> anyhow::Result<String> { Ok(listeners[name].local_addr()?.to_string()) };
    let national_address = address_of("national")?;
    // One clock for the federation, moved forward to let a transfer's deadlines pass.
    let clock = xueji_auth::Clock::system();
    let national_config = NodeConfig {
        clock: clock.clone(),
        listen: listeners["national"].local_addr()?,
        tier: Tier::National,
        pki_dir: pki_root.join("national"),
        database_url: cluster.url(&database_name("national")),
        province_nodes: seed::SEED_PROVINCES
            .iter()
            .map(|p| Ok((p.to_string(), address_of(p)?)))
            .collect::<anyhow::Result<_>>()?,
        database_connections: 8,
        ..NodeConfig::default()
    };
    let province_config = |province: &str| -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            listen: listeners[province].local_addr()?,
            tier: Tier::Province,
            province: province.to_owned(),
            pki_dir: pki_root.join(province),
            database_url: cluster.url(&database_name(province)),
            national_address: national_address.clone(),
            outbox_interval_ms: 300,
            database_connections: 8,
            transfer_sweep_ms: 300,
            calendar_sync_secs: 1,
            // The demo shows the nation's report moments after the province's.
            stats_report_ms: 1000,
            operator_requests_per_second: budget,
            clock: clock.clone(),
            ..NodeConfig::default()
        })
    };
    let configs = [
        ("national", national_config),
        ("35", province_config("35")?),
        ("34", province_config("34")?),
    ];
    let mut nodes = BTreeMap::new();
    for (name, config) in configs {
        write_config(dir, name, &config)?;
        let listener = listeners.remove(name).expect("bound above");
        let database = Database::open(&config, Durability::Throwaway).await?;
        let node = RunningNode::start_on(&config, database, listener).await?;
        println!(
            "  {:<8} {}  ({})",
            name,
            node.address,
            dir.join(format!("{name}.toml")).display()
        );
        nodes.insert(name, node);
    }
    let signer = DemoKeys::load(&pki_root, clock.clone())?;
    let mut replicated_schools = 0;

    step("Issuing the sample school list (Fujian and Anhui) nationally and publishing it");
    let national = NationalStore::new(nodes["national"].database.pool.clone());
    match seed::load(&national, |_, _| {}).await? {
        seed::Seeded::Loaded { schools, version } => {
            println!("  {schools} school codes issued, published as version {version}")
        }
        seed::Seeded::AlreadySeeded { codes } => {
            println!("  the registry already holds {codes} codes")
        }
    }
    for province in seed::SEED_PROVINCES {
        let token = mint(
            &signer,
            "province-operator",
            Level::Province,
            &format!("{province}0000"),
            Role::Operator,
        )?;
        let mut intake = intake_client(
            &nodes[province].address.to_string(),
            &pki_root.join(province),
            &token,
        )
        .await?;
        let report = intake
            .sync_replica(spb::SyncReplicaRequest {})
            .await?
            .into_inner();
        let open = intake
            .list_schools(spb::ListSchoolsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .schools
            .len();
        if province == "35" {
            replicated_schools = open as u64;
        }
        println!(
            "  province {province} replicated over mutual TLS: version {}, {open} schools open",
            report.replica_version
        );
    }
    Ok(DemoFederation {
        cluster,
        nodes,
        pki_root,
        keys: signer,
        national_address,
        replicated_schools,
    })
}
