//! Each student's last known place, from the feed: what dropout monitoring (who left
//! unplaced, and who was brought back) and the data-quality lists read. Only the last event
//! of a batch per student is written.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use crate::domain::Event;

#[derive(Debug, Default)]
pub(super) struct LastPlaces {
    rows: HashMap<String, Row>,
}

#[derive(Debug)]
struct Row {
    registry_number: String,
    name: String,
    counted: bool,
    school: Option<String>,
    county: Option<String>,
    grade: Option<i16>,
    birth_date: Option<NaiveDate>,
    ethnicity: Option<String>,
    entry_route: Option<String>,
    missing: Vec<String>,
    /// (day, kind, school, county) when the student left unplaced.
    left: Option<(NaiveDate, &'static str, String, String)>,
    /// (day, school) when a school placed them again after they left unplaced (劝返).
    returned: Option<(NaiveDate, String)>,
    /// The day the batch's events placed them (the first of the placements in a row), when
    /// they end placed: a return, if the stored row says they had left unplaced.
    placed_on: Option<NaiveDate>,
}

impl LastPlaces {
    pub(super) fn note(&mut self, event: &Event) {
        let place = event.to.as_ref();
        let earlier = self.rows.remove(&event.student);
        // Placed since an earlier event of the batch: the placement began then.
        let placed_since = earlier.as_ref().and_then(|row| row.placed_on);
        let left_now = match (&event.to, &event.from) {
            (None, Some(from)) if event.kind.leaves_unplaced() => Some((
                event.on,
                event.kind.as_str(),
                from.school.clone(),
                from.county.clone(),
            )),
            _ => None,
        };
        // A new departure starts over; a placement after one is the return; anything else
        // keeps what was known (the database merges the same way with the stored row).
        let (left, returned) = match (left_now, earlier.map(|row| (row.left, row.returned))) {
            (Some(left), _) => (Some(left), None),
            (None, Some((Some(left), None))) => {
                let returned = place.map(|p| (event.on, p.school.clone()));
                (Some(left), returned)
            }
            (None, Some((left, returned))) => (left, returned),
            (None, None) => (None, None),
        };
        self.rows.insert(
            event.student.clone(),
            Row {
                registry_number: event.person.registry_number.clone(),
                name: event.person.name.clone(),
                counted: place.is_some(),
                school: place.map(|p| p.school.clone()),
                county: place.map(|p| p.county.clone()),
                grade: place.map(|p| i16::from(p.grade)),
                birth_date: place.and_then(|p| p.profile.birth_date),
                ethnicity: place.map(|p| p.profile.ethnicity.clone()),
                entry_route: place.map(|p| p.profile.entry_route.clone()),
                missing: place.map(|p| p.profile.missing.clone()).unwrap_or_default(),
                left,
                returned,
                placed_on: place.map(|_| placed_since.unwrap_or(event.on)),
            },
        );
    }

    pub(super) async fn write(self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut c = Columns::default();
        for (student, row) in self.rows {
            c.student.push(student);
            c.registry_number.push(row.registry_number);
            c.name.push(row.name);
            c.counted.push(row.counted);
            c.school.push(row.school);
            c.county.push(row.county);
            c.grade.push(row.grade);
            c.birth_date.push(row.birth_date);
            c.ethnicity.push(row.ethnicity);
            c.entry_route.push(row.entry_route);
            // Field names hold no comma: stored joined.
            c.missing.push(row.missing.join(","));
            let (on, kind, school, county) = match row.left {
                Some((on, kind, school, county)) => {
                    (Some(on), Some(kind), Some(school), Some(county))
                }
                None => (None, None, None, None),
            };
            c.left_on.push(on);
            c.left_kind.push(kind);
            c.left_school.push(school);
            c.left_county.push(county);
            let (returned_on, returned_to) = row.returned.unzip();
            c.returned_on.push(returned_on);
            c.returned_to.push(returned_to);
            c.placed_on.push(row.placed_on);
        }
        // The batch's rows merge with the stored ones as `note` merges within a batch: a
        // departure in the batch replaces what was stored; a placement of a student stored as
        // left unplaced (and not yet back) is their return; otherwise what was stored stays.
        sqlx::query!(
            "UPDATE stats.students s SET returned_on = i.placed_on, returned_to = i.school
             FROM unnest($1::text[], $2::date[], $3::text[], $4::date[])
                  AS i(student, placed_on, school, left_on)
             WHERE s.student = i.student AND i.placed_on IS NOT NULL AND i.left_on IS NULL
               AND s.left_on IS NOT NULL AND s.returned_on IS NULL",
            &c.student,
            &c.placed_on as &[Option<NaiveDate>],
            &c.school as &[Option<String>],
            &c.left_on as &[Option<NaiveDate>],
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            "INSERT INTO stats.students AS s
                 (student, registry_number, name, counted, school, county, grade, birth_date,
                  ethnicity, entry_route, left_on, left_kind, left_school, left_county, missing,
                  returned_on, returned_to)
             SELECT student, registry_number, name, counted, school, county, grade, birth_date,
                    ethnicity, entry_route, left_on, left_kind, left_school, left_county,
                    missing, returned_on, returned_to
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[],
                         $6::text[], $7::int2[], $8::date[], $9::text[], $10::text[],
                         $11::date[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::date[], $17::text[])
                  AS i(student, registry_number, name, counted, school, county, grade,
                       birth_date, ethnicity, entry_route, left_on, left_kind, left_school,
                       left_county, missing, returned_on, returned_to)
             ON CONFLICT (student) DO UPDATE SET
                 registry_number = EXCLUDED.registry_number, name = EXCLUDED.name,
                 counted = EXCLUDED.counted, school = EXCLUDED.school,
                 county = EXCLUDED.county, grade = EXCLUDED.grade,
                 birth_date = EXCLUDED.birth_date, ethnicity = EXCLUDED.ethnicity,
                 entry_route = EXCLUDED.entry_route, missing = EXCLUDED.missing,
                 left_on = coalesce(EXCLUDED.left_on, s.left_on),
                 left_kind = coalesce(EXCLUDED.left_kind, s.left_kind),
                 left_school = coalesce(EXCLUDED.left_school, s.left_school),
                 left_county = coalesce(EXCLUDED.left_county, s.left_county),
                 returned_on = CASE WHEN EXCLUDED.left_on IS NOT NULL THEN EXCLUDED.returned_on
                                    ELSE s.returned_on END,
                 returned_to = CASE WHEN EXCLUDED.left_on IS NOT NULL THEN EXCLUDED.returned_to
                                    ELSE s.returned_to END",
            &c.student,
            &c.registry_number,
            &c.name,
            &c.counted,
            &c.school as &[Option<String>],
            &c.county as &[Option<String>],
            &c.grade as &[Option<i16>],
            &c.birth_date as &[Option<NaiveDate>],
            &c.ethnicity as &[Option<String>],
            &c.entry_route as &[Option<String>],
            &c.left_on as &[Option<NaiveDate>],
            &c.left_kind as &[Option<&str>],
            &c.left_school as &[Option<String>],
            &c.left_county as &[Option<String>],
            &c.missing,
            &c.returned_on as &[Option<NaiveDate>],
            &c.returned_to as &[Option<String>],
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct Columns {
    student: Vec<String>,
    registry_number: Vec<String>,
    name: Vec<String>,
    counted: Vec<bool>,
    school: Vec<Option<String>>,
    county: Vec<Option<String>>,
    grade: Vec<Option<i16>>,
    birth_date: Vec<Option<NaiveDate>>,
    ethnicity: Vec<Option<String>>,
    entry_route: Vec<Option<String>>,
    left_on: Vec<Option<NaiveDate>>,
    left_kind: Vec<Option<&'static str>>,
    left_school: Vec<Option<String>>,
    left_county: Vec<Option<String>>,
    missing: Vec<String>,
    returned_on: Vec<Option<NaiveDate>>,
    returned_to: Vec<Option<String>>,
    placed_on: Vec<Option<NaiveDate>>,
}
