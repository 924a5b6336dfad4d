//! What the two HTTP edges, the API ([`crate::http`]) and the pages
//! ([`crate::web`]), read and answer alike: RFC 9457 problems, the extractors that
//! answer in them (the request id, JSON bodies, the calling party) and the client's
//! address with its rate limit. Neither edge names the other; both name this.

pub mod client_ip;
pub mod extract;
pub mod problem;
