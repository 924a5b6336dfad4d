//! The release policies in force, for compliance officers: the
//! Cedar files as loaded, each policy with its id, effect and refusal reason, the
//! tunables, and the digest that audit entries carry.

use crate::domain::party::Party;
use crate::domain::party::PartyKind;
use crate::policy::engine::{PolicyFile, PolicySummary};
use crate::policy::tunables::Tunables;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use serde::Serialize;

/// The policies in force.
#[derive(Serialize)]
pub struct PoliciesInForce {
    /// SHA-256 of the files, as `policy_digest` in audit entries.
    pub digest: String,
    /// `built-in` or the directory they were loaded from.
    pub source: String,
    /// Each policy, in file order.
    pub policies: Vec<PolicySummary>,
    /// The tunables.
    pub tunables: Tunables,
    /// The files, verbatim.
    pub files: Vec<PolicyFile>,
}

/// The policies in force, verbatim, for an officer.
pub async fn read(state: &AppState, officer: &Party) -> Result<PoliciesInForce, Error> {
    let policies = &state.settings.policies;
    let verdict = policies.may_read(PartyKind::Officer, &officer.id, "read_policies");
    if !verdict.allowed() {
        return Err(Error::of(ErrorKind::NotPermitted).with_rule(verdict.policy_list()));
    }
    Ok(PoliciesInForce {
        digest: policies.digest().to_string(),
        source: policies.source().to_string(),
        policies: policies.summaries().to_vec(),
        tunables: policies.tunables.clone(),
        files: policies.files().to_vec(),
    })
}
