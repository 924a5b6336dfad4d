//! Why a contact may be used: purposes and the operational events behind them.

use std::fmt;

/// A purpose of processing named in a consent or in an airline's request.
///
/// The operational ones are IATA Resolution 830d's list of operational notifications.
/// The marketing ones are known so that a request for them is refused by name (and
/// audited) instead of being rejected as an unknown word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Changed departure or arrival time.
    ScheduleChange,
    /// Delay.
    Delay,
    /// Cancellation.
    Cancellation,
    /// Proactive rebooking.
    Rebooking,
    /// Seat change.
    SeatChange,
    /// Gate change.
    GateChange,
    /// Baggage updates.
    Baggage,
    /// Check-in open.
    CheckIn,
    /// Marketing: never granted.
    Marketing,
    /// Direct marketing: never granted.
    DirectMarketing,
}

impl Purpose {
    /// Every purpose, in a stable order.
    pub const ALL: [Purpose; 10] = [
        Self::ScheduleChange,
        Self::Delay,
        Self::Cancellation,
        Self::Rebooking,
        Self::SeatChange,
        Self::GateChange,
        Self::Baggage,
        Self::CheckIn,
        Self::Marketing,
        Self::DirectMarketing,
    ];

    /// Whether this purpose is an operational notification (IATA 830d).
    pub fn is_operational(self) -> bool {
        !matches!(self, Self::Marketing | Self::DirectMarketing)
    }

    /// The snake_case word used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScheduleChange => "schedule_change",
            Self::Delay => "delay",
            Self::Cancellation => "cancellation",
            Self::Rebooking => "rebooking",
            Self::SeatChange => "seat_change",
            Self::GateChange => "gate_change",
            Self::Baggage => "baggage",
            Self::CheckIn => "check_in",
            Self::Marketing => "marketing",
            Self::DirectMarketing => "direct_marketing",
        }
    }

    /// Parses the stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == word)
    }

    /// The W3C Data Privacy Vocabulary term for this purpose.
    ///
    /// DPV has no "travel disruption" purpose: every operational notification maps to
    /// `dpv:CommunicationManagement` (in the context of `dpv:RequestedServiceProvision`,
    /// see [`Purpose::DPV_CONTEXT`]); the marketing words map to the DPV terms that
    /// make the deny list.
    pub fn dpv_term(self) -> &'static str {
        match self {
            Self::Marketing => "dpv:Marketing",
            Self::DirectMarketing => "dpv:DirectMarketing",
            _ => "dpv:CommunicationManagement",
        }
    }

    /// The DPV context every operational purpose is given in: the traveller asked
    /// for the flight, and the notification is part of providing it.
    pub const DPV_CONTEXT: &'static str = "dpv:RequestedServiceProvision";

    /// A sentence that says what the purpose is, for receipts.
    pub fn description(self) -> &'static str {
        match self {
            Self::ScheduleChange => "Notification of a changed departure or arrival time",
            Self::Delay => "Notification of a delay",
            Self::Cancellation => "Notification of a cancellation",
            Self::Rebooking => "Notification of a proactive rebooking",
            Self::SeatChange => "Notification of a seat change",
            Self::GateChange => "Notification of a gate change",
            Self::Baggage => "Baggage updates",
            Self::CheckIn => "Notification that check-in is open",
            Self::Marketing => "Marketing",
            Self::DirectMarketing => "Direct marketing",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of operational event that makes an airline ask for a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    /// The flight is cancelled.
    Cancellation,
    /// The flight is delayed.
    Delay,
    /// The schedule changed.
    ScheduleChange,
    /// The flight was diverted.
    Diversion,
    /// The passenger was rebooked.
    Rebooking,
    /// The seat changed.
    SeatChange,
    /// The gate changed.
    GateChange,
    /// Baggage was delayed, damaged or found.
    Baggage,
    /// Check-in opened.
    CheckIn,
}

impl EventCategory {
    /// Every category.
    pub const ALL: [EventCategory; 9] = [
        Self::Cancellation,
        Self::Delay,
        Self::ScheduleChange,
        Self::Diversion,
        Self::Rebooking,
        Self::SeatChange,
        Self::GateChange,
        Self::Baggage,
        Self::CheckIn,
    ];
    /// The category a stored word names.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == word)
    }
    /// The notification an airline sends about an event of this category (a
    /// diversion changes the schedule).
    pub fn notification(self) -> Purpose {
        match self {
            Self::Cancellation => Purpose::Cancellation,
            Self::Delay => Purpose::Delay,
            Self::ScheduleChange | Self::Diversion => Purpose::ScheduleChange,
            Self::Rebooking => Purpose::Rebooking,
            Self::SeatChange => Purpose::SeatChange,
            Self::GateChange => Purpose::GateChange,
            Self::Baggage => Purpose::Baggage,
            Self::CheckIn => Purpose::CheckIn,
        }
    }
    /// The snake_case word used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancellation => "cancellation",
            Self::Delay => "delay",
            Self::ScheduleChange => "schedule_change",
            Self::Diversion => "diversion",
            Self::Rebooking => "rebooking",
            Self::SeatChange => "seat_change",
            Self::GateChange => "gate_change",
            Self::Baggage => "baggage",
            Self::CheckIn => "check_in",
        }
    }
}

/// The airline's own reference for a disruption (`IRR-2026-1201-AF1234`): 1 to 64
/// letters, digits and `-_.:/`. Free text is refused so that it cannot carry a name or
/// a contact into the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReference(String);

impl EventReference {
    /// Parses a reference.
    pub fn parse(raw: &str) -> Result<Self, String> {
        super::short_word(raw, 64, b"-_.:/").map(Self)
    }
    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(EventReference);

/// The event an airline names when it asks for a contact.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// What happened.
    pub category: EventCategory,
    /// The airline's own disruption reference.
    pub reference: EventReference,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marketing_purposes_are_not_operational() {
        let not_operational: Vec<_> = Purpose::ALL
            .into_iter()
            .filter(|p| !p.is_operational())
            .collect();
        assert_eq!(
            not_operational,
            [Purpose::Marketing, Purpose::DirectMarketing]
        );
    }

    #[test]
    fn every_operational_purpose_maps_to_communication_management_and_marketing_to_the_deny_list() {
        for p in Purpose::ALL {
            let expected = if p.is_operational() {
                "dpv:CommunicationManagement"
            } else {
                assert!(p.dpv_term().contains("Marketing"));
                continue;
            };
            assert_eq!(p.dpv_term(), expected);
        }
    }

    #[test]
    fn purposes_round_trip_through_their_word() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::from_word(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn event_references_refuse_free_text() {
        assert!(EventReference::parse("IRR-2026-1201/AF1234").is_ok());
        assert!(EventReference::parse("call Marie on +33612345678").is_err());
        assert!(EventReference::parse("").is_err());
    }
}
