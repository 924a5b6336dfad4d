//! A record's contact (or refusal) as the SSR lines of a GDS, so that the agency can
//! key into its PNR exactly what the traveller agreed to (the API's
//! `GET /v1/consents/{id}/ssr`).

use crate::domain::contact::{EmailAddress, MobileNumber};
use crate::domain::language::Language;
use crate::domain::party::Party;
use crate::domain::scope::ConsentState;
use crate::domain::ssr::{self, ContactElement, ContactValue, Gds};
use crate::service::records::own_record;
use crate::service::sealed::open_contacts;
use crate::service::{AppState, Error, ErrorKind};
use serde::Deserialize;

/// Query of the SSR rendering.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrQuery {
    /// amadeus, sabre, travelport or travelsky.
    pub gds: Gds,
    /// The passenger association in that GDS's form (`P1`, `1.1`).
    pub passenger: Option<String>,
    /// The preferred language to append (`fr`).
    pub language: Option<Language>,
}

/// Renders the record's contact (or refusal) as the SSR lines of a GDS, so that the
/// agency can key into its PNR exactly what the traveller agreed to.
pub async fn export_ssr(
    state: &AppState,
    agency: &Party,
    id: String,
    query: SsrQuery,
) -> Result<String, Error> {
    if let Some(p) = &query.passenger {
        let ok =
            (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        if !ok {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "passenger",
                "must be a passenger association such as P1 or 1.1",
            ));
        }
    }
    let mut conn = state.store.reader().acquire().await?;
    let row = own_record(&mut conn, &agency.id, &id).await?;
    let now = state.clock.now();
    let state_now = row.state(now);
    let values = match state_now {
        ConsentState::Refused => vec![ContactValue::Refused],
        ConsentState::Given => {
            let sealed = crate::store::sealed::sealed(&mut conn, &row.id).await?;
            let contacts = open_contacts(state, &row.id, &sealed)?
                .ok_or_else(|| Error::of(ErrorKind::ContactPurged))?;
            let mut values = Vec::new();
            if let Some(m) = contacts.mobile {
                values.push(ContactValue::Mobile(
                    MobileNumber::parse(&m).map_err(Error::internal)?,
                ));
            }
            if let Some(e) = contacts.email {
                values.push(ContactValue::Email(
                    EmailAddress::parse(&e).map_err(Error::internal)?,
                ));
            }
            values
        }
        other => {
            return Err(Error::new(
                ErrorKind::ConsentInactive,
                format!(
                    "The record is {}; only a current consent or refusal renders as SSR.",
                    other.as_str()
                ),
            ))
        }
    };
    let mut lines = String::new();
    for value in values {
        let element = ContactElement {
            value,
            language: query.language.clone(),
            passenger: query.passenger.clone(),
            carrier: None,
        };
        let line = ssr::render(query.gds, &element).map_err(|reason| {
            Error::new(
                ErrorKind::InvalidField,
                format!("The contact cannot be written as SSR: {reason}."),
            )
        })?;
        lines.push_str(&line);
        lines.push('\n');
    }
    Ok(lines)
}
