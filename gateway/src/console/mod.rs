//! The web console for people (privacy officers and covenant administrators) under `/console`
//! on the gateway's TLS listener, without a client certificate: login with the organisation's
//! own OpenID Connect provider (`oidc`), server-side sessions (`session`), the web rules (security
//! headers, cookies, CSRF, languages: `web`) and the pages (`pages`, templates in
//! `gateway/templates/console/`). The pages call the same use-cases as the API (`audit::review`,
//! `audit::report`, `audit::export`, `AuditLog::verify`, `ops::covenants`), with the person from
//! the session in place of a bearer token, so every read of personal data and every act is in the
//! audit log with the person's identity, exactly as for the API.

pub mod oidc;
mod pages;
pub mod session;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::auth::{HumanClaims, Role};
use crate::config::Config;
use crate::state::AppState;
use oidc::Provider;
use session::{PendingLoginParts, Session, Sessions, Timeouts};
use web::{Lang, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};

/// The console of one gateway instance.
pub struct Console {
    pub providers: Vec<Provider>,
    pub sessions: Sessions,
    /// DEVELOPMENT ONLY: log in without a provider (`poortwachter demo`).
    pub development_login: bool,
    /// Organisations (OIN, name) for the development login.
    pub organisations: Vec<(String, String)>,
    /// The last "verify now" on this instance (time, whether the chain was intact).
    pub last_verification: std::sync::Mutex<Option<(String, bool)>>,
}

/// Check the console's configuration at start-up (secrets readable, CA files parse).
pub fn check(config: &Config) -> Result<(), String> {
    match &config.console {
        Some(c) => Provider::all(c).map(|_| ()),
        None => Ok(()),
    }
}

/// The console's routes (none when `[console]` is absent), merged into the gateway's router.
pub fn routes(state: &AppState) -> Router<AppState> {
    let Some(section) = state.config.console.clone() else {
        return Router::new();
    };
    let providers = match Provider::all(&section) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the console's providers cannot be used");
            Vec::new()
        }
    };
    let mut organisations: Vec<(String, String)> = state
        .organisations
        .iter()
        .map(|(o, n)| (o.to_string(), n.clone()))
        .collect();
    organisations.sort();
    let console = Arc::new(Console {
        providers,
        sessions: Sessions::new(Timeouts {
            idle: Duration::from_secs(section.session_idle_secs),
            absolute: Duration::from_secs(section.session_absolute_secs),
        }),
        development_login: section.development_login,
        organisations,
        last_verification: std::sync::Mutex::new(None),
    });
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::home))
        .route("/console/console.css", get(stylesheet))
        .route("/console/lang/{lang}", get(switch_lang))
        .route("/console/login/{provider}", get(login))
        .route("/console/callback", get(callback))
        .route("/console/dev-login", post(dev_login))
        .route("/console/logout", post(logout))
        .merge(pages::routes())
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(Extension(console))
}

/// Every console response carries the security headers; a query parameter that could carry a
/// subject is refused before any handler runs, and never echoed.
async fn security_headers(req: Request, next: Next) -> Response {
    let names_subject = req.uri().query().is_some_and(|q| {
        q.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
            ["bsn", "subject", "burgerservicenummer"]
                .iter()
                .any(|w| name.contains(w))
        })
    });
    let lang = Lang::from_cookie(req.headers());
    let mut resp = if names_subject {
        pages::error_page(lang, StatusCode::BAD_REQUEST, lang.texts().bsn_in_url)
    } else {
        next.run(req).await
    };
    let csp = if resp.extensions().get::<pages::ReportDocument>().is_some() {
        web::REPORT_CSP
    } else {
        web::CSP
    };
    web::secure_headers(&mut resp, csp);
    resp
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../templates/console/console.css"),
    )
        .into_response()
}

async fn not_found(headers: HeaderMap) -> Response {
    let lang = Lang::from_cookie(&headers);
    pages::error_page(lang, StatusCode::NOT_FOUND, lang.texts().not_found)
}

async fn switch_lang(axum::extract::Path(lang): axum::extract::Path<String>) -> Response {
    let lang = if lang == "en" { "en" } else { "nl" };
    let mut resp = Redirect::to("/console/").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::cookie(LANG_COOKIE, lang, "Strict", Some(31_536_000)),
    );
    resp
}

/// The person behind a request: a live session from the session cookie.
pub struct Who {
    pub id: String,
    pub session: Session,
}

impl Who {
    pub fn from(console: &Console, headers: &HeaderMap) -> Option<Who> {
        let id = web::read_cookie(headers, SESSION_COOKIE)?;
        let session = console.sessions.get(id)?;
        Some(Who {
            id: id.to_owned(),
            session,
        })
    }

    pub fn claims(&self) -> &HumanClaims {
        &self.session.claims
    }
}

async fn login(
    State(_state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    axum::extract::Path(provider): axum::extract::Path<String>,
) -> Response {
    let lang = Lang::from_cookie(&headers);
    let Some(p) = provider
        .parse::<usize>()
        .ok()
        .and_then(|i| console.providers.get(i))
    else {
        return pages::error_page(lang, StatusCode::NOT_FOUND, lang.texts().not_found);
    };
    match p.start().await {
        Ok(started) => {
            let binding = session::random_token();
            console.sessions.begin_login(
                started.state,
                PendingLoginParts {
                    provider: p.index,
                    nonce: started.nonce,
                    pkce_verifier: started.pkce_verifier,
                    binding: binding.clone(),
                },
            );
            let mut resp = Redirect::to(&started.url).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                web::cookie(
                    LOGIN_COOKIE,
                    &binding,
                    "Lax",
                    Some(session::LOGIN_TTL.as_secs()),
                ),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, "console login could not start");
            pages::error_page(lang, StatusCode::BAD_GATEWAY, lang.texts().login_failed)
        }
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    error_description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    iss: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    session_state: Option<String>,
}

/// The provider sends the browser back here. The login must be one this browser started (state
/// and the login cookie), once; the code is exchanged with the PKCE verifier and the ID token
/// checked before a session exists.
async fn callback(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lang = Lang::from_cookie(&headers);
    let failed = || pages::error_page(lang, StatusCode::UNAUTHORIZED, lang.texts().login_failed);
    let Ok(axum::extract::Query(q)) = query else {
        return failed();
    };
    if q.error.is_some() {
        return failed();
    }
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return failed();
    };
    let Some(pending) = console
        .sessions
        .finish_login(&st, web::read_cookie(&headers, LOGIN_COOKIE))
    else {
        tracing::warn!("console login callback with an unknown, expired or foreign state");
        return failed();
    };
    let Some(provider) = console.providers.get(pending.provider) else {
        return failed();
    };
    match provider
        .finish(code, &pending.nonce, pending.pkce_verifier)
        .await
    {
        Ok(who) => {
            let _ = &state;
            start_session(&console, lang, who.claims, who.name, false)
        }
        Err(e) => {
            tracing::warn!(error = %e, "console login refused");
            failed()
        }
    }
}

/// Create the session and set its cookie. The answer is a page that moves on by itself (a
/// `SameSite=Strict` cookie is not sent on the redirect chain that came from the provider's
/// site, so the next request must start on this site).
fn start_session(
    console: &Console,
    lang: Lang,
    claims: HumanClaims,
    name: String,
    development: bool,
) -> Response {
    let id = console.sessions.create(claims, name, development);
    let mut resp = pages::logged_in_page(lang);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        web::cookie(SESSION_COOKIE, &id, "Strict", None),
    );
    h.append(
        header::SET_COOKIE,
        web::cookie(LOGIN_COOKIE, "", "Lax", Some(0)),
    );
    resp
}

/// DEVELOPMENT ONLY: the demo's login without a provider (enabled by
/// `console.development_login`; every page then says so). A double-submit token protects the
/// form (there is no session yet).
async fn dev_login(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    form: axum::Form<Vec<(String, String)>>,
) -> Response {
    let lang = Lang::from_cookie(&headers);
    if !console.development_login {
        return pages::error_page(lang, StatusCode::NOT_FOUND, lang.texts().not_found);
    }
    let f = pages::Fields(&form.0);
    let cookie = web::read_cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !web::csrf_ok(cookie, f.get("csrf")) {
        return pages::error_page(lang, StatusCode::FORBIDDEN, lang.texts().csrf_failed);
    }
    let Some(org) = f
        .get("org")
        .filter(|o| console.organisations.iter().any(|(oin, _)| oin == o))
        .and_then(|o| o.parse().ok())
    else {
        return pages::error_page(lang, StatusCode::BAD_REQUEST, lang.texts().bad_input);
    };
    let role = match f.get("role") {
        Some("privacy-officer") => Role::PrivacyOfficer,
        Some("covenant-admin") => Role::CovenantAdmin,
        _ => return pages::error_page(lang, StatusCode::BAD_REQUEST, lang.texts().bad_input),
    };
    let sub = format!("dev:{}", f.get("role").unwrap_or(""));
    let claims = HumanClaims {
        sub: sub.clone(),
        org,
        roles: vec![role],
        iss: "development-login".into(),
        exp: 0,
    };
    start_session(&console, lang, claims, sub, true)
}

async fn logout(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    form: axum::Form<Vec<(String, String)>>,
) -> Response {
    let lang = Lang::from_cookie(&headers);
    let Some(who) = Who::from(&console, &headers) else {
        return pages::logged_out_page(lang);
    };
    if !web::csrf_ok(&who.session.csrf, pages::Fields(&form.0).get("csrf")) {
        return pages::error_page(lang, StatusCode::FORBIDDEN, lang.texts().csrf_failed);
    }
    console.sessions.remove(&who.id);
    let mut resp = pages::logged_out_page(lang);
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::cookie(SESSION_COOKIE, "", "Strict", Some(0)),
    );
    resp
}

/// `Clear-Site-Data` is not needed: the session lives on the server and ends there.
pub fn html(body: String) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}
