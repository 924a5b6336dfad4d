//! Verified contacts, on request: the agency asks, the broker sends the traveller a
//! code (SMS) or a link (email), and the traveller's answer proves the contact reaches
//! them. What a verification is at a moment, and the words it is sent in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The prefix of a verification's id (`cvf_…`).
pub const ID_PREFIX: &str = "cvf";

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Waiting for the relay to send the code.
    Queued,
    /// The code went out; waiting for the traveller's answer.
    Sent,
    /// The traveller answered with the right code: the contact reaches them.
    Confirmed,
    /// Not answered in time.
    Expired,
    /// Too many wrong codes: this verification accepts no more.
    Locked,
    /// The relay could not send it.
    Failed,
    /// Not sent: the record stopped allowing it (withdrawn, replaced with another
    /// contact, purged).
    Cancelled,
}

impl VerificationState {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Confirmed => "confirmed",
            Self::Expired => "expired",
            Self::Locked => "locked",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether it still accepts an answer.
    pub fn open(self) -> bool {
        matches!(self, Self::Queued | Self::Sent)
    }
}

/// What is stored of a verification that decides its state.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The relay's status: `queued`, `delivered`, `failed` or `cancelled`.
    pub status: &'a str,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// Wrong codes tried so far.
    pub wrong_codes: u32,
    /// When it was confirmed.
    pub confirmed_at: Option<OffsetDateTime>,
}

impl Progress<'_> {
    /// The state at `now`, when `max_wrong_codes` wrong codes lock it. A confirmation
    /// outranks everything; a code the relay could not send is failed whatever the time.
    pub fn state(&self, now: OffsetDateTime, max_wrong_codes: u32) -> VerificationState {
        if self.confirmed_at.is_some() {
            return VerificationState::Confirmed;
        }
        match self.status {
            "failed" => return VerificationState::Failed,
            "cancelled" => return VerificationState::Cancelled,
            _ => {}
        }
        if self.wrong_codes >= max_wrong_codes {
            VerificationState::Locked
        } else if now >= self.expires_at {
            VerificationState::Expired
        } else if self.status == "delivered" {
            VerificationState::Sent
        } else {
            VerificationState::Queued
        }
    }
}

/// Whether the traveller reads French (their notice's language), else English.
fn french(language: &str) -> bool {
    language
        .get(..2)
        .is_some_and(|l| l.eq_ignore_ascii_case("fr"))
}

/// The language the broker's page opens in for this traveller: `fr` or `en`.
pub fn page_language(language: &str) -> &'static str {
    if french(language) {
        "fr"
    } else {
        "en"
    }
}

/// The SMS that carries a code, in the traveller's language.
pub fn sms_text(language: &str, agency: &str, code: &str, minutes: u32) -> String {
    if french(language) {
        format!(
            "{agency} : votre code de vérification Passerelle est {code}. Il expire dans {minutes} minutes. \
             Si vous ne l'avez pas demandé, ignorez ce message."
        )
    } else {
        format!(
            "{agency}: your Passerelle verification code is {code}. It expires in {minutes} minutes. \
             If you did not ask for it, ignore this message."
        )
    }
}

/// The email that carries a link: its subject and text, in the traveller's language.
pub fn email(language: &str, agency: &str, link: &str, minutes: u32) -> (String, String) {
    if french(language) {
        (
            format!("{agency} : confirmez votre adresse"),
            format!(
                "Bonjour,\n\n{agency} transmet par Passerelle les avis des compagnies aériennes sur vos \
                 voyages (annulations, retards). Pour confirmer que cette adresse vous joint, ouvrez ce lien \
                 dans les {minutes} minutes et confirmez :\n\n{link}\n\nSi vous n'attendiez pas ce message, \
                 ignorez-le : rien ne change."
            ),
        )
    } else {
        (
            format!("{agency}: confirm your email address"),
            format!(
                "Hello,\n\n{agency} passes airlines' notices about your trips (cancellations, delays) \
                 through Passerelle. To confirm that this address reaches you, open this link within \
                 {minutes} minutes and confirm:\n\n{link}\n\nIf you did not expect this message, ignore it: \
                 nothing changes."
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn progress(status: &str, wrong: u32, confirmed: bool) -> Progress<'_> {
        Progress {
            status,
            expires_at: datetime!(2026-12-05 12:30 UTC),
            wrong_codes: wrong,
            confirmed_at: confirmed.then_some(datetime!(2026-12-05 12:10 UTC)),
        }
    }

    #[test]
    fn a_verification_is_queued_then_sent_then_confirmed() {
        let now = datetime!(2026-12-05 12:05 UTC);
        assert_eq!(
            progress("queued", 0, false).state(now, 5),
            VerificationState::Queued
        );
        assert_eq!(
            progress("delivered", 0, false).state(now, 5),
            VerificationState::Sent
        );
        assert_eq!(
            progress("delivered", 2, true).state(now, 5),
            VerificationState::Confirmed
        );
    }

    #[test]
    fn it_expires_locks_or_fails_but_a_confirmation_stands() {
        let late = datetime!(2026-12-05 13:00 UTC);
        let now = datetime!(2026-12-05 12:05 UTC);
        assert_eq!(
            progress("delivered", 0, false).state(late, 5),
            VerificationState::Expired
        );
        assert_eq!(
            progress("delivered", 5, false).state(now, 5),
            VerificationState::Locked
        );
        assert_eq!(
            progress("failed", 0, false).state(now, 5),
            VerificationState::Failed
        );
        assert_eq!(
            progress("cancelled", 0, false).state(now, 5),
            VerificationState::Cancelled
        );
        assert_eq!(
            progress("delivered", 0, true).state(late, 5),
            VerificationState::Confirmed
        );
    }

    #[test]
    fn the_words_follow_the_travellers_language() {
        assert!(sms_text("fr", "Voyages Lumière", "123456", 30).contains("votre code"));
        assert!(sms_text("en", "Sunny Travel", "123456", 30)
            .contains("your Passerelle verification code is 123456"));
        let (subject, text) = email("fr-FR", "Voyages Lumière", "https://b/verify?x", 30);
        assert!(subject.contains("confirmez") && text.contains("https://b/verify?x"));
        let (subject, _) = email("de", "Reisen", "https://b/verify?x", 30);
        assert!(subject.contains("confirm your email"));
    }
}
