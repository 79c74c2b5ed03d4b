//! Group commit for registrations.
//!
//! September brings tens of millions of registrations, and a registration's fixed costs (a
//! statement round trip, a commit) dwarf the rows it writes. Concurrent `RegisterStudent` calls
//! therefore queue here; a few workers each take everything waiting (up to a cap) and write it
//! in one statement, on a connection the worker keeps (a connection taken from the pool is
//! checked with a round trip first, which would cost each batch a second one). A lone request
//! on an idle node goes at once; batches grow when requests arrive faster than the database
//! commits them, and while one writer is busy another holding a small batch lets it fill until
//! that writer finishes (at most [`LINGER`]).
//!
//! Anything unusual in a batch (a known idempotency key, a constraint violation, a failure) sends
//! the affected registrations through the single-row path, which gives each its own answer.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sqlx::{Postgres, pool::PoolConnection};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use xueji_auth::Caller;
use xueji_codes::RegistryNumber;

use crate::{
    IdentityError,
    domain::Registration,
    store::{Actor, BatchRegistration, RegisterOutcome, Store},
};

struct Job {
    registration: Registration,
    number: RegistryNumber,
    caller: Caller,
    request_id: String,
    reply: oneshot::Sender<Result<RegisterOutcome, IdentityError>>,
}

#[derive(Debug, Clone)]
pub(crate) struct RegistrationBatcher {
    queue: mpsc::Sender<Job>,
}

impl RegistrationBatcher {
    /// Starts `workers` batch writers on the current Tokio runtime.
    pub(crate) fn start(store: Store, workers: usize, max_batch: usize) -> Self {
        let (queue, receiver) = mpsc::channel::<Job>(max_batch * workers * 4);
        let writers = Arc::new(Writers {
            queue: Mutex::new(receiver),
            writing: AtomicUsize::new(0),
            finished: Notify::new(),
        });
        for _ in 0..workers.max(1) {
            let store = store.clone();
            let writers = writers.clone();
            tokio::spawn(async move {
                let mut connection = None;
                while let Some(batch) = writers.next_batch(max_batch).await {
                    writers.write(&store, &mut connection, batch).await;
                }
            });
        }
        Self { queue }
    }

    pub(crate) async fn register(
        &self,
        registration: Registration,
        number: RegistryNumber,
        caller: Caller,
        request_id: String,
    ) -> Result<RegisterOutcome, IdentityError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            registration,
            number,
            caller,
            request_id,
            reply,
        };
        let stopped = || IdentityError::Exhausted("the node is shutting down".into());
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A batch smaller than this, taken while another writer is busy, waits for that writer to
/// finish (at most [`LINGER`]) and grows meanwhile: under load a writer that takes the one
/// request left behind by the other writer's big batch would pay a statement and a commit for it
/// alone, and two such half-empty writes cost more than one full one. Waiting longer than the
/// other writer gains nothing: its clients only send again once it has answered them, and then
/// it is free to take them itself. Measured at 32 clients, alternating runs: 8 cut most batches
/// at 8 rows, and 16 left the database idle while both halves of the clients waited on commits;
/// 12 registered about 7% more than either.
const SMALL_BATCH: usize = 12;
const LINGER: Duration = Duration::from_millis(2);

/// What the batch writers share: the queue, how many of them are writing right now, and a
/// signal when one finishes.
struct Writers {
    queue: Mutex<mpsc::Receiver<Job>>,
    writing: AtomicUsize,
    finished: Notify,
}

impl Writers {
    /// Waits for one job, then takes whatever else is already queued, up to `max_batch`; a
    /// small batch lingers while another writer is busy (when nobody is, the database is idle
    /// and a lone request goes at once).
    async fn next_batch(&self, max_batch: usize) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().await;
        let mut batch = vec![queue.recv().await?];
        take_queued(&mut queue, &mut batch, max_batch);
        let small = SMALL_BATCH.min(max_batch);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < small {
            let other_finished = self.finished.notified();
            tokio::pin!(other_finished);
            // Registered before the check, so a writer finishing in between still wakes us.
            other_finished.as_mut().enable();
            if self.writing.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => {
                        batch.push(job);
                        take_queued(&mut queue, &mut batch, max_batch);
                    }
                    None => break,
                },
                () = &mut other_finished => break,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        Some(batch)
    }

    async fn write(&self, store: &Store, connection: &mut WriterConnection, batch: Vec<Job>) {
        self.writing.fetch_add(1, Ordering::SeqCst);
        write(store, connection, batch).await;
        self.writing.fetch_sub(1, Ordering::SeqCst);
        self.finished.notify_waiters();
    }
}

fn take_queued(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max_batch: usize) {
    while batch.len() < max_batch {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// A batch writer's own database connection, kept between batches; taken from the pool again
/// after a failed batch, in case the connection was what failed.
type WriterConnection = Option<PoolConnection<Postgres>>;

async fn write(store: &Store, connection: &mut WriterConnection, jobs: Vec<Job>) {
    // A key twice in one batch would be inserted once and answered twice, and a number drawn
    // twice would fail the statement: the repeats go alone.
    let mut keys = HashSet::new();
    let mut numbers = HashSet::new();
    let (batch, repeats): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| {
        keys.insert(job.registration.idempotency_key.clone()) & numbers.insert(job.number.clone())
    });

    let mut one_by_one = repeats;
    if batch.len() == 1 {
        one_by_one.extend(batch);
    } else {
        let rows: Vec<_> = batch
            .iter()
            .map(|job| BatchRegistration {
                registration: &job.registration,
                number: &job.number,
                actor: Actor {
                    caller: &job.caller,
                    request_id: &job.request_id,
                },
            })
            .collect();
        let started = std::time::Instant::now();
        let written = match connection {
            Some(conn) => store.register_batch(conn, &rows).await,
            None => match store.pool().acquire().await {
                Ok(conn) => store.register_batch(connection.insert(conn), &rows).await,
                Err(error) => Err(error.into()),
            },
        };
        if written.is_err() {
            *connection = None;
        }
        tracing::debug!(
            size = rows.len(),
            micros = started.elapsed().as_micros() as u64,
            "registration batch"
        );
        match written {
            Ok(mut answered) => {
                for job in batch {
                    match answered.remove(&job.registration.idempotency_key) {
                        Some(outcome) => {
                            let _ = job.reply.send(Ok(outcome));
                        }
                        None => one_by_one.push(job),
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, size = batch.len(), "batch refused; writing one by one");
                one_by_one.extend(batch);
            }
        }
    }
    if !one_by_one.is_empty() {
        tracing::debug!(count = one_by_one.len(), "registrations one by one");
    }
    for job in one_by_one {
        let outcome = store
            .register(
                &job.registration,
                &job.number,
                Actor {
                    caller: &job.caller,
                    request_id: &job.request_id,
                },
            )
            .await;
        let _ = job.reply.send(outcome);
    }
}
