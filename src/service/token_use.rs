//! Taking a use of a token, to reveal the contact or to relay a message: the checks
//! every use goes through, decided on a read beside the writer and then under the
//! guard in a batch (`use_batch`), or exactly inside the writer's transaction.

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::party::Party;
use crate::policy::facts::{AirlineFacts, ReleaseContext, TravellerAction, Verdict};
use crate::policy::{self, Refusal, TokenState};
use crate::service::grant::TOKEN_PREFIX;
use crate::service::ratelimit::Budget;
use crate::service::refusal::refusal_problem;
use crate::service::sealed::Contacts;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::sealed::SealedRecord;
use crate::store::tokens::TokenRecord;
use crate::store::use_facts::{self, UseFacts};
use crate::store::{tokens, Tx};
use std::time::Instant;

/// What a token is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// Reveal the contact.
    Reveal,
    /// Relay a message.
    Relay,
}

/// A token use taken in an open transaction, with its audit entry ready.
pub struct Taken {
    /// The transaction holding the use; commit it with the entry.
    pub tx: Tx,
    /// The token, as it was before this use.
    pub token: TokenRecord,
    /// The audit entry for the use.
    pub entry: NewEntry,
    /// The token's record's sealed contacts, as the transaction reads them.
    pub sealed: SealedRecord,
}

/// A use the readers' view allows, with its audit entry filled in: to be taken by the
/// writer, in a batch, under the guard (see `use_batch`).
pub struct Ready {
    /// The token, as read.
    pub token: TokenRecord,
    /// The audit entry for the use.
    pub entry: NewEntry,
    /// For a reveal, the contact, opened from the record as read (the guard proves
    /// the record was neither purged nor withdrawn since).
    pub contact: Option<Contacts>,
}

/// Reads a presented token for a use and begins its audit entry; a string that is
/// not a release token is an invalid field.
///
/// A use is then decided twice at most. [`decide_on_read`] decides it on what the
/// readers see, beside the writer, and the writer takes the use under a guard, in a
/// batch: it takes it only if nothing a grant depends on has changed since the read
/// (the token still has uses, is neither revoked nor expired, and its record is
/// neither withdrawn, superseded nor purged; a booking's segments are only ever added
/// to). When the read refuses, or the guard finds a change, [`take_in_writer`]
/// decides again inside the writer's transaction, where it is exact: the token rules
/// (holder, revocation, uses, expiry, delivery, channel) first, then the release
/// policies with the state of the consent now; a refusal is audited from there.
pub fn ask<'a>(
    state: &AppState,
    request_id: &str,
    airline: &'a Party,
    presented: &'a str,
    wanted: TokenUse,
    channel: Option<Channel>,
) -> Result<(UseAsked<'a>, NewEntry), Error> {
    let limit = &state.settings.policies.tunables.rate_limit;
    state
        .limiter
        .check(&airline.id, Budget::RefusedUses, limit, Instant::now())?;
    let presented = secret::parse(TOKEN_PREFIX, presented.trim()).ok_or_else(|| {
        Error::field(
            ErrorKind::InvalidField,
            "token",
            "is not a Passerelle release token",
        )
    })?;
    let ask = UseAsked {
        airline,
        presented,
        wanted,
        channel,
        now: state.clock.now(),
    };
    let mut entry = NewEntry::new(ask.now, request_id, airline, ask.action(), ask.outcome())
        .airline(airline.id.clone());
    entry.entry.channel = channel.map(|c| c.as_str().to_string());
    Ok((ask, entry))
}

/// Decides a use on the readers' view: the use, ready for the writer, if allowed
/// there (and, for a reveal, if the contact opens); `None` otherwise.
pub async fn decide_on_read(
    state: &AppState,
    ask: &UseAsked<'_>,
    entry: &NewEntry,
) -> Result<Option<Ready>, Error> {
    let read = use_facts::for_use_on_read(&state.store, ask.presented.id).await?;
    Ok(decide_read(state, ask, entry, read))
}

/// [`decide_on_read`] on facts already at hand (the facts a disruption's grant was
/// decided on, for its relays: see `relay::decide_ahead`).
pub fn decide_read(
    state: &AppState,
    ask: &UseAsked<'_>,
    entry: &NewEntry,
    read: Option<UseFacts>,
) -> Option<Ready> {
    let Checked::Allowed(token, verdict, sealed) = check(state, read, ask) else {
        return None;
    };
    let contact = match ask.wanted {
        TokenUse::Reveal => {
            // A contact that cannot be opened here is left to the writer's check.
            match crate::service::sealed::open_contacts(state, &token.consent_id, &sealed) {
                Ok(Some(contact)) => Some(contact),
                _ => return None,
            }
        }
        TokenUse::Relay => None,
    };
    let mut entry = entry.clone();
    describe(state, &mut entry, &token, Some(&verdict));
    Some(Ready {
        token,
        entry,
        contact,
    })
}

/// Decides a use inside the writer's transaction and takes it, or audits the refusal
/// and returns its problem.
pub async fn take_in_writer(
    state: &AppState,
    ask: &UseAsked<'_>,
    mut entry: NewEntry,
) -> Result<Taken, Error> {
    let mut tx = state.store.begin().await?;
    let read = use_facts::for_use(&mut tx, ask.presented.id).await?;
    let (token, verdict, sealed) = match check(state, read, ask) {
        Checked::Allowed(token, verdict, sealed) => (token, verdict, sealed),
        Checked::Refused {
            token,
            refusal,
            verdict,
        } => {
            if let Some(token) = &token {
                describe(state, &mut entry, token, verdict.as_ref());
            }
            let policies = verdict.map(|v| v.policies).unwrap_or_default();
            let entry = entry.refused(refusal.reason());
            let problem = state
                .refuse(tx, entry, refusal_problem(refusal, &policies))
                .await;
            return Err(count_refused(state, ask, refusal, problem).await);
        }
    };
    describe(state, &mut entry, &token, Some(&verdict));
    if !tokens::take_use(&mut tx, &token.id, ask.now).await? {
        let refusal = Refusal::TokenUsed;
        let entry = entry.refused(refusal.reason());
        let problem = state
            .refuse(tx, entry, refusal_problem(refusal, &verdict.policies))
            .await;
        return Err(count_refused(state, ask, refusal, problem).await);
    }
    Ok(Taken {
        tx,
        token,
        entry,
        sealed,
    })
}

/// Whether a refused use is one only a faulty or hostile client makes, and so paid
/// from the airline's refused-uses budget. A withdrawal, a revocation, a purge or a
/// policy's refusal is the traveller's or the agency's doing: a disruption full of
/// them must not stop the airline's other uses.
fn is_clients_fault(refusal: Refusal) -> bool {
    matches!(
        refusal,
        Refusal::TokenNotFound
            | Refusal::TokenUsed
            | Refusal::TokenExpired
            | Refusal::RelayOnly
            | Refusal::ChannelNotCovered
    )
}

/// Pays a refused use from the airline's budget once its refusal is audited (the
/// writer is free again). The answer stays the refusal; a budget this spends makes the
/// airline's next uses wait.
async fn count_refused(
    state: &AppState,
    ask: &UseAsked<'_>,
    refusal: Refusal,
    problem: Error,
) -> Error {
    if is_clients_fault(refusal) {
        let limit = &state.settings.policies.tunables.rate_limit;
        let taken = state
            .limiter
            .take(
                &state.store,
                &ask.airline.id,
                Budget::RefusedUses,
                1.0,
                limit,
            )
            .await;
        // A spent budget is remembered by the limiter; only a failure to reach the
        // budget at all is worth a line.
        if let Err(err) = taken {
            if err.kind() != ErrorKind::RateLimited {
                tracing::warn!(kind = ?err.kind(), "the refused-uses budget could not be taken");
            }
        }
    }
    problem
}

/// A use asked of a token.
pub struct UseAsked<'a> {
    airline: &'a Party,
    presented: secret::PresentedSecret<'a>,
    wanted: TokenUse,
    channel: Option<Channel>,
    now: time::OffsetDateTime,
}

impl UseAsked<'_> {
    /// The public id of the token presented.
    pub fn token_id(&self) -> &str {
        self.presented.id
    }

    fn action(&self) -> Action {
        match self.wanted {
            TokenUse::Reveal => Action::TokenRedemption,
            TokenUse::Relay => Action::MessageRelay,
        }
    }

    fn outcome(&self) -> Outcome {
        match self.wanted {
            TokenUse::Reveal => Outcome::Released,
            TokenUse::Relay => Outcome::Queued,
        }
    }

    fn policy_action(&self) -> TravellerAction {
        match self.wanted {
            TokenUse::Reveal => TravellerAction::RedeemToken,
            TokenUse::Relay => TravellerAction::RelayMessage,
        }
    }
}

/// What the token rules and the release policies say of a use.
enum Checked {
    /// Allowed, by these policies, with the record's sealed contacts; the use is not
    /// taken yet.
    Allowed(TokenRecord, Verdict, SealedRecord),
    /// Refused; with the token if it was found, and the policies' verdict if they
    /// were asked.
    Refused {
        token: Option<TokenRecord>,
        refusal: Refusal,
        verdict: Option<Verdict>,
    },
}

/// Decides a use on the token and facts read (`None`: no such token), changing nothing.
fn check(state: &AppState, read: Option<UseFacts>, ask: &UseAsked<'_>) -> Checked {
    let read = read.filter(|read| ask.presented.matches(&read.token.secret_hash));
    let Some(UseFacts {
        token,
        facts,
        sealed,
    }) = read
    else {
        return Checked::Refused {
            token: None,
            refusal: Refusal::TokenNotFound,
            verdict: None,
        };
    };
    let token_state = TokenState {
        held_by_caller: token.airline_id == ask.airline.id,
        used: token.uses_left <= 0,
        revoked: token.revoked_at.is_some(),
        expires_at: token.expires_at,
    };
    let mut checked = policy::token_redeemable(&token_state, ask.now);
    if checked.is_ok() && ask.wanted == TokenUse::Reveal && token.delivery == Delivery::Relay {
        checked = Err(Refusal::RelayOnly);
    }
    if checked.is_ok() && ask.channel.is_some_and(|c| !token.channels.contains(&c)) {
        checked = Err(Refusal::ChannelNotCovered);
    }
    if let Err(refusal) = checked {
        return Checked::Refused {
            token: Some(token),
            refusal,
            verdict: None,
        };
    }
    let verdict = state.settings.policies.decide_traveller(
        &AirlineFacts::of(ask.airline),
        ask.policy_action(),
        &crate::service::grant::traveller_facts(&facts),
        &ReleaseContext {
            purpose: &token.purpose,
            event_category: &token.event_category,
            now: ask.now,
            disruption: None,
        },
    );
    match verdict.refusal {
        None => Checked::Allowed(token, verdict, sealed),
        Some(refusal) => Checked::Refused {
            token: Some(token),
            refusal,
            verdict: Some(verdict),
        },
    }
}

/// Fills the audit entry with what the token was granted for and, if they were asked,
/// the deciding policies.
fn describe(
    state: &AppState,
    entry: &mut NewEntry,
    token: &TokenRecord,
    verdict: Option<&Verdict>,
) {
    let e = &mut entry.entry;
    e.token_id = Some(token.id.clone());
    e.agency_id = Some(token.agency_id.clone());
    e.booking_id = Some(token.booking_id.clone());
    e.traveller_id = Some(token.traveller_id.clone());
    e.consent_id = Some(token.consent_id.clone());
    e.purpose = Some(token.purpose.clone());
    e.event_category = Some(token.event_category.clone());
    e.event_reference = Some(token.event_reference.clone());
    e.flight = Some(token.flight.clone());
    e.policy_digest = Some(state.settings.policies.digest().to_string());
    e.policies = verdict.map(Verdict::policy_list);
}
