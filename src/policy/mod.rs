//! The release rules. Who may have what, and when, is decided by the Cedar policy set in
//! `policies/` (see [`engine`]); this module holds the refusals those policies name, and
//! the token mechanics that are not policy but bookkeeping: a token is redeemed only by
//! the airline it was issued to, while it has uses left, before it expires, unless it
//! was revoked.
//!
//! Every refusal has a stable reason code (written to the audit entry, and the problem
//! type an airline receives) and names the rule that decided it.

pub mod engine;
pub mod facts;
mod split;
pub mod tunables;

use time::OffsetDateTime;

/// Why a grant, a redemption or a relayed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The purpose is not an operational notification.
    PurposeNotOperational,
    /// No booking with that traveller holds a flight the airline carries.
    BookingNotFound,
    /// Outside the release window (before the booking, or long after the trip).
    OutsideReleaseWindow,
    /// No permit covers the request.
    NotPermitted,
    /// The traveller has no consent record on file.
    NoConsent,
    /// The consent does not name this airline.
    CarrierNotCovered,
    /// The consent does not include this purpose.
    PurposeNotCovered,
    /// The traveller refused to give a contact (CTCR).
    ConsentRefused,
    /// The consent was withdrawn.
    ConsentWithdrawn,
    /// The consent's validity ended.
    ConsentExpired,
    /// The consent was replaced by a newer record.
    ConsentSuperseded,
    /// Two bookings of different agencies match; the airline must be more precise.
    AmbiguousTraveller,
    /// No such token, or it was issued to another airline.
    TokenNotFound,
    /// The token has no uses left.
    TokenUsed,
    /// The token expired.
    TokenExpired,
    /// The token was revoked (its consent was withdrawn).
    TokenRevoked,
    /// The agency delivers through the broker: the contact is never revealed.
    RelayOnly,
    /// The token does not cover that channel, or the traveller gave no contact for it.
    ChannelNotCovered,
    /// The grant names no disruption the airline declared.
    DisruptionNotFound,
    /// The disruption named does not carry the flight asked about.
    FlightNotInDisruption,
    /// The disruption named is closed.
    DisruptionClosed,
    /// The airline's disruptions of the day would cover more flights than its budget.
    DisruptionBudgetSpent,
    /// The airline's reveals of the day would pass its budget.
    RevealBudgetSpent,
}

impl Refusal {
    /// The reason codes a policy's `@reason` may name.
    pub const POLICY_REASONS: [&'static str; 12] = [
        "purpose_not_operational",
        "booking_not_found",
        "outside_release_window",
        "not_permitted",
        "no_consent",
        "carrier_not_covered",
        "purpose_not_covered",
        "consent_refused",
        "consent_withdrawn",
        "consent_expired",
        "consent_superseded",
        "disruption_closed",
    ];

    /// The stable reason code written to the audit entry.
    pub fn reason(self) -> &'static str {
        match self {
            Self::PurposeNotOperational => "purpose_not_operational",
            Self::BookingNotFound => "booking_not_found",
            Self::OutsideReleaseWindow => "outside_release_window",
            Self::NotPermitted => "not_permitted",
            Self::NoConsent => "no_consent",
            Self::CarrierNotCovered => "carrier_not_covered",
            Self::PurposeNotCovered => "purpose_not_covered",
            Self::ConsentRefused => "consent_refused",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::ConsentExpired => "consent_expired",
            Self::ConsentSuperseded => "consent_superseded",
            Self::AmbiguousTraveller => "ambiguous_traveller",
            Self::TokenNotFound => "token_not_found",
            Self::TokenUsed => "token_used",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::RelayOnly => "relay_only",
            Self::ChannelNotCovered => "channel_not_covered",
            Self::DisruptionNotFound => "disruption_not_found",
            Self::FlightNotInDisruption => "flight_not_in_disruption",
            Self::DisruptionClosed => "disruption_closed",
            Self::DisruptionBudgetSpent => "disruption_budget_exceeded",
            Self::RevealBudgetSpent => "reveal_budget_exceeded",
        }
    }

    /// The refusal a policy's `@reason` names.
    pub fn from_reason(reason: &str) -> Option<Self> {
        Some(match reason {
            "purpose_not_operational" => Self::PurposeNotOperational,
            "booking_not_found" => Self::BookingNotFound,
            "outside_release_window" => Self::OutsideReleaseWindow,
            "not_permitted" => Self::NotPermitted,
            "no_consent" => Self::NoConsent,
            "carrier_not_covered" => Self::CarrierNotCovered,
            "purpose_not_covered" => Self::PurposeNotCovered,
            "consent_refused" => Self::ConsentRefused,
            "consent_withdrawn" => Self::ConsentWithdrawn,
            "consent_expired" => Self::ConsentExpired,
            "consent_superseded" => Self::ConsentSuperseded,
            "disruption_closed" => Self::DisruptionClosed,
            _ => return None,
        })
    }

    /// The token rule that decided a refusal that is not a policy's.
    pub fn rule(self) -> Option<&'static str> {
        match self {
            Self::AmbiguousTraveller => Some("traveller-named-once"),
            Self::TokenNotFound => Some("token-holder-only"),
            Self::TokenUsed => Some("token-uses"),
            Self::TokenExpired => Some("token-unexpired"),
            Self::TokenRevoked => Some("token-not-revoked"),
            Self::RelayOnly => Some("agency-delivery-choice"),
            Self::ChannelNotCovered => Some("token-channels"),
            Self::DisruptionNotFound => Some("disruption-declared"),
            Self::FlightNotInDisruption => Some("disruption-carries-the-flight"),
            Self::DisruptionBudgetSpent => Some("disrupted-flights-per-day"),
            Self::RevealBudgetSpent => Some("reveals-per-day"),
            _ => None,
        }
    }
}

/// What redemption needs to know of a token.
pub struct TokenState {
    /// Whether the caller is the airline it was issued to.
    pub held_by_caller: bool,
    /// Whether it has no uses left.
    pub used: bool,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Token rules: holder only, not revoked, uses left, unexpired.
pub fn token_redeemable(token: &TokenState, now: OffsetDateTime) -> Result<(), Refusal> {
    if !token.held_by_caller {
        return Err(Refusal::TokenNotFound);
    }
    if token.revoked {
        return Err(Refusal::TokenRevoked);
    }
    if token.used {
        return Err(Refusal::TokenUsed);
    }
    if token.expires_at <= now {
        return Err(Refusal::TokenExpired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 08:00 UTC);

    #[test]
    fn tokens_redeem_once_by_their_holder_before_expiry() {
        let live = TokenState {
            held_by_caller: true,
            used: false,
            revoked: false,
            expires_at: NOW + time::Duration::minutes(1),
        };
        assert_eq!(token_redeemable(&live, NOW), Ok(()));
        assert_eq!(
            token_redeemable(
                &TokenState {
                    held_by_caller: false,
                    ..live
                },
                NOW
            ),
            Err(Refusal::TokenNotFound)
        );
        assert_eq!(
            token_redeemable(&TokenState { used: true, ..live }, NOW),
            Err(Refusal::TokenUsed)
        );
        assert_eq!(
            token_redeemable(
                &TokenState {
                    expires_at: NOW,
                    ..live
                },
                NOW
            ),
            Err(Refusal::TokenExpired)
        );
    }
}
