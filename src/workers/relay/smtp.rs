//! Email through an SMTP relay (`lettre`): the operator's mail server, which does the
//! rest (DKIM, delivery). With a bounce domain, each email's envelope sender is its
//! own return path (`bounce+<message id>@<domain>`, `domain::dsn`), so that its bounce
//! comes back to the broker's listener naming the message.

use super::Attempt;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};

/// A configured SMTP relay.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    bounce_domain: Option<String>,
}

impl Smtp {
    /// Builds the transport from `smtp://host:port` (plain), `smtp://…?tls=required`
    /// (STARTTLS) or `smtps://host:port`, with optional `user:password@`.
    pub fn new(url: &str, from: &str, bounce_domain: Option<&str>) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("--smtp-url is not a usable SMTP URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("--mail-from `{from}` is not an address: {e}"))?;
        Ok(Self {
            transport,
            from,
            bounce_domain: bounce_domain.map(str::to_string),
        })
    }

    /// Sends one message. 4xx replies and connection failures are transient, 5xx
    /// permanent, as SMTP defines them.
    pub async fn send(&self, to: &str, subject: &str, text: &str, message_id: &str) -> Attempt {
        let Ok(to) = to.parse::<Mailbox>() else {
            return Attempt::Permanent("smtp invalid recipient".into());
        };
        let to_address = to.email.clone();
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@passerelle>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string());
        let email = match email {
            Ok(email) => email,
            Err(_) => return Attempt::Permanent("smtp message not buildable".into()),
        };
        let sent = match &self.bounce_domain {
            None => self.transport.send(email).await,
            Some(domain) => {
                let return_path = crate::domain::dsn::return_path(message_id, domain).parse();
                let Ok(return_path) = return_path else {
                    return Attempt::Permanent("smtp return path not buildable".into());
                };
                let Ok(envelope) = Envelope::new(Some(return_path), vec![to_address]) else {
                    return Attempt::Permanent("smtp envelope not buildable".into());
                };
                self.transport.send_raw(&envelope, &email.formatted()).await
            }
        };
        match sent {
            Ok(_) => Attempt::Delivered,
            Err(error) => {
                let code = error.status().map(|c| c.to_string());
                match code {
                    Some(code) if error.is_permanent() => {
                        Attempt::Permanent(format!("smtp {code}"))
                    }
                    Some(code) => Attempt::Transient(format!("smtp {code}")),
                    None => Attempt::Transient("smtp connection failed".into()),
                }
            }
        }
    }
}
