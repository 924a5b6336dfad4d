//! The release policies as shipped in `policies/`: a decision table in which every
//! policy has a case it allows and one it refuses, then the officer's read of the
//! policies over the API.

use crate::helpers::{assert_problem, TestApp, FLIGHT_DATE, START};
use passerelle::domain::party::PartyKind;
use passerelle::policy::engine::Policies;
use passerelle::policy::facts::{
    AirlineFacts, DisruptionFacts, ReleaseContext, TravellerAction, TravellerFacts, Verdict,
};
use passerelle::policy::Refusal;
use serde_json::Value;
use std::collections::BTreeSet;
use time::{Duration, OffsetDateTime};

const AF: AirlineFacts<'static> = AirlineFacts {
    id: "air_af",
    designator: "AF",
};

fn travel_ends() -> OffsetDateTime {
    let date = time::Date::parse(
        FLIGHT_DATE,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    (date + Duration::days(2)).midnight().assume_utc()
}

/// Marie: booked yesterday on AF and KL, consenting to AF's cancellation and delay
/// notices, with no end date.
fn marie() -> TravellerFacts<'static> {
    TravellerFacts {
        id: "trv_marie",
        agency_id: "agy_1",
        carriers: vec!["AF".into(), "KL".into()],
        booked_at: START - Duration::days(1),
        travel_ends: travel_ends(),
        consent: "given",
        withdrawn: false,
        superseded: false,
        consent_valid_until: None,
        consent_carriers: vec!["AF".into()],
        consent_purposes: vec!["cancellation".into(), "delay".into()],
    }
}

/// A grant's question: under an open disruption declared an hour before `now`.
fn asking(purpose: &'static str, now: OffsetDateTime) -> ReleaseContext<'static> {
    under(purpose, now, "open")
}

fn under(
    purpose: &'static str,
    now: OffsetDateTime,
    state: &'static str,
) -> ReleaseContext<'static> {
    ReleaseContext {
        purpose,
        event_category: "cancellation",
        now,
        disruption: Some(DisruptionFacts {
            state,
            declared_at: now - Duration::hours(1),
            occurred_at: now - Duration::hours(1),
        }),
    }
}

/// A use's question: a token's use carries no disruption (closing one revokes its
/// tokens).
fn using(purpose: &'static str, now: OffsetDateTime) -> ReleaseContext<'static> {
    ReleaseContext {
        disruption: None,
        ..asking(purpose, now)
    }
}

fn grant(policies: &Policies, t: &TravellerFacts<'_>, c: &ReleaseContext<'_>) -> Verdict {
    policies.decide_traveller(&AF, TravellerAction::GrantToken, t, c)
}

/// One row of the table: the policy, the verdict of its allowed case and of its
/// refused case, and the refusal expected.
struct Row {
    policy: &'static str,
    allowed: Verdict,
    refused: Verdict,
    reason: Option<Refusal>,
}

#[test]
fn every_shipped_policy_allows_one_case_and_refuses_another() {
    let p = Policies::built_in().expect("the shipped policies load");
    let now = START;
    let ok = || grant(&p, &marie(), &asking("cancellation", now));
    let with = |f: &dyn Fn(&mut TravellerFacts<'static>)| {
        let mut t = marie();
        f(&mut t);
        grant(&p, &t, &asking("cancellation", now))
    };
    let flight = |carrier: &str, purpose: &'static str| {
        p.decide_flight(&AF, carrier, "AF1234", FLIGHT_DATE, &asking(purpose, now))
    };
    let window_end = travel_ends() + Duration::hours(72);
    let rows = vec![
        Row {
            policy: "airlines-operational-notifications",
            allowed: ok(),
            // No permit covers an event category outside the operational list.
            refused: grant(
                &p,
                &marie(),
                &ReleaseContext {
                    event_category: "promotion",
                    ..asking("cancellation", now)
                },
            ),
            reason: Some(Refusal::NotPermitted),
        },
        Row {
            policy: "officers-read-policies",
            allowed: p.may_read(PartyKind::Officer, "off_1", "read_policies"),
            refused: p.may_read(PartyKind::Agency, "agy_1", "read_policies"),
            reason: Some(Refusal::NotPermitted),
        },
        Row {
            policy: "agencies-read-their-receipts",
            allowed: p.may_read(PartyKind::Agency, "agy_1", "read_receipts"),
            refused: p.may_read(PartyKind::Airline, "air_af", "read_receipts"),
            reason: Some(Refusal::NotPermitted),
        },
        Row {
            policy: "no-marketing",
            allowed: ok(),
            refused: grant(&p, &marie(), &asking("marketing", now)),
            reason: Some(Refusal::PurposeNotOperational),
        },
        Row {
            policy: "no-marketing-for-a-flight",
            allowed: flight("AF", "cancellation"),
            refused: flight("AF", "direct_marketing"),
            reason: Some(Refusal::PurposeNotOperational),
        },
        Row {
            policy: "airline-operates-the-flight",
            allowed: flight("AF", "cancellation"),
            refused: flight("KL", "cancellation"),
            reason: Some(Refusal::BookingNotFound),
        },
        Row {
            policy: "airline-carries-the-booking",
            allowed: ok(),
            refused: with(&|t| t.carriers = vec!["KL".into()]),
            reason: Some(Refusal::BookingNotFound),
        },
        Row {
            policy: "disruption-open",
            allowed: grant(&p, &marie(), &under("cancellation", now, "updated")),
            refused: grant(&p, &marie(), &under("cancellation", now, "closed")),
            reason: Some(Refusal::DisruptionClosed),
        },
        Row {
            policy: "release-window",
            allowed: grant(
                &p,
                &marie(),
                &asking("cancellation", window_end - Duration::hours(1)),
            ),
            refused: grant(
                &p,
                &marie(),
                &asking("cancellation", window_end + Duration::hours(1)),
            ),
            reason: Some(Refusal::OutsideReleaseWindow),
        },
        Row {
            policy: "consent-exists",
            allowed: ok(),
            refused: with(&|t| t.consent = "none"),
            reason: Some(Refusal::NoConsent),
        },
        Row {
            policy: "consent-not-refused",
            allowed: ok(),
            refused: with(&|t| t.consent = "refused"),
            reason: Some(Refusal::ConsentRefused),
        },
        Row {
            policy: "consent-not-withdrawn",
            allowed: ok(),
            refused: with(&|t| t.withdrawn = true),
            reason: Some(Refusal::ConsentWithdrawn),
        },
        Row {
            policy: "consent-covers-carrier",
            allowed: ok(),
            refused: with(&|t| t.consent_carriers = vec!["KL".into()]),
            reason: Some(Refusal::CarrierNotCovered),
        },
        Row {
            policy: "consent-covers-purpose",
            allowed: grant(&p, &marie(), &asking("delay", now)),
            refused: grant(&p, &marie(), &asking("gate_change", now)),
            reason: Some(Refusal::PurposeNotCovered),
        },
        Row {
            policy: "consent-current",
            allowed: ok(),
            refused: with(&|t| t.superseded = true),
            reason: Some(Refusal::ConsentSuperseded),
        },
        Row {
            policy: "consent-unexpired",
            allowed: with(&|t| t.consent_valid_until = Some(START + Duration::seconds(1))),
            refused: with(&|t| t.consent_valid_until = Some(START)),
            reason: Some(Refusal::ConsentExpired),
        },
    ];

    for row in &rows {
        assert!(
            row.allowed.allowed(),
            "{}: the allowed case was refused: {:?}",
            row.policy,
            row.allowed
        );
        assert_eq!(
            row.refused.refusal, row.reason,
            "{}: {:?}",
            row.policy, row.refused
        );
        let decided_by = if row.reason == Some(Refusal::NotPermitted) {
            // A refusal no permit covered is decided by no policy: the permit's
            // absence is the point, and the allowed case names it.
            assert!(row.refused.policies.is_empty(), "{}", row.policy);
            &row.allowed.policies
        } else {
            &row.refused.policies
        };
        assert!(
            decided_by.iter().any(|id| id == row.policy),
            "{} is not among the deciding policies {decided_by:?}",
            row.policy
        );
    }
    let covered: BTreeSet<&str> = rows.iter().map(|r| r.policy).collect();
    let shipped: BTreeSet<&str> = p.summaries().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(covered, shipped, "every shipped policy has its row");
}

#[test]
fn when_several_forbids_apply_the_first_in_the_file_names_the_reason_and_all_are_recorded() {
    let p = Policies::built_in().unwrap();
    let mut t = marie();
    t.consent = "refused";
    t.withdrawn = true;
    t.consent_carriers = vec![];
    let verdict = grant(&p, &t, &asking("cancellation", START));
    assert_eq!(verdict.refusal, Some(Refusal::ConsentRefused));
    assert_eq!(
        verdict.policies,
        [
            "consent-not-refused",
            "consent-not-withdrawn",
            "consent-covers-carrier"
        ]
    );
}

#[test]
fn redemption_and_relay_are_held_to_the_same_consent_rules() {
    let p = Policies::built_in().unwrap();
    let mut t = marie();
    t.withdrawn = true;
    for action in [TravellerAction::RedeemToken, TravellerAction::RelayMessage] {
        let verdict = p.decide_traveller(&AF, action, &t, &using("cancellation", START));
        assert_eq!(
            verdict.refusal,
            Some(Refusal::ConsentWithdrawn),
            "{action:?}"
        );
        let allowed = p.decide_traveller(&AF, action, &marie(), &using("cancellation", START));
        assert!(allowed.allowed(), "{action:?}");
    }
}

/// A copy of the shipped `policies/` in a temporary directory, to change.
fn shipped_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["schema.cedarschema", "release.cedar", "tunables.toml"] {
        let text =
            std::fs::read_to_string(format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_policy_that_breaks_the_schema_is_refused_with_its_file_and_line() {
    let dir = shipped_policies();
    let file = dir.path().join("release.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken_line = text
        .lines()
        .position(|l| l.contains("when { resource.withdrawn };"))
        .unwrap()
        + 1;
    std::fs::write(
        &file,
        text.replace("resource.withdrawn }", "resource.withdrawnn }"),
    )
    .unwrap();
    let error = Policies::from_dir(dir.path()).unwrap_err();
    assert_eq!(error.line, Some(broken_line), "{error}");
    assert!(error.to_string().contains("release.cedar"), "{error}");
    assert!(error.message.contains("withdrawnn"), "{error}");

    // A forbid without a reason the broker knows is refused too.
    std::fs::write(
        &file,
        text.replace("@reason(\"consent_withdrawn\")", "@reason(\"because\")"),
    )
    .unwrap();
    let error = Policies::from_dir(dir.path()).unwrap_err();
    assert!(
        error.message.contains("unknown @reason \"because\""),
        "{error}"
    );
}

async fn an_officer_reads_the_policies_in_force(app: TestApp) {
    let body: Value = app.get_json("/v1/policies", &app.officer.api_key).await;
    assert_eq!(body["source"], "built-in");
    assert_eq!(body["digest"].as_str().unwrap().len(), 64);
    let ids: Vec<&str> = body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"no-marketing"));
    assert_eq!(body["tunables"]["tokens"]["uses"], 3);
    let files: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["schema.cedarschema", "release.cedar", "tunables.toml"]
    );
    assert_problem(
        app.get("/v1/policies", &app.airline.api_key).await,
        403,
        "wrong-party-kind",
    )
    .await;
}

async fn every_decision_names_its_policies_and_their_version(app: TestApp) {
    app.upload_default().await;
    let response = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(response.status(), 201);
    let mut request = app.token_request().await;
    request["purpose"] = serde_json::json!("gate_change");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        403,
        "consent-does-not-cover",
    )
    .await;
    assert_eq!(problem["rule"], "consent-covers-purpose");
    assert_eq!(problem["reason"], "purpose_not_covered");
    let digest = app.get_json("/v1/policies", &app.officer.api_key).await["digest"].clone();
    let entries = app.audit_entries().await;
    assert_eq!(entries[1]["action"], "disruption_declaration");
    assert_eq!(entries[2]["policies"], "airlines-operational-notifications");
    assert_eq!(entries[2]["policy_digest"], digest);
    assert_eq!(entries[3]["policies"], "consent-covers-purpose");
}

crate::on_both_engines!(
    an_officer_reads_the_policies_in_force,
    every_decision_names_its_policies_and_their_version,
);

/// A policy set whose forbid cannot be evaluated refuses, through the API too.
mod failing {
    use crate::helpers::{assert_problem, Engine, TestApp};
    use crate::on_both_engines_with_engine;
    use passerelle::policy::engine::Policies;
    use passerelle::service::Settings;
    use std::sync::Arc;

    on_both_engines_with_engine!(a_forbid_that_fails_to_evaluate_refuses_instead_of_being_skipped);

    async fn a_forbid_that_fails_to_evaluate_refuses_instead_of_being_skipped(engine: Engine) {
        let dir = super::shipped_policies();
        // A forbid whose condition overflows at run time: the validator cannot see it,
        // and Cedar skips a policy that errors, which for a forbid would let through
        // what it exists to stop.
        let file = dir.path().join("release.cedar");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str(
            "\n@id(\"overflowing-forbid\")\n@reason(\"not_permitted\")\n\
             forbid (principal, action == Passerelle::Action::\"grant_token\", resource)\n\
             when { 9223372036854775807 + (if context.purpose == \"\" then 0 else 1) > 0 };\n",
        );
        std::fs::write(&file, text).unwrap();
        let settings = Settings {
            policies: Arc::new(Policies::from_dir(dir.path()).unwrap()),
            ..crate::helpers::test_settings()
        };
        let Some(app) = TestApp::with(engine, settings).await else {
            return;
        };
        app.upload_default().await;
        let refused = app
            .request_token(&app.airline.api_key, &app.token_request().await)
            .await;
        let problem = assert_problem(refused, 403, "not-permitted").await;
        assert!(
            problem["rule"]
                .as_str()
                .unwrap()
                .contains("overflowing-forbid"),
            "{problem}"
        );
    }
}
