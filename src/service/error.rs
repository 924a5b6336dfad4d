//! The error of every use case: one closed set of kinds, each with a stable name.
//!
//! The HTTP edge turns an [`Error`] into RFC 9457 problem details (`http/problem.rs`);
//! the pages into an error page. Each kind's stable slug becomes the problem's `type`
//! URI (`urn:passerelle:problem:<slug>`), which `openapi.yaml` lists and a test keeps in
//! step. An internal error carries its cause for the logs only, never to the client.

use serde::Serialize;

macro_rules! error_kinds {
    ($($variant:ident => ($status:expr, $slug:literal, $title:literal),)*) => {
        /// Every kind of error the API returns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind { $(#[doc = $title] $variant,)* }

        impl ErrorKind {
            /// All kinds, for the contract test and documentation.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];
            /// The HTTP status the edge answers with (a number: the table stays one list).
            pub fn status(self) -> u16 {
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

error_kinds! {
    BadRequest => (400, "bad-request", "The request is not well formed"),
    MalformedJson => (400, "malformed-json", "The body is not valid JSON"),
    Unauthorized => (401, "unauthorized", "A valid API key is required"),
    WrongPartyKind => (403, "wrong-party-kind", "This route is not for your kind of party"),
    NotFound => (404, "not-found", "No such route"),
    MethodNotAllowed => (405, "method-not-allowed", "This route does not take that method"),
    RequestTimeout => (408, "request-timeout", "The request took too long"),
    BodyTooLarge => (413, "body-too-large", "The body is larger than allowed"),
    UnsupportedMediaType => (415, "unsupported-media-type", "The body's media type is not accepted here"),
    InvalidField => (422, "invalid-field", "A field is missing, unknown or invalid"),
    MalformedSignature => (422, "malformed-signature", "The signature is not a detached EdDSA JWS"),
    UnknownKeyId => (422, "unknown-key-id", "The signing key is not registered to your agency"),
    BadSignature => (422, "bad-signature", "The signature does not verify"),
    PurposeNotOperational => (422, "purpose-not-operational", "Only operational notifications are allowed"),
    BookingNotFound => (404, "booking-not-found", "No such traveller on a flight you carry"),
    AmbiguousTraveller => (409, "ambiguous-traveller", "Several bookings match"),
    NoConsent => (403, "no-consent", "The traveller has no consent on file"),
    ConsentDoesNotCover => (403, "consent-does-not-cover", "The consent does not cover this request"),
    ConsentRefused => (403, "consent-refused", "The traveller refused to give a contact"),
    ConsentInactive => (403, "consent-inactive", "The consent is no longer active"),
    ConsentNotFound => (404, "consent-not-found", "No such consent record of yours"),
    ContactPurged => (410, "contact-purged", "The record's contact was destroyed at the end of its retention"),
    BatchRejected => (422, "batch-rejected", "The atomic batch was not stored"),
    BatchUnreadable => (400, "batch-unreadable", "The batch could not be read to its end"),
    BatchTooLarge => (413, "batch-too-large", "The batch holds more records than one request may"),
    IdempotencyKeyReused => (422, "idempotency-key-reused", "The Idempotency-Key was used for another request"),
    IdempotencyKeyInFlight => (409, "idempotency-key-in-flight", "A request with this Idempotency-Key is still running"),
    WithdrawalCodeUnknown => (404, "withdrawal-code-unknown", "No consent answers to this withdrawal code"),
    NothingToWithdraw => (409, "nothing-to-withdraw", "There is no given consent to withdraw"),
    TokenNotFound => (404, "token-not-found", "No such release token for your airline"),
    TokenUsed => (410, "token-used", "The release token was used already"),
    TokenExpired => (410, "token-expired", "The release token expired"),
    TokenRevoked => (410, "token-revoked", "The release token was revoked"),
    OutsideReleaseWindow => (403, "outside-release-window", "Outside the period in which contacts are released"),
    NotPermitted => (403, "not-permitted", "No policy permits this request"),
    RelayOnly => (409, "relay-only", "This contact is only reachable through the broker's relay"),
    ChannelNotCovered => (422, "channel-not-covered", "The token or the record does not cover this channel"),
    LinkNotAllowed => (422, "link-not-allowed", "The message links outside the airline's registered domains"),
    RelayUnavailable => (503, "relay-unavailable", "This broker has no transport configured for that channel"),
    MessageNotFound => (404, "message-not-found", "No such relayed message of yours"),
    EntryNotFound => (404, "entry-not-found", "No audit entry at this index"),
    NoCheckpoint => (404, "no-checkpoint", "No signed checkpoint covers this yet"),
    AuditUnavailable => (503, "audit-unavailable", "The audit log cannot be written; nothing was done"),
    LogInconsistent => (500, "log-inconsistent", "The audit log does not extend its last checkpoint"),
    DisruptionNotFound => (404, "disruption-not-found", "No such disruption of yours"),
    ErasureRequestNotFound => (404, "erasure-request-not-found", "No such erasure request of yours"),
    VerificationNotFound => (404, "verification-not-found", "No such contact verification of yours"),
    VerificationClosed => (409, "verification-closed", "The verification takes no more answers"),
    VerificationCodeMismatch => (422, "verification-code-mismatch", "The code does not match"),
    VerificationLimitReached => (429, "verification-limit-reached", "This contact was asked to verify too often today"),
    FlightNotInDisruption => (422, "flight-not-in-disruption", "The disruption does not carry this flight"),
    DisruptionClosed => (409, "disruption-closed", "The disruption is closed"),
    DisruptionAlreadyDeclared => (409, "disruption-already-declared", "Your airline already declared a disruption with this reference"),
    DisruptionChanged => (409, "disruption-changed", "The disruption changed while this request was handled"),
    RateLimited => (429, "rate-limited", "Too many requests from your airline"),
    DisruptionBudgetExceeded => (429, "disruption-budget-exceeded", "Your airline's disruptions today passed its daily budget"),
    RevealBudgetExceeded => (429, "reveal-budget-exceeded", "Your airline's reveals today passed its daily budget"),
    CsrfRejected => (403, "csrf-rejected", "The form did not come from this site"),
    Internal => (500, "internal", "Internal error"),
    Unavailable => (503, "unavailable", "The service is not ready"),
}

impl ErrorKind {
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
    pub fn for_status(status: u16) -> Self {
        match status {
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

/// Why a use case did not do what it was asked: a kind from the closed set, a
/// sentence, the fields at fault and any members the answer carries.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u32>,
    /// Boxed: `serde_json::Map` is large when a dependency turns on `preserve_order`.
    extensions: Box<serde_json::Map<String, serde_json::Value>>,
    cause: Option<String>,
}

impl Error {
    /// A problem of some kind with a detail sentence.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
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
    pub fn of(kind: ErrorKind) -> Self {
        Self::new(kind, kind.default_detail())
    }

    /// An invalid field, of the `invalid-field` kind unless given another.
    pub fn field(kind: ErrorKind, field: impl Into<String>, reason: impl Into<String>) -> Self {
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
        let mut problem = Self::of(ErrorKind::Internal);
        problem.cause = Some(cause.to_string());
        problem
    }

    /// Adds a member to the problem body (RFC 9457 extension member).
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_string(), value);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
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

impl From<crate::store::StoreError> for Error {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(err)
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl Error {
    /// The members added to the body, for the edge that writes it.
    pub fn extensions(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extensions
    }

    /// The `Retry-After` seconds asked for, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Takes the internal cause of a 5xx, for the logs.
    pub fn take_cause(&mut self) -> Option<String> {
        self.cause.take()
    }
}

/// For the logs: the kind, the sentence and, for an internal error, its cause.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
