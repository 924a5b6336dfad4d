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

use crate::audit::NewEntry;
use crate::service::AppState;
use crate::service::Error;
use crate::store::outbox::{self, Message};
use crate::store::tokens;
use std::collections::HashSet;
use std::sync::Mutex;
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
    /// A request or task is running batches; it takes what is queued.
    leading: bool,
}

/// The queue of uses waiting for the writer.
#[derive(Default)]
pub struct UseBatches {
    queue: Mutex<Queue>,
}

impl UseBatches {
    /// Takes a use with the others queued, and answers once it is durable.
    pub async fn take(&self, state: &AppState, request: DecidedUse) -> Result<Taking, Error> {
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut queue = self.queue.lock().expect("use queue lock");
            queue.jobs.push(Job { request, reply });
            !std::mem::replace(&mut queue.leading, true)
        };
        if leads {
            // Batches run in a task of their own: a request given up by its client (or
            // its timeout) must not leave the others unanswered.
            let lead = Lead(state.clone());
            tokio::spawn(async move {
                while let Some(batch) = lead.0.use_batches.next_batch() {
                    run(&lead.0, batch).await;
                }
            });
        }
        answer
            .await
            .map_err(|_| Error::internal("the batch taking a token use ended without an answer"))?
    }

    /// The next batch, or `None` (and the lead given up) when nothing is queued.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().expect("use queue lock");
        if queue.jobs.is_empty() {
            queue.leading = false;
            return None;
        }
        let size = queue.jobs.len().min(MAX_BATCH);
        let rest = queue.jobs.split_off(size);
        Some(std::mem::replace(&mut queue.jobs, rest))
    }
}

/// The task running batches. Should it panic, the lead is given up, so that the next
/// request takes it (with what is still queued) instead of waiting forever.
struct Lead(AppState);

impl Drop for Lead {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut queue) = self.0.use_batches.queue.lock() {
                queue.leading = false;
            }
        }
    }
}

/// Takes a batch of uses in one transaction and answers each.
async fn run(state: &AppState, jobs: Vec<Job>) {
    // One use per token in a batch: a second use of the same token is decided again.
    let mut tokens_seen = HashSet::new();
    let (batch, again): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|job| tokens_seen.insert(job.request.token_id.clone()));
    for job in again {
        job.reply.send(Ok(Taking::Changed)).ok();
    }
    match take_all(state, &batch).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                job.reply.send(Ok(outcome)).ok();
            }
        }
        Err(problem) => {
            for job in batch {
                job.reply.send(Err(problem.clone())).ok();
            }
        }
    }
}

/// The guarded update, the messages and the entries of a batch, committed together.
async fn take_all(state: &AppState, batch: &[Job]) -> Result<Vec<Taking>, Error> {
    let mut tx = state.store.begin().await?;
    let ids: Vec<&str> = batch
        .iter()
        .map(|job| job.request.token_id.as_str())
        .collect();
    let taken = tokens::take_uses_if_unchanged(&mut tx, &ids, state.clock.now()).await?;
    let mut entries = Vec::with_capacity(taken.len());
    for job in batch {
        if taken.contains(&job.request.token_id) {
            if let Some(message) = &job.request.message {
                outbox::enqueue_message(&mut tx, message).await?;
            }
            entries.push(job.request.entry.clone());
        }
    }
    let mut indexes = state.commit_with_audits(tx, entries).await?.into_iter();
    Ok(batch
        .iter()
        .map(|job| match taken.contains(&job.request.token_id) {
            true => Taking::Taken {
                audit_index: indexes.next().expect("an index per use taken"),
            },
            false => Taking::Changed,
        })
        .collect())
}
