//! `GET /console/integrity`: the log's size, its latest checkpoint and the last
//! verification, with a button that verifies the whole log in the background; and the
//! form that signs a checkpoint at once.

use crate::domain::time::format_time;
use crate::service::proofs;
use crate::service::verifications::{self, LogState};
use crate::service::AppState;
use crate::web::form;
use crate::web::i18n::Lang;
use crate::web::session::OfficerSession;
use crate::web::{ok, problem_page, Frame};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

/// `GET /console/integrity`: latest checkpoint, tree size, last verification, and the
/// verification under way.
#[derive(Template)]
#[template(path = "console/integrity.html")]
pub struct IntegrityPage {
    frame: Frame,
    tree_size: i64,
    origin: String,
    log_key: String,
    checkpoint: Option<CheckpointView>,
    last: Option<VerificationView>,
    running: Option<RunningView>,
}

/// The latest checkpoint as shown.
pub struct CheckpointView {
    size: u64,
    signed_at: String,
    root: String,
    note: String,
}

/// The last verification as shown.
pub struct VerificationView {
    finished_at: String,
    seconds: String,
    entries: i64,
    checkpoints: i64,
    root: String,
    intact: bool,
    finding: String,
    finding_index: Option<i64>,
}

/// A verification under way.
pub struct RunningView {
    checked: u64,
    total: u64,
    percent: u64,
}

/// The integrity panel.
pub async fn integrity(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
) -> Response {
    let frame = Frame::new(lang, "/console/integrity", Some(&session), "integrity");
    match verifications::log_state(&state).await {
        Ok(log) => ok(&IntegrityPage::of(frame, &state, log)),
        Err(problem) => problem_page(frame, problem),
    }
}

impl IntegrityPage {
    fn of(frame: Frame, state: &AppState, log: LogState) -> Self {
        let LogState {
            tree_size,
            checkpoint,
            last,
        } = log;
        Self {
            tree_size,
            origin: state.checkpointer.settings().origin.clone(),
            log_key: state.checkpointer.log_key().to_string(),
            checkpoint: checkpoint.map(|c| CheckpointView {
                size: c.tree_size,
                signed_at: format_time(c.signed_at),
                root: STANDARD.encode(c.root),
                note: c.note,
            }),
            last: last.map(|v| VerificationView {
                finished_at: format_time(v.finished_at),
                seconds: format!(
                    "{:.1}",
                    (v.finished_at - v.started_at).as_seconds_f64().max(0.0)
                ),
                entries: v.entries,
                checkpoints: v.checkpoints,
                root: STANDARD.encode(&v.root),
                intact: v.finding.is_none(),
                finding: v.finding.unwrap_or_default(),
                finding_index: v.finding_index,
            }),
            running: state.verifications.running().map(|run| RunningView {
                checked: run.checked(),
                total: run.total(),
                percent: run.percent(),
            }),
            frame,
        }
    }
}

/// The verification form.
#[derive(Deserialize)]
pub struct VerifyForm {
    csrf: String,
}

/// `POST /console/integrity/verify`: starts a verification and goes back to the panel,
/// which shows its progress.
pub async fn verify(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    body: Bytes,
) -> Response {
    let checked = form::parse::<VerifyForm>(&body).and_then(|f| session.check_csrf(&f.csrf));
    if let Err(problem) = checked {
        let frame = Frame::new(lang, "/console/integrity", Some(&session), "integrity");
        return problem_page(frame, problem);
    }
    state.verifications.start(&state, &session.party.id);
    Redirect::to("/console/integrity").into_response()
}

/// The form that signs a checkpoint from an entry's page.
#[derive(Deserialize)]
pub struct CheckpointForm {
    csrf: String,
    /// The entry to go back to.
    entry: u64,
}

/// `POST /console/checkpoints`: signs a checkpoint of the log as it is now (as
/// `POST /v1/audit/checkpoints` does), then goes back to the entry, whose proof it
/// now covers.
pub async fn sign_checkpoint(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    body: Bytes,
) -> Response {
    let frame = || Frame::new(lang, "/console", Some(&session), "audit");
    let form = match form::parse::<CheckpointForm>(&body) {
        Ok(form) => form,
        Err(problem) => return problem_page(frame(), problem),
    };
    if let Err(problem) = session.check_csrf(&form.csrf) {
        return problem_page(frame(), problem);
    }
    let signed = proofs::sign(&state).await;
    match signed {
        Ok(_) => Redirect::to(&format!("/console/entries/{}", form.entry)).into_response(),
        Err(problem) => problem_page(frame(), problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    fn panel(running: Option<RunningView>) -> String {
        IntegrityPage {
            frame: Frame::new(Lang::En, "/console/integrity", None, "integrity"),
            tree_size: 10,
            origin: "example/audit".into(),
            log_key: "example/audit+00000000+AA==".into(),
            checkpoint: None,
            last: None,
            running,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn a_running_verification_shows_its_progress_and_the_page_refreshes_itself() {
        let html = panel(Some(RunningView {
            checked: 4_000,
            total: 10_000,
            percent: 40,
        }));
        assert!(html.contains(r#"<progress id="progress" max="100" value="40">"#));
        assert!(html.contains("4000 / 10000"));
        assert!(html.contains(r#"<meta http-equiv="refresh" content="1">"#));
        assert!(
            !html.contains(r#"id="verify""#),
            "no second run while one runs"
        );
    }

    #[test]
    fn an_idle_panel_offers_the_button_and_does_not_refresh() {
        let html = panel(None);
        assert!(html.contains(r#"id="verify""#));
        assert!(!html.contains("http-equiv"));
    }
}
