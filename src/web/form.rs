//! Reading what a browser sends: urlencoded forms, filter forms in query strings, and
//! cookies. Errors name the field, like the API's.

use crate::wire::problem::{Problem, ProblemKind};
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    urlencoded(body, "form")
}

/// Parses urlencoded pairs, naming the field at fault (or `whole`).
fn urlencoded<T: DeserializeOwned>(bytes: &[u8], whole: &str) -> Result<T, Problem> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = match err.path().to_string().as_str() {
            "." | "" => whole.to_string(),
            path => path.to_string(),
        };
        Problem::field(
            ProblemKind::InvalidField,
            field,
            err.into_inner().to_string(),
        )
    })
}

/// A filter form's query string, made ready for the API's query types: empty fields
/// are dropped (a form sends every input), `lang` is the page's, and a date from a
/// date input (`YYYY-MM-DD`) becomes the start of that day (`since`) or of the next
/// (`until`, so the day named is included).
pub fn filters(query: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if value.is_empty() || name == "lang" {
            continue;
        }
        let value = match (name.as_ref(), day(value)) {
            ("since", Some(date)) => format!("{date}T00:00:00Z"),
            ("until", Some(date)) => match date.next_day() {
                Some(next) => format!("{next}T00:00:00Z"),
                None => value.to_string(),
            },
            _ => value.to_string(),
        };
        out.append_pair(&name, &value);
    }
    out.finish()
}

fn day(value: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, format).ok()
}

/// Parses a prepared query string into an API query type.
pub fn query<T: DeserializeOwned>(prepared: &str) -> Result<T, Problem> {
    urlencoded(prepared.as_bytes(), "query")
}

/// A search form's query string ready for an API list route: [`filters`], with
/// `limit` set to `page` unless the form gave one.
pub fn page_query(query: Option<&str>, page: i64) -> String {
    let mut prepared = filters(query);
    if field(Some(&prepared), "limit").is_empty() {
        if !prepared.is_empty() {
            prepared.push('&');
        }
        prepared.push_str(&format!("limit={page}"));
    }
    prepared
}

/// The value of one form field in a query string, as typed (for refilling the form).
pub fn field(query: Option<&str>, name: &str) -> String {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A query string with `after` replaced: the link to another page of the same search.
pub fn with_after(query: Option<&str>, after: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name != "after" && name != "lang" {
            out.append_pair(&name, &value);
        }
    }
    if !after.is_empty() {
        out.append_pair("after", after);
    }
    out.finish()
}

/// The links to the next page (when the API gave a cursor) and back to the first (when
/// this is not the first), keeping the search's filters.
pub fn pager(query: Option<&str>, next_after: Option<String>) -> (Option<String>, Option<String>) {
    let next = next_after.map(|after| with_after(query, &after));
    let first = (!field(query, "after").is_empty()).then(|| with_after(query, ""));
    (next, first)
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_dropped_and_days_become_instants() {
        let prepared = filters(Some(
            "agency=&airline=AF&since=2026-11-01&until=2026-11-30&lang=fr",
        ));
        assert_eq!(
            prepared,
            "airline=AF&since=2026-11-01T00%3A00%3A00Z&until=2026-12-01T00%3A00%3A00Z"
        );
    }

    #[test]
    fn a_search_gets_a_page_size_unless_it_names_one() {
        assert_eq!(page_query(Some("airline=AF"), 50), "airline=AF&limit=50");
        assert_eq!(page_query(None, 50), "limit=50");
        assert_eq!(page_query(Some("limit=5"), 50), "limit=5");
    }

    #[test]
    fn another_page_keeps_the_filters() {
        assert_eq!(
            with_after(Some("airline=AF&after=5"), "9"),
            "airline=AF&after=9"
        );
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; passerelle_session=xyz".parse().unwrap(),
        );
        assert_eq!(
            cookie(&headers, "passerelle_session").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie(&headers, "b"), None);
    }
}
