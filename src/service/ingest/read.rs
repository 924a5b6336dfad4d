//! Reading a bulk upload's body as it arrives: a JSON array split into its elements,
//! NDJSON lines, or CSV rows, each handed to the run as one record. No line, element
//! or row is held beyond [`MAX_LINE`] bytes.

use super::run::{Flow, Run};
use super::Submission;
use crate::service::input::parse_json;
use crate::service::{Error, ErrorKind};
use axum::body::Body;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

/// The longest NDJSON line, JSON array element or CSV row accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// The request body as a stream of bytes, read a byte at a time from buffered chunks.
pub(crate) struct BodyReader {
    stream: axum::body::BodyDataStream,
    buffer: axum::body::Bytes,
    position: usize,
}

impl BodyReader {
    pub(crate) fn new(body: Body) -> Self {
        Self {
            stream: body.into_data_stream(),
            buffer: axum::body::Bytes::new(),
            position: 0,
        }
    }

    /// The next byte, `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<u8>, Error> {
        while self.position >= self.buffer.len() {
            match self.stream.next().await {
                None => return Ok(None),
                Some(Ok(bytes)) => {
                    self.buffer = bytes;
                    self.position = 0;
                }
                Some(Err(error)) => return Err(body_error(error)),
            }
        }
        let byte = self.buffer[self.position];
        self.position += 1;
        Ok(Some(byte))
    }

    /// Reads what is left of the body and drops it (at most the body cap), so that a
    /// client still sending gets the answer rather than a reset connection.
    pub(crate) async fn drain(&mut self) {
        self.position = self.buffer.len();
        while let Some(Ok(_)) = self.stream.next().await {}
    }

    /// The next line without its end (`\n` or `\r\n`), `None` at the end of the body.
    pub(super) async fn line(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut line = Vec::new();
        loop {
            match self.next().await? {
                None if line.is_empty() => return Ok(None),
                None => break,
                Some(b'\n') => break,
                Some(byte) => {
                    if line.len() >= MAX_LINE {
                        return Err(Error::new(
                            ErrorKind::BatchUnreadable,
                            format!("A line is longer than {MAX_LINE} bytes."),
                        ));
                    }
                    line.push(byte);
                }
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

fn body_error(error: axum::Error) -> Error {
    let too_large = std::error::Error::source(&error)
        .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
        || error.to_string().contains("length limit");
    if too_large {
        Error::of(ErrorKind::BodyTooLarge)
    } else {
        Error::new(ErrorKind::BadRequest, "The body could not be read.")
    }
}

/// A record of a JSON array or NDJSON line: `{"statement": …, "signature": …}`.
fn submission_of(bytes: &[u8], index: usize) -> Result<Submission, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        statement: Value,
        signature: String,
    }
    let prefix = |p: Error| {
        let field = match p.errors().first() {
            Some(e) if e.field != "body" => format!("[{index}].{}", e.field),
            _ => format!("[{index}]"),
        };
        let reason = p
            .errors()
            .first()
            .map_or_else(|| p.detail().to_string(), |e| e.reason.clone());
        Error::field(p.kind(), field, reason)
    };
    let item: Item = parse_json(bytes).map_err(prefix)?;
    Ok(Submission {
        statement: item.statement,
        signature: Some(item.signature),
    })
}

/// Splits a JSON array into its elements as the bytes arrive: it tracks nesting and
/// strings, and hands each complete element to the run.
pub(crate) async fn json_array(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Error>, Error> {
    let unreadable = |what: &str| {
        Error::new(
            ErrorKind::BatchUnreadable,
            format!("The body is not a JSON array of records: {what}."),
        )
    };
    // Opening bracket.
    loop {
        match reader.next().await? {
            Some(b) if b.is_ascii_whitespace() => continue,
            Some(b'[') => break,
            _ => return Ok(Some(unreadable("it must start with `[`"))),
        }
    }
    let mut element = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut index = 0;
    loop {
        let Some(byte) = reader.next().await? else {
            return Ok(Some(unreadable("it ends before its closing `]`")));
        };
        if in_string {
            element.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                element.push(byte);
            }
            b'{' | b'[' => {
                depth += 1;
                element.push(byte);
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                element.push(byte);
            }
            b',' | b']' if depth == 0 => {
                let text = std::mem::take(&mut element);
                let blank = text.iter().all(u8::is_ascii_whitespace);
                if blank && byte == b']' && index == 0 {
                    break;
                }
                if blank {
                    return Ok(Some(unreadable(&format!("element {index} is empty"))));
                }
                let item = if text.len() > MAX_LINE {
                    Err(Error::field(
                        ErrorKind::InvalidField,
                        format!("[{index}]"),
                        format!("is larger than {MAX_LINE} bytes"),
                    ))
                } else {
                    submission_of(&text, index)
                };
                if run.push(item)? == Flow::Stop {
                    return Ok(None);
                }
                index += 1;
                if byte == b']' {
                    break;
                }
            }
            _ => {
                if element.len() > MAX_LINE {
                    // Keep reading to the element's end without holding it.
                    continue;
                }
                element.push(byte);
            }
        }
    }
    // Only white space may follow.
    while let Some(byte) = reader.next().await? {
        if !byte.is_ascii_whitespace() {
            return Ok(Some(unreadable("something follows its closing `]`")));
        }
    }
    Ok(None)
}

/// One record per line; blank lines are skipped.
pub(crate) async fn ndjson(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Error>, Error> {
    let mut index = 0;
    while let Some(line) = reader.line().await? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if run.push(submission_of(&line, index))? == Flow::Stop {
            break;
        }
        index += 1;
    }
    Ok(None)
}
