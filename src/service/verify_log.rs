//! `audit verify`: rebuild the tree from the database and hold it to every checkpoint.
//!
//! One pass in index order, in pages, with O(log n) memory: each entry's leaf hash is
//! recomputed from its columns (catching an edited, renumbered or reordered entry),
//! each subtree it completes is compared with the one stored when it was appended
//! (catching an entry rewritten together with its leaf hash, or slipped in), and the
//! root at each checkpointed size is compared with the signed root (catching a
//! history rewritten wholesale, nodes and all). A checkpoint exported earlier also
//! catches entries deleted from the end, which nothing left in the database can.
//!
//! The log may be live: a broker keeps appending while it is verified. The run covers
//! the entries its head counted when the run began (an append commits its entries and
//! the head together, so all of those are there); what was appended since is left to
//! the next run.

use crate::audit::checkpoint::{Checkpoint, LogKey};
use crate::audit::merkle::{Frontier, Hash};
use crate::store::{self, Store, StoreError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Entries read per page.
const PAGE: i64 = 10_000;

/// A checkpoint the rebuilt tree must match.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Where it comes from (`database`, or a file name).
    pub source: String,
    /// The signed tree head.
    pub checkpoint: Checkpoint,
}

/// What is wrong, at the first place it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The first entry index at fault, when it can be told.
    pub index: Option<u64>,
    /// What is wrong.
    pub what: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints the tree was held to.
    pub checkpoints: usize,
    /// Root of the whole log as rebuilt.
    pub root: Hash,
    /// The first problem found; `None` when the log is intact.
    pub finding: Option<Finding>,
    /// Time taken.
    pub elapsed: Duration,
}

impl Report {
    /// One line for people.
    pub fn summary(&self) -> String {
        match &self.finding {
            None => format!(
                "audit log intact: {} entries, root {}, {} checkpoint(s) matched",
                self.entries,
                STANDARD.encode(self.root),
                self.checkpoints
            ),
            Some(Finding {
                index: Some(index),
                what,
            }) => format!("audit log FAILED at index {index}: {what}"),
            Some(Finding { index: None, what }) => format!("audit log FAILED: {what}"),
        }
    }
}

fn found(index: Option<u64>, what: String) -> Finding {
    Finding { index, what }
}

/// Verifies the log in `store` against its stored checkpoints (signed by `key`) and
/// against `exported` ones.
pub async fn verify(
    store: &Store,
    key: &LogKey,
    exported: Vec<Expected>,
) -> Result<Report, StoreError> {
    verify_with_progress(store, key, exported, |_, _| {}).await
}

/// [`verify`], calling `progress(entries checked, entries in the log)` after each page
/// so a page can show how far it got.
pub async fn verify_with_progress(
    store: &Store,
    key: &LogKey,
    exported: Vec<Expected>,
    progress: impl Fn(u64, u64),
) -> Result<Report, StoreError> {
    let started = Instant::now();
    let mut conn = store.reader().acquire().await?;
    let head = store::audit::size(&mut conn).await? as u64;
    let mut report = Report {
        entries: 0,
        checkpoints: 0,
        root: crate::audit::merkle::empty_root(),
        finding: None,
        elapsed: Duration::ZERO,
    };
    let mut expected: BTreeMap<u64, Vec<Expected>> = BTreeMap::new();
    for stored in store::audit::checkpoints(&mut conn).await? {
        match Checkpoint::open(&stored.note, key) {
            Ok(checkpoint)
                if checkpoint.size == stored.tree_size && checkpoint.root == stored.root =>
            {
                expected.entry(checkpoint.size).or_default().push(Expected {
                    source: "database".into(),
                    checkpoint,
                });
            }
            Ok(_) => {
                report.finding = Some(found(
                    None,
                    format!(
                        "the stored checkpoint of size {} disagrees with its own signed note",
                        stored.tree_size
                    ),
                ));
                return Ok(finish(report, started));
            }
            Err(err) => {
                report.finding = Some(found(
                    None,
                    format!("the stored checkpoint of size {}: {err}", stored.tree_size),
                ));
                return Ok(finish(report, started));
            }
        }
    }
    for e in exported {
        expected.entry(e.checkpoint.size).or_default().push(e);
    }
    drop(conn);
    let mut scan = store::audit::LogScan::open(store)?;
    let mut frontier = Frontier::default();
    let mut last_matched = 0u64;
    'pages: loop {
        let from = frontier.size();
        let page = scan.page(from, PAGE).await?;
        progress(from, head);
        if page.leaves.is_empty() {
            break;
        }
        let nodes = page.nodes;
        for read in page.leaves {
            let index = frontier.size();
            if index == head {
                // Appended since the run began.
                break 'pages;
            }
            if read.index != index {
                report.finding = Some(found(
                    Some(index),
                    format!(
                        "entry {index} is missing (the next stored entry is {}): entries were deleted or renumbered",
                        read.index
                    ),
                ));
                break 'pages;
            }
            let leaf = read.hash;
            if !read.as_stored {
                report.finding = Some(found(
                    Some(index),
                    "the entry does not match its leaf hash: it was changed or moved after it was written".into(),
                ));
                break 'pages;
            }
            let mut bad_node = None;
            frontier.push(leaf, |id, hash| {
                if bad_node.is_none() && nodes.get(&id) != Some(hash) {
                    bad_node = Some(id);
                }
            });
            if let Some(id) = bad_node {
                let first = id.index << id.level;
                report.finding = Some(found(
                    Some(first),
                    format!(
                        "entries {first} to {} do not hash to the subtree stored when they were appended: \
                         an entry in that range was changed, swapped or inserted with a recomputed leaf hash",
                        id.last_leaf()
                    ),
                ));
                break 'pages;
            }
            if let Some(list) = expected.get(&frontier.size()) {
                let root = frontier.root();
                for e in list {
                    if e.checkpoint.root != root {
                        report.finding = Some(found(
                            Some(last_matched),
                            format!(
                                "the first {} entries do not match the checkpoint from {}: history after index {} \
                                 was rewritten",
                                e.checkpoint.size, e.source, last_matched
                            ),
                        ));
                        break 'pages;
                    }
                    report.checkpoints += 1;
                }
                last_matched = frontier.size();
            }
        }
    }
    scan.close().await;
    report.entries = frontier.size();
    report.root = frontier.root();
    progress(report.entries, head);
    if report.finding.is_none() {
        if let Some((&size, list)) = expected.range(frontier.size() + 1..).next() {
            report.finding = Some(found(
                Some(frontier.size()),
                format!(
                    "the checkpoint from {} covers {size} entries but the log holds {}: entries from index {} were deleted",
                    list[0].source,
                    frontier.size(),
                    frontier.size()
                ),
            ));
        } else if frontier.size() < head {
            report.finding = Some(found(
                Some(frontier.size()),
                format!(
                    "the log head counts {head} entries but only {} are stored: entries from index {} were deleted",
                    frontier.size(),
                    frontier.size()
                ),
            ));
        }
    }
    Ok(finish(report, started))
}

fn finish(mut report: Report, started: Instant) -> Report {
    report.elapsed = started.elapsed();
    report
}
