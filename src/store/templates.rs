//! The airlines' message templates (`message_templates`), one per event and language.

use super::{to_millis, Conn, StoreError};
use crate::domain::template::Template;
use time::OffsetDateTime;
use tracing::instrument;

/// A stored template with what it is for.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `cancellation`, …, or `update`.
    pub event: String,
    /// Its language tag.
    pub language: String,
    /// The texts.
    pub template: Template,
}

/// A row: event, language, SMS text, email subject, email text.
type TemplateRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Registers (or replaces) the airline's template for an event and language.
#[instrument(skip_all)]
pub async fn upsert(
    conn: &mut Conn,
    airline_id: &str,
    event: &str,
    language: &str,
    template: &Template,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO message_templates (airline_id, event, language, sms_text, email_subject, \
         email_text, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (airline_id, event, language) DO UPDATE SET sms_text = excluded.sms_text, \
         email_subject = excluded.email_subject, email_text = excluded.email_text, \
         updated_at = excluded.updated_at",
    )
    .bind(airline_id)
    .bind(event)
    .bind(language)
    .bind(&template.sms)
    .bind(&template.email_subject)
    .bind(&template.email)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The airline's templates, for one event or all, by event then language.
#[instrument(skip_all)]
pub async fn of_airline(
    conn: &mut Conn,
    airline_id: &str,
    event: Option<&str>,
) -> Result<Vec<Stored>, StoreError> {
    let rows: Vec<TemplateRow> = sqlx::query_as(
        "SELECT event, language, sms_text, email_subject, email_text FROM message_templates \
             WHERE airline_id = $1 AND ($2 IS NULL OR event = $2) ORDER BY event, language",
    )
    .bind(airline_id)
    .bind(event)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event, language, sms, email_subject, email)| Stored {
            event,
            language,
            template: Template {
                sms,
                email_subject,
                email,
            },
        })
        .collect())
}
