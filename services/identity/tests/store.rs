//! The store on a real PostgreSQL: what the single-statement registration and the approval
//! transaction guarantee by themselves.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use chrono::NaiveDate;
use futures::FutureExt;
use xueji_auth::{Caller, Jurisdiction, Level, Role};
use xueji_codes::{Gender, RegistryNumber};
use xueji_identity::{
    domain::{
        DocumentType, EntryRoute, Guardian, Promotion, RegistrationInput, School,
        validate_registration,
    },
    national::{DeliveryOutcome, OutboxBody},
    store::{Actor, Approval, BatchRegistration, RegisterOutcome, Store, outbox},
};

async fn store() -> Store {
    let database = xueji_testkit::database("identity", |pool| {
        async move { Ok(xueji_identity::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    let store = Store::new(database.pool);
    store.upsert_school(&school()).await.unwrap();
    store
}

/// Waits until every outbox message is deliverable. Delivery only reads messages of transactions
/// older than the cluster's snapshot horizon, and tests running beside this one in other
/// databases of the same cluster hold that horizon back for a moment; the deliverer simply tries
/// again next round, and so does this.
async fn wait_until_outbox_is_deliverable(store: &Store) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT coalesce((SELECT xid FROM identity.outbox ORDER BY xid DESC LIMIT 1)
                             >= pg_snapshot_xmin(pg_current_snapshot()), false)",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if !waiting {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a transaction in the cluster stayed open for 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn school() -> School {
    School {
        code: "2135000101".parse().unwrap(),
        name: "鼓楼实验小学".into(),
        division: "350102".parse().unwrap(),
        registry_authority: "350102".parse().unwrap(),
        open_from: NaiveDate::from_ymd_opt(2000, 9, 1).unwrap(),
        open_until: None,
        stages: xueji_codes::default_stages(xueji_codes::SchoolCategory::Primary),
    }
}

fn caller() -> Caller {
    Caller {
        user: "op".into(),
        level: Level::School,
        jurisdiction: Jurisdiction::for_level(Level::School, "2135000101").unwrap(),
        role: Role::Operator,
    }
}

/// A batch row: the registration with key `key`, its temporary number of draw `draw`.
fn batch_row(
    caller: &Caller,
    key: &str,
    draw: u16,
) -> (
    xueji_identity::domain::Registration,
    RegistryNumber,
    Caller,
    String,
) {
    let registration = passport_registration(key);
    let number = registration.temporary_number(draw);
    (registration, number, caller.clone(), format!("req-{key}"))
}

/// Batch rows as `register_batch` takes them.
fn as_batch(
    rows: &[(
        xueji_identity::domain::Registration,
        RegistryNumber,
        Caller,
        String,
    )],
) -> Vec<BatchRegistration<'_>> {
    rows.iter()
        .map(
            |(registration, number, caller, request_id)| BatchRegistration {
                registration,
                number,
                actor: Actor { caller, request_id },
            },
        )
        .collect()
}

fn passport_registration(key: &str) -> xueji_identity::domain::Registration {
    validate_registration(
        RegistrationInput {
            idempotency_key: key.into(),
            name: "Ana Lima".into(),
            gender: Some(Gender::Female),
            birth_date: "2018-03-07".into(),
            ethnicity: "98".into(),
            document_type: Some(DocumentType::Passport),
            document_number: format!("P{key}"),
            school_code: "2135000101".into(),
            grade: 1,
            entry_date: "2024-09-01".into(),
            entry_route: Some(EntryRoute::Other),
            guardian: Some(Guardian {
                name: "Rui Lima".into(),
                relation: "父亲".into(),
                phone: String::new(),
            }),
            flags: Default::default(),
        },
        Some(school()),
        NaiveDate::from_ymd_opt(2024, 9, 1).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_taken_temporary_number_asks_for_a_redraw_and_writes_nothing() {
    let store = store().await;
    let caller = caller();
    let actor = Actor {
        caller: &caller,
        request_id: "r",
    };
    let first = passport_registration("a");
    let number = first.temporary_number(42);
    assert!(matches!(
        store.register(&first, &number, actor).await.unwrap(),
        RegisterOutcome::Created { .. }
    ));
    let counts = store.counts().await.unwrap();
    let second = passport_registration("b");
    assert!(matches!(
        store.register(&second, &number, actor).await.unwrap(),
        RegisterOutcome::NumberTaken
    ));
    assert_eq!(store.counts().await.unwrap(), counts);
}

#[tokio::test]
async fn j_numbers_follow_a_sequence_and_numbers_are_never_reissued() {
    let store = store().await;
    let caller = caller();
    let actor = Actor {
        caller: &caller,
        request_id: "r",
    };
    let promotion = Promotion::ToJ {
        division: "350102".parse().unwrap(),
        birth_date: NaiveDate::from_ymd_opt(2018, 3, 7).unwrap(),
    };
    let mut issued = Vec::new();
    for (i, key) in ["c", "d", "e"].into_iter().enumerate() {
        let registration = passport_registration(key);
        let RegisterOutcome::Created { student_id, .. } = store
            .register(
                &registration,
                &registration.temporary_number(i as u16),
                actor,
            )
            .await
            .unwrap()
        else {
            panic!("created")
        };
        store.approve(student_id, &promotion, actor).await.unwrap();
        let record = store.student(student_id).await.unwrap();
        let number: RegistryNumber = record.registry_number.parse().unwrap();
        issued.push(number.to_string());
        assert_eq!(
            record.aliases,
            vec![registration.temporary_number(i as u16).to_string()]
        );
    }
    assert_eq!(
        issued
            .iter()
            .map(|n| n[15..18].to_owned())
            .collect::<Vec<_>>(),
        ["001", "002", "003"]
    );

    // Issuing an existing number to another student is refused.
    let registration = passport_registration("f");
    let RegisterOutcome::Created { student_id, .. } = store
        .register(&registration, &registration.temporary_number(9), actor)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    let taken = Promotion::ToG(
        // Any resident ID: its G number is inserted first under another student.
        "11010519491231002X".parse().unwrap(),
    );
    let other = passport_registration("g");
    let RegisterOutcome::Created {
        student_id: other_id,
        ..
    } = store
        .register(&other, &other.temporary_number(10), actor)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    // A G waits for the national check; when both claims come back granted (a national node
    // gone wrong), the second promotion still cannot take a number already issued.
    for id in [other_id, student_id] {
        assert!(matches!(
            store.approve(id, &taken, actor).await.unwrap(),
            Approval::AwaitingNationalCheck { .. }
        ));
    }
    wait_until_outbox_is_deliverable(&store).await;
    let mut tx = store.pool().begin().await.unwrap();
    assert!(outbox::take_delivery_turn(&mut tx).await.unwrap());
    // A second deliverer (another replica) finds the turn taken and skips its round.
    let mut other_replica = store.pool().begin().await.unwrap();
    assert!(
        !outbox::take_delivery_turn(&mut other_replica)
            .await
            .unwrap()
    );
    drop(other_replica);
    let claims: Vec<_> = outbox::undelivered(&mut tx, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| matches!(m.body, OutboxBody::ClaimIdNumber { .. }))
        .collect();
    assert_eq!(claims.len(), 2);
    outbox::settle(&mut tx, &claims[..1], &[DeliveryOutcome::Granted])
        .await
        .unwrap();
    let error = outbox::settle(&mut tx, &claims[1..], &[DeliveryOutcome::Granted])
        .await
        .expect_err("G11010519491231002X belongs to someone else");
    assert!(error.to_string().contains("already issued"), "{error}");
}

#[tokio::test]
async fn a_batch_writes_like_single_registrations_and_refuses_as_a_whole() {
    let store = store().await;
    let caller = caller();
    let row = |key: &str, draw: u16| batch_row(&caller, key, draw);
    // h and i share name, gender and birth date: both are flagged in the same batch.
    let created = store
        .register_batch(
            &mut store.pool().acquire().await.unwrap(),
            &as_batch(&[row("h", 1), row("i", 2)]),
        )
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    assert!(created.values().all(|outcome| matches!(
        outcome,
        RegisterOutcome::Created {
            duplicate_name: true,
            ..
        }
    )));
    let (students, enrollments, audit) = store.counts().await.unwrap();
    assert_eq!((students, enrollments, audit), (2, 2, 2));

    // A known key is left out of the answer (the caller replays it one by one); a number issued
    // before answers NumberTaken (the caller draws again); the rest is written.
    let answered = store
        .register_batch(
            &mut store.pool().acquire().await.unwrap(),
            &as_batch(&[row("h", 9), row("j", 3), row("m", 2)]),
        )
        .await
        .unwrap();
    let mut keys: Vec<_> = answered.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["j", "m"]);
    assert!(matches!(answered["j"], RegisterOutcome::Created { .. }));
    assert!(matches!(answered["m"], RegisterOutcome::NumberTaken));
    assert_eq!(store.counts().await.unwrap(), (3, 3, 3));

    // Two rows drawing one temporary number: the whole batch is refused, nothing written.
    let before = store.counts().await.unwrap();
    assert!(
        store
            .register_batch(
                &mut store.pool().acquire().await.unwrap(),
                &as_batch(&[row("k", 7), row("l", 7)])
            )
            .await
            .is_err()
    );
    assert_eq!(store.counts().await.unwrap(), before);

    // The batch's audit entries chain like any others.
    xueji_audit::seal_all(store.pool()).await.unwrap();
    assert!(
        xueji_audit::verify(store.pool(), |_| {})
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn a_number_a_concurrent_writer_takes_is_redrawn_and_the_rest_of_the_batch_written() {
    let store = store().await;
    let caller = caller();
    let row = |key: &str, draw: u16| batch_row(&caller, key, draw);
    let batch = [row("p", 1), row("q", 2), row("r", 3)];
    // Another writer holds number 2, not yet committed: the batch waits for it, then clashes.
    let mut other = store.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO identity.registry_numbers (number, student_id) VALUES ($1, 0)")
        .bind(batch[1].1.as_str())
        .execute(&mut *other)
        .await
        .unwrap();
    let writing = tokio::spawn({
        let store = store.clone();
        let batch = batch.clone();
        async move {
            let mut conn = store.pool().acquire().await.unwrap();
            store.register_batch(&mut conn, &as_batch(&batch)).await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !writing.is_finished(),
        "the batch waits for the other writer"
    );
    other.commit().await.unwrap();

    let answered = writing.await.unwrap().unwrap();
    assert_eq!(answered.len(), 3);
    assert!(matches!(answered["p"], RegisterOutcome::Created { .. }));
    assert!(matches!(answered["q"], RegisterOutcome::NumberTaken));
    assert!(matches!(answered["r"], RegisterOutcome::Created { .. }));
    assert_eq!(store.counts().await.unwrap(), (2, 2, 2));
}

#[tokio::test]
async fn outbox_message_ids_are_time_ordered_version_7_uuids() {
    let store = store().await;
    let caller = caller();
    let actor = Actor {
        caller: &caller,
        request_id: "req",
    };
    for (draw, key) in ["early", "late"].into_iter().enumerate() {
        let registration = passport_registration(key);
        store
            .register(
                &registration,
                &registration.temporary_number(draw as u16),
                actor,
            )
            .await
            .unwrap();
        // Ids are ordered by the millisecond they were written in.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    wait_until_outbox_is_deliverable(&store).await;
    let mut tx = store.pool().begin().await.unwrap();
    let ids: Vec<uuid::Uuid> = outbox::undelivered(&mut tx, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.message_id)
        .collect();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert_eq!(id.get_version_num(), 7, "{id}");
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
        let mut stamp = [0u8; 8];
        stamp[2..].copy_from_slice(&id.as_bytes()[..6]);
        let written_ms = i64::from_be_bytes(stamp);
        let now_ms = chrono::Utc::now().timestamp_millis();
        assert!(
            (now_ms - written_ms).abs() < 60_000,
            "{id} is not stamped with the time of writing"
        );
    }
    assert!(ids[0] < ids[1], "{} was written before {}", ids[0], ids[1]);
}
