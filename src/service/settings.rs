//! The settings of a running broker, as `serve`'s flags and files set them.

use crate::policy::engine::Policies;
use crate::service::checkpoints::CheckpointSettings;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The default cap of a bulk upload's body: room for the default record cap's records.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Settings of a running broker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The release policies and the tunables beside them (`policies/`).
    pub policies: Arc<Policies>,
    /// Where relayed messages go.
    pub relay: RelaySettings,
    /// How long a request may take before it is abandoned.
    pub request_timeout: Duration,
    /// The largest request body accepted (bulk uploads excepted).
    pub max_body_bytes: usize,
    /// The largest bulk upload accepted (JSON array, NDJSON, CSV).
    pub max_batch_bytes: usize,
    /// How many records a bulk request may hold, and how many are handled at once.
    pub batch: BatchLimits,
    /// Where the broker's own requests (webhooks, SMS gateway, checkpoint URL) may go.
    pub outbound: crate::outbound::Outbound,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for per-address
    /// rate limits).
    pub trusted_proxies: Vec<AddressRange>,
    /// Whether the pages' cookies carry `Secure` (off only with `--insecure-cookies`
    /// or in the demo, for plain http).
    pub secure_cookies: bool,
    /// The broker's public base URL, printed on receipts (withdrawal link).
    pub public_url: String,
    /// The audit log's name and where its checkpoints go.
    pub checkpoints: CheckpointSettings,
    /// How far an audit search counts its matching entries (its `total`); past it the
    /// total reads "at least". Each counted entry is read, so this bounds what a search
    /// matching millions reads to count them (a filter matching few still reads until
    /// it has found them all).
    pub search_total_limit: i64,
}

/// The default of [`Settings::search_total_limit`].
pub const DEFAULT_SEARCH_TOTAL_LIMIT: i64 = 10_000;

impl Default for Settings {
    fn default() -> Self {
        Self {
            policies: Arc::new(Policies::built_in().expect("the built-in policies are valid")),
            relay: RelaySettings::default(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            batch: BatchLimits::default(),
            outbound: crate::outbound::Outbound::default(),
            trusted_proxies: Vec::new(),
            secure_cookies: true,
            public_url: "http://127.0.0.1:8080".into(),
            checkpoints: CheckpointSettings::default(),
            search_total_limit: DEFAULT_SEARCH_TOTAL_LIMIT,
        }
    }
}

/// The transports of the relay. A channel without one refuses relayed messages.
#[derive(Debug, Clone, Default)]
pub struct RelaySettings {
    /// SMTP relay for email: `smtp://host:port` (plain, for a local relay),
    /// `smtp://host:port?tls=required` (STARTTLS) or `smtps://host:port`, with
    /// optional `user:password@`.
    pub smtp_url: Option<String>,
    /// The From address of relayed emails.
    pub mail_from: String,
    /// The SMS gateway's URL: the broker POSTs `{"to", "text", "message_id"}` as JSON.
    pub sms_gateway_url: Option<String>,
    /// Sent as `Authorization: Bearer …` to the SMS gateway, if set.
    pub sms_gateway_token: Option<String>,
    /// The secret the SMS gateway signs its delivery receipts with; without it the
    /// broker takes none (`POST /v1/gateway/sms/receipts` answers 503).
    pub sms_gateway_receipt_secret: Option<String>,
    /// The domain of relayed emails' return paths (`bounce+<message id>@<domain>`),
    /// whose mail (the bounces) reaches the broker's SMTP listener; without it emails
    /// go out with the From address as their return path and bounces are not read.
    pub bounce_domain: Option<String>,
}

/// The limits of bulk requests, set with `serve`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most records in one request (`--max-batch-records`).
    pub max_records: usize,
    /// Reading stops after this many records failed their checks
    /// (`--max-rejected-records`).
    pub max_rejected: usize,
    /// Bulk requests handled at once; more wait their turn (`--parallel-uploads`).
    pub parallel: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            max_rejected: 1_000,
            parallel: 2,
        }
    }
}

/// An address range: `10.0.0.0/8`, `::1/128`, or a lone address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an address or a range such as 10.0.0.0/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has a prefix length beyond {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl AddressRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ip = match ip {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        let ((net, width), (candidate, other_width)) = (bits(self.network), bits(ip));
        if width != other_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (candidate >> shift)
    }
}

/// The traveller's page, printed for them on their receipt beside their withdrawal
/// code (`<public URL>/t`): they type the code there, and it travels in the body of
/// a POST, never in a URL that could land in a log or a browser's history. Served by
/// `web::traveller`.
pub fn page_link(public_url: &str) -> String {
    format!("{}/t", public_url.trim_end_matches('/'))
}
