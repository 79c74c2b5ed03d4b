//! The saga against fakes of its ports, on a real PostgreSQL: what it does when identity
//! refuses a hold, or does not answer, which a federation can hardly be made to show on cue.

// Test code: a panic is the failure message.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use chrono::NaiveDate;
use futures::{FutureExt, future::BoxFuture};
use uuid::Uuid;
use xueji_auth::{Caller, Clock, Jurisdiction, Level, Role};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1::MovedStudent;
use xueji_transfers::{
    TransferError,
    domain::{SchoolFacts, StartRequest, StudentKey},
    links::{Arrival, EnrollmentLedger, Held, SchoolList},
    policy::SagaPolicy,
    saga::{Saga, SagaGauges, SagaParts},
    store::{Store, TransferState},
};

const SENDING: &str = "2135000001";
const RECEIVING: &str = "2135000003";

/// Identity as the saga sees it: holds answered from a script, every call counted.
#[derive(Debug, Default)]
struct ScriptedLedger {
    /// Holds that fail as UNAVAILABLE before one answers.
    unavailable_holds: AtomicUsize,
    /// A refusal every hold answers (reason, national code).
    refusal: Mutex<Option<(String, String)>>,
    holds: AtomicUsize,
    releases: AtomicUsize,
}

impl EnrollmentLedger for ScriptedLedger {
    fn hold<'a>(
        &'a self,
        _task: Uuid,
        _student: &'a StudentKey,
        _name: &'a str,
        _birth_date: NaiveDate,
    ) -> BoxFuture<'a, Result<Held, TransferError>> {
        async move {
            self.holds.fetch_add(1, Ordering::SeqCst);
            if self
                .unavailable_holds
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(TransferError::Unavailable("identity is restarting".into()));
            }
            if let Some((reason, code)) = self.refusal.lock().unwrap().clone() {
                return Err(TransferError::Refused {
                    reason,
                    national_code: Some(code),
                    message: "the student has a status change under way".into(),
                });
            }
            Ok(Held {
                registry_number: "G350102201803070010".into(),
                school_code: SENDING.into(),
                grade: 3,
            })
        }
        .boxed()
    }

    fn release(&self, _task: Uuid) -> BoxFuture<'_, Result<(), TransferError>> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }.boxed()
    }

    fn complete<'a>(
        &'a self,
        _task: Uuid,
        _arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>> {
        async { Ok(()) }.boxed()
    }

    fn transfer_out(&self, _task: Uuid) -> BoxFuture<'_, Result<MovedStudent, TransferError>> {
        async {
            Err(TransferError::Internal(
                "not a transfer between provinces".into(),
            ))
        }
        .boxed()
    }

    fn transfer_in<'a>(
        &'a self,
        _task: Uuid,
        _student: &'a MovedStudent,
        _arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>> {
        async {
            Err(TransferError::Internal(
                "not a transfer between provinces".into(),
            ))
        }
        .boxed()
    }
}

/// The published list: two primary schools of two Fuzhou counties.
#[derive(Debug)]
struct TwoSchools(HashMap<String, SchoolFacts>);

impl TwoSchools {
    fn new() -> Self {
        let school = |code: &str, county: &str| {
            let code: SchoolCode = code.parse().unwrap();
            SchoolFacts {
                stages: xueji_codes::default_stages(code.category()),
                code,
                division: county.parse().unwrap(),
                registry_authority: county.parse().unwrap(),
                township: None,
            }
        };
        Self(HashMap::from([
            (SENDING.to_owned(), school(SENDING, "350102")),
            (RECEIVING.to_owned(), school(RECEIVING, "350103")),
        ]))
    }
}

impl SchoolList for TwoSchools {
    fn school<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<SchoolFacts>, TransferError>> {
        async move { Ok(self.0.get(code.as_str()).cloned()) }.boxed()
    }
}

async fn saga(ledger: Arc<ScriptedLedger>) -> (Arc<Saga>, tempfile::TempDir) {
    let database = xueji_testkit::database("transfers", |pool| {
        async move { Ok(xueji_transfers::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    let pki = tempfile::tempdir().unwrap();
    xueji_pki::init_single(pki.path()).unwrap();
    let saga = Saga::new(SagaParts {
        store: Store::new(database.pool),
        ledger,
        schools: Arc::new(TwoSchools::new()),
        policy: Arc::new(SagaPolicy::bundled()),
        clock: Clock::system(),
        gauges: SagaGauges::default(),
        province: "35".into(),
        relay: None,
        calendar_source: None,
        notary: xueji_rpc::TlsSource::from_dir(pki.path(), "node").unwrap(),
    });
    (saga, pki)
}

fn receiving_school() -> Caller {
    Caller {
        user: "receiving-operator".into(),
        level: Level::School,
        jurisdiction: Jurisdiction::for_level(Level::School, RECEIVING).unwrap(),
        role: Role::Operator,
    }
}

fn start_request(key: &str) -> StartRequest {
    StartRequest {
        idempotency_key: key.into(),
        receiving_school: RECEIVING.parse().unwrap(),
        student: StudentKey::IdNumber("350102201803070010".parse().unwrap()),
        name: "王小明".into(),
        birth_date: NaiveDate::from_ymd_opt(2018, 3, 7).unwrap(),
        target_grade: 3,
        reason: "the family moved".into(),
        evidence: Vec::new(),
    }
}

#[tokio::test]
async fn a_hold_identity_refuses_ends_the_transfer_refused_and_a_retry_asks_nobody_again() {
    let ledger = Arc::new(ScriptedLedger::default());
    *ledger.refusal.lock().unwrap() = Some(("status_change_pending".into(), "2003".into()));
    let (saga, _pki) = saga(ledger.clone()).await;
    let caller = receiving_school();

    let refused = saga
        .start(&caller, "r-1", start_request("k-1"))
        .await
        .unwrap_err();
    match refused {
        TransferError::Refused {
            reason,
            national_code,
            ..
        } => {
            assert_eq!(reason, "status_change_pending");
            assert_eq!(national_code.as_deref(), Some("2003"));
        }
        other => panic!("expected the identity's refusal, got {other:?}"),
    }
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 1);

    // The same request again answers the stored refusal; identity is not asked twice.
    let again = saga.start(&caller, "r-2", start_request("k-1")).await;
    assert!(
        matches!(again, Err(TransferError::Refused { ref reason, .. }) if reason == "status_change_pending"),
        "{again:?}"
    );
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 1);
    // Nothing was held, so nothing is released.
    assert_eq!(ledger.releases.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_start_identity_did_not_answer_is_carried_on_once_identity_is_back() {
    let ledger = Arc::new(ScriptedLedger::default());
    ledger.unavailable_holds.store(1, Ordering::SeqCst);
    let (saga, _pki) = saga(ledger.clone()).await;
    let caller = receiving_school();

    let unavailable = saga.start(&caller, "r-1", start_request("k-2")).await;
    assert!(
        matches!(unavailable, Err(TransferError::Unavailable(_))),
        "{unavailable:?}"
    );
    // The retry of the same request holds the student and opens the approvals.
    let started = saga
        .start(&caller, "r-2", start_request("k-2"))
        .await
        .unwrap();
    assert_eq!(started.state, TransferState::InProgress);
    assert_eq!(started.sending_school.as_deref(), Some(SENDING));
    assert_eq!(
        started.registry_number.as_deref(),
        Some("G350102201803070010")
    );
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 2);
    // One transfer, not two: the retry found the first start.
    let again = saga
        .start(&caller, "r-3", start_request("k-2"))
        .await
        .unwrap();
    assert_eq!(again.id, started.id);
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 2);
}
