//! The messages an airline registers for the broker to relay when it declares or
//! updates a disruption, and how they are filled.
//!
//! A template holds the airline's words and slots the broker fills from the
//! disruption (`{flight}`, `{date}`, `{new_departure}`, `{reference}`). Nothing else
//! reaches the traveller: not a free text sent with the declaration, not a note.

use super::purpose::EventCategory;
use std::fmt::Write;

/// The slots a template may hold.
pub const SLOTS: [&str; 4] = ["flight", "date", "new_departure", "reference"];

/// The language whose template is used when none is registered in the traveller's.
pub const FALLBACK_LANGUAGE: &str = "en";

/// What a template is for: the first message of a disruption of a category, or an
/// update of any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateEvent {
    /// A disruption of this category is declared.
    Declared(EventCategory),
    /// A disruption is updated (a new time, a new category).
    Update,
}

impl TemplateEvent {
    /// Parses `cancellation`, `delay`, … or `update`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "update" {
            return Ok(Self::Update);
        }
        EventCategory::from_word(raw)
            .map(Self::Declared)
            .ok_or_else(|| {
                "must be an event category (`cancellation`, `delay`, …) or `update`".into()
            })
    }
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared(category) => category.as_str(),
            Self::Update => "update",
        }
    }
}

/// One template: an SMS text, an email (subject and text), or both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The SMS text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    /// The email's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    /// The email's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// What the slots are filled with.
#[derive(Debug, Clone)]
pub struct Slots {
    /// `AF1234`.
    pub flight: String,
    /// `2026-12-01`.
    pub date: String,
    /// `2026-12-01 14:30 UTC`, or the words for "to be confirmed".
    pub new_departure: String,
    /// The airline's reference.
    pub reference: String,
}

impl Slots {
    /// Sample values, to check a template's filled length and links when it is
    /// registered.
    pub fn sample() -> Self {
        Self {
            flight: "XX9999".into(),
            date: "2026-12-31".into(),
            new_departure: "2026-12-31 23:59 UTC".into(),
            reference: "X".repeat(64),
        }
    }
    fn get(&self, slot: &str) -> Option<&str> {
        match slot {
            "flight" => Some(&self.flight),
            "date" => Some(&self.date),
            "new_departure" => Some(&self.new_departure),
            "reference" => Some(&self.reference),
            _ => None,
        }
    }
}

impl Template {
    /// Checks the shape: at least one channel, an email's subject and text together,
    /// and only known slots. Returns the field at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.email.is_some() != self.email_subject.is_some() {
            let field = if self.email.is_some() {
                "email_subject"
            } else {
                "email"
            };
            return Err((field, "an email needs both its subject and its text".into()));
        }
        if self.sms.is_none() && self.email.is_none() {
            return Err((
                "body",
                "must hold `sms`, or `email_subject` and `email`, or all three".into(),
            ));
        }
        for (field, text) in [
            ("sms", &self.sms),
            ("email_subject", &self.email_subject),
            ("email", &self.email),
        ] {
            if let Some(text) = text {
                slots_of(text).map_err(|reason| (field, reason))?;
            }
        }
        Ok(())
    }
}

/// The slots a text names, in order; an unknown or unclosed one is refused.
fn slots_of(text: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "has a `{` without its `}`".to_string())?;
        let slot = &after[..close];
        if !SLOTS.contains(&slot) {
            return Err(format!(
                "names the slot `{{{slot}}}`; the slots are {}",
                SLOTS.map(|s| format!("{{{s}}}")).join(", ")
            ));
        }
        found.push(slot);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("has a `}` without its `{`".into());
    }
    Ok(found)
}

/// The text with its slots filled. The text was checked when registered; a slot
/// that is not known (which cannot be stored) is left as written.
pub fn fill(text: &str, slots: &Slots) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((close, slots.get(&after[..close])?)))
        {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// "To be confirmed", for a `{new_departure}` the airline has not given yet.
pub fn to_be_confirmed(language: &str) -> &'static str {
    match language.split('-').next() {
        Some("fr") => "à confirmer",
        Some("de") => "noch offen",
        Some("es") => "por confirmar",
        Some("it") => "da confermare",
        _ => "to be confirmed",
    }
}

/// A time as a traveller reads it in a message: `2026-12-01 14:30 UTC`.
pub fn departure_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let mut out = String::new();
    let _ = write!(
        out,
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Slots {
        Slots {
            flight: "AF1234".into(),
            date: "2026-12-01".into(),
            new_departure: "2026-12-01 14:30 UTC".into(),
            reference: "IRR-1".into(),
        }
    }

    #[test]
    fn slots_are_filled_and_nothing_else_is_changed() {
        assert_eq!(
            fill("Vol {flight} du {date} annulé ({reference}).", &slots()),
            "Vol AF1234 du 2026-12-01 annulé (IRR-1)."
        );
        assert_eq!(
            fill("Départ {new_departure}", &slots()),
            "Départ 2026-12-01 14:30 UTC"
        );
        assert_eq!(fill("no slot", &slots()), "no slot");
    }

    #[test]
    fn unknown_or_broken_slots_are_refused_by_field() {
        let t = |sms: &str| Template {
            sms: Some(sms.into()),
            email_subject: None,
            email: None,
        };
        assert!(t("{flight} cancelled").check().is_ok());
        assert_eq!(t("Dear {name}").check().unwrap_err().0, "sms");
        assert!(t("{flight").check().is_err());
        assert!(t("flight}").check().is_err());
        let half_email = Template {
            sms: None,
            email_subject: Some("{flight}".into()),
            email: None,
        };
        assert_eq!(half_email.check().unwrap_err().0, "email");
        let empty = Template {
            sms: None,
            email_subject: None,
            email: None,
        };
        assert_eq!(empty.check().unwrap_err().0, "body");
    }

    #[test]
    fn events_are_categories_or_update() {
        assert_eq!(TemplateEvent::parse("update"), Ok(TemplateEvent::Update));
        assert_eq!(
            TemplateEvent::parse("delay"),
            Ok(TemplateEvent::Declared(EventCategory::Delay))
        );
        assert!(TemplateEvent::parse("marketing").is_err());
    }

    #[test]
    fn a_departure_reads_in_utc_to_the_minute() {
        let at = time::macros::datetime!(2026-12-01 15:30:59 +01:00);
        assert_eq!(departure_time(at), "2026-12-01 14:30 UTC");
        assert_eq!(to_be_confirmed("fr-CA"), "à confirmer");
        assert_eq!(to_be_confirmed("nl"), "to be confirmed");
    }
}
