//! `xueji demo`: a provincial node on an embedded PostgreSQL, the bundled sample registered by
//! the schools' operators over mutual TLS, approved by the registry authorities, and the result.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use xueji_auth::{Level, Role};
use xueji_codes::{DivisionLevel, Divisions};
use xueji_db::Durability;
use xueji_proto::identity::v1 as pb;

use crate::{
    client::{identity_client, mint},
    config::NodeConfig,
    node::{Database, RunningNode},
    pki, sample,
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
        pki::init(&pki_dir, "35")?;
    }
    let schools_file = dir.join("schools.csv");
    std::fs::write(&schools_file, sample::SCHOOLS_CSV)?;
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        pki_dir: pki_dir.clone(),
        data_dir: dir.join("data"),
        schools_file: Some(schools_file),
        ..NodeConfig::default()
    };

    step("Starting a provincial node (Fujian, 35) on an embedded PostgreSQL");
    let database = Database::open(&config, Durability::Throwaway).await?;
    let node = RunningNode::start(&config, database).await?;
    let address = node.address.to_string();
    println!("  node listening on {address} (mutual TLS)");

    let signer = pki::signer(&pki_dir)?;
    let schools = sample::parse_schools(sample::SCHOOLS_CSV)?;
    let students = sample::parse_students(sample::STUDENTS_CSV)?;
    let mut summary = DemoSummary::default();

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
    let province_token = mint(
        &signer,
        "province-operator",
        Level::Province,
        "350000",
        Role::Operator,
    )?;
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
             # any gRPC client, through reflection (client certificate: {pki}/operator.pem):\n  \
             grpcurl -cacert {pki}/ca.pem -cert {pki}/operator.pem -key {pki}/operator.key \\\n    \
             -H \"authorization: Bearer $XUEJI_TOKEN\" {address} list\n\
             Press Ctrl-C to stop.",
            pki = pki_dir.display(),
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

fn step(text: &str) {
    println!("\n==> {text}");
}
