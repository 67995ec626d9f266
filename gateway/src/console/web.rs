//! The console's web rules, in one place: the security headers of every console response
//! (Content-Security-Policy without scripts, no framing, no caching, no referrer), its cookies
//! (`__Host-` prefixed, `HttpOnly; Secure`, `SameSite=Strict` for the session), the CSRF check of
//! every form, the language, and the page texts in Dutch and English.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use super::session::same_secret;

/// The policy of every console page: nothing but the console's own style sheet and images, forms
/// only to the console, no scripts at all, never in a frame, no `<base>`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The printable data-subject report keeps its own inline style (one self-contained document):
/// still no scripts, no loads, no forms, no framing.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                              form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The session cookie's name (`__Host-`: Secure, Path=/, no Domain, set by this host only).
pub const SESSION_COOKIE: &str = "__Host-pw_session";
/// Binds a login in progress to the browser that started it (`SameSite=Lax`: it must come back
/// with the provider's redirect, which is a cross-site navigation).
pub const LOGIN_COOKIE: &str = "__Host-pw_login";
/// The language chosen before or after login.
pub const LANG_COOKIE: &str = "__Host-pw_lang";

/// Set the security headers of a console response.
pub fn secure_headers(resp: &mut Response, csp: &'static str) {
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, csp);
    }
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
}

/// A `Set-Cookie` value. `max_age` `Some(0)` deletes the cookie.
pub fn cookie(name: &str, value: &str, same_site: &str, max_age: Option<u64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

/// The value of cookie `name` in the request, if present once.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(val);
                }
            }
        }
    }
    found
}

/// The CSRF rule: a form's token must equal its session's token exactly.
pub fn csrf_ok(session_token: &str, form_token: Option<&str>) -> bool {
    form_token.is_some_and(|t| !t.is_empty() && same_secret(session_token, t))
}

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Nl,
    En,
}

impl Lang {
    pub fn from_cookie(headers: &HeaderMap) -> Lang {
        match read_cookie(headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Nl,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }

    pub fn report(self) -> crate::audit::report::Lang {
        match self {
            Lang::Nl => crate::audit::report::Lang::Nl,
            Lang::En => crate::audit::report::Lang::En,
        }
    }
}

/// Every text of the console's pages, in one language.
#[derive(Debug)]
pub struct Texts {
    pub console: &'static str,
    pub development: &'static str,
    pub skip: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub login_with: &'static str,
    pub no_providers: &'static str,
    pub dev_login: &'static str,
    pub as_officer: &'static str,
    pub as_admin: &'static str,
    pub organisation: &'static str,
    pub logout: &'static str,
    pub logged_out: &'static str,
    pub logged_in: &'static str,
    pub continue_: &'static str,
    pub switch_lang: &'static str,
    pub home: &'static str,
    pub home_intro: &'static str,
    pub officer_section: &'static str,
    pub admin_section: &'static str,
    pub records: &'static str,
    pub records_intro: &'static str,
    pub subject_report: &'static str,
    pub subject_report_intro: &'static str,
    pub usage: &'static str,
    pub usage_intro: &'static str,
    pub usage_bad_period: &'static str,
    pub export: &'static str,
    pub export_intro: &'static str,
    pub verify: &'static str,
    pub verify_intro: &'static str,
    pub verify_now: &'static str,
    pub verify_ok: &'static str,
    pub verify_bad: &'static str,
    pub covenants: &'static str,
    pub covenants_intro: &'static str,
    pub filter: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub purpose: &'static str,
    pub decision: &'static str,
    pub why: &'static str,
    pub kind: &'static str,
    pub counterpart: &'static str,
    pub any: &'static str,
    pub permit: &'static str,
    pub refuse: &'static str,
    pub apply: &'static str,
    pub time: &'static str,
    pub requester: &'static str,
    pub source: &'static str,
    pub person: &'static str,
    pub covenant: &'static str,
    pub fields_released: &'static str,
    pub fields_withheld: &'static str,
    pub legal_basis: &'static str,
    pub details: &'static str,
    pub next_page: &'static str,
    pub first_page: &'static str,
    pub no_records: &'static str,
    pub record: &'static str,
    pub record_hash: &'static str,
    pub bsn: &'static str,
    pub bsn_hint: &'static str,
    pub make_report: &'static str,
    pub format: &'static str,
    pub download: &'static str,
    pub state: &'static str,
    pub version: &'static str,
    pub valid: &'static str,
    pub expires_in_days: &'static str,
    pub awaiting: &'static str,
    pub no_covenants: &'static str,
    pub parties: &'static str,
    pub signed: &'static str,
    pub missing: &'static str,
    pub invalid: &'static str,
    pub grants: &'static str,
    pub recipients: &'static str,
    pub fields: &'static str,
    pub consent_required: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub retention: &'static str,
    pub days: &'static str,
    pub changes: &'static str,
    pub no_changes: &'static str,
    pub first_version: &'static str,
    pub upload_draft: &'static str,
    pub upload_draft_intro: &'static str,
    pub document: &'static str,
    pub upload_signature: &'static str,
    pub signature: &'static str,
    pub submit: &'static str,
    pub suspend: &'static str,
    pub resume: &'static str,
    pub terminate: &'static str,
    pub act_why: &'static str,
    pub confirm: &'static str,
    pub confirm_intro: &'static str,
    pub cancel: &'static str,
    pub done: &'static str,
    pub problems: &'static str,
    pub at: &'static str,
    pub error_title: &'static str,
    pub back: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub csrf_failed: &'static str,
    pub login_failed: &'static str,
    pub unavailable: &'static str,
    pub bad_input: &'static str,
    pub bsn_in_url: &'static str,
    pub in_force: &'static str,
    pub signature_col: &'static str,
    pub role_col: &'static str,
    pub overview: &'static str,
    pub overview_intro: &'static str,
    pub chart_label: &'static str,
    pub by_purpose: &'static str,
    pub refusals_by_why: &'static str,
    pub chain: &'static str,
    pub last_record: &'static str,
    pub last_checkpoint: &'static str,
    pub last_verification: &'static str,
    pub never_this_instance: &'static str,
    pub capped: &'static str,
    pub total: &'static str,
    pub count: &'static str,
}

pub static NL: Texts = Texts {
    console: "Poortwachter-console",
    development: "ONTWIKKELOMGEVING — inloggen zonder identiteitsprovider, niet voor productie",
    skip: "Naar de inhoud",
    login_title: "Inloggen",
    login_intro: "Log in met het account van uw eigen organisatie.",
    login_with: "Inloggen bij",
    no_providers: "Er is geen identiteitsprovider ingesteld. Vraag de beheerder van de gateway.",
    dev_login: "Ontwikkel-login (alleen demo)",
    as_officer: "als functionaris gegevensbescherming",
    as_admin: "als convenantbeheerder",
    organisation: "Organisatie",
    logout: "Uitloggen",
    logged_out: "U bent uitgelogd.",
    logged_in: "U bent ingelogd.",
    continue_: "Verder naar de console",
    switch_lang: "English",
    home: "Start",
    home_intro: "Kies wat u wilt doen.",
    officer_section: "Functionaris gegevensbescherming",
    admin_section: "Convenantbeheer",
    records: "Verstrekkingen en weigeringen",
    records_intro: "Alle beslissingen waarbij uw organisatie vroeg of leverde. Elke keer dat u deze lijst opent, wordt dat zelf vastgelegd.",
    subject_report: "Inzageverzoek (rapport per persoon)",
    subject_report_intro: "Maak het overzicht voor een inzageverzoek (AVG art. 15). Het BSN wordt alleen in het formulier verstuurd, nooit in een adres.",
    usage: "Gebruiksrapportage per medewerker",
    usage_intro: "Per medewerker en per dag: verstrekkingen, weigeringen, aantal verschillende cliënten en doelen, met signalen (buiten kantoortijd, veel cliënten, veel weigeringen). Voor een controle volgens de Suwinet-normen. Het opvragen wordt zelf vastgelegd.",
    usage_bad_period: "Geef een periode op met twee datums (jjjj-mm-dd): de tweede niet vóór de eerste, samen ten hoogste 92 dagen.",
    export: "Exporteren",
    export_intro: "Download de vastleggingen van uw organisatie als CSV of JSON Lines.",
    verify: "Keten controleren",
    verify_intro: "Controleer nu of de vastleggingen ongeschonden zijn (hash-keten en ondertekende controlepunten).",
    verify_now: "Nu controleren",
    verify_ok: "De keten is in orde.",
    verify_bad: "De keten is NIET in orde.",
    covenants: "Convenanten",
    covenants_intro: "Alle convenanten met hun status, versie en geldigheid.",
    filter: "Filter",
    from: "Vanaf (datum)",
    to: "Tot (datum)",
    purpose: "Doel",
    decision: "Beslissing",
    why: "Reden",
    kind: "Soort",
    counterpart: "Andere organisatie (OIN)",
    any: "alle",
    permit: "verstrekt",
    refuse: "geweigerd",
    apply: "Toepassen",
    time: "Tijd",
    requester: "Vrager",
    source: "Leverancier",
    person: "Medewerker",
    covenant: "Convenant",
    fields_released: "Verstrekte gegevens",
    fields_withheld: "Achtergehouden gegevens",
    legal_basis: "Grondslag",
    details: "Details",
    next_page: "Volgende pagina",
    first_page: "Eerste pagina",
    no_records: "Geen vastleggingen gevonden met dit filter.",
    record: "Vastlegging",
    record_hash: "Hash",
    bsn: "BSN van de betrokkene",
    bsn_hint: "9 cijfers",
    make_report: "Rapport maken",
    format: "Formaat",
    download: "Downloaden",
    state: "Status",
    version: "Versie",
    valid: "Geldig",
    expires_in_days: "Verloopt over (dagen)",
    awaiting: "Wacht op handtekening van",
    no_covenants: "Er zijn nog geen convenanten.",
    parties: "Partijen",
    signed: "ondertekend",
    missing: "ontbreekt",
    invalid: "ongeldig",
    grants: "Toegestane verstrekkingen",
    recipients: "Ontvangers",
    fields: "Gegevens",
    consent_required: "Toestemming nodig",
    yes: "ja",
    no: "nee",
    retention: "Bewaartermijn",
    days: "dagen",
    changes: "Wijzigingen ten opzichte van de vorige versie",
    no_changes: "Geen inhoudelijke wijzigingen.",
    first_version: "Dit is de eerste versie.",
    upload_draft: "Concept of wijziging indienen",
    upload_draft_intro: "Plak het convenantdocument (JSON). Fouten worden getoond met hun plaats in het document.",
    document: "Document",
    upload_signature: "Handtekening van een partij toevoegen",
    signature: "Losse handtekening (JWS)",
    submit: "Indienen",
    suspend: "Opschorten",
    resume: "Hervatten",
    terminate: "Beëindigen",
    act_why: "Reden (verplicht)",
    confirm: "Bevestigen",
    confirm_intro: "Weet u het zeker? Deze handeling wordt vastgelegd met uw naam.",
    cancel: "Annuleren",
    done: "Gedaan.",
    problems: "Het document bevat fouten",
    at: "bij",
    error_title: "Er ging iets mis",
    back: "Terug naar start",
    not_found: "Deze pagina bestaat niet.",
    forbidden: "U heeft geen toegang tot deze pagina.",
    csrf_failed: "Het formulier is verlopen of niet van deze console afkomstig. Open de pagina opnieuw en probeer het nog eens.",
    login_failed: "Inloggen is niet gelukt.",
    unavailable: "De gateway kan dit nu niet doen (de vastlegging of database is niet beschikbaar). Er is niets gewijzigd.",
    bad_input: "De invoer is niet goed",
    bsn_in_url: "Een BSN hoort niet in een adres. Gebruik het formulier.",
    in_force: "Geldend",
    signature_col: "Handtekening",
    role_col: "Rol",
    overview: "Overzicht",
    overview_intro: "Beslissingen van de afgelopen 30 dagen waarbij uw organisatie vroeg of leverde.",
    chart_label: "Beslissingen per dag: groen verstrekt, rood geweigerd",
    by_purpose: "Per doel",
    refusals_by_why: "Weigeringen per reden",
    chain: "Staat van de keten",
    last_record: "Laatste vastlegging",
    last_checkpoint: "Laatste ondertekend controlepunt",
    last_verification: "Laatste controle",
    never_this_instance: "nog niet sinds de start van deze gateway",
    capped: "Alleen de eerste 50.000 vastleggingen zijn meegeteld.",
    total: "Totaal",
    count: "Aantal",
};

pub static EN: Texts = Texts {
    console: "Poortwachter console",
    development: "DEVELOPMENT — login without an identity provider, not for production",
    skip: "Skip to content",
    login_title: "Log in",
    login_intro: "Log in with your own organisation's account.",
    login_with: "Log in at",
    no_providers: "No identity provider is configured. Ask the gateway's administrator.",
    dev_login: "Development login (demo only)",
    as_officer: "as privacy officer",
    as_admin: "as covenant administrator",
    organisation: "Organisation",
    logout: "Log out",
    logged_out: "You are logged out.",
    logged_in: "You are logged in.",
    continue_: "Continue to the console",
    switch_lang: "Nederlands",
    home: "Home",
    home_intro: "Choose what to do.",
    officer_section: "Privacy officer",
    admin_section: "Covenant administration",
    records: "Disclosures and refusals",
    records_intro: "Every decision in which your organisation asked or supplied. Each time you open this list, that is recorded too.",
    subject_report: "Access request (report per person)",
    subject_report_intro: "Produce the overview for an access request (GDPR art. 15). The BSN is sent only in the form, never in an address.",
    usage: "Usage report per employee",
    usage_intro: "Per employee and per day: disclosures, refusals, number of distinct clients and purposes, with signals (outside office hours, many clients, many refusals). For an audit under the Suwinet norms. Making the report is recorded too.",
    usage_bad_period: "Give a period as two dates (yyyy-mm-dd): the second not before the first, at most 92 days in all.",
    export: "Export",
    export_intro: "Download your organisation's records as CSV or JSON Lines.",
    verify: "Verify the chain",
    verify_intro: "Check now that the records are intact (hash chain and signed checkpoints).",
    verify_now: "Verify now",
    verify_ok: "The chain is intact.",
    verify_bad: "The chain is NOT intact.",
    covenants: "Covenants",
    covenants_intro: "Every covenant with its state, version and validity.",
    filter: "Filter",
    from: "From (date)",
    to: "Until (date)",
    purpose: "Purpose",
    decision: "Decision",
    why: "Reason",
    kind: "Kind",
    counterpart: "Other organisation (OIN)",
    any: "any",
    permit: "disclosed",
    refuse: "refused",
    apply: "Apply",
    time: "Time",
    requester: "Requester",
    source: "Source",
    person: "Employee",
    covenant: "Covenant",
    fields_released: "Data disclosed",
    fields_withheld: "Data withheld",
    legal_basis: "Legal basis",
    details: "Details",
    next_page: "Next page",
    first_page: "First page",
    no_records: "No records match this filter.",
    record: "Record",
    record_hash: "Hash",
    bsn: "The data subject's BSN",
    bsn_hint: "9 digits",
    make_report: "Make report",
    format: "Format",
    download: "Download",
    state: "State",
    version: "Version",
    valid: "Valid",
    expires_in_days: "Expires in (days)",
    awaiting: "Awaiting the signature of",
    no_covenants: "There are no covenants yet.",
    parties: "Parties",
    signed: "signed",
    missing: "missing",
    invalid: "invalid",
    grants: "Permitted disclosures",
    recipients: "Recipients",
    fields: "Data",
    consent_required: "Consent required",
    yes: "yes",
    no: "no",
    retention: "Retention",
    days: "days",
    changes: "Changes from the previous version",
    no_changes: "No changes in substance.",
    first_version: "This is the first version.",
    upload_draft: "Submit a draft or amendment",
    upload_draft_intro: "Paste the covenant document (JSON). Errors are shown at their place in the document.",
    document: "Document",
    upload_signature: "Add a party's signature",
    signature: "Detached signature (JWS)",
    submit: "Submit",
    suspend: "Suspend",
    resume: "Resume",
    terminate: "Terminate",
    act_why: "Reason (required)",
    confirm: "Confirm",
    confirm_intro: "Are you sure? This act is recorded with your name.",
    cancel: "Cancel",
    done: "Done.",
    problems: "The document has errors",
    at: "at",
    error_title: "Something went wrong",
    back: "Back to home",
    not_found: "This page does not exist.",
    forbidden: "You have no access to this page.",
    csrf_failed: "The form has expired or did not come from this console. Open the page again and retry.",
    login_failed: "Logging in did not succeed.",
    unavailable: "The gateway cannot do this now (the audit log or database is unavailable). Nothing was changed.",
    bad_input: "The input is not right",
    bsn_in_url: "A BSN does not belong in an address. Use the form.",
    in_force: "In force",
    signature_col: "Signature",
    role_col: "Role",
    overview: "Overview",
    overview_intro: "Decisions of the last 30 days in which your organisation asked or supplied.",
    chart_label: "Decisions per day: green disclosed, red refused",
    by_purpose: "Per purpose",
    refusals_by_why: "Refusals by reason",
    chain: "State of the chain",
    last_record: "Last record",
    last_checkpoint: "Last signed checkpoint",
    last_verification: "Last verification",
    never_this_instance: "not since this gateway started",
    capped: "Only the first 50,000 records were counted.",
    total: "Total",
    count: "Count",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_attributes() {
        let c = cookie(SESSION_COOKIE, "abc", "Strict", None);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-pw_session=abc;"));
        for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(c.split("; ").any(|a| a == attr), "{attr} in {c}");
        }
        assert!(!c.contains("Domain"));
    }

    #[test]
    fn csp_allows_no_script_and_no_framing() {
        for p in [CSP, REPORT_CSP] {
            assert!(p.contains("default-src 'none'"));
            assert!(p.contains("frame-ancestors 'none'"));
            assert!(p.contains("base-uri 'none'"));
            assert!(!p.contains("script-src"), "no script source at all");
            assert!(!p.contains('*'));
        }
        assert!(!CSP.contains("unsafe"));
        let mut resp = Response::new(axum::body::Body::empty());
        secure_headers(&mut resp, CSP);
        let h = resp.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    }

    #[test]
    fn csrf_needs_the_exact_token() {
        assert!(csrf_ok("tok", Some("tok")));
        assert!(!csrf_ok("tok", None));
        assert!(!csrf_ok("tok", Some("")));
        assert!(!csrf_ok("tok", Some("tok2")));
        assert!(!csrf_ok("tok", Some("TOK")));
    }

    #[test]
    fn a_repeated_cookie_is_not_trusted() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-pw_session=x"),
        );
        assert_eq!(read_cookie(&h, SESSION_COOKIE), Some("x"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-pw_session=y"),
        );
        assert_eq!(read_cookie(&h, SESSION_COOKIE), None);
    }
}
