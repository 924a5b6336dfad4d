//! Bookings as the agency's PNR describes them: a record locator and flight segments.

use super::string_serde;
use time::Date;

/// A PNR record locator: 5 to 8 letters and digits, stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordLocator(String);

impl RecordLocator {
    /// Parses a record locator; lower case is accepted and upper-cased.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim().to_ascii_uppercase();
        if !(5..=8).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("must be 5 to 8 letters or digits".into());
        }
        Ok(Self(value))
    }
    /// The canonical upper-case form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(RecordLocator);

/// A two-character IATA airline designator (`AF`, `U2`, `9W`), stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CarrierCode(String);

impl CarrierCode {
    /// Parses a designator: two letters or digits, not both digits.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim().to_ascii_uppercase();
        let bytes = value.as_bytes();
        let well_formed = bytes.len() == 2
            && bytes.iter().all(|b| b.is_ascii_alphanumeric())
            && !bytes.iter().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err("must be a two-character IATA airline designator".into());
        }
        Ok(Self(value))
    }
    /// The canonical upper-case form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(CarrierCode);

/// A three-letter IATA airport (location) code (`CDG`, `JFK`), stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Airport(String);

impl Airport {
    /// Parses an airport code: three letters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim().to_ascii_uppercase();
        if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("must be a three-letter IATA airport code".into());
        }
        Ok(Self(value))
    }
    /// The canonical upper-case form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(Airport);

/// A flight number: 1 to 4 digits and an optional operational suffix letter.
/// Leading zeros are dropped, so `0012` and `12` are the same flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlightNumber(String);

impl FlightNumber {
    /// Parses a flight number such as `1234`, `0012` or `123A`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().to_ascii_uppercase();
        let (digits, suffix) = match raw.as_bytes().last() {
            Some(b) if b.is_ascii_alphabetic() => raw.split_at(raw.len() - 1),
            _ => (raw.as_str(), ""),
        };
        let significant = digits.trim_start_matches('0');
        let number: u16 = match significant.parse() {
            Ok(n)
                if (1..=9999).contains(&n)
                    && digits.len() <= 6
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                n
            }
            _ => return Err("must be 1 to 4 digits, optionally followed by one letter".into()),
        };
        Ok(Self(format!("{number}{suffix}")))
    }
    /// The canonical form, without leading zeros.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(FlightNumber);

/// A calendar date written `YYYY-MM-DD` (the flight's local departure date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlightDate(Date);

const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl FlightDate {
    /// Parses an ISO 8601 calendar date.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Date::parse(raw.trim(), DATE_FORMAT)
            .map(Self)
            .map_err(|_| "must be a date written YYYY-MM-DD".into())
    }
    /// The date.
    pub fn date(&self) -> Date {
        self.0
    }
    /// A calendar date as a flight date (today's, say).
    pub fn of(date: Date) -> Self {
        Self(date)
    }
    /// The `YYYY-MM-DD` form.
    pub fn as_string(&self) -> String {
        self.0.format(DATE_FORMAT).expect("a date always formats")
    }
}

impl<'de> serde::Deserialize<'de> for FlightDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}
impl serde::Serialize for FlightDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

/// One flight on one day: the unit an airline disrupts and asks about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flight {
    /// The carrier whose designator the flight number belongs to.
    pub carrier: CarrierCode,
    /// The flight number.
    pub flight_number: FlightNumber,
    /// The local departure date.
    pub date: FlightDate,
}

impl Flight {
    /// `AF1234/2026-12-01`, the form used in audit entries.
    pub fn label(&self) -> String {
        format!(
            "{}{}/{}",
            self.carrier.as_str(),
            self.flight_number.as_str(),
            self.date.as_string()
        )
    }
}

/// A flight segment of an itinerary: the flight, and where it flies from and to when
/// the agency's PNR says (an airport closure reaches the flights through them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The carrier whose designator the flight number belongs to.
    pub carrier: CarrierCode,
    /// The flight number.
    pub flight_number: FlightNumber,
    /// The local departure date.
    pub date: FlightDate,
    /// The airport it departs from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Airport>,
    /// The airport it arrives at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Airport>,
}

impl Segment {
    /// The flight, without its airports.
    pub fn flight(&self) -> Flight {
        Flight {
            carrier: self.carrier.clone(),
            flight_number: self.flight_number.clone(),
            date: self.date,
        }
    }
}

/// The booking part of a consent statement.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Booking {
    /// The agency's record locator.
    pub record_locator: RecordLocator,
    /// The flight segments of the itinerary (at least one, at most 32, no repeats).
    pub segments: Vec<Segment>,
}

/// The most segments one booking may list; real itineraries have far fewer.
pub const MAX_SEGMENTS: usize = 32;

impl Booking {
    /// Checks what the types alone cannot: a non-empty, bounded list without repeats.
    /// Returns the offending field (relative to the booking) and the reason.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.segments.is_empty() {
            return Err((
                "segments".into(),
                "must list at least one flight segment".into(),
            ));
        }
        if self.segments.len() > MAX_SEGMENTS {
            return Err((
                "segments".into(),
                format!("must list at most {MAX_SEGMENTS} segments"),
            ));
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if self.segments[..i]
                .iter()
                .any(|s| s.flight() == segment.flight())
            {
                return Err((
                    format!("segments[{i}]"),
                    "repeats an earlier segment".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_locators_are_upper_cased_and_bounded() {
        assert_eq!(RecordLocator::parse("x7k2qp").unwrap().as_str(), "X7K2QP");
        assert!(RecordLocator::parse("ABC").is_err());
        assert!(RecordLocator::parse("ABC-12").is_err());
    }

    #[test]
    fn carrier_codes_are_two_characters_not_both_digits() {
        assert_eq!(CarrierCode::parse("af").unwrap().as_str(), "AF");
        assert!(CarrierCode::parse("U2").is_ok());
        assert!(CarrierCode::parse("12").is_err());
        assert!(CarrierCode::parse("AFR").is_err());
    }

    #[test]
    fn flight_numbers_drop_leading_zeros_and_keep_a_suffix() {
        assert_eq!(FlightNumber::parse("0012").unwrap().as_str(), "12");
        assert_eq!(FlightNumber::parse("123a").unwrap().as_str(), "123A");
        assert_eq!(FlightNumber::parse("01234").unwrap().as_str(), "1234");
        assert!(FlightNumber::parse("0").is_err());
        assert!(FlightNumber::parse("12345").is_err());
        assert!(FlightNumber::parse("AB").is_err());
        assert!(FlightNumber::parse("+12").is_err());
    }

    #[test]
    fn flight_dates_are_iso_calendar_dates() {
        assert_eq!(
            FlightDate::parse("2026-12-01").unwrap().as_string(),
            "2026-12-01"
        );
        assert!(FlightDate::parse("2026-02-30").is_err());
        assert!(FlightDate::parse("01/12/2026").is_err());
    }
}
