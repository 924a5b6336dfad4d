//! The bounce listener: an SMTP server (plain, behind the bounce domain's MX, or on
//! loopback in the demo) that takes the delivery-status notifications sent back to
//! relayed emails' return paths and records each on its message (`service::bounces`).
//!
//! `mailin` speaks the protocol; this module owns the socket and bounds everything an
//! unknown peer can make it hold: connections at once, a line's length (RFC 5321's
//! 1,000 octets), a message's size, the time between lines, and the reports waiting
//! to be recorded. It takes mail only for `bounce+<message id>@<bounce domain>`; any
//! other recipient is refused (`550`), so it relays nothing and is no open mailbox.

use crate::domain::dsn;
use crate::service::AppState;
use mailin::{Action, Handler, Response, SessionBuilder};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;
/// The longest command or text line, CRLF included (RFC 5321 4.5.3.1.6).
const MAX_LINE: usize = 1000;
/// The largest report taken; a DSN is a few kilobytes, with the original's headers.
const MAX_MESSAGE: usize = 256 * 1024;
/// How long the listener waits for the peer's next line.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);
/// Reports received and not yet recorded; past it the peer is asked to retry later
/// (`451`). With the sessions' own buffers, the listener holds at most
/// (32 + 32) × 256 KiB, 16 MiB, whatever its peers send.
const QUEUED_REPORTS: usize = 32;

/// A report taken: the message its return path names, and its text.
struct Report {
    message_id: String,
    raw: Vec<u8>,
}

/// Serves the listener until the broker stops.
pub async fn run(state: AppState, listener: TcpListener) {
    let Some(domain) = state.settings.relay.bounce_domain.clone() else {
        tracing::error!("the bounce listener has no bounce domain; it does not start");
        return;
    };
    let (reports, mut queued) = mpsc::channel::<Report>(QUEUED_REPORTS);
    let recorder = state.clone();
    tokio::spawn(async move {
        while let Some(report) = queued.recv().await {
            record(&recorder, report).await;
        }
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "the bounce listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (domain, reports) = (domain.clone(), reports.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = session(socket, peer.ip(), domain, reports).await {
                tracing::debug!(%error, "a bounce session ended early");
            }
        });
    }
}

async fn record(state: &AppState, report: Report) {
    let bounce = match dsn::read(&report.raw) {
        Ok(bounce) => bounce,
        Err(why) => {
            tracing::info!(message_id = %report.message_id, ?why, "mail to a return path was not a bounce; ignored");
            return;
        }
    };
    if let Err(error) = crate::service::bounces::record(state, &report.message_id, &bounce).await {
        tracing::error!(message_id = %report.message_id, error = %error.detail(), "a bounce could not be recorded");
    }
}

/// One SMTP session, to its end or its first broken limit.
async fn session(
    socket: TcpStream,
    peer: IpAddr,
    domain: String,
    reports: mpsc::Sender<Report>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let handler = Taker {
        domain,
        reports,
        message_id: None,
        data: Vec::new(),
        too_large: false,
    };
    let mut smtp = SessionBuilder::new("passerelle-bounces").build(peer, handler);
    write.write_all(&smtp.greeting().buffer()?).await?;
    let mut line = Vec::with_capacity(MAX_LINE);
    loop {
        line.clear();
        let mut bounded = (&mut read).take(MAX_LINE as u64);
        let read_line = bounded.read_until(b'\n', &mut line);
        let n = tokio::time::timeout(LINE_TIMEOUT, read_line)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no line in time"))??;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            // Longer than any line may be: the session ends.
            let refused = b"500 Line too long\r\n";
            write.write_all(refused).await?;
            return Ok(());
        }
        let response: Response = smtp.process(&null_sender_named(&line));
        match response.action {
            Action::Reply => write.write_all(&response.buffer()?).await?,
            Action::Close => {
                write.write_all(&response.buffer()?).await?;
                return Ok(());
            }
            // No STARTTLS is offered: a peer asking for it gets the refusal as is.
            Action::UpgradeTls => write.write_all(&response.buffer()?).await?,
            Action::NoReply => {}
        }
    }
}

/// `MAIL FROM:<>`, the null reverse path every bounce is sent with (RFC 5321 4.5.5),
/// with a placeholder in it: `mailin`'s parser takes only a non-empty path, and the
/// sender is never used here.
fn null_sender_named(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NULL: &[u8] = b"mail from:<>";
    if line.len() >= NULL.len() && line[..NULL.len()].eq_ignore_ascii_case(NULL) {
        let mut named = b"MAIL FROM:<null-sender@invalid>".to_vec();
        named.extend_from_slice(&line[NULL.len()..]);
        return std::borrow::Cow::Owned(named);
    }
    std::borrow::Cow::Borrowed(line)
}

/// The session's handler: takes mail for one of our return paths, keeps its text up
/// to the size limit, and queues it for recording at its end.
struct Taker {
    domain: String,
    reports: mpsc::Sender<Report>,
    message_id: Option<String>,
    data: Vec<u8>,
    too_large: bool,
}

impl Handler for Taker {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.message_id = None;
        self.data.clear();
        self.too_large = false;
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match dsn::message_of(to, &self.domain) {
            Some(id) if self.message_id.is_none() => {
                self.message_id = Some(id);
                mailin::response::OK
            }
            // One report per message: a second recipient waits for another mail.
            Some(_) => Response::custom(452, "One recipient per report".into()),
            None => mailin::response::NO_MAILBOX,
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.data.len() + buf.len() > MAX_MESSAGE {
            self.too_large = true;
            return Ok(());
        }
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.too_large) {
            return mailin::response::NO_STORAGE;
        }
        let Some(message_id) = self.message_id.take() else {
            return mailin::response::TRANSACTION_FAILED;
        };
        let report = Report {
            message_id,
            raw: data,
        };
        match self.reports.try_send(report) {
            Ok(()) => mailin::response::OK,
            Err(_) => mailin::response::INTERNAL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_sender_is_named_and_any_other_line_left_as_it_is() {
        assert_eq!(
            &*null_sender_named(b"MAIL FROM:<> BODY=8BITMIME\r\n"),
            b"MAIL FROM:<null-sender@invalid> BODY=8BITMIME\r\n"
        );
        assert_eq!(
            &*null_sender_named(b"mail from:<>\r\n"),
            b"MAIL FROM:<null-sender@invalid>\r\n"
        );
        assert_eq!(
            &*null_sender_named(b"MAIL FROM:<a@b.example>\r\n"),
            b"MAIL FROM:<a@b.example>\r\n"
        );
        assert_eq!(&*null_sender_named(b"RCPT TO:<>\r\n"), b"RCPT TO:<>\r\n");
    }
}
