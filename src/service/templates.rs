//! The airline's message templates: what the broker relays to the travellers whose
//! agency chose relay, when the airline declares or updates a disruption.
//!
//! A template is checked when it is registered as a relayed message is checked when it
//! is sent (length once filled, control characters, links only to the airline's
//! domains), so a declaration never finds it unsendable. Every change is audited.

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::delivery::Channel;
use crate::domain::language::Language;
use crate::domain::party::Party;
use crate::domain::template::{self, Slots, Template, TemplateEvent};
use crate::service::relay::{check_links, check_text, RelayRequest};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::templates::{self, Stored};
use serde::{Deserialize, Serialize};

/// One registered template, as answered.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TemplateView {
    /// `cancellation`, `delay`, … or `update`.
    pub event: String,
    /// Its language.
    pub language: String,
    /// The texts.
    #[serde(flatten)]
    pub template: Template,
}

/// Every template of the airline.
#[derive(Serialize, Deserialize, Debug)]
pub struct TemplateList {
    /// By event, then language.
    pub templates: Vec<TemplateView>,
}

/// Registers or replaces the airline's template for `event` in `language`.
pub async fn set(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    event: &str,
    language: &str,
    body: Template,
) -> Result<TemplateView, Error> {
    let event = TemplateEvent::parse(event)
        .map_err(|reason| Error::field(ErrorKind::InvalidField, "event", reason))?;
    let language = Language::parse(language)
        .map_err(|reason| Error::field(ErrorKind::InvalidField, "language", reason))?;
    let body = Template {
        sms: body.sms.map(|t| t.trim().to_string()),
        email_subject: body.email_subject.map(|t| t.trim().to_string()),
        email: body.email.map(|t| t.trim().to_string()),
    };
    body.check()
        .map_err(|(field, reason)| Error::field(ErrorKind::InvalidField, field, reason))?;
    let category = match event {
        TemplateEvent::Declared(category) => category,
        TemplateEvent::Update => crate::domain::purpose::EventCategory::Delay,
    };
    // Checked filled with the longest values a slot takes, as the relay checks it.
    let sample = Slots::sample();
    for (channel, subject, text, field) in [
        (Channel::Sms, None, &body.sms, "sms"),
        (
            Channel::Email,
            body.email_subject.as_ref(),
            &body.email,
            "email",
        ),
    ] {
        let Some(text) = text else { continue };
        let request = RelayRequest {
            token: String::new(),
            channel,
            category: category.as_str().to_string(),
            subject: subject.map(|s| template::fill(s, &sample)),
            text: template::fill(text, &sample),
        };
        let renamed = |error: Error| rename(error, field);
        check_text(state, &request).map_err(renamed)?;
        check_links(state, airline, &request)
            .await
            .map_err(renamed)?;
    }
    let mut tx = state.store.begin().await?;
    let now = state.clock.now();
    templates::upsert(
        &mut tx,
        &airline.id,
        event.as_str(),
        language.as_str(),
        &body,
        now,
    )
    .await?;
    let entry = NewEntry::new(
        now,
        request_id,
        airline,
        Action::SettingsChange,
        Outcome::Changed,
    )
    .airline(airline.id.clone())
    .because("message_template_changed");
    state.commit_with_audit(tx, entry).await?;
    Ok(TemplateView {
        event: event.as_str().to_string(),
        language: language.as_str().to_string(),
        template: body,
    })
}

/// Every template of the airline.
pub async fn list(state: &AppState, airline: &Party) -> Result<TemplateList, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let stored = templates::of_airline(&mut conn, &airline.id, None).await?;
    Ok(TemplateList {
        templates: stored.into_iter().map(view).collect(),
    })
}

/// The airline's templates for an event, to choose from per traveller.
pub struct Choice(Vec<Stored>);

impl Choice {
    /// Reads the airline's templates for `event`.
    pub async fn of(
        state: &AppState,
        airline: &Party,
        event: TemplateEvent,
    ) -> Result<Self, Error> {
        let mut conn = state.store.reader().acquire().await?;
        Ok(Self(
            templates::of_airline(&mut conn, &airline.id, Some(event.as_str())).await?,
        ))
    }

    /// The template for a traveller of `language`: theirs, else its base language's
    /// (`fr` for `fr-CA`), else the fallback language's, else the first registered;
    /// none when the airline registered none for the event. Returns the language
    /// chosen with it.
    pub fn for_language(&self, language: Option<&str>) -> Option<(&str, &Template)> {
        let base = language.and_then(|l| l.split('-').next());
        [language, base, Some(template::FALLBACK_LANGUAGE)]
            .into_iter()
            .flatten()
            .find_map(|wanted| self.0.iter().find(|s| s.language == wanted))
            .or_else(|| self.0.first())
            .map(|s| (s.language.as_str(), &s.template))
    }
}

fn view(stored: Stored) -> TemplateView {
    TemplateView {
        event: stored.event,
        language: stored.language,
        template: stored.template,
    }
}

/// A relay check's error, naming the template's field instead of the message's.
fn rename(error: Error, field: &str) -> Error {
    let Some(first) = error.errors().first() else {
        return error;
    };
    let named = match (field, first.field.as_str()) {
        ("email", "subject") => "email_subject",
        (field, _) => field,
    };
    Error::field(error.kind(), named, first.reason.clone())
}
