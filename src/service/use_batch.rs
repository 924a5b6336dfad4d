//! Token uses decided on a read, taken by the writer many at a time.
//!
//! During a disruption every airline redeems and relays at once, and each use is a
//! write with its audit entry. Taken one by one, each use costs the one writer a
//! savepoint, a guarded update, the log's head, its entry and its subtrees, each a
//! round trip to the database. Here the uses queued while the writer was busy are
//! taken together: one guarded update for all their tokens, their relayed messages,
//! one append of all their entries, one commit. The first request to find no batch
//! running starts a task that runs batches until the queue is empty.
//!
//! A use whose guard finds a change since the read (another use of the same token,
//! a withdrawal, a new version, a purge) is not taken here: its request decides again
//! inside the writer's transaction (see `token_use::ask`).

use crate::audit::merkle::Frontier;
use crate::audit::NewEntry;
use crate::service::audit_log::{append_with_pushes, Audited};
use crate::service::AppState;
use crate::service::Error;
use crate::store::db::Db;
use crate::store::outbox::{self, Message};
use crate::store::{tokens, StoreError};
use std::collections::HashSet;
use std::sync::Mutex;
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// Most uses taken in one batch: bounds a batch's statements and its wait.
const MAX_BATCH: usize = 256;

/// What became of a use handed to the batch.
#[derive(Debug)]
pub enum Taking {
    /// Taken, and durable with its audit entry at this index.
    Taken {
        /// The entry's index in the audit log.
        audit_index: i64,
    },
    /// Not taken: the state read has changed; decide again in the writer.
    Changed,
}

/// A use decided on a read, to take.
pub struct DecidedUse {
    /// The token to take one use of.
    pub token_id: String,
    /// Its audit entry, complete but for the index.
    pub entry: NewEntry,
    /// For a relay, the message queued with the use.
    pub message: Option<Message>,
}

struct Job {
    request: DecidedUse,
    reply: oneshot::Sender<Result<Taking, Error>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Tasks running batches (at most [`LEADS`]); they take what is queued.
    leads: usize,
}

/// Tasks running batches at once. A batch holds the writer only while it is written:
/// one task answers the uses of its batch while the other writes the next, so the
/// writer does not wait for a batch's answers before it takes the next one.
const LEADS: usize = 2;

/// The queue of uses waiting for the writer.
pub struct UseBatches {
    queue: Mutex<Queue>,
    /// The writer's turn among the leads: a lead takes its batch from the queue only
    /// once it holds it, so each batch holds everything queued while the last was
    /// written.
    turn: tokio::sync::Semaphore,
}

impl Default for UseBatches {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            turn: tokio::sync::Semaphore::new(1),
        }
    }
}

impl UseBatches {
    /// Takes a use with the others queued, and answers once it is durable.
    pub async fn take(&self, state: &AppState, request: DecidedUse) -> Result<Taking, Error> {
        let mut answers = self.take_all(state, vec![request]).await;
        answers
            .pop()
            .unwrap_or_else(|| Err(Error::internal("a use taken without an answer")))
    }

    /// Takes many uses queued at once (a flight's relays), so that they go to the
    /// writer in as few batches as [`MAX_BATCH`] allows; answers each, in order, once
    /// durable.
    pub async fn take_all(
        &self,
        state: &AppState,
        requests: Vec<DecidedUse>,
    ) -> Vec<Result<Taking, Error>> {
        let mut answers = Vec::with_capacity(requests.len());
        let leads = {
            let mut queue = self.queue.lock().expect("use queue lock");
            for request in requests {
                let (reply, answer) = oneshot::channel();
                queue.jobs.push(Job { request, reply });
                answers.push(answer);
            }
            let leads = queue.leads < LEADS;
            if leads {
                queue.leads += 1;
            }
            leads
        };
        if leads {
            // Batches run in tasks of their own: a request given up by its client (or
            // its timeout) must not leave the others unanswered.
            let lead = Lead(state.clone());
            tokio::spawn(async move {
                let batches = &lead.0.use_batches;
                loop {
                    let Ok(turn) = batches.turn.acquire().await else {
                        break;
                    };
                    let Some(batch) = batches.next_batch() else {
                        break;
                    };
                    let (written, replies) = write(&lead.0, batch).await;
                    drop(turn);
                    answer_all(written, replies);
                }
            });
        }
        let mut taken = Vec::with_capacity(answers.len());
        for answer in answers {
            taken.push(answer.await.unwrap_or_else(|_| {
                Err(Error::internal(
                    "the batch taking a token use ended without an answer",
                ))
            }));
        }
        taken
    }

    /// The next batch, or `None` (and this lead given up) when nothing is queued.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().expect("use queue lock");
        if queue.jobs.is_empty() {
            queue.leads -= 1;
            return None;
        }
        let size = queue.jobs.len().min(MAX_BATCH);
        let rest = queue.jobs.split_off(size);
        Some(std::mem::replace(&mut queue.jobs, rest))
    }
}

/// A task running batches. Should it panic, its lead is given up, so that the next
/// request starts another (with what is still queued) instead of waiting forever.
struct Lead(AppState);

impl Drop for Lead {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut queue) = self.0.use_batches.queue.lock() {
                queue.leads = queue.leads.saturating_sub(1);
            }
        }
    }
}

/// The replies owed to a batch's uses, in order.
type Replies = Vec<oneshot::Sender<Result<Taking, Error>>>;

/// Takes a batch of uses in one write; returns the write's outcome with the replies
/// owed (a second use of a token in the batch is answered at once: it is decided
/// again).
async fn write(state: &AppState, jobs: Vec<Job>) -> (Result<Audited<Vec<bool>>, Error>, Replies) {
    let mut tokens_seen = HashSet::new();
    let (batch, again): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|job| tokens_seen.insert(job.request.token_id.clone()));
    for job in again {
        job.reply.send(Ok(Taking::Changed)).ok();
    }
    let (uses, replies): (Vec<DecidedUse>, Replies) = batch
        .into_iter()
        .map(|job| (job.request, job.reply))
        .unzip();
    let take = TakeUses {
        uses,
        now: state.clock.now(),
    };
    (state.write_audited(take).await, replies)
}

/// Answers each use of a written batch: taken with its entry's index, or changed.
fn answer_all(written: Result<Audited<Vec<bool>>, Error>, replies: Replies) {
    match written {
        Ok(written) => {
            let mut indexes = written.entries.iter().map(|entry| entry.index);
            for (reply, taken) in replies.into_iter().zip(written.output) {
                let outcome = match taken {
                    true => Taking::Taken {
                        audit_index: indexes.next().expect("an index per use taken"),
                    },
                    false => Taking::Changed,
                };
                reply.send(Ok(outcome)).ok();
            }
        }
        Err(problem) => {
            for reply in replies {
                reply.send(Err(problem.clone())).ok();
            }
        }
    }
}

/// A batch's write: one guarded update for all its tokens, their relayed messages,
/// their entries and pushes. Answers, for each use in order, whether it was taken.
struct TakeUses {
    uses: Vec<DecidedUse>,
    now: OffsetDateTime,
}

impl TakeUses {
    async fn take(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<Vec<bool>>, StoreError> {
        let ids: Vec<&str> = self.uses.iter().map(|u| u.token_id.as_str()).collect();
        let taken = tokens::take_uses_if_unchanged(db, &ids, self.now).await?;
        let was_taken: Vec<bool> = self
            .uses
            .iter()
            .map(|u| taken.contains(&u.token_id))
            .collect();
        let messages: Vec<&Message> = self
            .uses
            .iter()
            .filter(|u| taken.contains(&u.token_id))
            .filter_map(|u| u.message.as_ref())
            .collect();
        outbox::enqueue_messages(db, &messages).await?;
        let now = self.now;
        let entries = self
            .uses
            .into_iter()
            .filter(|u| taken.contains(&u.token_id))
            .map(|u| u.entry)
            .collect();
        append_with_pushes(db, right_edge, was_taken, entries, now).await
    }
}

crate::store::direct::write_over_db!(TakeUses, Audited<Vec<bool>>, take);
