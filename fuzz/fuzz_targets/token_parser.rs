//! Bearer secrets (API keys, release tokens, withdrawal codes): parsing any string
//! never panics, and what parses has the documented shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::crypto::secret;

const PREFIXES: [&str; 5] = [
    "pas_agency_",
    "pas_airline_",
    "pas_officer_",
    "pas_token_",
    "pas_wd_",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for prefix in PREFIXES {
        if let Some(presented) = secret::parse(prefix, text) {
            assert_eq!(presented.id.len(), 16);
            assert!(presented.id.bytes().all(|b| b.is_ascii_hexdigit()));
            // Comparing with a stored hash never panics, whatever was presented.
            let _ = presented.matches(&[0u8; 32]);
        }
    }
});
