//! The pages' two languages. Each text is written once with both its English and its
//! French, so neither can be forgotten; `Texts` has one field per text and templates
//! read `frame.t.<name>`, checked when the binary is built.
//!
//! The language is the one chosen with `?lang=` (remembered in a cookie), else the
//! browser's first of English or French in `Accept-Language`, else English.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The language cookie.
pub const LANG_COOKIE: &str = "passerelle_lang";

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// The BCP 47 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }

    /// The texts.
    pub fn texts(self) -> &'static Texts {
        match self {
            Self::En => &EN,
            Self::Fr => &FR,
        }
    }

    fn parse(code: &str) -> Option<Self> {
        match code.trim().get(..2)?.to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "fr" => Some(Self::Fr),
            _ => None,
        }
    }

    /// The language of a request.
    pub fn of(parts: &Parts) -> Self {
        if let Some(lang) = chosen_in_query(parts.uri.query()) {
            return lang;
        }
        if let Some(lang) =
            super::form::cookie(&parts.headers, LANG_COOKIE).and_then(|c| Self::parse(&c))
        {
            return lang;
        }
        parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // Highest weight first; ties keep the browser's order.
                let mut ranges: Vec<(f32, usize, &str)> = v
                    .split(',')
                    .enumerate()
                    .map(|(i, range)| {
                        let mut bits = range.split(';');
                        let tag = bits.next().unwrap_or("").trim();
                        let q = bits
                            .find_map(|b| b.trim().strip_prefix("q="))
                            .and_then(|q| q.parse().ok())
                            .unwrap_or(1.0);
                        (q, i, tag)
                    })
                    .collect();
                ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                ranges.into_iter().find_map(|(_, _, tag)| Self::parse(tag))
            })
            .unwrap_or(Self::En)
    }
}

/// The language named by `?lang=` in a query string, if any.
pub fn chosen_in_query(query: Option<&str>) -> Option<Lang> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "lang")
        .and_then(|(_, value)| Lang::parse(&value))
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self::of(parts))
    }
}

macro_rules! texts {
    ($($name:ident => ($en:expr, $fr:expr),)*) => {
        /// Every text of the pages, in one language.
        #[derive(Debug)]
        pub struct Texts {
            $(#[doc = $en] pub $name: &'static str,)*
        }
        /// English.
        pub static EN: Texts = Texts { $($name: $en,)* };
        /// French.
        pub static FR: Texts = Texts { $($name: $fr,)* };
    };
}

texts! {
    action => ("Action", "Action"),
    actor => ("Actor", "Auteur"),
    agency_code => ("Agency (IATA number)", "Agence (numéro IATA)"),
    airline => ("Airline", "Compagnie"),
    airline_code => ("Airline (designator)", "Compagnie (code)"),
    airlines_named => ("Airlines that may ask for it", "Compagnies qui peuvent le demander"),
    any => ("Any", "Toutes"),
    api_key => ("API key", "Clé d'API"),
    api_key_hint => ("The key Passerelle issued to you (pas_officer_… or pas_agency_…). It is never shown again on the page.", "La clé que Passerelle vous a remise (pas_officer_… ou pas_agency_…). Elle n'est plus jamais affichée."),
    at_index => ("at entry", "à l'entrée"),
    atomic => ("All or nothing: store no record if any is rejected", "Tout ou rien : n'enregistrer aucun dossier si l'un est rejeté"),
    audit_title => ("Audit trail", "Journal d'audit"),
    back_home => ("Back to the start page", "Retour à l'accueil"),
    back_to_your_page => ("Back to your page", "Retour à votre page"),
    booking_id => ("Booking id", "Identifiant de réservation"),
    by_purpose => ("Grants, releases and relays by purpose and event", "Jetons, communications et relais par finalité et événement"),
    carriers => ("Airlines", "Compagnies"),
    channel => ("Channel", "Canal"),
    chart_coverage_agency => ("Travellers reachable, by agency (%)", "Voyageurs joignables, par agence (%)"),
    chart_coverage_airline => ("Travellers reachable, by operating airline (%)", "Voyageurs joignables, par compagnie opérante (%)"),
    chart_over_time => ("Releases by event over time", "Communications par événement au fil du temps"),
    chart_refusals => ("Refusals by reason", "Refus par motif"),
    checkpoints_matched => ("signed checkpoints matched", "points de contrôle signés concordants"),
    clear => ("Clear", "Effacer"),
    collected_at => ("Collected", "Recueilli le"),
    code_hint => ("It starts with pas_wd_. Keep it to yourself: it opens your page.", "Il commence par pas_wd_. Gardez-le pour vous : il ouvre votre page."),
    code_label => ("Withdrawal code", "Code de retrait"),
    confirm_button => ("Yes, withdraw my consent now", "Oui, retirer mon consentement maintenant"),
    confirm_explained => ("Once withdrawn, no airline can get your contact through Passerelle any more, and messages not yet sent are cancelled. Airlines concerned:", "Une fois retiré, aucune compagnie ne pourra plus obtenir votre contact par Passerelle, et les messages pas encore envoyés sont annulés. Compagnies concernées :"),
    confirm_title => ("Withdraw your consent?", "Retirer votre consentement ?"),
    consent_is => ("Your consent is", "Votre consentement est"),
    consent_receipt => ("Consent receipt (countersigned)", "Reçu de consentement (contresigné)"),
    consent_receipt_explained => ("The receipt the broker countersigned when the record was stored (ISO/IEC TS 27560). It names no contact.", "Le reçu contresigné par le courtier à l'enregistrement (ISO/IEC TS 27560). Il ne contient aucun contact."),
    count => ("Count", "Nombre"),
    coverage => ("Coverage", "Couverture"),
    coverage_explained => ("Travellers flying in the period, and how many have a consent in force holding a contact.", "Voyageurs qui volent sur la période, et combien ont un consentement en vigueur avec un contact."),
    day => ("Day", "Jour"),
    digest => ("Digest", "Empreinte"),
    disruptions => ("Disruptions: from the declaration to the travellers told", "Perturbations : de la déclaration aux voyageurs prévenus"),
    declared => ("Declared", "Déclarée"),
    to_first_message => ("First message accepted (s)", "Premier message accepté (s)"),
    to_last_message => ("Last message accepted (s)", "Dernier message accepté (s)"),
    to_last_redemption => ("Last contact revealed (s)", "Dernier contact révélé (s)"),
    download_csv => ("Download this table as CSV", "Télécharger ce tableau en CSV"),
    your_trip_disrupted => ("Your trip: what the airline declared", "Votre voyage : ce que la compagnie a déclaré"),
    airport_closed => ("airport closed:", "aéroport fermé :"),
    new_departure => ("new departure", "nouveau départ"),
    erasures_overdue => ("Erasure requests past their deadline: airlines that were shown a client's contact and have not acknowledged erasing it", "Demandes d'effacement échues : compagnies qui ont reçu le contact d'un client et n'ont pas confirmé l'avoir effacé"),
    requested => ("Requested", "Demandée"),
    erasures_overdue_officer => ("Erasure requests past their deadline: airlines that were shown a contact and have not acknowledged erasing it", "Demandes d'effacement échues : compagnies qui ont reçu un contact et n'ont pas confirmé l'avoir effacé"),
    no_erasures_overdue => ("Every airline asked to erase a contact acknowledged it in time.", "Chaque compagnie à qui l'effacement d'un contact a été demandé l'a confirmé à temps."),
    deadline => ("Deadline", "Échéance"),
    time_to_tell => ("Time to tell your clients, from the declaration", "Délai pour prévenir vos clients, depuis la déclaration"),
    budget_alerts => ("Budget alerts: airlines past the alert level of a daily budget", "Alertes de budget : compagnies au-delà du seuil d'alerte d'un budget journalier"),
    budget_alerts_explained => ("A disruption is how an airline gets contacts: each day it may declare only a share of its schedule disrupted and have only so many contacts revealed (policies/tunables.toml). Past the alert level, look at what it declared.", "Une perturbation est ce qui donne des contacts à une compagnie : chaque jour, elle ne peut déclarer perturbée qu'une part de son programme et ne se faire révéler qu'un nombre limité de contacts (policies/tunables.toml). Au-delà du seuil d'alerte, examinez ce qu'elle a déclaré."),
    no_budget_alerts => ("No airline passed an alert level in this period.", "Aucune compagnie n'a dépassé de seuil d'alerte sur la période."),
    budget => ("Budget", "Budget"),
    used_today => ("Used", "Utilisé"),
    budget_limit => ("Of", "Sur"),
    alerted_at => ("Alerted at", "Alerte à"),
    budget_alert_flag => ("Alert: the airline declaring these disruptions passed the alert level of a daily budget today; officers are told.", "Alerte : la compagnie qui déclare ces perturbations a dépassé aujourd'hui le seuil d'alerte d'un budget journalier ; les délégués sont prévenus."),
    download_proof => ("Download the proof (JSON)", "Télécharger la preuve (JSON)"),
    duplicates => ("already stored", "déjà enregistrés"),
    effect => ("Effect", "Effet"),
    entries_checked => ("entries checked", "entrées vérifiées"),
    entry_title => ("Audit entry", "Entrée d'audit"),
    error_internal => ("Something went wrong on our side. Nothing was changed; please try again. If it persists, quote the request id to your administrator.", "Une erreur s'est produite de notre côté. Rien n'a été modifié ; réessayez. Si cela persiste, communiquez l'identifiant de requête à votre administrateur."),
    event_category => ("Event", "Événement"),
    event_reference => ("Disruption reference", "Référence de perturbation"),
    failed => ("Verification FAILED", "La vérification a ÉCHOUÉ"),
    file => ("File", "Fichier"),
    filter => ("Search", "Rechercher"),
    filters => ("Filters", "Filtres"),
    finished_at => ("Finished", "Terminée le"),
    first_page => ("First page", "Première page"),
    first_release => ("First release", "Première communication"),
    first_request => ("First request", "Première demande"),
    flight => ("Flight", "Vol"),
    footer => ("Passerelle: airlines get a traveller's contact only to warn them about their flight.", "Passerelle : les compagnies n'obtiennent le contact d'un voyageur que pour le prévenir au sujet de son vol."),
    for_these => ("Only for these notifications", "Uniquement pour ces notifications"),
    format => ("Format", "Format"),
    format_auto => ("From the file name (.csv, .ndjson, .json)", "D'après le nom du fichier (.csv, .ndjson, .json)"),
    format_ssr => ("SSR import (JSON with PNR elements)", "Import SSR (JSON avec éléments PNR)"),
    grants => ("Tokens granted", "Jetons accordés"),
    intact => ("Intact", "Intègre"),
    integrity_title => ("Log integrity", "Intégrité du journal"),
    keep_consent => ("No, keep my consent", "Non, garder mon consentement"),
    kind => ("Kind of use", "Type d'utilisation"),
    language => ("Language", "Langue"),
    last_release => ("Last release", "Dernière communication"),
    last_verification => ("Last verification", "Dernière vérification"),
    latest_checkpoint => ("Latest signed checkpoint", "Dernier point de contrôle signé"),
    line => ("Line", "Ligne"),
    log_key => ("The log's public key", "Clé publique du journal"),
    log_key_explained => ("Anyone holding this key can check a checkpoint or a proof offline, without trusting this broker.", "Avec cette clé, chacun peut vérifier un point de contrôle ou une preuve hors ligne, sans faire confiance à ce courtier."),
    log_origin => ("Log name", "Nom du journal"),
    log_size => ("entries in the log", "entrées dans le journal"),
    matching => ("Matching entries", "Entrées correspondantes"),
    nav_audit => ("Audit trail", "Journal d'audit"),
    nav_integrity => ("Integrity", "Intégrité"),
    nav_label => ("Main", "Principal"),
    nav_policies => ("Policies", "Règles"),
    nav_receipts => ("Uses of your clients' data", "Utilisations des données"),
    nav_disruptions => ("Disruptions", "Perturbations"),
    nav_contacts => ("Contacts to fix", "Contacts à corriger"),
    reached => ("Reached lately", "Joints récemment"),
    coverage_by_flight => ("By flight: those whose travellers can least be reached first", "Par vol : ceux dont les voyageurs sont les moins joignables d'abord"),
    unreachable => ("Unreachable", "Injoignables"),
    your_coverage => ("Your clients flying in the next 30 days", "Vos clients qui voyagent dans les 30 prochains jours"),
    contacts_title => ("Contacts to fix before the trip", "Contacts à corriger avant le voyage"),
    contacts_explained => ("Your clients whose number or address did not reach them: the SMS gateway could not deliver to it. Upload a new version of the record with a working contact and it leaves this list; a later delivery takes it off too. Soonest departure first.", "Vos clients dont le numéro ou l'adresse ne les a pas atteints : la passerelle SMS n'a pas pu y remettre un message. Déposez une nouvelle version du dossier avec un contact qui fonctionne et il quitte cette liste ; une remise ultérieure l'en retire aussi. Départs les plus proches d'abord."),
    no_contact_to_fix => ("No contact to fix: every contact that was tried reached its traveller.", "Aucun contact à corriger : chaque contact essayé a atteint son voyageur."),
    departs => ("Departs", "Départ"),
    unreachable_since => ("Since", "Depuis"),
    record => ("Record", "Dossier"),
    note => ("Airline's note", "Note de la compagnie"),
    open_disruptions_title => ("Open disruptions touching your clients", "Perturbations en cours touchant vos clients"),
    open_disruptions_explained => ("Each disruption an airline declared on a flight your clients are on, and for each client the last thing done under it: a token granted to the airline, a message the broker relayed or delivered, a contact released, or a refusal and why.", "Chaque perturbation déclarée par une compagnie sur un vol de vos clients, et pour chaque client la dernière étape : jeton accordé à la compagnie, message relayé ou remis par le courtier, contact communiqué, ou refus et son motif."),
    no_open_disruption => ("No open disruption touches your clients.", "Aucune perturbation en cours ne touche vos clients."),
    clients_shown => ("clients shown of", "clients affichés sur"),
    all_uses => ("Every use under this disruption", "Toutes les utilisations sous cette perturbation"),
    nothing_yet => ("nothing yet", "rien pour l'instant"),
    nav_records => ("Records", "Dossiers"),
    nav_reports => ("Reports", "Rapports"),
    nav_upload => ("Upload", "Dépôt"),
    never_marketing => ("Your contact is never given for marketing: only to warn you about your flight.", "Votre contact n'est jamais communiqué à des fins commerciales : seulement pour vous prévenir au sujet de votre vol."),
    never_verified => ("No verification was run from the console yet.", "Aucune vérification n'a encore été lancée depuis la console."),
    next_page => ("Next page", "Page suivante"),
    no_checkpoint => ("No checkpoint was signed yet.", "Aucun point de contrôle n'a encore été signé."),
    no_contact_kept => ("None kept any more (destroyed at the end of its retention).", "Plus aucun (détruit à la fin de sa durée de conservation)."),
    no_uses => ("No airline has received your contact or sent you a message.", "Aucune compagnie n'a reçu votre contact ni ne vous a envoyé de message."),
    nothing_found => ("Nothing matches.", "Aucun résultat."),
    open_button => ("Open my page", "Ouvrir ma page"),
    open_intro => ("Type the withdrawal code printed on the consent receipt your travel agency gave you. You will see what you consented to, which airlines used your contact, and you can withdraw.", "Saisissez le code de retrait imprimé sur le reçu de consentement que votre agence de voyages vous a remis. Vous verrez ce que vous avez accepté, quelles compagnies ont utilisé votre contact, et vous pourrez retirer votre consentement."),
    open_title => ("Your consent", "Votre consentement"),
    outcome => ("Outcome", "Résultat"),
    outcome_of => ("Outcome of", "Résultat de"),
    pages => ("Pages", "Pages"),
    period => ("Period", "Période"),
    policies_explained => ("The release policies (Cedar) and tunables in force on this broker. Every audit entry names the policy digest it was decided under.", "Les règles de communication (Cedar) et paramètres en vigueur sur ce courtier. Chaque entrée d'audit indique l'empreinte des règles appliquées."),
    policies_title => ("Policies in force", "Règles en vigueur"),
    proof_explained => ("The path of hashes from this entry to the root of the signed checkpoint (RFC 9162):", "Le chemin d'empreintes de cette entrée jusqu'à la racine du point de contrôle signé (RFC 9162) :"),
    proof_fails => ("The proof does not hold", "La preuve n'est pas valide"),
    proof_holds => ("The entry is in the log: its proof leads to a checkpoint signed with the log's key", "L'entrée figure au journal : sa preuve mène à un point de contrôle signé avec la clé du journal"),
    proof_title => ("Inclusion proof", "Preuve d'inclusion"),
    purge_after => ("Contact destroyed after", "Contact détruit après le"),
    purpose => ("Purpose", "Finalité"),
    purposes => ("Purposes", "Finalités"),
    reason => ("Reason", "Motif"),
    receipts_explained => ("Every time an airline was granted a token for, received, or messaged one of your clients, with when and why.", "Chaque fois qu'une compagnie a obtenu un jeton pour l'un de vos clients, reçu son contact ou lui a écrit, avec la date et le motif."),
    receipts_title => ("Uses of your clients' data", "Utilisations des données de vos clients"),
    record_id => ("Record", "Dossier"),
    record_locator => ("Booking reference (PNR)", "Référence de réservation (PNR)"),
    recorded_at => ("Recorded", "Enregistré le"),
    recorded_since => ("Recorded since", "Enregistré depuis le"),
    records_title => ("Consent records", "Dossiers de consentement"),
    rejected => ("rejected", "rejetés"),
    rejected_explained => ("Rejected records were not stored; the reason is given on each line.", "Les dossiers rejetés n'ont pas été enregistrés ; le motif figure sur chaque ligne."),
    relay => ("Relayed messages", "Messages relayés"),
    relays => ("Messages relayed", "Messages relayés"),
    releases => ("Releases", "Communications"),
    reports_title => ("Reports", "Rapports"),
    root => ("Root", "Racine"),
    rule => ("Rule", "Règle"),
    run_verification => ("Verify the whole log", "Vérifier tout le journal"),
    show => ("Show", "Afficher"),
    sign_in => ("Sign in", "Se connecter"),
    sign_in_airline => ("Airlines use the API, not these pages.", "Les compagnies utilisent l'API, pas ces pages."),
    sign_in_failed => ("This key does not open a session: it is unknown, revoked or mistyped.", "Cette clé n'ouvre pas de session : elle est inconnue, révoquée ou mal saisie."),
    sign_checkpoint_now => ("Sign a checkpoint of the log now", "Signer maintenant un point de contrôle du journal"),
    sign_in_intro => ("Compliance officers and agencies sign in with the API key Passerelle issued to them.", "Les délégués à la conformité et les agences se connectent avec la clé d'API que Passerelle leur a remise."),
    sign_in_stale => ("The form expired. Please sign in again.", "Le formulaire a expiré. Veuillez vous reconnecter."),
    sign_in_title => ("Sign in to Passerelle", "Connexion à Passerelle"),
    sign_out => ("Sign out", "Se déconnecter"),
    signed_at => ("Signed", "Signé le"),
    signed_checkpoint => ("Signed checkpoint", "Point de contrôle signé"),
    signed_note => ("Signed note", "Note signée"),
    since => ("From", "Du"),
    skip_to_content => ("Skip to content", "Aller au contenu"),
    source => ("Source", "Source"),
    state => ("State", "État"),
    stored => ("stored", "enregistrés"),
    traveller_hint => ("Travellers: open your page at /t with the withdrawal code printed on your consent receipt; no account is needed.", "Voyageurs : ouvrez votre page à l'adresse /t avec le code de retrait imprimé sur votre reçu de consentement ; aucun compte n'est nécessaire."),
    traveller_id => ("Traveller id", "Identifiant du voyageur"),
    traveller_link => ("Traveller's withdrawal code (shown once)", "Code de retrait du voyageur (affiché une seule fois)"),
    traveller_links_explained => ("Print each traveller's withdrawal code on their receipt now: it is not shown again. With it they open their page at", "Imprimez maintenant le code de retrait de chaque voyageur sur son reçu : il ne sera plus affiché. Avec ce code, il ouvre sa page à l'adresse"),
    traveller_title => ("Your contact details and your flights", "Vos coordonnées et vos vols"),
    travellers => ("Travellers", "Voyageurs"),
    tree_size => ("Entries in the log", "Entrées dans le journal"),
    tunables => ("Tunables", "Paramètres"),
    unknown_link_explained => ("Check that the whole code from your receipt was copied. If your travel agency issued a new receipt, use the newest code.", "Vérifiez que tout le code de votre reçu a été copié. Si votre agence vous a remis un nouveau reçu, utilisez le code le plus récent."),
    unknown_link_title => ("This code does not open a consent", "Ce code n'ouvre aucun consentement"),
    until => ("To", "Au"),
    upload => ("Upload", "Déposer"),
    upload_explained => ("Signed consent records as CSV, NDJSON or a JSON array (as for POST /v1/consents/batch), or an SSR import. Each record's outcome is shown below.", "Dossiers de consentement signés en CSV, NDJSON ou tableau JSON (comme pour POST /v1/consents/batch), ou un import SSR. Le résultat de chaque dossier s'affiche ci-dessous."),
    upload_title => ("Upload consent records", "Déposer des dossiers de consentement"),
    uses_of_record => ("Every use of this traveller's contact", "Toutes les utilisations du contact de ce voyageur"),
    uses_title => ("Who used your contact, when and why", "Qui a utilisé votre contact, quand et pourquoi"),
    valid_until => ("Valid until", "Valable jusqu'au"),
    verification_explained => ("Recomputes every entry's hash and the whole tree, and checks them against every signed checkpoint.", "Recalcule l'empreinte de chaque entrée et tout l'arbre, et les confronte à chaque point de contrôle signé."),
    verify_now => ("Run a verification now", "Lancer une vérification"),
    verifying => ("Verifying… entries checked:", "Vérification… entrées vérifiées :"),
    contact_check_title => ("Confirm your email address", "Confirmez votre adresse e-mail"),
    verify_contact_title => ("Does the contact reach the traveller?", "Le contact joint-il le voyageur ?"),
    verify_contact_explained => ("The broker sends the traveller a code by SMS, or a link by email, in the language of their notice. Nothing is sent unless you ask, and only a few times a day per channel.", "Le courtier envoie au voyageur un code par SMS, ou un lien par e-mail, dans la langue de sa notice. Rien n'est envoyé sans votre demande, et seulement quelques fois par jour et par canal."),
    verify_send_sms => ("Send a code by SMS", "Envoyer un code par SMS"),
    verify_send_email => ("Send a link by email", "Envoyer un lien par e-mail"),
    verify_sent => ("On its way to the traveller; it expires at", "En route vers le voyageur ; il expire à"),
    verify_code_label => ("The code the traveller reads to you", "Le code que le voyageur vous lit"),
    verify_code_button => ("Confirm", "Confirmer"),
    verify_confirmed => ("Confirmed: the contact reaches the traveller.", "Confirmé : le contact joint le voyageur."),
    verify_tries_left => ("wrong codes still accepted", "codes erronés encore acceptés"),
    contact_check_intro => ("Your travel agency asked us to check that this address reaches you, so that you can be warned if your flight is cancelled or delayed. Nothing else changes, and your address is never given for marketing.", "Votre agence de voyages nous a demandé de vérifier que cette adresse vous joint, pour que vous soyez prévenu si votre vol est annulé ou retardé. Rien d'autre ne change, et votre adresse n'est jamais communiquée à des fins commerciales."),
    contact_check_button => ("Yes, this address is mine", "Oui, cette adresse est la mienne"),
    contact_checked_title => ("Thank you: your address is confirmed", "Merci : votre adresse est confirmée"),
    contact_checked_explained => ("Your travel agency now knows that this address reaches you. You can close this page.", "Votre agence de voyages sait maintenant que cette adresse vous joint. Vous pouvez fermer cette page."),
    what_you_consented => ("What you agreed to", "Ce que vous avez accepté"),
    when => ("When", "Quand"),
    why => ("Why", "Pourquoi"),
    with_contact => ("Reachable", "Joignables"),
    withdraw_button => ("Withdraw my consent", "Retirer mon consentement"),
    withdraw_explained => ("You can withdraw at any time, as easily as you gave it. It takes effect at once.", "Vous pouvez le retirer à tout moment, aussi simplement que vous l'avez donné. Le retrait prend effet immédiatement."),
    withdraw_title => ("Withdraw", "Retrait"),
    withdrawn_at => ("Withdrawn", "Retiré le"),
    withdrawn_explained => ("Your consent is withdrawn. No airline can get your contact through Passerelle any more. Withdrawn at", "Votre consentement est retiré. Plus aucune compagnie ne peut obtenir votre contact par Passerelle. Retiré le"),
    withdrawn_title => ("Consent withdrawn", "Consentement retiré"),
    your_contact => ("Your contact (masked)", "Votre contact (masqué)"),
}

impl Texts {
    /// A word of the API (a state, a purpose, an event, an outcome) in this language;
    /// words without a translation are shown as they are.
    pub fn word<'a>(&self, code: &'a str) -> &'a str {
        let french = std::ptr::eq(self, &FR);
        let pair: Option<(&'static str, &'static str)> = match code {
            "given" => Some(("given", "donné")),
            "refused" => Some(("refused", "refusé")),
            "withdrawn" => Some(("withdrawn", "retiré")),
            "expired" => Some(("expired", "expiré")),
            "superseded" => Some(("superseded", "remplacé")),
            "schedule_change" => Some(("schedule change", "changement d'horaire")),
            "delay" => Some(("delay", "retard")),
            "cancellation" => Some(("cancellation", "annulation")),
            "rebooking" => Some(("rebooking", "réacheminement")),
            "seat_change" => Some(("seat change", "changement de siège")),
            "gate_change" => Some(("gate change", "changement de porte")),
            "baggage" => Some(("baggage", "bagages")),
            "check_in" => Some(("check-in", "enregistrement")),
            "diversion" => Some(("diversion", "déroutement")),
            "token_granted" => Some((
                "may ask for your contact",
                "autorisée à demander votre contact",
            )),
            "contact_revealed" => Some(("received your contact", "a reçu votre contact")),
            "message_accepted" => Some((
                "sent you a message through Passerelle",
                "vous a écrit par Passerelle",
            )),
            "message_delivered" => Some(("message delivered", "message remis")),
            "message_received" => Some((
                "message received on your phone",
                "message reçu sur votre téléphone",
            )),
            "message_not_received" => Some((
                "message did not reach your phone",
                "message non reçu sur votre téléphone",
            )),
            "receipt" => Some(("phone network receipt", "accusé du réseau")),
            "consent_withdrawn" => Some(("consent withdrawn", "consentement retiré")),
            "contact_changed" => Some(("contact changed", "contact changé")),
            "record_purged" => Some(("record purged", "dossier purgé")),
            "undeliverable" => Some(("undeliverable", "non distribuable")),
            "hard_bounce" => Some(("address rejected", "adresse rejetée")),
            "message_cancelled" => Some(("message cancelled", "message annulé")),
            "message_failed" => Some(("message not delivered", "message non remis")),
            "grant" => Some(("token granted", "jeton accordé")),
            "release" => Some(("contact released", "contact communiqué")),
            "relay" => Some(("message relayed", "message relayé")),
            "delivery" => Some(("delivery", "remise")),
            "stored" => Some(("stored", "enregistré")),
            "duplicate" => Some(("already stored", "déjà enregistré")),
            "rejected" => Some(("rejected", "rejeté")),
            _ => None,
        };
        match pair {
            Some((en, fr)) => {
                if french {
                    fr
                } else {
                    en
                }
            }
            None => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn lang_of(uri: &str, headers: &[(&str, &str)]) -> Lang {
        let mut request = Request::builder().uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        Lang::of(&parts)
    }

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser() {
        assert_eq!(
            lang_of("/?lang=fr", &[("cookie", "passerelle_lang=en")]),
            Lang::Fr
        );
        assert_eq!(lang_of("/", &[("cookie", "passerelle_lang=fr")]), Lang::Fr);
        assert_eq!(
            lang_of("/", &[("accept-language", "de-DE, fr;q=0.8, en;q=0.5")]),
            Lang::Fr
        );
        assert_eq!(lang_of("/", &[("accept-language", "en-GB, fr")]), Lang::En);
        assert_eq!(lang_of("/", &[]), Lang::En);
    }

    #[test]
    fn words_are_translated_or_left_as_they_are() {
        assert_eq!(FR.word("cancellation"), "annulation");
        assert_eq!(EN.word("gate_change"), "gate change");
        assert_eq!(FR.word("something_new"), "something_new");
    }
}
