//! Retention: destroys contacts whose time has come, forgets stored idempotent answers
//! after a day, and expired sign-in sessions.
//!
//! A record's purge time is the end of its booking's last flight day plus the
//! configured retention. Purging destroys the record's key and sealed values
//! (crypto-shredding, see `crypto::keyring`) and keeps its metadata, its receipt and
//! the audit trail, which records the purge through the one audited write. Several
//! brokers on one database may sweep at once: the conditional UPDATE lets only one of
//! them purge (and audit) a record.

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::erasure::ErasureReason;
use crate::service::erasures;
use crate::service::{AppState, Error};
use crate::store::{idempotency, sessions};

/// Records purged per transaction.
const BATCH: i64 = 500;

/// One sweep: purges every record due now. Returns how many were purged.
pub async fn sweep(state: &AppState) -> Result<usize, Error> {
    let now = state.clock.now();
    let mut purged = 0;
    loop {
        let mut tx = state.store.begin().await?;
        let due = crate::store::sealed::due_for_purge(&mut tx, now, BATCH).await?;
        if due.is_empty() {
            tx.rollback().await.ok();
            break;
        }
        let mut entries = Vec::new();
        for (consent_id, agency_id, traveller_id) in &due {
            if !crate::store::sealed::purge(&mut tx, consent_id, traveller_id, now).await? {
                continue;
            }
            let purge = Action::ContactPurge;
            let entry = NewEntry::by_broker(now, "retention-sweep", purge, Outcome::Recorded)
                .agency(agency_id.clone())
                .traveller(traveller_id.clone())
                .consent(consent_id.clone());
            entries.push(entry);
        }
        purged += entries.len();
        // Every airline shown a purged contact is asked to erase it.
        let consents: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.entry.consent_id.as_deref())
            .collect();
        let owed =
            erasures::owed_for_consents(&mut tx, &consents, ErasureReason::RecordPurged).await?;
        erasures::commit_with_erasures(state, tx, entries, owed, "retention-sweep").await?;
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    // Contacts replaced by an upload whose own asking did not happen (a broker stopped
    // in between): asked now.
    erasures::ask_for_changed_contacts(state, "retention-sweep", None).await?;
    let mut tx = state.store.begin().await?;
    idempotency::expire(&mut tx, now).await?;
    sessions::sweep(&mut tx, now).await?;
    tx.commit().await?;
    Ok(purged)
}
