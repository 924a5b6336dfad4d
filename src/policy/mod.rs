//! The release rules: when an airline may be given a token, and when a token may be
//! redeemed. Pure functions over what the store found; every refusal has a stable
//! reason code (written to the audit entry) and names the rule that decided it.
//!
//! The rules, in the order they are checked:
//! 1. `operational-purpose-only`: the purpose must be an operational notification.
//! 2. `carrier-flies-booking`: the airline must carry the named flight, and the flight
//!    must be a segment of a booking holding the named traveller.
//! 3. `consent-exists`: the traveller must have a consent record.
//! 4. `consent-not-refused` and `consent-not-withdrawn`: a refusal (CTCR) or a
//!    withdrawal is what the airline learns, before anything about scope.
//! 5. `consent-covers-carrier` and `consent-covers-purpose`.
//! 6. `consent-active`: not expired, not superseded.
//!
//! and for redemption: `token-holder-only`, `token-single-use`, `token-unexpired`, and
//! `consent-active` again (a consent that lapsed since the grant releases nothing).

use crate::domain::booking::CarrierCode;
use crate::domain::consent::{ConsentScope, Inactive};
use crate::domain::purpose::Purpose;
use time::OffsetDateTime;

/// Why a grant or a redemption was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The purpose is not an operational notification.
    PurposeNotOperational,
    /// No booking with that traveller holds a flight the airline carries.
    BookingNotFound,
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
    /// The token was used already.
    TokenUsed,
    /// The token expired.
    TokenExpired,
}

impl Refusal {
    /// The stable reason code written to the audit entry.
    pub fn reason(self) -> &'static str {
        match self {
            Self::PurposeNotOperational => "purpose_not_operational",
            Self::BookingNotFound => "booking_not_found",
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
        }
    }

    /// The rule that decided the refusal.
    pub fn rule(self) -> &'static str {
        match self {
            Self::PurposeNotOperational => "operational-purpose-only",
            Self::BookingNotFound | Self::AmbiguousTraveller => "carrier-flies-booking",
            Self::NoConsent => "consent-exists",
            Self::CarrierNotCovered => "consent-covers-carrier",
            Self::PurposeNotCovered => "consent-covers-purpose",
            Self::ConsentRefused => "consent-not-refused",
            Self::ConsentWithdrawn => "consent-not-withdrawn",
            Self::ConsentExpired | Self::ConsentSuperseded => "consent-active",
            Self::TokenNotFound => "token-holder-only",
            Self::TokenUsed => "token-single-use",
            Self::TokenExpired => "token-unexpired",
        }
    }
}

/// Rule 1, checked before anything is looked up.
pub fn purpose_is_operational(purpose: Purpose) -> Result<(), Refusal> {
    if purpose.is_operational() {
        Ok(())
    } else {
        Err(Refusal::PurposeNotOperational)
    }
}

/// Rules 3 to 6: whether this consent lets this airline have the contact for this
/// purpose now.
pub fn consent_allows(
    consent: Option<&ConsentScope>,
    airline: &CarrierCode,
    purpose: Purpose,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    let consent = consent.ok_or(Refusal::NoConsent)?;
    match consent.activity(now) {
        Err(Inactive::Refused) => return Err(Refusal::ConsentRefused),
        Err(Inactive::Withdrawn) => return Err(Refusal::ConsentWithdrawn),
        _ => {}
    }
    if !consent.carriers.contains(airline) {
        return Err(Refusal::CarrierNotCovered);
    }
    if !consent.purposes.contains(&purpose) {
        return Err(Refusal::PurposeNotCovered);
    }
    consent_is_active(consent, now)
}

/// Rules 4 and 6, for redemption.
pub fn consent_is_active(consent: &ConsentScope, now: OffsetDateTime) -> Result<(), Refusal> {
    consent.activity(now).map_err(|inactive| match inactive {
        Inactive::Refused => Refusal::ConsentRefused,
        Inactive::Withdrawn => Refusal::ConsentWithdrawn,
        Inactive::Expired => Refusal::ConsentExpired,
        Inactive::Superseded => Refusal::ConsentSuperseded,
    })
}

/// What redemption needs to know of a token.
pub struct TokenState {
    /// Whether the caller is the airline it was issued to.
    pub held_by_caller: bool,
    /// Whether it was used.
    pub used: bool,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Redemption rules: holder only, single use, unexpired.
pub fn token_redeemable(token: &TokenState, now: OffsetDateTime) -> Result<(), Refusal> {
    if !token.held_by_caller {
        return Err(Refusal::TokenNotFound);
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
    use crate::domain::consent::Decision;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 08:00 UTC);

    fn consent() -> ConsentScope {
        ConsentScope {
            decision: Decision::Given,
            superseded: false,
            withdrawn: false,
            purposes: vec![Purpose::Cancellation, Purpose::Delay],
            carriers: vec![CarrierCode::parse("AF").unwrap()],
            valid_until: Some(datetime!(2027-01-01 00:00 UTC)),
        }
    }
    fn af() -> CarrierCode {
        CarrierCode::parse("AF").unwrap()
    }

    #[test]
    fn a_live_consent_for_this_airline_and_purpose_allows_release() {
        assert_eq!(
            consent_allows(Some(&consent()), &af(), Purpose::Cancellation, NOW),
            Ok(())
        );
    }

    #[test]
    fn each_consent_rule_refuses_with_its_own_reason() {
        let kl = CarrierCode::parse("KL").unwrap();
        assert_eq!(
            consent_allows(None, &af(), Purpose::Delay, NOW),
            Err(Refusal::NoConsent)
        );
        assert_eq!(
            consent_allows(Some(&consent()), &kl, Purpose::Delay, NOW),
            Err(Refusal::CarrierNotCovered)
        );
        assert_eq!(
            consent_allows(Some(&consent()), &af(), Purpose::GateChange, NOW),
            Err(Refusal::PurposeNotCovered)
        );
        let expired = ConsentScope {
            valid_until: Some(NOW),
            ..consent()
        };
        assert_eq!(
            consent_allows(Some(&expired), &af(), Purpose::Delay, NOW),
            Err(Refusal::ConsentExpired)
        );
        let superseded = ConsentScope {
            superseded: true,
            ..consent()
        };
        assert_eq!(
            consent_allows(Some(&superseded), &af(), Purpose::Delay, NOW),
            Err(Refusal::ConsentSuperseded)
        );
    }

    #[test]
    fn a_refusal_or_a_withdrawal_is_reported_before_any_question_of_scope() {
        let kl = CarrierCode::parse("KL").unwrap();
        let refused = ConsentScope {
            decision: Decision::Refused,
            ..consent()
        };
        assert_eq!(
            consent_allows(Some(&refused), &kl, Purpose::GateChange, NOW),
            Err(Refusal::ConsentRefused)
        );
        let withdrawn = ConsentScope {
            withdrawn: true,
            ..consent()
        };
        assert_eq!(
            consent_allows(Some(&withdrawn), &kl, Purpose::Delay, NOW),
            Err(Refusal::ConsentWithdrawn)
        );
        assert_eq!(
            consent_is_active(&withdrawn, NOW),
            Err(Refusal::ConsentWithdrawn)
        );
    }

    #[test]
    fn marketing_is_never_operational() {
        assert_eq!(
            purpose_is_operational(Purpose::Marketing),
            Err(Refusal::PurposeNotOperational)
        );
        assert_eq!(
            purpose_is_operational(Purpose::DirectMarketing),
            Err(Refusal::PurposeNotOperational)
        );
        assert_eq!(purpose_is_operational(Purpose::GateChange), Ok(()));
    }

    #[test]
    fn tokens_redeem_once_by_their_holder_before_expiry() {
        let live = TokenState {
            held_by_caller: true,
            used: false,
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
