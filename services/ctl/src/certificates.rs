//! `xuejictl certificate …`: issue a 学籍证明 or 在读证明 as a PDF to print, and check one by
//! the verification code printed on it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use xueji_client::OperatorChannel;
use xueji_proto::identity::v1::{self as pb, certificate_service_client::CertificateServiceClient};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// 学籍证明: the pupil holds a 学籍 at the school.
    Enrollment,
    /// 在读证明: the pupil is in school there.
    Attendance,
}

#[derive(Subcommand)]
pub(crate) enum CertificateCommand {
    /// Issue a certificate about a pupil's record and write it as a PDF.
    Issue {
        registry_number: String,
        #[arg(long, value_enum, default_value = "enrollment")]
        kind: Kind,
        /// Where the PDF goes.
        #[arg(long)]
        output: PathBuf,
        /// A font with Chinese glyphs (default: the one fontconfig matches for Chinese).
        #[arg(long)]
        font: Option<PathBuf>,
    },
    /// Check a certificate by its verification code.
    Verify { verification_code: String },
    /// Print a pupil's 学籍卡 (学生学籍信息表): the record and every value each field had.
    Card {
        registry_number: String,
        /// Where the PDF goes.
        #[arg(long)]
        output: PathBuf,
        /// A font with Chinese glyphs (default: the one fontconfig matches for Chinese).
        #[arg(long)]
        font: Option<PathBuf>,
    },
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: CertificateCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = CertificateServiceClient::new(channel.clone());
    match command {
        CertificateCommand::Card {
            registry_number,
            output,
            font,
        } => card(channel, registry_number, output, font).await?,
        CertificateCommand::Issue {
            registry_number,
            kind,
            output,
            font,
        } => {
            // The font first: a certificate is not issued that cannot be printed here.
            let font = xueji_client::print::cjk_font(font.as_deref())?;
            let certificate = client
                .issue_certificate(pb::IssueCertificateRequest {
                    registry_number,
                    kind: match kind {
                        Kind::Enrollment => pb::CertificateKind::Enrollment,
                        Kind::Attendance => pb::CertificateKind::Attendance,
                    } as i32,
                })
                .await?
                .into_inner()
                .certificate
                .context("the node answered no certificate")?;
            let pdf = xueji_client::print::certificate_pdf(&certificate, &font)?;
            std::fs::write(&output, pdf)
                .with_context(|| format!("writing {}", output.display()))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verification_code": certificate.verification_code, "file": output})
                );
            } else {
                println!(
                    "{} of {} written to {} (verification code {})",
                    match kind {
                        Kind::Enrollment => "学籍证明",
                        Kind::Attendance => "在读证明",
                    },
                    certificate.name,
                    output.display(),
                    certificate.verification_code
                );
            }
        }
        CertificateCommand::Verify { verification_code } => {
            let checked = client
                .verify_certificate(pb::VerifyCertificateRequest { verification_code })
                .await?
                .into_inner();
            let certificate = checked.certificate.unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "verification_code": certificate.verification_code,
                        "name": certificate.name, "registry_number": certificate.registry_number,
                        "school": certificate.school_name, "issued_at": certificate.issued_at,
                        "still_valid": checked.still_valid, "changed": checked.changed,
                    })
                );
            } else {
                println!(
                    "issued {} by {}: {} ({}), {} {}, grade {}",
                    certificate.issued_at,
                    certificate.issued_by,
                    certificate.name,
                    certificate.registry_number,
                    certificate.school_name,
                    certificate.school_code,
                    certificate.grade
                );
                if checked.still_valid {
                    println!("the record still stands as certified");
                } else {
                    println!("no longer stands: {}", checked.changed);
                }
            }
        }
    }
    Ok(())
}

/// Prints a pupil's 学籍卡 from the record and its history.
async fn card(
    channel: OperatorChannel,
    registry_number: String,
    output: PathBuf,
    font: Option<PathBuf>,
) -> anyhow::Result<()> {
    let font = xueji_client::print::cjk_font(font.as_deref())?;
    let student = pb::identity_service_client::IdentityServiceClient::new(channel.clone())
        .get_student(pb::GetStudentRequest {
            number: registry_number.clone(),
        })
        .await?
        .into_inner()
        .student
        .context("the node answered no student")?;
    let history = pb::status_change_service_client::StatusChangeServiceClient::new(channel)
        .get_student_history(pb::GetStudentHistoryRequest { registry_number })
        .await?
        .into_inner();
    let pdf = xueji_client::print::student_card_pdf(&student, &history.fields, &font)?;
    std::fs::write(&output, pdf).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "学籍卡 of {} ({}) written to {}",
        student.name,
        student.registry_number,
        output.display()
    );
    Ok(())
}
