//! Email bounces: a delivery-status notification received for a relayed email, on the
//! broker's own SMTP listener (`workers::bounces`), recorded on its message.
//!
//! The report reached `bounce+<message id>@<bounce domain>`, the return path the
//! email was sent with (`domain::dsn`), so it names its message by where it was
//! delivered, not by what its text claims. A hard bounce (`5.x.x`) marks the address
//! unreachable (`service::reachability`, the agency told); a soft one is recorded and
//! changes nothing else. Each is on the message (`GET /v1/messages/{id}`: `bounced`,
//! `hard 5.1.1`) and audited (`message_receipt`, `failed`, `hard_bounce` or
//! `soft_bounce`).

use crate::audit::Outcome;
use crate::domain::dsn::Bounce;
use crate::service::reachability::Heard;
use crate::service::transport_reports::{Noted, Report};
use crate::service::{AppState, Error};
use crate::store::outbox::Receipt;

/// Records a bounce of `message_id`. Answers the audit entry's index, or `None` when
/// there was nothing to record (no such email, not yet sent, or the same report again).
pub async fn record(
    state: &AppState,
    message_id: &str,
    bounce: &Bounce,
) -> Result<Option<i64>, Error> {
    let (reason, heard, word) = match bounce {
        Bounce::Hard { status } => (
            format!("hard {status}"),
            Heard::Unreachable("hard_bounce"),
            "hard_bounce",
        ),
        Bounce::Soft { status } => (
            status
                .as_deref()
                .map_or_else(|| "soft".to_string(), |s| format!("soft {s}")),
            Heard::Nothing,
            "soft_bounce",
        ),
    };
    // A relayed email, or a verification's link: both went out with their own return path.
    let report = Report {
        message_id: message_id.to_string(),
        work: "smtp-bounces",
        channel: "email",
        outcome: Outcome::Failed,
        reason: Some(word),
        receipt: Receipt {
            status: "bounced".into(),
            reason: Some(reason),
            at: state.clock.now(),
        },
        heard,
    };
    let written = report.record(state).await?;
    Ok(match written.output {
        Noted::Recorded => written.entries.first().map(|entry| entry.index),
        Noted::NoMessage | Noted::Unchanged { .. } => None,
    })
}
