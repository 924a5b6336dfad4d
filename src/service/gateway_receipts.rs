//! Delivery receipts from the SMS gateway: what became of a message it accepted.
//!
//! A gateway's `2xx` says it took the message, not that a phone got it. The gateway
//! POSTs a receipt to `/v1/gateway/sms/receipts`, signed like the agencies' webhooks
//! (`crypto::signed_body`: an HMAC-SHA256 over the timestamp and the raw body with the
//! secret the broker was given, `PASSERELLE_SMS_GATEWAY_RECEIPT_SECRET`), and the
//! broker records it on the message (`delivered`, `undeliverable` with the gateway's
//! reason, or `expired`) with its audit entry, and what it says of the number
//! (`service::reachability`: undeliverable marks it unreachable and tells the agency,
//! delivered marks it reachable). A forged receipt, or one replayed outside the
//! tolerance, is refused; the same receipt twice is recorded once.

use crate::audit::Outcome;
use crate::crypto::signed_body;
use crate::service::input::parse_json;
use crate::service::reachability::Heard;
use crate::service::transport_reports::{Noted, Report};
use crate::service::{AppState, Error, ErrorKind};
use crate::store::outbox::Receipt;
use serde::{Deserialize, Serialize};

/// The header the gateway signs its receipts in.
pub const SIGNATURE_HEADER: &str = "Passerelle-Gateway-Signature";

/// Longest reason a gateway may give, in characters.
const MAX_REASON_CHARS: usize = 200;

/// What became of a message, as the gateway says.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// It reached the phone.
    Delivered,
    /// It cannot reach it (a number out of service, barred…); `reason` says why.
    Undeliverable,
    /// The network gave up before it reached the phone.
    Expired,
}

impl ReceiptStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Undeliverable => "undeliverable",
            Self::Expired => "expired",
        }
    }
}

/// A receipt, as the gateway posts it.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct GatewayReceipt {
    /// The message, as the broker named it when it handed it over.
    pub message_id: String,
    /// What became of it.
    pub status: ReceiptStatus,
    /// The gateway's reason, for an undeliverable message.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the broker did with a receipt.
#[derive(Serialize, Deserialize, Debug)]
pub struct ReceiptRecorded {
    /// The message.
    pub message_id: String,
    /// Its receipt now.
    pub status: ReceiptStatus,
    /// `false` when the message already held this receipt (a retry of the gateway).
    pub recorded: bool,
    /// The audit entry of the receipt, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
}

/// Checks a receipt's signature and records it on its message, with its audit entry.
pub async fn record(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<ReceiptRecorded, Error> {
    let Some(secret) = state.settings.relay.sms_gateway_receipt_secret.as_deref() else {
        return Err(Error::new(
            ErrorKind::RelayUnavailable,
            "This broker takes no delivery receipts: it was given no receipt secret.",
        ));
    };
    let now = state.clock.now();
    let tolerance = state
        .settings
        .policies
        .tunables
        .webhooks
        .signature_tolerance_seconds as i64;
    let text = std::str::from_utf8(body).unwrap_or_default();
    let signed = signature.is_some_and(|header| {
        signed_body::verify(
            secret.as_bytes(),
            header,
            text,
            now.unix_timestamp(),
            tolerance,
        )
    });
    if !signed {
        return Err(Error::new(
            ErrorKind::Unauthorized,
            "The receipt's Passerelle-Gateway-Signature is missing, does not match its body, or is too old.",
        ));
    }
    let receipt: GatewayReceipt = parse_json(body)?;
    let reason = match (receipt.status, receipt.reason) {
        (ReceiptStatus::Undeliverable, Some(reason)) => Some(checked_reason(&reason)?),
        (_, Some(_)) => {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "reason",
                "is given only for an undeliverable message",
            ))
        }
        (_, None) => None,
    };
    let report = Report {
        message_id: receipt.message_id,
        work: "sms-gateway",
        channel: "sms",
        outcome: match receipt.status {
            ReceiptStatus::Delivered => Outcome::Delivered,
            ReceiptStatus::Undeliverable | ReceiptStatus::Expired => Outcome::Failed,
        },
        reason: match receipt.status {
            ReceiptStatus::Delivered => None,
            ReceiptStatus::Undeliverable => Some("undeliverable"),
            ReceiptStatus::Expired => Some("expired"),
        },
        receipt: Receipt {
            status: receipt.status.as_str().to_string(),
            reason,
            at: now,
        },
        // What the receipt says of the number: the agency is told, in the same
        // write, if it stopped reaching the traveller.
        heard: match receipt.status {
            ReceiptStatus::Delivered => Heard::Delivered,
            ReceiptStatus::Undeliverable => Heard::Unreachable("undeliverable"),
            ReceiptStatus::Expired => Heard::Nothing,
        },
    };
    // A relayed message, or a verification's code: both went through the gateway.
    let message_id = report.message_id.clone();
    let sent = report.receipt.clone();
    let written = report.record(state).await?;
    let recorded = match written.output {
        Noted::NoMessage => return Err(Error::of(ErrorKind::MessageNotFound)),
        Noted::Recorded => true,
        // The same receipt again (a gateway's retry), or no message it could be about.
        Noted::Unchanged { channel, held } => {
            let already = channel.as_str() == "sms"
                && held.is_some_and(|r| r.status == sent.status && r.reason == sent.reason);
            if !already {
                return Err(Error::field(
                    ErrorKind::InvalidField,
                    "message_id",
                    "names no SMS the gateway accepted",
                ));
            }
            false
        }
    };
    Ok(ReceiptRecorded {
        message_id,
        status: receipt.status,
        recorded,
        audit_index: written.entries.first().map(|entry| entry.index),
    })
}

/// A gateway's reason: short, printable text (shown with the message to the airline
/// that sent it, never written to the audit log).
fn checked_reason(reason: &str) -> Result<String, Error> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "reason",
            format!("must be 1 to {MAX_REASON_CHARS} printable characters"),
        ));
    }
    Ok(reason.to_string())
}
