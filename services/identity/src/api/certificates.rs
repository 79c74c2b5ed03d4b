//! Certificates over gRPC (thin: decode, authorize, call the domain and the store, encode).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Level, Role};
use xueji_proto::identity::v1::{
    self as pb,
    certificate_service_server::{CertificateService, CertificateServiceServer},
};

use super::IdentityApi;
use crate::{
    IdentityError,
    domain::{
        EnrollmentStatus,
        certificate::{self, CertificateKind},
        gender_str,
    },
    store::{Actor, CertificateRecord},
};

/// The certificate service: shares the identity service's state.
#[derive(Debug, Clone)]
pub(crate) struct CertificateApi {
    identity: Arc<IdentityApi>,
}

fn kind_from_wire(kind: pb::CertificateKind) -> Option<CertificateKind> {
    match kind {
        pb::CertificateKind::Unspecified => None,
        pb::CertificateKind::Enrollment => Some(CertificateKind::Enrollment),
        pb::CertificateKind::Attendance => Some(CertificateKind::Attendance),
    }
}

fn kind_to_wire(kind: CertificateKind) -> pb::CertificateKind {
    match kind {
        CertificateKind::Enrollment => pb::CertificateKind::Enrollment,
        CertificateKind::Attendance => pb::CertificateKind::Attendance,
    }
}

/// The certificate as the wire carries it, from its stored statement.
fn to_wire(record: &CertificateRecord) -> Result<pb::Certificate, IdentityError> {
    let kind = CertificateKind::parse(&record.kind)
        .ok_or_else(|| crate::store::unknown("certificate kind", &record.kind))?;
    let text = |key: &str| {
        record.statement[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| crate::store::unknown("certificate statement", key))
    };
    Ok(pb::Certificate {
        verification_code: record.code.clone(),
        kind: kind_to_wire(kind) as i32,
        name: text("name")?,
        gender: text("gender")?,
        birth_date: text("birth_date")?,
        registry_number: text("registry_number")?,
        school_code: text("school_code")?,
        school_name: text("school_name")?,
        grade: record.statement["grade"]
            .as_u64()
            .and_then(|g| u32::try_from(g).ok())
            .ok_or_else(|| crate::store::unknown("certificate statement", "grade"))?,
        class_name: text("class_name")?,
        entry_date: text("entry_date")?,
        status: text("status_words")?,
        issued_at: record
            .issued_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        issued_by: record.issued_by.clone(),
    })
}

impl CertificateApi {
    pub(crate) fn new(identity: Arc<IdentityApi>) -> Self {
        Self { identity }
    }

    pub(crate) fn into_service(self) -> CertificateServiceServer<Self> {
        CertificateServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn issue(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::IssueCertificateRequest,
    ) -> Result<pb::IssueCertificateResponse, IdentityError> {
        let kind = kind_from_wire(request.kind()).ok_or_else(|| {
            IdentityError::invalid(
                "kind",
                "must be ENROLLMENT (学籍证明) or ATTENDANCE (在读证明)",
            )
        })?;
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        if !matches!(caller.level, Level::School | Level::County | Level::City) {
            return Err(IdentityError::PermissionDenied(
                "certificates are issued by the school and its authorities".into(),
            ));
        }
        if !kind.certifies(record.status) {
            return Err(IdentityError::FailedPrecondition(format!(
                "{} is {} ({}): a {} certifies a record {}",
                record.registry_number,
                record.status.as_str(),
                certificate::status_words(record.status),
                kind.title(),
                match kind {
                    CertificateKind::Enrollment => "in school, suspended or dropped out",
                    CertificateKind::Attendance => "in school",
                }
            )));
        }
        let random = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .map_err(|_| IdentityError::Internal("eight bytes of a UUID".into()))?,
        );
        let statement = serde_json::json!({
            "name": record.name,
            "gender": match gender_str(record.gender) { "female" => "女", _ => "男" },
            "birth_date": record.birth_date.to_string(),
            "registry_number": record.registry_number,
            "school_code": school.code.as_str(),
            "school_name": school.name,
            "grade": record.grade,
            "class_name": record.class.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            "entry_date": record.entry_date.to_string(),
            "status": record.status.as_str(),
            "status_words": certificate::status_words(record.status),
        });
        let issued = self
            .identity
            .store
            .issue_certificate(
                &CertificateRecord {
                    code: certificate::verification_code(random),
                    student_id: record.id,
                    kind: kind.as_str().to_owned(),
                    statement,
                    issued_at: chrono::Utc::now(),
                    issued_by: caller.describe(),
                },
                &record.registry_number,
                Actor { caller, request_id },
            )
            .await?;
        Ok(pb::IssueCertificateResponse {
            certificate: Some(to_wire(&issued)?),
        })
    }

    async fn verify(
        &self,
        request: pb::VerifyCertificateRequest,
    ) -> Result<pb::VerifyCertificateResponse, IdentityError> {
        let code = certificate::normalize_code(&request.verification_code).ok_or_else(|| {
            IdentityError::invalid(
                "verification_code",
                "is 12 letters and digits as printed on the certificate",
            )
        })?;
        let missing = || IdentityError::NotFound(format!("certificate {code}"));
        let issued = self
            .identity
            .store
            .certificate(&code)
            .await?
            .ok_or_else(missing)?;
        let kind = CertificateKind::parse(&issued.kind)
            .ok_or_else(|| crate::store::unknown("certificate kind", &issued.kind))?;
        let certified_status = issued.statement["status"]
            .as_str()
            .and_then(EnrollmentStatus::parse)
            .ok_or_else(|| crate::store::unknown("certificate statement", "status"))?;
        let certified_school = issued.statement["school_code"].as_str().unwrap_or_default();
        let now = self.identity.store.student(issued.student_id).await?;
        let changed = certificate::changed_since(
            kind,
            (certified_school, certified_status),
            (&now.school_code, now.status),
        );
        Ok(pb::VerifyCertificateResponse {
            certificate: Some(to_wire(&issued)?),
            still_valid: changed.is_none(),
            changed: changed.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl CertificateService for CertificateApi {
    async fn issue_certificate(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.issue(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn verify_certificate(
        &self,
        request: Request<pb::VerifyCertificateRequest>,
    ) -> Result<Response<pb::VerifyCertificateResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if caller.role != Role::Operator {
            return Err(IdentityError::PermissionDenied(
                "certificates are checked by operators of the registry".into(),
            )
            .into());
        }
        Ok(Response::new(self.verify(request.into_inner()).await?))
    }
}
