//! `serve --demo`: provisions a demo agency (with its key pair), an airline and an
//! officer, writes example requests, and prints what to try next.
//!
//! Run again, it reuses the parties and the agency's key, and issues fresh API keys
//! (revoking the previous demo keys), since keys are stored hashed and cannot be
//! shown twice.

use crate::crypto::jws::Jwk;
use crate::crypto::keyfile::write_secret_file;
use crate::domain::party::PartyKind;
use crate::service::parties::{self as provision, Provisioned};
use crate::store::Store;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use time::OffsetDateTime;

/// The demo agency's IATA number (valid check digit).
pub const DEMO_AGENCY_IATA: &str = "12345675";
/// The demo airline's designator.
pub const DEMO_AIRLINE: &str = "AF";
const DEMO_OFFICER: &str = "Demo Compliance Officer";

/// Provisions the demo and prints the next steps.
pub async fn provision(
    store: &Store,
    data_dir: &Path,
    address: SocketAddr,
    receipt_secret: Option<&str>,
) -> anyhow::Result<()> {
    let dir = data_dir.join("passerelle-demo");
    crate::crypto::keyfile::create_private_dir(&dir)?;
    let now = OffsetDateTime::now_utc();
    let key_path = dir.join("agency.jwk");
    let agency_key = if key_path.exists() {
        crate::crypto::keyfile::read_private_jwk(&key_path)?
    } else {
        let jwk = Jwk::generate(&format!("demo-{}", now.unix_timestamp()));
        write_secret_file(&key_path, &serde_json::to_string_pretty(&jwk)?)?;
        std::fs::write(
            dir.join("agency.pub.jwk"),
            serde_json::to_string_pretty(&jwk.public())? + "\n",
        )?;
        jwk
    };

    let agency = match existing(store, PartyKind::Agency, Some(DEMO_AGENCY_IATA), now).await? {
        Some(found) => {
            provision::ensure_agency_key(store, &found.party, &agency_key, now).await?;
            found
        }
        None => {
            provision::add_agency(
                store,
                DEMO_AGENCY_IATA,
                "Demo Voyages",
                &[agency_key.public()],
                now,
            )
            .await?
        }
    };
    let airline = match existing(store, PartyKind::Airline, Some(DEMO_AIRLINE), now).await? {
        Some(found) => found,
        None => provision::add_airline(store, DEMO_AIRLINE, "Demo Airline", now).await?,
    };
    let officer = match existing(store, PartyKind::Officer, None, now).await? {
        Some(found) => found,
        None => provision::add_officer(store, DEMO_OFFICER, now).await?,
    };

    let url = format!("http://{address}");
    let mut env = format!(
        "export PASSERELLE_URL={url}\nexport AGENCY_KEY={}\nexport AIRLINE_KEY={}\nexport OFFICER_KEY={}",
        agency.api_key, airline.api_key, officer.api_key
    );
    // What the SMS gateway signs its delivery receipts with (the demo's own, unless
    // PASSERELLE_SMS_GATEWAY_RECEIPT_SECRET set one).
    if let Some(secret) = receipt_secret {
        env.push_str(&format!("\nexport SMS_GATEWAY_RECEIPT_SECRET={secret}"));
    }
    let env_path = dir.join("demo.env");
    std::fs::remove_file(&env_path).ok();
    write_secret_file(&env_path, &env)?;
    write_examples(&dir, now, &agency_key)?;

    let d = dir.display();
    println!(
        r#"
Passerelle demo is ready at {url}

Pages (sign in with the API keys below; English or French):
  {url}/sign-in          compliance console (OFFICER_KEY) or agency view (AGENCY_KEY)
  agency view → Upload   try {d}/upload.csv: three signed records, one with a bad number
  {url}/t                traveller page: type the `withdrawal_code` a stored record returns
                         (step 1, or the upload's outcome), printed on the traveller's receipt

  agency   Demo Voyages (IATA {DEMO_AGENCY_IATA})  {agency_id}   signing key: {d}/agency.jwk
  airline  Demo Airline ({DEMO_AIRLINE})               {airline_id}
  officer  {DEMO_OFFICER}     {officer_id}

API keys:
  AGENCY_KEY={agency_key}
  AIRLINE_KEY={airline_key}
  OFFICER_KEY={officer_key}
(also in {d}/demo.env, mode 0600; they change each time the demo starts)

In another shell, from the same directory:

  source {d}/demo.env

  # 1. The agency signs a consent statement and uploads it
  cargo run -q -- sign --key {d}/agency.jwk < {d}/consent.json > {d}/signed.json
  curl -s -X POST $PASSERELLE_URL/v1/consents -H "Authorization: Bearer $AGENCY_KEY" \
       -H 'Content-Type: application/json' --data @{d}/signed.json | tee {d}/recorded.json

  # 1b. Anyone can check the broker's countersigned receipt offline
  curl -s $PASSERELLE_URL/.well-known/jwks.json > {d}/jwks.json
  cargo run -q -- receipt verify --receipt {d}/recorded.json --keys {d}/jwks.json

  # 2. The flight is cancelled: the airline declares it, then asks for a release token
  #    under the disruption (declared again, the answer names the one declared before)
  curl -s -X POST $PASSERELLE_URL/v1/disruptions -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data @{d}/disruption.json | tee {d}/declared.json
  DISRUPTION=$(sed -n 's/.*"\(dis_[0-9a-f]*\)".*/\1/p' {d}/declared.json)
  sed "s/DISRUPTION_ID/$DISRUPTION/" {d}/token-request.json | \
  curl -s -X POST $PASSERELLE_URL/v1/release-tokens -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data @- | tee {d}/grant.json
  TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' {d}/grant.json)

  # 3. The airline redeems it, once
  curl -s -X POST $PASSERELLE_URL/v1/releases -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data "{{\"token\":\"$TOKEN\"}}"

  # 4. The compliance officer reads the audit trail, and signs a checkpoint so that the
  #    airline can prove its release at once (one is signed every minute anyway)
  curl -s $PASSERELLE_URL/v1/audit/entries -H "Authorization: Bearer $OFFICER_KEY"
  curl -s -X POST $PASSERELLE_URL/v1/audit/checkpoints -H "Authorization: Bearer $OFFICER_KEY"

  # 5. The flight is cancelled and the agency chose relay-only: the airline asks once for
  #    the whole flight, and sends its message through the broker; it never sees a contact
  #    (start the broker with --sms-gateway-url or --smtp-url; see the README)
  curl -s -X PUT $PASSERELLE_URL/v1/agency/delivery -H "Authorization: Bearer $AGENCY_KEY" \
       -H 'Content-Type: application/json' --data '{{"delivery":"relay"}}'
  sed "s/DISRUPTION_ID/$DISRUPTION/" {d}/flight-request.json | \
  curl -s -X POST $PASSERELLE_URL/v1/flights/release-tokens -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data @- | tee {d}/flight.json
  RELAY=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' {d}/flight.json)
  curl -s -X POST $PASSERELLE_URL/v1/messages -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' \
       --data "{{\"token\":\"$RELAY\",\"channel\":\"sms\",\"category\":\"cancellation\",\"text\":\"Flight {DEMO_AIRLINE}1234 is cancelled; you are rebooked on the next flight.\"}}"
  curl -s $PASSERELLE_URL/v1/receipts -H "Authorization: Bearer $AGENCY_KEY"

  # 5b. The flight is delayed: one call tells everyone. The airline registers its
  #     templates, the agency its webhook; the declaration relays the template in the
  #     traveller's language and pushes a signed event to the agency
  curl -s -X PUT $PASSERELLE_URL/v1/airline/templates/delay/fr -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data '{{"sms":"Vol {{flight}} du {{date}} retardé, départ {{new_departure}}. Réf. {{reference}}."}}'
  curl -s -X PUT $PASSERELLE_URL/v1/airline/templates/delay/en -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data '{{"sms":"Flight {{flight}} on {{date}} is delayed to {{new_departure}}. Ref {{reference}}."}}'
  curl -s -X PUT $PASSERELLE_URL/v1/agency/webhook -H "Authorization: Bearer $AGENCY_KEY" \
       -H 'Content-Type: application/json' --data '{{"url":"http://127.0.0.1:9099/hook"}}'
  curl -s -X POST $PASSERELLE_URL/v1/disruptions -H "Authorization: Bearer $AIRLINE_KEY" \
       -H 'Content-Type: application/json' --data @{d}/delay.json
  curl -s "$PASSERELLE_URL/v1/audit/reports?since=2026-01-01T00:00:00Z" -H "Authorization: Bearer $OFFICER_KEY"

  # 6. The traveller withdraws with the code from the receipt; the next request is refused
  #    (in a browser: open {url}/t, type the code, and press Withdraw)
  CODE=$(sed -n 's/.*"withdrawal_code":"\([^"]*\)".*/\1/p' {d}/recorded.json)
  curl -s -X POST $PASSERELLE_URL/v1/withdrawals -H 'Content-Type: application/json' \
       --data "{{\"code\":\"$CODE\"}}"
"#,
        agency_id = agency.party.id,
        airline_id = airline.party.id,
        officer_id = officer.party.id,
        agency_key = agency.api_key,
        airline_key = airline.api_key,
        officer_key = officer.api_key,
    );
    Ok(())
}

/// A demo party that exists already, with a fresh API key replacing its old ones.
async fn existing(
    store: &Store,
    kind: PartyKind,
    code: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Provisioned>> {
    let name = code.is_none().then_some(DEMO_OFFICER);
    Ok(provision::reissue_api_key(store, kind, code, name, now).await?)
}

/// The privacy notice the demo traveller is shown; the statement carries its hash.
const DEMO_NOTICE: &str =
    "Demo Voyages passes your mobile and email to the airlines of your trip, \
only so that they can warn you of a cancellation, delay, schedule or gate change.";

/// Writes `consent.json` (a statement to sign), `token-request.json`,
/// `flight-request.json`, `disruption.json` and `delay.json` (declarations), for a
/// flight a week from now, and `upload.csv` (three signed
/// records for the agency's upload page, one of them with a number that is not a
/// mobile, to show a rejection).
fn write_examples(dir: &Path, now: OffsetDateTime, agency_key: &Jwk) -> anyhow::Result<()> {
    let date = (now + time::Duration::days(7)).date().to_string();
    let collected_at = crate::domain::time::format_time(now);
    let consent = json!({
        "schema_version": crate::domain::consent::SCHEMA_VERSION,
        "record_id": "DEMO42-1",
        "agency": DEMO_AGENCY_IATA,
        "jurisdiction": "FR",
        "booking": {
            "record_locator": "DEMO42",
            "segments": [{"carrier": DEMO_AIRLINE, "flight_number": "1234", "date": date}]
        },
        "traveller": {
            "surname": "Dupont",
            "given_name": "Marie",
            "mobile": "+33612345678",
            "email": "marie.dupont@example.fr"
        },
        "decision": "given",
        "consent": {
            "purposes": ["cancellation", "delay", "schedule_change", "gate_change"],
            "data_categories": ["mobile", "email"],
            "recipients": "itinerary",
            "notice": {
                "version": "demo-notice-2026-11",
                "language": "fr",
                "sha256": crate::domain::ids::hex(&crate::crypto::sha256(DEMO_NOTICE.as_bytes()))
            },
            "collected_at": collected_at,
            "collection_method": "online_checkbox"
        }
    });
    let request = json!({
        "record_locator": "DEMO42",
        "traveller": {"surname": "DUPONT", "given_name": "MARIE MRS"},
        "flight": {"carrier": DEMO_AIRLINE, "flight_number": "1234", "date": date},
        "purpose": "cancellation",
        "disruption_id": "DISRUPTION_ID"
    });
    let disruption = json!({
        "flights": [{"carrier": DEMO_AIRLINE, "flight_number": "1234", "date": date}],
        "category": "cancellation",
        "reference": "IRR-DEMO-0001",
        "occurred_at": crate::domain::time::format_time(now),
        "note": "Snow at the departure airport; travellers are rebooked on the next flight.",
        // The walkthrough asks for tokens itself; left out, the broker tells every
        // traveller at once (see the README).
        "tell": false
    });
    std::fs::write(
        dir.join("disruption.json"),
        serde_json::to_string_pretty(&disruption)? + "\n",
    )?;
    // The walkthrough's last declaration: one call, and the broker tells everyone.
    let delay = json!({
        "flights": [{"carrier": DEMO_AIRLINE, "flight_number": "1234", "date": date}],
        "category": "delay",
        "reference": "IRR-DEMO-0002",
        "occurred_at": crate::domain::time::format_time(now),
        "new_departure": format!("{date}T18:30:00Z")
    });
    std::fs::write(
        dir.join("delay.json"),
        serde_json::to_string_pretty(&delay)? + "\n",
    )?;
    std::fs::write(
        dir.join("consent.json"),
        serde_json::to_string_pretty(&consent)? + "\n",
    )?;
    std::fs::write(
        dir.join("token-request.json"),
        serde_json::to_string_pretty(&request)? + "\n",
    )?;
    let flight = json!({
        "flight": {"carrier": DEMO_AIRLINE, "flight_number": "1234", "date": date},
        "purpose": "cancellation",
        "disruption_id": "DISRUPTION_ID"
    });
    std::fs::write(
        dir.join("flight-request.json"),
        serde_json::to_string_pretty(&flight)? + "\n",
    )?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(crate::service::ingest::csv::CSV_HEADER)?;
    let travellers = [
        ("DEMO43-1", "DEMO43", "Martin", "Luc", "+33687654321"),
        ("DEMO43-2", "DEMO43", "Martin", "Anne", "+33698765432"),
        ("DEMO44-1", "DEMO44", "Bernard", "Paul", "+33142685300"),
    ];
    for (record_id, locator, surname, given_name, mobile) in travellers {
        let mut statement = consent.clone();
        statement["record_id"] = json!(record_id);
        statement["booking"]["record_locator"] = json!(locator);
        statement["traveller"] = json!({
            "surname": surname,
            "given_name": given_name,
            "mobile": mobile,
            "email": format!("{}.{}@example.fr", given_name.to_lowercase(), surname.to_lowercase()),
        });
        let signed = super::sign_statement(agency_key, &statement.to_string())?;
        let signature = signed["signature"].as_str().unwrap_or_default();
        csv.write_record(crate::service::ingest::csv::csv_record(
            &statement, signature,
        ))?;
    }
    std::fs::write(dir.join("upload.csv"), csv.into_inner()?)?;
    Ok(())
}
