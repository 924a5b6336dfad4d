//! Erasure requests: an airline that was shown a contact is asked to erase it when
//! the traveller withdraws, the agency replaces the contact, or the record is purged
//! (GDPR art. 17 and 19: every recipient is told).

use serde::{Deserialize, Serialize};

/// The prefix of an erasure request's id (`era_…`).
pub const ID_PREFIX: &str = "era";

/// Why a contact must be erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The traveller (or the agency for them) withdrew their consent.
    ConsentWithdrawn,
    /// The agency replaced the contact with another.
    ContactChanged,
    /// The record's retention ended and its contact was destroyed.
    RecordPurged,
}

impl ErasureReason {
    /// The stored word, also the reason of the request's audit entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::ContactChanged => "contact_changed",
            Self::RecordPurged => "record_purged",
        }
    }

    /// The reason a stored word names.
    pub fn parse(word: &str) -> Option<Self> {
        [
            Self::ConsentWithdrawn,
            Self::ContactChanged,
            Self::RecordPurged,
        ]
        .into_iter()
        .find(|r| r.as_str() == word)
    }
}
