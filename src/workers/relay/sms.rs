//! SMS through an HTTP gateway: a generic JSON webhook that a real SMS provider (or a
//! small adapter in front of one) receives.
//!
//! The broker POSTs `{"message_id": "msg_…", "to": "+33612345678", "text": "…"}`,
//! with `Authorization: Bearer <token>` when configured and `Idempotency-Key: msg_…`
//! so a gateway can drop a retry of a message it already took. A 2xx is delivered;
//! 408, 429 and 5xx are retried; any other status fails the message. A redirect is
//! not followed (it would carry the traveller's number elsewhere) and fails it.
//!
//! The gateway must be a public `https://` address, unless the broker runs with
//! `--allow-insecure-outbound`; its URL is never logged (its query may hold a key).

use super::Attempt;
use crate::outbound::Outbound;

/// A configured gateway.
pub struct Gateway {
    url: reqwest::Url,
    token: Option<String>,
}

impl Gateway {
    /// Checks the URL against the outbound rule.
    pub fn new(url: &str, token: Option<String>, outbound: Outbound) -> anyhow::Result<Self> {
        let url = outbound
            .parse(url)
            .map_err(|refused| anyhow::anyhow!("--sms-gateway-url {refused}"))?;
        Ok(Self { url, token })
    }

    /// Sends one text.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        to: &str,
        text: &str,
        message_id: &str,
    ) -> Attempt {
        let mut request = http
            .post(self.url.clone())
            .header("Idempotency-Key", message_id)
            .json(&serde_json::json!({ "message_id": message_id, "to": to, "text": text }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => {
                let status = response.status();
                let why = format!("gateway http {}", status.as_u16());
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    Attempt::Transient(why)
                } else {
                    Attempt::Permanent(why)
                }
            }
            Err(error) => match crate::outbound::failure(&error) {
                "address not public" => Attempt::Permanent("gateway address not public".into()),
                why => Attempt::Transient(format!("gateway {why}")),
            },
        }
    }
}
