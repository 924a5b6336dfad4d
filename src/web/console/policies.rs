//! `GET /console/policies`: the release policies in force, verbatim, with their
//! digest and tunables.

use crate::service::policies::{self, PoliciesInForce};
use crate::service::AppState;
use crate::web::i18n::Lang;
use crate::web::session::OfficerSession;
use crate::web::{ok, problem_page, Frame};
use askama::Template;
use axum::extract::State;
use axum::response::Response;

/// `GET /console/policies`: the policies in force, readable.
#[derive(Template)]
#[template(path = "console/policies.html")]
pub struct PoliciesPage {
    frame: Frame,
    policies: PoliciesInForce,
    tunables: String,
}

/// The policies page.
pub async fn policies(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
) -> Response {
    let frame = Frame::new(lang, "/console/policies", Some(&session), "policies");
    match policies::read(&state, &session.party).await {
        Ok(policies) => {
            let tunables = toml::to_string_pretty(&policies.tunables).unwrap_or_default();
            ok(&PoliciesPage {
                frame,
                policies,
                tunables,
            })
        }
        Err(problem) => problem_page(frame, problem),
    }
}
