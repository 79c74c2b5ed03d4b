//! `xueji demo`: a federation on one embedded PostgreSQL cluster: the national node and two
//! provincial nodes (Fujian 35, Anhui 34), each with its own database and port, talking mutual
//! TLS with certificates from a federation PKI. The sample school list is issued and published
//! nationally and replicated by both provinces; the bundled students are registered in Fujian by
//! their schools' operators and approved by their registry authorities (each `G` after the
//! national duplicate check); Anhui registers a student Fujian already holds and the national
//! check refuses it, flagging both sides; a ministry operator finds a student through the
//! national node; a new school's application goes from a county to a national code and back into
//! the replica.

mod federation;
mod imports;
mod registry;
mod school_year;
mod stats;
pub(crate) mod transfers;

pub(crate) use federation::{DemoFederation, start_federation};
use registry::{cross_province_duplicate, new_school};

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use xueji_auth::{Level, Role};
use xueji_codes::{DivisionLevel, Divisions};
use xueji_proto::{identity::v1 as pb, national::v1 as npb};

use crate::{sample, seed};
use xueji_client::{directory_client, identity_client, intake_client};
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
