//! The traveller's page (`/t`, printed on their receipt beside their withdrawal code):
//! what they consented to, their contact masked (`+33 6•• •• •• 12`), which airlines
//! got it or sent them messages, when and why, and one button that withdraws, after a
//! confirmation, at once.
//!
//! The code is the only credential, as for the API, and it never travels in a URL:
//! the traveller types it into a form that POSTs it, and each following form carries
//! it back in its body (the pages are never cached). So it lands in no proxy log, no
//! browser history and no referrer. Every failure reads the same ("this code does not
//! open a consent"), and each address may try only a few codes a minute.
//!
//! A link of the earlier form (`/t/<code>`) opens the same form, without reading the
//! code in it.

use super::i18n::Lang;
use super::{ok, problem_page, render, Frame};
use crate::domain::contact::{mask_email, mask_mobile};
use crate::domain::scope::ConsentState;
use crate::service::sealed::record_contacts;
use crate::service::traveller::{self, TravellerUse, TravellerView};
use crate::service::withdraw::{self, WithdrawalRequest, Withdrawn};
use crate::service::AppState;
use crate::wire::client_ip::RateLimitedClient;
use crate::wire::extract::RequestId;
use crate::wire::problem::{Problem, ProblemKind};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// The form where the traveller types their code.
#[derive(Template)]
#[template(path = "traveller/open.html")]
pub struct OpenPage {
    frame: Frame,
    error: bool,
}

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

fn frame(lang: Lang, path: &str) -> Frame {
    Frame::new(lang, path, None, "")
}

/// A code that opens nothing: the form again, with one sentence for every fault.
fn failed(lang: Lang, problem: Problem) -> Response {
    if problem.kind() == ProblemKind::WithdrawalCodeUnknown
        || problem.kind() == ProblemKind::ConsentNotFound
    {
        render(
            StatusCode::NOT_FOUND,
            &OpenPage {
                frame: frame(lang, "/t"),
                error: true,
            },
        )
    } else {
        problem_page(frame(lang, "/t"), problem)
    }
}

/// The traveller's view; `_client` counts the try against the address's bucket.
async fn view(
    state: &AppState,
    _client: RateLimitedClient,
    code: &str,
) -> Result<TravellerView, Problem> {
    let request = WithdrawalRequest {
        code: code.to_string(),
    };
    traveller::uses(state, request).await
}

/// `GET /t` (and a link of the earlier form, `/t/<code>`, whose code is not read):
/// the form.
pub async fn form(lang: Lang) -> Response {
    ok(&OpenPage {
        frame: frame(lang, "/t"),
        error: false,
    })
}

/// The form that carries the code: `code`, and for a withdrawal `confirm`.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// A form with a code, from a client the per-address limit admitted.
fn admitted(
    client: Result<RateLimitedClient, Problem>,
    body: &[u8],
) -> Result<(RateLimitedClient, CodeForm), Problem> {
    Ok((client?, super::form::parse::<CodeForm>(body)?))
}

/// `POST /t`: the page the code opens.
pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    client: Result<RateLimitedClient, Problem>,
    body: Bytes,
) -> Response {
    let (client, CodeForm { code, .. }) = match admitted(client, &body) {
        Ok(admitted) => admitted,
        Err(problem) => return problem_page(frame(lang, "/t"), problem),
    };
    let view = match view(&state, client, &code).await {
        Ok(view) => view,
        Err(problem) => return failed(lang, problem),
    };
    // The contact, masked, for the traveller alone: opened from the current record.
    let contacts = match record_contacts(&state, &view.consent_id).await {
        Ok(contacts) => contacts,
        Err(problem) => return problem_page(frame(lang, "/t"), problem),
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
        frame: frame(lang, "/t"),
        code,
        view,
        mobile,
        email,
    })
}

/// Are you sure?
#[derive(Template)]
#[template(path = "traveller/confirm.html")]
pub struct ConfirmPage {
    frame: Frame,
    code: String,
    carriers: Vec<String>,
}

/// Withdrawn.
#[derive(Template)]
#[template(path = "traveller/withdrawn.html")]
pub struct WithdrawnPage {
    frame: Frame,
    code: String,
    withdrawn: Withdrawn,
}

/// `POST /t/withdraw`: without `confirm=yes`, the confirmation; with it, the
/// withdrawal, at once. No session and no cookie: the code in the body is the
/// credential, which a forged cross-site form cannot know.
pub async fn withdraw(
    State(state): State<AppState>,
    lang: Lang,
    request_id: RequestId,
    client: Result<RateLimitedClient, Problem>,
    body: Bytes,
) -> Response {
    let (client, form) = match admitted(client, &body) {
        Ok(admitted) => admitted,
        Err(problem) => return problem_page(frame(lang, "/t"), problem),
    };
    match form.confirm.as_deref() {
        None => return confirmation(&state, lang, client, form.code).await,
        Some("yes") => {}
        Some(_) => {
            let refused = Problem::field(ProblemKind::InvalidField, "confirm", "must be yes");
            return problem_page(frame(lang, "/t"), refused);
        }
    }
    let request = WithdrawalRequest {
        code: form.code.clone(),
    };
    match withdraw::by_traveller(&state, &request_id.0, request).await {
        Ok(withdrawn) => ok(&WithdrawnPage {
            frame: frame(lang, "/t"),
            code: form.code,
            withdrawn,
        }),
        Err(problem) => failed(lang, problem),
    }
}

/// The page that asks the traveller to confirm the withdrawal.
async fn confirmation(
    state: &AppState,
    lang: Lang,
    client: RateLimitedClient,
    code: String,
) -> Response {
    match view(state, client, &code).await {
        Ok(view) => ok(&ConfirmPage {
            frame: frame(lang, "/t"),
            code,
            carriers: view.carriers,
        }),
        Err(problem) => failed(lang, problem),
    }
}

/// A use, as the traveller's page words it.
pub fn airline_of(u: &TravellerUse) -> String {
    match &u.airline.designator {
        Some(code) => format!("{} ({code})", u.airline.name),
        None => u.airline.name.clone(),
    }
}
