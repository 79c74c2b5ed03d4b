//! Two scenes of the registry itself: a student Fujian holds registered again in Anhui (the
//! national duplicate check refuses it), and a new school carried from the county to a
//! published code.

use std::collections::BTreeMap;

use anyhow::Context;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, schools::v1 as spb};

use xueji_client::{authority_client, identity_client, intake_client};
use xueji_node::node::RunningNode;

use super::*;

/// Anhui registers a student whose resident ID number Fujian already holds; approving it asks
/// the national node, which refuses and flags both provinces. Answers the refusal.
pub(super) async fn cross_province_duplicate(
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
        class_name: String::new(),
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
pub(super) async fn new_school(
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
