//! The policy set split in two for a question put about many travellers (a flight's
//! grant): the policies whose answer cannot depend on which traveller is asked about,
//! evaluated once per question, and the others, evaluated for each traveller.
//!
//! Cedar evaluates every policy of the set for every request, set literals included
//! (`["schedule_change", "delay", …].contains(context.purpose)` builds its set each
//! time): for a flight of 400 that was 400 evaluations of policies whose answer was
//! the same for all. Cedar's policies are independent of each other (the decision is
//! "some permit holds and no forbid holds", errors skip the policy), so the outcomes
//! of two passes over disjoint halves of the set combine into exactly the outcome of
//! one pass over the whole (see [`Outcome::and`]); the tests of `policy::engine` hold that
//! equivalence on the shipped policies.

use cedar_policy::{Authorizer, Decision, Entities, PolicyId, PolicySet, Request};
use serde_json::Value;

/// Whether a policy's answer may depend on which resource (traveller) is asked about:
/// its resource scope names more than a type (`resource == …`, `resource in …`), or
/// its conditions read `resource`. A policy Cedar cannot describe is taken as
/// depending on it.
pub(super) fn reads_the_resource(policy: &cedar_policy::Policy) -> bool {
    let Ok(json) = policy.to_json() else {
        return true;
    };
    let scope_only_by_type = match json["resource"]["op"].as_str() {
        Some("All") => true,
        Some("is") => json["resource"].get("in").is_none(),
        _ => false,
    };
    !scope_only_by_type || names_resource(&json["conditions"])
}

/// Whether a policy's JSON form (conditions) names the `resource` variable anywhere.
fn names_resource(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.iter().any(|(key, value)| {
            (key == "Var" && value.as_str() == Some("resource")) || names_resource(value)
        }),
        Value::Array(items) => items.iter().any(names_resource),
        _ => false,
    }
}

/// Splits a set into (the policies about the question, those about each traveller).
pub(super) fn split(set: &PolicySet) -> Result<(PolicySet, PolicySet), String> {
    let (about_traveller, about_question): (Vec<_>, Vec<_>) =
        set.policies().cloned().partition(reads_the_resource);
    let question = PolicySet::from_policies(about_question).map_err(|e| e.to_string())?;
    let traveller = PolicySet::from_policies(about_traveller).map_err(|e| e.to_string())?;
    Ok((question, traveller))
}

/// What one pass of Cedar found: the permits and forbids that held, as far as they
/// can matter, and the policies that failed to evaluate.
#[derive(Debug, Clone, Default)]
pub(super) struct Outcome {
    /// Permits that held (known only when no forbid held: a holding forbid decides).
    pub permits: Vec<PolicyId>,
    /// Forbids that held.
    pub forbids: Vec<PolicyId>,
    /// Policies that failed to evaluate.
    pub failing: Vec<PolicyId>,
}

impl Outcome {
    /// Asks Cedar about `set`; each evaluation error is logged.
    pub fn of(set: &PolicySet, request: &Request, entities: &Entities) -> Self {
        let response = Authorizer::new().is_authorized(request, set, entities);
        let mut outcome = Outcome::default();
        for error in response.diagnostics().errors() {
            tracing::error!(%error, "a release policy failed to evaluate; the request is refused");
            let cedar_policy::AuthorizationError::PolicyEvaluationError(failure) = error;
            outcome.failing.push(failure.policy_id().clone());
        }
        // Cedar's reasons: the permits that held when it allows, the forbids that held
        // when it denies (none when no permit held).
        let reasons = response.diagnostics().reason().cloned();
        match response.decision() {
            Decision::Allow => outcome.permits.extend(reasons),
            Decision::Deny => outcome.forbids.extend(reasons),
        }
        outcome
    }

    /// The outcome of one pass over both halves of a split set: what held in either.
    pub fn and(&self, other: &Outcome) -> Outcome {
        let joined = |a: &[PolicyId], b: &[PolicyId]| a.iter().chain(b).cloned().collect();
        Outcome {
            permits: joined(&self.permits, &other.permits),
            forbids: joined(&self.forbids, &other.forbids),
            failing: joined(&self.failing, &other.failing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn policy(text: &str) -> cedar_policy::Policy {
        cedar_policy::Policy::from_str(text).unwrap()
    }

    #[test]
    fn a_policy_reads_the_resource_when_its_scope_or_its_conditions_name_one() {
        for text in [
            r#"forbid (principal, action, resource is Passerelle::Traveller) when { resource.withdrawn };"#,
            r#"permit (principal, action, resource) unless { resource.consent == "none" };"#,
            r#"forbid (principal, action, resource == Passerelle::Traveller::"t1");"#,
            r#"forbid (principal, action, resource in Passerelle::Agency::"a1");"#,
            r#"forbid (principal, action, resource is Passerelle::Traveller in Passerelle::Agency::"a1");"#,
            r#"forbid (principal, action, resource) when { [resource].contains(principal) };"#,
        ] {
            assert!(reads_the_resource(&policy(text)), "{text}");
        }
    }

    #[test]
    fn a_policy_of_the_question_alone_does_not() {
        for text in [
            r#"forbid (principal, action, resource is Passerelle::Traveller) when { ["marketing"].contains(context.purpose) };"#,
            r#"permit (principal is Passerelle::Airline, action, resource) when { principal.designator == "AF" };"#,
            r#"forbid (principal, action, resource) when { context.disruption_state == "closed" };"#,
            // A string that only looks like the variable.
            r#"forbid (principal, action, resource) when { context.purpose == "resource" };"#,
        ] {
            assert!(!reads_the_resource(&policy(text)), "{text}");
        }
    }
}
