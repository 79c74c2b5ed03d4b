//! All SQL of the statistics service (schema `stats`): a batch of feed events applied in one
//! transaction with the feed's position, so a consumer killed mid-batch leaves nothing of it,
//! and a batch delivered again (in part or whole) counts nothing twice; reports read the
//! unit's monthly rows and breakdown cells, never the events (`reads`); the national node's
//! copy of the provinces' aggregates (`national`).

mod national;
mod reads;
mod students;

pub use national::{ProvinceReport, ReportedRow};
pub use reads::{Dropout, ListedStudent, QualityLists};

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::{
    StatsError,
    domain::{Event, Month, MonthlyReport, Unit, cells as cells_of, effects},
};

pub const SCHEMA: &str = "stats";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the stats schema.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// What applying a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events counted now.
    pub applied: usize,
    /// Events at or before the feed's position: delivered before, not counted again.
    pub redelivered: usize,
    /// The feed's position afterwards.
    pub position: u64,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Where the feed `source` stands (0: nothing applied).
    pub async fn position(&self, source: &str) -> Result<u64, StatsError> {
        let position = sqlx::query_scalar!(
            "SELECT position FROM stats.feed_positions WHERE source = $1",
            source
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(position.unwrap_or(0) as u64)
    }

    /// Applies a batch of `source`'s events (in feed order) in one transaction: the feed's
    /// position row is locked first, so two consumers of one feed take turns.
    pub async fn apply(&self, source: &str, events: &[Event]) -> Result<Applied, StatsError> {
        let through = events.last().map_or(0, |event| event.position);
        self.apply_read(source, events, through).await
    }

    /// Like [`Store::apply`], for a read that went through `through` (rows past the last
    /// event that were no event): the position moves there.
    pub async fn apply_read(
        &self,
        source: &str,
        events: &[Event],
        through: u64,
    ) -> Result<Applied, StatsError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "INSERT INTO stats.feed_positions (source, position) VALUES ($1, 0)
             ON CONFLICT (source) DO NOTHING",
            source
        )
        .execute(&mut *tx)
        .await?;
        let mut position = sqlx::query_scalar!(
            "SELECT position FROM stats.feed_positions WHERE source = $1 FOR UPDATE",
            source
        )
        .fetch_one(&mut *tx)
        .await? as u64;
        let mut changes: HashMap<(String, NaiveDate, &'static str, &'static str), i64> =
            HashMap::new();
        let mut cells: HashMap<(String, &'static str, String, NaiveDate), i64> = HashMap::new();
        let mut schools: HashMap<String, String> = HashMap::new();
        let mut last_places = students::LastPlaces::default();
        let (mut applied, mut redelivered) = (0, 0);
        for event in events {
            if event.position <= position {
                redelivered += 1;
                continue;
            }
            position = event.position;
            applied += 1;
            let month = Month::of(event.on).first_day();
            let (removals, additions) = effects(event);
            for unit in removals {
                *changes
                    .entry((unit.key(), month, "removal", event.kind.removal()))
                    .or_default() += 1;
            }
            for unit in additions {
                *changes
                    .entry((unit.key(), month, "addition", event.kind.addition()))
                    .or_default() += 1;
            }
            for (placement, sign) in [(&event.from, -1), (&event.to, 1)] {
                let Some(placement) = placement else { continue };
                schools.insert(placement.school.clone(), placement.county.clone());
                for unit in Unit::all_of(placement) {
                    for (dimension, value) in cells_of(placement) {
                        *cells
                            .entry((unit.key(), dimension, value, event.on))
                            .or_default() += sign;
                    }
                }
            }
            last_places.note(event);
        }
        cells.retain(|_, students| *students != 0);
        let (mut units, mut dimensions, mut values, mut days, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((unit, dimension, value, day), count) in cells {
            units.push(unit);
            dimensions.push(dimension);
            values.push(value);
            days.push(day);
            counts.push(count);
        }
        sqlx::query!(
            "INSERT INTO stats.daily_cells (unit, dimension, value, day, students)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::bigint[])
             ON CONFLICT (unit, dimension, value, day)
             DO UPDATE SET students = stats.daily_cells.students + EXCLUDED.students",
            &units,
            &dimensions as &[&str],
            &values,
            &days,
            &counts
        )
        .execute(&mut *tx)
        .await?;
        let (codes, counties): (Vec<String>, Vec<String>) = schools.into_iter().unzip();
        sqlx::query!(
            "INSERT INTO stats.schools (school, county)
             SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT (school) DO UPDATE SET county = EXCLUDED.county
             WHERE stats.schools.county <> EXCLUDED.county",
            &codes,
            &counties
        )
        .execute(&mut *tx)
        .await?;
        last_places.write(&mut tx).await?;
        let (mut units, mut months, mut directions, mut kinds, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((unit, month, direction, kind), count) in changes {
            units.push(unit);
            months.push(month);
            directions.push(direction);
            kinds.push(kind);
            counts.push(count);
        }
        sqlx::query!(
            "INSERT INTO stats.monthly_changes (unit, month, direction, kind, students)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[])
             ON CONFLICT (unit, month, direction, kind)
             DO UPDATE SET students = stats.monthly_changes.students + EXCLUDED.students",
            &units,
            &months,
            &directions as &[&str],
            &kinds as &[&str],
            &counts
        )
        .execute(&mut *tx)
        .await?;
        let position = position.max(through);
        sqlx::query!(
            "UPDATE stats.feed_positions SET position = $2 WHERE source = $1",
            source,
            position as i64
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Applied {
            applied,
            redelivered,
            position,
        })
    }

    /// The unit's monthly change report, from its monthly rows: the opening count is the net
    /// of the months before.
    pub async fn monthly_report(
        &self,
        unit: &Unit,
        month: Month,
    ) -> Result<MonthlyReport, StatsError> {
        let rows = sqlx::query!(
            r#"SELECT month = $2 AS "this_month!", direction, kind, sum(students)::bigint AS "students!"
               FROM stats.monthly_changes
               WHERE unit = $1 AND month <= $2
               GROUP BY month = $2, direction, kind
               ORDER BY kind"#,
            unit.key(),
            month.first_day()
        )
        .fetch_all(&self.pool)
        .await?;
        let mut opening = 0;
        let (mut additions, mut removals) = (Vec::new(), Vec::new());
        for row in rows {
            let sign = match row.direction.as_str() {
                "addition" => 1,
                "removal" => -1,
                other => {
                    return Err(StatsError::Internal(format!(
                        "unknown direction {other:?} in stats.monthly_changes"
                    )));
                }
            };
            if !row.this_month {
                opening += sign * row.students;
                continue;
            }
            let kind = crate::domain::ChangeKind::known_name(&row.kind).ok_or_else(|| {
                StatsError::Internal(format!(
                    "unknown kind {:?} in stats.monthly_changes",
                    row.kind
                ))
            })?;
            if sign > 0 {
                additions.push((kind, row.students));
            } else {
                removals.push((kind, row.students));
            }
        }
        let added: i64 = additions.iter().map(|(_, n)| n).sum();
        let removed: i64 = removals.iter().map(|(_, n)| n).sum();
        Ok(MonthlyReport {
            unit: unit.clone(),
            month,
            opening,
            additions,
            removals,
            closing: opening + added - removed,
        })
    }
}
