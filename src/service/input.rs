//! Reading what a client sent: JSON with the path of any bad field kept for the
//! error, and the bounds of a paged listing. Shared by the API, the pages and the bulk
//! readers, so a bad field is named the same way wherever it arrives.

use super::{Error, ErrorKind};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;

/// The `limit` of a paged listing: 1 to `max`, `default` when absent.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, Error> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::field(
            ErrorKind::InvalidField,
            "limit",
            format!("must be between 1 and {max}"),
        ))
    }
}

/// A page cursor: the last row's time (ms) and id, opaque to the client.
pub fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}.{id}"))
}

/// Reads back a cursor [`encode_cursor`] gave out; anything else is refused as `after`.
pub fn decode_cursor(cursor: &str) -> Result<(i64, String), Error> {
    let bad = || {
        Error::field(
            ErrorKind::InvalidField,
            "after",
            "is not a cursor this broker gave out (use the previous page's next_after)",
        )
    };
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// Parses JSON bytes: a syntax error is `malformed-json`, a value of the wrong shape
/// is `invalid-field` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // Syntax first, over the whole body (trailing bytes included), so that a broken
    // document is never reported as a missing field.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|err| {
        Error::new(
            ErrorKind::MalformedJson,
            format!(
                "The body is not valid JSON (line {}, column {}).",
                err.line(),
                err.column()
            ),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        Error::field(
            ErrorKind::InvalidField,
            field_path(err.path(), "body"),
            clean_serde_message(err.inner()),
        )
    })
}

/// Parses a sub-document already read as JSON, reporting paths under `prefix`.
pub fn parse_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    prefix: &str,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = match field_path(err.path(), "").as_str() {
            "" => prefix.to_string(),
            inner => format!("{prefix}.{inner}"),
        };
        Error::field(
            ErrorKind::InvalidField,
            path,
            clean_serde_message(err.inner()),
        )
    })
}

/// The JSON path serde stopped at, or `whole` when the fault is the document itself.
pub fn field_path(path: &serde_path_to_error::Path, whole: &str) -> String {
    match path.to_string().as_str() {
        "." | "" => whole.to_string(),
        p => p.to_string(),
    }
}

/// serde appends " at line 1 column 42" to its messages; the field path says more.
pub fn clean_serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
