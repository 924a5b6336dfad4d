//! What a release refusal answers: each of the policy's refusals as the kind of error
//! and the sentence the airline gets, with the rule that decided it and the policies
//! that did. One mapping for token requests and token uses alike.

use crate::policy::Refusal;
use crate::service::{Error, ErrorKind};

/// The rule named in a refusal: the first deciding policy, or the token rule.
pub fn rule_name(refusal: Refusal, policies: &[String]) -> String {
    policies
        .first()
        .map(String::as_str)
        .or(refusal.rule())
        .unwrap_or("default-deny")
        .to_string()
}

/// The problem an airline gets for a refusal. Not carrying the booking and the booking
/// not existing read the same, so an airline learns nothing of bookings it does not fly.
pub fn refusal_problem(refusal: Refusal, policies: &[String]) -> Error {
    let (kind, detail) = match refusal {
        Refusal::PurposeNotOperational => (ErrorKind::PurposeNotOperational, "Contacts are released only for operational notifications (IATA Resolution 830d), never for marketing."),
        Refusal::BookingNotFound => (ErrorKind::BookingNotFound, "No traveller of that name on a booking with that locator holds that flight of yours."),
        Refusal::OutsideReleaseWindow => (ErrorKind::OutsideReleaseWindow, "Contacts are released from the booking until 72 hours after the trip."),
        Refusal::NotPermitted => (ErrorKind::NotPermitted, "No release policy permits this request."),
        Refusal::AmbiguousTraveller => (ErrorKind::AmbiguousTraveller, "More than one booking matches; ask the agency."),
        Refusal::NoConsent => (ErrorKind::NoConsent, "The agency holds no consent for this traveller."),
        Refusal::CarrierNotCovered => (ErrorKind::ConsentDoesNotCover, "The traveller's consent does not name your airline."),
        Refusal::PurposeNotCovered => (ErrorKind::ConsentDoesNotCover, "The traveller's consent does not include this purpose."),
        Refusal::ConsentRefused => (ErrorKind::ConsentRefused, "The traveller declined to give a contact (CTCR); the agency recorded the refusal."),
        Refusal::ConsentWithdrawn => (ErrorKind::ConsentInactive, "The traveller's consent was withdrawn."),
        Refusal::ConsentExpired => (ErrorKind::ConsentInactive, "The traveller's consent has expired."),
        Refusal::ConsentSuperseded => (ErrorKind::ConsentInactive, "The consent this token was granted under has been replaced."),
        Refusal::TokenNotFound => (ErrorKind::TokenNotFound, "No such release token was issued to your airline."),
        Refusal::TokenUsed => (ErrorKind::TokenUsed, "This release token has no uses left; ask for a new one."),
        Refusal::TokenExpired => (ErrorKind::TokenExpired, "This release token expired; ask for a new one."),
        Refusal::TokenRevoked => (ErrorKind::TokenRevoked, "This release token was revoked: the traveller withdrew their consent, or the disruption it was granted under was closed."),
        Refusal::RelayOnly => (ErrorKind::RelayOnly, "The agency has the broker deliver messages to this traveller; send yours to POST /v1/messages with this token."),
        Refusal::ChannelNotCovered => (ErrorKind::ChannelNotCovered, "The traveller gave no contact for the channel asked, or the token does not cover it."),
        Refusal::DisruptionNotFound => (ErrorKind::DisruptionNotFound, "Tokens are granted only under a disruption your airline declared (POST /v1/disruptions); name its id in `disruption_id`."),
        Refusal::FlightNotInDisruption => (ErrorKind::FlightNotInDisruption, "The disruption named does not carry this flight; declare the flight, or name the disruption that carries it."),
        Refusal::DisruptionClosed => (ErrorKind::DisruptionClosed, "The disruption named is closed: no token is granted under it any more."),
        Refusal::DisruptionBudgetSpent => (ErrorKind::DisruptionBudgetExceeded, "Your airline's disruptions declared today would cover more flights than its daily budget (policies/tunables.toml [budgets]); officers are alerted."),
        Refusal::RevealBudgetSpent => (ErrorKind::RevealBudgetExceeded, "Your airline's reveals today would pass its daily budget (policies/tunables.toml [budgets]); relayed messages are not counted."),
    };
    let mut problem = Error::new(kind, detail).with_rule(rule_name(refusal, policies));
    problem = problem.with_extension("reason", serde_json::Value::from(refusal.reason()));
    if !policies.is_empty() {
        problem = problem.with_extension("policies", serde_json::json!(policies));
    }
    problem
}
