//! What a release decision is asked with and answers: the facts of the airline, the
//! traveller and the request as the Cedar policies see them, and the verdict with
//! the policies that took it.

use super::Refusal;
use time::OffsetDateTime;

/// A decision and the policies that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `None` when allowed; otherwise the refusal.
    pub refusal: Option<Refusal>,
    /// The ids of the deciding policies (the matching permits when allowed, the
    /// matching forbids when refused; empty for a refusal no permit covered).
    pub policies: Vec<String>,
}

/// The release actions that concern one traveller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TravellerAction {
    /// Issue a token.
    GrantToken,
    /// Reveal the contact under a token.
    RedeemToken,
    /// Relay a message under a token.
    RelayMessage,
}

/// What the broker read about the airline asking.
pub struct AirlineFacts<'a> {
    /// The airline's party id.
    pub id: &'a str,
    /// Its designator.
    pub designator: &'a str,
}

/// The question's context.
pub struct ReleaseContext<'a> {
    /// The purpose asked.
    pub purpose: &'a str,
    /// The event category named.
    pub event_category: &'a str,
    /// Now.
    pub now: OffsetDateTime,
    /// The disruption a grant is under; `None` for a use of a token (its disruption
    /// was open when it was granted, and closing it revokes the token).
    pub disruption: Option<DisruptionFacts<'a>>,
}

/// What a grant's question knows of the disruption it is under.
#[derive(Clone, Copy)]
pub struct DisruptionFacts<'a> {
    /// `open`, `updated` or `closed`.
    pub state: &'a str,
    /// When it was declared.
    pub declared_at: OffsetDateTime,
    /// When it happened, as declared.
    pub occurred_at: OffsetDateTime,
}

/// What the broker found about a traveller, for a decision.
pub struct TravellerFacts<'a> {
    /// The traveller's id.
    pub id: &'a str,
    /// Their agency's party id.
    pub agency_id: &'a str,
    /// Carriers of the booking's segments.
    pub carriers: Vec<String>,
    /// When the booking was first uploaded.
    pub booked_at: OffsetDateTime,
    /// End of the trip (the day after the last departure date, at midnight UTC).
    pub travel_ends: OffsetDateTime,
    /// `given`, `refused` or `none`.
    pub consent: &'a str,
    /// Whether the consent was withdrawn.
    pub withdrawn: bool,
    /// Whether it was replaced by a newer version.
    pub superseded: bool,
    /// When it ends, if it does.
    pub consent_valid_until: Option<OffsetDateTime>,
    /// Carriers it names.
    pub consent_carriers: Vec<String>,
    /// Purposes it covers.
    pub consent_purposes: Vec<String>,
}

impl Verdict {
    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
    /// The deciding policies, comma-separated, as the audit entry stores them.
    pub fn policy_list(&self) -> String {
        if self.policies.is_empty() {
            "default-deny".to_string()
        } else {
            self.policies.join(",")
        }
    }
}

impl TravellerAction {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::GrantToken => "grant_token",
            Self::RedeemToken => "redeem_token",
            Self::RelayMessage => "relay_message",
        }
    }
}

impl<'a> AirlineFacts<'a> {
    /// The facts of an airline party (an airline without a designator carries nothing).
    pub fn of(airline: &'a crate::domain::party::Party) -> Self {
        Self {
            id: &airline.id,
            designator: airline.code.as_deref().unwrap_or_default(),
        }
    }
}
