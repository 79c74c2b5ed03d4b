//! All SQL of the transfer service (schema `transfers`). Rows are read into typed records; a
//! value this service does not know fails loudly ([`TransferError::Internal`]).

pub mod calendar;
mod lists;
pub mod relay;
mod steps;
pub mod sweep;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;
use xueji_audit::Entry;
use xueji_calendar::Deadline;
use xueji_workflow::{Decision, Party, Step, StepState, Task, TaskState, TimeoutAction, Verdict};

pub use lists::{InboxPage, ListScope};
pub use steps::{
    Refusal, SendingSide, begin_approvals, insert_steps, refuse, save_task, write_task,
};
pub use sweep::PendingEffect;

use crate::TransferError;

pub const SCHEMA: &str = "transfers";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the transfers schema and the audit schema it writes to.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// Where a transfer stands, beyond its workflow task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Starting,
    InProgress,
    Approved,
    Completed,
    Rejected,
    Cancelled,
    Refused,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::InProgress => "in_progress",
            Self::Approved => "approved",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    /// Whether the task can change no more (approved waits only for the record to move).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Starting | Self::InProgress)
    }

    pub fn parse(text: &str) -> Result<Self, TransferError> {
        Ok(match text {
            "starting" => Self::Starting,
            "in_progress" => Self::InProgress,
            "approved" => Self::Approved,
            "completed" => Self::Completed,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            "refused" => Self::Refused,
            other => return Err(unknown("transfer state", other)),
        })
    }

    /// The state a finished workflow task leaves the transfer in.
    pub fn after(task: TaskState) -> Self {
        match task {
            TaskState::InProgress => Self::InProgress,
            TaskState::Approved => Self::Approved,
            TaskState::Rejected => Self::Rejected,
            TaskState::Cancelled => Self::Cancelled,
        }
    }
}

fn unknown(what: &str, value: &str) -> TransferError {
    TransferError::Internal(format!("unknown {what} {value:?} in the transfers schema"))
}

/// This province's part in a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Both schools are in this province.
    Both,
    /// The receiving side of a transfer between provinces: it coordinates.
    Receiving,
    /// The sending side of a transfer between provinces: it holds the sending-side steps.
    Sending,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Receiving => "receiving",
            Self::Sending => "sending",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TransferError> {
        Ok(match text {
            "both" => Self::Both,
            "receiving" => Self::Receiving,
            "sending" => Self::Sending,
            other => return Err(unknown("role", other)),
        })
    }
}

/// A transfer as stored, with its steps as a workflow task.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub id: Uuid,
    pub state: TransferState,
    pub receiving_school: String,
    pub receiving_division: String,
    pub receiving_authority: String,
    pub typed_number: String,
    pub typed_name: String,
    pub typed_birth_date: NaiveDate,
    pub target_grade: u32,
    pub reason: String,
    pub evidence: Vec<String>,
    pub sending_school: Option<String>,
    pub sending_division: Option<String>,
    pub sending_authority: Option<String>,
    pub registry_number: Option<String>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    pub refusal: Option<String>,
    pub national_code: Option<String>,
    pub task: Task,
    pub role: Role,
    /// The other province of a transfer between provinces.
    pub other_province: Option<String>,
    /// Grows with every change of the task.
    pub version: i64,
    /// A start waiting for another province's answer to its hold.
    pub awaiting_hold: bool,
    /// W3C trace context of the request that started it: its messages carry it.
    pub traceparent: String,
}

impl TransferRecord {
    /// Who made the transfer, for the moved record's history: the receiving school that
    /// started it, then each decided step's decider ("kind jurisdiction: who").
    pub fn deciders(&self) -> Vec<String> {
        let mut deciders = vec![format!(
            "receiving_school {}: {}",
            self.receiving_school, self.started_by
        )];
        deciders.extend(self.task.deciders());
        deciders
    }
}

/// A new transfer, before its student is held.
#[derive(Debug, Clone)]
pub struct NewTransfer<'a> {
    pub id: Uuid,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub receiving_school: &'a str,
    pub receiving_division: &'a str,
    pub receiving_authority: &'a str,
    pub typed_number: &'a str,
    pub typed_name: &'a str,
    pub typed_birth_date: NaiveDate,
    pub target_grade: u32,
    pub reason: &'a str,
    pub evidence: &'a [String],
    pub started_by: &'a str,
    /// W3C trace context of the starting request ('' when none is recorded).
    pub traceparent: &'a str,
}

/// What inserting a new transfer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The key was used before for this very request: that transfer.
    Replayed(Uuid),
    /// The key was used before for a different request.
    KeyReused,
}

/// Who changes something and under which request, for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub who: &'a str,
    pub jurisdiction: &'a str,
    pub request_id: &'a str,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, TransferError> {
        Ok(self.pool.begin().await?)
    }

    /// Writes a transfer in state `starting`, or finds the one its key names.
    pub async fn insert_starting(&self, new: &NewTransfer<'_>) -> Result<Inserted, TransferError> {
        let inserted = sqlx::query_scalar!(
            "INSERT INTO transfers.transfers
                 (id, idempotency_key, request_hash, state, receiving_school, receiving_division,
                  receiving_authority, typed_number, typed_name, typed_birth_date, target_grade,
                  reason, evidence, started_by, traceparent)
             VALUES ($1, $2, $3, 'starting', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id",
            new.id,
            new.idempotency_key,
            new.request_hash,
            new.receiving_school,
            new.receiving_division,
            new.receiving_authority,
            new.typed_number,
            new.typed_name,
            new.typed_birth_date,
            new.target_grade as i16,
            new.reason,
            new.evidence,
            new.started_by,
            new.traceparent,
        )
        .fetch_optional(&self.pool)
        .await?;
        if inserted.is_some() {
            return Ok(Inserted::New);
        }
        let earlier = sqlx::query!(
            "SELECT id, request_hash FROM transfers.transfers WHERE idempotency_key = $1",
            new.idempotency_key
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(if earlier.request_hash == new.request_hash {
            Inserted::Replayed(earlier.id)
        } else {
            Inserted::KeyReused
        })
    }

    /// A transfer, read without locking.
    pub async fn get(&self, id: Uuid) -> Result<Option<TransferRecord>, TransferError> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, id, false).await
    }
}

/// Reads a transfer and its steps; `lock` takes the transfer's row lock (the one every change
/// of a transfer takes first).
pub async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<TransferRecord>, TransferError> {
    if lock
        && sqlx::query!(
            "SELECT id FROM transfers.transfers WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    Ok(load_many(conn, &[id]).await?.pop())
}

/// Reads transfers and their steps in two statements, in the order of `ids` (missing ones left
/// out).
pub async fn load_many(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<TransferRecord>, TransferError> {
    let transfers = sqlx::query!("SELECT * FROM transfers.transfers WHERE id = ANY($1)", ids)
        .fetch_all(&mut *conn)
        .await?;
    let rows = sqlx::query!(
        "SELECT * FROM transfers.steps WHERE transfer_id = ANY($1) ORDER BY transfer_id, position",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut steps: HashMap<Uuid, Vec<Step>> = HashMap::new();
    for s in rows {
        let id = s.transfer_id;
        let state = StepState::parse(&s.state).ok_or_else(|| unknown("step state", &s.state))?;
        let timeout = TimeoutAction::parse(&s.timeout_action)
            .ok_or_else(|| unknown("timeout action", &s.timeout_action))?;
        let decision = match (s.verdict.as_deref(), s.decided_at) {
            (None, _) => None,
            (Some(verdict), Some(at)) => Some(Decision {
                verdict: match verdict {
                    "approve" => Verdict::Approve,
                    "reject" => Verdict::Reject,
                    other => return Err(unknown("verdict", other)),
                },
                by: s.decided_by.clone().unwrap_or_default(),
                at,
                reason: s.reason.clone().unwrap_or_default(),
                on_timeout: s.on_timeout,
            }),
            (Some(_), None) => {
                return Err(TransferError::Internal(format!(
                    "step {} of transfer {id} has a verdict without a time",
                    s.position
                )));
            }
        };
        steps.entry(id).or_default().push(Step {
            party: Party {
                kind: s.kind,
                jurisdiction: s.jurisdiction,
                province: s.province,
            },
            state,
            deadline: s.deadline.map(|date| Deadline {
                date,
                estimated: s.estimated,
            }),
            due_at: s.due_at,
            timeout,
            decision,
            escalations: s.escalations as u32,
        });
    }
    let mut records = HashMap::with_capacity(transfers.len());
    for t in transfers {
        let state = TransferState::parse(&t.state)?;
        let task_state = match state {
            TransferState::Starting | TransferState::InProgress => TaskState::InProgress,
            TransferState::Approved | TransferState::Completed => TaskState::Approved,
            TransferState::Rejected | TransferState::Refused => TaskState::Rejected,
            TransferState::Cancelled => TaskState::Cancelled,
        };
        let ended = t.ended_at.map(|at| Decision {
            verdict: Verdict::Reject,
            by: t.ended_by.clone().unwrap_or_default(),
            at,
            reason: t.end_reason.clone().unwrap_or_default(),
            on_timeout: false,
        });
        records.insert(
            t.id,
            TransferRecord {
                id: t.id,
                state,
                receiving_school: t.receiving_school,
                receiving_division: t.receiving_division,
                receiving_authority: t.receiving_authority,
                typed_number: t.typed_number,
                typed_name: t.typed_name,
                typed_birth_date: t.typed_birth_date,
                target_grade: t.target_grade as u32,
                reason: t.reason,
                evidence: t.evidence,
                sending_school: t.sending_school,
                sending_division: t.sending_division,
                sending_authority: t.sending_authority,
                registry_number: t.registry_number,
                started_by: t.started_by,
                started_at: t.started_at,
                ended_at: t.ended_at,
                ended_by: t.ended_by,
                end_reason: t.end_reason,
                refusal: t.refusal,
                national_code: t.national_code,
                role: Role::parse(&t.role)?,
                other_province: t.other_province,
                version: t.version,
                awaiting_hold: t.awaiting_hold,
                traceparent: t.traceparent,
                task: Task {
                    state: task_state,
                    steps: steps.remove(&t.id).unwrap_or_default(),
                    ended,
                },
            },
        );
    }
    Ok(ids.iter().filter_map(|id| records.remove(id)).collect())
}

/// Writes an audit entry on the caller's transaction.
pub async fn audit(
    conn: &mut PgConnection,
    actor: Actor<'_>,
    action: &str,
    id: Uuid,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), TransferError> {
    xueji_audit::record(
        conn,
        &Entry {
            actor: actor.who,
            jurisdiction: actor.jurisdiction,
            action,
            object: &format!("transfer:{id}"),
            before,
            after,
            request_id: actor.request_id,
        },
    )
    .await?;
    Ok(())
}
