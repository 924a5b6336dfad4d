-- The messages an airline registers for the broker to relay when it declares or
-- updates a disruption: per event (a category, or `update`) and language, an SMS text
-- and/or an email's subject and text, with slots the broker fills ({flight}, {date},
-- {new_departure}, {reference}); never free text beyond them.
CREATE TABLE message_templates (
    airline_id     TEXT NOT NULL REFERENCES parties (id),
    event          TEXT NOT NULL,
    language       TEXT NOT NULL,
    sms_text       TEXT,
    email_subject  TEXT,
    email_text     TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (airline_id, event, language)
);
