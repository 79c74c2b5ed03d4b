//! Policy as data of the deployment, on a running federation: Fujian's node reads its own
//! status-change rules from its `policy_dir`; a changed file takes effect on a reload without a
//! restart; a file that does not pass its checks is refused naming its file and line, and the
//! rules in force stay; a node does not start on such a file.

use tokio::net::TcpListener;
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_node::node::{Database, RunningNode};
use xueji_proto::{identity::v1 as ipb, node::v1 as npb};
use xueji_tests::{federation::Federation, transfers::active_student, violated_fields};

const BUNDLED_RULES: &str = include_str!("../../../services/identity/policy/status_changes.toml");

/// Asks for a suspension of `number` carrying `files` evidence files.
async fn ask_suspension(
    federation: &Federation,
    school: &str,
    number: &str,
    files: usize,
) -> Result<ipb::StatusChange, tonic::Status> {
    let mut desk = federation
        .status_changes("35", Level::School, school, Role::Operator)
        .await;
    let mut evidence = Vec::new();
    for n in 0..files {
        let mut content = xueji_tests::matrix_fixture::PNG.to_vec();
        // Files of their own: a copy of the same scan is one piece of evidence.
        content.extend(std::iter::repeat_n(0u8, n));
        let file = desk
            .upload_evidence(ipb::UploadEvidenceRequest {
                registry_number: number.into(),
                file_name: format!("证明{n}.png"),
                content,
            })
            .await?
            .into_inner()
            .file
            .unwrap();
        evidence.push(file.id);
    }
    Ok(desk
        .request_status_change(ipb::RequestStatusChangeRequest {
            idempotency_key: format!("suspend-{number}-{files}"),
            registry_number: number.into(),
            kind: ipb::StatusChangeKind::Suspension as i32,
            reason: "因病".into(),
            grounds: String::new(),
            effective_date: xueji_calendar::china_today(federation.clock.now()).to_string(),
            evidence_ids: evidence,
        })
        .await?
        .into_inner()
        .change
        .unwrap())
}

async fn reload(federation: &Federation) -> Result<npb::ReloadPolicyResponse, tonic::Status> {
    let channel = federation
        .operator_channel("35", Level::Province, "350000", Role::Operator)
        .await;
    npb::policy_service_client::PolicyServiceClient::new(channel)
        .reload_policy(npb::ReloadPolicyRequest {})
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_provinces_policy_file_takes_effect_on_reload_and_a_bad_one_is_refused_by_its_line() {
    let mut federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let dir = federation.dir.path().join("fujian-policy");
    std::fs::create_dir_all(dir.join("identity")).unwrap();
    let rules = dir.join("identity/status_changes.toml");
    std::fs::write(&rules, BUNDLED_RULES).unwrap();
    federation.kill_province("35").await;
    federation
        .provinces
        .get_mut("35")
        .unwrap()
        .config
        .policy_dir = Some(dir.clone());
    federation.restart_province("35").await;

    // The national rule: one file of evidence for a suspension.
    let (first, _, _) = active_student(&federation, "35", &school).await;
    ask_suspension(&federation, &school, &first, 1)
        .await
        .expect("one file is enough under the national rule");

    // Fujian asks for two; the file changes, the node reloads it, no restart.
    std::fs::write(
        &rules,
        format!("{BUNDLED_RULES}\n[province.35.change.suspension]\nevidence = 2\n"),
    )
    .unwrap();
    let loaded = reload(&federation).await.expect("reloaded");
    let own = rules.display().to_string();
    assert!(loaded.files.contains(&own), "{loaded:?}");
    assert!(
        loaded
            .files
            .contains(&"bundled identity/school_year.toml".to_owned()),
        "{loaded:?}"
    );
    let (second, _, _) = active_student(&federation, "35", &school).await;
    let refused = ask_suspension(&federation, &school, &second, 1)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["evidence_ids"], "{refused:?}");

    // A rule that does not pass its checks: refused, naming the file, its line and the key;
    // the rules in force stay.
    let bad = format!(
        "{BUNDLED_RULES}\n[province.35.change.suspension]\nevidence = 1\nterm_months = 99\n"
    );
    let line = bad.lines().position(|l| l == "term_months = 99").unwrap() + 1;
    std::fs::write(&rules, &bad).unwrap();
    let refused = reload(&federation).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains(&format!("{own}:{line}:"))
            && refused.message().contains("`term_months` must be 1–60"),
        "{refused:?}"
    );
    let still = ask_suspension(&federation, &school, &second, 1)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&still), ["evidence_ids"], "{still:?}");
    ask_suspension(&federation, &school, &second, 2)
        .await
        .expect("two files, as the rules in force ask");

    // A school operator may not reload the province's policy.
    let channel = federation
        .operator_channel("35", Level::School, &school, Role::Operator)
        .await;
    let denied = npb::policy_service_client::PolicyServiceClient::new(channel)
        .reload_policy(npb::ReloadPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // A node does not start on a file that does not pass: the error names the line.
    federation.kill_province("35").await;
    let member = &federation.provinces["35"];
    let database = Database::open(&member.config, xueji_db::Durability::Throwaway)
        .await
        .unwrap();
    let listener = TcpListener::bind(member.config.listen).await.unwrap();
    let error = RunningNode::start_on(&member.config, database, listener)
        .await
        .expect_err("a node does not start on a bad policy file");
    let error = format!("{error:#}");
    assert!(error.contains(&format!("{own}:{line}:")), "{error}");
    // Mended, it starts.
    std::fs::write(&rules, BUNDLED_RULES).unwrap();
    federation.restart_province("35").await;
    let (third, _, _) = active_student(&federation, "35", &school).await;
    ask_suspension(&federation, &school, &third, 1)
        .await
        .expect("the national rule again");
}
