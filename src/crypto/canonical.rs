//! RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes an agency signs.
//!
//! Keys sorted by their UTF-16 code units, no insignificant white space, strings with
//! minimal escaping, numbers in ECMAScript form. `serde_json_canonicalizer` implements
//! it, number formatting included, which is easy to get subtly wrong by hand.

/// The canonical bytes of a JSON value.
pub fn to_vec(value: &serde_json::Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).expect("a serde_json::Value always canonicalizes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_and_white_space_dropped() {
        let value = serde_json::json!({"b": [1, 2.50, "é"], "a": {"z": null, "y": true}});
        assert_eq!(
            super::to_vec(&value),
            r#"{"a":{"y":true,"z":null},"b":[1,2.5,"é"]}"#.as_bytes()
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // RFC 8785 §3.2.3: U+1F600 is a surrogate pair (0xD83D…) in UTF-16 and sorts
        // before U+FB33, although its UTF-8 bytes (0xF0…) sort after (0xEF…).
        let value = serde_json::json!({"\u{FB33}": 2, "\u{1F600}": 1});
        assert_eq!(
            super::to_vec(&value),
            "{\"\u{1F600}\":1,\"\u{FB33}\":2}".as_bytes()
        );
    }
}
