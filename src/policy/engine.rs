//! The release policies as data: the Cedar policy set in `policies/`, checked against
//! its schema, and the tunables beside it.
//!
//! The broker asks Cedar every release question (may this airline have tokens for this
//! flight; may it have this traveller's token; may it redeem it or relay a message under
//! it) with entities built from what the store found. The answer carries the ids of
//! the policies that decided it, which go into the audit entry; a refusal's reason code
//! is the `@reason` of the first deciding `forbid` in file order.

use super::facts::{
    AirlineFacts, DisruptionFacts, ReleaseContext, TravellerAction, TravellerFacts, Verdict,
};
use super::split::{self, Outcome};
use super::tunables::{line_of, Tunables};
use super::Refusal;
use crate::crypto::sha256;
use crate::domain::ids::hex;
use cedar_policy::{
    Context, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use time::OffsetDateTime;

/// The schema's file name.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The policy set's file name.
pub const POLICY_FILE: &str = "release.cedar";
/// The tunables' file name.
pub const TUNABLES_FILE: &str = "tunables.toml";

/// The policies shipped in the binary: the repository's `policies/` at build time.
const BUILT_IN: [(&str, &str); 3] = [
    (
        SCHEMA_FILE,
        include_str!("../../policies/schema.cedarschema"),
    ),
    (POLICY_FILE, include_str!("../../policies/release.cedar")),
    (TUNABLES_FILE, include_str!("../../policies/tunables.toml")),
];

/// Why the policies could not be loaded: the file, the line when known, and what is
/// wrong there.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    /// The file at fault, as given.
    pub file: String,
    /// The 1-based line, when the error points at one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// One file of the policy set, as loaded.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFile {
    /// Its name in `policies/`.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// One policy of the set, for readers.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    /// Its `@id`.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// The reason code a `forbid` refuses with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The line of `release.cedar` where it starts.
    pub line: usize,
}

/// The loaded, validated policy set and its tunables.
pub struct Policies {
    schema: Schema,
    /// The actions the schema declares, with the groups they belong to: what an
    /// `action in …` condition is evaluated against.
    actions: Entities,
    set: PolicySet,
    /// The set's policies whose answer cannot depend on the traveller asked about,
    /// decided once per [`TravellerQuestion`] (see [`split`]).
    about_question: PolicySet,
    /// The others, decided for each traveller of a [`TravellerQuestion`].
    about_traveller: PolicySet,
    /// Forbid policies in file order, with their refusal.
    forbids: Vec<(PolicyId, Refusal)>,
    summaries: Vec<PolicySummary>,
    files: Vec<PolicyFile>,
    source: String,
    digest: String,
    /// The tunables.
    pub tunables: Tunables,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("source", &self.source)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// A far-away end for consents without one: Cedar datetimes need a value.
const NEVER: &str = "9999-12-31T23:59:59.000Z";

impl Policies {
    /// The policies built into the binary.
    pub fn built_in() -> Result<Self, PolicyError> {
        let files = BUILT_IN
            .iter()
            .map(|(name, text)| PolicyFile {
                name: (*name).to_string(),
                text: (*text).to_string(),
            })
            .collect();
        Self::from_files(files, "built-in".to_string(), |name| {
            format!("policies/{name}")
        })
    }

    /// The policies in `dir` (its `schema.cedarschema`, `release.cedar` and
    /// `tunables.toml`).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        for name in [SCHEMA_FILE, POLICY_FILE, TUNABLES_FILE] {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| PolicyError {
                file: path.display().to_string(),
                line: None,
                message: format!("cannot be read: {e}"),
            })?;
            files.push(PolicyFile {
                name: name.to_string(),
                text,
            });
        }
        let dir = dir.to_path_buf();
        Self::from_files(files, dir.display().to_string(), move |name| {
            PathBuf::from(&dir).join(name).display().to_string()
        })
    }

    /// Loads from `dir` when given, else the built-in set.
    pub fn load(dir: Option<&Path>) -> Result<Self, PolicyError> {
        match dir {
            Some(dir) => Self::from_dir(dir),
            None => Self::built_in(),
        }
    }

    fn from_files(
        files: Vec<PolicyFile>,
        source: String,
        path: impl Fn(&str) -> String,
    ) -> Result<Self, PolicyError> {
        let text = |name: &str| {
            files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.text.as_str())
                .unwrap_or_default()
        };
        let fail = |name: &str, line: Option<usize>, message: String| PolicyError {
            file: path(name),
            line,
            message,
        };
        let schema_text = text(SCHEMA_FILE);
        let (schema, _warnings) = Schema::from_cedarschema_str(schema_text)
            .map_err(|e| fail(SCHEMA_FILE, first_line(&e, schema_text), e.to_string()))?;
        let policy_text = text(POLICY_FILE);
        let parsed = PolicySet::from_str(policy_text)
            .map_err(|e| fail(POLICY_FILE, first_line(&e, policy_text), describe(&e)))?;
        let validation = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
        if let Some(error) = validation.validation_errors().next() {
            return Err(fail(
                POLICY_FILE,
                first_line(error, policy_text),
                describe(error),
            ));
        }
        let (set, forbids, summaries) =
            name_policies(&parsed, policy_text).map_err(|(line, m)| fail(POLICY_FILE, line, m))?;
        let (about_question, about_traveller) =
            split::split(&set).map_err(|m| fail(POLICY_FILE, None, m))?;
        let tunables_text = text(TUNABLES_FILE);
        let tunables = Tunables::parse(tunables_text)
            .map_err(|(line, message)| fail(TUNABLES_FILE, line, message))?;
        let mut digest_input = Vec::new();
        for file in &files {
            digest_input.extend_from_slice(file.name.as_bytes());
            digest_input.push(0);
            digest_input.extend_from_slice(file.text.as_bytes());
            digest_input.push(0);
        }
        let actions = schema
            .action_entities()
            .map_err(|e| fail(SCHEMA_FILE, None, e.to_string()))?;
        let policies = Self {
            schema,
            actions,
            set,
            about_question,
            about_traveller,
            forbids,
            summaries,
            digest: hex(&sha256(&digest_input)),
            files,
            source,
            tunables,
        };
        policies.facts_fit().map_err(|e| {
            fail(
                SCHEMA_FILE,
                None,
                format!("the facts the broker decides on do not fit this schema: {e}"),
            )
        })?;
        Ok(policies)
    }

    /// SHA-256 over the three files: which version of the policies decided.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Where they were loaded from (`built-in` or a directory).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The files, for officers to read.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }
    /// The policies, in file order.
    pub fn summaries(&self) -> &[PolicySummary] {
        &self.summaries
    }

    /// May `airline` ask for tokens for a whole flight?
    pub fn decide_flight(
        &self,
        airline: &AirlineFacts<'_>,
        carrier: &str,
        number: &str,
        date: &str,
        context: &ReleaseContext<'_>,
    ) -> Verdict {
        let (flight, entity) = flight_entity(carrier, number, date);
        self.decide(airline, "request_tokens", flight, entity, context)
    }

    /// May `airline` be granted a token for this traveller, redeem it, or relay
    /// under it?
    pub fn decide_traveller(
        &self,
        airline: &AirlineFacts<'_>,
        action: TravellerAction,
        traveller: &TravellerFacts<'_>,
        context: &ReleaseContext<'_>,
    ) -> Verdict {
        let (resource, entity) = traveller_entity(traveller);
        self.decide(airline, action.name(), resource, entity, context)
    }

    /// The same question about many travellers (a flight's): the airline, the action
    /// and the context are built for Cedar once, the policies that cannot depend on
    /// the traveller are decided once, and each decision adds only its traveller and
    /// the policies about it. For a flight of 400 on the shipped policies that is
    /// 10 policies a traveller instead of 16, without the permit's set literals.
    pub fn traveller_question(
        &self,
        airline: &AirlineFacts<'_>,
        action: TravellerAction,
        context: &ReleaseContext<'_>,
    ) -> TravellerQuestion<'_> {
        let asked = (|| {
            let principal = uid("Airline", airline.id);
            let airline_entity = Entity::new(
                principal.clone(),
                HashMap::from([("designator".into(), string(airline.designator))]),
                HashSet::new(),
            )
            .map_err(|e| e.to_string())?;
            let known = self
                .actions
                .clone()
                .add_entities([airline_entity], None)
                .map_err(|e| e.to_string())?;
            let context = question_context(context)?;
            let action = uid_action(action.name());
            // Whatever the traveller: these policies read only the question, and the
            // resource's type, which is that of every traveller.
            let anyone = Request::new(
                principal.clone(),
                action.clone(),
                uid("Traveller", ""),
                context.clone(),
                None,
            )
            .map_err(|e| e.to_string())?;
            let about_question = Outcome::of(&self.about_question, &anyone, &known);
            Ok(Asked {
                principal,
                action,
                known,
                context,
                about_question,
            })
        })();
        TravellerQuestion {
            policies: self,
            asked,
        }
    }

    /// May a party of `kind` do a read action on the broker (`read_policies`,
    /// `read_receipts`)?
    pub fn may_read(
        &self,
        kind: crate::domain::party::PartyKind,
        id: &str,
        action: &str,
    ) -> Verdict {
        use crate::domain::party::PartyKind;
        let principal = match kind {
            PartyKind::Agency => uid("Agency", id),
            PartyKind::Airline => uid("Airline", id),
            PartyKind::Officer => uid("Officer", id),
        };
        let broker = uid("Broker", "passerelle");
        let request = Request::new(
            principal,
            uid_action(action),
            broker,
            Context::empty(),
            None,
        )
        .expect("a request without a schema check always builds");
        // Principal attributes are not read by these rules; the actions are, by an
        // `action in` a group.
        self.verdict(request, self.actions.clone())
    }

    fn decide(
        &self,
        airline: &AirlineFacts<'_>,
        action: &str,
        resource: EntityUid,
        resource_entity: Result<Entity, cedar_policy::EntityAttrEvaluationError>,
        context: &ReleaseContext<'_>,
    ) -> Verdict {
        match question(
            airline,
            action,
            resource,
            resource_entity,
            context,
            Known::Actions(&self.actions),
        ) {
            Ok((request, entities)) => self.verdict(request, entities),
            Err(error) => {
                // The broker built facts Cedar rejects: a bug, refused safely.
                tracing::error!(%error, "release question could not be built");
                Verdict {
                    refusal: Some(Refusal::NotPermitted),
                    policies: Vec::new(),
                }
            }
        }
    }

    /// Whether the facts the broker builds fit this schema, for every question it
    /// asks. Checked once, when the policies are loaded: each decision then builds its
    /// question without checking it against the schema again (a sixth of a decision's
    /// time, measured on a 400-traveller flight). A schema the facts do not fit is
    /// refused at load; were a decision's facts to differ anyway, a policy reading them
    /// fails to evaluate, and that refuses (see [`Self::verdict`]).
    fn facts_fit(&self) -> Result<(), String> {
        let airline = AirlineFacts {
            id: "pty_airline",
            designator: "AF",
        };
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let disruption = DisruptionFacts {
            state: "open",
            declared_at: now,
            occurred_at: now,
        };
        let grant = ReleaseContext {
            purpose: "operational_notification",
            event_category: "cancellation",
            now,
            disruption: Some(disruption),
        };
        let release = ReleaseContext {
            disruption: None,
            ..grant
        };
        let (flight, entity) = flight_entity("AF", "AF1234", "2026-12-01");
        question(
            &airline,
            "request_tokens",
            flight,
            entity,
            &grant,
            Known::Schema(&self.schema),
        )?;
        for valid_until in [None, Some(now)] {
            let traveller = TravellerFacts {
                id: "trv_sample",
                agency_id: "pty_agency",
                carriers: vec!["AF".into()],
                booked_at: now,
                travel_ends: now,
                consent: "given",
                withdrawn: false,
                superseded: false,
                consent_valid_until: valid_until,
                consent_carriers: vec!["AF".into()],
                consent_purposes: vec!["operational_notification".into()],
            };
            for action in [
                TravellerAction::GrantToken,
                TravellerAction::RedeemToken,
                TravellerAction::RelayMessage,
            ] {
                let (resource, entity) = traveller_entity(&traveller);
                let context = match action {
                    TravellerAction::GrantToken => &grant,
                    _ => &release,
                };
                question(
                    &airline,
                    action.name(),
                    resource,
                    entity,
                    context,
                    Known::Schema(&self.schema),
                )?;
            }
        }
        Ok(())
    }

    /// Asks Cedar and reads its answer. A policy that fails to evaluate is skipped by
    /// Cedar, which for a `forbid` would let through what it exists to stop: so any
    /// evaluation error denies (failing closed), naming the policies that failed.
    fn verdict(&self, request: Request, entities: Entities) -> Verdict {
        self.verdict_of(&Outcome::of(&self.set, &request, &entities))
    }

    /// The verdict of what Cedar found: refused when a policy failed or a forbid held
    /// (the first in file order names the refusal), allowed when a permit held,
    /// refused as `not_permitted` otherwise.
    fn verdict_of(&self, outcome: &Outcome) -> Verdict {
        if !outcome.failing.is_empty() {
            return Verdict {
                refusal: Some(Refusal::NotPermitted),
                policies: self.in_file_order(&outcome.failing),
            };
        }
        if !outcome.forbids.is_empty() {
            let refusal = self
                .forbids
                .iter()
                .find(|(id, _)| outcome.forbids.contains(id))
                .map_or(Refusal::NotPermitted, |(_, refusal)| *refusal);
            return Verdict {
                refusal: Some(refusal),
                policies: self.in_file_order(&outcome.forbids),
            };
        }
        Verdict {
            refusal: (outcome.permits.is_empty()).then_some(Refusal::NotPermitted),
            policies: self.in_file_order(&outcome.permits),
        }
    }

    fn in_file_order(&self, ids: &[PolicyId]) -> Vec<String> {
        self.summaries
            .iter()
            .filter(|s| ids.iter().any(|id| id.as_ref() as &str == s.id))
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Renames each policy to its `@id`, and checks the conventions: every policy has a
/// unique `@id`, every forbid a known `@reason`.
#[allow(clippy::type_complexity)]
fn name_policies(
    parsed: &PolicySet,
    text: &str,
) -> Result<(PolicySet, Vec<(PolicyId, Refusal)>, Vec<PolicySummary>), (Option<usize>, String)> {
    // `from_str` numbers policies policy0, policy1, … in file order.
    let mut in_order: Vec<_> = parsed.policies().collect();
    in_order.sort_by_key(|p| {
        let id: &str = p.id().as_ref();
        id.trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut renamed = Vec::new();
    let mut forbids = Vec::new();
    let mut summaries = Vec::new();
    let mut search_from = 0;
    for policy in in_order {
        let Some(name) = policy.annotation("id") else {
            let line = line_of(text, search_from);
            return Err((
                Some(line),
                "every policy needs an @id(\"…\") annotation".into(),
            ));
        };
        let marker = format!("@id(\"{name}\")");
        let at = text[search_from..].find(&marker).map(|i| i + search_from);
        let line = at.map(|at| line_of(text, at)).unwrap_or(0);
        if let Some(at) = at {
            search_from = at + marker.len();
        }
        if summaries.iter().any(|s: &PolicySummary| s.id == name) {
            return Err((Some(line), format!("the @id \"{name}\" is used twice")));
        }
        let id = PolicyId::new(name);
        let reason = policy.annotation("reason").map(str::to_string);
        let effect = match policy.effect() {
            Effect::Permit => "permit",
            Effect::Forbid => {
                let Some(reason) = reason.as_deref() else {
                    return Err((
                        Some(line),
                        format!("the forbid \"{name}\" needs a @reason(\"…\") annotation"),
                    ));
                };
                let Some(refusal) = Refusal::from_reason(reason) else {
                    return Err((
                        Some(line),
                        format!(
                            "the forbid \"{name}\" has an unknown @reason \"{reason}\"; known reasons: {}",
                            Refusal::POLICY_REASONS.join(", ")
                        ),
                    ));
                };
                forbids.push((id.clone(), refusal));
                "forbid"
            }
        };
        summaries.push(PolicySummary {
            id: name.to_string(),
            effect,
            reason,
            line,
        });
        renamed.push(policy.new_id(id));
    }
    let set = PolicySet::from_policies(renamed).map_err(|e| (None, e.to_string()))?;
    Ok((set, forbids, summaries))
}

/// The line of an error's first labelled span.
fn first_line(error: &dyn Diagnostic, text: &str) -> Option<usize> {
    let from_labels = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| line_of(text, label.offset()));
    from_labels.or_else(|| {
        error
            .related()
            .and_then(|mut related| related.next())
            .and_then(|inner| first_line(inner, text))
    })
}

/// An error's message with its help, on one line.
fn describe(error: &(impl Diagnostic + std::fmt::Display)) -> String {
    let mut message = error.to_string();
    if let Some(related) = error.related().and_then(|mut r| r.next()) {
        message = format!("{message}: {related}");
    }
    if let Some(help) = error.help() {
        message = format!("{message} ({help})");
    }
    message
}

/// The entity types the broker names, each parsed once: Cedar parses a type name with
/// its own grammar, whose lexer builds fresh regex state on every parse, and a decision
/// names four of them (the airline, the action, the traveller and their agency).
static TYPE_NAMES: std::sync::LazyLock<HashMap<&'static str, EntityTypeName>> =
    std::sync::LazyLock::new(|| {
        [
            "Agency",
            "Airline",
            "Officer",
            "Broker",
            "Action",
            "Flight",
            "Traveller",
        ]
        .into_iter()
        .map(|kind| {
            let name = EntityTypeName::from_str(&format!("Passerelle::{kind}"))
                .expect("entity type names are constants");
            (kind, name)
        })
        .collect()
    });

fn uid(kind: &str, id: &str) -> EntityUid {
    let kind = TYPE_NAMES
        .get(kind)
        .expect("the broker names only the types it lists")
        .clone();
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

fn uid_action(name: &str) -> EntityUid {
    uid("Action", name)
}

/// A flight as the policies see it.
fn flight_entity(
    carrier: &str,
    number: &str,
    date: &str,
) -> (
    EntityUid,
    Result<Entity, cedar_policy::EntityAttrEvaluationError>,
) {
    let flight = uid("Flight", &format!("{number}/{date}"));
    let entity = Entity::new(
        flight.clone(),
        HashMap::from([
            ("carrier".into(), string(carrier)),
            ("number".into(), string(number)),
            ("date".into(), string(date)),
        ]),
        HashSet::new(),
    );
    (flight, entity)
}

/// A traveller as the policies see them.
fn traveller_entity(
    traveller: &TravellerFacts<'_>,
) -> (
    EntityUid,
    Result<Entity, cedar_policy::EntityAttrEvaluationError>,
) {
    let resource = uid("Traveller", traveller.id);
    let valid_until = traveller
        .consent_valid_until
        .map(cedar_time)
        .unwrap_or_else(|| NEVER.to_string());
    let entity = Entity::new(
        resource.clone(),
        HashMap::from([
            (
                "agency".into(),
                RestrictedExpression::new_entity_uid(uid("Agency", traveller.agency_id)),
            ),
            ("carriers".into(), strings(&traveller.carriers)),
            ("booked_at".into(), datetime(traveller.booked_at)),
            ("travel_ends".into(), datetime(traveller.travel_ends)),
            ("consent".into(), string(traveller.consent)),
            (
                "withdrawn".into(),
                RestrictedExpression::new_bool(traveller.withdrawn),
            ),
            (
                "superseded".into(),
                RestrictedExpression::new_bool(traveller.superseded),
            ),
            ("consent_valid_until".into(), datetime_of(&valid_until)),
            (
                "consent_carriers".into(),
                strings(&traveller.consent_carriers),
            ),
            (
                "consent_purposes".into(),
                strings(&traveller.consent_purposes),
            ),
        ]),
        HashSet::new(),
    );
    (resource, entity)
}

/// What a question is built with.
#[derive(Clone, Copy)]
enum Known<'a> {
    /// The schema: the question is checked against it, and its actions are added.
    Schema(&'a Schema),
    /// Only the schema's actions, taken from it once, for a question not checked again.
    Actions(&'a Entities),
}

/// The question put to Cedar: the airline asking, the action, the resource and the
/// context, with the schema's actions (so that `action in` a group holds).
fn question(
    airline: &AirlineFacts<'_>,
    action: &str,
    resource: EntityUid,
    resource_entity: Result<Entity, cedar_policy::EntityAttrEvaluationError>,
    context: &ReleaseContext<'_>,
    known: Known<'_>,
) -> Result<(Request, Entities), String> {
    let principal = uid("Airline", airline.id);
    let airline_entity = Entity::new(
        principal.clone(),
        HashMap::from([("designator".into(), string(airline.designator))]),
        HashSet::new(),
    )
    .map_err(|e| e.to_string())?;
    let facts = [airline_entity, resource_entity.map_err(|e| e.to_string())?];
    let (entities, schema) = match known {
        Known::Schema(schema) => (Entities::from_entities(facts, Some(schema)), Some(schema)),
        Known::Actions(actions) => (actions.clone().add_entities(facts, None), None),
    };
    let entities = entities.map_err(|e| e.to_string())?;
    let context = question_context(context)?;
    let request = Request::new(principal, uid_action(action), resource, context, schema)
        .map_err(|e| e.to_string())?;
    Ok((request, entities))
}

/// A question's context: the purpose, the event, now, and a grant's disruption.
fn question_context(context: &ReleaseContext<'_>) -> Result<Context, String> {
    let mut pairs = vec![
        ("purpose".to_string(), string(context.purpose)),
        ("event_category".to_string(), string(context.event_category)),
        ("now".to_string(), datetime(context.now)),
    ];
    if let Some(disruption) = context.disruption {
        pairs.extend([
            ("disruption_state".to_string(), string(disruption.state)),
            (
                "disruption_declared_at".to_string(),
                datetime(disruption.declared_at),
            ),
            (
                "disruption_occurred_at".to_string(),
                datetime(disruption.occurred_at),
            ),
        ]);
    }
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}

/// A question about travellers, built once and asked of each (see
/// [`Policies::traveller_question`]).
pub struct TravellerQuestion<'p> {
    policies: &'p Policies,
    /// The question's parts, or why Cedar would not build them (a bug: every
    /// decision then refuses).
    asked: Result<Asked, String>,
}

/// The parts of a question every traveller shares.
struct Asked {
    principal: EntityUid,
    action: EntityUid,
    /// The schema's actions and the airline.
    known: Entities,
    context: Context,
    /// What the policies about the question found, the same for every traveller.
    about_question: Outcome,
}

impl TravellerQuestion<'_> {
    /// May the airline do the action for this traveller?
    pub fn decide(&self, traveller: &TravellerFacts<'_>) -> Verdict {
        let asked = self.asked.as_ref().map_err(String::clone);
        let built = asked.and_then(|asked| {
            let (resource, entity) = traveller_entity(traveller);
            let entity = entity.map_err(|e| e.to_string())?;
            let entities = asked
                .known
                .clone()
                .add_entities([entity], None)
                .map_err(|e| e.to_string())?;
            let request = Request::new(
                asked.principal.clone(),
                asked.action.clone(),
                resource,
                asked.context.clone(),
                None,
            )
            .map_err(|e| e.to_string())?;
            Ok((request, entities, &asked.about_question))
        });
        match built {
            Ok((request, entities, about_question)) => {
                let policies = self.policies;
                let about_traveller = Outcome::of(&policies.about_traveller, &request, &entities);
                policies.verdict_of(&about_question.and(&about_traveller))
            }
            Err(error) => {
                // The broker built facts Cedar rejects: a bug, refused safely.
                tracing::error!(%error, "release question could not be built");
                Verdict {
                    refusal: Some(Refusal::NotPermitted),
                    policies: Vec::new(),
                }
            }
        }
    }
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_string())
}

fn strings(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|v| string(v)))
}

/// A time as Cedar's `datetime()` reads it: always three fraction digits, in UTC.
fn cedar_time(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC time formats")
}

fn datetime(at: OffsetDateTime) -> RestrictedExpression {
    datetime_of(&cedar_time(at))
}

/// The name of Cedar's `datetime` constructor, parsed once.
static DATETIME: std::sync::LazyLock<cedar_policy_core::ast::Name> =
    std::sync::LazyLock::new(|| {
        cedar_policy_core::ast::Name::parse_unqualified_name("datetime")
            .expect("`datetime` is a Cedar identifier")
    });

/// `datetime("…")`: what [`RestrictedExpression::new_datetime`] builds, but with the
/// constructor's name parsed once. `new_datetime` parses the name `datetime` with
/// Cedar's grammar on every call, whose lexer builds fresh regex state each time: a
/// third of a decision's time, with four datetimes a question (held equal to
/// `new_datetime`'s expression by a unit test, so a Cedar upgrade that changes it is
/// seen).
fn datetime_of(text: &str) -> RestrictedExpression {
    use cedar_policy_core::ast::RestrictedExpr;
    RestrictedExpression::from(RestrictedExpr::call_extension_fn(
        DATETIME.clone(),
        [RestrictedExpr::val(text)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open disruption declared at `at`.
    fn open_since(at: OffsetDateTime) -> DisruptionFacts<'static> {
        DisruptionFacts {
            state: "open",
            declared_at: at,
            occurred_at: at,
        }
    }

    /// The built-in files, to change one.
    fn built_in_files() -> Vec<PolicyFile> {
        BUILT_IN
            .iter()
            .map(|(name, text)| PolicyFile {
                name: (*name).to_string(),
                text: (*text).to_string(),
            })
            .collect()
    }

    /// The built-in policies with one more `forbid` whose condition fails to evaluate
    /// (an integer overflow, which validation cannot see).
    fn with_failing_forbid() -> Policies {
        with_policy(
            "\n@id(\"overflowing-forbid\")\n@reason(\"not_permitted\")\n\
             forbid (principal, action == Passerelle::Action::\"request_tokens\", resource)\n\
             when { 9223372036854775807 + (if context.purpose == \"\" then 0 else 1) > 0 };\n",
        )
    }

    /// The built-in policies with `policy` added at the end of the file.
    fn with_policy(policy: &str) -> Policies {
        let mut files = built_in_files();
        let file = files.iter_mut().find(|f| f.name == POLICY_FILE).unwrap();
        file.text.push_str(policy);
        Policies::from_files(files, "test".into(), |n| n.to_string()).unwrap()
    }

    #[test]
    fn a_datetime_is_built_as_cedars_own_constructor_builds_it() {
        for text in ["2026-12-05T10:00:00.000Z", NEVER] {
            assert_eq!(datetime_of(text), RestrictedExpression::new_datetime(text));
        }
    }

    #[test]
    fn a_schema_the_brokers_facts_do_not_fit_is_refused_when_loaded() {
        let mut files = built_in_files();
        let schema = files.iter_mut().find(|f| f.name == SCHEMA_FILE).unwrap();
        // An attribute no policy reads, but one the broker does not supply.
        schema.text = schema
            .text
            .replace("consent: String,", "consent: String, loyalty_tier: String,");
        assert!(
            schema.text.contains("loyalty_tier"),
            "the schema was changed"
        );
        let error = Policies::from_files(files, "test".into(), |n| n.to_string())
            .expect_err("the facts do not fit");
        assert_eq!(error.file, SCHEMA_FILE);
        assert!(
            error.message.contains("do not fit this schema"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_forbid_on_a_group_of_actions_the_schema_declares_still_refuses() {
        let mut files = built_in_files();
        let schema = files.iter_mut().find(|f| f.name == SCHEMA_FILE).unwrap();
        schema.text = schema.text.replace(
            "action redeem_token, relay_message\n",
            "action contact_use;\n  action redeem_token, relay_message in [contact_use]\n",
        );
        assert!(
            schema.text.contains("in [contact_use]"),
            "the schema was changed"
        );
        let policy = files.iter_mut().find(|f| f.name == POLICY_FILE).unwrap();
        policy.text.push_str(
            "\n@id(\"no-contact-use\")\n@reason(\"not_permitted\")\n\
             forbid (principal, action in Passerelle::Action::\"contact_use\", resource);\n",
        );
        let policies = Policies::from_files(files, "test".into(), |n| n.to_string()).unwrap();
        let now = time::macros::datetime!(2026-11-24 10:15 UTC);
        let verdict = policies.decide_traveller(
            &AirlineFacts {
                id: "air_1",
                designator: "AF",
            },
            TravellerAction::RedeemToken,
            &TravellerFacts {
                id: "trv_1",
                agency_id: "agy_1",
                carriers: vec!["AF".into()],
                booked_at: now - time::Duration::days(10),
                travel_ends: now + time::Duration::days(3),
                consent: "given",
                withdrawn: false,
                superseded: false,
                consent_valid_until: None,
                consent_carriers: vec!["AF".into()],
                consent_purposes: vec!["cancellation".into()],
            },
            &ReleaseContext {
                purpose: "cancellation",
                event_category: "cancellation",
                now,
                disruption: None,
            },
        );
        assert_eq!(verdict.refusal, Some(Refusal::NotPermitted), "{verdict:?}");
        assert!(
            verdict.policies.contains(&"no-contact-use".to_string()),
            "the group's forbid decided: {verdict:?}"
        );
    }

    #[test]
    fn a_policy_that_fails_to_evaluate_denies_instead_of_being_skipped() {
        let policies = with_failing_forbid();
        let verdict = policies.decide_flight(
            &AirlineFacts {
                id: "air_1",
                designator: "AF",
            },
            "AF",
            "1234",
            "2026-12-01",
            &ReleaseContext {
                purpose: "delay",
                event_category: "delay",
                now: time::macros::datetime!(2026-11-24 10:15 UTC),
                disruption: Some(open_since(time::macros::datetime!(2026-11-24 10:15 UTC))),
            },
        );
        assert_eq!(verdict.refusal, Some(Refusal::NotPermitted), "{verdict:?}");
        assert!(
            verdict.policies.contains(&"overflowing-forbid".to_string()),
            "the failing policy is named: {verdict:?}"
        );
    }

    #[test]
    fn the_shipped_policies_split_into_those_about_the_question_and_those_about_the_traveller() {
        let policies = Policies::built_in().unwrap();
        let names = |set: &PolicySet| -> Vec<String> {
            let mut names: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
            names.sort();
            names
        };
        let question = names(&policies.about_question);
        let traveller = names(&policies.about_traveller);
        for id in [
            "airlines-operational-notifications",
            "no-marketing",
            "disruption-open",
        ] {
            assert!(question.contains(&id.to_string()), "{id} in {question:?}");
        }
        for id in [
            "release-window",
            "consent-exists",
            "consent-covers-carrier",
            "airline-carries-the-booking",
        ] {
            assert!(traveller.contains(&id.to_string()), "{id} in {traveller:?}");
        }
        assert_eq!(
            question.len() + traveller.len(),
            policies.summaries().len(),
            "each policy is in one half"
        );
    }

    /// Travellers whose facts pass and fail each of the shipped policies' tests, in
    /// many combinations (each of the 96 differs from the others).
    fn travellers_of_every_kind(now: OffsetDateTime) -> Vec<TravellerFacts<'static>> {
        let day = time::Duration::days(1);
        let mut all = Vec::new();
        for consent in ["given", "refused", "none"] {
            for flags in 0..32u8 {
                let on = |bit: u8| flags & (1 << bit) != 0;
                all.push(TravellerFacts {
                    id: "trv_1",
                    agency_id: "agy_1",
                    carriers: vec![if on(0) { "AF" } else { "KL" }.into()],
                    booked_at: if on(1) { now - day } else { now + day },
                    travel_ends: if on(2) { now + day } else { now - 10 * day },
                    consent,
                    withdrawn: !on(3),
                    superseded: !on(4),
                    consent_valid_until: [None, Some(now + day), Some(now - day)]
                        [usize::from(flags % 3)],
                    consent_carriers: vec![if flags % 5 == 0 { "KL" } else { "AF" }.into()],
                    consent_purposes: vec![if flags % 7 == 0 {
                        "delay"
                    } else {
                        "cancellation"
                    }
                    .into()],
                });
            }
        }
        all
    }

    #[test]
    fn a_flights_question_decides_every_traveller_as_the_whole_set_does() {
        let now = time::macros::datetime!(2026-11-24 10:15 UTC);
        let travellers = travellers_of_every_kind(now);
        let contexts = [
            ("cancellation", "cancellation", Some(open_since(now))),
            ("cancellation", "cancellation", None),
            ("marketing", "cancellation", Some(open_since(now))),
            ("delay", "marketing", Some(open_since(now))),
            (
                "cancellation",
                "cancellation",
                Some(DisruptionFacts {
                    state: "closed",
                    ..open_since(now)
                }),
            ),
        ];
        let airline = AirlineFacts {
            id: "air_1",
            designator: "AF",
        };
        let (mut allowed, mut refused) = (0, 0);
        for policies in [
            Policies::built_in().unwrap(),
            with_failing_traveller_forbid(),
        ] {
            for (purpose, event_category, disruption) in contexts {
                let context = ReleaseContext {
                    purpose,
                    event_category,
                    now,
                    disruption,
                };
                for action in [
                    TravellerAction::GrantToken,
                    TravellerAction::RedeemToken,
                    TravellerAction::RelayMessage,
                ] {
                    let question = policies.traveller_question(&airline, action, &context);
                    for traveller in &travellers {
                        let split = question.decide(traveller);
                        let whole =
                            policies.decide_traveller(&airline, action, traveller, &context);
                        assert_eq!(split, whole, "{purpose} {event_category} {action:?}");
                        if whole.allowed() {
                            allowed += 1;
                        } else {
                            refused += 1;
                        }
                    }
                }
            }
        }
        assert!(
            allowed > 0 && refused > allowed,
            "{allowed} allowed, {refused} refused"
        );
    }

    /// The built-in policies with a `forbid` about the traveller whose condition fails
    /// for some of them.
    fn with_failing_traveller_forbid() -> Policies {
        with_policy(
            "\n@id(\"overflowing-traveller-forbid\")\n@reason(\"not_permitted\")\n\
             forbid (principal, action, resource is Passerelle::Traveller)\n\
             when { 9223372036854775807 + (if resource.withdrawn then 1 else 0) > 0 };\n",
        )
    }

    #[test]
    fn times_reach_cedar_with_three_fraction_digits_whatever_the_milliseconds() {
        let at = time::macros::datetime!(2026-11-24 10:15:03.120 UTC);
        assert_eq!(cedar_time(at), "2026-11-24T10:15:03.120Z");
        let policies = Policies::built_in().unwrap();
        let verdict = policies.decide_flight(
            &AirlineFacts {
                id: "air_1",
                designator: "AF",
            },
            "AF",
            "AF1234",
            "2026-12-01",
            &ReleaseContext {
                purpose: "delay",
                event_category: "delay",
                now: at,
                disruption: Some(open_since(at)),
            },
        );
        assert!(verdict.allowed(), "{verdict:?}");
    }
}
