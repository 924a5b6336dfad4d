//! The parties that hold API keys: agencies, airlines and compliance officers.

use std::fmt;

/// What kind of party a caller is; each route accepts exactly one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// A travel agency: uploads consented contacts.
    Agency,
    /// An airline: asks for release tokens and redeems them.
    Airline,
    /// A compliance officer: reads the audit trail.
    Officer,
}

impl PartyKind {
    /// The word used in storage and in API key prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agency => "agency",
            Self::Airline => "airline",
            Self::Officer => "officer",
        }
    }
    /// Parses the stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        [Self::Agency, Self::Airline, Self::Officer]
            .into_iter()
            .find(|k| k.as_str() == word)
    }
    /// The readable prefix of this kind's API keys.
    pub fn api_key_prefix(self) -> &'static str {
        match self {
            Self::Agency => "pas_agency_",
            Self::Airline => "pas_airline_",
            Self::Officer => "pas_officer_",
        }
    }
    /// The prefix of this kind's party ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::Agency => super::ids::AGENCY,
            Self::Airline => super::ids::AIRLINE,
            Self::Officer => super::ids::OFFICER,
        }
    }
}

impl fmt::Display for PartyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A party as the rest of the broker knows it once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The party's id (`agy_…`, `air_…`, `off_…`).
    pub id: String,
    /// What kind of party it is.
    pub kind: PartyKind,
    /// IATA agency number or airline designator; none for officers.
    pub code: Option<String>,
}

/// An IATA agency numeric code: eight digits, the last a check digit equal to the
/// first seven taken as a number modulo 7.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IataAgencyNumber(String);

impl IataAgencyNumber {
    /// Parses and checks an agency number.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be the eight-digit IATA agency numeric code".into());
        }
        let body: u32 = raw[..7].parse().expect("seven digits fit a u32");
        let check = u32::from(raw.as_bytes()[7] - b'0');
        if body % 7 != check {
            return Err(
                "has a wrong check digit (the eighth digit is the first seven modulo 7)".into(),
            );
        }
        Ok(Self(raw.to_string()))
    }
    /// The eight digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(IataAgencyNumber);

/// A party's display name (an organisation, or an officer's name).
#[derive(Clone, PartialEq, Eq)]
pub struct PartyName(String);

impl PartyName {
    /// Parses a name of 1 to 200 printable characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
            return Err("must be 1 to 200 printable characters".into());
        }
        Ok(Self(value.to_string()))
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PartyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartyName(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_numbers_carry_a_modulo_seven_check_digit() {
        assert!(IataAgencyNumber::parse("12345675").is_ok());
        assert!(IataAgencyNumber::parse("12345670")
            .unwrap_err()
            .contains("check digit"));
        assert!(IataAgencyNumber::parse("1234567").is_err());
    }
}
