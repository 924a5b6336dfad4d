//! PNR contact elements (AIRIMP 3.20.1, IATA Resolution 830d) as the GDSs print them:
//! `CTCM` (mobile), `CTCE` (email), `CTCR` (refusal); and the reverse, a contact
//! rendered as the SSR lines an agent would key.
//!
//! Each GDS wraps the same element differently:
//!
//! | GDS        | mobile                                | association       |
//! |------------|---------------------------------------|-------------------|
//! | Amadeus    | `SRCTCM-33612345678/FR/P1`            | `/P1`             |
//! | Sabre      | `3CTCM/33612345678/FR-1.1`            | `-1.1` (name no.) |
//! | Travelport | `SI.P1/SSRCTCMYYHK1/33612345678/FR`   | `SI.P1/`          |
//! | Travelsky  | `SSR CTCM CA HK1 33612345678/FR/P1`   | `/P1`             |
//!
//! Travelport's Apollo and Worldspan take the Sabre-style entry after their own
//! prefix (`@:3SSRCTCMYYHK1/…-1.1`, `3SSRCTCMYYHK1/…-1.1`); both are read. The
//! parser also reads the PNR display form (`5 SSR CTCM AF HK1 33612345678/FR/P1`).
//!
//! CTCM holds digits only, country code first, without `+`. CTCE is upper case with
//! `@` written `//`, `_` written `..` and `-` written `./`; characters with no standard
//! encoding (`+`, quotes, non-ASCII) are refused rather than guessed.

use super::booking::CarrierCode;
use super::contact::{EmailAddress, MobileNumber};
use super::language::Language;

/// The GDS whose form a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gds {
    /// Amadeus (`SR` entries).
    Amadeus,
    /// Sabre (`3` entries, `-1.1` name numbers).
    Sabre,
    /// Travelport: Galileo (`SI.P1/SSR…`), Apollo and Worldspan.
    Travelport,
    /// Travelsky (`SSR CTCM CA HK1 …/P1`).
    Travelsky,
}

impl Gds {
    /// Every GDS, in a stable order.
    pub const ALL: [Gds; 4] = [
        Self::Amadeus,
        Self::Sabre,
        Self::Travelport,
        Self::Travelsky,
    ];

    /// The word used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amadeus => "amadeus",
            Self::Sabre => "sabre",
            Self::Travelport => "travelport",
            Self::Travelsky => "travelsky",
        }
    }

    /// Parses the word.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == word)
    }
}

/// What a contact element says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// CTCM: a mobile number.
    Mobile(MobileNumber),
    /// CTCE: an email address.
    Email(EmailAddress),
    /// CTCR: the passenger refused to give a contact.
    Refused,
}

/// One parsed contact element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactElement {
    /// The contact, or the refusal.
    pub value: ContactValue,
    /// The preferred language for notifications (`/FR`), if given.
    pub language: Option<Language>,
    /// The passenger association as the GDS writes it (`P1`, `1.1`), if given.
    pub passenger: Option<String>,
    /// The airline the element is addressed to, if not all (`YY`).
    pub carrier: Option<CarrierCode>,
}

/// Parses one SSR line in the given GDS's form. The error says what is wrong
/// without repeating the contact value.
pub fn parse_line(gds: Gds, line: &str) -> Result<ContactElement, String> {
    let line = line.trim().trim_start_matches('>').trim();
    let upper = line.to_ascii_uppercase();
    if !line.is_ascii() {
        return Err("holds characters outside ASCII, which SSR elements cannot carry".into());
    }
    let (passenger_prefix, rest) = strip_entry_prefix(gds, &upper)?;
    let rest = rest.trim_start();
    let (code, rest) = rest.split_at(rest.len().min(4));
    let kind = match code {
        "CTCM" | "CTCE" | "CTCR" => code,
        "PCTC" => {
            return Err("is an emergency contact (PCTC), not the passenger's own contact".into())
        }
        _ if code.starts_with("CTC") => {
            return Err(format!(
                "`{code}` is an older contact code; only CTCM, CTCE and CTCR carry 830d contacts"
            ))
        }
        _ => return Err("is not a contact element: expected CTCM, CTCE or CTCR".into()),
    };
    let (carrier, payload) = strip_carrier_and_status(rest)?;
    let (payload, association) = strip_association(gds, payload.trim_end());
    let passenger = passenger_prefix.or(association);
    let (payload, carrier) = match (kind, gds) {
        ("CTCE", Gds::Sabre) => strip_sabre_vendor(payload, carrier),
        _ => (payload, carrier),
    };
    let (payload, language) = strip_language(payload)?;
    let payload = payload.trim();
    let value = match kind {
        "CTCM" => ContactValue::Mobile(decode_mobile(payload)?),
        "CTCE" => ContactValue::Email(decode_email(payload)?),
        _ => ContactValue::Refused,
    };
    Ok(ContactElement {
        value,
        language,
        passenger,
        carrier,
    })
}

/// Removes the GDS's entry prefix (and a display line number); returns a passenger
/// association carried in the prefix (Galileo's `SI.P1/`).
fn strip_entry_prefix(gds: Gds, line: &str) -> Result<(Option<String>, &str), String> {
    // A PNR display line starts with its element number, then `SSR `.
    let numbered = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches(['.', ' '])
        .strip_prefix("SSR ");
    let display = numbered
        .filter(|_| line.starts_with(|c: char| c.is_ascii_digit()))
        .or_else(|| line.strip_prefix("SSR "))
        .map(|rest| (None, rest));
    let entry = match gds {
        Gds::Amadeus => line.strip_prefix("SR").map(|r| (None, r)),
        Gds::Sabre => line.strip_prefix('3').map(|r| (None, r)),
        Gds::Travelsky => line.strip_prefix("SSR").map(|r| (None, r)),
        Gds::Travelport => {
            if let Some(rest) = line.strip_prefix("SI.") {
                let (assoc, rest) = rest
                    .split_once('/')
                    .ok_or("a Galileo entry reads SI.P1/SSR…")?;
                let rest = rest
                    .strip_prefix("SSR")
                    .ok_or("a Galileo entry reads SI.P1/SSR…")?;
                let assoc = assoc.split('/').next().unwrap_or(assoc);
                Some(((!assoc.is_empty()).then(|| assoc.to_string()), rest))
            } else {
                line.strip_prefix("@:3SSR")
                    .or_else(|| line.strip_prefix("3SSR"))
                    .map(|r| (None, r))
            }
        }
    };
    // The display form can look like Sabre's or Amadeus's entry once the number is
    // gone, so entries are tried first.
    entry
        .or(display)
        .ok_or_else(|| format!("does not start like a {} contact entry", gds.as_str()))
}

/// Removes an optional airline code and status (`AF HK1`, `YYHK1`) and the separator
/// before the payload (`-`, `/` or a space).
fn strip_carrier_and_status(rest: &str) -> Result<(Option<CarrierCode>, &str), String> {
    let trimmed = rest.trim_start();
    if let Some(payload) = trimmed
        .strip_prefix('-')
        .or_else(|| trimmed.strip_prefix('/'))
        .or_else(|| trimmed.strip_prefix('\u{2013}'))
    {
        return Ok((None, payload.trim_start()));
    }
    let code: String = trimmed.chars().take(2).collect();
    let after_code = trimmed[code.len()..].trim_start();
    let status_len = after_code
        .char_indices()
        .take_while(|(i, c)| (*i < 2 && c.is_ascii_alphabetic()) || (*i >= 2 && c.is_ascii_digit()))
        .count();
    let status = &after_code[..status_len];
    if code.len() == 2 && ["HK", "NN", "KK"].iter().any(|s| status.starts_with(s)) {
        let payload = after_code[status_len..].trim_start();
        let payload = payload
            .strip_prefix('-')
            .or_else(|| payload.strip_prefix('/'))
            .unwrap_or(payload);
        let carrier = if code == "YY" {
            None
        } else {
            Some(CarrierCode::parse(&code).map_err(|e| format!("airline code {e}"))?)
        };
        return Ok((carrier, payload.trim_start()));
    }
    Err(
        "expected `-` or `/` after the element code, or an airline and status such as `YY HK1`"
            .into(),
    )
}

/// Removes the passenger association at the end: `/P1` (Amadeus, Travelsky) or
/// `-1.1` (Sabre, Apollo, Worldspan).
fn strip_association(gds: Gds, payload: &str) -> (&str, Option<String>) {
    if let Some(i) = payload.rfind("/P") {
        let n = &payload[i + 2..];
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return (&payload[..i], Some(format!("P{n}")));
        }
    }
    if matches!(gds, Gds::Sabre | Gds::Travelport) {
        if let Some(i) = payload.rfind('-') {
            let n = &payload[i + 1..];
            let name_number = n.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            });
            if name_number {
                return (&payload[..i], Some(n.to_string()));
            }
        }
    }
    (payload, None)
}

/// Sabre may end an email with `//TK` naming the airline it is for.
fn strip_sabre_vendor(payload: &str, carrier: Option<CarrierCode>) -> (&str, Option<CarrierCode>) {
    let trimmed = payload.trim_end();
    if trimmed.matches("//").count() >= 2 {
        if let Some(i) = trimmed.rfind("//") {
            if let Ok(code) = CarrierCode::parse(&trimmed[i + 2..]) {
                return (&trimmed[..i], Some(code));
            }
        }
    }
    (payload, carrier)
}

/// Removes a two-letter language suffix (`/FR`).
fn strip_language(payload: &str) -> Result<(&str, Option<Language>), String> {
    let bytes = payload.as_bytes();
    let n = bytes.len();
    if n >= 4
        && bytes[n - 3] == b'/'
        && bytes[n - 4] != b'/'
        && bytes[n - 2..].iter().all(u8::is_ascii_alphabetic)
    {
        let language = Language::parse(&payload[n - 2..]).map_err(|e| format!("language {e}"))?;
        return Ok((&payload[..n - 3], Some(language)));
    }
    Ok((payload, None))
}

fn decode_mobile(payload: &str) -> Result<MobileNumber, String> {
    let digits: String = payload.chars().filter(|c| *c != ' ').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "CTCM must hold digits only: the country code, then the number without its leading zero"
                .into(),
        );
    }
    MobileNumber::parse(&format!("+{digits}")).map_err(|e| format!("CTCM number {e}"))
}

fn decode_email(payload: &str) -> Result<EmailAddress, String> {
    let mut out = String::with_capacity(payload.len());
    let bytes = payload.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes.get(i..i + 2);
        match pair {
            Some(b"//") => {
                out.push('@');
                i += 2;
            }
            Some(b"..") => {
                out.push('_');
                i += 2;
            }
            Some(b"./") => {
                out.push('-');
                i += 2;
            }
            _ => {
                let c = bytes[i];
                if !(c.is_ascii_alphanumeric() || c == b'.') {
                    return Err(format!(
                        "CTCE holds `{}`, which has no standard SSR encoding; only letters, digits, `.`, and `//` `..` `./` for @ _ - are read",
                        c as char
                    ));
                }
                out.push(c.to_ascii_lowercase() as char);
                i += 1;
            }
        }
    }
    EmailAddress::parse(&out).map_err(|e| format!("CTCE address {e}"))
}

fn encode_email(email: &EmailAddress) -> Result<String, String> {
    let mut out = String::new();
    for c in email.as_str().chars() {
        match c {
            '@' => out.push_str("//"),
            '_' => out.push_str(".."),
            '-' => out.push_str("./"),
            c if c.is_ascii_alphanumeric() || c == '.' => out.push(c.to_ascii_uppercase()),
            _ => return Err("the address holds a character with no standard SSR encoding".into()),
        }
    }
    Ok(out)
}

/// Renders a contact as the SSR line keyed in the given GDS. `passenger` is the
/// association in that GDS's own form (`P1` or `1.1`); `carrier` `None` means all
/// airlines of the itinerary (`YY`).
pub fn render(gds: Gds, element: &ContactElement) -> Result<String, String> {
    let (code, body) = match &element.value {
        ContactValue::Mobile(m) => ("CTCM", m.as_str().trim_start_matches('+').to_string()),
        ContactValue::Email(e) => ("CTCE", encode_email(e)?),
        ContactValue::Refused => ("CTCR", "REFUSED".to_string()),
    };
    let language = element
        .language
        .as_ref()
        .map(|l| format!("/{}", l.as_str()[..2].to_ascii_uppercase()))
        .unwrap_or_default();
    let airline = element
        .carrier
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "YY".into());
    let passenger = element.passenger.as_deref();
    // Amadeus and Sabre address an element to one airline with its code and a status
    // (`SRCTCMAFHK1-…`, `3CTCMAFHK1/…`); to all, with none.
    let addressed = element
        .carrier
        .as_ref()
        .map(|c| format!("{}HK1", c.as_str()));
    Ok(match gds {
        Gds::Amadeus => {
            let p = passenger.map(|p| format!("/{p}")).unwrap_or_default();
            let to = addressed.unwrap_or_default();
            format!("SR{code}{to}-{body}{language}{p}")
        }
        Gds::Sabre => {
            // A name number (`1.1`) follows a dash; a `P1` association read off a
            // display line keeps its slash.
            let p = passenger
                .map(|p| match p.strip_prefix('P') {
                    Some(_) => format!("/{p}"),
                    None => format!("-{p}"),
                })
                .unwrap_or_default();
            let to = addressed.unwrap_or_default();
            format!("3{code}{to}/{body}{language}{p}")
        }
        // Galileo's form names the passenger; without one, the Apollo/Worldspan form
        // (an association is never invented).
        Gds::Travelport => match passenger {
            Some(p) => format!("SI.{p}/SSR{code}{airline}HK1/{body}{language}"),
            None => format!("3SSR{code}{airline}HK1/{body}{language}"),
        },
        Gds::Travelsky => {
            let p = passenger.map(|p| format!("/{p}")).unwrap_or_default();
            format!("SSR {code} {airline} HK1 {body}{language}{p}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mobile(gds: Gds, line: &str) -> (String, Option<String>, Option<String>) {
        let e = parse_line(gds, line).unwrap();
        let ContactValue::Mobile(m) = e.value else {
            panic!("not a mobile")
        };
        (
            m.as_str().to_string(),
            e.language.map(|l| l.as_str().to_string()),
            e.passenger,
        )
    }

    /// What the `ssr_parser` fuzz target holds for every input: an element renders to
    /// a line that parses back to the same element.
    fn assert_round_trip(gds: Gds, line: &str, element: &ContactElement) {
        let rendered = render(gds, element).unwrap();
        assert_eq!(
            &parse_line(gds, &rendered).unwrap(),
            element,
            "{line} -> {rendered}"
        );
    }

    /// Found by `cargo fuzz run ssr_parser`: Sabre's `3CTCRSSNNJ` is a refusal
    /// addressed to SS, and rendering it lost the airline.
    #[test]
    fn an_element_addressed_to_one_airline_keeps_it_when_rendered() {
        for (gds, line) in [
            (Gds::Sabre, "3CTCRSSNNJ"),
            (Gds::Sabre, "3CTCMAFHK1/33612345678/FR-1.1"),
            (Gds::Amadeus, "SRCTCMAFHK1-33612345678/FR/P1"),
            (Gds::Travelport, "SI.P1/SSRCTCMAFHK1/33612345678/FR"),
            (Gds::Travelsky, "SSR CTCM CA HK1 33612345678/FR/P1"),
        ] {
            let element = parse_line(gds, line).unwrap();
            assert!(element.carrier.is_some(), "{line}");
            assert_round_trip(gds, line, &element);
        }
    }

    /// Found by `cargo fuzz run ssr_parser`: a Sabre line associated as `/P3` came
    /// back as `-P3`, which Sabre reads as no association.
    #[test]
    fn a_sabre_element_keeps_a_p_association() {
        for line in ["3CTCR/REFUSED/P3", "3CTCM/33612345678/FR-1.2"] {
            let element = parse_line(Gds::Sabre, line).unwrap();
            assert!(element.passenger.is_some(), "{line}");
            assert_round_trip(Gds::Sabre, line, &element);
        }
    }

    /// Found by `cargo fuzz run ssr_parser`: a Travelport element with no passenger
    /// association came back associated with P1.
    #[test]
    fn an_element_without_a_passenger_is_rendered_without_one() {
        for (gds, line) in [
            (Gds::Travelport, "3SSR CTCR/E3PS"),
            (Gds::Travelport, "3SSRCTCMYYHK1/33612345678"),
            (Gds::Amadeus, "SRCTCM-33612345678"),
            (Gds::Sabre, "3CTCM/33612345678"),
            (Gds::Travelsky, "SSR CTCM YY HK1 33612345678"),
        ] {
            let element = parse_line(gds, line).unwrap();
            assert_eq!(element.passenger, None, "{line}");
            assert_round_trip(gds, line, &element);
        }
    }

    #[test]
    fn each_gds_form_of_a_mobile_reads_the_same() {
        let want = (
            "+33612345678".to_string(),
            Some("fr".to_string()),
            Some("P1".to_string()),
        );
        assert_eq!(mobile(Gds::Amadeus, "SRCTCM-33612345678/FR/P1"), want);
        assert_eq!(mobile(Gds::Amadeus, "SR CTCM-33612345678/FR/P1"), want);
        assert_eq!(mobile(Gds::Amadeus, "SRCTCMAFHK1-33612345678/FR/P1"), want);
        assert_eq!(
            mobile(Gds::Travelport, "SI.P1/SSRCTCMYYHK1/33 612345678/FR"),
            want
        );
        assert_eq!(
            mobile(Gds::Travelport, ">SI.P1/SSRCTCMAFHK1/33612345678/FR"),
            want
        );
        assert_eq!(
            mobile(Gds::Travelsky, "SSR CTCM CA HK1 33612345678/FR/P1"),
            want
        );
        assert_eq!(
            mobile(Gds::Amadeus, "  5 SSR CTCM AF HK1 33612345678/FR/P1"),
            want
        );
        let sabre = (
            "+33612345678".to_string(),
            Some("fr".to_string()),
            Some("1.1".to_string()),
        );
        assert_eq!(mobile(Gds::Sabre, "3CTCM/33612345678/FR-1.1"), sabre);
        assert_eq!(
            mobile(Gds::Travelport, "@:3SSRCTCMYYHK1/33612345678/FR-1.1"),
            sabre
        );
    }

    #[test]
    fn ctce_decodes_at_underscore_and_dash() {
        let e = parse_line(Gds::Amadeus, "SRCTCE-LOPEZ..ANGEL./J//GMAIL.COM/SP").unwrap();
        assert_eq!(
            e.value,
            ContactValue::Email(EmailAddress::parse("lopez_angel-j@gmail.com").unwrap())
        );
        assert_eq!(e.language.unwrap().as_str(), "sp");
        let sabre = parse_line(Gds::Sabre, "3CTCE/JOE.DOE//AOL.COM//TK-3.2").unwrap();
        assert_eq!(
            sabre.value,
            ContactValue::Email(EmailAddress::parse("joe.doe@aol.com").unwrap())
        );
        assert_eq!(sabre.carrier.unwrap().as_str(), "TK");
        assert_eq!(sabre.passenger.as_deref(), Some("3.2"));
    }

    #[test]
    fn ctcr_is_a_refusal_in_every_form() {
        for (gds, line) in [
            (Gds::Amadeus, "SRCTCR-REFUSED/P2"),
            (Gds::Sabre, "3CTCR/REFUSED TO PROVIDE CTC INFO-1.2"),
            (Gds::Travelport, "SI.P3/SSRCTCRYYHK1/REFUSED"),
            (Gds::Travelsky, "SSR CTCR CA HK1 REFUSED/P2"),
        ] {
            assert_eq!(
                parse_line(gds, line).unwrap().value,
                ContactValue::Refused,
                "{line}"
            );
        }
    }

    #[test]
    fn unencodable_or_foreign_elements_are_refused_with_a_reason() {
        assert!(parse_line(Gds::Amadeus, "SRCTCE-A+B//X.COM")
            .unwrap_err()
            .contains("`+`"));
        assert!(parse_line(Gds::Amadeus, "SRCTCE-\"A\"//X.COM")
            .unwrap_err()
            .contains("encoding"));
        assert!(parse_line(Gds::Amadeus, "SRCTCE-ÉLODIE//X.FR")
            .unwrap_err()
            .contains("ASCII"));
        assert!(parse_line(Gds::Sabre, "3PCTC/JOE DOE/US 817 555 0000")
            .unwrap_err()
            .contains("PCTC"));
        assert!(parse_line(Gds::Amadeus, "SRCTCM-0612345678").is_err());
        assert!(parse_line(Gds::Amadeus, "SRCTCM-33142685300")
            .unwrap_err()
            .contains("mobile"));
        assert!(parse_line(Gds::Amadeus, "RM HELLO").is_err());
    }

    #[test]
    fn rendered_lines_read_back_as_the_same_contact() {
        let element = ContactElement {
            value: ContactValue::Email(EmailAddress::parse("marie_d-x@example.fr").unwrap()),
            language: Some(Language::parse("fr").unwrap()),
            passenger: None,
            carrier: None,
        };
        for gds in Gds::ALL {
            let passenger = if gds == Gds::Sabre { "1.1" } else { "P1" };
            let element = ContactElement {
                passenger: Some(passenger.into()),
                ..element.clone()
            };
            let line = render(gds, &element).unwrap();
            assert_eq!(parse_line(gds, &line).unwrap(), element, "{line}");
        }
        assert_eq!(
            render(Gds::Amadeus, &element).unwrap(),
            "SRCTCE-MARIE..D./X//EXAMPLE.FR/FR"
        );
    }
}
