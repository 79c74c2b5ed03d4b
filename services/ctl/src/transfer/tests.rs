use super::*;

#[test]
fn show_verifies_each_steps_evidence_with_the_tools_own_root() {
    let dir = std::env::temp_dir().join(format!("xuejictl-evidence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    xueji_pki::init_federation(&dir, &["35", "34"]).unwrap();
    let anhui = TlsSource::from_dir(&dir.join("34"), "transfers").unwrap();
    let tool = TlsSource::from_dir(&dir.join("35"), "operator").unwrap();
    let id = "7f1d6a2e-0000-4000-8000-000000000001";
    // Decided now: the certificate was valid when it signed.
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let payload = format!(r#"{{"transfer_id":"{id}","step":1,"outcome":"approve","at":"{at}"}}"#);
    let evidence = anhui.sign_evidence(payload.as_bytes()).unwrap();
    let signed = pb::SignedDecision {
        step: 1,
        payload: payload.into_bytes(),
        scheme: u32::from(evidence.scheme),
        signature: evidence.signature,
        certificates: evidence.certificates,
    };
    let mut transfer = pb::Transfer {
        id: id.into(),
        steps: vec![
            pb::Step::default(),
            pb::Step {
                position: 1,
                evidence: Some(signed),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        checked_evidence(&transfer, &tool),
        vec![(1, Ok("spiffe://xueji/province/34/transfers".to_owned()))]
    );
    transfer.steps[1].evidence.as_mut().unwrap().signature[5] ^= 1;
    let checked = checked_evidence(&transfer, &tool);
    assert!(
        matches!(&checked[0].1, Err(why) if why.contains("does not verify")),
        "{checked:?}"
    );
    transfer.id = "7f1d6a2e-0000-4000-8000-000000000002".into();
    let checked = checked_evidence(&transfer, &tool);
    assert!(
        matches!(&checked[0].1, Err(why) if why.contains("another transfer")),
        "{checked:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
