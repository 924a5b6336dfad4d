//! A PNR contact element in any GDS's form: parsing never panics, and whatever parses
//! renders back to a line that parses to the same element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::domain::ssr::{parse_line, render, Gds};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    for gds in Gds::ALL {
        if let Ok(element) = parse_line(gds, line) {
            let rendered = render(gds, &element).expect("a parsed element renders");
            let again = parse_line(gds, &rendered).expect("a rendered element parses");
            assert_eq!(again, element, "{gds:?}: {line:?} -> {rendered:?}");
        }
    }
});
