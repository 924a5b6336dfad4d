//! The traveller: a name (personal data) and the contacts the agency holds.

use super::contact::{EmailAddress, MobileNumber};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// The most characters a surname or given name may have.
const MAX_NAME_CHARS: usize = 64;

/// One part of a traveller's name, as the agency holds it (any script, any case).
#[derive(Clone, PartialEq, Eq)]
pub struct NamePart(String);

impl NamePart {
    /// Parses a name part: 1 to 64 characters, letters, spaces, hyphens, apostrophes
    /// and dots only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.is_empty() || value.chars().count() > MAX_NAME_CHARS {
            return Err(format!("must have 1 to {MAX_NAME_CHARS} characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.' | '’'))
        {
            return Err("may only hold letters, spaces, hyphens, apostrophes and dots".into());
        }
        Ok(Self(value.to_string()))
    }
    /// The name part as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
super::string_serde!(NamePart);

impl fmt::Debug for NamePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamePart(<redacted>)")
    }
}

/// A traveller's name, as an agency or an airline writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TravellerName {
    /// Family name.
    pub surname: NamePart,
    /// Given name(s); a trailing PNR title (`MR`, `MRS`…) is ignored when matching.
    pub given_name: NamePart,
}

/// Titles that PNRs append to the given name and that are not part of the name.
const PNR_TITLES: &[&str] = &[
    "MR", "MRS", "MS", "MISS", "MSTR", "DR", "PROF", "CHD", "INF",
];

impl TravellerName {
    /// The name as a PNR holds it: `SURNAME/GIVENNAME`, in A–Z only (accents removed,
    /// spaces, hyphens and apostrophes dropped, a trailing title removed). Two writings
    /// of the same name, `Lopez-Ángel / José Mr` and `LOPEZANGEL/JOSE`, meet here.
    ///
    /// This is what an airline's request is matched on, through a keyed blind index:
    /// the clear name never reaches the database.
    pub fn pnr_form(&self) -> String {
        let surname = fold(self.surname.as_str());
        let mut given: Vec<String> = self
            .given_name
            .as_str()
            .split_whitespace()
            .map(fold)
            .collect();
        if given.len() > 1
            && given
                .last()
                .is_some_and(|w| PNR_TITLES.contains(&w.as_str()))
        {
            given.pop();
        }
        format!("{surname}/{}", given.concat())
    }
}

/// Upper-cases, strips diacritics and keeps only A–Z.
fn fold(part: &str) -> String {
    part.nfkd()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The traveller part of a consent statement.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traveller {
    /// Family name.
    pub surname: NamePart,
    /// Given name(s).
    pub given_name: NamePart,
    /// Mobile number, if the traveller gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<MobileNumber>,
    /// Email address, if the traveller gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    /// The language the traveller prefers notifications in (the SSR `/FR` suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<super::language::Language>,
}

impl Traveller {
    /// The traveller's name.
    pub fn name(&self) -> TravellerName {
        TravellerName {
            surname: self.surname.clone(),
            given_name: self.given_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(surname: &str, given: &str) -> TravellerName {
        TravellerName {
            surname: NamePart::parse(surname).unwrap(),
            given_name: NamePart::parse(given).unwrap(),
        }
    }

    #[test]
    fn names_meet_in_their_pnr_form() {
        assert_eq!(name("Lopez-Ángel", "José Mr").pnr_form(), "LOPEZANGEL/JOSE");
        assert_eq!(name("LOPEZANGEL", "JOSE").pnr_form(), "LOPEZANGEL/JOSE");
        assert_eq!(name("O'Brien", "Mary Ann").pnr_form(), "OBRIEN/MARYANN");
    }

    #[test]
    fn a_lone_given_name_that_looks_like_a_title_is_kept() {
        assert_eq!(name("Smith", "Ms").pnr_form(), "SMITH/MS");
    }

    #[test]
    fn names_with_digits_or_symbols_are_refused() {
        assert!(NamePart::parse("R2D2").is_err());
        assert!(NamePart::parse("").is_err());
        assert!(NamePart::parse("a@b").is_err());
    }
}
