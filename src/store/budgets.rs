//! The airlines' daily budgets against pretext harvesting (`airline_budgets`): what
//! each airline took today of the flights it may declare disrupted and of the reveals
//! it may be granted, counted in the transaction that takes them, so that every
//! broker on the database counts the same.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, Param, StoreError};
use time::OffsetDateTime;
use tracing::instrument;

/// Which daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Flights put under the disruptions the airline declared.
    DisruptedFlights,
    /// Reveal tokens granted to the airline.
    Reveals,
}

impl Budget {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisruptedFlights => "disrupted_flights",
            Self::Reveals => "reveals",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "disrupted_flights" => Ok(Self::DisruptedFlights),
            "reveals" => Ok(Self::Reveals),
            other => Err(StoreError::Corrupt(format!("unknown budget {other:?}"))),
        }
    }
}

/// What a charge did to a day's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    /// The use after the charge.
    pub used: i64,
    /// Whether this charge took the use past the alert level (once a day per budget).
    pub alerted: bool,
}

/// A day's budget that passed its alert level.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The airline.
    pub airline_id: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Which budget.
    pub budget: Budget,
    /// The use so far.
    pub used: i64,
    /// The budget as it stood at the last charge.
    pub limit: i64,
    /// When the use passed the alert level.
    pub alerted_at: OffsetDateTime,
}

/// The airline's use of a budget on `day` (0 when it took none).
#[instrument(skip_all)]
pub async fn used(
    db: &mut impl Db,
    airline_id: &str,
    day: &str,
    budget: Budget,
) -> Result<i64, StoreError> {
    let mut used = 0;
    db.for_each(
        "SELECT used FROM airline_budgets WHERE airline_id = $1 AND day = $2 AND budget = $3",
        vec![
            Param::Text(airline_id.to_string()),
            Param::Text(day.to_string()),
            Param::Text(budget.as_str().to_string()),
        ],
        |row| {
            used = row.value("used");
            Ok(())
        },
    )
    .await?;
    Ok(used)
}

/// What one charge adds to an airline's use of a budget on `day`, recording `limit` as
/// the budget and marking the day alerted when the use reaches `alert_level` for the
/// first time. It runs in the caller's transaction: the charge stands or falls with the
/// declaration or grant it pays for.
pub struct Charge<'a> {
    /// The airline charged.
    pub airline_id: &'a str,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: &'a str,
    /// The budget.
    pub budget: Budget,
    /// What the charge adds.
    pub amount: i64,
    /// The day's budget.
    pub limit: i64,
    /// The use at which the day is alerted.
    pub alert_level: i64,
    /// When the charge is made.
    pub now: OffsetDateTime,
}

impl Charge<'_> {
    /// Adds the amount, whatever the use.
    #[instrument(skip_all)]
    pub async fn add(&self, db: &mut impl Db) -> Result<Charged, StoreError> {
        let charged = self.upsert(db, false).await?;
        charged.ok_or_else(|| StoreError::Corrupt("a budget's charge returned no row".into()))
    }

    /// Adds the amount only while the use stays within the limit: `None`, and nothing
    /// charged, when it would pass it. The check and the charge are one statement, so
    /// that two transactions racing for a budget's last units (two brokers on one
    /// PostgreSQL) cannot both pass it: the second waits on the first's row.
    #[instrument(skip_all)]
    pub async fn add_within(&self, db: &mut impl Db) -> Result<Option<Charged>, StoreError> {
        if self.amount > self.limit {
            return Ok(None);
        }
        self.upsert(db, true).await
    }

    fn key(&self) -> [Param; 3] {
        [
            Param::Text(self.airline_id.to_string()),
            Param::Text(self.day.to_string()),
            Param::Text(self.budget.as_str().to_string()),
        ]
    }

    /// Adds the amount (only while within the limit, if `within`) and marks the alert;
    /// `None` when `within` and it would pass the limit.
    async fn upsert(&self, db: &mut impl Db, within: bool) -> Result<Option<Charged>, StoreError> {
        // SQLite numbers `$n` parameters in the order they appear, so each statement
        // names them in order.
        let mut params = Vec::from(self.key());
        params.extend([Param::Int(self.amount), Param::Int(self.limit)]);
        let sql = format!(
            "INSERT INTO airline_budgets (airline_id, day, budget, used, budget_limit) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (airline_id, day, budget) DO UPDATE \
             SET used = airline_budgets.used + excluded.used, budget_limit = excluded.budget_limit \
             {} RETURNING used, alerted_at",
            if within {
                "WHERE airline_budgets.used + excluded.used <= excluded.budget_limit"
            } else {
                ""
            }
        );
        let mut charged = None;
        db.for_each(&sql, params, |row| {
            charged = Some((
                row.value::<i64>("used"),
                row.value::<Option<i64>>("alerted_at"),
            ));
            Ok(())
        })
        .await?;
        let Some((used, alerted_at)) = charged else {
            return Ok(None);
        };
        // The alert is marked once: by the charge that reaches its level first.
        let alerted = alerted_at.is_none()
            && used >= self.alert_level
            && db
                .execute(
                    "UPDATE airline_budgets SET alerted_at = $1 \
                     WHERE airline_id = $2 AND day = $3 AND budget = $4 AND alerted_at IS NULL",
                    [Param::Int(to_millis(self.now))]
                        .into_iter()
                        .chain(self.key())
                        .collect(),
                )
                .await?
                == 1;
        Ok(Some(Charged { used, alerted }))
    }
}

/// The budgets that passed their alert level from `since` to before `until` (newest
/// first, at most `limit`), of one airline or of all.
#[instrument(skip_all)]
pub async fn alerts(
    db: &mut impl Db,
    airline_id: Option<&str>,
    since: OffsetDateTime,
    until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Alert>, StoreError> {
    let mut params = vec![Param::Int(to_millis(since)), Param::Int(to_millis(until))];
    let scope = match airline_id {
        Some(id) => {
            params.push(Param::Text(id.to_string()));
            " AND airline_id = $3"
        }
        None => "",
    };
    params.push(Param::Int(limit));
    let sql = format!(
        "SELECT airline_id, day, budget, used, budget_limit, alerted_at FROM airline_budgets \
         WHERE alerted_at IS NOT NULL AND alerted_at >= $1 AND alerted_at < $2{scope} \
         ORDER BY alerted_at DESC, airline_id, budget LIMIT ${}",
        params.len()
    );
    let mut found = Vec::new();
    db.for_each(&sql, params, |row| {
        let budget: String = row.value("budget");
        found.push(Alert {
            airline_id: row.value("airline_id"),
            day: row.value("day"),
            budget: Budget::parse(&budget)?,
            used: row.value("used"),
            limit: row.value("budget_limit"),
            alerted_at: from_millis(row.value("alerted_at"))?,
        });
        Ok(())
    })
    .await?;
    Ok(found)
}
