//! Erasure pushed to every recipient (GDPR art. 17 and 19).
//!
//! A contact an airline was shown (a reveal token it used) stays in the airline's
//! systems after the broker forgets it. So when the traveller withdraws or the record
//! is purged, every airline that was shown the contact gets an erasure request in the
//! same transaction as the change: one per token, audited (`erasure_request`, its
//! reason), and pushed to the airline's webhook as a signed `contact.erasure_required`
//! event (token id, traveller's pseudonymous id, reason, deadline; never the contact).
//! The airline acknowledges it once (`erasure_acknowledgement`); a request still
//! unacknowledged past its deadline (`retention.erasure_deadline_hours`) is listed to
//! officers in the report and to the agency with its receipts.

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::erasure::{self, ErasureReason};
use crate::domain::ids::new_id;
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::audit::hold_head;
use crate::store::db::Db;
use crate::store::erasures::{self, ErasureRow, Owed, Whose};
use crate::store::outbox::WebhookDelivery;
use crate::store::{parties, Conn, Tx};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The webhook event an airline gets.
pub const EVENT_TYPE: &str = "contact.erasure_required";

/// An erasure request, as the airline, the agency and officers see it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ErasureRequest {
    /// `era_…`: acknowledge it at `/v1/erasure-requests/{id}/acknowledgement`.
    pub id: String,
    /// The airline asked.
    pub airline_id: String,
    /// The token the contact was revealed under.
    pub token_id: String,
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// Why: `consent_withdrawn`, `contact_changed` or `record_purged`.
    pub reason: ErasureReason,
    /// When the broker asked.
    pub requested_at: String,
    /// By when the airline must acknowledge.
    pub deadline: String,
    /// When it acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    /// Unacknowledged past its deadline.
    pub overdue: bool,
    /// The audit entry of the request.
    pub audit_index: i64,
}

impl ErasureRequest {
    fn of(row: &ErasureRow, now: OffsetDateTime) -> Result<Self, Error> {
        let reason = ErasureReason::parse(&row.reason)
            .ok_or_else(|| Error::internal(format!("unknown erasure reason {}", row.reason)))?;
        Ok(Self {
            id: row.id.clone(),
            airline_id: row.airline_id.clone(),
            token_id: row.token_id.clone(),
            traveller_id: row.traveller_id.clone(),
            reason,
            requested_at: format_time(row.requested_at),
            deadline: format_time(row.deadline_at),
            acknowledged_at: row.acknowledged_at.map(format_time),
            overdue: row.acknowledged_at.is_none() && row.deadline_at < now,
            audit_index: row.audit_index,
        })
    }
}

/// The contacts of a traveller that airlines were shown, to be erased for `reason`.
///
/// Like every read of what is owed in a writer's transaction, it is read behind the
/// log's head (see [`hold_head`]): a request another broker committed meanwhile is
/// seen, so no token gets a second `erasure_request` entry.
pub(crate) async fn owed_for_traveller(
    conn: &mut Conn,
    traveller_id: &str,
    reason: ErasureReason,
) -> Result<Vec<(Owed, ErasureReason)>, Error> {
    hold_head(conn).await?;
    let owed = erasures::owed_for_traveller(conn, traveller_id).await?;
    Ok(owed.into_iter().map(|o| (o, reason)).collect())
}

/// The contacts of the given records that airlines were shown, to be erased for
/// `reason`.
pub(crate) async fn owed_for_consents(
    conn: &mut Conn,
    consent_ids: &[&str],
    reason: ErasureReason,
) -> Result<Vec<(Owed, ErasureReason)>, Error> {
    hold_head(conn).await?;
    let owed = erasures::owed_for_consents(conn, consent_ids).await?;
    Ok(owed.into_iter().map(|o| (o, reason)).collect())
}

/// Asks every airline shown a contact that an agency has since replaced with another
/// to erase it (`contact_changed`): after an upload, for the travellers it superseded;
/// from the sweeper, for all (so that a broker stopped between an upload and this
/// catches up). Answers how many were asked.
pub async fn ask_for_changed_contacts(
    state: &AppState,
    work: &str,
    traveller_ids: Option<&[&str]>,
) -> Result<usize, Error> {
    if traveller_ids.is_some_and(|t| t.is_empty()) {
        return Ok(0);
    }
    // Found on a reader, so that the sweeper's scan never holds the writer; then read
    // again in the writer's transaction, for those travellers only, where it is exact.
    let found = {
        let mut reader = state.store.reader().acquire().await?;
        erasures::owed_for_changed_contacts(&mut reader, traveller_ids).await?
    };
    let mut travellers: Vec<&str> = found.iter().map(|o| o.traveller_id.as_str()).collect();
    travellers.sort_unstable();
    travellers.dedup();
    if travellers.is_empty() {
        return Ok(0);
    }
    let mut tx = state.store.begin().await?;
    hold_head(&mut tx).await?;
    let owed = erasures::owed_for_changed_contacts(&mut tx, Some(&travellers)).await?;
    if owed.is_empty() {
        tx.rollback().await.ok();
        return Ok(0);
    }
    let asked = owed.len();
    let owed = owed
        .into_iter()
        .map(|o| (o, ErasureReason::ContactChanged))
        .collect();
    commit_with_erasures(state, tx, Vec::new(), owed, work).await?;
    Ok(asked)
}

/// After an upload is durable: asks for the erasure of the contacts it replaced, for
/// the travellers whose records it superseded. A failure here leaves the upload as it
/// is (it is durable already) and the sweeper's catch-up asks instead.
pub async fn after_upload(state: &AppState, request_id: &str, superseding: &[&str]) {
    if let Err(error) = ask_for_changed_contacts(state, request_id, Some(superseding)).await {
        tracing::warn!(error = %error.detail(), "asking airlines to erase replaced contacts failed; the sweeper will ask");
    }
}

/// Commits `tx` with its `entries` and the erasure requests `owed` (each with its own
/// entry, stored and pushed to its airline's webhook in the same transaction). Answers
/// the indexes of `entries`.
pub(crate) async fn commit_with_erasures(
    state: &AppState,
    mut tx: Tx,
    mut entries: Vec<NewEntry>,
    owed: Vec<(Owed, ErasureReason)>,
    work: &str,
) -> Result<Vec<i64>, Error> {
    if owed.is_empty() {
        return state.commit_with_audits(tx, entries).await;
    }
    let now = state.clock.now();
    let hours = state
        .settings
        .policies
        .tunables
        .retention
        .erasure_deadline_hours;
    let deadline = now + time::Duration::hours(i64::from(hours));
    let own = entries.len();
    for (o, reason) in &owed {
        entries.push(
            NewEntry::by_broker(now, work, Action::ErasureRequest, Outcome::Recorded)
                .because(reason.as_str())
                .airline(o.airline_id.clone())
                .agency(o.agency_id.clone())
                .traveller(o.traveller_id.clone())
                .consent(o.consent_id.clone())
                .token(o.token_id.clone()),
        );
    }
    let appended = state.append_with_use_pushes(&mut tx, entries).await?;
    let mut airlines: Vec<&str> = owed.iter().map(|(o, _)| o.airline_id.as_str()).collect();
    airlines.sort_unstable();
    airlines.dedup();
    let hooked = parties::with_webhooks(&mut tx, &airlines).await?;
    let mut deliveries = Vec::new();
    for ((o, reason), entry) in owed.iter().zip(&appended.entries[own..]) {
        let row = ErasureRow {
            id: new_id(erasure::ID_PREFIX),
            airline_id: o.airline_id.clone(),
            agency_id: o.agency_id.clone(),
            token_id: o.token_id.clone(),
            traveller_id: o.traveller_id.clone(),
            consent_id: o.consent_id.clone(),
            reason: reason.as_str().to_string(),
            requested_at: now,
            deadline_at: deadline,
            acknowledged_at: None,
            audit_index: entry.index,
        };
        // Owed was read behind the log's head, so no other request for the token can
        // have committed since; the unique token still guards the table.
        if !erasures::insert(&mut tx, &row).await? || !hooked.contains(&o.airline_id) {
            continue;
        }
        deliveries.push(push_of(&row, now)?);
    }
    let stored = state.commit_appended(tx, appended, deliveries).await?;
    Ok(stored[..own].iter().map(|e| e.index).collect())
}

/// The signed event an airline's webhook gets for a request.
fn push_of(row: &ErasureRow, now: OffsetDateTime) -> Result<WebhookDelivery, Error> {
    let payload = serde_json::json!({
        "type": EVENT_TYPE,
        "erasure_request": ErasureRequest::of(row, now)?,
    });
    Ok(WebhookDelivery {
        id: new_id("whd"),
        agency_id: row.airline_id.clone(),
        audit_index: row.audit_index,
        payload: payload.to_string(),
        attempts: 0,
    })
}

/// The airline's requests, newest first.
#[derive(Serialize, Deserialize, Debug)]
pub struct ErasureRequests {
    /// At most `limit`.
    pub erasure_requests: Vec<ErasureRequest>,
}

/// Lists the requests an airline was sent, newest first.
pub async fn for_airline(
    state: &AppState,
    airline: &Party,
    limit: Option<i64>,
) -> Result<ErasureRequests, Error> {
    let limit = crate::service::input::page_limit(limit, 100, 1000)?;
    let mut conn = state.store.reader().acquire().await?;
    let rows = erasures::list(&mut conn, Whose::Airline(&airline.id), None, limit).await?;
    let now = state.clock.now();
    Ok(ErasureRequests {
        erasure_requests: rows
            .iter()
            .map(|r| ErasureRequest::of(r, now))
            .collect::<Result<_, _>>()?,
    })
}

/// The requests still unacknowledged past their deadline, newest first (at most
/// 1,000): all of them for officers, or those about one agency's clients.
pub async fn overdue(
    db: &mut impl Db,
    now: OffsetDateTime,
    agency: Option<&str>,
) -> Result<Vec<ErasureRequest>, Error> {
    let whose = agency.map_or(Whose::All, Whose::Agency);
    let rows = erasures::list(db, whose, Some(now), 1000).await?;
    rows.iter().map(|r| ErasureRequest::of(r, now)).collect()
}

/// What an acknowledgement did.
#[derive(Serialize, Deserialize, Debug)]
pub struct Acknowledged {
    /// The request, acknowledged.
    pub erasure_request: ErasureRequest,
    /// `false` when it was acknowledged before (this call changed nothing).
    pub recorded: bool,
    /// The audit entry of the acknowledgement, when this call recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
}

/// The airline acknowledges that it erased the contact of one of its requests.
pub async fn acknowledge(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    id: &str,
) -> Result<Acknowledged, Error> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let not_found = || Error::of(ErrorKind::ErasureRequestNotFound);
    let row = erasures::get(&mut tx, &airline.id, id)
        .await?
        .ok_or_else(not_found)?;
    if !erasures::acknowledge(&mut tx, &airline.id, id, now).await? {
        tx.rollback().await.ok();
        return Ok(Acknowledged {
            erasure_request: ErasureRequest::of(&row, now)?,
            recorded: false,
            audit_index: None,
        });
    }
    let entry = NewEntry::new(
        now,
        request_id,
        airline,
        Action::ErasureAcknowledgement,
        Outcome::Recorded,
    )
    .because(row.reason_word())
    .airline(airline.id.clone())
    .agency(row.agency_id.clone())
    .traveller(row.traveller_id.clone())
    .consent(row.consent_id.clone())
    .token(row.token_id.clone());
    let index = state.commit_with_audit(tx, entry).await?;
    let acknowledged = ErasureRow {
        acknowledged_at: Some(now),
        ..row
    };
    Ok(Acknowledged {
        erasure_request: ErasureRequest::of(&acknowledged, now)?,
        recorded: true,
        audit_index: Some(index),
    })
}

impl ErasureRow {
    /// The reason as the audit entry's `&'static` word.
    fn reason_word(&self) -> &'static str {
        ErasureReason::parse(&self.reason).map_or("unknown", ErasureReason::as_str)
    }
}
