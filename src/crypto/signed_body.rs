//! A body signed with a shared secret, as agency webhooks receive it and as the SMS
//! gateway sends its delivery receipts: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`. The receiver recomputes the HMAC over the timestamp and the raw
//! body, compares in constant time (`ring::hmac::verify`), and rejects a timestamp
//! outside its tolerance, so a captured body cannot be replayed later.

use ring::hmac;

/// The header value for `body` signed at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex(tag.as_ref()))
}

/// Checks a header value against `body`, within `tolerance` seconds of `now`.
pub fn verify(secret: &[u8], header: &str, body: &str, now: i64, tolerance: i64) -> bool {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => tags.push(v.to_string()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > tolerance {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = format!("{timestamp}.{body}");
    tags.iter().any(|tag| {
        decode_hex(tag).is_some_and(|tag| hmac::verify(&key, message.as_bytes(), &tag).is_ok())
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_once_and_only_within_its_tolerance() {
        let header = signature(b"secret", 1_000, "{}");
        assert!(verify(b"secret", &header, "{}", 1_100, 300));
        assert!(
            !verify(b"secret", &header, "{}", 1_400, 300),
            "replayed late"
        );
        assert!(
            !verify(b"other", &header, "{}", 1_100, 300),
            "another secret"
        );
        assert!(
            !verify(b"secret", &header, "{ }", 1_100, 300),
            "another body"
        );
        assert!(!verify(b"secret", "t=1000", "{}", 1_100, 300), "no tag");
    }
}
