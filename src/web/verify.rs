//! The page an email verification's link opens (`/verify?id=…&code=…`): one button
//! that confirms the address reaches the traveller (`service::contact_verifications`).
//!
//! Unlike the traveller's withdrawal code, this secret travels in a URL, because a link
//! is what an email can carry; it is one-time, dies within
//! `verification.expires_minutes`, and can do one thing only: say "this address
//! reaches me". Opening the link changes nothing (mail scanners and link previews
//! fetch links): the button POSTs the form, and only that confirms. The broker logs the
//! route, never the query, and the page is sent with `Referrer-Policy: no-referrer`
//! and `Cache-Control: no-store`. Each address may try only a few answers a minute.

use super::i18n::Lang;
use super::{ok, problem_page, Frame};
use crate::service::contact_verifications::{self, Answerer};
use crate::service::AppState;
use crate::wire::client_ip::RateLimitedClient;
use crate::wire::extract::RequestId;
use crate::wire::problem::Problem;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

/// The link's query, and the form's fields.
#[derive(Deserialize)]
pub struct Answer {
    id: String,
    code: String,
}

/// Confirm?
#[derive(Template)]
#[template(path = "verify/confirm.html")]
pub struct ConfirmPage {
    frame: Frame,
    id: String,
    code: String,
}

/// Confirmed.
#[derive(Template)]
#[template(path = "verify/confirmed.html")]
pub struct ConfirmedPage {
    frame: Frame,
}

fn frame(lang: Lang) -> Frame {
    Frame::new(lang, "/verify", None, "")
}

/// `GET /verify?lang=…&id=…&code=…`: the button, nothing confirmed yet. The language
/// switch keeps the link's query, so that the page in the other language still
/// confirms.
pub async fn page(
    lang: Lang,
    query: Result<Query<Answer>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query {
        Ok(Query(Answer { id, code })) => {
            let link = form_urlencoded::Serializer::new(String::new())
                .append_pair("id", &id)
                .append_pair("code", &code)
                .finish();
            ok(&ConfirmPage {
                frame: Frame::new(lang, &format!("/verify?{link}"), None, ""),
                id,
                code,
            })
        }
        Err(_) => problem_page(
            frame(lang),
            Problem::field(
                crate::wire::problem::ProblemKind::InvalidField,
                "code",
                "the link is incomplete: open the whole link from the email",
            ),
        ),
    }
}

/// `POST /verify`: the traveller confirms.
pub async fn confirm(
    State(state): State<AppState>,
    lang: Lang,
    RequestId(request_id): RequestId,
    client: Result<RateLimitedClient, Problem>,
    body: Bytes,
) -> Response {
    let answered = async {
        client?;
        let Answer { id, code } = super::form::parse::<Answer>(&body)?;
        contact_verifications::confirm(&state, &request_id, Answerer::Traveller, &id, &code).await
    };
    match answered.await {
        Ok(_) => ok(&ConfirmedPage { frame: frame(lang) }),
        Err(problem) => problem_page(frame(lang), problem),
    }
}
