//! The traveller's page, opened by the short link on their receipt (`/t/<code>`): what
//! they consented to, their contact masked (`+33 6•• •• •• 12`), which airlines got it
//! or sent them messages, when and why, and one button that withdraws, after a
//! confirmation, at once.
//!
//! The code is the only credential, as for the API; every failure reads the same
//! ("this link does not open a consent"). The code is in the path, so the page is
//! never cached, never sent as a referrer, and the broker logs only the route
//! template (`/t/{code}`), never the path.

use super::i18n::Lang;
use super::{ok, problem_page, render, Frame};
use crate::domain::consent::ConsentState;
use crate::domain::contact::{mask_email, mask_mobile};
use crate::http::consents::open_contacts;
use crate::http::extract::{ApiJson, RequestId};
use crate::http::problem::{Problem, ProblemKind};
use crate::http::traveller::{self as traveller_api, TravellerUse, TravellerView};
use crate::http::withdrawals::{self, WithdrawalRequest, Withdrawn};
use crate::http::AppState;
use crate::store::consents;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

/// The page.
#[derive(Template)]
#[template(path = "traveller/page.html")]
pub struct TravellerPage {
    frame: Frame,
    code: String,
    view: TravellerView,
    mobile: Option<String>,
    email: Option<String>,
    withdrawable: bool,
}

impl TravellerPage {
    fn state(&self) -> &'static str {
        self.view.state.as_str()
    }
}

/// What the traveller sees when the link opens nothing.
#[derive(Template)]
#[template(path = "traveller/unknown.html")]
pub struct UnknownLink {
    frame: Frame,
}

fn failed(frame: Frame, problem: Problem) -> Response {
    if problem.kind() == ProblemKind::WithdrawalCodeUnknown
        || problem.kind() == ProblemKind::ConsentNotFound
    {
        render(StatusCode::NOT_FOUND, &UnknownLink { frame })
    } else {
        problem_page(frame, problem)
    }
}

async fn view(state: &AppState, code: &str) -> Result<TravellerView, Problem> {
    traveller_api::uses(
        State(state.clone()),
        ApiJson(WithdrawalRequest {
            code: code.to_string(),
        }),
    )
    .await
    .map(|Json(view)| view)
}

/// `GET /t/{code}`.
pub async fn page(State(state): State<AppState>, lang: Lang, Path(code): Path<String>) -> Response {
    let frame = Frame::new(lang, &format!("/t/{code}"), None, "");
    let view = match view(&state, &code).await {
        Ok(view) => view,
        Err(problem) => return failed(frame, problem),
    };
    // The contact, masked, for the traveller alone: opened from the current record.
    let contacts = async {
        let mut conn = state.store.reader().acquire().await?;
        let sealed = consents::sealed(&mut conn, &view.consent_id).await?;
        open_contacts(&state, &view.consent_id, &sealed)
    };
    let contacts = match contacts.await {
        Ok(contacts) => contacts,
        Err(problem) => return problem_page(frame, problem),
    };
    let (mobile, email) = contacts
        .map(|c| {
            (
                c.mobile.as_deref().map(mask_mobile),
                c.email.as_deref().map(mask_email),
            )
        })
        .unwrap_or_default();
    ok(&TravellerPage {
        withdrawable: view.state == ConsentState::Given,
        frame,
        code,
        view,
        mobile,
        email,
    })
}

/// `GET /t/{code}/withdraw`: are you sure?
#[derive(Template)]
#[template(path = "traveller/confirm.html")]
pub struct ConfirmPage {
    frame: Frame,
    code: String,
    carriers: Vec<String>,
}

/// The confirmation.
pub async fn confirm(
    State(state): State<AppState>,
    lang: Lang,
    Path(code): Path<String>,
) -> Response {
    let frame = Frame::new(lang, &format!("/t/{code}/withdraw"), None, "");
    match view(&state, &code).await {
        Ok(view) => ok(&ConfirmPage {
            frame,
            code,
            carriers: view.carriers,
        }),
        Err(problem) => failed(frame, problem),
    }
}

/// The confirmation form: the traveller must have pressed "withdraw".
#[derive(Deserialize)]
pub struct WithdrawForm {
    confirm: String,
}

/// `POST /t/{code}/withdraw`: withdraws, at once.
#[derive(Template)]
#[template(path = "traveller/withdrawn.html")]
pub struct WithdrawnPage {
    frame: Frame,
    code: String,
    withdrawn: Withdrawn,
}

/// The withdrawal. No session and no cookie: the code in the path is the credential,
/// which a forged cross-site form cannot know.
pub async fn withdraw(
    State(state): State<AppState>,
    lang: Lang,
    request_id: RequestId,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let frame = Frame::new(lang, &format!("/t/{code}/withdraw"), None, "");
    match super::form::parse::<WithdrawForm>(&body) {
        Ok(form) if form.confirm == "yes" => {}
        Ok(_) => {
            return problem_page(
                frame,
                Problem::field(ProblemKind::InvalidField, "confirm", "must be yes"),
            )
        }
        Err(problem) => return problem_page(frame, problem),
    }
    let withdrawn = withdrawals::by_traveller(
        State(state),
        request_id,
        ApiJson(WithdrawalRequest { code: code.clone() }),
    )
    .await;
    match withdrawn {
        Ok(Json(withdrawn)) => ok(&WithdrawnPage {
            frame,
            code,
            withdrawn,
        }),
        Err(problem) => failed(frame, problem),
    }
}

/// A use, as the traveller's page words it.
pub fn airline_of(u: &TravellerUse) -> String {
    match &u.airline.designator {
        Some(code) => format!("{} ({code})", u.airline.name),
        None => u.airline.name.clone(),
    }
}
