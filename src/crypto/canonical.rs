//! RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes an agency signs.
//!
//! Keys sorted by their UTF-16 code units, no insignificant white space, strings with
//! minimal escaping, numbers in ECMAScript form. `serde_json_canonicalizer` implements
//! it, number formatting included, which is easy to get subtly wrong by hand.
//!
//! Every record ingested is canonicalized twice (its statement, to check the agency's
//! signature, and its receipt, to countersign it), and the crate's general path (each
//! property re-encoded to UTF-16 to be sorted, each value through a formatter) was a
//! sixth of ingest's CPU. The values signed here hold strings, booleans, nulls and
//! whole numbers, so those are written directly: their canonical form has nothing to
//! get wrong (a whole number within ±2^53 is an exact double, which ECMAScript prints
//! as its digits). A value holding any other number is handed whole to the crate. A
//! test holds both paths to the same bytes over thousands of generated values.

use serde_json::Value;
use std::cmp::Ordering;
use std::io::Write as _;

/// The canonical bytes of a JSON value.
pub fn to_vec(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    match write(&mut out, value) {
        Ok(()) => out,
        Err(NotWholeNumber) => serde_json_canonicalizer::to_vec(value)
            .expect("a serde_json::Value always canonicalizes"),
    }
}

/// A number the direct path leaves to the crate (a fraction, an exponent, or a whole
/// number beyond ±2^53, which ECMAScript prints rounded or with an exponent).
struct NotWholeNumber;

/// The largest magnitude of a whole number ECMAScript prints as its own digits.
const SAFE_INTEGER: u64 = (1 << 53) - 1;

fn write(out: &mut Vec<u8>, value: &Value) -> Result<(), NotWholeNumber> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= SAFE_INTEGER) {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{i}");
            } else {
                return Err(NotWholeNumber);
            }
        }
        Value::String(s) => write_string(out, s.as_bytes()),
        Value::Array(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
            out.push(b'{');
            for (k, (key, item)) in entries.into_iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_string(out, key.as_bytes());
                out.push(b':');
                write(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.3: properties sorted by their UTF-16 code units. ASCII keys (every key
/// the broker signs) compare the same byte by byte.
fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Writes a JSON string as RFC 8785 §3.2.2.2 asks (and as serde_json writes it): `"`
/// and `\` escaped, the control characters as their short escape or `\u00xx` in lower
/// case, every other byte as it is (UTF-8 passes through, `/` and DEL included). Takes
/// bytes, so that the audit log's leaf hashes are written from a row's own text.
#[inline]
pub fn write_string(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    // Ids and codes need no escape: tell at once (a loop without an early exit, which
    // the compiler runs many bytes at a time), and copy them whole.
    let escapes = value.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !escapes {
        out.extend_from_slice(value);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (at, &byte) in value.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&value[plain..at]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        plain = at + 1;
    }
    out.extend_from_slice(&value[plain..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

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

    #[test]
    fn whole_numbers_past_two_to_the_53_are_printed_as_ecmascript_does() {
        for n in [9_007_199_254_740_993_i64, -9_007_199_254_740_993, i64::MAX] {
            let value = json!({ "n": n });
            assert_eq!(
                super::to_vec(&value),
                serde_json_canonicalizer::to_vec(&value).unwrap(),
                "{n}"
            );
        }
        assert_eq!(super::to_vec(&json!(u64::MAX)), b"18446744073709552000");
        assert_eq!(super::to_vec(&json!(1e21)), b"1e+21");
    }

    /// A small deterministic generator (xorshift), so a failure repeats.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn text(&mut self) -> String {
            const PIECES: &[&str] = &[
                "a",
                "Z",
                "0",
                "_",
                "é",
                "ß",
                "\u{FB33}",
                "\u{1F600}",
                "\u{2028}",
                "\u{7f}",
                "\"",
                "\\",
                "/",
                "\n",
                "\r",
                "\t",
                "\u{8}",
                "\u{c}",
                "\u{0}",
                "\u{1f}",
                "\u{1}",
                "consent",
                "record_id",
                "+33612345678",
                "€",
            ];
            (0..self.below(6))
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }

        fn number(&mut self) -> Value {
            match self.below(8) {
                0 => json!(self.next() as i64),
                1 => json!(self.next()),
                2 => json!((self.next() % 1000) as f64 / 8.0),
                3 => json!(-((self.next() % (1 << 53)) as i64)),
                4 => json!(1u64 << 53),
                5 => json!((1u64 << 53) - 1),
                _ => json!(self.below(100_000) as i64 - 50_000),
            }
        }

        fn value(&mut self, depth: u32) -> Value {
            match self.below(if depth == 0 { 4 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => Value::String(self.text()),
                3 => {
                    // Whole numbers most of the time, as in what the broker signs.
                    if self.below(4) == 0 {
                        self.number()
                    } else {
                        json!(self.below(1_000_000))
                    }
                }
                4 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
                _ => {
                    let mut map = Map::new();
                    for _ in 0..self.below(6) {
                        map.insert(self.text(), self.value(depth - 1));
                    }
                    Value::Object(map)
                }
            }
        }
    }

    #[test]
    fn the_direct_path_writes_the_same_bytes_as_the_general_one() {
        let mut draw = Draw(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let value = draw.value(4);
            assert_eq!(
                String::from_utf8(super::to_vec(&value)).unwrap(),
                String::from_utf8(serde_json_canonicalizer::to_vec(&value).unwrap()).unwrap(),
                "{value}"
            );
        }
    }
}
