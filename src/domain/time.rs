//! Times as the API shows them.

use time::OffsetDateTime;

/// Formats a time as the API shows every time: RFC 3339 in UTC, to the millisecond
/// (the precision stored).
pub fn format_time(at: OffsetDateTime) -> String {
    let millis = at.nanosecond() / 1_000_000 * 1_000_000;
    at.replace_nanosecond(millis)
        .expect("truncated nanoseconds stay in range")
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time always formats as RFC 3339")
}
