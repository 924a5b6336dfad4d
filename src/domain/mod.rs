//! Pure types and rules of the field: bookings, travellers, contacts, purposes and
//! consent statements. Nothing here knows HTTP or SQL.
//!
//! Every type can only be built by parsing, so a value that exists is valid
//! ("parse, don't validate"). Types that hold personal data (names, phone numbers,
//! emails) redact themselves in `Debug`, so they cannot leak into logs by accident.

pub mod booking;
pub mod consent;
pub mod contact;
pub mod contact_verification;
pub mod delivery;
pub mod disruption;
pub mod dsn;
pub mod erasure;
pub mod ids;
pub mod language;
pub mod links;
pub mod party;
pub mod purpose;
pub mod receipt;
pub mod scope;
pub mod ssr;
pub mod template;
pub mod time;
pub mod traveller;

/// Declares `Deserialize`/`Serialize` for a newtype that parses from a string with
/// `parse(&str) -> Result<Self, String>` and shows itself with `as_str()`.
///
/// The parse error becomes the serde error message, so a bad value is reported with
/// the JSON path of the field and the reason.
macro_rules! string_serde {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_serde;

/// Checks a short machine word: 1 to `max` ASCII letters, digits or one of `extra`.
/// Free text is refused so that such fields cannot carry a name or a contact into
/// the audit log or an error message.
pub(crate) fn short_word(raw: &str, max: usize, extra: &[u8]) -> Result<String, String> {
    let ok = (1..=max).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok {
        Ok(raw.to_string())
    } else {
        let extra = String::from_utf8_lossy(extra);
        Err(format!("must be 1 to {max} letters, digits or {extra}"))
    }
}
