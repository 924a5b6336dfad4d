//! How an airline reaches a traveller: the agency's choice of delivery, and the
//! channels a token covers.

use serde::{Deserialize, Serialize};

/// Whether the airline sees the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Redeeming the token returns the contact (the default).
    Reveal,
    /// The airline never sees the contact: the broker delivers its message.
    Relay,
}

impl Delivery {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reveal => "reveal",
            Self::Relay => "relay",
        }
    }
    /// Reads a stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "reveal" => Some(Self::Reveal),
            "relay" => Some(Self::Relay),
            _ => None,
        }
    }
}

/// A way to reach a traveller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A text message to the mobile number.
    Sms,
    /// An email.
    Email,
}

impl Channel {
    /// Both channels, in the order they are listed.
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
    /// Reads a stored word.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            _ => None,
        }
    }
    /// Stores a set of channels as `sms,email`.
    pub fn join(channels: &[Channel]) -> String {
        channels
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
    /// Reads a stored set.
    pub fn split(stored: &str) -> Vec<Channel> {
        stored.split(',').filter_map(Channel::from_word).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_sets_round_trip_through_storage() {
        let both = Channel::join(&Channel::ALL);
        assert_eq!(both, "sms,email");
        assert_eq!(Channel::split(&both), Channel::ALL.to_vec());
        assert_eq!(Channel::split(""), vec![]);
    }
}
