//! `/agency/upload`: an agency uploads a CSV, NDJSON, a JSON array or an SSR import
//! (all-or-nothing optional) through the same batch run as the API, and the page
//! shows what became of each record: a rejection with its field and reason, each
//! stored consent with its traveller link once. No contact value is shown.

use super::i18n::Lang;
use super::session::{AgencySession, PageSession};
use super::{ok, problem_page, render, Frame};
use crate::domain::party::Party;
use crate::service::ingest::batch::{self, Format};
use crate::service::ingest::report::{BatchReport, Counts, RecordReport};
use crate::service::ingest::ssr::{self, SsrImport};
use crate::service::ingest::turns::Turn;
use crate::service::input::parse_json;
use crate::service::AppState;
use crate::wire::extract::RequestId;
use crate::wire::problem::{Problem, ProblemKind};
use askama::Template;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::response::Response;

/// `GET /agency/upload` and the outcome of `POST /agency/upload`.
#[derive(Template)]
#[template(path = "agency/upload.html")]
pub struct UploadPage {
    frame: Frame,
    csrf: String,
    outcome: Option<Outcome>,
    error: Option<String>,
    error_fields: Vec<(String, String)>,
}

/// What became of an upload.
pub struct Outcome {
    file: String,
    traveller_page: String,
    stored_all: bool,
    counts: Counts,
    results: Vec<ResultRow>,
}

/// One record of an upload, as shown.
pub struct ResultRow {
    index: usize,
    outcome: String,
    record_id: String,
    consent_id: String,
    version: String,
    withdrawal_code: String,
    why: String,
}

/// The upload form.
pub async fn upload_form(lang: Lang, AgencySession(session): AgencySession) -> Response {
    ok(&upload_page(lang, &session))
}

fn upload_page(lang: Lang, session: &PageSession) -> UploadPage {
    UploadPage {
        frame: Frame::new(lang, "/agency/upload", Some(session), "upload"),
        csrf: session.csrf_token.clone(),
        outcome: None,
        error: None,
        error_fields: Vec::new(),
    }
}

/// The fields of an upload form.
#[derive(Default)]
struct UploadForm {
    csrf: String,
    format: String,
    atomic: bool,
    file_name: String,
    file: axum::body::Bytes,
}

async fn read_upload(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<UploadForm, Problem> {
    let unreadable = |why: String| Problem::field(ProblemKind::InvalidField, "file", why);
    let mut multipart =
        multipart.map_err(|_| unreadable("send the form as multipart/form-data".into()))?;
    let mut form = UploadForm::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| unreadable(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            form.file_name = field.file_name().unwrap_or("").to_string();
        }
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::of(ProblemKind::BodyTooLarge)
            } else {
                unreadable(e.body_text())
            }
        })?;
        match name.as_str() {
            "file" => form.file = bytes,
            "csrf" => form.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "format" => form.format = String::from_utf8_lossy(&bytes).into_owned(),
            "atomic" => form.atomic = true,
            _ => {}
        }
    }
    Ok(form)
}

/// The media type a file is sent to the batch route as: the chosen format, or its
/// extension.
fn media_type_of(form: &UploadForm) -> Result<&'static str, Problem> {
    let extension = form
        .file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let format = match form.format.as_str() {
        "" | "auto" => extension.as_str(),
        chosen => chosen,
    };
    Ok(match format {
        "csv" => "text/csv",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "json" => "application/json",
        "ssr" => "ssr",
        _ => {
            return Err(Problem::field(
                ProblemKind::InvalidField,
                "format",
                "choose CSV, NDJSON, JSON or SSR, or name the file .csv, .ndjson or .json",
            ))
        }
    })
}

/// `POST /agency/upload`: the file goes through the API's batch or SSR import, and
/// the page shows what became of each record.
pub async fn upload(
    State(state): State<AppState>,
    lang: Lang,
    RequestId(request_id): RequestId,
    AgencySession(session): AgencySession,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let page = upload_page(lang, &session);
    // The turn is taken before the file is read: it bounds the memory uploads hold.
    let taken = async {
        let turn = state.uploads.take(&session.party.id).await?;
        Ok::<_, Problem>((turn, read_within(&state, multipart).await?))
    };
    let (turn, mut form) = match taken.await {
        Ok(taken) => taken,
        Err(problem) => return upload_error(page, problem),
    };
    if let Err(problem) = session.check_csrf(&form.csrf) {
        return problem_page(page.frame, problem);
    }
    let answered = store_upload(&state, turn, &session.party, &request_id, &mut form).await;
    let traveller_page = crate::service::settings::page_link(&state.settings.public_url);
    shown(page, form.file_name, traveller_page, answered)
}

/// The upload page with what became of each record, or why nothing was stored.
fn shown(
    mut page: UploadPage,
    file: String,
    traveller_page: String,
    answered: Result<BatchReport, Problem>,
) -> Response {
    match answered {
        Ok(BatchReport {
            counts, results, ..
        }) => {
            let stored_all = counts.rejected == 0;
            let outcome = Outcome::of(file, traveller_page, stored_all, counts, results);
            page.outcome = Some(outcome);
            ok(&page)
        }
        Err(problem) => {
            // An atomic batch with a bad record stores nothing but still reports each.
            let results: Option<Vec<RecordReport>> = extension(&problem, "results");
            if let Some(results) = results {
                let counts = extension(&problem, "counts").unwrap_or_default();
                let outcome = Outcome::of(file, traveller_page, false, counts, results);
                page.outcome = Some(outcome);
            }
            upload_error(page, problem)
        }
    }
}

/// The form, read within the request timeout.
async fn read_within(
    state: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<UploadForm, Problem> {
    let timeout = state.settings.request_timeout;
    tokio::time::timeout(timeout, read_upload(multipart))
        .await
        .unwrap_or_else(|_| Err(batch::too_slow(timeout)))
}

/// A member of a problem's body, read back (a refused batch's `results`, `counts`).
fn extension<T: serde::de::DeserializeOwned>(problem: &Problem, name: &str) -> Option<T> {
    let value = problem.extension(name)?;
    serde_json::from_value(value.clone()).ok()
}

/// Hands the file to the batch run or the SSR import, as its type says.
async fn store_upload(
    state: &AppState,
    turn: Turn,
    agency: &Party,
    request_id: &str,
    form: &mut UploadForm,
) -> Result<BatchReport, Problem> {
    if form.file.is_empty() {
        return Err(Problem::field(
            ProblemKind::InvalidField,
            "file",
            "choose a file that is not empty",
        ));
    }
    let media_type = media_type_of(form)?;
    if media_type == "ssr" {
        if form.file.len() > state.settings.max_body_bytes {
            return Err(Problem::of(ProblemKind::BodyTooLarge));
        }
        let import = parse_json::<SsrImport>(&form.file)?;
        ssr::import_in_turn(state, turn, agency, request_id, form.atomic, import).await
    } else {
        let format = Format::of_media_type(media_type)?;
        let body = Body::from(std::mem::take(&mut form.file));
        batch::upload_in_turn(state, turn, agency, request_id, form.atomic, format, body).await
    }
}

fn upload_error(mut page: UploadPage, problem: Problem) -> Response {
    let status = crate::wire::problem::status_of(problem.kind());
    if status.is_server_error() {
        return problem_page(page.frame, problem);
    }
    page.error = Some(problem.detail().to_string());
    page.error_fields = problem
        .errors()
        .iter()
        .map(|e| (e.field.clone(), e.reason.clone()))
        .collect();
    render(status, &page)
}

impl Outcome {
    fn of(
        file: String,
        traveller_page: String,
        stored_all: bool,
        counts: Counts,
        results: Vec<RecordReport>,
    ) -> Self {
        Self {
            file,
            traveller_page,
            stored_all,
            counts,
            results: results.into_iter().map(ResultRow::of).collect(),
        }
    }
}

impl ResultRow {
    fn of(r: RecordReport) -> Self {
        // The problem's slug (`invalid-field`), the field and the reason.
        let slug = r
            .problem_type
            .as_deref()
            .map(|t| t.rsplit(':').next().unwrap_or(t));
        let why = [slug, r.field.as_deref(), r.reason.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        Self {
            index: r.index,
            outcome: r.outcome.as_str().to_string(),
            record_id: r.record_id.unwrap_or_default(),
            consent_id: r.consent_id.unwrap_or_default(),
            version: r.version.map(|v| v.to_string()).unwrap_or_default(),
            withdrawal_code: r.withdrawal_code.unwrap_or_default(),
            why,
        }
    }
}
