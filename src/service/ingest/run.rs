//! A batch being read and stored: each record checked as it arrives, then, once the
//! body is in, every signature verified (on every core) and the records stored,
//! without `atomic=true` a chunk of records per transaction, each reported; with it,
//! in one transaction that is not even begun if any record was rejected.

use super::report::{
    bounded, not_stored, with_statement, BatchReport, Counts, RecordReport, Reported,
};
use super::turns::Turn;
use super::{Checked, RecordOutcome, StoreVerified, Submission, Uploader, Verifieds};
use crate::service::ingest;
use crate::service::settings::BatchLimits;
use crate::service::{AppState, Error, ErrorKind};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Records stored in one transaction of a batch that is not atomic.
const CHUNK: usize = 256;
/// What a reader does after handing a record over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    More,
    /// Stop reading: too many records were rejected.
    Stop,
}

/// A batch being read: its records, checked as they arrive, waiting for the end of
/// the body to be verified and stored.
pub struct Run<'a> {
    state: &'a AppState,
    uploader: Uploader,
    atomic: bool,
    limits: BatchLimits,
    /// Every record read, in order: checked, or why it was refused.
    records: Vec<Result<Checked, Error>>,
    /// How many of them failed their checks.
    rejected: usize,
    /// For an SSR import: the statements of passengers sent without a signature.
    pub(super) to_sign: HashMap<usize, Value>,
}

impl<'a> Run<'a> {
    pub(super) fn new(state: &'a AppState, uploader: Uploader, atomic: bool) -> Self {
        Self {
            state,
            uploader,
            atomic,
            limits: state.settings.batch,
            records: Vec::new(),
            rejected: 0,
            to_sign: HashMap::new(),
        }
    }

    /// Takes the next record: checks it at once, keeps what storing it needs. The
    /// record after the last one allowed is refused with the whole request.
    pub(crate) fn push(&mut self, item: Result<Submission, Error>) -> Result<Flow, Error> {
        let max = self.limits.max_records;
        if self.records.len() >= max {
            return Err(Error::new(
                ErrorKind::BatchTooLarge,
                format!(
                    "The batch holds more than {max} records, the most one request may hold; \
                     nothing was stored. Send it in requests of at most {max} records."
                ),
            )
            .with_extension("max_records", json!(max)));
        }
        let checked = item.and_then(|s| ingest::check(&self.uploader, s));
        if checked.is_err() {
            self.rejected += 1;
        }
        self.records.push(checked);
        Ok(if self.rejected > self.limits.max_rejected {
            Flow::Stop
        } else {
            Flow::More
        })
    }

    /// Ends the batch once the body is read (or could not be): verifies the
    /// signatures and stores the records, or, when nothing may be stored (an atomic
    /// batch with a rejected record, a batch stopped for too many rejections, an
    /// atomic batch whose body broke off), audits the refused signatures and answers
    /// `422` with every record's outcome.
    pub(super) async fn finish(
        self,
        unread: Option<Error>,
        turn: Turn,
    ) -> Result<BatchReport, Error> {
        let stopped = self.rejected > self.limits.max_rejected;
        if stopped || (self.atomic && unread.is_some()) {
            let reports = self.reports_unverified();
            let detail = match &unread {
                Some(p) if !stopped => format!("Nothing was stored: {}", p.detail()),
                _ => format!(
                    "Nothing was stored: reading stopped after {} rejected records; fix them \
                     and send the batch again.",
                    self.limits.max_rejected
                ),
            };
            return Err(not_stored(detail, reports));
        }
        let Run {
            state,
            uploader,
            atomic,
            records,
            to_sign,
            ..
        } = self;
        let verified = ingest::verify_checked(state, &uploader, records).await?;
        if atomic && verified.rejected() > 0 {
            let refusals = verified.refusals(&uploader);
            if !refusals.is_empty() {
                let tx = state.store.begin().await?;
                state.commit_with_audits(tx, refusals).await?;
            }
            let reports = verified
                .verdicts()
                .enumerate()
                .map(|(i, (record_id, problem))| match problem {
                    Some(problem) => RecordReport::rejected(i, problem),
                    None => RecordReport::not_stored(i, record_id),
                })
                .map(|r| with_statement(r, &to_sign))
                .collect();
            let rejected = verified.rejected();
            return Err(not_stored(
                format!("Nothing was stored: {rejected} record(s) were rejected; see `results`."),
                reports,
            ));
        }
        let task_state = state.clone();
        let stored = tokio::spawn(async move {
            let _turn = turn;
            store(&task_state, &uploader, atomic, verified, &to_sign).await
        });
        let report = stored
            .await
            .map_err(|e| Error::internal(format!("the batch's storing task failed: {e}")))??;
        if let Some(problem) = unread {
            // The records before the fault are stored and reported; the rest of the
            // body was not read.
            return Err(problem
                .with_extension("counts", json!(report.counts))
                .with_extension("results", json!(report.results)));
        }
        Ok(report)
    }

    /// Every record's outcome when nothing is stored and no signature was verified.
    fn reports_unverified(&self) -> Vec<RecordReport> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, record)| match record {
                Ok(checked) => RecordReport::not_stored(i, Some(checked.record_id())),
                Err(problem) => RecordReport::rejected(i, problem),
            })
            .map(|r| with_statement(r, &self.to_sign))
            .collect()
    }
}

/// Stores a verified batch: a chunk per write, or all in one when atomic.
async fn store(
    state: &AppState,
    uploader: &Uploader,
    atomic: bool,
    verified: Verifieds,
    to_sign: &HashMap<usize, Value>,
) -> Result<BatchReport, Error> {
    let mut report = BatchReport {
        atomic,
        counts: Counts::default(),
        results: Vec::new(),
    };
    let chunks = verified.into_chunks(CHUNK);
    let writes: Vec<Vec<Verifieds>> = if atomic {
        vec![chunks]
    } else {
        chunks.into_iter().map(|chunk| vec![chunk]).collect()
    };
    for chunks in writes {
        let write = StoreVerified {
            state: state.clone(),
            uploader: uploader.clone(),
            chunks,
        };
        let written = state.write_audited(write).await?;
        let superseding: Vec<&str> = written
            .output
            .iter()
            .filter_map(|r| match &r.outcome {
                RecordOutcome::Stored(s) if !s.supersedes.is_empty() => {
                    Some(s.traveller_id.as_str())
                }
                _ => None,
            })
            .collect();
        crate::service::erasures::after_upload(state, &uploader.request_id, &superseding).await;
        for result in written.output {
            let index = report.results.len();
            let line = match result.outcome {
                RecordOutcome::Stored(s) => {
                    report.counts.stored += 1;
                    RecordReport {
                        consent_id: Some(s.consent_id),
                        version: Some(s.version),
                        traveller_page: s.withdrawal_code.as_ref().map(|_| {
                            crate::service::settings::page_link(&state.settings.public_url)
                        }),
                        withdrawal_code: s.withdrawal_code,
                        audit_index: Some(s.audit_index),
                        ..RecordReport::new(index, Reported::Stored)
                    }
                }
                RecordOutcome::Duplicate { consent_id } => {
                    report.counts.duplicate += 1;
                    RecordReport {
                        consent_id: Some(consent_id),
                        ..RecordReport::new(index, Reported::Duplicate)
                    }
                }
                RecordOutcome::Rejected(problem) => {
                    report.counts.rejected += 1;
                    with_statement(RecordReport::rejected(index, &problem), to_sign)
                }
            };
            report.results.push(RecordReport {
                record_id: result.record_id.as_deref().map(bounded),
                ..line
            });
        }
    }
    Ok(report)
}
