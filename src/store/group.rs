//! Group commit: concurrent write transactions share one database transaction, and
//! so one durable commit (one fsync on SQLite with `synchronous=FULL`, one WAL flush
//! on PostgreSQL).
//!
//! Each caller's [`Tx`] is a savepoint inside the batch's transaction, on the one
//! writer connection, so a caller's change and its audit entry still commit or roll
//! back together, and a caller that fails rolls back only its own savepoint. A caller
//! that commits releases its savepoint and waits: whoever finds no one else queued
//! for the batch commits it, and every caller in it is answered only once it is
//! durable, with the batch's outcome. Audited writes were serialised on the log's head
//! row anyway; what the batch removes is a commit per request.
//!
//! On SQLite with a file, the whole writes of the direct writer (`super::direct`) are
//! grouped the same way, apart from sqlx's batches: each waits in a queue, and whoever
//! takes the writer runs every write queued so far in one transaction of the direct
//! connection, each in a savepoint, and commits them together.

use crate::audit::merkle::Frontier;
use crate::store::db::Direct;
use crate::store::direct::writer::{Member, Ran, Writer};
use crate::store::StoreError;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

/// Most callers committed in one batch: bounds how long the first one waits.
const MAX_BATCH: usize = 256;

/// The outcome every caller of a batch gets.
type BatchResult = Result<(), Arc<sqlx::Error>>;

/// The batch being built.
#[derive(Default)]
struct Batch {
    /// Its transaction, opened by its first caller.
    tx: Option<sqlx::Transaction<'static, Any>>,
    /// Callers that committed their savepoint and wait for the batch.
    waiters: Vec<oneshot::Sender<BatchResult>>,
    /// A caller was dropped without commit or rollback: its savepoint is still open.
    abandoned: bool,
    /// The audit tree's right edge as this connection's appends left it, so that an
    /// append reads no stored subtree (see [`crate::store::audit::append_many`]).
    /// Forgotten whenever anything is rolled back, since it may hold undone leaves.
    right_edge: Option<Frontier>,
}

struct Inner {
    pool: AnyPool,
    batch: Arc<Mutex<Batch>>,
    /// Callers waiting for the batch.
    queued: AtomicUsize,
    /// Direct writes waiting for the writer (see [`GroupCommit::direct`]); not counted
    /// in `queued`, since a batch is committed before a direct write anyway.
    queued_direct: AtomicUsize,
    /// Direct writes waiting for the writer, in the order they came: whoever takes the
    /// writer next runs them all in one batch.
    direct_queue: StdMutex<VecDeque<Member>>,
    /// The last commit's failure, cleared by the next success (read by `/readyz`).
    last_failure: StdMutex<Option<String>>,
}

/// Hands out write transactions that commit in groups.
#[derive(Clone)]
pub struct GroupCommit(Arc<Inner>);

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

/// Why a commit failed: the caller's own statement or the batch's commit.
pub type CommitError = sqlx::Error;

impl GroupCommit {
    /// Group commits on the writer `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self(Arc::new(Inner {
            pool,
            batch: Arc::new(Mutex::new(Batch::default())),
            queued: AtomicUsize::new(0),
            queued_direct: AtomicUsize::new(0),
            direct_queue: StdMutex::new(VecDeque::new()),
            last_failure: StdMutex::new(None),
        }))
    }

    /// Joins the current batch (opening one if needed) with a savepoint of its own.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let queued = Queued::on(&self.0.queued);
        let mut batch = self.0.batch.clone().lock_owned().await;
        drop(queued);
        self.undo_abandoned(&mut batch).await;
        if batch.tx.is_none() {
            batch.tx = Some(self.0.pool.begin().await?);
        }
        let savepoint = batch
            .tx
            .as_mut()
            .expect("the batch is open")
            .execute("SAVEPOINT member")
            .await;
        if let Err(err) = savepoint {
            let shared = Arc::new(err);
            self.fail_with(&mut batch, shared.clone());
            return Err(unshare(&shared));
        }
        Ok(Tx {
            batch: Some(batch),
            group: self.clone(),
        })
    }

    /// How many callers are waiting for the writer, to join the batch or to write
    /// directly.
    pub fn queued(&self) -> usize {
        self.0.queued.load(Ordering::SeqCst) + self.0.queued_direct.load(Ordering::SeqCst)
    }

    /// Runs a whole write on the direct writer while holding the writer, in a batch
    /// with the other direct writes queued meanwhile: one transaction, one commit,
    /// each write in a savepoint of its own (see [`Writer::run_all`]). The caller who
    /// takes the writer runs every write queued so far (up to [`MAX_BATCH`]) on a
    /// blocking thread, with the audit tree's right edge, which it keeps for the next
    /// append whichever connection makes it; the others find theirs done. Any batch
    /// sqlx had open is committed first (answering its callers), and no batch is open
    /// meanwhile, since a caller joins one only with the lock this holds. Durable when
    /// it answers `Ok`.
    pub(crate) async fn direct<T: Send + 'static>(
        &self,
        writer: &Arc<Writer>,
        work: impl FnOnce(&mut Direct<'_>, &mut Option<Frontier>) -> Result<T, StoreError>
            + Send
            + 'static,
    ) -> Result<T, StoreError> {
        let (sender, receiver) = oneshot::channel::<Result<T, StoreError>>();
        let member: Member = Box::new(move |db, right_edge| match work(db, right_edge) {
            Ok(value) => Ran {
                kept: true,
                answer: Box::new(move |committed| {
                    let answer = committed.map(|()| value).map_err(|failure| {
                        StoreError::File(format!("batch commit failed: {failure}"))
                    });
                    sender.send(answer).ok();
                }),
            },
            Err(error) => Ran {
                kept: false,
                answer: Box::new(move |_| {
                    sender.send(Err(error)).ok();
                }),
            },
        });
        let queued = Queued::on(&self.0.queued_direct);
        self.0
            .direct_queue
            .lock()
            .expect("direct queue lock")
            .push_back(member);
        let mut batch = self.0.batch.clone().lock_owned().await;
        drop(queued);
        let members: Vec<Member> = {
            let mut queue = self.0.direct_queue.lock().expect("direct queue lock");
            let take = queue.len().min(MAX_BATCH);
            queue.drain(..take).collect()
        };
        if !members.is_empty() {
            // On a task of its own, holding the writer until the batch is done: the
            // other members' answers, and the writer's state, never depend on this
            // caller still waiting (a client gone cancels its request's future).
            let (group, writer) = (self.clone(), writer.clone());
            let running = tokio::spawn(async move {
                group.run_direct(&mut batch, &writer, members).await;
                drop(batch);
            });
            running.await.ok();
        } else {
            drop(batch);
        }
        receiver.await.unwrap_or_else(|_| {
            Err(StoreError::File(
                "the write's batch failed before it ran".into(),
            ))
        })
    }

    /// Runs a batch of direct writes while holding the writer (`batch`).
    async fn run_direct(&self, batch: &mut Batch, writer: &Arc<Writer>, members: Vec<Member>) {
        self.undo_abandoned(batch).await;
        if batch.tx.is_some() {
            self.flush(batch).await;
        }
        let mut right_edge = batch.right_edge.take();
        let writer = writer.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let result = writer.run_all(members, &mut right_edge);
            (result, right_edge)
        })
        .await;
        let (result, right_edge) = match ran {
            Ok(ran) => ran,
            Err(stopped) => (
                Err(StoreError::File(format!(
                    "the direct write stopped: {stopped}"
                ))),
                None,
            ),
        };
        batch.right_edge = right_edge;
        let mut failure = self.0.last_failure.lock().expect("lock");
        *failure = result.err().map(|e| e.to_string());
    }

    /// The last batch commit's failure, if the latest one failed.
    pub fn last_failure(&self) -> Option<String> {
        self.0.last_failure.lock().expect("lock").clone()
    }

    /// Commits the batch and answers its callers.
    async fn flush(&self, batch: &mut Batch) {
        let waiters = std::mem::take(&mut batch.waiters);
        let result = match batch.tx.take() {
            Some(tx) => tx.commit().await.map_err(Arc::new),
            None => Ok(()),
        };
        if result.is_err() {
            batch.right_edge = None;
        }
        self.record(&result);
        for waiter in waiters {
            waiter.send(result.clone()).ok();
        }
    }

    /// Ends the batch when no one else is queued to join it (or it is full), so that
    /// no transaction stays open, holding locks, with no one in it.
    async fn flush_if_idle(&self, batch: &mut Batch) {
        let idle = self.0.queued.load(Ordering::SeqCst) == 0;
        if batch.tx.is_some() && (idle || batch.waiters.len() >= MAX_BATCH) {
            self.flush(batch).await;
        }
    }

    fn record(&self, result: &BatchResult) {
        let mut failure = self.0.last_failure.lock().expect("lock");
        *failure = result.as_ref().err().map(|e| e.to_string());
    }

    /// Rolls back the savepoint of a caller dropped mid-way, if there is one; if that
    /// fails, the batch is abandoned and its waiting callers get the error.
    async fn undo_abandoned(&self, batch: &mut Batch) {
        if std::mem::take(&mut batch.abandoned) {
            if let Err(err) = rollback_savepoint(batch).await {
                self.fail_with(batch, Arc::new(err));
            }
        }
    }

    fn fail_with(&self, batch: &mut Batch, err: Arc<sqlx::Error>) {
        batch.tx = None;
        batch.right_edge = None;
        let result = Err(err);
        self.record(&result);
        for waiter in std::mem::take(&mut batch.waiters) {
            waiter.send(result.clone()).ok();
        }
    }
}

/// A caller counted as waiting for the writer until it stops waiting, whether it got
/// the writer or was dropped meanwhile (a timeout, a client gone).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn on(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn rollback_savepoint(batch: &mut Batch) -> Result<(), sqlx::Error> {
    batch.right_edge = None;
    if let Some(tx) = batch.tx.as_mut() {
        tx.execute("ROLLBACK TO SAVEPOINT member").await?;
        tx.execute("RELEASE SAVEPOINT member").await?;
    }
    Ok(())
}

/// A batch failure handed to one caller: the same kind of error, as text.
fn unshare(err: &Arc<sqlx::Error>) -> sqlx::Error {
    sqlx::Error::Protocol(format!("batch commit failed: {err}"))
}

/// One caller's write transaction: a savepoint in the current batch.
pub struct Tx {
    batch: Option<OwnedMutexGuard<Batch>>,
    group: GroupCommit,
}

impl Tx {
    fn connection(&mut self) -> &mut AnyConnection {
        self.connection_and_right_edge().0
    }

    /// The connection with the audit tree's right edge it keeps, for appends.
    pub fn connection_and_right_edge(&mut self) -> (&mut AnyConnection, &mut Option<Frontier>) {
        let batch = &mut **self.batch.as_mut().expect("a live Tx holds an open batch");
        let connection = batch
            .tx
            .as_deref_mut()
            .expect("a live Tx holds an open batch");
        (connection, &mut batch.right_edge)
    }

    /// Keeps this caller's changes and waits until its batch is durable.
    pub async fn commit(mut self) -> Result<(), CommitError> {
        let mut batch = self.batch.take().expect("a Tx commits once");
        let released = match batch.tx.as_mut() {
            Some(tx) => tx.execute("RELEASE SAVEPOINT member").await.map(|_| ()),
            None => Err(sqlx::Error::PoolClosed),
        };
        if let Err(err) = released {
            // The savepoint could not be released: undo it, keep the batch for others.
            if rollback_savepoint(&mut batch).await.is_err() {
                let shared = Arc::new(err);
                self.group.fail_with(&mut batch, shared.clone());
                return Err(unshare(&shared));
            }
            self.group.flush_if_idle(&mut batch).await;
            return Err(err);
        }
        let (sender, receiver) = oneshot::channel();
        batch.waiters.push(sender);
        self.group.flush_if_idle(&mut batch).await;
        drop(batch);
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(unshare(&err)),
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Undoes this caller's changes; the batch goes on for the others.
    pub async fn rollback(mut self) -> Result<(), CommitError> {
        let mut batch = self.batch.take().expect("a Tx rolls back once");
        let undone = rollback_savepoint(&mut batch).await;
        if let Err(err) = undone {
            let shared = Arc::new(err);
            self.group.fail_with(&mut batch, shared.clone());
            return Err(unshare(&shared));
        }
        self.group.flush_if_idle(&mut batch).await;
        Ok(())
    }
}

impl Drop for Tx {
    /// A caller dropped mid-way (an early return, a timeout): its savepoint is rolled
    /// back by whoever takes the batch next, and a task commits the batch for the
    /// callers already waiting on it.
    fn drop(&mut self) {
        if let Some(mut batch) = self.batch.take() {
            batch.abandoned = true;
            drop(batch);
            let group = self.group.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut batch = group.0.batch.clone().lock_owned().await;
                    group.undo_abandoned(&mut batch).await;
                    group.flush_if_idle(&mut batch).await;
                });
            }
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.batch
            .as_ref()
            .and_then(|b| b.tx.as_deref())
            .expect("a live Tx holds an open batch")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.connection()
    }
}
