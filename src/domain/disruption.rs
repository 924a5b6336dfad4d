//! A disruption: the operational event an airline declares (a cancellation, a delay
//! with its new time, a diversion…) and under which alone it is granted contacts.
//!
//! Before disruptions were records, the event behind a grant was whatever text the
//! airline wrote, so a daily harvest of every flight looked like a real cancellation.
//! Now a grant names a disruption the airline declared (audited, budgeted, seen by the
//! agencies of the travellers it affects), and the policies decide on its facts.

use super::booking::{Airport, Flight, FlightDate};
use super::purpose::{EventCategory, EventReference};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Prefix of disruption ids.
pub const ID_PREFIX: &str = "dis";

/// Most flights one declaration may carry: a closure of a hub for a morning, not a
/// season. Larger events are several declarations.
pub const MAX_FLIGHTS: usize = 200;

/// Longest note an airline may leave for agencies and officers.
pub const MAX_NOTE_CHARS: usize = 500;

/// A disruption's id as a request names it: `dis_` and 1 to 60 lower-case letters
/// and digits. Anything else is refused before it can reach the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisruptionId(String);

impl DisruptionId {
    /// Parses an id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = raw.strip_prefix("dis_").is_some_and(|rest| {
            (1..=60).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err("must be a disruption id (`dis_` and letters or digits), as POST /v1/disruptions answered".into())
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(DisruptionId);

/// Where a disruption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisruptionState {
    /// Declared, not changed since.
    Open,
    /// Declared, then updated (a new time, a new note); still open.
    Updated,
    /// Over: no token is granted under it any more and the ones granted are revoked.
    Closed,
}

impl DisruptionState {
    /// The stored word, and the one the policies see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Updated => "updated",
            Self::Closed => "closed",
        }
    }
    /// The state a stored word names.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "open" => Some(Self::Open),
            "updated" => Some(Self::Updated),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
    /// Whether tokens may still be granted under it.
    pub fn is_open(self) -> bool {
        self != Self::Closed
    }
}

/// The airline's note to agencies and officers: one line of plain text, at most
/// [`MAX_NOTE_CHARS`] characters. It is shown, never sent to a traveller (messages to
/// travellers are filled from templates) and never written to the audit log.
#[derive(Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    /// Parses a note.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let note = raw.trim();
        if note.is_empty() {
            return Err("must not be empty (leave it out for no note)".into());
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(format!("must be at most {MAX_NOTE_CHARS} characters"));
        }
        if note.chars().any(char::is_control) {
            return Err("must be one line of text, without control characters".into());
        }
        Ok(Self(note.to_string()))
    }
    /// The note.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(Note);

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Free text may hold anything: it stays out of logs.
        write!(f, "Note({} chars)", self.0.chars().count())
    }
}

/// A declared disruption, as stored.
#[derive(Debug, Clone)]
pub struct Disruption {
    /// Its id (`dis_…`), the event reference of every grant under it.
    pub id: String,
    /// The airline that declared it.
    pub airline_id: String,
    /// What happened (an update may change it).
    pub category: EventCategory,
    /// The airline's own reference.
    pub reference: String,
    /// When it happened.
    pub occurred_at: OffsetDateTime,
    /// The new departure time, if one was given.
    pub new_departure: Option<OffsetDateTime>,
    /// The airline's note to agencies and officers.
    pub note: Option<String>,
    /// Where it stands.
    pub state: DisruptionState,
    /// 1 when declared, one more for each update and for the closing.
    pub revision: i64,
    /// When it was declared.
    pub declared_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// When it was closed.
    pub closed_at: Option<OffsetDateTime>,
    /// The flights it carries.
    pub flights: Vec<Flight>,
    /// The airport closure it was declared as, if it was.
    pub closure: Option<Closure>,
}

/// An airport's closure: every flight of the airline from or to `airport` departing
/// from `from` to `until` (local departure dates, inclusive), as the agencies'
/// segments name their airports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Closure {
    /// The airport closed.
    pub airport: Airport,
    /// The first departure date it disrupts.
    pub from: FlightDate,
    /// The last.
    pub until: FlightDate,
}

/// The longest closure one declaration covers, in days of departures.
pub const MAX_CLOSURE_DAYS: i64 = 3;

impl Closure {
    /// Checks the window: in order, and at most [`MAX_CLOSURE_DAYS`] days.
    pub fn check(&self) -> Result<(), Unfit> {
        let days = (self.until.date() - self.from.date()).whole_days();
        if days < 0 {
            return Err(Unfit {
                field: "closure.until".into(),
                reason: "must not be before `from`".into(),
            });
        }
        if days >= MAX_CLOSURE_DAYS {
            return Err(Unfit {
                field: "closure.until".into(),
                reason: format!(
                    "must be within {MAX_CLOSURE_DAYS} days of departures from `from`: declare a longer closure again as it goes on"
                ),
            });
        }
        Ok(())
    }
}

impl Disruption {
    /// Whether it carries this flight.
    pub fn carries(&self, flight: &Flight) -> bool {
        self.flights.iter().any(|f| f == flight)
    }
}

/// What an airline declares.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// The flights it carries, each operated by the declaring airline (or none, for
    /// a `closure`).
    #[serde(default)]
    pub flights: Vec<Flight>,
    /// Instead of flights: an airport's closure, which carries every flight of the
    /// airline from or to the airport in the window that the broker knows of.
    #[serde(default)]
    pub closure: Option<Closure>,
    /// What happened.
    pub category: EventCategory,
    /// The airline's own reference, one disruption per reference.
    pub reference: EventReference,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The new departure time of a delay or schedule change.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub new_departure: Option<OffsetDateTime>,
    /// A note for agencies and officers.
    #[serde(default)]
    pub note: Option<Note>,
    /// Whether to tell the travellers now (the default): relay the airline's template
    /// to those whose agency chose relay, and answer with the tokens of the others.
    /// `false` declares only; the airline then asks per flight, naming the disruption.
    #[serde(default = "tell_now")]
    pub tell: bool,
}

fn tell_now() -> bool {
    true
}

/// What an airline changes of an open disruption; what it leaves out stays.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// A new category (a delay that became a cancellation).
    #[serde(default)]
    pub category: Option<EventCategory>,
    /// The new departure time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub new_departure: Option<OffsetDateTime>,
    /// A new note.
    #[serde(default)]
    pub note: Option<Note>,
}

/// Why a declaration cannot be taken, by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    /// The field at fault (`flights[2].carrier`).
    pub field: String,
    /// Why.
    pub reason: String,
}

impl Declaration {
    /// Checks what parsing cannot: at least one flight and at most [`MAX_FLIGHTS`],
    /// no repeats, each operated by `designator`; an event not in the future (a
    /// minute's grace for clocks); a new time only for an event that has one.
    pub fn check(&self, designator: &str, now: OffsetDateTime) -> Result<(), Unfit> {
        let unfit = |field: String, reason: &str| Unfit {
            field,
            reason: reason.to_string(),
        };
        if self.flights.is_empty() || self.flights.len() > MAX_FLIGHTS {
            return Err(unfit(
                "flights".into(),
                &format!("must name 1 to {MAX_FLIGHTS} flights"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, flight) in self.flights.iter().enumerate() {
            if flight.carrier.as_str() != designator {
                return Err(unfit(
                    format!("flights[{i}].carrier"),
                    "must be your own designator: an airline declares only the flights it operates",
                ));
            }
            if !seen.insert(flight.label()) {
                return Err(unfit(format!("flights[{i}]"), "is named twice"));
            }
        }
        if self.occurred_at > now + time::Duration::minutes(1) {
            return Err(unfit(
                "occurred_at".into(),
                "must not be in the future: declare what has happened",
            ));
        }
        if self.new_departure.is_some() && !has_new_time(self.category) {
            return Err(unfit(
                "new_departure".into(),
                "is only for a delay, a schedule change or a rebooking",
            ));
        }
        Ok(())
    }
}

impl Change {
    /// Checks that it changes something, and that a new time fits the category it
    /// leaves the disruption with.
    pub fn check(&self, category: EventCategory) -> Result<(), Unfit> {
        if self.category.is_none() && self.new_departure.is_none() && self.note.is_none() {
            return Err(Unfit {
                field: "body".into(),
                reason: "must change at least one of `category`, `new_departure`, `note`".into(),
            });
        }
        let category = self.category.unwrap_or(category);
        if self.new_departure.is_some() && !has_new_time(category) {
            return Err(Unfit {
                field: "new_departure".into(),
                reason: "is only for a delay, a schedule change or a rebooking".into(),
            });
        }
        Ok(())
    }
}

/// Whether an event of this category moves the departure.
fn has_new_time(category: EventCategory) -> bool {
    matches!(
        category,
        EventCategory::Delay | EventCategory::ScheduleChange | EventCategory::Rebooking
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declaration(flights: serde_json::Value) -> Declaration {
        serde_json::from_value(serde_json::json!({
            "flights": flights,
            "category": "cancellation",
            "reference": "IRR-1",
            "occurred_at": "2026-12-01T06:00:00Z",
        }))
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-01 07:00 UTC)
    }

    #[test]
    fn a_declaration_names_only_flights_of_the_declaring_airline() {
        let d = declaration(serde_json::json!([
            {"carrier": "AF", "flight_number": "1", "date": "2026-12-01"},
            {"carrier": "KL", "flight_number": "2", "date": "2026-12-01"},
        ]));
        let unfit = d.check("AF", now()).unwrap_err();
        assert_eq!(unfit.field, "flights[1].carrier");
    }

    #[test]
    fn a_declaration_names_each_flight_once_and_at_least_one() {
        let f = serde_json::json!({"carrier": "AF", "flight_number": "1", "date": "2026-12-01"});
        assert_eq!(
            declaration(serde_json::json!([f, f]))
                .check("AF", now())
                .unwrap_err()
                .field,
            "flights[1]"
        );
        assert_eq!(
            declaration(serde_json::json!([]))
                .check("AF", now())
                .unwrap_err()
                .field,
            "flights"
        );
    }

    #[test]
    fn an_event_in_the_future_and_a_new_time_for_a_cancellation_are_refused() {
        let f = serde_json::json!([{"carrier": "AF", "flight_number": "1", "date": "2026-12-01"}]);
        let mut d = declaration(f);
        d.occurred_at = now() + time::Duration::hours(1);
        assert_eq!(d.check("AF", now()).unwrap_err().field, "occurred_at");
        d.occurred_at = now();
        d.new_departure = Some(now());
        assert_eq!(d.check("AF", now()).unwrap_err().field, "new_departure");
        d.category = EventCategory::Delay;
        assert!(d.check("AF", now()).is_ok());
    }

    #[test]
    fn a_note_is_one_line_and_stays_out_of_logs() {
        assert!(Note::parse("Snow at CDG").is_ok());
        assert!(Note::parse("two\nlines").is_err());
        assert!(Note::parse("  ").is_err());
        assert!(Note::parse(&"x".repeat(MAX_NOTE_CHARS + 1)).is_err());
        let note = Note::parse("call Marie on +33612345678").unwrap();
        assert!(!format!("{note:?}").contains("Marie"));
    }

    #[test]
    fn a_change_changes_something() {
        let empty: Change = serde_json::from_str("{}").unwrap();
        assert!(empty.check(EventCategory::Delay).is_err());
        let later: Change =
            serde_json::from_str(r#"{"new_departure": "2026-12-01T10:00:00Z"}"#).unwrap();
        assert!(later.check(EventCategory::Delay).is_ok());
        assert!(later.check(EventCategory::Cancellation).is_err());
    }
}
