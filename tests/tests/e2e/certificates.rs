//! Certificates on a running federation: a school issues a 在读证明 of a pupil in school, prints
//! it as a PDF whose text (read back with `pdftotext`) is the record's, and the pupil's 学籍卡
//! with the record's history; anyone of the registry
//! checks it by its code, and the check says so once the pupil is suspended; a pending record
//! is not certified.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
    transfers::{active_student, approved_status_change, student_seen_by},
    violated_fields,
};

async fn client(
    federation: &Federation,
    level: Level,
    jurisdiction: &str,
) -> ipb::certificate_service_client::CertificateServiceClient<xueji_client::OperatorChannel> {
    ipb::certificate_service_client::CertificateServiceClient::new(
        federation
            .operator_channel("35", level, jurisdiction, Role::Operator)
            .await,
    )
}

/// The text of a PDF, as `pdftotext` (Debian's poppler-utils) reads it.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certificate.pdf");
    std::fs::write(&file, pdf).unwrap();
    let read = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (Debian's poppler-utils) reads the printout back");
    assert!(read.status.success(), "{read:?}");
    String::from_utf8(read.stdout).unwrap()
}

#[tokio::test]
async fn a_certificate_prints_the_record_and_anyone_checks_it_by_its_code() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let (number, name, _) = active_student(&federation, "35", &school).await;
    let mut desk = client(&federation, Level::School, &school).await;

    // A kind must be named.
    let unnamed = desk
        .issue_certificate(ipb::IssueCertificateRequest {
            registry_number: number.clone(),
            kind: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unnamed), ["kind"], "{unnamed:?}");
    let certificate = desk
        .issue_certificate(ipb::IssueCertificateRequest {
            registry_number: number.clone(),
            kind: ipb::CertificateKind::Attendance as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(
        (
            certificate.name.as_str(),
            certificate.registry_number.as_str()
        ),
        (name.as_str(), number.as_str())
    );
    assert_eq!(certificate.verification_code.len(), 12);

    // Printed: the PDF's text is the record's.
    let font = xueji_client::print::cjk_font(None).expect("a Chinese font (fonts-wqy-microhei)");
    let pdf = xueji_client::print::certificate_pdf(&certificate, &font).unwrap();
    let text = pdf_text(&pdf);
    for expected in [
        "在读证明",
        name.as_str(),
        number.as_str(),
        school.as_str(),
        certificate.verification_code.as_str(),
        "在籍在读",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} in the printout:\n{text}"
        );
    }

    // The 学籍卡: the record and its history, read back.
    let record = student_seen_by(&federation, "35", &school, &number).await;
    let history = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!history.fields.is_empty());
    let card = xueji_client::print::student_card_pdf(&record, &history.fields, &font).unwrap();
    let text = pdf_text(&card);
    for expected in [
        "学籍卡",
        name.as_str(),
        number.as_str(),
        "修改留痕",
        "grade = 3",
    ] {
        assert!(text.contains(expected), "{expected:?} in the card:\n{text}");
    }

    // Checked by anyone of the registry, the code typed as read off paper.
    let typed = format!(
        "{} {}",
        &certificate.verification_code[..6],
        certificate.verification_code[6..].to_lowercase()
    );
    let other_county = client(&federation, Level::County, "350203").await;
    let checked = other_county
        .clone()
        .verify_certificate(ipb::VerifyCertificateRequest {
            verification_code: typed.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(checked.still_valid, "{checked:?}");
    assert_eq!(checked.certificate.unwrap().name, name);
    let never = other_county
        .clone()
        .verify_certificate(ipb::VerifyCertificateRequest {
            verification_code: "ABCDEFGHJKLM".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(never.code(), Code::NotFound, "{never:?}");

    // Suspended, the pupil is no longer 在读: the check says what changed.
    approved_status_change(
        &federation,
        &school,
        &number,
        ipb::StatusChangeKind::Suspension,
        xueji_calendar::china_today(federation.clock.now()),
    )
    .await;
    assert_eq!(
        student_seen_by(&federation, "35", &school, &number)
            .await
            .status(),
        ipb::EnrollmentStatus::Suspended
    );
    let after = other_county
        .clone()
        .verify_certificate(ipb::VerifyCertificateRequest {
            verification_code: typed,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!after.still_valid);
    assert!(after.changed.contains("suspended"), "{after:?}");
    // A 学籍证明 still certifies the suspended pupil's 学籍.
    desk.issue_certificate(ipb::IssueCertificateRequest {
        registry_number: number.clone(),
        kind: ipb::CertificateKind::Enrollment as i32,
    })
    .await
    .expect("a suspended pupil keeps the 学籍");

    // A registration not yet approved is not certified.
    let pending = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await
        .register_student(registration_at(
            "certificate-pending",
            "待审",
            &school,
            &resident_id(&format!("{county}20180808001")),
        ))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    let refused = desk
        .issue_certificate(ipb::IssueCertificateRequest {
            registry_number: pending.registry_number,
            kind: ipb::CertificateKind::Enrollment as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
}
