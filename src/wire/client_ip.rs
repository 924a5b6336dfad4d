//! Who is asking, by address, for the routes that need no API key: the connection's
//! peer, or, when the broker sits behind a reverse proxy listed in
//! `--trusted-proxies`, the client that proxy names in `X-Forwarded-For`.
//!
//! Extracting [`RateLimitedClient`] counts the request against its address's bucket
//! (see `ratelimit`): a handler that takes one is rate-limited.

use super::problem::Problem;
use crate::service::settings::AddressRange;
use crate::service::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the peer, unless the peer is a trusted proxy, in which case
/// the rightmost `X-Forwarded-For` address that is not a trusted proxy (what the
/// nearest untrusted hop claimed; anything left of it could be forged).
pub fn client_address(parts: &Parts, trusted: &[AddressRange]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

/// A caller without an API key, by address, admitted by the per-address rate limit
/// (or answered `429`).
#[derive(Debug, Clone, Copy)]
pub struct RateLimitedClient(pub IpAddr);

impl FromRequestParts<AppState> for RateLimitedClient {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let client = client_address(parts, &state.settings.trusted_proxies);
        let limit = &state.settings.policies.tunables.public_rate_limit;
        state
            .public_limiter
            .admit(client, limit, std::time::Instant::now())?;
        Ok(Self(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder();
        if let Some(f) = forwarded {
            request = request.header("x-forwarded-for", f);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn ranges_hold_their_addresses_only() {
        let range: AddressRange = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains("10.1.2.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        let one: AddressRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: AddressRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
        assert!("proxy".parse::<AddressRange>().is_err());
    }

    #[test]
    fn a_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let trusted = vec!["127.0.0.1".parse().unwrap()];
        let direct = parts("198.51.100.7:5000", Some("203.0.113.1"));
        assert_eq!(
            client_address(&direct, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "a client cannot name itself"
        );
        let proxied = parts("127.0.0.1:5000", Some("1.2.3.4, 203.0.113.1"));
        assert_eq!(
            client_address(&proxied, &trusted),
            "203.0.113.1".parse::<IpAddr>().unwrap(),
            "the hop the proxy saw, not what the client wrote before it"
        );
        assert_eq!(
            client_address(&proxied, &[]),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
