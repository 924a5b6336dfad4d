//! The agency's view: its records (each with its countersigned receipt), every use
//! of its clients' data (the receipts feed) and the open disruptions touching its
//! clients; uploads are `upload.rs`. Contacts are
//! never shown here: the agency holds them already, and a page is one more place they
//! could leak from.

use super::form;
use super::i18n::Lang;
use super::session::AgencySession;
use super::{ok, problem_page, search_refused, Frame, Search};
use crate::domain::scope::ConsentState;
use crate::service;
use crate::service::agency::{ReceiptPage, ReceiptQuery, TimeToTell};
use crate::service::agency_disruptions::AgencyDisruption;
use crate::service::records::{self, ListQuery, RecordPage, RecordView};
use crate::service::uses::UseReceipt;
use crate::service::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;

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

/// `GET /agency/records/{id}`: one record and its countersigned receipt.
#[derive(Template)]
#[template(path = "agency/record.html")]
pub struct RecordDetailPage {
    frame: Frame,
    record: RecordView,
    receipt: String,
}

/// One record.
pub async fn record(
    State(state): State<AppState>,
    lang: Lang,
    AgencySession(session): AgencySession,
    Path(id): Path<String>,
) -> Response {
    let frame = Frame::new(
        lang,
        &format!("/agency/records/{id}"),
        Some(&session),
        "records",
    );
    let agency = &session.party;
    let detail = records::read(&state, agency, id.clone()).await;
    let receipt = records::receipt(&state, agency, id).await;
    match (detail, receipt) {
        (Ok(detail), Ok(receipt)) => ok(&RecordDetailPage {
            frame,
            record: detail.record,
            receipt: serde_json::to_string_pretty(&receipt).unwrap_or_default(),
        }),
        (Err(problem), _) | (_, Err(problem)) => problem_page(frame, problem),
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
