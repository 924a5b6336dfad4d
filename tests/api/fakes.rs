//! Real peers on loopback for the relay: an SMTP server that speaks enough ESMTP for a
//! real client to hand it mail, and an HTTP receiver (SMS gateway, agency webhook) that
//! records what it receives and answers with the statuses a test scripts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A mail as the SMTP server took it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// An SMTP server on loopback.
pub struct FakeSmtp {
    pub url: String,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl FakeSmtp {
    /// Starts the server on a free port.
    pub async fn start() -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move { session(socket, kept).await });
            }
        });
        FakeSmtp { url, mails }
    }

    /// The mails received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(socket: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 fake.test ESMTP\r\n").await;
    let mut mail = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-fake.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to
                .push(line[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            while let Ok(Some(data)) = lines.next_line().await {
                if data == "." {
                    break;
                }
                mail.data.push_str(&data);
                mail.data.push('\n');
            }
            mails.lock().unwrap().push(mail.clone());
            mail.to.clear();
            mail.data.clear();
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// A request as the HTTP receiver took it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    received: Vec<Received>,
    redirect: Option<String>,
}

/// An HTTP receiver on loopback: answers each POST with the next scripted status
/// (200 when the script is empty) and records it.
#[derive(Clone)]
pub struct FakeHttp {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeHttp {
    /// Starts the receiver on a free port.
    pub async fn start() -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script::default()));
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .route("/hook/{*rest}", axum::routing::post(receive))
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeHttp { url, script }
    }

    /// Answers the next requests with these statuses.
    pub fn fail_with(&self, statuses: &[u16]) {
        self.script.lock().unwrap().statuses.extend(statuses);
    }

    /// Answers every request from now on with `307 Temporary Redirect` to `location`.
    pub fn redirect_to(&self, location: &str) {
        self.script.lock().unwrap().redirect = Some(location.to_string());
    }

    /// What was received, including the requests answered with an error.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut script = script.lock().unwrap();
    script.received.push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Some(location) = &script.redirect {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, location.clone())],
        )
            .into_response();
    }
    let status = script.statuses.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap().into_response()
}

/// A listener that accepts connections and never answers: a webhook that hangs.
pub struct BlackHole {
    pub url: String,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl BlackHole {
    /// Starts it on a free port.
    pub async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        BlackHole { url, accepted }
    }

    /// Connections it took (and never answered).
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
