//! The consent record an agency signs, and what makes a consent active.
//!
//! The statement's fields map to ISO/IEC TS 27560 (consent record structure) and the
//! Kantara Consent Receipt v1.1; the mapping is in the README. A statement records
//! either consent *given* for some operational notifications, or consent *refused*
//! (the PNR's CTCR): a refusal carries no contact, and airlines asking later learn
//! "refused".

use super::booking::{Booking, CarrierCode};
use super::language::Language;
use super::party::IataAgencyNumber;
use super::purpose::Purpose;
use super::traveller::Traveller;
use super::{short_word, string_serde};
use time::OffsetDateTime;

/// The schema version of statements uploaded now.
pub const SCHEMA_VERSION: &str = "passerelle.consent.v1";
/// The schema version given to records uploaded before statements carried one.
pub const LEGACY_SCHEMA_VERSION: &str = "passerelle.consent.v0";

/// The statement's schema version; only the current one is accepted for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaVersion;

impl SchemaVersion {
    /// Accepts the current version only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == SCHEMA_VERSION {
            Ok(Self)
        } else {
            Err(format!("must be `{SCHEMA_VERSION}`"))
        }
    }
    /// The version string.
    pub fn as_str(&self) -> &str {
        SCHEMA_VERSION
    }
}
string_serde!(SchemaVersion);

/// The agency's own id for a record (its CRM or mid-office key): 1 to 64 letters,
/// digits and `-_.:/`. Versions of one record share it; re-sending it with the same
/// content is a duplicate, with new content a new version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgencyRecordId(String);

impl AgencyRecordId {
    /// Parses a record id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        short_word(raw, 64, b"-_.:/").map(Self)
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(AgencyRecordId);

/// What the traveller decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Consent given for the listed purposes and recipients.
    Given,
    /// The traveller declined to give a contact (CTCR).
    Refused,
}

impl Decision {
    /// The word used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Refused => "refused",
        }
    }
    /// Parses the stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        [Self::Given, Self::Refused]
            .into_iter()
            .find(|d| d.as_str() == word)
    }
}

/// A category of personal data the consent is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataCategory {
    /// A mobile phone number (SMS).
    Mobile,
    /// An email address.
    Email,
}

impl DataCategory {
    /// The word used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Email => "email",
        }
    }
    /// Parses the stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        [Self::Mobile, Self::Email]
            .into_iter()
            .find(|c| c.as_str() == word)
    }
    /// The W3C DPV personal-data term.
    pub fn dpv_term(self) -> &'static str {
        match self {
            Self::Mobile => "pd:PhoneNumber",
            Self::Email => "pd:EmailAddress",
        }
    }
}

/// Who may receive the contact: named carriers, or the carriers of the itinerary
/// (resolved from the statement's own segments, so the signature covers them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// These airlines.
    Carriers(Vec<CarrierCode>),
    /// The carriers of the booking's segments, written `"itinerary"`.
    Itinerary,
}

impl<'de> serde::Deserialize<'de> for Recipients {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<CarrierCode>),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "must be a list of airline designators or the word \"itinerary\"",
            )
        })? {
            Raw::Word(w) if w == "itinerary" => Ok(Self::Itinerary),
            Raw::Word(_) => Err(serde::de::Error::custom(
                "must be a list of airline designators or the word \"itinerary\"",
            )),
            Raw::List(list) => Ok(Self::Carriers(list)),
        }
    }
}

impl serde::Serialize for Recipients {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Carriers(list) => list.serialize(s),
            Self::Itinerary => s.serialize_str("itinerary"),
        }
    }
}

/// How the agency collected the traveller's decision.
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
        short_word(raw, 64, b"-_.:").map(Self)
    }
    /// The version.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(NoticeVersion);

/// The SHA-256 of the notice text the traveller was shown, in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDigest(String);

impl NoticeDigest {
    /// Parses 64 hex digits (any case; stored lower-case).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("must be the SHA-256 of the notice text: 64 hex digits".into());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }
    /// The digest in hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(NoticeDigest);

/// The privacy notice the traveller was shown before deciding.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The agency's version of the notice.
    pub version: NoticeVersion,
    /// The language it was shown in.
    pub language: Language,
    /// SHA-256 of the exact text shown.
    pub sha256: NoticeDigest,
}

/// An ISO 3166-1 alpha-2 country whose law governs the consent (`FR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jurisdiction(String);

impl Jurisdiction {
    /// Parses two letters, upper-casing them.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() != 2 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("must be an ISO 3166-1 alpha-2 country code such as `FR`".into());
        }
        Ok(Self(raw.to_ascii_uppercase()))
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(Jurisdiction);

/// What the traveller consented to (or refused).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentTerms {
    /// Operational notifications concerned.
    pub purposes: Vec<Purpose>,
    /// Which contact data the decision is about.
    pub data_categories: Vec<DataCategory>,
    /// Airlines that may receive the contact.
    pub recipients: Recipients,
    /// The notice shown.
    pub notice: Notice,
    /// How the decision was collected.
    pub collection_method: CollectionMethod,
    /// When the traveller decided (RFC 3339): the event time.
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// Until when the decision holds, if limited (RFC 3339).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_until: Option<OffsetDateTime>,
}

/// The statement an agency signs: who it is, the booking, the traveller with their
/// contacts, and the decision. The signature covers all of it, so neither the contact
/// nor the scope can be changed after signing.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentStatement {
    /// Schema version of this statement.
    pub schema_version: SchemaVersion,
    /// The agency's id for the record.
    pub record_id: AgencyRecordId,
    /// The agency that collected consent (the controller).
    pub agency: IataAgencyNumber,
    /// Whose law governs the consent.
    pub jurisdiction: Jurisdiction,
    /// The booking.
    pub booking: Booking,
    /// The traveller and their contacts.
    pub traveller: Traveller,
    /// Given or refused.
    pub decision: Decision,
    /// The terms.
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

/// The first index in `items` that repeats an earlier item.
fn first_repeat<T: PartialEq>(items: &[T]) -> Option<usize> {
    (0..items.len()).find(|&i| items[..i].contains(&items[i]))
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
        let terms = &self.consent;
        self.check_contacts()?;
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
                        format!("`{purpose}` ({}) is not an operational notification; only those may be consented to here", purpose.dpv_term()),
                    )
                });
            }
        }
        if let Some(i) = first_repeat(&terms.purposes) {
            return Err(StatementError::new(
                format!("consent.purposes[{i}]"),
                "repeats an earlier purpose",
            ));
        }
        if let Recipients::Carriers(carriers) = &terms.recipients {
            if carriers.is_empty() {
                return Err(StatementError::new(
                    "consent.recipients",
                    "must name at least one carrier, or be \"itinerary\"",
                ));
            }
            if let Some(i) = first_repeat(carriers) {
                return Err(StatementError::new(
                    format!("consent.recipients[{i}]"),
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

    /// The contacts must match the decision and the data categories: a consent holds
    /// exactly the contacts it names, a refusal holds none.
    fn check_contacts(&self) -> Result<(), StatementError> {
        let categories = &self.consent.data_categories;
        if categories.is_empty() {
            return Err(StatementError::new(
                "consent.data_categories",
                "must name at least one of mobile, email",
            ));
        }
        if let Some(i) = first_repeat(categories) {
            return Err(StatementError::new(
                format!("consent.data_categories[{i}]"),
                "repeats an earlier category",
            ));
        }
        let traveller = &self.traveller;
        if self.decision == Decision::Given
            && traveller.mobile.is_none()
            && traveller.email.is_none()
        {
            return Err(StatementError::new(
                "traveller",
                "must hold a mobile number, an email address or both (or record a refusal)",
            ));
        }
        let held = [
            (DataCategory::Mobile, traveller.mobile.is_some()),
            (DataCategory::Email, traveller.email.is_some()),
        ];
        for (category, present) in held {
            let named = categories.contains(&category);
            let field = format!("traveller.{}", category.as_str());
            match self.decision {
                Decision::Refused if present => {
                    return Err(StatementError::new(
                        field,
                        "must be absent: a refusal carries no contact",
                    ))
                }
                Decision::Given if present && !named => {
                    return Err(StatementError::new(
                        field,
                        format!(
                            "is given but consent.data_categories does not name `{}`",
                            category.as_str()
                        ),
                    ))
                }
                Decision::Given if !present && named => {
                    return Err(StatementError::new(
                        field,
                        format!(
                            "is missing although consent.data_categories names `{}`",
                            category.as_str()
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The carriers that may receive the contact, with `itinerary` resolved to the
    /// distinct carriers of the booking's segments.
    pub fn carriers(&self) -> Vec<CarrierCode> {
        match &self.consent.recipients {
            Recipients::Carriers(list) => list.clone(),
            Recipients::Itinerary => {
                let mut list: Vec<CarrierCode> = Vec::new();
                for segment in &self.booking.segments {
                    if !list.contains(&segment.carrier) {
                        list.push(segment.carrier.clone());
                    }
                }
                list
            }
        }
    }
}
