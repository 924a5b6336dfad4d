//! The traveller's language, as the statement or the SSR suffix gives it.

use super::string_serde;

/// A language tag, as BCP 47's common subset: two or three letters, optionally a
/// region (`fr`, `en-GB`); stored lower-case with an upper-case region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language(String);

impl Language {
    /// Parses a language tag.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (lang, region) = match raw.split_once('-') {
            Some((l, r)) => (l, Some(r)),
            None => (raw, None),
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()));
        if !lang_ok || !region_ok {
            return Err("must be a language tag such as `fr` or `en-GB`".into());
        }
        let mut tag = lang.to_ascii_lowercase();
        if let Some(r) = region {
            tag.push('-');
            tag.push_str(&r.to_ascii_uppercase());
        }
        Ok(Self(tag))
    }
    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(Language);
