//! Bounces: what a delivery-status notification (RFC 3464) says of the message it
//! reports, and the per-message return path (VERP) that tells which message it is.
//!
//! A relayed email goes out with the envelope sender `bounce+<message id>@<bounce
//! domain>`, so the DSN a receiving server sends back is addressed to that message
//! alone: the broker never has to trust what the report's text claims about which
//! message it is. The report's `message/delivery-status` part says, per recipient,
//! what happened (`Action`) and why (`Status`, RFC 3463): a `failed` action with a
//! permanent `5.x.x` status is a hard bounce (the address does not work), a `4.x.x`
//! status or a `delayed` action a soft one (it may yet).

use mail_parser::{MessageParser, MimeHeaders};

/// The local part's prefix of a return path.
const PREFIX: &str = "bounce+";

/// The return path of a relayed message: `bounce+<message id>@<domain>`.
pub fn return_path(message_id: &str, domain: &str) -> String {
    format!("{PREFIX}{message_id}@{domain}")
}

/// The message a return path names, if it is one of ours on `domain`: a relayed
/// message (`msg_…`) or a contact verification's link (`cvf_…`).
pub fn message_of(address: &str, domain: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, host) = address.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let id = local.strip_prefix(PREFIX)?;
    let well_formed = (id.starts_with("msg_") || id.starts_with("cvf_"))
        && id.len() <= 64
        && id[4..].chars().all(|c| c.is_ascii_hexdigit());
    well_formed.then(|| id.to_string())
}

/// What a report says happened to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounce {
    /// It cannot be delivered: the address does not work (`5.x.x`).
    Hard {
        /// The RFC 3463 status, `5.1.1` say.
        status: String,
    },
    /// Not delivered yet, or not this time (`4.x.x`, or delayed).
    Soft {
        /// The RFC 3463 status, if given.
        status: Option<String>,
    },
}

/// Why a report was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAReport {
    /// Not a MIME message.
    Unparsable,
    /// No `message/delivery-status` part.
    NoStatus,
    /// The status part says the message was delivered (or relayed): nothing bounced.
    NothingFailed,
}

/// Reads a DSN. The worst recipient decides: a hard failure of any recipient is a hard
/// bounce.
pub fn read(raw: &[u8]) -> Result<Bounce, NotAReport> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(NotAReport::Unparsable)?;
    let status = message
        .parts
        .iter()
        .find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct.subtype().is_some_and(|s| {
                        s.eq_ignore_ascii_case("delivery-status")
                            || s.eq_ignore_ascii_case("global-delivery-status")
                    })
            })
        })
        .ok_or(NotAReport::NoStatus)?;
    let text = String::from_utf8_lossy(status.contents());
    let mut worst: Option<Bounce> = None;
    for fields in recipient_fields(&text) {
        let action = field(&fields, "action").map(str::to_ascii_lowercase);
        let code = field(&fields, "status")
            .map(|s| s.split_whitespace().next().unwrap_or_default().to_string());
        let bounce = match (action.as_deref(), code.as_deref()) {
            (Some("failed"), Some(code)) if code.starts_with('5') => Bounce::Hard {
                status: code.to_string(),
            },
            (Some("failed" | "delayed"), code) => Bounce::Soft {
                status: code.map(str::to_string),
            },
            _ => continue,
        };
        worst = match (worst, bounce) {
            (Some(hard @ Bounce::Hard { .. }), _) => Some(hard),
            (_, bounce) => Some(bounce),
        };
    }
    worst.ok_or(NotAReport::NothingFailed)
}

/// The per-recipient groups of a status part: the groups after the first (the
/// per-message fields), separated by blank lines, with folded lines joined.
fn recipient_fields(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut().expect("one group at least");
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups.retain(|g| !g.is_empty());
    groups.into_iter().skip(1).collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(action: &str, status: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nTo: bounce+msg_ab12@bounces.example\r\n\
             Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.example\r\n\r\n\
             Final-Recipient: rfc822; someone@example.net\r\nAction: {action}\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n\
             --b--\r\n"
        )
    }

    #[test]
    fn a_permanent_failure_is_a_hard_bounce() {
        assert_eq!(
            read(report("failed", "5.1.1").as_bytes()),
            Ok(Bounce::Hard {
                status: "5.1.1".into()
            })
        );
    }

    #[test]
    fn a_temporary_failure_or_a_delay_is_a_soft_bounce() {
        assert_eq!(
            read(report("failed", "4.2.2").as_bytes()),
            Ok(Bounce::Soft {
                status: Some("4.2.2".into())
            })
        );
        assert!(matches!(
            read(report("delayed", "4.4.7").as_bytes()),
            Ok(Bounce::Soft { .. })
        ));
    }

    #[test]
    fn a_delivery_or_a_plain_mail_is_no_bounce() {
        assert_eq!(
            read(report("delivered", "2.0.0").as_bytes()),
            Err(NotAReport::NothingFailed)
        );
        assert_eq!(
            read(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"),
            Err(NotAReport::NoStatus)
        );
    }

    #[test]
    fn only_our_return_paths_name_a_message() {
        let path = return_path("msg_ab12", "bounces.example");
        assert_eq!(path, "bounce+msg_ab12@bounces.example");
        assert_eq!(
            message_of(&format!("<{path}>"), "BOUNCES.example"),
            Some("msg_ab12".into())
        );
        assert_eq!(message_of(&path, "other.example"), None);
        assert_eq!(
            message_of("bounce+cvf_cd34@bounces.example", "bounces.example"),
            Some("cvf_cd34".into())
        );
        assert_eq!(
            message_of("bounce+trv_cd34@bounces.example", "bounces.example"),
            None
        );
        assert_eq!(
            message_of("bounce+msg_zz@bounces.example", "bounces.example"),
            None
        );
        assert_eq!(
            message_of("postmaster@bounces.example", "bounces.example"),
            None
        );
    }
}
