//! Signing in to the pages: officers and agencies sign in once with their API key and
//! get a session cookie (HttpOnly, SameSite=Strict, and Secure unless the broker runs
//! with `--insecure-cookies`). Every form of a session carries its CSRF token.
//!
//! The sign-in form is protected against login CSRF (a forged form signing a victim
//! in as the attacker) three ways: its token must be one the broker issued (a nonce
//! and an expiry under an HMAC keyed from the data key), the same token must come back
//! in the form and in a short-lived cookie (double submit), and a browser's
//! `Sec-Fetch-Site` must not say the form came from another site. A cookie the
//! attacker planted with a value of their choosing fails the first check. Each
//! address may try only a few keys a minute.
//!
//! The cookie holds a random secret; the database holds its SHA-256 and the API key
//! it was opened with, so revoking the key ends the session. Sessions end after 30
//! minutes without a page view, 12 hours after sign-in, or on sign-out.

use super::form::{self, cookie};
use super::i18n::Lang;
use super::{problem_page, render, Frame};
use crate::domain::party::{Party, PartyKind};
use crate::service::auth::check_api_key;
use crate::service::sessions::{self, LIFETIME};
use crate::service::AppState;
use crate::wire::client_ip::RateLimitedClient;
use crate::wire::problem::Problem;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "passerelle_session";
/// The sign-in form's double-submit CSRF cookie.
pub const SIGN_IN_COOKIE: &str = "passerelle_sign_in";

/// A signed-in officer or agency.
#[derive(Debug, Clone)]
pub struct PageSession {
    /// The party.
    pub party: Party,
    /// Its name, for the header.
    pub name: String,
    /// The token every form of the session carries.
    pub csrf_token: String,
}

impl PageSession {
    /// Where the party's pages start.
    pub fn home(&self) -> &'static str {
        if self.is_officer() {
            "/console"
        } else {
            "/agency"
        }
    }
    /// Whether a compliance officer signed in.
    pub fn is_officer(&self) -> bool {
        self.party.kind == PartyKind::Officer
    }
    /// Whether an agency signed in.
    pub fn is_agency(&self) -> bool {
        self.party.kind == PartyKind::Agency
    }
    /// Checks a form's CSRF token, in constant time.
    pub fn check_csrf(&self, presented: &str) -> Result<(), Problem> {
        if same_secret(presented, &self.csrf_token) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

fn csrf_refused() -> Problem {
    Problem::field(
        crate::wire::problem::ProblemKind::CsrfRejected,
        "csrf",
        "the form is stale or did not come from this site; reload the page and try again",
    )
}

fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The session a request's cookie opens, if any.
async fn session_of(parts: &Parts, state: &AppState) -> Result<Option<PageSession>, Problem> {
    let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = sessions::find(state, &secret).await?;
    Ok(found.map(|s| PageSession {
        party: s.party,
        name: s.name,
        csrf_token: s.csrf_token,
    }))
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session_of(parts, state).await {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(Redirect::to("/sign-in").into_response()),
            Err(problem) => {
                let lang = Lang::of(parts);
                Err(problem_page(
                    Frame::new(lang, parts.uri.path(), None, ""),
                    problem,
                ))
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Response> {
        session_of(parts, state).await.map_err(|problem| {
            let lang = Lang::of(parts);
            problem_page(Frame::new(lang, parts.uri.path(), None, ""), problem)
        })
    }
}

macro_rules! page_party {
    ($name:ident, $kind:expr) => {
        #[doc = concat!("A session of a party of kind `", stringify!($kind), "`; others are sent to their own pages.")]
        pub struct $name(pub PageSession);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Response> {
                let session =
                    <PageSession as FromRequestParts<AppState>>::from_request_parts(parts, state)
                        .await?;
                if session.party.kind == $kind {
                    Ok($name(session))
                } else {
                    Err(Redirect::to(session.home()).into_response())
                }
            }
        }
    };
}

page_party!(OfficerSession, PartyKind::Officer);
page_party!(AgencySession, PartyKind::Agency);

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    frame: Frame,
    csrf: String,
    error: Option<&'static str>,
}

fn cookie_header(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are base64url")
}

fn secure_cookies(state: &AppState) -> bool {
    state.settings.secure_cookies
}

/// How long a sign-in form's token is accepted.
const SIGN_IN_TOKEN_LIFETIME: time::Duration = time::Duration::hours(1);

/// A sign-in token: `<nonce>.<expiry, unix seconds>.<HMAC>`, the HMAC keyed from the
/// root data key, so that only the broker can make one.
fn sign_in_token(state: &AppState) -> String {
    let expires = (state.clock.now() + SIGN_IN_TOKEN_LIFETIME).unix_timestamp();
    let body = format!("{}.{expires}", random_secret());
    let mac = URL_SAFE_NO_PAD.encode(sign_in_mac(state, &body));
    format!("{body}.{mac}")
}

fn sign_in_mac(state: &AppState, body: &str) -> Vec<u8> {
    state.keys.keys().root().blind_index("sign-in-form", body)
}

/// Whether a sign-in token is one this broker issued and has not expired.
fn sign_in_token_valid(state: &AppState, token: &str) -> bool {
    let Some((body, mac)) = token.rsplit_once('.') else {
        return false;
    };
    let Some(expires) = body
        .rsplit_once('.')
        .and_then(|(_, e)| e.parse::<i64>().ok())
    else {
        return false;
    };
    let expected = URL_SAFE_NO_PAD.encode(sign_in_mac(state, body));
    same_secret(mac, &expected) && state.clock.now().unix_timestamp() < expires
}

/// Whether the browser says a form came from another site (`Sec-Fetch-Site`); a
/// client that does not say is judged by the tokens alone.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

/// `GET /sign-in`: the form, with a fresh double-submit token.
pub async fn form(
    State(state): State<AppState>,
    lang: Lang,
    session: Option<PageSession>,
    headers: HeaderMap,
) -> Response {
    if let Some(session) = session {
        return Redirect::to(session.home()).into_response();
    }
    let csrf = cookie(&headers, SIGN_IN_COOKIE)
        .filter(|token| sign_in_token_valid(&state, token))
        .unwrap_or_else(|| sign_in_token(&state));
    sign_in_page(&state, lang, csrf, None, StatusCode::OK)
}

fn sign_in_page(
    state: &AppState,
    lang: Lang,
    csrf: String,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let cookie = cookie_header(SIGN_IN_COOKIE, &csrf, 3600, secure_cookies(state));
    let page = SignInPage {
        frame: Frame::new(lang, "/sign-in", None, "sign-in"),
        csrf,
        error,
    };
    let mut response = render(status, &page);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    /// The API key.
    key: String,
    /// The double-submit token.
    csrf: String,
}

/// `POST /sign-in`: checks the key, opens a session, goes to the party's pages.
/// Airlines are API clients and have no pages.
pub async fn sign_in(
    State(state): State<AppState>,
    lang: Lang,
    client: Result<RateLimitedClient, Problem>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let frame = || Frame::new(lang, "/sign-in", None, "sign-in");
    let form = match client.and_then(|_| form::parse::<SignInForm>(&body)) {
        Ok(form) => form,
        Err(problem) => return problem_page(frame(), problem),
    };
    if !genuine(&state, &headers, &form.csrf) {
        return sign_in_page(
            &state,
            lang,
            sign_in_token(&state),
            Some(lang.texts().sign_in_stale),
            StatusCode::FORBIDDEN,
        );
    }
    let checked = match check_api_key(&state, form.key.trim()).await {
        Ok(checked) => checked,
        Err(problem) => return problem_page(frame(), problem),
    };
    let refused = |why, status| sign_in_page(&state, lang, form.csrf.clone(), Some(why), status);
    let (party, key_id) = match checked {
        Some((party, _)) if party.kind == PartyKind::Airline => {
            return refused(lang.texts().sign_in_airline, StatusCode::FORBIDDEN)
        }
        Some(found) => found,
        None => return refused(lang.texts().sign_in_failed, StatusCode::UNAUTHORIZED),
    };
    match signed_in(&state, &party, &key_id).await {
        Ok(response) => response,
        Err(problem) => problem_page(frame(), problem),
    }
}

/// Whether the sign-in form came from this site's own page: its token matches the
/// double-submit cookie, was signed by this broker and is fresh, and the browser does
/// not say the request is cross-site.
fn genuine(state: &AppState, headers: &HeaderMap, csrf: &str) -> bool {
    let expected = cookie(headers, SIGN_IN_COOKIE).unwrap_or_default();
    same_secret(csrf, &expected) && sign_in_token_valid(state, csrf) && !cross_site(headers)
}

/// Opens the session and sends the party to its pages with the session's cookie.
async fn signed_in(state: &AppState, party: &Party, key_id: &str) -> Result<Response, Problem> {
    let secret = random_secret();
    sessions::open(state, &secret, key_id, &random_secret()).await?;
    let home = if party.kind == PartyKind::Officer {
        "/console"
    } else {
        "/agency"
    };
    let secure = secure_cookies(state);
    let mut response = Redirect::to(home).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &secret, LIFETIME.whole_seconds(), secure),
    );
    cookies.append(
        header::SET_COOKIE,
        cookie_header(SIGN_IN_COOKIE, "", 0, secure),
    );
    Ok(response)
}

/// The sign-out form.
#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// `POST /sign-out`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let frame = Frame::new(lang, "/sign-out", Some(&session), "");
    let checked = form::parse::<SignOutForm>(&body).and_then(|f| session.check_csrf(&f.csrf));
    if let Err(problem) = checked {
        return problem_page(frame, problem);
    }
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        if let Err(problem) = sessions::close(&state, &secret).await {
            return problem_page(frame, problem);
        }
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", 0, secure_cookies(&state)),
    );
    response
}
