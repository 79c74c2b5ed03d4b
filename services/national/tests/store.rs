//! The national store on a real PostgreSQL: a delivered batch has the effect of its messages
//! applied in order, whether they go through the set-wide path for first-time entries or one by
//! one.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use futures::FutureExt;
use xueji_codes::{RegistryNumber, ResidentId};
use xueji_national::{
    domain::{Claim, Delivery, IndexStatus, IndexStudent, Message, Outcome},
    index_key::IndexKey,
    store::{DeliveryActor, Store},
};

async fn store() -> Store {
    let database = xueji_testkit::database("national", |pool| {
        async move { Ok(xueji_national::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    Store::new(database.pool)
}

/// The key the store's callers digest with (the API, in a node).
fn key() -> IndexKey {
    IndexKey::from_secret([7; 32])
}

fn claim(registry_number: &str, id: ResidentId) -> Claim {
    Claim {
        registry_number: number(registry_number),
        id_digest: key().id_digest(&id),
        id_number: id,
    }
}

fn number(text: &str) -> RegistryNumber {
    text.parse().expect("a valid registry number")
}

fn resident_id(body: &str) -> ResidentId {
    ResidentId::from_body(body).expect("a valid ID body")
}

/// A well-formed duplicate digest (64 hex characters) standing for `label`: equal labels, equal
/// digests.
fn digest(label: &str) -> String {
    let hex: String = label.bytes().map(|byte| format!("{byte:02x}")).collect();
    format!("{hex:0<64}")
}

fn index(registry_number: &str, id_body: Option<&str>, label: &str) -> Delivery {
    Delivery {
        message_id: uuid::Uuid::new_v4(),
        message: Message::Index(IndexStudent {
            registry_number: number(registry_number),
            aliases: Vec::new(),
            id_digest: id_body.map(|body| key().id_digest(&resident_id(body))),
            duplicate_digest: key().name_digest(&digest(label)),
            number_id_digest: registry_number
                .strip_prefix('G')
                .map(|id| key().id_digest_of_text(id)),
            status: IndexStatus::Pending,
            migrated: false,
        }),
    }
}

#[tokio::test]
async fn a_mixed_batch_applies_in_order_and_replays_identically() {
    let store = store().await;
    let first = index("L350102201801011234", Some("35010220180101001"), "d-one");
    let second = index("L350102201801012345", None, "d-shared");
    // The claim needs the first entry written before it, in the same batch.
    let claim = Delivery {
        message_id: uuid::Uuid::new_v4(),
        message: Message::Claim(claim(
            "L350102201801011234",
            resident_id("35010220180101001"),
        )),
    };
    let third = index("L350102201801013456", None, "d-three");
    // An update of an entry written earlier in the batch goes one by one, after it.
    let mut update = index("L350102201801013456", None, "d-three");
    if let Message::Index(entry) = &mut update.message {
        entry.status = IndexStatus::Active;
    }
    let batch = vec![
        first.clone(),
        second.clone(),
        claim,
        third,
        update,
        second.clone(),
    ];
    let outcomes = store
        .deliver("35", &batch, &DeliveryActor::province("35"))
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Granted,
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Applied,
        ]
    );
    let entry = store
        .entry_by_number("L350102201801013456")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, "active");
    assert_eq!(entry.province, "35");
    let claimed = store
        .entry_by_number("L350102201801011234")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.claimed_id_number().as_deref(),
        Some(resident_id("35010220180101001").as_str())
    );
    // Three entries, one claim, five distinct messages, no notices.
    assert_eq!(store.counts().await.unwrap(), (3, 1, 5, 0));

    // Redelivered whole: the same answers, nothing written.
    let again = store
        .deliver("35", &batch, &DeliveryActor::province("35"))
        .await
        .unwrap();
    assert_eq!(again, outcomes);
    assert_eq!(store.counts().await.unwrap(), (3, 1, 5, 0));

    // Anhui indexes a record with the same name digest: a notice to each province.
    let anhui = index("L340102201801011111", None, "d-shared");
    assert_eq!(
        store
            .deliver("34", &[anhui], &DeliveryActor::province("34"))
            .await
            .unwrap(),
        [Outcome::Applied]
    );
    let fujian_notices = store.notices("35", 0, 10).await.unwrap();
    let anhui_notices = store.notices("34", 0, 10).await.unwrap();
    assert_eq!(fujian_notices.len(), 1);
    assert_eq!(fujian_notices[0].registry_number, "L350102201801012345");
    assert_eq!(
        fujian_notices[0].other_registry_number,
        "L340102201801011111"
    );
    assert_eq!(anhui_notices.len(), 1);
    assert_eq!(anhui_notices[0].kind, "duplicate_name");
}

fn rejected(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Rejected { .. })
}

#[tokio::test]
async fn a_message_with_a_number_of_another_province_is_rejected_and_the_rest_applied() {
    let store = store().await;
    let batch = [
        // Fujian's number, sent by Anhui: refused for good.
        index("L350102201801011234", None, "d-b"),
        index("L340102201801011111", None, "d-a"),
    ];
    let outcomes = store
        .deliver("34", &batch, &DeliveryActor::province("34"))
        .await
        .unwrap();
    assert!(rejected(&outcomes[0]), "{outcomes:?}");
    assert_eq!(outcomes[1], Outcome::Applied);
    // One entry; two messages answered (the rejection is kept like any outcome).
    assert_eq!(store.counts().await.unwrap(), (1, 0, 2, 0));
    // Redelivered, it answers alike and changes nothing.
    assert_eq!(
        store
            .deliver("34", &batch, &DeliveryActor::province("34"))
            .await
            .unwrap(),
        outcomes
    );
    assert_eq!(store.counts().await.unwrap(), (1, 0, 2, 0));
}

#[tokio::test]
async fn a_number_indexed_by_one_province_is_refused_to_another() {
    let store = store().await;
    store
        .deliver(
            "35",
            &[index("L350102201801011234", None, "d-a")],
            &DeliveryActor::province("35"),
        )
        .await
        .unwrap();
    // Anhui claiming Fujian's number as an alias of its own new record.
    let mut taking = index("L340102201801011111", None, "d-b");
    if let Message::Index(entry) = &mut taking.message {
        entry.aliases = vec![number("L350102201801011234")];
    }
    let outcomes = store
        .deliver("34", &[taking], &DeliveryActor::province("34"))
        .await
        .unwrap();
    assert!(rejected(&outcomes[0]), "{outcomes:?}");
    assert_eq!(store.counts().await.unwrap(), (1, 0, 2, 0));
}

#[tokio::test]
async fn a_g_number_enters_the_index_only_through_a_granted_claim() {
    let store = store().await;
    let id = resident_id("35010220180101001");
    let g = format!("G{id}");
    // A G out of nowhere, and a known L renamed to G without a claim: both rejected.
    let mut out_of_nowhere = index(&g, Some("35010220180101001"), "d-g");
    if let Message::Index(entry) = &mut out_of_nowhere.message {
        entry.status = IndexStatus::Active;
    }
    let introduce = index("L350102201801011234", Some("35010220180101001"), "d-l");
    let mut promoted = index(&g, Some("35010220180101001"), "d-l");
    if let Message::Index(entry) = &mut promoted.message {
        entry.aliases = vec![number("L350102201801011234")];
        entry.status = IndexStatus::Active;
    }
    let outcomes = store
        .deliver(
            "35",
            &[out_of_nowhere, introduce, promoted.clone()],
            &DeliveryActor::province("35"),
        )
        .await
        .unwrap();
    assert!(rejected(&outcomes[0]), "{outcomes:?}");
    assert_eq!(outcomes[1], Outcome::Applied);
    assert!(rejected(&outcomes[2]), "{outcomes:?}");
    assert!(store.entry_by_number(&g).await.unwrap().is_none());

    // Once the claim is granted, the same promotion is applied.
    let claim = Delivery {
        message_id: uuid::Uuid::new_v4(),
        message: Message::Claim(claim("L350102201801011234", id)),
    };
    let mut again = promoted;
    again.message_id = uuid::Uuid::new_v4();
    let outcomes = store
        .deliver("35", &[claim, again], &DeliveryActor::province("35"))
        .await
        .unwrap();
    assert_eq!(outcomes, [Outcome::Granted, Outcome::Applied]);
    let entry = store.entry_by_number(&g).await.unwrap().expect("indexed");
    assert_eq!(entry.registry_number, g);
}

#[tokio::test]
async fn an_introduction_redelivered_after_an_update_answers_applied_and_changes_nothing() {
    let store = store().await;
    let introduction = index("L350102201801011234", None, "d-a");
    let mut activation = index("L350102201801011234", None, "d-a");
    if let Message::Index(entry) = &mut activation.message {
        entry.status = IndexStatus::Active;
    }
    let fujian = DeliveryActor::province("35");
    let introduce = || store.deliver("35", std::slice::from_ref(&introduction), &fujian);
    assert_eq!(introduce().await.unwrap(), [Outcome::Applied]);
    assert_eq!(
        store
            .deliver("35", &[activation], &DeliveryActor::province("35"))
            .await
            .unwrap(),
        [Outcome::Applied]
    );
    // One entry; two messages applied: the introduction named by its entry, the update in the
    // inbox.
    assert_eq!(store.counts().await.unwrap(), (1, 0, 2, 0));

    // The introduction again, alone and then beside a new one: answered as applied, the entry
    // stays active (applying it again would set it back to pending).
    assert_eq!(introduce().await.unwrap(), [Outcome::Applied]);
    let newcomer = index("L350102201801015678", None, "d-b");
    assert_eq!(
        store
            .deliver(
                "35",
                &[introduction, newcomer],
                &DeliveryActor::province("35")
            )
            .await
            .unwrap(),
        [Outcome::Applied, Outcome::Applied]
    );
    let entry = store
        .entry_by_number("L350102201801011234")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, "active");
    assert_eq!(store.counts().await.unwrap(), (2, 0, 3, 0));
}

#[tokio::test]
async fn the_index_audits_its_own_changes() {
    let database = xueji_testkit::database("national", |pool| {
        async move { Ok(xueji_national::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    let store = Store::new(database.pool.clone());
    let claim = |registry_number: &str| Delivery {
        message_id: uuid::Uuid::new_v4(),
        message: Message::Claim(claim(registry_number, resident_id("35010220180101001"))),
    };
    // Fujian introduces and claims; Anhui claims the same ID number and is refused, both are
    // told.
    store
        .deliver(
            "35",
            &[
                index("L350102201801011234", Some("35010220180101001"), "d-one"),
                claim("L350102201801011234"),
            ],
            &DeliveryActor::province("35"),
        )
        .await
        .unwrap();
    let outcomes = store
        .deliver(
            "34",
            &[
                index("L340102201801011111", Some("35010220180101001"), "d-two"),
                claim("L340102201801011111"),
            ],
            &DeliveryActor::province("34"),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcomes[1], Outcome::Refused { .. }),
        "{outcomes:?}"
    );
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action || ' by ' || actor FROM audit.entries ORDER BY id")
            .fetch_all(&database.pool)
            .await
            .unwrap();
    for expected in [
        "national.index_students by service:identity-35",
        "national.claim_id_number by service:identity-35",
        "national.claim_id_number by service:identity-34",
        "national.notice by service:national-index",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(
        xueji_audit::verify(&database.pool, |_| {})
            .await
            .unwrap()
            .is_intact()
    );
}

/// An index written before it was keyed (clear ID numbers, unkeyed name digests) is re-keyed
/// whole when the node first starts with its key; it then holds no ID number, the keyed values
/// still find the student, and a node with another key is refused.
#[tokio::test]
async fn an_index_in_clear_is_keyed_once_and_another_key_is_refused() {
    let store = store().await;
    let pool = store.pool().clone();
    let id = resident_id("35010220180101001");
    let unkeyed = digest("clear-name");
    let student: i64 = sqlx::query_scalar(
        "INSERT INTO national.students (province, registry_number, id_digest, duplicate_digest, status)
         VALUES ('35', $1, $2, decode($3, 'hex'), 'active') RETURNING id",
    )
    .bind(format!("G{}", id.as_str()))
    .bind(id.as_str())
    .bind(&unkeyed)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO national.id_claims (id_digest, student_id) VALUES ($1, $2)")
        .bind(id.as_str())
        .bind(student)
        .execute(&pool)
        .await
        .unwrap();

    let keyed = xueji_national::store::key_index(&pool, &key())
        .await
        .unwrap();
    assert_eq!(keyed.rekeyed_now, 2);
    let (stored_id, stored_name): (String, Vec<u8>) =
        sqlx::query_as("SELECT id_digest, duplicate_digest FROM national.students WHERE id = $1")
            .bind(student)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored_id, key().id_digest(&id).as_str());
    assert_eq!(hex::encode(stored_name), key().name_digest(&unkeyed));
    let claim: String = sqlx::query_scalar("SELECT id_digest FROM national.id_claims")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claim, key().id_digest(&id).as_str());
    let found = store
        .entry_by_id_digest(&key().id_digest(&id))
        .await
        .unwrap()
        .expect("found by the keyed digest");
    assert_eq!(found.claimed_id_number().as_deref(), Some(id.as_str()));

    // Started again with the same key: nothing to do; with another: refused, nothing changed.
    let again = xueji_national::store::key_index(&pool, &key())
        .await
        .unwrap();
    assert_eq!(again.rekeyed_now, 0);
    let other = IndexKey::from_secret([8; 32]);
    let refused = xueji_national::store::key_index(&pool, &other)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("another index key"), "{refused}");
    let claim_after: String = sqlx::query_scalar("SELECT id_digest FROM national.id_claims")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claim_after, claim);
}
