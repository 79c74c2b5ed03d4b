//! Synthetic event histories: valid sequences of enrollment events from a list of choices
//! (the property tests draw the choices at random; the store tests and the benchmark use fixed
//! ones).

use chrono::NaiveDate;

use super::{ChangeKind, Event, Gender, Placement};

pub const SCHOOLS: [(&str, &str); 5] = [
    ("2135000101", "350102"),
    ("2135000104", "350102"),
    ("2135000102", "350103"),
    ("2135000103", "350203"),
    ("2134000101", "340102"),
];

#[derive(Debug, Clone)]
enum State {
    Never,
    Active(Placement),
    Suspended(Placement),
    DroppedOut(Placement),
    Graduated,
    Ended,
}

pub fn placement(school: usize, grade: u8, gender: Gender) -> Placement {
    Placement {
        school: SCHOOLS[school].0.into(),
        county: SCHOOLS[school].1.into(),
        grade,
        gender,
        profile: super::Profile {
            ethnicity: if school.is_multiple_of(2) { "01" } else { "02" }.into(),
            migrant_child: grade.is_multiple_of(3),
            left_behind_child: grade.is_multiple_of(4),
            entry_route: "nearby_admission".into(),
            birth_date: NaiveDate::from_ymd_opt(2020 - i32::from(grade), 3, 1),
            missing: Vec::new(),
        },
    }
}

/// Turns random choices into a valid history: each student's next event is one its state
/// allows, dates never go back.
pub fn history(steps: &[(usize, u8, usize, u32)], students: usize) -> Vec<Event> {
    let mut states = vec![State::Never; students];
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a valid date");
    let mut events = Vec::new();
    for (n, &(student, action, school, days)) in steps.iter().enumerate() {
        let student = student % students;
        day = day + chrono::Days::new(u64::from(days));
        let state = states[student].clone();
        let (kind, from, to, next) = match state {
            State::Never => {
                let to = placement(
                    school,
                    1,
                    if action % 2 == 0 {
                        Gender::Male
                    } else {
                        Gender::Female
                    },
                );
                (
                    ChangeKind::Registration,
                    None,
                    Some(to.clone()),
                    State::Active(to),
                )
            }
            State::Active(at) => match action % 7 {
                0 => {
                    let mut to = at.clone();
                    let target = (SCHOOLS
                        .iter()
                        .position(|s| s.0 == at.school)
                        .expect("a synthetic school")
                        + 1
                        + school % 4)
                        % 5;
                    to.school = SCHOOLS[target].0.into();
                    to.county = SCHOOLS[target].1.into();
                    (
                        ChangeKind::Transfer,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
                1 => (
                    ChangeKind::Suspension,
                    Some(at.clone()),
                    None,
                    State::Suspended(at),
                ),
                2 => (
                    ChangeKind::Dropout,
                    Some(at.clone()),
                    None,
                    State::DroppedOut(at),
                ),
                3 => (ChangeKind::Death, Some(at), None, State::Ended),
                4 => (ChangeKind::Graduation, Some(at), None, State::Graduated),
                5 => {
                    let mut to = at.clone();
                    to.grade += 1;
                    (
                        ChangeKind::Promotion,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
                _ => {
                    let mut to = at.clone();
                    to.gender = match at.gender {
                        Gender::Male => Gender::Female,
                        Gender::Female => Gender::Male,
                    };
                    (
                        ChangeKind::Correction,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
            },
            State::Suspended(at) => (
                ChangeKind::Resumption,
                None,
                Some(at.clone()),
                State::Active(at),
            ),
            State::DroppedOut(at) => (
                ChangeKind::Return,
                None,
                Some(at.clone()),
                State::Active(at),
            ),
            State::Graduated => {
                let to = placement(school, 7, Gender::Female);
                (
                    ChangeKind::Progression,
                    None,
                    Some(to.clone()),
                    State::Active(to),
                )
            }
            State::Ended => continue,
        };
        states[student] = next;
        events.push(Event {
            position: n as u64 + 1,
            student: format!("s{student}"),
            on: day,
            kind,
            from,
            to,
            person: super::Person {
                registry_number: format!("G{student}"),
                name: format!("学生{student}"),
            },
        });
    }
    events
}
