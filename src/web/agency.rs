//! The agency's view: its records (each with its countersigned receipt, and the
//! buttons that ask the broker to verify its contacts), every use of its clients' data
//! (the receipts feed) and the open disruptions touching its clients; uploads are
//! `upload.rs`. Contacts are
//! never shown here: the agency holds them already, and a page is one more place they
//! could leak from.

use super::form;
use super::i18n::Lang;
use super::session::{AgencySession, PageSession};
use super::{ok, problem_page, search_refused, Frame, Search};
use crate::domain::delivery::Channel;
use crate::domain::scope::ConsentState;
use crate::service;
use crate::service::agency::{ReceiptPage, ReceiptQuery, TimeToTell};
use crate::service::agency_disruptions::AgencyDisruption;
use crate::service::contact_verifications::{
    self, Answerer, ContactVerification, VerificationRequest,
};
use crate::service::records::{self, ListQuery, RecordPage, RecordView};
use crate::service::uses::UseReceipt;
use crate::service::AppState;
use crate::wire::extract::RequestId;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

/// Records per page.
const PAGE: i64 = 50;

/// The record search form, as typed.
pub struct RecordFilters {
    record_locator: String,
    traveller_id: String,
    record_id: String,
    state: String,
    since: String,
    until: String,
}

/// `GET /agency`: the agency's records.
#[derive(Template)]
#[template(path = "agency/records.html")]
pub struct RecordsPage {
    frame: Frame,
    filters: RecordFilters,
    states: Vec<&'static str>,
    error: Option<String>,
    records: Vec<RecordView>,
    next: Option<String>,
    first: Option<String>,
}

/// The records, filtered like `GET /v1/consents`.
pub async fn records(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
    uri: Uri,
) -> Response {
    let query = uri.query();
    let f = |name| form::field(query, name);
    let mut page = RecordsPage {
        frame: Frame::new(lang, "/agency", Some(&session), "records"),
        filters: RecordFilters {
            record_locator: f("record_locator"),
            traveller_id: f("traveller_id"),
            record_id: f("record_id"),
            state: f("state"),
            since: f("since"),
            until: f("until"),
        },
        states: ConsentState::ALL.iter().map(|s| s.as_str()).collect(),
        error: None,
        records: Vec::new(),
        next: None,
        first: None,
    };
    let listed = match form::query::<ListQuery>(&form::page_query(query, PAGE)) {
        Ok(q) => records::list(&state, &session.party, q).await,
        Err(problem) => Err(problem),
    };
    match listed {
        Ok(RecordPage {
            records,
            next_after,
        }) => {
            page.records = records;
            (page.next, page.first) = form::pager(query, next_after);
            ok(&page)
        }
        Err(problem) => search_refused(page, problem),
    }
}

impl Search for RecordsPage {
    fn refused(&mut self, why: String) {
        self.error = Some(why);
    }
    fn into_frame(self) -> Frame {
        self.frame
    }
}

impl Search for ReceiptsPage {
    fn refused(&mut self, why: String) {
        self.error = Some(why);
    }
    fn into_frame(self) -> Frame {
        self.frame
    }
}

/// `GET /agency/records/{id}`: one record and its countersigned receipt, and, while
/// it is in force, the buttons that ask the broker to verify its contacts.
#[derive(Template)]
#[template(path = "agency/record.html")]
pub struct RecordDetailPage {
    frame: Frame,
    record: RecordView,
    receipt: String,
    csrf: String,
    /// The channels whose contact can be verified (`sms`, `email`).
    channels: Vec<&'static str>,
    /// The verification just asked for or answered, and what went wrong with it.
    verification: Option<ContactVerification>,
    error: Option<String>,
}

/// One record.
pub async fn record(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
    Path(id): Path<String>,
) -> Response {
    record_page(&state, lang, &session, id, None, None).await
}

/// The record page, with the outcome of a verification's request or answer.
async fn record_page(
    state: &AppState,
    lang: Lang,
    session: &PageSession,
    id: String,
    verification: Option<ContactVerification>,
    error: Option<String>,
) -> Response {
    let frame = Frame::new(
        lang,
        &format!("/agency/records/{id}"),
        Some(session),
        "records",
    );
    let agency = &session.party;
    let detail = records::read(state, agency, id.clone()).await;
    let receipt = records::receipt(state, agency, id).await;
    match (detail, receipt) {
        (Ok(detail), Ok(receipt)) => {
            let record = detail.record;
            let held = |category: &str| record.data_categories.iter().any(|c| c == category);
            let channels = [("mobile", "sms"), ("email", "email")]
                .into_iter()
                .filter(|(category, _)| record.state == ConsentState::Given && held(category))
                .map(|(_, channel)| channel)
                .collect();
            ok(&RecordDetailPage {
                frame,
                record,
                receipt: serde_json::to_string_pretty(&receipt).unwrap_or_default(),
                csrf: session.csrf_token.clone(),
                channels,
                verification,
                error,
            })
        }
        (Err(problem), _) | (_, Err(problem)) => problem_page(frame, problem),
    }
}

/// The form that asks for a verification: `channel`.
#[derive(Deserialize)]
pub struct VerifyForm {
    csrf: String,
    channel: Channel,
}

/// `POST /agency/records/{id}/verifications`: the broker sends the traveller a code or
/// a link (`service::contact_verifications`), and the page shows it on its way.
pub async fn ask_verification(
    State(state): State<AppState>,
    lang: Lang,
    RequestId(request_id): RequestId,
    AgencySession(session): AgencySession,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let asked = async {
        let form: VerifyForm = form::parse(&body)?;
        session.check_csrf(&form.csrf)?;
        let request = VerificationRequest {
            channel: form.channel,
        };
        contact_verifications::request(&state, &request_id, &session.party, &id, request).await
    };
    let (verification, error) = match asked.await {
        Ok(verification) => (Some(verification), None),
        Err(problem) => (None, Some(problem.detail().to_string())),
    };
    record_page(&state, lang, &session, id, verification, error).await
}

/// The form that answers a verification: the code the traveller read.
#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// `POST /agency/verifications/{id}/confirmation`: the agency types the code the
/// traveller read to it.
pub async fn confirm_verification(
    State(state): State<AppState>,
    lang: Lang,
    RequestId(request_id): RequestId,
    AgencySession(session): AgencySession,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let frame = || Frame::new(lang, "/agency", Some(&session), "records");
    let form = match form::parse::<CodeForm>(&body)
        .and_then(|form| session.check_csrf(&form.csrf).map(|()| form))
    {
        Ok(form) => form,
        Err(problem) => return problem_page(frame(), problem),
    };
    let by = Answerer::Agency(&session.party);
    match contact_verifications::confirm(&state, &request_id, by, &id, &form.code).await {
        Ok(confirmed) => {
            let consent = confirmed.verification.consent_id.clone();
            record_page(
                &state,
                lang,
                &session,
                consent,
                Some(confirmed.verification),
                None,
            )
            .await
        }
        Err(problem) => match contact_verifications::read(&state, &session.party, &id).await {
            Ok(verification) => {
                let consent = verification.consent_id.clone();
                let why = problem.detail().to_string();
                record_page(
                    &state,
                    lang,
                    &session,
                    consent,
                    Some(verification),
                    Some(why),
                )
                .await
            }
            Err(_) => problem_page(frame(), problem),
        },
    }
}

/// The receipts feed's search form, as typed.
pub struct ReceiptFilters {
    since: String,
    until: String,
    airline: String,
    kind: String,
    purpose: String,
    event_reference: String,
    consent_id: String,
    traveller_id: String,
}

/// `GET /agency/receipts`: every use of the agency's clients' data.
#[derive(Template)]
#[template(path = "agency/receipts.html")]
pub struct ReceiptsPage {
    frame: Frame,
    filters: ReceiptFilters,
    kinds: [&'static str; 5],
    error: Option<String>,
    receipts: Vec<UseReceipt>,
    next: Option<String>,
    first: Option<String>,
    time_to_tell: Option<TimeToTell>,
    erasures_overdue: Vec<crate::service::erasures::ErasureRequest>,
}

impl ReceiptsPage {
    /// The page with the filters of `query` and no receipts yet.
    fn empty(frame: Frame, query: Option<&str>) -> Self {
        let f = |name| form::field(query, name);
        Self {
            frame,
            filters: ReceiptFilters {
                since: f("since"),
                until: f("until"),
                airline: f("airline"),
                kind: f("kind"),
                purpose: f("purpose"),
                event_reference: f("event_reference"),
                consent_id: f("consent_id"),
                traveller_id: f("traveller_id"),
            },
            kinds: ["grant", "release", "relay", "delivery", "receipt"],
            error: None,
            receipts: Vec::new(),
            next: None,
            first: None,
            time_to_tell: None,
            erasures_overdue: Vec::new(),
        }
    }
}

/// The receipts feed, filtered like `GET /v1/receipts`.
pub async fn receipts(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
    uri: Uri,
) -> Response {
    let query = uri.query();
    let frame = Frame::new(lang, "/agency/receipts", Some(&session), "receipts");
    let mut page = ReceiptsPage::empty(frame, query);
    let listed = match form::query::<ReceiptQuery>(&form::page_query(query, PAGE)) {
        Ok(q) => service::agency::receipts(&state, &session.party, q).await,
        Err(problem) => Err(problem),
    };
    match listed {
        Ok(ReceiptPage {
            receipts,
            next_after,
            time_to_tell,
            erasures_overdue,
        }) => {
            page.receipts = receipts;
            page.time_to_tell = time_to_tell;
            page.erasures_overdue = erasures_overdue;
            (page.next, page.first) = form::pager(query, next_after.map(|a| a.to_string()));
            ok(&page)
        }
        Err(problem) => search_refused(page, problem),
    }
}

/// `GET /agency/disruptions`: the open disruptions touching the agency's clients.
#[derive(Template)]
#[template(path = "agency/disruptions.html")]
pub struct DisruptionsPage {
    frame: Frame,
    disruptions: Vec<AgencyDisruption>,
}

/// Each open disruption with the agency's clients on its flights and the last step
/// under it for each.
pub async fn disruptions(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
) -> Response {
    let frame = Frame::new(lang, "/agency/disruptions", Some(&session), "disruptions");
    match service::agency_disruptions::open_for(&state, &session.party).await {
        Ok(disruptions) => ok(&DisruptionsPage { frame, disruptions }),
        Err(problem) => problem_page(frame, problem),
    }
}

/// `GET /agency/contacts`: the contacts to fix before the trip.
#[derive(Template)]
#[template(path = "agency/contacts.html")]
pub struct ContactsPage {
    frame: Frame,
    contacts: Vec<service::reachability::ContactToFix>,
    coverage: service::reachability::Coverage,
}

/// The agency's clients whose contact is known not to reach them, soonest departure
/// first: what to fix before the trip.
pub async fn contacts(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
) -> Response {
    let frame = Frame::new(lang, "/agency/contacts", Some(&session), "contacts");
    match service::reachability::to_fix(&state, &session.party).await {
        Ok(listed) => ok(&ContactsPage {
            frame,
            contacts: listed.contacts,
            coverage: listed.coverage,
        }),
        Err(problem) => problem_page(frame, problem),
    }
}
