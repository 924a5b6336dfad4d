//! One traveller's grant: the Cedar policies asked with the facts of the traveller
//! and the ask, then, when they permit, the token issued under the token rules and its
//! entry completed; a refusal is returned with the entry it leaves.

use super::*;
use crate::policy::engine::TravellerQuestion;
use crate::policy::facts::DisruptionFacts;

pub(super) fn context<'a>(ask: &'a Ask<'_>, now: OffsetDateTime) -> ReleaseContext<'a> {
    ReleaseContext {
        purpose: ask.purpose.as_str(),
        event_category: ask.disruption.category.as_str(),
        now,
        disruption: Some(DisruptionFacts {
            state: ask.disruption.state.as_str(),
            declared_at: ask.disruption.declared_at,
            occurred_at: ask.disruption.occurred_at,
        }),
    }
}

/// The policies' facts about a traveller.
pub fn traveller_facts(traveller: &ReleaseFacts) -> TravellerFacts<'_> {
    let consent = traveller.consent.as_ref();
    TravellerFacts {
        id: &traveller.traveller_id,
        agency_id: &traveller.agency_id,
        carriers: traveller.carriers.clone(),
        booked_at: traveller.booked_at,
        travel_ends: traveller.travel_ends(),
        consent: match consent {
            None => "none",
            Some(c) if c.scope.decision == crate::domain::consent::Decision::Refused => "refused",
            Some(_) => "given",
        },
        withdrawn: consent.is_some_and(|c| c.scope.withdrawn),
        superseded: consent.is_some_and(|c| c.scope.superseded),
        consent_valid_until: consent.and_then(|c| c.scope.valid_until),
        consent_carriers: consent
            .map(|c| {
                c.scope
                    .carriers
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        consent_purposes: consent
            .map(|c| {
                c.scope
                    .purposes
                    .iter()
                    .map(|p| p.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The question every traveller of a grant is asked.
pub(super) fn grant_question<'p>(
    state: &'p AppState,
    airline: &Party,
    ask: &Ask<'_>,
    now: OffsetDateTime,
) -> TravellerQuestion<'p> {
    state.settings.policies.traveller_question(
        &AirlineFacts::of(airline),
        TravellerAction::GrantToken,
        &context(ask, now),
    )
}

/// Decides one traveller and, if allowed, issues their token. Returns the grant (or
/// the refusing verdict) and the audit entry to append; the caller stores the tokens.
pub(super) fn decide_and_issue(
    state: &AppState,
    question: &TravellerQuestion<'_>,
    airline: &Party,
    traveller: &ReleaseFacts,
    ask: &Ask<'_>,
    mut entry: NewEntry,
    now: OffsetDateTime,
) -> (Result<Grant, Verdict>, NewEntry) {
    let mut verdict = question.decide(&traveller_facts(traveller));
    let e = &mut entry.entry;
    e.agency_id = Some(traveller.agency_id.clone());
    e.booking_id = Some(traveller.booking_id.clone());
    e.traveller_id = Some(traveller.traveller_id.clone());
    e.consent_id = traveller.consent.as_ref().map(|c| c.id.clone());
    e.policies = Some(verdict.policy_list());
    let consent = match (&verdict.refusal, &traveller.consent) {
        (None, Some(consent)) => consent,
        _ => {
            let refusal = verdict.refusal.unwrap_or(Refusal::NoConsent);
            verdict.refusal = Some(refusal);
            return (Err(verdict), entry.refused(refusal.reason()));
        }
    };
    let channels: Vec<Channel> = consent
        .channels
        .iter()
        .copied()
        .filter(|c| ask.channels.is_none_or(|wanted| wanted.contains(c)))
        .collect();
    if channels.is_empty() {
        let verdict = Verdict {
            refusal: Some(Refusal::ChannelNotCovered),
            policies: Vec::new(),
        };
        return (
            Err(verdict),
            entry.refused(Refusal::ChannelNotCovered.reason()),
        );
    }
    let tunables = &state.settings.policies.tunables;
    let mut expires_at = now + tunables.token_lifetime();
    if let Some(end) = consent.scope.valid_until {
        expires_at = expires_at.min(end);
    }
    let uses = match traveller.delivery {
        Delivery::Reveal => 1,
        Delivery::Relay => i64::from(tunables.tokens.uses),
    };
    let issued = secret::issue(TOKEN_PREFIX);
    let record = TokenRecord {
        id: issued.id.clone(),
        secret_hash: issued.hash.to_vec(),
        airline_id: airline.id.clone(),
        agency_id: traveller.agency_id.clone(),
        consent_id: consent.id.clone(),
        traveller_id: traveller.traveller_id.clone(),
        booking_id: traveller.booking_id.clone(),
        purpose: ask.purpose.as_str().to_string(),
        event_category: ask.disruption.category.as_str().to_string(),
        event_reference: ask.disruption.id.clone(),
        flight: ask.flight.label(),
        issued_at: now,
        expires_at,
        used_at: None,
        channels: channels.clone(),
        uses_left: uses,
        delivery: traveller.delivery,
        revoked_at: None,
    };
    entry = entry
        .token(issued.id.clone())
        .channel(Channel::join(&channels));
    let granted = TokenGranted {
        token: issued.plaintext,
        token_id: issued.id,
        traveller_id: traveller.traveller_id.clone(),
        record_locator: traveller.record_locator.clone(),
        channels,
        delivery: traveller.delivery,
        uses,
        expires_at: format_time(expires_at),
        purpose: ask.purpose,
        audit_index: 0,
    };
    (Ok((granted, record)), entry)
}
