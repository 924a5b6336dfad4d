//! Withdrawal of consent, as easy as giving it (GDPR art. 7(3)): by the agency, or by
//! the traveller with the code printed on their receipt, in one unauthenticated call.
//!
//! Either way the traveller's current consent is marked withdrawn at once; tokens
//! granted under it are revoked and messages queued for them cancelled in the same
//! transaction, and the next airline request is refused with `consent-not-withdrawn`. Withdrawing twice is not
//! an error: the answer says when it was withdrawn.

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::domain::erasure::ErasureReason;
use crate::domain::party::Party;
use crate::domain::scope::ConsentState;
use crate::domain::time::format_time;
use crate::service::{erasures, AppState};
use crate::service::{Error, ErrorKind};
use crate::store::consents::{self, CodeHolder};
use crate::store::db::Db;
use crate::store::records::RecordRow;
use crate::store::{outbox, tokens};
use serde::{Deserialize, Serialize};

/// The answer to a withdrawal.
#[derive(Serialize, Deserialize, Debug)]
pub struct Withdrawn {
    /// The record withdrawn (the traveller's current one).
    pub consent_id: String,
    /// Always `withdrawn`.
    pub state: ConsentState,
    /// When.
    pub withdrawn_at: String,
    /// By whom: agency or traveller.
    pub withdrawn_by: String,
    /// The audit entry, when this call withdrew it (absent if it was already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
}

/// The agency withdraws one of its records (the traveller asked it to).
pub async fn by_agency(
    state: &AppState,
    request_id: &str,
    agency: &Party,
    id: String,
) -> Result<Withdrawn, Error> {
    let tx = state.store.begin().await?;
    let entry = NewEntry::new(
        state.clock.now(),
        request_id,
        agency,
        Action::ConsentWithdrawal,
        Outcome::Recorded,
    );
    withdraw(state, tx, &agency.id, &id, "agency", entry).await
}

/// The traveller's withdrawal: the code, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// The withdrawal code from the consent receipt (`pas_wd_…`).
    pub code: String,
}

/// The traveller withdraws with their code. The code is checked on a read first, so
/// a wrong one never waits for the writer, and each address may try only a few
/// codes a minute.
pub async fn by_traveller(
    state: &AppState,
    request_id: &str,
    body: WithdrawalRequest,
) -> Result<Withdrawn, Error> {
    let holder = {
        let mut conn = state.store.reader().acquire().await?;
        code_holder(&mut conn, &body.code).await?
    };
    let tx = state.store.begin().await?;
    let now = state.clock.now();
    let withdrawal = Action::ConsentWithdrawal;
    let entry = NewEntry::by_traveller(
        now,
        request_id,
        &holder.traveller_id,
        withdrawal,
        Outcome::Recorded,
    );
    withdraw(
        state,
        tx,
        &holder.agency_id,
        &holder.consent_id,
        "traveller",
        entry,
    )
    .await
}

/// The record a presented withdrawal code opens; the same answer for a malformed,
/// unknown or wrong code.
pub async fn code_holder(db: &mut impl Db, code: &str) -> Result<CodeHolder, Error> {
    let unknown = || Error::of(ErrorKind::WithdrawalCodeUnknown);
    let presented = secret::parse(crate::service::ingest::WITHDRAWAL_CODE_PREFIX, code.trim())
        .ok_or_else(unknown)?;
    let holder = consents::by_withdrawal_code(db, presented.id)
        .await?
        .ok_or_else(unknown)?;
    if !presented.matches(&holder.code_hash) {
        return Err(unknown());
    }
    Ok(holder)
}

/// Withdraws the traveller's current record (following newer versions from the one
/// named), audits it and commits.
async fn withdraw(
    state: &AppState,
    mut tx: crate::store::Tx,
    agency_id: &str,
    named: &str,
    by: &str,
    mut entry: NewEntry,
) -> Result<Withdrawn, Error> {
    let mut row = current_version(&mut tx, agency_id, named).await?;
    if row.scope.decision == crate::domain::consent::Decision::Refused {
        return Err(Error::new(
            ErrorKind::NothingToWithdraw,
            "The traveller's current record is a refusal: there is no consent to withdraw.",
        ));
    }
    if let Some((at, who)) = &row.withdrawn {
        return Ok(Withdrawn {
            consent_id: row.id.clone(),
            state: ConsentState::Withdrawn,
            withdrawn_at: format_time(*at),
            withdrawn_by: who.clone(),
            audit_index: None,
        });
    }
    let now = entry.at;
    consents::withdraw(&mut tx, &row.id, by, now).await?;
    // Revoked at once: live tokens stop working and queued messages are dropped, in
    // the same transaction as the withdrawal.
    tokens::revoke_for_traveller(&mut tx, &row.traveller_id, "consent_withdrawn", now).await?;
    outbox::cancel_for_traveller(&mut tx, &row.traveller_id, now).await?;
    row.withdrawn = Some((now, by.to_string()));
    entry = entry
        .agency(row.agency_id.clone())
        .booking(row.booking_id.clone())
        .traveller(row.traveller_id.clone())
        .consent(row.id.clone());
    // Every airline shown the contact is asked to erase it, in the same transaction.
    let owed =
        erasures::owed_for_traveller(&mut tx, &row.traveller_id, ErasureReason::ConsentWithdrawn)
            .await?;
    let request_id = entry.entry.request_id.clone();
    let indexes = erasures::commit_with_erasures(state, tx, vec![entry], owed, &request_id).await?;
    let audit_index = indexes[0];
    Ok(Withdrawn {
        consent_id: row.id,
        state: ConsentState::Withdrawn,
        withdrawn_at: format_time(now),
        withdrawn_by: by.to_string(),
        audit_index: Some(audit_index),
    })
}

/// The newest record in the chain of versions that starts at `id`.
pub(crate) async fn current_version(
    db: &mut impl Db,
    agency_id: &str,
    id: &str,
) -> Result<RecordRow, Error> {
    let mut row = crate::store::records::get(&mut *db, agency_id, id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::ConsentNotFound))?;
    while let Some(next) = row.superseded_by.clone() {
        row = crate::store::records::get(&mut *db, agency_id, &next)
            .await?
            .ok_or_else(|| Error::internal(format!("superseding record {next} is missing")))?;
    }
    Ok(row)
}
