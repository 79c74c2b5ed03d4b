//! Classes (班级) and seats (班内学号): a school's classes per school year, who sits where, and
//! the carrying of classes into the next school year.

use xueji_audit::Entry;

use super::{Actor, Store};
use crate::IdentityError;

/// A class as stored, with its current pupils counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRecord {
    pub id: i64,
    pub school_code: String,
    pub school_year: i16,
    pub grade: i16,
    pub name: String,
    pub head_teacher: Option<String>,
    pub pupils: i64,
}

/// A class to open.
#[derive(Debug, Clone)]
pub struct NewClass<'a> {
    pub school_code: &'a str,
    pub school_year: i16,
    pub grade: i16,
    pub name: &'a str,
    pub head_teacher: Option<&'a str>,
}

/// Where a pupil is put: a class and a seat (`None`: the next free one).
#[derive(Debug, Clone, Copy)]
pub struct Seat {
    pub class_id: i64,
    pub seat: Option<i16>,
}

/// What carrying one class forward does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarryPlan {
    pub from: ClassRecord,
    pub to_name: String,
    pub to_grade: i16,
    /// The class of the next year it became, when carried before (or now).
    pub carried_to: Option<i64>,
    /// Pupils who move with it: in the class now, current at the school, in the next grade.
    pub moving: i64,
}

impl Store {
    /// Opens a class; the same name of the same school year again answers it as it is.
    pub async fn create_class(
        &self,
        class: &NewClass<'_>,
        actor: Actor<'_>,
    ) -> Result<(ClassRecord, bool), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query_scalar!(
            "INSERT INTO identity.classes
                 (school_code, school_year, grade, name, head_teacher, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (school_code, school_year, name) DO NOTHING
             RETURNING id",
            class.school_code,
            class.school_year,
            class.grade,
            class.name,
            class.head_teacher,
            actor.caller.describe()
        )
        .fetch_optional(&mut *tx)
        .await?;
        let id = match created {
            Some(id) => {
                xueji_audit::record(
                    &mut tx,
                    &Entry {
                        actor: &actor.caller.describe(),
                        jurisdiction: &actor.caller.jurisdiction.as_string(),
                        action: "identity.create_class",
                        object: &format!("class:{id}"),
                        before: None,
                        after: Some(serde_json::json!({
                            "school_code": class.school_code, "school_year": class.school_year,
                            "grade": class.grade, "name": class.name,
                            "head_teacher": class.head_teacher,
                        })),
                        request_id: actor.request_id,
                    },
                )
                .await?;
                id
            }
            None => {
                sqlx::query_scalar!(
                    "SELECT id FROM identity.classes
                 WHERE school_code = $1 AND school_year = $2 AND name = $3",
                    class.school_code,
                    class.school_year,
                    class.name
                )
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        let record = self
            .class(id)
            .await?
            .ok_or_else(|| IdentityError::Internal(format!("class {id} vanished")))?;
        Ok((record, created.is_some()))
    }

    pub async fn class(&self, id: i64) -> Result<Option<ClassRecord>, IdentityError> {
        Ok(sqlx::query_as!(
            ClassRecord,
            r#"SELECT c.id, c.school_code, c.school_year, c.grade, c.name, c.head_teacher,
                      (SELECT count(*) FROM identity.enrollments e
                       WHERE e.class_id = c.id AND e.is_current) AS "pupils!"
               FROM identity.classes c WHERE c.id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The school's class of `school_year` called `name`.
    pub async fn class_named(
        &self,
        school_code: &str,
        school_year: i16,
        name: &str,
    ) -> Result<Option<ClassRecord>, IdentityError> {
        let id = sqlx::query_scalar!(
            "SELECT id FROM identity.classes
             WHERE school_code = $1 AND school_year = $2 AND name = $3",
            school_code,
            school_year,
            name
        )
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.class(id).await,
            None => Ok(None),
        }
    }

    /// The class of `school_year` called `name` that a pupil of `grade` at the school may be
    /// seated in: its id, or why not, in the user's words.
    pub async fn class_for_pupil(
        &self,
        school_code: &str,
        school_year: i16,
        name: &str,
        grade: u32,
    ) -> Result<Result<i64, String>, IdentityError> {
        Ok(
            match self.class_named(school_code, school_year, name).await? {
                None => Err(format!(
                    "school {school_code} has no class {name} in the school year {school_year}: \
                 open it first (CreateClass, xuejictl class create)"
                )),
                Some(class) if class.grade.max(0) as u32 != grade => Err(format!(
                    "class {name} is grade {}, not {grade}",
                    class.grade
                )),
                Some(class) => Ok(class.id),
            },
        )
    }

    /// The school's classes of a school year, by grade then name.
    pub async fn classes_of(
        &self,
        school_code: &str,
        school_year: i16,
    ) -> Result<Vec<ClassRecord>, IdentityError> {
        Ok(sqlx::query_as!(
            ClassRecord,
            r#"SELECT c.id, c.school_code, c.school_year, c.grade, c.name, c.head_teacher,
                      (SELECT count(*) FROM identity.enrollments e
                       WHERE e.class_id = c.id AND e.is_current) AS "pupils!"
               FROM identity.classes c WHERE c.school_code = $1 AND c.school_year = $2
               ORDER BY c.grade, c.name"#,
            school_code,
            school_year
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The class's current pupils (student ids) by seat.
    pub async fn roster(&self, class_id: i64) -> Result<Vec<(i16, i64)>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT class_seat AS "seat!", student_id FROM identity.enrollments
               WHERE class_id = $1 AND is_current ORDER BY class_seat"#,
            class_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.seat, r.student_id)).collect())
    }

    /// Puts the student's current enrollment in a class at a seat, or takes it out (`None`).
    /// A seat already taken is refused, naming who sits there.
    pub async fn assign_class(
        &self,
        student_id: i64,
        registry_number: &str,
        place: Option<Seat>,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query!(
            "SELECT id, class_id, class_seat FROM identity.enrollments
             WHERE student_id = $1 AND is_current FOR UPDATE",
            student_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let (class_id, seat) = match place {
            None => (None, None),
            Some(Seat { class_id, seat }) => {
                // One assignment at a time per class: the next free seat is counted alone.
                sqlx::query_scalar!(
                    "SELECT id FROM identity.classes WHERE id = $1 FOR UPDATE",
                    class_id
                )
                .fetch_one(&mut *tx)
                .await?;
                let seat = match seat {
                    Some(seat) => {
                        let taken = sqlx::query_scalar!(
                            "SELECT s.registry_number FROM identity.enrollments e
                             JOIN identity.students s ON s.id = e.student_id
                             WHERE e.class_id = $1 AND e.class_seat = $2 AND e.is_current
                               AND e.student_id <> $3",
                            class_id,
                            seat,
                            student_id
                        )
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some(holder) = taken {
                            return Err(IdentityError::FailedPrecondition(format!(
                                "seat {seat} of the class is taken by {holder}"
                            )));
                        }
                        seat
                    }
                    None if before.class_id == Some(class_id) => before.class_seat.unwrap_or(1),
                    None => {
                        sqlx::query_scalar!(
                            r#"SELECT (coalesce(max(class_seat), 0) + 1)::smallint AS "seat!"
                           FROM identity.enrollments WHERE class_id = $1 AND is_current"#,
                            class_id
                        )
                        .fetch_one(&mut *tx)
                        .await?
                    }
                };
                (Some(class_id), Some(seat))
            }
        };
        sqlx::query!(
            "UPDATE identity.enrollments SET class_id = $2, class_seat = $3 WHERE id = $1",
            before.id,
            class_id,
            seat
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.assign_class",
                object: &format!("student:{registry_number}"),
                before: Some(serde_json::json!({
                    "class_id": before.class_id, "seat": before.class_seat,
                })),
                after: Some(serde_json::json!({ "class_id": class_id, "seat": seat })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What carrying the school's classes of `from_year` forward would do: each class of a
    /// grade in `carried_grades` (the school's grades that are not graduating) to the next
    /// grade, under `name_of`'s name.
    pub async fn carry_plan(
        &self,
        school_code: &str,
        from_year: i16,
        carried_grades: &[i16],
        name_of: impl Fn(&str, i16) -> String,
    ) -> Result<Vec<CarryPlan>, IdentityError> {
        let classes = self.classes_of(school_code, from_year).await?;
        let mut plans = Vec::with_capacity(classes.len());
        for class in classes {
            let carried_to = sqlx::query_scalar!(
                "SELECT id FROM identity.classes WHERE carried_from = $1",
                class.id
            )
            .fetch_optional(&self.pool)
            .await?;
            let moving = if carried_grades.contains(&class.grade) {
                sqlx::query_scalar!(
                    r#"SELECT count(*) AS "n!" FROM identity.enrollments
                       WHERE class_id = $1 AND is_current AND grade = $2
                         AND school_code = $3 AND status IN ('active', 'suspended')"#,
                    class.id,
                    class.grade + 1,
                    school_code
                )
                .fetch_one(&self.pool)
                .await?
            } else {
                0
            };
            plans.push(CarryPlan {
                to_name: name_of(&class.name, class.grade),
                to_grade: class.grade + 1,
                carried_to,
                moving,
                from: class,
            });
        }
        Ok(plans)
    }

    /// Carries one planned class forward: opens (or finds) the next year's class and moves the
    /// promoted pupils into it with their seats, in one transaction; answers the new class.
    pub async fn carry_class(
        &self,
        plan: &CarryPlan,
        actor: Actor<'_>,
    ) -> Result<i64, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let to_year = plan.from.school_year + 1;
        let existing = sqlx::query!(
            "SELECT id, grade, carried_from FROM identity.classes
             WHERE school_code = $1 AND school_year = $2 AND name = $3 FOR UPDATE",
            plan.from.school_code,
            to_year,
            plan.to_name
        )
        .fetch_optional(&mut *tx)
        .await?;
        let to = match existing {
            Some(row) if row.grade != plan.to_grade || row.carried_from.is_some() => {
                return Err(IdentityError::FailedPrecondition(format!(
                    "class {} of {to_year} exists already (grade {}{}): rename it or the class \
                     of {} before carrying",
                    plan.to_name,
                    row.grade,
                    if row.carried_from.is_some() {
                        ", carried from another class"
                    } else {
                        ""
                    },
                    plan.from.school_year
                )));
            }
            Some(row) => {
                sqlx::query!(
                    "UPDATE identity.classes SET carried_from = $2 WHERE id = $1",
                    row.id,
                    plan.from.id
                )
                .execute(&mut *tx)
                .await?;
                row.id
            }
            None => {
                sqlx::query_scalar!(
                    "INSERT INTO identity.classes
                     (school_code, school_year, grade, name, head_teacher, carried_from,
                      created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    plan.from.school_code,
                    to_year,
                    plan.to_grade,
                    plan.to_name,
                    plan.from.head_teacher,
                    plan.from.id,
                    actor.caller.describe()
                )
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let moved = sqlx::query!(
            "UPDATE identity.enrollments SET class_id = $2
             WHERE class_id = $1 AND is_current AND grade = $3 AND school_code = $4
               AND status IN ('active', 'suspended')",
            plan.from.id,
            to,
            plan.to_grade,
            plan.from.school_code
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.carry_class",
                object: &format!("class:{}", plan.from.id),
                before: Some(serde_json::json!({
                    "class_id": plan.from.id, "school_year": plan.from.school_year,
                    "grade": plan.from.grade, "name": plan.from.name,
                })),
                after: Some(serde_json::json!({
                    "class_id": to, "school_year": to_year, "grade": plan.to_grade,
                    "name": plan.to_name, "pupils": moved,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(to)
    }
}
