//! The aggregates behind compliance reports: counts only, never a contact or a name.

use super::db::Db;
use super::row::Columns;
use super::{to_millis, Conn, Param, StoreError};
use sqlx::Row;
use time::{Date, OffsetDateTime};

/// A period: entries at or after `since` and before `until`; travellers with a
/// flight departing on a date in between.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    /// Start (inclusive).
    pub since: OffsetDateTime,
    /// End (exclusive).
    pub until: OffsetDateTime,
}

/// Travellers and how many can be reached, for one agency or airline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// IATA agency number or airline designator.
    pub party: String,
    /// Travellers with a flight in the period.
    pub travellers: i64,
    /// Of those, travellers with a consent in force that holds a contact.
    pub with_contact: i64,
    /// Of those, travellers one of whose contacts was delivered to lately (a
    /// gateway's receipt), as it stands in their record now.
    pub reached: i64,
    /// Of those, travellers one of whose contacts is known not to reach them.
    pub unreachable: i64,
}

/// Whose travellers coverage counts, and how it groups them.
#[derive(Debug, Clone, Copy)]
pub enum CoverageOf<'a> {
    /// Every agency's, by agency.
    ByAgency,
    /// Every operating carrier's, by carrier.
    ByAirline,
    /// One agency's (by its party id), in one row.
    Agency(&'a str),
    /// One flight's (carrier, number, date), in one row: travellers on it, and consent
    /// in force naming the carrier.
    Flight(&'a str, &'a str, &'a str),
    /// Every flight's, by flight (`AF1234/2026-12-01`), as [`CoverageOf::Flight`]
    /// counts each: those whose travellers can least be reached first, at most this
    /// many.
    ByFlight(i64),
}

/// A count under a few labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The labels, in the order the query names them.
    pub labels: Vec<Option<String>>,
    /// How many.
    pub count: i64,
}

/// From a disruption's declaration and the airline's first token request under it to
/// its releases (contacts revealed or messages accepted), to the messages the gateways
/// accepted and to the last contact revealed: the time to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    /// The airline's designator.
    pub airline: Option<String>,
    /// Its disruption reference.
    pub event_reference: String,
    /// The declaration (Unix ms).
    pub declared: Option<i64>,
    /// First token request (Unix ms).
    pub first_request: Option<i64>,
    /// First message a gateway accepted (Unix ms).
    pub first_delivered: Option<i64>,
    /// Last one (Unix ms).
    pub last_delivered: Option<i64>,
    /// Last contact revealed (Unix ms).
    pub last_redeemed: Option<i64>,
    /// First release (Unix ms).
    pub first_release: Option<i64>,
    /// Last release (Unix ms).
    pub last_release: Option<i64>,
    /// Releases under the reference.
    pub releases: i64,
}

const CONSENT_IN_FORCE: &str = "c.traveller_id = t.id AND c.superseded_by IS NULL AND c.decision = 'given' \
     AND c.withdrawn_at IS NULL AND c.purged_at IS NULL AND (c.valid_until IS NULL OR c.valid_until > $3) \
     AND (c.sealed_mobile IS NOT NULL OR c.sealed_email IS NOT NULL)";

fn day(at: OffsetDateTime) -> String {
    let date: Date = at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Contact coverage (consent in force, reached lately, known unreachable) of the
/// travellers flying in the period, grouped as `of` says; consents judged as they stand
/// at `now`, a contact reached if delivered to, or confirmed by the traveller, at or
/// after `reached_since`.
pub async fn coverage(
    conn: &mut Conn,
    period: Period,
    of: CoverageOf<'_>,
    now: OffsetDateTime,
    reached_since: OffsetDateTime,
) -> Result<Vec<Coverage>, StoreError> {
    let counts = "COUNT(DISTINCT t.id) AS travellers, \
         COUNT(DISTINCT CASE WHEN c.id IS NOT NULL THEN t.id END) AS with_contact, \
         COUNT(DISTINCT CASE WHEN r.state = 'reachable' AND (r.delivered_at >= $4 OR r.verified_at >= $4) THEN t.id END) AS reached, \
         COUNT(DISTINCT CASE WHEN r.state = 'unreachable' THEN t.id END) AS unreachable";
    // What is known of a channel counts only for the contact the record holds now.
    let reach = "LEFT JOIN channel_reachability r ON c.id IS NOT NULL AND r.traveller_id = t.id \
         AND ((r.channel = 'sms' AND r.digest = c.mobile_digest) \
           OR (r.channel = 'email' AND r.digest = c.email_digest))";
    let flying = "s.departure_date >= $1 AND s.departure_date < $2";
    // A flight's travellers, with a consent in force only where it names its carrier.
    let on_flights = format!(
        "FROM segments s JOIN travellers t ON t.booking_id = s.booking_id \
         LEFT JOIN consents c ON {CONSENT_IN_FORCE} \
         AND (',' || c.carriers || ',') LIKE ('%,' || s.carrier || ',%') {reach}"
    );
    let (sql, extra): (String, Vec<&str>) = match of {
        CoverageOf::ByAirline => (
            format!(
                "SELECT s.carrier AS party, {counts} \
                 FROM segments s JOIN travellers t ON t.booking_id = s.booking_id \
                 LEFT JOIN consents c ON {CONSENT_IN_FORCE} {reach} \
                 WHERE {flying} GROUP BY s.carrier ORDER BY s.carrier"
            ),
            Vec::new(),
        ),
        CoverageOf::ByAgency | CoverageOf::Agency(_) => {
            let one = if matches!(of, CoverageOf::Agency(_)) {
                "AND b.agency_id = $5"
            } else {
                ""
            };
            (
                format!(
                    "SELECT p.code AS party, {counts} \
                     FROM travellers t JOIN bookings b ON b.id = t.booking_id JOIN parties p ON p.id = b.agency_id \
                     LEFT JOIN consents c ON {CONSENT_IN_FORCE} {reach} \
                     WHERE EXISTS (SELECT 1 FROM segments s WHERE s.booking_id = b.id AND {flying}) {one} \
                     GROUP BY p.code ORDER BY p.code"
                ),
                match of {
                    CoverageOf::Agency(id) => vec![id],
                    _ => Vec::new(),
                },
            )
        }
        CoverageOf::ByFlight(_) => (
            format!(
                "SELECT s.carrier || s.flight_number || '/' || s.departure_date AS party, {counts} \
                 {on_flights} WHERE {flying} GROUP BY s.carrier, s.flight_number, s.departure_date \
                 ORDER BY CAST(COUNT(DISTINCT CASE WHEN c.id IS NOT NULL THEN t.id END) AS REAL) / COUNT(DISTINCT t.id), \
                 party LIMIT $5"
            ),
            Vec::new(),
        ),
        CoverageOf::Flight(carrier, number, date) => (
            format!(
                "SELECT s.carrier AS party, {counts} \
                 {on_flights} WHERE {flying} AND s.carrier = $5 AND s.flight_number = $6 AND s.departure_date = $7 \
                 GROUP BY s.carrier"
            ),
            vec![carrier, number, date],
        ),
    };
    let mut query = sqlx::query(&sql)
        .bind(day(period.since))
        .bind(day(period.until))
        .bind(to_millis(now))
        .bind(to_millis(reached_since));
    for value in extra {
        query = query.bind(value);
    }
    if let CoverageOf::ByFlight(limit) = of {
        query = query.bind(limit);
    }
    let rows = query.fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(|r| Coverage {
            party: r.get("party"),
            travellers: r.get("travellers"),
            with_contact: r.get("with_contact"),
            reached: r.get("reached"),
            unreachable: r.get("unreachable"),
        })
        .collect())
}

/// Audit entries in the period matching `condition`, counted by `columns`.
pub async fn count_entries(
    conn: &mut Conn,
    period: Period,
    columns: &[&str],
    condition: &str,
) -> Result<Vec<Count>, StoreError> {
    let list = columns.join(", ");
    let sql = format!(
        "SELECT {list}, COUNT(*) AS n FROM audit_entries WHERE at >= $1 AND at < $2 AND ({condition}) \
         GROUP BY {list} ORDER BY {list}"
    );
    let rows = sqlx::query(&sql)
        .bind(to_millis(period.since))
        .bind(to_millis(period.until))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| Count {
            labels: (0..columns.len())
                .map(|i| r.get::<Option<String>, _>(i))
                .collect(),
            count: r.get("n"),
        })
        .collect())
}

/// Per airline and disruption reference: declaration, first request, first and last
/// release, first and last message delivered, last contact revealed.
pub async fn disruptions(conn: &mut Conn, period: Period) -> Result<Vec<Disruption>, StoreError> {
    let released = "e.outcome IN ('released', 'queued')";
    let delivered = "e.action = 'message_delivery' AND e.outcome = 'delivered'";
    let sql = format!(
        "SELECT p.code AS airline, e.event_reference, \
         MIN(CASE WHEN e.action = 'disruption_declaration' THEN e.at END) AS declared, \
         MIN(CASE WHEN e.action = 'token_request' THEN e.at END) AS first_request, \
         MIN(CASE WHEN {delivered} THEN e.at END) AS first_delivered, \
         MAX(CASE WHEN {delivered} THEN e.at END) AS last_delivered, \
         MAX(CASE WHEN e.action = 'token_redemption' AND e.outcome = 'released' THEN e.at END) AS last_redeemed, \
         MIN(CASE WHEN {released} THEN e.at END) AS first_release, \
         MAX(CASE WHEN {released} THEN e.at END) AS last_release, \
         SUM(CASE WHEN {released} THEN 1 ELSE 0 END) AS releases \
         FROM audit_entries e LEFT JOIN parties p ON p.id = e.airline_id \
         WHERE e.event_reference IS NOT NULL AND e.at >= $1 AND e.at < $2 \
         GROUP BY p.code, e.event_reference ORDER BY MIN(e.at), e.event_reference"
    );
    let rows = sqlx::query(&sql)
        .bind(to_millis(period.since))
        .bind(to_millis(period.until))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| Disruption {
            airline: r.get("airline"),
            event_reference: r.get("event_reference"),
            declared: r.get("declared"),
            first_request: r.get("first_request"),
            first_delivered: r.get("first_delivered"),
            last_delivered: r.get("last_delivered"),
            last_redeemed: r.get("last_redeemed"),
            first_release: r.get("first_release"),
            last_release: r.get("last_release"),
            releases: r.get("releases"),
        })
        .collect())
}

/// When one agency's clients were told of a disruption: its messages accepted by a
/// gateway and its contacts revealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientsTold {
    /// First message a gateway accepted (Unix ms).
    pub first_delivered: Option<i64>,
    /// Last one (Unix ms).
    pub last_delivered: Option<i64>,
    /// Last contact revealed (Unix ms).
    pub last_redeemed: Option<i64>,
    /// Messages accepted.
    pub delivered: i64,
    /// Contacts revealed.
    pub redeemed: i64,
}

/// How the agency's clients were told of the disruption `event_reference`, from the
/// entries at or after `since` (its declaration).
pub async fn clients_told(
    db: &mut impl Db,
    agency_id: &str,
    event_reference: &str,
    since: i64,
) -> Result<ClientsTold, StoreError> {
    let delivered = "action = 'message_delivery' AND outcome = 'delivered'";
    let redeemed = "action = 'token_redemption' AND outcome = 'released'";
    let sql = format!(
        "SELECT MIN(CASE WHEN {delivered} THEN at END) AS first_delivered, \
         MAX(CASE WHEN {delivered} THEN at END) AS last_delivered, \
         MAX(CASE WHEN {redeemed} THEN at END) AS last_redeemed, \
         SUM(CASE WHEN {delivered} THEN 1 ELSE 0 END) AS delivered, \
         SUM(CASE WHEN {redeemed} THEN 1 ELSE 0 END) AS redeemed \
         FROM audit_entries WHERE agency_id = $1 AND event_reference = $2 AND at >= $3"
    );
    let params = vec![
        Param::Text(agency_id.to_string()),
        Param::Text(event_reference.to_string()),
        Param::Int(since),
    ];
    let told = db
        .optional(&sql, params, |row| {
            Ok(ClientsTold {
                first_delivered: row.value("first_delivered"),
                last_delivered: row.value("last_delivered"),
                last_redeemed: row.value("last_redeemed"),
                delivered: row.value::<Option<i64>>("delivered").unwrap_or(0),
                redeemed: row.value::<Option<i64>>("redeemed").unwrap_or(0),
            })
        })
        .await?;
    Ok(told.unwrap_or_default())
}

/// Releases (contacts revealed and messages accepted) per UTC day and event category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyReleases {
    /// The day.
    pub day: Date,
    /// The disruption's category.
    pub event_category: Option<String>,
    /// How many.
    pub releases: i64,
}

/// Releases over time: one row per day and event category that had any.
pub async fn releases_by_day(
    conn: &mut Conn,
    period: Period,
) -> Result<Vec<DailyReleases>, StoreError> {
    const DAY_MS: i64 = 86_400_000;
    let rows = sqlx::query(
        "SELECT at / 86400000 AS day, event_category, COUNT(*) AS n FROM audit_entries \
         WHERE at >= $1 AND at < $2 AND ((action = 'token_redemption' AND outcome = 'released') \
         OR (action = 'message_relay' AND outcome = 'queued')) \
         GROUP BY at / 86400000, event_category ORDER BY day, event_category",
    )
    .bind(to_millis(period.since))
    .bind(to_millis(period.until))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let day: i64 = r.get("day");
            Ok(DailyReleases {
                day: super::from_millis(day * DAY_MS)?.date(),
                event_category: r.get("event_category"),
                releases: r.get("n"),
            })
        })
        .collect()
}
