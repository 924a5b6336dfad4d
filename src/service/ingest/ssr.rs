//! `POST /v1/consents/ssr`: a PNR's contact elements as a GDS prints them, one record
//! per passenger, stored through the same run as any bulk upload.
//!
//! The import is checked whole before any passenger's statement is built from it
//! (at most 99 passengers, as in a PNR, a bounded number of element lines, a booking
//! and terms of the statement's types), since each statement repeats the booking and
//! the terms.

use super::report::BatchReport;
use super::run::Run;
use super::turns::Turn;
use super::{Submission, Uploader};
use crate::domain::booking::Booking;
use crate::domain::consent::{CollectionMethod, Jurisdiction, Notice, Recipients, SCHEMA_VERSION};
use crate::domain::party::Party;
use crate::domain::purpose::Purpose;
use crate::domain::ssr::{self, ContactValue, Gds};
use crate::service::input::parse_value;
use crate::service::{AppState, Error, ErrorKind};
use serde::Deserialize;
use serde_json::{json, Value};

/// The most passengers one PNR holds.
pub const MAX_PASSENGERS: usize = 99;
/// The most element lines one import may hold (three contact elements for each of
/// 99 passengers, and room for others the import ignores).
pub const MAX_ELEMENT_LINES: usize = 500;

/// A PNR's contact elements, with what the SSR lines do not say.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrImport {
    /// The GDS whose form the lines are in.
    pub gds: Gds,
    /// The booking: locator and segments.
    pub booking: Value,
    /// Whose law governs the consents.
    pub jurisdiction: Value,
    /// The terms shown to every passenger (purposes, recipients, notice, collection
    /// method, collected_at, valid_until); data categories follow from the elements.
    pub consent: serde_json::Map<String, Value>,
    /// The passengers of the PNR.
    pub passengers: Vec<SsrPassenger>,
    /// The SSR lines, as printed (one element per line).
    pub elements: String,
}

/// A passenger of the imported PNR.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrPassenger {
    /// The association the GDS uses for them (`P1`, `1.1`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Family name.
    pub surname: Value,
    /// Given name(s).
    pub given_name: Value,
    /// The agency's record id for this passenger's record.
    pub record_id: Value,
    /// The agency's detached JWS over the statement derived for this passenger; leave
    /// it out to get that statement back in the outcome, to sign.
    #[serde(default)]
    pub signature: Option<String>,
}

/// An import that has its turn (see `UploadTurns`): what the agency's upload page runs
/// too.
pub async fn import_in_turn(
    state: &AppState,
    turn: Turn,
    agency: &Party,
    request_id: &str,
    atomic: bool,
    import: SsrImport,
) -> Result<BatchReport, Error> {
    let uploader = Uploader::new(state, agency, request_id).await?;
    let iata = uploader.iata.as_str().to_string();
    let statements = ssr_statements(&import, &iata)?;
    drop(import);
    let mut run = Run::new(state, uploader, atomic);
    for (i, (statement, signature)) in statements.into_iter().enumerate() {
        if signature.is_none() {
            run.to_sign.insert(i, statement.clone());
        }
        run.push(Ok(Submission {
            statement,
            signature,
        }))?;
    }
    run.finish(None, turn).await
}

/// What an import must hold before any passenger's statement is built from it: at
/// most [`MAX_PASSENGERS`] passengers and [`MAX_ELEMENT_LINES`] element lines, and a
/// booking and terms of the statement's own types, so that what is copied into each
/// statement is known to be small.
fn check_import(import: &SsrImport) -> Result<(), Error> {
    if import.passengers.is_empty() {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "passengers",
            "must list at least one passenger",
        ));
    }
    if import.passengers.len() > MAX_PASSENGERS {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "passengers",
            format!("must list at most {MAX_PASSENGERS} passengers, as a PNR does"),
        ));
    }
    let lines = import
        .elements
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    if lines > MAX_ELEMENT_LINES {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "elements",
            format!("must hold at most {MAX_ELEMENT_LINES} element lines"),
        ));
    }
    let booking: Booking = parse_value(&import.booking, "booking")?;
    booking.check().map_err(|(field, reason)| {
        Error::field(ErrorKind::InvalidField, format!("booking.{field}"), reason)
    })?;
    let _: Jurisdiction = parse_value(&import.jurisdiction, "jurisdiction")?;
    let _: SsrTerms = parse_value(&Value::Object(import.consent.clone()), "consent")?;
    Ok(())
}

/// The terms an import gives every passenger: a consent's terms but for the data
/// categories, which follow from each passenger's elements.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SsrTerms {
    purposes: Vec<Purpose>,
    recipients: Recipients,
    notice: Notice,
    collection_method: CollectionMethod,
    #[serde(with = "time::serde::rfc3339")]
    collected_at: time::OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    valid_until: Option<time::OffsetDateTime>,
}

/// The statement for each passenger, built from their elements. A line that does not
/// parse, or names no known passenger, rejects the whole import: it is one PNR.
fn ssr_statements(import: &SsrImport, iata: &str) -> Result<Vec<(Value, Option<String>)>, Error> {
    check_import(import)?;
    let mut per_passenger: Vec<Vec<ssr::ContactElement>> =
        vec![Vec::new(); import.passengers.len()];
    for (n, line) in import.elements.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let field = format!("elements[{n}]");
        let element = ssr::parse_line(import.gds, line)
            .map_err(|reason| Error::field(ErrorKind::InvalidField, field.clone(), reason))?;
        let target = match &element.passenger {
            Some(reference) => import
                .passengers
                .iter()
                .position(|p| p.reference.eq_ignore_ascii_case(reference))
                .ok_or_else(|| {
                    Error::field(
                        ErrorKind::InvalidField,
                        field.clone(),
                        format!("names passenger `{reference}`, who is not in `passengers`"),
                    )
                })?,
            None if import.passengers.len() == 1 => 0,
            None => {
                return Err(Error::field(
                    ErrorKind::InvalidField,
                    field,
                    "has no passenger association, and the PNR has several passengers",
                ))
            }
        };
        per_passenger[target].push(element);
    }
    let mut out = Vec::new();
    for (i, (passenger, elements)) in import.passengers.iter().zip(per_passenger).enumerate() {
        let mut traveller =
            json!({"surname": passenger.surname, "given_name": passenger.given_name});
        let mut categories = Vec::new();
        let mut refused = false;
        for element in &elements {
            match &element.value {
                ContactValue::Mobile(m) => {
                    traveller["mobile"] = json!(m.as_str());
                    categories.push("mobile");
                }
                ContactValue::Email(e) => {
                    traveller["email"] = json!(e.as_str());
                    categories.push("email");
                }
                ContactValue::Refused => refused = true,
            }
            if let Some(language) = &element.language {
                traveller["language"] = json!(language.as_str());
            }
        }
        if refused && !categories.is_empty() {
            return Err(Error::field(
                ErrorKind::InvalidField,
                format!("passengers[{i}]"),
                "has both a CTCR refusal and a contact element",
            ));
        }
        if elements.is_empty() {
            return Err(Error::field(
                ErrorKind::InvalidField,
                format!("passengers[{i}]"),
                "has no CTCM, CTCE or CTCR element",
            ));
        }
        if refused {
            categories = vec!["mobile", "email"];
        }
        let mut consent = import.consent.clone();
        consent.insert("data_categories".into(), json!(categories));
        let statement = json!({
            "schema_version": SCHEMA_VERSION,
            "record_id": passenger.record_id,
            "agency": iata,
            "jurisdiction": import.jurisdiction,
            "booking": import.booking,
            "traveller": traveller,
            "decision": if refused { "refused" } else { "given" },
            "consent": consent,
        });
        out.push((statement, passenger.signature.clone()));
    }
    Ok(out)
}
