//! The audit trail: one entry per decision (upload, grant, refusal, release), written
//! in the same transaction as the change it records.
//!
//! An entry holds pseudonymous ids only, never a contact value, a name or a token.
//! Its leaf hash is the RFC 9162 leaf hash, `SHA-256(0x00 ‖ JCS(entry))`, where the
//! entry is exactly the JSON object the audit API returns, without `leaf_hash`: anyone
//! reading the trail can recompute it.

pub mod checkpoint;
pub mod merkle;
pub mod proof;

use crate::crypto::canonical::write_string;
use crate::crypto::sha256;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An agency uploaded a consent record.
    ConsentUpload,
    /// An airline asked for a release token.
    TokenRequest,
    /// An airline redeemed a release token.
    TokenRedemption,
    /// A consent was withdrawn, by its agency or by the traveller.
    ConsentWithdrawal,
    /// A record's contact was destroyed at the end of its retention.
    ContactPurge,
    /// An airline handed the broker a message to relay.
    MessageRelay,
    /// The broker tried to deliver a relayed message.
    MessageDelivery,
    /// An agency changed how its clients are reached, or its webhook; an airline its
    /// link domains.
    SettingsChange,
    /// An operator rotated or revoked a party's API keys.
    ApiKeyChange,
    /// An airline declared a disruption.
    DisruptionDeclaration,
    /// An airline updated or closed a disruption.
    DisruptionUpdate,
    /// The SMS gateway said what became of a message it accepted.
    MessageReceipt,
    /// The broker asked an airline to erase a contact it was shown.
    ErasureRequest,
    /// An airline acknowledged that it erased a contact.
    ErasureAcknowledgement,
    /// An agency asked the broker to verify a record's contact, or the relay tried to
    /// send the code.
    ContactVerification,
    /// The traveller answered a verification (or the agency for them, with the code).
    ContactConfirmation,
}

impl Action {
    /// Every action, in the order the console lists them.
    pub const ALL: [Action; 16] = [
        Self::ConsentUpload,
        Self::TokenRequest,
        Self::TokenRedemption,
        Self::ConsentWithdrawal,
        Self::ContactPurge,
        Self::MessageRelay,
        Self::MessageDelivery,
        Self::SettingsChange,
        Self::ApiKeyChange,
        Self::DisruptionDeclaration,
        Self::DisruptionUpdate,
        Self::MessageReceipt,
        Self::ErasureRequest,
        Self::ErasureAcknowledgement,
        Self::ContactVerification,
        Self::ContactConfirmation,
    ];
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConsentUpload => "consent_upload",
            Self::TokenRequest => "token_request",
            Self::TokenRedemption => "token_redemption",
            Self::ConsentWithdrawal => "consent_withdrawal",
            Self::ContactPurge => "contact_purge",
            Self::MessageRelay => "message_relay",
            Self::MessageDelivery => "message_delivery",
            Self::SettingsChange => "settings_change",
            Self::ApiKeyChange => "api_key_change",
            Self::DisruptionDeclaration => "disruption_declaration",
            Self::DisruptionUpdate => "disruption_update",
            Self::MessageReceipt => "message_receipt",
            Self::ErasureRequest => "erasure_request",
            Self::ErasureAcknowledgement => "erasure_acknowledgement",
            Self::ContactVerification => "contact_verification",
            Self::ContactConfirmation => "contact_confirmation",
        }
    }
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A consent record was stored.
    Recorded,
    /// A release token was granted.
    Granted,
    /// A contact was released.
    Released,
    /// The request was refused; `reason` says why.
    Refused,
    /// A message was accepted for delivery.
    Queued,
    /// A message reached the relay or gateway.
    Delivered,
    /// A delivery attempt failed; another is scheduled.
    Deferred,
    /// Delivery failed for good.
    Failed,
    /// A queued message was dropped (its consent was withdrawn).
    Cancelled,
    /// A setting changed.
    Changed,
}

impl Outcome {
    /// Every outcome, in the order the console lists them.
    pub const ALL: [Outcome; 10] = [
        Self::Recorded,
        Self::Granted,
        Self::Released,
        Self::Refused,
        Self::Queued,
        Self::Delivered,
        Self::Deferred,
        Self::Failed,
        Self::Cancelled,
        Self::Changed,
    ];
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Granted => "granted",
            Self::Released => "released",
            Self::Refused => "refused",
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Changed => "changed",
        }
    }
}

/// One audit entry, as stored and as the audit API returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, dense from 0.
    pub index: i64,
    /// When it was written (RFC 3339, UTC, millisecond precision).
    pub at: String,
    /// The request that caused it.
    pub request_id: String,
    /// Kind of the acting party.
    pub actor_kind: String,
    /// Id of the acting party.
    pub actor_id: String,
    /// What was asked (`consent_upload`, `token_request`, `token_redemption`,
    /// `message_relay`, `message_delivery`, …).
    pub action: String,
    /// What was decided (`recorded`, `granted`, `released`, `refused`).
    pub outcome: String,
    /// Why it was refused, or what a setting became: a stable reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The agency whose client it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_id: Option<String>,
    /// The airline involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airline_id: Option<String>,
    /// The booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    /// The traveller (pseudonymous id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traveller_id: Option<String>,
    /// The consent record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    /// The release token's public id (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The purpose asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The event category named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    /// The airline's disruption reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_reference: Option<String>,
    /// The flight (`AF1234/2026-12-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight: Option<String>,
    /// The relayed message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The channel used (`sms`, `email`) or covered (`sms,email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The `@id`s of the policies that decided, comma-separated (`default-deny` when
    /// no policy permitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<String>,
    /// SHA-256 of the policy files in force when it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
}

/// An entry to append; the store assigns its index and time.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// When it happens.
    pub at: OffsetDateTime,
    /// What was asked.
    pub action: Action,
    /// What was decided.
    pub outcome: Outcome,
    /// Why it was refused.
    pub reason: Option<&'static str>,
    /// The subject ids and context; `index`, `at`, `action`, `outcome` and `reason`
    /// are filled in from the fields above on append.
    pub entry: AuditEntry,
}

/// Setters of [`NewEntry`]: `entry.agency(id).consent(id)` names what it is about.
macro_rules! subjects {
    ($($method:ident => $field:ident,)*) => {
        $(
            #[doc = concat!("Names the entry's `", stringify!($field), "`.")]
            pub fn $method(mut self, value: impl Into<String>) -> Self {
                self.entry.$field = Some(value.into());
                self
            }
        )*
    };
}

impl NewEntry {
    /// Starts an entry for an action by a party.
    pub fn new(
        at: OffsetDateTime,
        request_id: &str,
        actor: &crate::domain::party::Party,
        action: Action,
        outcome: Outcome,
    ) -> Self {
        let kind = actor.kind.as_str();
        Self::by(at, request_id, kind, &actor.id, action, outcome)
    }

    /// Starts an entry for something the broker does by itself (a worker, the
    /// sweeper, a probe of the log), under the request id naming that work.
    pub fn by_broker(at: OffsetDateTime, work: &str, action: Action, outcome: Outcome) -> Self {
        Self::by(at, work, "broker", "passerelle", action, outcome)
    }

    /// Starts an entry for an operator's change at the command line.
    pub fn by_operator(
        at: OffsetDateTime,
        request_id: &str,
        action: Action,
        outcome: Outcome,
    ) -> Self {
        Self::by(
            at,
            request_id,
            "operator",
            "passerelle-cli",
            action,
            outcome,
        )
    }

    /// Starts an entry for an action by a traveller, known by their pseudonymous id.
    pub fn by_traveller(
        at: OffsetDateTime,
        request_id: &str,
        traveller_id: &str,
        action: Action,
        outcome: Outcome,
    ) -> Self {
        Self::by(at, request_id, "traveller", traveller_id, action, outcome)
    }

    fn by(
        at: OffsetDateTime,
        request_id: &str,
        actor_kind: &str,
        actor_id: &str,
        action: Action,
        outcome: Outcome,
    ) -> Self {
        Self {
            at,
            action,
            outcome,
            reason: None,
            entry: AuditEntry {
                request_id: request_id.to_string(),
                actor_kind: actor_kind.to_string(),
                actor_id: actor_id.to_string(),
                ..AuditEntry::default()
            },
        }
    }

    /// The reason of an outcome that is not a refusal (`webhook_registered`, a
    /// delivery's `smtp_error`…); a refusal's is given by [`NewEntry::refused`].
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    // The subjects and context an entry names, one setter each.
    subjects! {
        agency => agency_id,
        airline => airline_id,
        booking => booking_id,
        traveller => traveller_id,
        consent => consent_id,
        token => token_id,
        purpose => purpose,
        event_category => event_category,
        event_reference => event_reference,
        flight => flight,
        message => message_id,
        channel => channel,
        policies => policies,
        policy_digest => policy_digest,
    }

    /// The same entry, as a refusal for `reason`.
    pub fn refused(mut self, reason: &'static str) -> Self {
        self.outcome = Outcome::Refused;
        self.reason = Some(reason);
        self
    }

    /// (action, outcome, reason) as metric labels; the reason is empty unless refused.
    pub fn labels(&self) -> (&'static str, &'static str, &'static str) {
        (
            self.action.as_str(),
            self.outcome.as_str(),
            self.reason.unwrap_or(""),
        )
    }

    /// The entry as it will be stored at `index`, with its time at `at`.
    pub fn complete(self, index: i64, at: String) -> AuditEntry {
        AuditEntry {
            index,
            at,
            action: self.action.as_str().to_string(),
            outcome: self.outcome.as_str().to_string(),
            reason: self.reason.map(str::to_string),
            ..self.entry
        }
    }
}

impl AuditEntry {
    /// The RFC 9162 leaf hash of this entry.
    pub fn leaf_hash(&self) -> [u8; 32] {
        self.fields().leaf_hash()
    }

    /// Appends the entry's RFC 8785 form, the JSON object the API returns, to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        self.fields().write_canonical(out)
    }

    /// The entry's fields, borrowed.
    pub fn fields(&self) -> EntryFields<'_> {
        fn text(value: &Option<String>) -> Option<&[u8]> {
            value.as_deref().map(str::as_bytes)
        }
        EntryFields {
            index: self.index,
            at: self.at.as_bytes(),
            request_id: self.request_id.as_bytes(),
            actor_kind: self.actor_kind.as_bytes(),
            actor_id: self.actor_id.as_bytes(),
            action: self.action.as_bytes(),
            outcome: self.outcome.as_bytes(),
            reason: text(&self.reason),
            agency_id: text(&self.agency_id),
            airline_id: text(&self.airline_id),
            booking_id: text(&self.booking_id),
            traveller_id: text(&self.traveller_id),
            consent_id: text(&self.consent_id),
            token_id: text(&self.token_id),
            purpose: text(&self.purpose),
            event_category: text(&self.event_category),
            event_reference: text(&self.event_reference),
            flight: text(&self.flight),
            message_id: text(&self.message_id),
            channel: text(&self.channel),
            policies: text(&self.policies),
            policy_digest: text(&self.policy_digest),
        }
    }
}

/// An entry's fields, borrowed from wherever they are (an [`AuditEntry`], or a row of
/// the database read by `audit verify`, which hashes entries without copying them), as
/// the UTF-8 bytes of their text: verifying takes them as stored, without checking
/// they are UTF-8 again (an entry changed into anything else cannot match its hash).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct EntryFields<'a> {
    pub index: i64,
    /// The time as the API shows it (RFC 3339, milliseconds, UTC).
    pub at: &'a [u8],
    pub request_id: &'a [u8],
    pub actor_kind: &'a [u8],
    pub actor_id: &'a [u8],
    pub action: &'a [u8],
    pub outcome: &'a [u8],
    pub reason: Option<&'a [u8]>,
    pub agency_id: Option<&'a [u8]>,
    pub airline_id: Option<&'a [u8]>,
    pub booking_id: Option<&'a [u8]>,
    pub traveller_id: Option<&'a [u8]>,
    pub consent_id: Option<&'a [u8]>,
    pub token_id: Option<&'a [u8]>,
    pub purpose: Option<&'a [u8]>,
    pub event_category: Option<&'a [u8]>,
    pub event_reference: Option<&'a [u8]>,
    pub flight: Option<&'a [u8]>,
    pub message_id: Option<&'a [u8]>,
    pub channel: Option<&'a [u8]>,
    pub policies: Option<&'a [u8]>,
    pub policy_digest: Option<&'a [u8]>,
}

impl EntryFields<'_> {
    /// The RFC 9162 leaf hash: SHA-256 of 0x00 and the canonical form.
    pub fn leaf_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(512);
        bytes.push(0x00);
        self.write_canonical(&mut bytes);
        sha256(&bytes)
    }

    /// Appends the entry's RFC 8785 form, the JSON object the API returns, to `out`.
    ///
    /// Written field by field rather than through a `serde_json::Value` and the
    /// general canonicalizer: every append and every entry `audit verify` reads hashes
    /// one, and the general path spends most of its time building and sorting a map.
    /// The keys are ASCII, so UTF-16 order is byte order, listed here sorted; the one
    /// number is an integer far below 2^53, whose ECMAScript form is its decimal
    /// digits; and a string is escaped as RFC 8785 asks (see [`write_string`]). The
    /// tests hold it to the general canonicalizer.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        let before_index = [
            ("action", Some(self.action)),
            ("actor_id", Some(self.actor_id)),
            ("actor_kind", Some(self.actor_kind)),
            ("agency_id", self.agency_id),
            ("airline_id", self.airline_id),
            ("at", Some(self.at)),
            ("booking_id", self.booking_id),
            ("channel", self.channel),
            ("consent_id", self.consent_id),
            ("event_category", self.event_category),
            ("event_reference", self.event_reference),
            ("flight", self.flight),
        ];
        let after_index = [
            ("message_id", self.message_id),
            ("outcome", Some(self.outcome)),
            ("policies", self.policies),
            ("policy_digest", self.policy_digest),
            ("purpose", self.purpose),
            ("reason", self.reason),
            ("request_id", Some(self.request_id)),
            ("token_id", self.token_id),
            ("traveller_id", self.traveller_id),
        ];
        out.push(b'{');
        let mut first = true;
        write_strings(out, &before_index, &mut first);
        write_key(out, "index", &mut first);
        serde_json::to_writer(&mut *out, &self.index).expect("an integer serializes");
        write_strings(out, &after_index, &mut first);
        out.push(b'}');
    }
}

/// Writes `"key":"value"` for each field that is set, in the order given.
fn write_strings(out: &mut Vec<u8>, fields: &[(&str, Option<&[u8]>)], first: &mut bool) {
    for (key, value) in fields {
        if let Some(value) = value {
            write_key(out, key, first);
            write_string(out, value);
        }
    }
}

/// Writes `"key":`, after a comma unless it is the object's first.
fn write_key(out: &mut Vec<u8>, key: &str, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::canonical;

    /// The entry's canonical form through the general path: a JSON value, then RFC 8785.
    fn general(entry: &AuditEntry) -> Vec<u8> {
        canonical::to_vec(&serde_json::to_value(entry).unwrap())
    }

    fn entry(text: &str, some: bool) -> AuditEntry {
        let opt = |s: &str| some.then(|| format!("{s}{text}"));
        AuditEntry {
            index: if some { 9_007_199_254_740_991 } else { 0 },
            at: "2026-12-03T07:00:00.123Z".into(),
            request_id: format!("req{text}"),
            actor_kind: "airline".into(),
            actor_id: format!("air_{text}"),
            action: "token_request".into(),
            outcome: "granted".into(),
            reason: opt("r"),
            agency_id: opt("ag"),
            airline_id: opt("al"),
            booking_id: opt("b"),
            traveller_id: opt("t"),
            consent_id: opt("c"),
            token_id: opt("tk"),
            purpose: opt("p"),
            event_category: opt("ec"),
            event_reference: opt("er"),
            flight: opt("f"),
            message_id: opt("m"),
            channel: opt("ch"),
            policies: opt("po"),
            policy_digest: opt("pd"),
        }
    }

    #[test]
    fn the_written_form_is_the_canonical_form_of_the_api_object() {
        let awkward = [
            "",
            "plain",
            "quote\" and back\\slash",
            "controls \u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}",
            "slash / é 航 \u{1F600} \u{FB33}",
        ];
        for text in awkward {
            for some in [true, false] {
                let e = entry(text, some);
                let mut written = Vec::new();
                e.write_canonical(&mut written);
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(general(&e)).unwrap(),
                    "for {text:?}, optional fields {}",
                    if some { "set" } else { "unset" }
                );
            }
        }
    }

    #[test]
    fn the_leaf_hash_is_sha256_of_zero_then_the_canonical_form() {
        let e = entry("x", true);
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(&general(&e));
        assert_eq!(e.leaf_hash(), sha256(&bytes));
    }
}
