//! What an airline sets for itself: the domains its relayed messages may link to.
//!
//! A relayed message reaches travellers under the broker's sender, so a link in it is
//! trusted like the broker. An airline registers the domains it links to (its own
//! sites); a message linking anywhere else is refused. Every change is audited.

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::links::{LinkDomain, MAX_DOMAINS};
use crate::domain::party::Party;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::parties;
use serde::{Deserialize, Serialize};

/// The domains, as sent and as answered.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct LinkDomains {
    /// Domains such as `airfrance.fr`; each covers its subdomains. At most 20.
    pub domains: Vec<LinkDomain>,
}

/// The domains the airline's relayed messages may link to.
pub async fn link_domains(state: &AppState, airline: &Party) -> Result<LinkDomains, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let domains = parties::link_domains(&mut conn, &airline.id).await?;
    Ok(LinkDomains { domains })
}

/// Replaces the list (an empty one allows no link), audited.
pub async fn set_link_domains(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    mut body: LinkDomains,
) -> Result<LinkDomains, Error> {
    if body.domains.len() > MAX_DOMAINS {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "domains",
            format!("must list at most {MAX_DOMAINS} domains"),
        ));
    }
    body.domains.sort();
    body.domains.dedup();
    let mut tx = state.store.begin().await?;
    parties::set_link_domains(&mut tx, &airline.id, &body.domains).await?;
    let entry = NewEntry::new(
        state.clock.now(),
        request_id,
        airline,
        Action::SettingsChange,
        Outcome::Changed,
    )
    .airline(airline.id.clone())
    .because("link_domains_changed");
    state.commit_with_audit(tx, entry).await?;
    Ok(body)
}
