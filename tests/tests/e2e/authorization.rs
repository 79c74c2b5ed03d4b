//! The authorization matrix, proven against a running federation: every RPC of the proto
//! descriptors × every principal × {an object of the principal's own, a foreign one, a missing
//! one}, each answered as `proto/xueji/authorization.toml` declares, and foreign exactly like
//! missing. An RPC without a row (or without a request here) fails the test.

use std::{collections::BTreeSet, sync::atomic::Ordering};

use prost::Message;
use tonic::{Code, Status};
use xueji_proto::{
    identity::v1 as ipb, national::v1 as npb, schools::v1 as spb, stats::v1 as stpb,
    transfers::v1 as tpb,
};
use xueji_rpc::{AuthorizationMatrix, Row};
use xueji_tests::{
    federation::Federation,
    matrix_fixture::{
        Fixture, Principal, Reach, SEQUENCE, client, fixture, fresh_registration, node_of,
        principals, profile,
    },
    raw_rpc::{Client, call, described_rpcs},
};

/// The request of `method` on `object` (a key; `None` for calls without an object).
fn request(method: &str, object: Option<&str>, fixture: &Fixture) -> Vec<u8> {
    let key = object.unwrap_or_default().to_owned();
    let service = method.split('/').next().unwrap_or_default();
    let name = method.rsplit('/').next().unwrap_or_default();
    let invalid_date = "not-a-date".to_owned();
    match (service, name) {
        ("xueji.identity.v1.IdentityService", "RegisterStudent") => {
            fresh_registration(&key).encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ApproveRegistration") => {
            ipb::ApproveRegistrationRequest {
                registry_number: key,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "RejectRegistration") => {
            ipb::RejectRegistrationRequest {
                registry_number: key,
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.SchoolYearService", "PreviewCycle") => {
            ipb::PreviewCycleRequest { year: 2025 }.encode_to_vec()
        }
        // A summer whose graduation day has not come: refused as a precondition, not run.
        ("xueji.identity.v1.SchoolYearService", "RunCycle") => {
            ipb::RunCycleRequest { year: 2100 }.encode_to_vec()
        }
        ("xueji.identity.v1.SchoolYearService", "GetCycleStatus") => {
            ipb::GetCycleStatusRequest { year: 2025 }.encode_to_vec()
        }
        ("xueji.identity.v1.SchoolYearService", "ConfirmGraduation") => {
            ipb::ConfirmGraduationRequest {
                school_code: key,
                year: 2025,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.SchoolYearService", "RecordGraduationOutcome") => {
            ipb::RecordGraduationOutcomeRequest {
                registry_number: key,
                year: 2025,
                outcome: ipb::GraduationOutcome::Completed as i32,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "UploadEvidence") => ipb::UploadEvidenceRequest {
            registry_number: key,
            file_name: "证明.png".into(),
            content: xueji_tests::matrix_fixture::PNG.to_vec(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.StatusChangeService", "GetEvidence") => {
            ipb::GetEvidenceRequest { id: key }.encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "RequestStatusChange") => {
            ipb::RequestStatusChangeRequest {
                idempotency_key: format!("matrix-{}", uuid_like()),
                registry_number: key,
                kind: ipb::StatusChangeKind::Missing as i32,
                reason: "矩阵测试".into(),
                effective_date: "2026-11-01".into(),
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "DecideStatusChange") => {
            ipb::DecideStatusChangeRequest {
                id: key,
                step: 1,
                approve: false,
                remark: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "CancelStatusChange") => {
            ipb::CancelStatusChangeRequest {
                id: key,
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "UpdateStudentDetails") => {
            ipb::UpdateStudentDetailsRequest {
                idempotency_key: format!("matrix-{}", uuid_like()),
                registry_number: key,
                values: vec![ipb::FieldValue {
                    field: "guardian.phone".into(),
                    value: "13700000000".into(),
                }],
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "RequestCorrection") => {
            ipb::RequestCorrectionRequest {
                idempotency_key: format!("matrix-{}", uuid_like()),
                registry_number: key,
                values: vec![ipb::FieldValue {
                    field: "name".into(),
                    value: "矩阵更正".into(),
                }],
                reason: "矩阵测试".into(),
                evidence_ids: Vec::new(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "RequestProblemResolution") => {
            ipb::RequestProblemResolutionRequest {
                idempotency_key: format!("matrix-{}", uuid_like()),
                registry_number: key,
                problem: ipb::ProblemKind::DuplicateName as i32,
                action: ipb::ResolutionAction::Confirm as i32,
                reason: "矩阵测试".into(),
                evidence_ids: Vec::new(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "GetStudentHistory") => {
            ipb::GetStudentHistoryRequest {
                registry_number: key,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "GetStatusChange") => {
            ipb::GetStatusChangeRequest { id: key }.encode_to_vec()
        }
        ("xueji.identity.v1.StatusChangeService", "ListStatusChangeInbox") => {
            ipb::ListStatusChangeInboxRequest { page_size: 5 }.encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "GetStudent") => {
            ipb::GetStudentRequest { number: key }.encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ListStudents") => ipb::ListStudentsRequest {
            school_code: key,
            page_size: 5,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.identity.v1.IdentityService", "ListProblemRecords") => {
            ipb::ListProblemRecordsRequest {
                jurisdiction: key,
                page_size: 5,
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ListPendingRegistrations") => {
            ipb::ListPendingRegistrationsRequest {
                scope: key,
                page_size: 5,
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ApproveRegistrations") => {
            ipb::ApproveRegistrationsRequest {
                registry_numbers: vec![key],
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "SearchStudents") => ipb::SearchStudentsRequest {
            scope: key,
            name: "矩阵".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.identity.v1.CertificateService", "IssueCertificate") => {
            ipb::IssueCertificateRequest {
                registry_number: key,
                kind: ipb::CertificateKind::Attendance as i32,
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.CertificateService", "VerifyCertificate") => {
            ipb::VerifyCertificateRequest {
                verification_code: "not-a-code".into(),
            }
            .encode_to_vec()
        }
        ("xueji.identity.v1.ClassService", "CreateClass") => ipb::CreateClassRequest {
            school_code: key,
            school_year: 0,
            grade: 1,
            name: "矩阵班".into(),
            head_teacher: String::new(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ClassService", "ListClasses") => ipb::ListClassesRequest {
            school_code: key,
            school_year: 0,
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ClassService", "AssignClass") => ipb::AssignClassRequest {
            registry_number: key,
            class_name: String::new(),
            seat: 0,
            school_year: 0,
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ClassService", "GetClassRoster") => ipb::GetClassRosterRequest {
            school_code: key,
            school_year: 0,
            class_name: "矩阵班".into(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ClassService", "CarryClassesForward") => {
            ipb::CarryClassesForwardRequest {
                school_code: key,
                from_school_year: 2025,
                confirm: false,
            }
            .encode_to_vec()
        }
        ("xueji.node.v1.PolicyService", "ReloadPolicy") => {
            xueji_proto::node::v1::ReloadPolicyRequest {}.encode_to_vec()
        }
        ("xueji.identity.v1.SchoolYearService", "ListWatchList") => ipb::ListWatchListRequest {
            list: ipb::WatchList::SuspensionsPastTerm as i32,
            scope: key,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.identity.v1.IdentityService", "GetSchoolWorkload") => {
            ipb::GetSchoolWorkloadRequest { school_code: key }.encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ScanIdNumbers") => {
            ipb::ScanIdNumbersRequest::default().encode_to_vec()
        }
        ("xueji.identity.v1.IdentityService", "ListRejectedMessages") => {
            ipb::ListRejectedMessagesRequest::default().encode_to_vec()
        }
        ("xueji.national.v1.NationalIndex", "Deliver") => {
            npb::DeliverRequest { messages: vec![] }.encode_to_vec()
        }
        ("xueji.national.v1.NationalIndex", "CheckIdNumber") => npb::CheckIdNumberRequest {
            id_number: "110101201001011234".into(),
        }
        .encode_to_vec(),
        ("xueji.national.v1.NationalIndex", "PullNotices") => npb::PullNoticesRequest {
            after_sequence: 0,
            limit: 5,
        }
        .encode_to_vec(),
        // A head that does not parse: an allowed caller is told so, nothing is witnessed.
        ("xueji.national.v1.NationalIndex", "WitnessAuditHead") => npb::WitnessAuditHeadRequest {
            seq: 1,
            hash: "not hex".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.national.v1.NationalIndex", "ListWitnessedHeads") => {
            npb::ListWitnessedHeadsRequest::default().encode_to_vec()
        }
        // No days: an allowed caller is told the schedule is empty, nothing is loaded.
        ("xueji.national.v1.CalendarRegistry", "LoadCalendarYear") => {
            npb::LoadCalendarYearRequest {
                year: 2099,
                days: vec![],
            }
            .encode_to_vec()
        }
        ("xueji.national.v1.CalendarRegistry", "ListCalendarYears") => {
            npb::ListCalendarYearsRequest::default().encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "ListProvinces") => {
            npb::ListProvincesRequest {}.encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "FindStudent") => {
            npb::FindStudentRequest { number: key }.encode_to_vec()
        }
        ("xueji.national.v1.NationalDirectory", "GetIndexEntry") => {
            npb::GetIndexEntryRequest { number: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "SubmitApplication") => {
            spb::SubmitApplicationRequest {
                application: Some(spb::Application {
                    id: format!(
                        "350102-{:032x}",
                        u128::from(SEQUENCE.fetch_add(1, Ordering::Relaxed)) + 1
                    ),
                    profile: Some(profile("350102")),
                    open_from: "2025-09-01".into(),
                    ..Default::default()
                }),
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ListSubmittedApplications") => {
            spb::ListSubmittedApplicationsRequest::default().encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ApproveApplication") => {
            spb::ApproveApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "RejectApplication") => {
            spb::RejectApplicationRequest {
                id: key,
                reason: "矩阵测试".into(),
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority", "ListDecisions") => spb::ListDecisionsRequest {
            province: "35".into(),
            after_cursor: 0,
        }
        .encode_to_vec(),
        // Lifecycle steps with a date that does not parse: an allowed caller is told so, and
        // nothing changes.
        ("xueji.schools.v1.SchoolAuthority", "RenameSchool") => spb::RenameSchoolRequest {
            code: fixture.gulou.clone(),
            new_name: "改名小学".into(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "MergeSchools") => spb::MergeSchoolsRequest {
            predecessors: vec![fixture.gulou.clone(), fixture.taijiang.clone()],
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ChangeCategory") => spb::ChangeCategoryRequest {
            code: fixture.gulou.clone(),
            new_category: "31".into(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "CloseSchool") => spb::CloseSchoolRequest {
            code: fixture.gulou.clone(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ReopenSchool") => spb::ReopenSchoolRequest {
            code: fixture.gulou.clone(),
            effective_date: invalid_date,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        // The two services' lookup requests are the same on the wire.
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "GetSchool") => {
            spb::GetSchoolRequest { code: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "ListSchools") => {
            spb::ListSchoolsRequest {
                page_size: 5,
                ..Default::default()
            }
            .encode_to_vec()
        }
        ("xueji.schools.v1.SchoolAuthority" | "xueji.schools.v1.SchoolIntake", "GetLineage") => {
            spb::GetLineageRequest { code: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "ListSuccessions") => spb::ListSuccessionsRequest {
            after_version: 0,
            after_code: String::new(),
            page_size: 10,
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "Publish") => spb::PublishRequest {
            note: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "ListPublications") => spb::ListPublicationsRequest {
            after_version: 0,
            limit: 1,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolAuthority", "Diff") => spb::DiffRequest {
            from_version: 0,
            to_version: 1,
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "FileApplication") => spb::FileApplicationRequest {
            idempotency_key: format!("matrix-{}", SEQUENCE.fetch_add(1, Ordering::Relaxed)),
            profile: Some(profile("350102")),
            open_from: "2025-09-01".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "EndorseApplication") => {
            spb::EndorseApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "ReturnApplication") => spb::ReturnApplicationRequest {
            id: key,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.schools.v1.SchoolIntake", "GetApplication") => {
            spb::GetApplicationRequest { id: key }.encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "ListApplications") => {
            spb::ListApplicationsRequest::default().encode_to_vec()
        }
        ("xueji.schools.v1.SchoolIntake", "SyncReplica") => {
            spb::SyncReplicaRequest {}.encode_to_vec()
        }
        ("xueji.identity.v1.TransferLedger", "HoldEnrollment") => ipb::HoldEnrollmentRequest {
            task_id: uuid_like(),
            registry_number: "L350102201501019999".into(),
            name: "矩阵".into(),
            birth_date: "2015-01-01".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ("xueji.identity.v1.TransferLedger", "ReleaseHold") => ipb::ReleaseHoldRequest {
            task_id: uuid_like(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.TransferLedger", "CompleteTransfer") => ipb::CompleteTransferRequest {
            task_id: uuid_like(),
            receiving_school_code: fixture.gulou.clone(),
            grade: 3,
            entry_date: "2025-11-24".into(),
            deciders: Vec::new(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.TransferLedger", "TransferOut") => ipb::TransferOutRequest {
            task_id: uuid_like(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.TransferLedger", "TransferIn") => ipb::TransferInRequest {
            task_id: uuid_like(),
            ..Default::default()
        }
        .encode_to_vec(),
        // No messages: an allowed caller is answered "none new".
        ("xueji.transfers.v1.TransferRelay", "RelayMessages") => {
            tpb::RelayMessagesRequest::default().encode_to_vec()
        }
        ("xueji.transfers.v1.TransferPeer", "ReceiveMessages") => {
            tpb::ReceiveMessagesRequest::default().encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "StartTransfer") => {
            // Nobody holds this number: an allowed caller is refused with 2001.
            xueji_tests::transfers::start_request(&key, "L350102201501019999", "矩阵", "2015-01-01")
                .encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "ApproveTransfer") => tpb::ApproveTransferRequest {
            transfer_id: key,
            step: 0,
            remark: String::new(),
        }
        .encode_to_vec(),
        ("xueji.transfers.v1.TransferService", "RejectTransfer") => tpb::RejectTransferRequest {
            transfer_id: key,
            step: 0,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.transfers.v1.TransferService", "CancelTransfer") => tpb::CancelTransferRequest {
            transfer_id: key,
            reason: "矩阵测试".into(),
        }
        .encode_to_vec(),
        ("xueji.transfers.v1.TransferService", "GetTransfer") => {
            tpb::GetTransferRequest { transfer_id: key }.encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "ListTransfers") => {
            tpb::ListTransfersRequest::default().encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "CountOverdueTransfers") => {
            tpb::CountOverdueTransfersRequest {}.encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "ListSetAsideMessages") => {
            tpb::ListSetAsideMessagesRequest::default().encode_to_vec()
        }
        ("xueji.transfers.v1.TransferService", "DescribeCalendar") => {
            tpb::DescribeCalendarRequest {}.encode_to_vec()
        }
        ("xueji.identity.v1.ImportService", "ImportIntake") => ipb::ImportIntakeRequest {
            part: Some(ipb::import_intake_request::Part::Header(empty_file_header())),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ImportService", "ImportMigration") => ipb::ImportMigrationRequest {
            part: Some(ipb::import_migration_request::Part::Header(
                empty_file_header(),
            )),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ImportService", "GetImportJob") => {
            ipb::GetImportJobRequest { job_id: key }.encode_to_vec()
        }
        ("xueji.identity.v1.ChangeFeed", "ReadChanges") => ipb::ReadChangesRequest {
            after_position: 0,
            limit: 10,
        }
        .encode_to_vec(),
        ("xueji.stats.v1.StatsService", "GetMonthlyReport") => stpb::GetMonthlyReportRequest {
            unit: String::new(),
            month: "2026-09".into(),
        }
        .encode_to_vec(),
        ("xueji.stats.v1.StatsService", "GetCounts") => {
            stpb::GetCountsRequest::default().encode_to_vec()
        }
        ("xueji.stats.v1.StatsService", "GetSchoolSummary") => {
            stpb::GetSchoolSummaryRequest::default().encode_to_vec()
        }
        ("xueji.stats.v1.StatsService", "CheckReconciliation") => {
            stpb::CheckReconciliationRequest {
                unit: String::new(),
                month: "2026-09".into(),
            }
            .encode_to_vec()
        }
        ("xueji.stats.v1.StatsService", "ListDropouts") => {
            stpb::ListDropoutsRequest::default().encode_to_vec()
        }
        ("xueji.stats.v1.StatsService", "ListDataQuality") => {
            stpb::ListDataQualityRequest::default().encode_to_vec()
        }
        ("xueji.stats.v1.StatsService", "ListProvinceReports") => {
            stpb::ListProvinceReportsRequest::default().encode_to_vec()
        }
        ("xueji.stats.v1.NationalStats", "ReportAggregates") => stpb::ReportAggregatesRequest {
            province: "35".into(),
            feed_position: 0,
            rows: vec![],
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ImportService", "ListImportJobs") => {
            ipb::ListImportJobsRequest { limit: 5 }.encode_to_vec()
        }
        ("xueji.identity.v1.ImportService", "DownloadImportErrors") => {
            ipb::DownloadImportErrorsRequest { job_id: key }.encode_to_vec()
        }
        ("xueji.identity.v1.ImportService", "DownloadTemplate") => ipb::DownloadTemplateRequest {
            format: ipb::SheetFormat::Xlsx as i32,
            province: String::new(),
        }
        .encode_to_vec(),
        ("xueji.identity.v1.ImportService", "ExportStudents") => ipb::ExportStudentsRequest {
            format: ipb::SheetFormat::Csv as i32,
            scope: String::new(),
        }
        .encode_to_vec(),
        _ => panic!("{method} has a row but no request in this test: add one"),
    }
}

/// The header of an upload whose file is empty (the stream ends after it): an allowed caller
/// gets a job that failed for want of a heading row; nothing is imported.
fn empty_file_header() -> ipb::ImportHeader {
    ipb::ImportHeader {
        file_name: "空.csv".into(),
        format: ipb::SheetFormat::Csv as i32,
        // SHA-256 of no bytes.
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        size: 0,
    }
}

/// A task id nobody used.
fn uuid_like() -> String {
    format!(
        "00000000-0000-4000-8000-{:012x}",
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A call's answer, reduced to what the matrix speaks of.
fn answered(status: &Result<(), Status>) -> bool {
    match status {
        Ok(()) => true,
        Err(status) => !matches!(
            status.code(),
            Code::PermissionDenied
                | Code::Unauthenticated
                | Code::NotFound
                | Code::Unavailable
                | Code::Internal
                | Code::Unknown
        ),
    }
}

fn describe(answer: &Result<(), Status>) -> String {
    match answer {
        Ok(()) => "OK".into(),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Checks one principal's calls of one RPC; answers the mismatches.
async fn check(
    federation: &Federation,
    fixture: &Fixture,
    method: &str,
    row: &Row,
    principal: &Principal,
    client: &Client,
) -> Vec<String> {
    let allowed = row.allow.iter().any(|p| p == principal.name);
    let mut wrong = Vec::new();
    let mut fail = |what: String| wrong.push(format!("{method} as {}: {what}", principal.name));
    if row.object == "none" {
        let answer = call(client, method, request(method, None, fixture)).await;
        let ok = if allowed {
            answered(&answer)
        } else {
            matches!(&answer, Err(s) if s.code() == Code::PermissionDenied)
        };
        if !ok {
            fail(format!(
                "expected {}, got {}",
                if allowed {
                    "an answer"
                } else {
                    "PERMISSION_DENIED"
                },
                describe(&answer)
            ));
        }
        return wrong;
    }
    if let Some(own) = fixture.own(method, &row.object, principal) {
        let answer = call(client, method, request(method, Some(&own), fixture)).await;
        let ok = if allowed {
            answered(&answer)
        } else {
            matches!(&answer, Err(s) if s.code() == Code::PermissionDenied)
        };
        if !ok {
            fail(format!(
                "own {own}: expected {}, got {}",
                if allowed {
                    "an answer"
                } else {
                    "PERMISSION_DENIED"
                },
                describe(&answer)
            ));
        }
    }
    let foreign = fixture.foreign(&row.object, principal);
    let missing_key = Fixture::missing(&row.object, foreign.as_deref());
    let missing = call(client, method, request(method, Some(&missing_key), fixture)).await;
    // Nothing is hidden from the nation: a missing object may be answered (a workload of zero).
    let hidden_or_answered = principal.reach() == Reach::Nation && answered(&missing);
    match &missing {
        _ if hidden_or_answered => {}
        Err(status)
            if allowed && matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {}
        Err(status)
            if !allowed
                && matches!(
                    status.code(),
                    Code::NotFound | Code::PermissionDenied | Code::InvalidArgument
                ) => {}
        other => fail(format!("missing {missing_key}: got {}", describe(other))),
    }
    if let Some(foreign) = foreign {
        let answer = call(client, method, request(method, Some(&foreign), fixture)).await;
        let same = match (&answer, &missing) {
            (Err(a), Err(m)) => {
                a.code() == m.code() && a.message().replace(&foreign, &missing_key) == m.message()
            }
            _ => false,
        };
        if !same {
            fail(format!(
                "foreign {foreign} answered {} but missing {missing_key} {}",
                describe(&answer),
                describe(&missing)
            ));
        }
    }
    let _ = federation;
    wrong
}

#[tokio::test]
async fn every_rpc_answers_every_principal_as_the_matrix_declares() {
    let matrix = AuthorizationMatrix::bundled();
    let described = described_rpcs();
    let declared: BTreeSet<String> = matrix.rpc.keys().cloned().collect();
    assert_eq!(
        described.difference(&declared).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "RPCs without a row in proto/xueji/authorization.toml"
    );
    assert_eq!(
        declared.difference(&described).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for RPCs the protos no longer have"
    );

    let federation = Federation::start().await;
    let fixture = fixture(&federation).await;
    let principals = principals(&fixture);
    let mut wrong = Vec::new();
    let mut calls = 0;
    for principal in &principals {
        let to_province =
            client(&federation, principal, &federation.province("35").address()).await;
        let to_national = client(&federation, principal, &federation.national.address()).await;
        for (method, row) in &matrix.rpc {
            let client = if node_of(&federation, method) == federation.national.address() {
                &to_national
            } else {
                &to_province
            };
            wrong.extend(check(&federation, &fixture, method, row, principal, client).await);
            calls += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} (RPC, principal) pairs answered against the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Another province's services, with their own certificates and their own province's
    // tokens (what a misbehaving province holds), act on nothing of Fujian's: every RPC
    // Fujian's node serves, on Fujian's own objects, is refused before it reads the request.
    let mut acted = Vec::new();
    let mut foreign_calls = 0;
    for stem in xueji_pki::PROVINCE_SERVICES {
        let config = xueji_rpc::ClientConfig {
            tls: xueji_rpc::TlsSource::from_dir(&federation.pki("34"), stem).expect("TLS"),
            server: xueji_rpc::ExpectedServer::AnyNode,
            request_timeout: std::time::Duration::from_secs(30),
        };
        let channel = xueji_rpc::connect(&federation.province("35").address(), &config)
            .await
            .expect("connects");
        let token = federation.province_token(
            "34",
            xueji_auth::Level::Province,
            "340000",
            xueji_auth::Role::Operator,
        );
        let anhui: Client = tonic::service::interceptor::InterceptedService::new(
            channel,
            xueji_rpc::BearerToken::new(&token).unwrap(),
        );
        for (method, row) in &matrix.rpc {
            if node_of(&federation, method) != federation.province("35").address() {
                continue;
            }
            let principal = principals
                .iter()
                .find(|p| p.name == "county-operator")
                .expect("a principal to pick Fujian's objects with");
            let object = if row.object == "none" {
                None
            } else {
                fixture.own(method, &row.object, principal)
            };
            let answer = call(&anhui, method, request(method, object.as_deref(), &fixture)).await;
            foreign_calls += 1;
            if !matches!(&answer, Err(s) if matches!(s.code(), Code::PermissionDenied | Code::Unauthenticated))
            {
                acted.push(format!(
                    "{method} as Anhui's {stem} service: {}",
                    describe(&answer)
                ));
            }
        }
    }
    assert!(
        foreign_calls >= 4 * 40,
        "{foreign_calls} calls: the province node's RPCs, each"
    );
    assert!(
        acted.is_empty(),
        "{} of {foreign_calls} calls by another province's services were not refused:\n{}",
        acted.len(),
        acted.join("\n")
    );
}
