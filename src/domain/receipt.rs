//! The consent receipt the broker countersigns: Kantara Consent Receipt v1.1 in shape,
//! with Passerelle's own facts under `passerelle`.
//!
//! The receipt holds no contact value and no name: the traveller is their
//! pseudonymous id. What binds it to the traveller's withdrawal code is the code's
//! SHA-256; the code itself is handed to the agency once, beside the receipt.

use super::booking::CarrierCode;
use super::consent::{ConsentStatement, DataCategory, Decision};
use super::purpose::Purpose;
use crate::domain::time::format_time;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The Kantara specification version the receipt follows.
pub const KANTARA_VERSION: &str = "KI-CR-v1.1.0";

/// What the broker knows of a record when it issues the receipt.
pub struct ReceiptFacts<'a> {
    /// The broker's id of the record.
    pub consent_id: &'a str,
    /// The record's version among those sharing its agency record id.
    pub version: i64,
    /// Ids of the records it replaced.
    pub supersedes: &'a [String],
    /// The traveller's pseudonymous id.
    pub traveller_id: &'a str,
    /// The agency's display name and IATA number.
    pub agency_name: &'a str,
    /// The signed statement.
    pub statement: &'a ConsentStatement,
    /// The carriers, with `itinerary` resolved.
    pub carriers: &'a [CarrierCode],
    /// The agency's key id and its detached JWS.
    pub agency_key_id: &'a str,
    /// SHA-256 (hex) of the canonical statement the agency signed.
    pub statement_sha256: &'a str,
    /// SHA-256 (hex) of the withdrawal code, if a code was issued (not for refusals).
    pub withdrawal_code_sha256: Option<&'a str>,
    /// Where and how to withdraw.
    pub withdrawal_url: &'a str,
    /// The traveller's page, where the withdrawal code is typed (`…/t`).
    pub traveller_page: &'a str,
    /// Days kept after the trip ends.
    pub retention_days: u32,
    /// When the contact will be destroyed.
    pub purge_after: OffsetDateTime,
    /// When the broker recorded it.
    pub recorded_at: OffsetDateTime,
}

/// Builds the receipt.
pub fn build(facts: &ReceiptFacts<'_>) -> Value {
    let statement = facts.statement;
    let terms = &statement.consent;
    let categories: Vec<&str> = terms.data_categories.iter().map(|c| c.as_str()).collect();
    let carriers: Vec<&str> = facts.carriers.iter().map(|c| c.as_str()).collect();
    let given = statement.decision == Decision::Given;
    let purposes: Vec<Value> = terms
        .purposes
        .iter()
        .map(|p: &Purpose| {
            json!({
                "purpose": p.description(),
                "purposeId": p.as_str(),
                "purposeCategory": [p.dpv_term(), Purpose::DPV_CONTEXT],
                "consentType": "EXPLICIT",
                "piiCategory": categories,
                "primaryPurpose": true,
                "termination": "At the end of validity, on withdrawal, or when the contact is purged after the trip",
                "thirdPartyDisclosure": given,
                "thirdPartyName": carriers.join(", "),
            })
        })
        .collect();
    let mut passerelle = json!({
        "decision": statement.decision.as_str(),
        "schemaVersion": statement.schema_version.as_str(),
        "recordId": statement.record_id.as_str(),
        "recordVersion": facts.version,
        "supersedes": facts.supersedes,
        "recipients": carriers,
        "recipientsRule": match terms.recipients {
            super::consent::Recipients::Itinerary => "itinerary",
            super::consent::Recipients::Carriers(_) => "named",
        },
        "dataCategories": terms.data_categories.iter().map(|c: &DataCategory| json!({
            "category": c.as_str(), "dpvTerm": c.dpv_term()
        })).collect::<Vec<_>>(),
        "notice": {
            "version": terms.notice.version.as_str(),
            "language": terms.notice.language.as_str(),
            "sha256": terms.notice.sha256.as_str(),
        },
        "validUntil": terms.valid_until.map(format_time),
        "retentionPeriod": format!("P{}D after the last flight of the booking", facts.retention_days),
        "purgeAfter": format_time(facts.purge_after),
        "storageLocation": "Passerelle broker, contacts sealed per record (AES-256-GCM)",
        "lawfulBasis": "GDPR art. 6(1)(a) consent; IATA Resolution 830d operational use only",
        "agencySignature": {
            "keyId": facts.agency_key_id,
            "alg": "EdDSA",
            "statementSha256": facts.statement_sha256,
        },
        "recordedAt": format_time(facts.recorded_at),
    });
    if let Some(code_hash) = facts.withdrawal_code_sha256 {
        passerelle["withdrawal"] = json!({
            "method": "Open `page` and type the withdrawal code there to see every use of the contact and withdraw in one step, \
                       or send the code to `url` (no account needed), or ask the agency",
            "page": facts.traveller_page,
            "url": facts.withdrawal_url,
            "codeSha256": code_hash,
        });
    }
    json!({
        "version": KANTARA_VERSION,
        "jurisdiction": statement.jurisdiction.as_str(),
        "consentTimestamp": terms.collected_at.unix_timestamp(),
        "collectionMethod": terms.collection_method.as_str(),
        "consentReceiptID": facts.consent_id,
        "language": terms.notice.language.as_str(),
        "piiPrincipalId": facts.traveller_id,
        "piiControllers": [{
            "piiController": facts.agency_name,
            "iataAgencyNumber": statement.agency.as_str(),
            "onBehalf": false,
        }],
        "policyUrl": format!("urn:passerelle:notice:{}:{}", terms.notice.version.as_str(), terms.notice.sha256.as_str()),
        "services": [{
            "service": "Operational notifications of flight disruptions (IATA Resolution 830d)",
            "purposes": purposes,
        }],
        "sensitive": false,
        "spiCat": [],
        "passerelle": passerelle,
    })
}
