//! The annual cycle on a real PostgreSQL: graduation and promotion follow each school's length
//! of schooling, run once per summer, and a run cut short resumes without moving anyone twice.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use futures::FutureExt;
use xueji_auth::{Caller, Clock, Jurisdiction, Level, Role};
use xueji_codes::{Stage, StageOffered};
use xueji_identity::{
    cycle::CycleRunner,
    domain::{
        School,
        school_year::{CycleStep, SchoolYearPolicy},
    },
    store::{Actor, Store},
};

async fn store() -> Store {
    let database = xueji_testkit::database("identity", |pool| {
        async move { Ok(xueji_identity::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    Store::new(database.pool)
}

fn school(code: &str, stages: &[(Stage, u32)]) -> School {
    School {
        code: code.parse().unwrap(),
        name: format!("学校{code}"),
        division: "350102".parse().unwrap(),
        registry_authority: "350102".parse().unwrap(),
        open_from: NaiveDate::from_ymd_opt(2000, 9, 1).unwrap(),
        open_until: None,
        stages: stages
            .iter()
            .map(|(stage, years)| StageOffered {
                stage: *stage,
                years: *years,
            })
            .collect(),
    }
}

fn operator() -> Caller {
    Caller {
        user: "cycle-test".into(),
        level: Level::Province,
        jurisdiction: Jurisdiction::Division("350000".parse().unwrap()),
        role: Role::Operator,
    }
}

/// A clock on a day of the 2026 summer (noon, China time).
fn clock_on(day: &str) -> Clock {
    let day: NaiveDate = day.parse().unwrap();
    let clock = Clock::system();
    let noon = Utc.from_utc_datetime(&day.and_hms_opt(4, 0, 0).unwrap());
    clock.advance(noon - Utc::now());
    clock
}

const PRIMARY_6: &str = "2135000101";
const PRIMARY_5: &str = "2135000102";
const JUNIOR_4: &str = "3135000101";
const NINE_YEAR: &str = "2135000103";

async fn schools(store: &Store) {
    for school in [
        school(PRIMARY_6, &[(Stage::Primary, 6)]),
        school(PRIMARY_5, &[(Stage::Primary, 5)]),
        school(JUNIOR_4, &[(Stage::Junior, 4)]),
        school(NINE_YEAR, &[(Stage::Primary, 6), (Stage::Junior, 3)]),
    ] {
        store.upsert_school(&school).await.unwrap();
    }
}

/// Every (school, grade) the schools teach, once each, `copies` times over.
fn roster() -> Vec<(String, String, i16)> {
    let taught: [(&str, std::ops::RangeInclusive<i16>); 4] = [
        (PRIMARY_6, 1..=6),
        (PRIMARY_5, 1..=5),
        (JUNIOR_4, 6..=9),
        (NINE_YEAR, 1..=9),
    ];
    taught
        .iter()
        .flat_map(|(code, grades)| {
            grades
                .clone()
                .map(|grade| (code.to_string(), "350102".to_owned(), grade))
        })
        .collect()
}

async fn grades_of(store: &Store, school: &str) -> Vec<(String, i16)> {
    sqlx::query_as(
        "SELECT status, grade FROM identity.enrollments WHERE school_code = $1 ORDER BY grade, status",
    )
    .bind(school)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn runner(store: &Store, day: &str, batch: i64) -> Arc<CycleRunner> {
    Arc::new(
        CycleRunner::new(
            store.clone(),
            xueji_policy::Live::new(SchoolYearPolicy::bundled()),
            "35",
            clock_on(day),
        )
        .with_batch(batch),
    )
}

#[tokio::test]
async fn graduation_and_promotion_follow_the_length_of_schooling_once_a_summer() {
    let store = store().await;
    schools(&store).await;
    let entered = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
    let (first, last) = store
        .insert_synthetic_enrollments(roster().len() as i64, &roster(), entered)
        .await
        .unwrap();
    // The new intake, registered in August for September: not promoted.
    let intake = vec![(PRIMARY_6.to_owned(), "350102".to_owned(), 1)];
    store
        .insert_synthetic_enrollments(1, &intake, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap())
        .await
        .unwrap();
    let runner = runner(&store, "2026-08-20", 7);
    let caller = operator();
    let runs = runner
        .run_steps(2026, &CycleStep::ALL, &caller, "test")
        .await
        .unwrap();
    assert!(runs.iter().all(|run| run.done));

    let active = |grades: &[i16]| -> Vec<(String, i16)> {
        grades.iter().map(|g| ("active".to_owned(), *g)).collect()
    };
    // A 6-year primary graduates grade 6; the rest move up; the intake stays in grade 1.
    let mut expected = active(&[1, 2, 3, 4, 5, 6]);
    expected.push(("graduated".into(), 6));
    expected.sort();
    let mut got = grades_of(&store, PRIMARY_6).await;
    got.sort();
    assert_eq!(got, expected);
    // A 5-year primary graduates grade 5.
    let mut got = grades_of(&store, PRIMARY_5).await;
    got.sort();
    let mut expected = active(&[2, 3, 4, 5]);
    expected.push(("graduated".into(), 5));
    expected.sort();
    assert_eq!(got, expected);
    // A 5-4 junior school: grades 6–8 move up, grade 9 graduates.
    let mut got = grades_of(&store, JUNIOR_4).await;
    got.sort();
    let mut expected = active(&[7, 8, 9]);
    expected.push(("graduated".into(), 9));
    expected.sort();
    assert_eq!(got, expected);
    // A nine-year school promotes its grade 6 into its own junior stage.
    let got = grades_of(&store, NINE_YEAR).await;
    assert!(got.contains(&("active".into(), 7)) && got.contains(&("graduated".into(), 9)));
    assert_eq!(got.iter().filter(|(s, _)| s == "graduated").count(), 1);

    // The second run of the summer changes nothing.
    let before = store.grade_counts(first - 1, last + 1).await.unwrap();
    let audit_before = store.counts().await.unwrap().2;
    let again = runner
        .run_steps(2026, &CycleStep::ALL, &caller, "test")
        .await
        .unwrap();
    assert_eq!(again, runs);
    assert_eq!(
        store.grade_counts(first - 1, last + 1).await.unwrap(),
        before
    );
    assert_eq!(store.counts().await.unwrap().2, audit_before);
}

#[tokio::test]
async fn a_run_cut_short_resumes_without_promoting_anyone_twice() {
    let store = store().await;
    schools(&store).await;
    let roster: Vec<_> = roster()
        .into_iter()
        .filter(|(code, _, grade)| code == PRIMARY_6 && *grade < 6)
        .collect();
    let entered = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
    let (first, last) = store
        .insert_synthetic_enrollments(500, &roster, entered)
        .await
        .unwrap();
    let before = store.grade_counts(first - 1, last).await.unwrap();
    let caller = operator();
    let actor = Actor {
        caller: &caller,
        request_id: "crash",
    };
    // The "crash": the step started and two batches committed, then the process died.
    let run = store
        .begin_cycle_step(2026, CycleStep::Promotion, "crash", "350000")
        .await
        .unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 8, 10).unwrap();
    store
        .promote_batch(2026, 0, first + 99, day, actor)
        .await
        .unwrap();
    store
        .promote_batch(2026, first + 99, first + 199, day, actor)
        .await
        .unwrap();
    // A batch replayed from a stale watermark is refused whole.
    let stale = store
        .promote_batch(2026, 0, first + 99, day, actor)
        .await
        .unwrap();
    assert!(!stale.applied);
    assert!(!run.done);

    // A new process resumes.
    let runner = runner(&store, "2026-08-12", 64);
    let runs = runner
        .run_steps(2026, &[CycleStep::Promotion], &caller, "resume")
        .await
        .unwrap();
    assert!(runs[0].done);
    assert_eq!(runs[0].changed, 500);
    let after = store.grade_counts(first - 1, last).await.unwrap();
    let shifted: Vec<_> = before
        .iter()
        .map(|(status, grade, count)| (status.clone(), grade + 1, *count))
        .collect();
    assert_eq!(after, shifted, "every student moved exactly one grade");

    // Even a lost watermark moves nobody twice: the enrollment remembers its summer.
    sqlx::query("UPDATE identity.cycle_steps SET watermark = 0, state = 'running'")
        .execute(store.pool())
        .await
        .unwrap();
    runner
        .run_steps(2026, &[CycleStep::Promotion], &caller, "again")
        .await
        .unwrap();
    assert_eq!(store.grade_counts(first - 1, last).await.unwrap(), after);
}
