//! The consent statement an agency signs, and what makes a consent active.

use super::booking::{Booking, CarrierCode};
use super::party::IataAgencyNumber;
use super::purpose::Purpose;
use super::traveller::Traveller;
use time::OffsetDateTime;

/// How the agency collected the traveller's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMethod {
    /// A form signed in the agency.
    SignedForm,
    /// A checkbox ticked online, unticked by default.
    OnlineCheckbox,
    /// A recorded phone call.
    RecordedCall,
    /// An email from the traveller.
    Email,
}

impl CollectionMethod {
    /// The snake_case word used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedForm => "signed_form",
            Self::OnlineCheckbox => "online_checkbox",
            Self::RecordedCall => "recorded_call",
            Self::Email => "email",
        }
    }
}

/// A notice version: which privacy notice the traveller was shown (1 to 64 letters,
/// digits and `-_.:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeVersion(String);

impl NoticeVersion {
    /// Parses a notice version.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !ok {
            return Err("must be 1 to 64 letters, digits or -_.:".into());
        }
        Ok(Self(raw.to_string()))
    }
    /// The version.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(NoticeVersion);

/// What the traveller consented to.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentTerms {
    /// Operational notifications the contact may be used for.
    pub purposes: Vec<Purpose>,
    /// Airlines that may receive the contact.
    pub carriers: Vec<CarrierCode>,
    /// When the traveller consented (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// Until when the consent holds, if limited (RFC 3339).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_until: Option<OffsetDateTime>,
    /// The version of the notice shown to the traveller.
    pub notice_version: NoticeVersion,
    /// How consent was collected.
    pub collection_method: CollectionMethod,
}

/// The statement an agency signs: who it is, the booking, the traveller with their
/// contacts, and the consent. The signature covers all of it, so neither the contact
/// nor the scope can be changed after signing.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentStatement {
    /// The agency that collected consent (the controller).
    pub agency: IataAgencyNumber,
    /// The booking.
    pub booking: Booking,
    /// The traveller and their contacts.
    pub traveller: Traveller,
    /// The consent.
    pub consent: ConsentTerms,
}

/// How far in the future a collection time may lie, to allow for clock skew.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// A rule of the statement that the types alone do not enforce, with the field it
/// concerns (relative to the statement) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    /// The field, e.g. `consent.purposes[1]`.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
    /// True when the fault is a non-operational purpose (reported as its own kind).
    pub non_operational_purpose: bool,
}

impl StatementError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            non_operational_purpose: false,
        }
    }
}

impl ConsentStatement {
    /// Checks the cross-field rules against the calling agency and the current time.
    pub fn check(
        &self,
        caller: &IataAgencyNumber,
        now: OffsetDateTime,
    ) -> Result<(), StatementError> {
        if &self.agency != caller {
            return Err(StatementError::new(
                "agency",
                "is not the IATA number of the calling agency",
            ));
        }
        if let Err((field, reason)) = self.booking.check() {
            return Err(StatementError::new(format!("booking.{field}"), reason));
        }
        if self.traveller.mobile.is_none() && self.traveller.email.is_none() {
            return Err(StatementError::new(
                "traveller",
                "must hold a mobile number, an email address or both",
            ));
        }
        let terms = &self.consent;
        if terms.purposes.is_empty() {
            return Err(StatementError::new(
                "consent.purposes",
                "must name at least one purpose",
            ));
        }
        for (i, purpose) in terms.purposes.iter().enumerate() {
            if !purpose.is_operational() {
                return Err(StatementError {
                    non_operational_purpose: true,
                    ..StatementError::new(
                        format!("consent.purposes[{i}]"),
                        format!("`{purpose}` is not an operational notification; only those may be consented to here"),
                    )
                });
            }
            if terms.purposes[..i].contains(purpose) {
                return Err(StatementError::new(
                    format!("consent.purposes[{i}]"),
                    "repeats an earlier purpose",
                ));
            }
        }
        if terms.carriers.is_empty() {
            return Err(StatementError::new(
                "consent.carriers",
                "must name at least one carrier",
            ));
        }
        for (i, carrier) in terms.carriers.iter().enumerate() {
            if terms.carriers[..i].contains(carrier) {
                return Err(StatementError::new(
                    format!("consent.carriers[{i}]"),
                    "repeats an earlier carrier",
                ));
            }
        }
        if terms.collected_at > now + CLOCK_SKEW {
            return Err(StatementError::new(
                "consent.collected_at",
                "lies in the future",
            ));
        }
        if let Some(until) = terms.valid_until {
            if until <= terms.collected_at {
                return Err(StatementError::new(
                    "consent.valid_until",
                    "must come after collected_at",
                ));
            }
        }
        Ok(())
    }
}

/// Why a stored consent does not allow a release right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Its validity ended.
    Expired,
    /// A newer record for the same traveller replaced it.
    Superseded,
}

/// The lifecycle state of a stored consent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// Consent given and not replaced.
    Given,
    /// Replaced by a newer record for the same traveller.
    Superseded,
}

impl ConsentState {
    /// The word used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Superseded => "superseded",
        }
    }
    /// Parses the stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "given" => Some(Self::Given),
            "superseded" => Some(Self::Superseded),
            _ => None,
        }
    }
}

/// What the release rules need to know of a stored consent; no contact value.
#[derive(Debug, Clone)]
pub struct ConsentScope {
    /// Lifecycle state.
    pub state: ConsentState,
    /// Purposes consented to.
    pub purposes: Vec<Purpose>,
    /// Carriers that may receive the contact.
    pub carriers: Vec<CarrierCode>,
    /// End of validity, if any.
    pub valid_until: Option<OffsetDateTime>,
}

impl ConsentScope {
    /// Whether the consent allows a release at `now`, and if not, why.
    pub fn activity(&self, now: OffsetDateTime) -> Result<(), Inactive> {
        if self.state == ConsentState::Superseded {
            return Err(Inactive::Superseded);
        }
        match self.valid_until {
            Some(until) if until <= now => Err(Inactive::Expired),
            _ => Ok(()),
        }
    }
}
