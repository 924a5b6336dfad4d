//! What a stored consent allows now: its decision, purposes, carriers and validity,
//! and whether it is given, refused, withdrawn, expired or superseded at a moment.

use super::booking::CarrierCode;
use super::consent::Decision;
use super::purpose::Purpose;
use time::OffsetDateTime;

/// Why a stored consent does not allow a release right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// The traveller refused (CTCR).
    Refused,
    /// The traveller or the agency withdrew it.
    Withdrawn,
    /// A newer record for the same traveller replaced it.
    Superseded,
    /// Its validity ended.
    Expired,
}

/// The lifecycle state of a stored consent record, as reported to its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Consent given, current and within its validity.
    Given,
    /// The traveller refused.
    Refused,
    /// Withdrawn by the traveller or the agency.
    Withdrawn,
    /// Its validity ended.
    Expired,
    /// Replaced by a newer record for the same traveller.
    Superseded,
}

/// What the release rules need to know of a stored consent; no contact value.
#[derive(Debug, Clone)]
pub struct ConsentScope {
    /// Given or refused.
    pub decision: Decision,
    /// Replaced by a newer record.
    pub superseded: bool,
    /// Withdrawn.
    pub withdrawn: bool,
    /// Purposes consented to.
    pub purposes: Vec<Purpose>,
    /// Carriers that may receive the contact.
    pub carriers: Vec<CarrierCode>,
    /// End of validity, if any.
    pub valid_until: Option<OffsetDateTime>,
}

impl ConsentState {
    /// Every state, in a stable order.
    pub const ALL: [ConsentState; 5] = [
        Self::Given,
        Self::Refused,
        Self::Withdrawn,
        Self::Expired,
        Self::Superseded,
    ];
    /// The word used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
        }
    }
}

impl ConsentScope {
    /// Whether the consent allows a release at `now`, and if not, why. A refusal or
    /// a withdrawal outranks everything else: it is what the airline must learn.
    pub fn activity(&self, now: OffsetDateTime) -> Result<(), Inactive> {
        if self.decision == Decision::Refused {
            return Err(Inactive::Refused);
        }
        if self.withdrawn {
            return Err(Inactive::Withdrawn);
        }
        if self.superseded {
            return Err(Inactive::Superseded);
        }
        match self.valid_until {
            Some(until) if until <= now => Err(Inactive::Expired),
            _ => Ok(()),
        }
    }

    /// The state a reader is shown at `now`.
    pub fn state(&self, now: OffsetDateTime) -> ConsentState {
        match self.activity(now) {
            Ok(()) => ConsentState::Given,
            Err(Inactive::Refused) => ConsentState::Refused,
            Err(Inactive::Withdrawn) => ConsentState::Withdrawn,
            Err(Inactive::Superseded) => ConsentState::Superseded,
            Err(Inactive::Expired) => ConsentState::Expired,
        }
    }
}
