//! The console's login with an organisation's own OpenID Connect provider: authorization code
//! flow with PKCE (S256), `state` and `nonce`, by the `openidconnect` crate. Discovery is read
//! at every login and callback (the provider's keys rotate; the console holds no copy). The
//! provider's ID token gives the person (`sub`, a name), the roles (a configured claim, mapped to
//! console roles) and, when configured, the organisation, which must be the provider's own.
//!
//! The HTTP client is a small hyper client over rustls (ring): no redirects followed, a time
//! limit, a size limit, `https` (or `http` on loopback, checked in the configuration).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::auth::{HumanClaims, Role};
use crate::config::{ConsoleSection, OidcProviderSection};

/// Why a login did not succeed. Messages are for the log and name no personal data.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider cannot be reached or answered badly: {0}")]
    Provider(String),
    #[error("the identity provider's answer does not verify: {0}")]
    Invalid(String),
    #[error("the person has no console role")]
    NoRole,
    #[error("the person belongs to another organisation than this provider's")]
    WrongOrganisation,
}

/// An error of the console's HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// Limits of a provider's answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The HTTP client for one provider.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
}

impl HttpClient {
    /// A client trusting `ca_file`'s roots, or the public web roots.
    pub fn new(ca_file: Option<&std::path::Path>) -> Result<Self, String> {
        let roots = match ca_file {
            Some(p) => crate::tls::load_roots(p).map_err(|e| e.to_string())?,
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(crate::tls::PROTOCOL_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpClient { tls: Arc::new(tls) })
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        tokio::time::timeout(HTTP_TIMEOUT, self.send_inner(req))
            .await
            .map_err(|_| HttpError("no answer in time".into()))?
    }

    async fn send_inner(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let err = |e: &dyn std::fmt::Display| HttpError(e.to_string());
        let uri = req.uri().clone();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(HttpError("only http and https".into())),
        };
        let host = uri.host().ok_or_else(|| HttpError("no host".into()))?;
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let mut out = hyper::Request::builder().method(parts.method).uri(
            uri.path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
        );
        for (k, v) in &parts.headers {
            out = out.header(k, v);
        }
        let out = out
            .header(hyper::header::HOST, authority)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| err(&e))?;
        let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| err(&e))?;
        if https {
            let name = ServerName::try_from(bare).map_err(|e| err(&e))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| err(&e))?;
            exchange(tls, out).await
        } else {
            exchange(tcp, out).await
        }
    }
}

async fn exchange<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> Result<HttpResponse, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let err = |e: &dyn std::fmt::Display| HttpError(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| err(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| err(&e))?;
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| err(&*e))?
        .to_bytes();
    let mut out = HttpResponse::new(bytes.to_vec());
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    Ok(out)
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;
    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// A configured provider, ready to log people in.
#[derive(Clone)]
pub struct Provider {
    pub index: usize,
    pub section: OidcProviderSection,
    secret: Option<String>,
    redirect: String,
    http: HttpClient,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.section.issuer)
            .finish_non_exhaustive()
    }
}

/// The start of a login: where to send the browser, and what to keep until it comes back.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A person the provider vouched for.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub claims: HumanClaims,
    pub name: String,
}

fn provider_error<E: std::fmt::Display>(e: E) -> LoginError {
    LoginError::Provider(e.to_string())
}

/// ID-token signatures the console accepts: ES256 and EdDSA only, as every people's token
/// (DESIGN.md §3); the organisation's provider is registered with
/// `id_token_signed_response_alg` ES256 (or EdDSA). Never RS256/PS256, never `none`, never an HMAC
/// with the client secret.
const ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 2] = [
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

impl Provider {
    /// The providers of a console configuration, their secrets read and HTTP clients built.
    pub fn all(console: &ConsoleSection) -> Result<Vec<Provider>, String> {
        let redirect = format!(
            "{}/console/callback",
            console.public_url.trim_end_matches('/')
        );
        console
            .providers
            .iter()
            .enumerate()
            .map(|(index, section)| {
                let secret = console.client_secret(index).map_err(|e| e.to_string())?;
                let http = HttpClient::new(section.ca_file.as_deref())
                    .map_err(|e| format!("console.providers[{index}].ca_file: {e}"))?;
                Ok(Provider {
                    index,
                    section: section.clone(),
                    secret,
                    redirect: redirect.clone(),
                    http,
                })
            })
            .collect()
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, LoginError> {
        let issuer = IssuerUrl::new(self.section.issuer.clone()).map_err(provider_error)?;
        CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(provider_error)
    }

    /// Send the browser to the provider.
    pub async fn start(&self) -> Result<Started, LoginError> {
        let meta = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.section.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect.clone()).map_err(provider_error)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchange the code, verify the ID token (signature, issuer, audience, expiry, nonce) and
    /// map its claims to a console identity.
    pub async fn finish(
        &self,
        code: String,
        nonce: &str,
        pkce_verifier: String,
    ) -> Result<LoggedIn, LoginError> {
        use openidconnect::TokenResponse;
        let meta = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.section.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect.clone()).map_err(provider_error)?);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(provider_error)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Provider(format!("token endpoint: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| LoginError::Invalid("no ID token".into()))?;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ID_TOKEN_ALGS.to_vec());
        let verified = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| LoginError::Invalid(e.to_string()))?;
        let sub = verified.subject().as_str().to_owned();
        let exp = verified.expiration().timestamp();
        // The signature is verified above; read the other claims from the same token's payload.
        let raw = serde_json::to_value(id_token)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .ok_or_else(|| LoginError::Invalid("ID token form".into()))?;
        let payload = raw
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or_else(|| LoginError::Invalid("ID token payload".into()))?;
        let mapped = map_claims(&self.section, &payload)?;
        Ok(LoggedIn {
            claims: HumanClaims {
                sub,
                org: self.section.organisation.clone(),
                roles: mapped.roles,
                iss: self.section.issuer.clone(),
                exp,
            },
            name: mapped.name,
        })
    }
}

/// Roles and name from an ID token's claims.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapped {
    pub roles: Vec<Role>,
    pub name: String,
}

/// The claims rule: the organisation claim (when configured) must be the provider's
/// organisation; the roles claim (string or list) gives the console roles; a person without
/// one is refused. `operator` is never given by the console.
pub fn map_claims(
    section: &OidcProviderSection,
    payload: &serde_json::Value,
) -> Result<Mapped, LoginError> {
    if let Some(claim) = &section.organisation_claim {
        let org = payload.get(claim).and_then(|v| v.as_str());
        if org != Some(section.organisation.as_str()) {
            return Err(LoginError::WrongOrganisation);
        }
    }
    let values: Vec<&str> = match payload.get(&section.roles_claim) {
        Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    let mut roles = Vec::new();
    if values
        .iter()
        .any(|v| section.role_values.privacy_officer.iter().any(|r| r == v))
    {
        roles.push(Role::PrivacyOfficer);
    }
    if values
        .iter()
        .any(|v| section.role_values.covenant_admin.iter().any(|r| r == v))
    {
        roles.push(Role::CovenantAdmin);
    }
    if roles.is_empty() {
        return Err(LoginError::NoRole);
    }
    let name = payload
        .get(&section.name_claim)
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.chars().take(100).collect())
        .unwrap_or_else(|| "—".to_owned());
    Ok(Mapped { roles, name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(org_claim: Option<&str>) -> OidcProviderSection {
        let toml = format!(
            "organisation = \"00000001823288444000\"\nissuer = \"http://127.0.0.1:1\"\n\
             client_id = \"c\"\n{}",
            org_claim.map_or(String::new(), |c| format!("organisation_claim = \"{c}\"\n"))
        );
        toml::from_str(&toml).unwrap()
    }

    #[test]
    fn roles_map_from_a_list_or_a_string() {
        let s = section(None);
        let m = map_claims(
            &s,
            &json!({"roles": ["privacy-officer", "x"], "name": "An"}),
        )
        .unwrap();
        assert_eq!(m.roles, vec![Role::PrivacyOfficer]);
        assert_eq!(m.name, "An");
        let m = map_claims(&s, &json!({"roles": "covenant-admin privacy-officer"})).unwrap();
        assert_eq!(m.roles, vec![Role::PrivacyOfficer, Role::CovenantAdmin]);
    }

    #[test]
    fn no_role_no_login_and_operator_is_never_given() {
        let s = section(None);
        for p in [
            json!({}),
            json!({"roles": []}),
            json!({"roles": ["operator"]}),
            json!({"roles": 7}),
        ] {
            assert!(matches!(map_claims(&s, &p), Err(LoginError::NoRole)), "{p}");
        }
    }

    #[test]
    fn another_organisations_person_is_refused() {
        let s = section(Some("org"));
        let ok = json!({"roles": ["privacy-officer"], "org": "00000001823288444000"});
        assert!(map_claims(&s, &ok).is_ok());
        for org in [json!("00000001001234567000"), json!(null), json!(1)] {
            let p = json!({"roles": ["privacy-officer"], "org": org});
            assert!(matches!(
                map_claims(&s, &p),
                Err(LoginError::WrongOrganisation)
            ));
        }
        let missing = json!({"roles": ["privacy-officer"]});
        assert!(matches!(
            map_claims(&s, &missing),
            Err(LoginError::WrongOrganisation)
        ));
    }
}
