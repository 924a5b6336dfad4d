//! RFC 9457 problem details: the only shape an error ever takes on the wire.
//!
//! Each kind of error has a stable `type` URI (`urn:passerelle:problem:<slug>`) that
//! clients can branch on; `openapi.yaml` lists the same closed set, and a test keeps
//! the two in step. A 5xx says nothing internal: its cause is handed to the logging
//! middleware in a response extension, and the client gets the request id instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! problem_kinds {
    ($($variant:ident => ($status:expr, $slug:literal, $title:literal),)*) => {
        /// Every kind of error the API returns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemKind { $(#[doc = $title] $variant,)* }

        impl ProblemKind {
            /// All kinds, for the contract test and documentation.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant,)*];
            /// The HTTP status.
            pub fn status(self) -> StatusCode {
                match self { $(Self::$variant => $status,)* }
            }
            /// The short stable name.
            pub fn slug(self) -> &'static str {
                match self { $(Self::$variant => $slug,)* }
            }
            /// A short human-readable summary.
            pub fn title(self) -> &'static str {
                match self { $(Self::$variant => $title,)* }
            }
        }
    };
}

problem_kinds! {
    BadRequest => (StatusCode::BAD_REQUEST, "bad-request", "The request is not well formed"),
    MalformedJson => (StatusCode::BAD_REQUEST, "malformed-json", "The body is not valid JSON"),
    Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "A valid API key is required"),
    WrongPartyKind => (StatusCode::FORBIDDEN, "wrong-party-kind", "This route is not for your kind of party"),
    NotFound => (StatusCode::NOT_FOUND, "not-found", "No such route"),
    MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "This route does not take that method"),
    RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request-timeout", "The request took too long"),
    BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "The body is larger than allowed"),
    UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "The body's media type is not accepted here"),
    InvalidField => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field is missing, unknown or invalid"),
    MalformedSignature => (StatusCode::UNPROCESSABLE_ENTITY, "malformed-signature", "The signature is not a detached EdDSA JWS"),
    UnknownKeyId => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-key-id", "The signing key is not registered to your agency"),
    BadSignature => (StatusCode::UNPROCESSABLE_ENTITY, "bad-signature", "The signature does not verify"),
    PurposeNotOperational => (StatusCode::UNPROCESSABLE_ENTITY, "purpose-not-operational", "Only operational notifications are allowed"),
    BookingNotFound => (StatusCode::NOT_FOUND, "booking-not-found", "No such traveller on a flight you carry"),
    AmbiguousTraveller => (StatusCode::CONFLICT, "ambiguous-traveller", "Several bookings match"),
    NoConsent => (StatusCode::FORBIDDEN, "no-consent", "The traveller has no consent on file"),
    ConsentDoesNotCover => (StatusCode::FORBIDDEN, "consent-does-not-cover", "The consent does not cover this request"),
    ConsentRefused => (StatusCode::FORBIDDEN, "consent-refused", "The traveller refused to give a contact"),
    ConsentInactive => (StatusCode::FORBIDDEN, "consent-inactive", "The consent is no longer active"),
    ConsentNotFound => (StatusCode::NOT_FOUND, "consent-not-found", "No such consent record of yours"),
    ContactPurged => (StatusCode::GONE, "contact-purged", "The record's contact was destroyed at the end of its retention"),
    BatchRejected => (StatusCode::UNPROCESSABLE_ENTITY, "batch-rejected", "The atomic batch was not stored"),
    BatchUnreadable => (StatusCode::BAD_REQUEST, "batch-unreadable", "The batch could not be read to its end"),
    BatchTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "batch-too-large", "The batch holds more records than one request may"),
    IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "The Idempotency-Key was used for another request"),
    IdempotencyKeyInFlight => (StatusCode::CONFLICT, "idempotency-key-in-flight", "A request with this Idempotency-Key is still running"),
    WithdrawalCodeUnknown => (StatusCode::NOT_FOUND, "withdrawal-code-unknown", "No consent answers to this withdrawal code"),
    NothingToWithdraw => (StatusCode::CONFLICT, "nothing-to-withdraw", "There is no given consent to withdraw"),
    TokenNotFound => (StatusCode::NOT_FOUND, "token-not-found", "No such release token for your airline"),
    TokenUsed => (StatusCode::GONE, "token-used", "The release token was used already"),
    TokenExpired => (StatusCode::GONE, "token-expired", "The release token expired"),
    TokenRevoked => (StatusCode::GONE, "token-revoked", "The release token was revoked"),
    OutsideReleaseWindow => (StatusCode::FORBIDDEN, "outside-release-window", "Outside the period in which contacts are released"),
    NotPermitted => (StatusCode::FORBIDDEN, "not-permitted", "No policy permits this request"),
    RelayOnly => (StatusCode::CONFLICT, "relay-only", "This contact is only reachable through the broker's relay"),
    ChannelNotCovered => (StatusCode::UNPROCESSABLE_ENTITY, "channel-not-covered", "The token or the record does not cover this channel"),
    LinkNotAllowed => (StatusCode::UNPROCESSABLE_ENTITY, "link-not-allowed", "The message links outside the airline's registered domains"),
    RelayUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "relay-unavailable", "This broker has no transport configured for that channel"),
    MessageNotFound => (StatusCode::NOT_FOUND, "message-not-found", "No such relayed message of yours"),
    EntryNotFound => (StatusCode::NOT_FOUND, "entry-not-found", "No audit entry at this index"),
    NoCheckpoint => (StatusCode::NOT_FOUND, "no-checkpoint", "No signed checkpoint covers this yet"),
    AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit-unavailable", "The audit log cannot be written; nothing was done"),
    LogInconsistent => (StatusCode::INTERNAL_SERVER_ERROR, "log-inconsistent", "The audit log does not extend its last checkpoint"),
    RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests from your airline"),
    CsrfRejected => (StatusCode::FORBIDDEN, "csrf-rejected", "The form did not come from this site"),
    Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
    Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The service is not ready"),
}

impl ProblemKind {
    /// The `type` URI.
    pub fn type_uri(self) -> String {
        format!("urn:passerelle:problem:{}", self.slug())
    }

    /// The sentence a problem of this kind carries when nothing more specific is said:
    /// one wording, whether a handler or the middleware answers.
    pub fn default_detail(self) -> &'static str {
        match self {
            Self::NotFound => "There is no route at this path; see openapi.yaml for the API.",
            Self::MethodNotAllowed => "This route exists but does not take this method.",
            Self::RequestTimeout => "The broker gave up on this request; it was not completed.",
            Self::BodyTooLarge => "The body is larger than this broker accepts.",
            Self::Internal => "The broker could not complete the request.",
            _ => "The request could not be handled.",
        }
    }

    /// The kind a bare error status stands for, when something below the handlers
    /// (routing, a tower layer, a panic) answered without a problem body.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthorized,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            413 => Self::BodyTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::InvalidField,
            503 => Self::Unavailable,
            s if s >= 500 => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

/// One invalid field: its JSON path and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path, e.g. `statement.traveller.mobile` (`body` for the whole body).
    pub field: String,
    /// The same place as an RFC 6901 JSON pointer (`/statement/traveller/mobile`).
    pub pointer: String,
    /// Why it was refused.
    pub reason: String,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct Problem {
    kind: ProblemKind,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u32>,
    /// Boxed: `serde_json::Map` is large when a dependency turns on `preserve_order`.
    extensions: Box<serde_json::Map<String, serde_json::Value>>,
    cause: Option<String>,
}

/// The internal cause of a 5xx, for the logs only.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of some kind with a detail sentence.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            extensions: Box::default(),
            cause: None,
        }
    }

    /// A problem of some kind with its default detail sentence.
    pub fn of(kind: ProblemKind) -> Self {
        Self::new(kind, kind.default_detail())
    }

    /// An invalid field, of the `invalid-field` kind unless given another.
    pub fn field(kind: ProblemKind, field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let error = FieldError {
            pointer: json_pointer(&field),
            field,
            reason: reason.into(),
        };
        Self::new(kind, format!("{}: {}", error.field, error.reason)).with_errors(vec![error])
    }

    /// Attaches the invalid fields.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Asks the client to wait this many seconds (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the release rule that decided a refusal.
    pub fn with_rule(self, rule: impl Into<String>) -> Self {
        self.with_extension("rule", serde_json::Value::String(rule.into()))
    }

    /// An internal error: the client sees a generic message, the log sees `cause`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut problem = Self::of(ProblemKind::Internal);
        problem.cause = Some(cause.to_string());
        problem
    }

    /// Adds a member to the problem body (RFC 9457 extension member).
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_string(), value);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The detail sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// A member added to the problem body (`counts`, `results`…), if present.
    pub fn extension(&self, name: &str) -> Option<&serde_json::Value> {
        self.extensions.get(name)
    }

    /// The invalid fields.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

/// Turns a field path (`statement.purposes[1]`, `[3].signature`) into an RFC 6901
/// JSON pointer (`/statement/purposes/1`, `/3/signature`). `body` is the whole
/// document (`""`).
pub fn json_pointer(field: &str) -> String {
    if field == "body" {
        return String::new();
    }
    let mut out = String::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(index);
        }
    }
    out
}

impl From<crate::store::StoreError> for Problem {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(err)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let bytes = serde_json::to_vec(&self.body()).expect("a problem serializes");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            bytes,
        )
            .into_response();
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ProblemKind::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl Problem {
    fn body(&self) -> Body<'_> {
        Body {
            type_uri: self.kind.type_uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            extensions: &self.extensions,
        }
    }

    /// The JSON body this problem would have, for middleware that rewrites bodies.
    pub fn into_response_body(self) -> serde_json::Value {
        serde_json::to_value(self.body()).expect("a problem serializes")
    }
}
