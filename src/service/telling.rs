//! Telling a disruption's travellers, at once, as each agency chose: when an airline
//! declares or updates a disruption, every flight it carries is granted under it; the
//! broker relays the airline's template to each traveller whose agency chose relay
//! (in their language, on each channel they gave), and the airline gets the tokens of
//! the travellers whose agency reveals.
//!
//! Each flight is a grant like `POST /v1/flights/release-tokens` (decided by the
//! policies, audited per traveller, charged to the airline's budget), and each message
//! a relay like `POST /v1/messages` (checked, queued durably with its token use and
//! audit entry); the answer counts what was done and why not, by reason.

use crate::crypto::secret;
use crate::domain::booking::Flight;
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::disruption::{Disruption, DisruptionId};
use crate::domain::party::Party;
use crate::domain::template::{self, Slots, TemplateEvent};
use crate::service::grant::{self, FlightGrant, FlightTokenRequest, TokenGranted, TokenRefused};
use crate::service::relay::{self, RelayRequest};
use crate::service::templates::Choice;
use crate::service::{AppState, Error};
use crate::store::use_facts::UseFacts;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What was done for the travellers of a disruption's flights.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Told {
    /// Per flight.
    pub flights: Vec<FlightTold>,
    /// Totals over the flights.
    pub counts: ToldCounts,
}

/// What was done for one flight's travellers.
#[derive(Serialize, Deserialize, Debug)]
pub struct FlightTold {
    /// `AF1234/2026-12-01`.
    pub flight: String,
    /// Tokens for the travellers whose agency reveals: redeem each at `/v1/releases`.
    pub granted: Vec<TokenGranted>,
    /// The travellers the broker wrote to itself.
    pub relayed: Vec<Relayed>,
    /// The travellers who get nothing, and why.
    pub refused: Vec<TokenRefused>,
    /// When the flight could not be granted at all (its problem type and detail; a
    /// `rate-limited` flight can be asked again at `/v1/flights/release-tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FlightError>,
    /// The agency of each traveller above, by traveller id: never shown to the
    /// airline, it says which agency's webhook event names the traveller.
    #[serde(skip)]
    pub agencies: HashMap<String, String>,
}

/// A traveller the broker relayed the airline's template to.
#[derive(Serialize, Deserialize, Debug)]
pub struct Relayed {
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The language of the template used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The messages queued, one per channel (read each at `/v1/messages/{id}`).
    pub messages: Vec<RelayedMessage>,
    /// The channels not written to, and why (`no_template`, `relay-unavailable`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_sent: BTreeMap<String, String>,
}

/// One message queued.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RelayedMessage {
    /// `sms` or `email`.
    pub channel: Channel,
    /// Its id.
    pub message_id: String,
}

/// Why a flight could not be granted.
#[derive(Serialize, Deserialize, Debug)]
pub struct FlightError {
    /// The problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// What went wrong.
    pub detail: String,
}

/// Totals of a telling.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct ToldCounts {
    /// Travellers of the flights in the broker.
    pub travellers: usize,
    /// Tokens handed to the airline (reveal).
    pub tokens: usize,
    /// Travellers written to by the broker (at least one message queued).
    pub relayed: usize,
    /// Messages queued.
    pub messages: usize,
    /// Travellers refused, by reason.
    pub refused: BTreeMap<String, usize>,
    /// Channels of relay travellers not written to, by reason.
    pub not_sent: BTreeMap<String, usize>,
    /// Flights that could not be granted.
    pub flights_failed: usize,
}

/// Grants every flight of `disruption` under it and tells its travellers.
pub async fn tell(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    disruption: &Disruption,
    event: TemplateEvent,
) -> Result<Told, Error> {
    let templates = Arc::new(Choice::of(state, airline, event).await?);
    let id = DisruptionId::parse(&disruption.id).map_err(Error::internal)?;
    let mut told = Told::default();
    for flight in &disruption.flights {
        let telling = Arc::new(Telling {
            state: state.clone(),
            request_id: request_id.to_string(),
            airline: airline.clone(),
            disruption: disruption.clone(),
            flight: flight.clone(),
            templates: templates.clone(),
        });
        told.add(tell_flight(telling, &id).await);
    }
    Ok(told)
}

/// What every relay of one flight's telling shares.
struct Telling {
    state: AppState,
    request_id: String,
    airline: Party,
    disruption: Disruption,
    flight: Flight,
    templates: Arc<Choice>,
}

/// Grants one flight under the disruption and tells its travellers. The relays are
/// decided while the grant is written, on the facts the grant was decided on (its
/// tokens are new: nothing about them can have changed but what the use batch's guard
/// checks), and taken once the grant is durable; if the write decided the flight
/// again, they are decided again on the tokens it wrote.
async fn tell_flight(telling: Arc<Telling>, id: &DisruptionId) -> FlightTold {
    let Telling {
        state,
        request_id,
        airline,
        disruption,
        flight,
        ..
    } = &*telling;
    let request = FlightTokenRequest {
        flight: flight.clone(),
        purpose: disruption.category.notification(),
        disruption_id: id.clone(),
        channels: None,
    };
    let prepared = match grant::prepare_flight(state, request_id, airline, request).await {
        Ok(prepared) => prepared,
        Err(error) => return not_granted(flight, &error),
    };
    let (relayed, pending) = relays_of(&telling, prepared.granted());
    let early = decide_rounds(&telling, &pending, &prepared.relay_facts());
    let FlightGrant {
        tokens,
        languages,
        agencies,
        relay_facts,
        decided_again,
    } = match prepared.write(state).await {
        Ok(done) => done,
        Err(error) => {
            early.abort();
            return not_granted(flight, &error);
        }
    };
    let (mut relayed, rounds) = if decided_again {
        early.abort();
        let written = tokens.granted.iter();
        let (relayed, pending) = relays_of(
            &telling,
            written.zip(languages.iter().map(Option::as_deref)),
        );
        (relayed, decide_rounds(&telling, &pending, &relay_facts))
    } else {
        (relayed, early)
    };
    take_rounds(&telling, &mut relayed, rounds).await;
    let granted = tokens
        .granted
        .into_iter()
        .filter(|token| token.delivery == Delivery::Reveal)
        .collect();
    FlightTold {
        flight: tokens.flight,
        granted,
        relayed,
        refused: tokens.refused,
        error: None,
        agencies,
    }
}

/// A flight that could not be granted at all.
fn not_granted(flight: &Flight, error: &Error) -> FlightTold {
    FlightTold {
        flight: flight.label(),
        granted: Vec::new(),
        relayed: Vec::new(),
        refused: Vec::new(),
        error: Some(FlightError {
            type_uri: error.kind().type_uri(),
            detail: error.detail().to_string(),
        }),
        agencies: HashMap::new(),
    }
}

/// The relay travellers among the tokens granted (with each traveller's language):
/// what is told of each so far, and the messages to send them.
fn relays_of<'a>(
    telling: &Telling,
    granted: impl Iterator<Item = (&'a TokenGranted, Option<&'a str>)>,
) -> (Vec<Relayed>, Vec<Vec<RelayRequest>>) {
    let mut relayed = Vec::new();
    let mut pending = Vec::new();
    for (token, language) in granted {
        if token.delivery == Delivery::Relay {
            let (told, messages) = fill_template(telling, token, language.map(str::to_string));
            relayed.push(told);
            pending.push(messages);
        }
    }
    (relayed, pending)
}

/// The airline's template for one relay traveller, filled, on each channel their
/// token covers: what is told of them so far (nothing sent yet, the channels with no
/// template), and the messages to send.
fn fill_template(
    telling: &Telling,
    token: &TokenGranted,
    language: Option<String>,
) -> (Relayed, Vec<RelayRequest>) {
    let Telling {
        disruption,
        flight,
        templates,
        ..
    } = telling;
    let mut relayed = Relayed {
        traveller_id: token.traveller_id.clone(),
        record_locator: token.record_locator.clone(),
        language: None,
        messages: Vec::new(),
        not_sent: BTreeMap::new(),
    };
    let Some((chosen, template)) = templates.for_language(language.as_deref()) else {
        for channel in &token.channels {
            relayed
                .not_sent
                .insert(channel.as_str().to_string(), "no_template".into());
        }
        return (relayed, Vec::new());
    };
    relayed.language = Some(chosen.to_string());
    let slots = Slots {
        flight: format!(
            "{}{}",
            flight.carrier.as_str(),
            flight.flight_number.as_str()
        ),
        date: flight.date.as_string(),
        new_departure: disruption.new_departure.map_or_else(
            || template::to_be_confirmed(chosen).to_string(),
            template::departure_time,
        ),
        reference: disruption.reference.clone(),
    };
    let mut messages = Vec::new();
    for &channel in &token.channels {
        let texts = match channel {
            Channel::Sms => template.sms.as_ref().map(|text| (None, text)),
            Channel::Email => template
                .email
                .as_ref()
                .map(|text| (template.email_subject.as_ref(), text)),
        };
        let Some((subject, text)) = texts else {
            relayed
                .not_sent
                .insert(channel.as_str().to_string(), "no_template".into());
            continue;
        };
        messages.push(RelayRequest {
            token: token.token.clone(),
            channel,
            category: disruption.category.as_str().to_string(),
            subject: subject.map(|s| template::fill(s, &slots)),
            text: template::fill(text, &slots),
        });
    }
    (relayed, messages)
}

/// The relays of a flight, round by round: the first channel of each traveller in the
/// first (each token once in a round, so that a round is one use of each), each
/// round's messages shared among the cores, each share being decided on `facts` (see
/// `relay::decide_ahead`) in a task of its own as soon as this is called.
struct Rounds {
    rounds: Vec<Vec<Share>>,
}

/// One task's share of a round: whose messages (their index in the flight's relay
/// travellers), the messages, and their decisions under way.
struct Share {
    who: Vec<usize>,
    requests: Arc<Vec<RelayRequest>>,
    deciding: tokio::task::JoinHandle<Vec<relay::Ahead>>,
}

impl Rounds {
    /// Stops the decisions under way: their tokens are not the ones written.
    fn abort(&self) {
        for share in self.rounds.iter().flatten() {
            share.deciding.abort();
        }
    }
}

/// Starts deciding every relay of `pending` (each traveller's messages) on `facts`,
/// by token id.
fn decide_rounds(
    telling: &Arc<Telling>,
    pending: &[Vec<RelayRequest>],
    facts: &HashMap<String, UseFacts>,
) -> Rounds {
    let rounds = pending.iter().map(Vec::len).max().unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut all = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let asked: Vec<(usize, RelayRequest)> = pending
            .iter()
            .enumerate()
            .filter_map(|(who, messages)| Some((who, messages.get(round)?.clone())))
            .collect();
        let size = asked.len().div_ceil(cores).max(RELAYS_PER_TASK);
        let mut shares = Vec::new();
        for share in asked.chunks(size) {
            let (who, requests): (Vec<usize>, Vec<RelayRequest>) = share.iter().cloned().unzip();
            let known: Vec<Option<UseFacts>> = requests
                .iter()
                .map(|r| {
                    let id = secret::parse(grant::TOKEN_PREFIX, &r.token)?.id;
                    facts.get(id).map(UseFacts::for_relay)
                })
                .collect();
            let requests = Arc::new(requests);
            let (telling, mine) = (telling.clone(), requests.clone());
            let deciding = tokio::spawn(async move {
                let Telling {
                    state,
                    request_id,
                    airline,
                    ..
                } = &*telling;
                let mut ahead = Vec::with_capacity(mine.len());
                for (request, facts) in mine.iter().zip(known) {
                    ahead.push(
                        relay::decide_ahead(state, request_id, airline, request, facts).await,
                    );
                }
                ahead
            });
            shares.push(Share {
                who,
                requests,
                deciding,
            });
        }
        all.push(shares);
    }
    Rounds { rounds: all }
}

/// Takes the rounds' relays, once their tokens are durable: a round after the other,
/// each round's shares together (`relay::take_decided`), and records what became of
/// each message in `relayed`.
async fn take_rounds(telling: &Arc<Telling>, relayed: &mut [Relayed], rounds: Rounds) {
    for shares in rounds.rounds {
        let mut taking = Vec::with_capacity(shares.len());
        for Share {
            who,
            requests,
            deciding,
        } in shares
        {
            let telling = telling.clone();
            let channels: Vec<Channel> = requests.iter().map(|r| r.channel).collect();
            taking.push((
                who,
                channels,
                tokio::spawn(async move {
                    let ahead = deciding
                        .await
                        .unwrap_or_else(|stopped| std::panic::resume_unwind(stopped.into_panic()));
                    let Telling {
                        state,
                        request_id,
                        airline,
                        ..
                    } = &*telling;
                    relay::take_decided(state, request_id, airline, &requests, ahead).await
                }),
            ));
        }
        for (who, channels, share) in taking {
            let answers = share
                .await
                .unwrap_or_else(|stopped| std::panic::resume_unwind(stopped.into_panic()));
            for ((who, channel), answer) in who.into_iter().zip(channels).zip(answers) {
                let told = &mut relayed[who];
                match answer {
                    Ok(status) => told.messages.push(RelayedMessage {
                        channel,
                        message_id: status.message_id,
                    }),
                    Err(error) => {
                        told.not_sent.insert(
                            channel.as_str().to_string(),
                            error.kind().slug().to_string(),
                        );
                    }
                }
            }
        }
    }
}

/// Relays handed to one task at least: below it, a flight's relays are not split.
const RELAYS_PER_TASK: usize = 32;

impl Told {
    fn add(&mut self, flight: FlightTold) {
        let counts = &mut self.counts;
        if flight.error.is_some() {
            counts.flights_failed += 1;
        }
        counts.travellers += flight.granted.len() + flight.relayed.len() + flight.refused.len();
        counts.tokens += flight.granted.len();
        for relayed in &flight.relayed {
            counts.relayed += usize::from(!relayed.messages.is_empty());
            counts.messages += relayed.messages.len();
            for reason in relayed.not_sent.values() {
                *counts.not_sent.entry(reason.clone()).or_default() += 1;
            }
        }
        for refused in &flight.refused {
            *counts.refused.entry(refused.reason.clone()).or_default() += 1;
        }
        self.flights.push(flight);
    }
}
