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
use xueji_proto::{
    identity::v1::MovedStudent,
    transfers::v1::{self as tpb, SagaMessage},
};
use xueji_transfers::{
    TransferError,
    domain::{SchoolFacts, StartRequest, StudentKey},
    links::{Arrival, EnrollmentLedger, Held, RelayLink, SchoolList},
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

/// The published list: two primary schools of two Fuzhou counties; it fails as UNAVAILABLE
/// as many times as `unavailable` says.
#[derive(Debug)]
struct TwoSchools(HashMap<String, SchoolFacts>, Arc<AtomicUsize>);

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
        Self(
            HashMap::from([
                (SENDING.to_owned(), school(SENDING, "350102")),
                (RECEIVING.to_owned(), school(RECEIVING, "350103")),
            ]),
            Arc::default(),
        )
    }
}

impl SchoolList for TwoSchools {
    fn school<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<SchoolFacts>, TransferError>> {
        async move {
            if self
                .1
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(TransferError::Unavailable(
                    "the school list did not answer".into(),
                ));
            }
            Ok(self.0.get(code.as_str()).cloned())
        }
        .boxed()
    }
}

/// The national relay as the saga sees it: takes every message, keeps them.
#[derive(Debug, Default)]
struct KeptRelay(Mutex<Vec<SagaMessage>>);

impl RelayLink for KeptRelay {
    fn relay(
        &self,
        messages: Vec<SagaMessage>,
    ) -> BoxFuture<'_, Result<Vec<(Uuid, String)>, TransferError>> {
        self.0.lock().unwrap().extend(messages);
        async { Ok(Vec::new()) }.boxed()
    }
}

/// The parts a test keeps its hands on.
struct Ports {
    ledger: Arc<ScriptedLedger>,
    /// How many more times the school list fails.
    schools_unavailable: Arc<AtomicUsize>,
    relay: Option<Arc<KeptRelay>>,
}

async fn saga(ledger: Arc<ScriptedLedger>) -> (Arc<Saga>, tempfile::TempDir) {
    saga_with(Ports {
        ledger,
        schools_unavailable: Arc::default(),
        relay: None,
    })
    .await
}

async fn saga_with(ports: Ports) -> (Arc<Saga>, tempfile::TempDir) {
    let database = xueji_testkit::database("transfers", |pool| {
        async move { Ok(xueji_transfers::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    let pki = tempfile::tempdir().unwrap();
    xueji_pki::init_single(pki.path()).unwrap();
    let mut schools = TwoSchools::new();
    schools.1 = ports.schools_unavailable;
    let saga = Saga::new(SagaParts {
        store: Store::new(database.pool),
        ledger: ports.ledger,
        schools: Arc::new(schools),
        policy: xueji_policy::Live::new(SagaPolicy::bundled()),
        clock: Clock::system(),
        gauges: SagaGauges::default(),
        province: "35".into(),
        relay: ports.relay.map(|relay| relay as Arc<dyn RelayLink>),
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

#[tokio::test]
async fn a_hold_answer_whose_approvals_could_not_open_is_applied_again_and_opens_them() {
    // The student is in another province: identity here answers 2001, the relay asks the
    // owner to hold.
    let ledger = Arc::new(ScriptedLedger::default());
    *ledger.refusal.lock().unwrap() = Some(("not_found".into(), "2001".into()));
    let schools_unavailable = Arc::new(AtomicUsize::new(0));
    let relay = Arc::new(KeptRelay::default());
    let (saga, _pki) = saga_with(Ports {
        ledger: ledger.clone(),
        schools_unavailable: schools_unavailable.clone(),
        relay: Some(relay.clone()),
    })
    .await;
    let caller = receiving_school();
    let waiting = saga
        .start(&caller, "r-1", start_request("k-across"))
        .await
        .unwrap();
    assert_eq!(waiting.state, TransferState::Starting);
    saga.deliver_outbox().await.unwrap();
    assert_eq!(
        relay.0.lock().unwrap().len(),
        1,
        "the hold request went out"
    );
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 1);

    // Anhui's answer arrives while the school list is not answering: the approvals cannot
    // open, and the answer waits to be applied again.
    schools_unavailable.store(1, Ordering::SeqCst);
    let answer = SagaMessage {
        message_id: Uuid::new_v4().to_string(),
        transfer_id: waiting.id.to_string(),
        from_province: "34".into(),
        to_province: "35".into(),
        traceparent: String::new(),
        body: Some(tpb::saga_message::Body::HoldAnswer(tpb::HoldAnswer {
            held: true,
            registry_number: format!(
                "G{}",
                xueji_codes::ResidentId::from_body("34010220180307001").unwrap()
            ),
            school_code: "2134000001".into(),
            grade: 3,
            school_division: "340102".into(),
            registry_authority: "340102".into(),
            ..Default::default()
        })),
    };
    saga.take_messages(&[answer]).await.unwrap();
    assert_eq!(saga.apply_inbox().await.unwrap(), 0);
    assert_eq!(
        schools_unavailable.load(Ordering::SeqCst),
        0,
        "the answer reached the approvals"
    );
    // Meanwhile the sweeper and a retried start leave it to the answer: nobody here is asked
    // to hold a student this province does not have, and nothing more goes to the relay.
    saga.resume_starts().await.unwrap();
    let retried = saga
        .start(&caller, "r-2", start_request("k-across"))
        .await
        .unwrap();
    assert_eq!(retried.state, TransferState::Starting);
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 1);

    // Applied again, the answer opens the approvals.
    assert_eq!(saga.apply_inbox().await.unwrap(), 1);
    let opened = saga
        .start(&caller, "r-3", start_request("k-across"))
        .await
        .unwrap();
    assert_eq!(opened.state, TransferState::InProgress, "{opened:?}");
    assert_eq!(opened.sending_school.as_deref(), Some("2134000001"));
    assert_eq!(ledger.holds.load(Ordering::SeqCst), 1);
}
