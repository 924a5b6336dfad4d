//! What a transport reports of a message it accepted: the SMS gateway's receipts
//! (`service::gateway_receipts`) and email bounces (`service::bounces`).
//!
//! Each report is one whole write ([`crate::store::direct::Write`]): find the message
//! (a relayed message, or a verification's code), record the report on it unless it
//! already holds it, learn what it says of the contact (`service::reachability`), and
//! append its audit entry with the agency's `contact.unreachable` event when the
//! contact just stopped reaching the traveller. After a storm the gateway's receipts
//! come back by the hundred a second, beside the releases and the relay worker's own
//! writes: on SQLite the direct writer runs the whole report on one thread, where
//! sqlx sent each of its statements to its worker thread and back; on PostgreSQL it
//! runs in a group-commit transaction of the pool.

use crate::audit::merkle::Frontier;
use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::delivery::Channel;
use crate::service::audit_log::{append_with_events, Audited};
use crate::service::delivery::message_entry;
use crate::service::reachability::{self, Heard};
use crate::service::{AppState, Error};
use crate::store::db::Db;
use crate::store::outbox::{self, Queue, Receipt};
use crate::store::{contact_verifications, StoreError};
use time::OffsetDateTime;

/// A transport's report of one message, to record.
pub(crate) struct Report {
    /// The message or verification it names.
    pub message_id: String,
    /// What received it, as the audit entry names it (`sms-gateway`, `smtp-bounces`).
    pub work: &'static str,
    /// The channel a report of this transport can be about (`sms`, `email`).
    pub channel: &'static str,
    /// The audit entry's outcome.
    pub outcome: Outcome,
    /// The audit entry's reason code.
    pub reason: Option<&'static str>,
    /// What is kept on the message (status, the transport's reason, when).
    pub receipt: Receipt,
    /// What it says of the contact.
    pub heard: Heard,
}

/// What became of a report.
#[derive(Debug)]
pub(crate) enum Noted {
    /// No message or verification has this id.
    NoMessage,
    /// Nothing recorded: it already holds this report, or it is not one this
    /// transport accepted (another channel, not yet handed over). `held` is the
    /// report it holds, if any.
    Unchanged {
        /// The channel it went by.
        channel: Channel,
        /// The report it holds.
        held: Option<Receipt>,
    },
    /// Recorded, with its audit entry (the write's only entry).
    Recorded,
}

impl Report {
    /// Records the report as one audited write; the entry, when recorded, is the
    /// answer's only one.
    pub(crate) async fn record(self, state: &AppState) -> Result<Audited<Noted>, Error> {
        state.write_audited(self).await
    }

    async fn write(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<Noted>, StoreError> {
        let now = self.receipt.at;
        let id = &self.message_id;
        let Some(message) = reported(db, id, self.work, self.outcome, now).await? else {
            return Ok(Audited::unwritten(Noted::NoMessage));
        };
        let (queue, id) = (message.queue, &message.id);
        if !outbox::record_receipt(db, queue, id, self.channel, &self.receipt).await? {
            let held = outbox::receipt_of(db, queue, id).await?;
            let channel = message.channel;
            return Ok(Audited::unwritten(Noted::Unchanged { channel, held }));
        }
        let became = reachability::learn(db, id, self.heard, now).await?;
        let mut entry = message.entry;
        entry.reason = self.reason;
        append_with_events(
            db,
            right_edge,
            Noted::Recorded,
            vec![entry],
            now,
            |stored| reachability::events_of(became.as_ref(), stored),
        )
        .await
    }
}

crate::store::direct::write_over_db!(Report, Audited<Noted>, write);

/// What a transport's report (a gateway's receipt, a bounce) is about: a relayed
/// message, or the code of a contact verification, with the audit entry of what it
/// says became of it.
struct Reported {
    /// Which table holds it.
    queue: Queue,
    /// Its id.
    id: String,
    /// The channel it went by.
    channel: Channel,
    /// The entry of the report.
    entry: NewEntry,
}

/// The message or verification `id` names, if any, and the entry (`message_receipt`,
/// `outcome`, recorded by `work`) of a report about it.
async fn reported(
    db: &mut impl Db,
    id: &str,
    work: &str,
    outcome: Outcome,
    now: OffsetDateTime,
) -> Result<Option<Reported>, StoreError> {
    if let Some(message) = outbox::message(db, id).await? {
        let entry = message_entry(db, &message, work, Action::MessageReceipt, outcome, now).await?;
        return Ok(Some(Reported {
            queue: Queue::Messages,
            id: message.id,
            channel: message.channel,
            entry,
        }));
    }
    let Some(code) = contact_verifications::get(db, None, id).await? else {
        return Ok(None);
    };
    let entry = crate::service::contact_verifications::subjects(
        NewEntry::by_broker(now, work, Action::MessageReceipt, outcome),
        &code,
    );
    Ok(Some(Reported {
        queue: Queue::Verifications,
        id: code.id,
        channel: code.channel,
        entry,
    }))
}
