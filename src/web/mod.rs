//! Pages for people: the compliance console, the agency's view and the traveller's
//! page, server-rendered from templates compiled into the binary (askama, which
//! escapes every value), in English and French, with no script at all.
//!
//! Pages sit on the same handlers as the API: a page calls the API handler with the
//! party its session signed in as, so scoping, policies and auditing are the API's
//! own, and renders the answer (or the problem) as HTML. They are not part of the
//! API contract (`openapi.yaml`), which stays JSON.

pub mod agency;
pub mod assets;
pub mod charts;
pub mod console;
pub mod form;
pub mod i18n;
pub mod session;
pub mod traveller;
pub mod upload;
pub mod verify;

use crate::service::AppState;
use crate::wire::problem::Problem;
use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::{Lang, Texts};
use session::PageSession;

/// The pages' routes, with their security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/style.css", get(assets::style))
        .route("/sign-in", get(session::form).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/console", get(console::search))
        .route("/console/entries/{index}", get(console::entry))
        .route(
            "/console/entries/{index}/proof.json",
            get(console::proof_file),
        )
        .route(
            "/console/checkpoints",
            post(console::integrity::sign_checkpoint),
        )
        .route("/console/integrity", get(console::integrity::integrity))
        .route(
            "/console/integrity/verify",
            post(console::integrity::verify),
        )
        .route("/console/reports", get(console::reports::reports))
        .route("/console/reports/{name}", get(console::reports::report_csv))
        .route("/console/policies", get(console::policies::policies))
        .route("/agency", get(agency::records))
        .route("/agency/records/{id}", get(agency::record))
        .route(
            "/agency/records/{id}/verifications",
            post(agency::ask_verification),
        )
        .route(
            "/agency/verifications/{id}/confirmation",
            post(agency::confirm_verification),
        )
        .route("/agency/receipts", get(agency::receipts))
        .route("/agency/disruptions", get(agency::disruptions))
        .route("/agency/contacts", get(agency::contacts))
        .route(
            "/agency/upload",
            get(upload::upload_form).post(upload::upload),
        )
        .route("/t", get(traveller::form).post(traveller::page))
        .route("/t/", get(traveller::form))
        .route("/t/withdraw", post(traveller::withdraw))
        .route("/verify", get(verify::page).post(verify::confirm))
        .route("/t/{old_link}", get(traveller::form))
        .layer(middleware::from_fn(page_headers))
}

/// The page paths that take an upload, and so the bulk body limit.
pub const UPLOAD_PATHS: [&str; 1] = ["/agency/upload"];

/// The Content Security Policy of every page: nothing but the broker's own
/// stylesheet; no script at all, no frame, forms post only to the broker.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every page, no caching (pages show personal or audit data),
/// and the language chosen with `?lang=` remembered in a cookie.
async fn page_headers(request: Request, next: Next) -> Response {
    let chosen = i18n::chosen_in_query(request.uri().query());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if let Some(lang) = chosen {
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{}={}; Path=/; Max-Age=31536000; SameSite=Strict",
            i18n::LANG_COOKIE,
            lang.code()
        )) {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// `/`: to the signed-in party's home, or to the sign-in form.
async fn home(session: Option<PageSession>) -> Redirect {
    match session {
        Some(session) => Redirect::to(session.home()),
        None => Redirect::to("/sign-in"),
    }
}

/// What every page's frame needs: the texts, the language, and the signed-in party.
pub struct Frame {
    /// Texts in the page's language.
    pub t: &'static Texts,
    /// The page's language.
    pub lang: Lang,
    /// The path of the page, for the language switch.
    pub path: String,
    /// Who is signed in, if anyone: the header shows their name and a sign-out form.
    pub session: Option<PageSession>,
    /// Which navigation link is the current page.
    pub current: &'static str,
}

impl Frame {
    /// A page's frame.
    pub fn new(
        lang: Lang,
        path: &str,
        session: Option<&PageSession>,
        current: &'static str,
    ) -> Self {
        Self {
            t: lang.texts(),
            lang,
            path: path.to_string(),
            session: session.cloned(),
            current,
        }
    }

    /// The link that shows this page in language `code`: the page's path, keeping the
    /// query it was opened with (the verification page's link), with `lang` added.
    pub fn lang_href(&self, code: &str) -> String {
        let joint = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{joint}lang={code}", self.path)
    }

    /// Whether the signed-in party is a compliance officer.
    pub fn is_officer(&self) -> bool {
        self.session.as_ref().is_some_and(PageSession::is_officer)
    }

    /// Whether the signed-in party is an agency.
    pub fn is_agency(&self) -> bool {
        self.session.as_ref().is_some_and(PageSession::is_agency)
    }

    /// The CSRF token of the signed-in party's forms.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf_token.as_str())
    }

    /// `aria-current` for a navigation link.
    pub fn aria_current(&self, link: &str) -> &'static str {
        if self.current == link {
            "page"
        } else {
            "false"
        }
    }
}

/// Renders a template as a page with a status.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            let problem = Problem::internal(format!("template: {err}"));
            problem.into_response()
        }
    }
}

/// Renders a template with 200.
pub fn ok(page: &impl Template) -> Response {
    render(StatusCode::OK, page)
}

/// A search page, which shows a refused search (a bad filter) above its own form.
pub trait Search: Template {
    /// Shows why the search was refused.
    fn refused(&mut self, why: String);
    /// Gives up the frame, for an error page.
    fn into_frame(self) -> Frame;
}

/// A client error shows on the search page itself, with the status of the problem;
/// anything else is an error page.
pub fn search_refused(mut page: impl Search, problem: Problem) -> Response {
    let status = crate::wire::problem::status_of(problem.kind());
    if status.is_client_error() {
        page.refused(problem.detail().to_string());
        render(status, &page)
    } else {
        problem_page(page.into_frame(), problem)
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The frame.
    pub frame: Frame,
    /// The title.
    pub title: String,
    /// What went wrong and what to do.
    pub detail: String,
    /// Each field at fault and why.
    pub fields: Vec<(String, String)>,
}

/// A problem from the API handlers, as a page in the same status. Internal causes are
/// logged by the middleware, never shown.
pub fn problem_page(frame: Frame, problem: Problem) -> Response {
    let status = crate::wire::problem::status_of(problem.kind());
    let page = ErrorPage {
        title: problem.kind().title().to_string(),
        detail: if status.is_server_error() {
            frame.t.error_internal.to_string()
        } else {
            problem.detail().to_string()
        },
        fields: problem
            .errors()
            .iter()
            .map(|e| (e.field.clone(), e.reason.clone()))
            .collect(),
        frame,
    };
    // The API's own response carries the internal cause (for the log) and Retry-After.
    let api = problem.into_response();
    let mut response = render(status, &page);
    if let Some(cause) = api
        .extensions()
        .get::<crate::wire::problem::InternalCause>()
    {
        response.extensions_mut().insert(cause.clone());
    }
    if let Some(retry) = api.headers().get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    response
}
