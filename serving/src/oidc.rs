//! Sign-in with OpenID Connect providers: the authorization code flow with PKCE (S256),
//! `state` and `nonce`, for any standard provider, with presets for Google, Microsoft
//! and Apple.
//!
//! The server is the client: it sends the browser to the provider's authorization
//! endpoint, takes the code back at `/auth/oidc/{provider}/callback`, exchanges it at the
//! token endpoint (with the PKCE verifier and the client's credentials) and validates the
//! ID token: signature by a key from the provider's JWKS (asymmetric algorithms only),
//! issuer, audience, expiry and the nonce of this very sign-in. Discovery documents and
//! key sets are cached for an hour; an unknown `kid` refetches the keys once.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// How long discovery documents and key sets are trusted, seconds.
pub const CACHE_SECS: i64 = 3600;
/// Clock skew tolerated on ID-token times, seconds.
pub const LEEWAY_SECS: u64 = 60;

/// Presets fill in the issuer, scopes and quirks of well-known providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Any OpenID Connect provider: `issuer` is required.
    #[default]
    Generic,
    /// Google (`https://accounts.google.com`).
    Google,
    /// Microsoft Entra ID; `tenant` is a tenant id, or `common` / `organizations` /
    /// `consumers` for multi-tenant apps (the default is `common`).
    Microsoft,
    /// Sign in with Apple: the client secret is a JWT the server signs with the team's
    /// key (`apple_team_id`, `apple_key_id`, `apple_private_key_file`), and the answer
    /// comes back as a form POST.
    Apple,
}

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The id and secret in the form body.
    ClientSecretPost,
}

/// `[serve.oidc.providers.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Which preset to start from.
    #[serde(default)]
    pub preset: Preset,
    /// The provider's issuer URL (required for `generic`; presets know theirs).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (not needed for Apple, which signs one from its key).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes to ask for; presets default to `openid email profile` (Apple: `openid
    /// email name`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Token-endpoint authentication; default `client_secret_basic` (Apple:
    /// `client_secret_post`).
    #[serde(default)]
    pub token_auth: Option<TokenAuth>,
    /// Microsoft only: the tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Apple only: the developer team id.
    #[serde(default)]
    pub apple_team_id: Option<String>,
    /// Apple only: the id of the Sign in with Apple key.
    #[serde(default)]
    pub apple_key_id: Option<String>,
    /// Apple only: the key's `.p8` file (PEM, PKCS#8, P-256).
    #[serde(default)]
    pub apple_private_key_file: Option<String>,
    /// Shown on a login page ("Sign in with …"); defaults to the preset's name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `[serve.oidc]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Providers by the name used in URLs (`/auth/oidc/NAME/start`).
    pub providers: BTreeMap<String, ProviderConfig>,
}

impl OidcConfig {
    /// Checks each provider's settings; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in &self.providers {
            let at = |key: &str| format!("serve.oidc.providers.{name}.{key}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!(
                    "serve.oidc.providers: {name:?} must be lower-case letters, digits and hyphens"
                ));
            }
            if p.client_id.trim().is_empty() {
                return Err(format!("{}: must not be empty", at("client_id")));
            }
            let issuer = issuer_of(p).map_err(|e| format!("{}: {e}", at("issuer")))?;
            check_url(&issuer).map_err(|e| format!("{}: {e}", at("issuer")))?;
            match p.preset {
                Preset::Apple => {
                    let signed = [&p.apple_team_id, &p.apple_key_id, &p.apple_private_key_file];
                    if p.client_secret.is_none() && signed.iter().any(|v| v.is_none()) {
                        return Err(format!(
                            "{}: Apple needs apple_team_id, apple_key_id and apple_private_key_file",
                            at("apple_private_key_file")
                        ));
                    }
                }
                _ => {
                    if p.client_secret.as_deref().is_none_or(str::is_empty) {
                        return Err(format!("{}: must be set", at("client_secret")));
                    }
                }
            }
            if p.tenant.is_some() && p.preset != Preset::Microsoft {
                return Err(format!("{}: only for the microsoft preset", at("tenant")));
            }
        }
        Ok(())
    }

    /// A copy with every client secret replaced by `****`.
    pub fn masked(&self) -> OidcConfig {
        let mut out = self.clone();
        for p in out.providers.values_mut() {
            if p.client_secret.is_some() {
                p.client_secret = Some("****".to_owned());
            }
        }
        out
    }
}

const MICROSOFT_MULTI: [&str; 3] = ["common", "organizations", "consumers"];

fn issuer_of(p: &ProviderConfig) -> Result<String, String> {
    match (p.preset, &p.issuer) {
        (_, Some(issuer)) => Ok(issuer.trim_end_matches('/').to_owned()),
        (Preset::Generic, None) => Err("must be set for a generic provider".to_owned()),
        (Preset::Google, None) => Ok("https://accounts.google.com".to_owned()),
        (Preset::Apple, None) => Ok("https://appleid.apple.com".to_owned()),
        (Preset::Microsoft, None) => Ok(format!(
            "https://login.microsoftonline.com/{}/v2.0",
            p.tenant.as_deref().unwrap_or("common")
        )),
    }
}

/// https everywhere, except http on the loopback interface (local providers in tests).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{url:?} must be https")),
    }
}

/// Why a sign-in with a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense (an external system).
    #[error("the identity provider {provider} failed: {detail}")]
    Provider {
        /// The provider's name.
        provider: String,
        /// What went wrong.
        detail: String,
    },
    /// The provider refused the code, or its ID token failed validation.
    #[error("the identity provider {provider}'s answer was refused: {detail}")]
    Rejected {
        /// The provider's name.
        provider: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A configured file cannot be used (the operator's to fix).
    #[error("{0}")]
    Config(String),
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable id for the person.
    pub subject: String,
    /// Their e-mail, lower-cased, if given.
    pub email: Option<String>,
    /// Whether the provider verified that e-mail.
    pub email_verified: bool,
    /// Their name, if given.
    pub name: Option<String>,
}

/// The endpoints and keys learnt from a provider's discovery document.
#[derive(Debug, Clone)]
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    keys: Vec<Jwk>,
    fetched_at: i64,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

enum Secret {
    Static(String),
    Apple {
        team_id: String,
        key_id: String,
        key: EncodingKey,
    },
}

/// One configured provider, resolved.
pub struct Provider {
    name: String,
    display_name: String,
    issuer: String,
    client_id: String,
    secret: Secret,
    scopes: Vec<String>,
    token_auth: TokenAuth,
    form_post: bool,
    microsoft_multi_tenant: bool,
    cache: Mutex<Option<(Discovered, String)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A sign-in request to send the browser to.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// Random, single use; comes back with the code.
    pub state: &'a str,
    /// Random; must come back inside the ID token.
    pub nonce: &'a str,
    /// The PKCE verifier; only its S256 challenge is sent now.
    pub verifier: &'a str,
    /// Where the provider sends the browser back.
    pub redirect_uri: &'a str,
    /// Whom to sign in, when the client knows (an e-mail).
    pub login_hint: Option<&'a str>,
}

/// The providers in use, and the HTTP client that talks to them.
#[derive(Debug)]
pub struct Oidc {
    http: reqwest::Client,
    providers: BTreeMap<String, Provider>,
}

impl Oidc {
    /// Resolves the configured providers (reading Apple keys) and builds the client.
    pub fn new(config: &OidcConfig) -> Result<Oidc, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("roi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::Config(format!("building the HTTP client: {e}")))?;
        let mut providers = BTreeMap::new();
        for (name, p) in &config.providers {
            providers.insert(name.clone(), resolve(name, p)?);
        }
        Ok(Oidc { http, providers })
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// The provider's discovery document and keys, from the cache when fresh (or, with
    /// `refetch_keys`, always fetched anew).
    async fn discovered(
        &self,
        p: &Provider,
        now: i64,
        refetch_keys: bool,
    ) -> Result<Discovered, OidcError> {
        let mut cache = p.cache.lock().await;
        if let Some((d, _)) = cache.as_ref()
            && now - d.fetched_at < CACHE_SECS
            && !refetch_keys
        {
            return Ok(d.clone());
        }
        let failed = |detail: String| OidcError::Provider {
            provider: p.name.clone(),
            detail,
        };
        let url = format!("{}/.well-known/openid-configuration", p.issuer);
        let doc: DiscoveryDocument = self.get_json(&url).await.map_err(failed)?;
        let issuer = doc.issuer.trim_end_matches('/');
        if issuer != p.issuer && !(p.microsoft_multi_tenant && issuer.contains("{tenantid}")) {
            return Err(failed(format!(
                "its discovery document names the issuer {issuer:?}, not {:?}",
                p.issuer
            )));
        }
        for endpoint in [
            &doc.authorization_endpoint,
            &doc.token_endpoint,
            &doc.jwks_uri,
        ] {
            check_url(endpoint).map_err(failed)?;
        }
        let keys = self.keys(&doc.jwks_uri).await.map_err(failed)?;
        let d = Discovered {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            keys,
            fetched_at: now,
        };
        *cache = Some((d.clone(), doc.jwks_uri));
        Ok(d)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| format!("GET {url}: unexpected answer: {e}"))
    }

    /// The signing keys at `url`; keys of types this build cannot use are skipped.
    async fn keys(&self, url: &str) -> Result<Vec<Jwk>, String> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet = self.get_json(url).await?;
        let keys: Vec<Jwk> = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect();
        if keys.is_empty() {
            return Err(format!("{url} holds no usable signing key"));
        }
        Ok(keys)
    }

    /// The URL of the provider's authorization endpoint for this sign-in.
    pub async fn authorization_url(
        &self,
        p: &Provider,
        request: &AuthRequest<'_>,
        now: i64,
    ) -> Result<String, OidcError> {
        let d = self.discovered(p, now, false).await?;
        let mut url =
            url::Url::parse(&d.authorization_endpoint).map_err(|e| OidcError::Provider {
                provider: p.name.clone(),
                detail: format!("authorization endpoint: {e}"),
            })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("scope", &p.scopes.join(" "))
                .append_pair("state", request.state)
                .append_pair("nonce", request.nonce)
                .append_pair("code_challenge", &pkce_challenge(request.verifier))
                .append_pair("code_challenge_method", "S256");
            if p.form_post {
                q.append_pair("response_mode", "form_post");
            }
            if let Some(hint) = request.login_hint {
                q.append_pair("login_hint", hint);
            }
        }
        Ok(url.into())
    }

    /// Exchanges an authorization code and validates the ID token that comes back.
    pub async fn exchange(
        &self,
        p: &Provider,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let d = self.discovered(p, now, false).await?;
        let secret = p.client_secret(now)?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(&d.token_endpoint);
        match p.token_auth {
            TokenAuth::ClientSecretBasic => {
                request = request.basic_auth(form_encode(&p.client_id), Some(form_encode(&secret)));
            }
            TokenAuth::ClientSecretPost => {
                form.push(("client_id", &p.client_id));
                form.push(("client_secret", &secret));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Provider {
                provider: p.name.clone(),
                detail: format!("token endpoint: {e}"),
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| OidcError::Provider {
            provider: p.name.clone(),
            detail: format!("token endpoint answered HTTP {status} without JSON: {e}"),
        })?;
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or("unknown_error");
            let description = body["error_description"].as_str().unwrap_or("");
            return Err(OidcError::Rejected {
                provider: p.name.clone(),
                detail: format!("the code was refused ({error}: {description})"),
            });
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Provider {
                provider: p.name.clone(),
                detail: "the token endpoint returned no id_token (is `openid` among the scopes?)"
                    .to_owned(),
            })?;
        let keys = match key_for(&d.keys, id_token) {
            Some(_) => d.keys,
            // A key this cache has not seen: the provider may have rotated; refetch once.
            None => self.discovered(p, now, true).await?.keys,
        };
        validate_id_token(p, &keys, id_token, nonce).map_err(|detail| OidcError::Rejected {
            provider: p.name.clone(),
            detail,
        })
    }
}

impl Provider {
    /// The name used in URLs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name to show on a login page.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether `iss` names this provider: the configured issuer, or for a multi-tenant
    /// Microsoft app any tenant's.
    pub fn accepts_issuer(&self, iss: &str) -> bool {
        let iss = iss.trim_end_matches('/');
        iss == self.issuer
            || (self.microsoft_multi_tenant
                && iss
                    .strip_prefix("https://login.microsoftonline.com/")
                    .and_then(|rest| rest.strip_suffix("/v2.0"))
                    .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/')))
    }

    /// Whether the provider answers with a form POST (Apple).
    pub fn form_post(&self) -> bool {
        self.form_post
    }

    fn client_secret(&self, now: i64) -> Result<String, OidcError> {
        match &self.secret {
            Secret::Static(s) => Ok(s.clone()),
            Secret::Apple {
                team_id,
                key_id,
                key,
            } => {
                #[derive(Serialize)]
                struct AppleSecret<'a> {
                    iss: &'a str,
                    iat: i64,
                    exp: i64,
                    aud: &'a str,
                    sub: &'a str,
                }
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(key_id.clone());
                let claims = AppleSecret {
                    iss: team_id,
                    iat: now,
                    exp: now + 300,
                    aud: "https://appleid.apple.com",
                    sub: &self.client_id,
                };
                jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| OidcError::Config(format!("signing the Apple client secret: {e}")))
            }
        }
    }
}

fn resolve(name: &str, p: &ProviderConfig) -> Result<Provider, OidcError> {
    let issuer = issuer_of(p).map_err(OidcError::Config)?;
    let secret = match (&p.client_secret, p.preset) {
        (Some(s), _) => Secret::Static(s.clone()),
        (None, Preset::Apple) => {
            let file = p.apple_private_key_file.as_deref().unwrap_or("");
            let pem = std::fs::read(file).map_err(|e| {
                OidcError::Config(format!(
                    "serve.oidc.providers.{name}.apple_private_key_file {file:?}: {e}"
                ))
            })?;
            let key = EncodingKey::from_ec_pem(&pem).map_err(|e| {
                OidcError::Config(format!(
                    "serve.oidc.providers.{name}.apple_private_key_file {file:?}: not a P-256 PEM key: {e}"
                ))
            })?;
            Secret::Apple {
                team_id: p.apple_team_id.clone().unwrap_or_default(),
                key_id: p.apple_key_id.clone().unwrap_or_default(),
                key,
            }
        }
        (None, _) => {
            return Err(OidcError::Config(format!(
                "serve.oidc.providers.{name}.client_secret: must be set"
            )));
        }
    };
    let default_scopes: &[&str] = match p.preset {
        Preset::Apple => &["openid", "email", "name"],
        _ => &["openid", "email", "profile"],
    };
    let mut scopes = p
        .scopes
        .clone()
        .unwrap_or_else(|| default_scopes.iter().map(|s| s.to_string()).collect());
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let display_name = p.display_name.clone().unwrap_or_else(|| {
        match p.preset {
            Preset::Google => "Google",
            Preset::Microsoft => "Microsoft",
            Preset::Apple => "Apple",
            Preset::Generic => name,
        }
        .to_owned()
    });
    Ok(Provider {
        name: name.to_owned(),
        display_name,
        issuer,
        client_id: p.client_id.clone(),
        secret,
        scopes,
        token_auth: p.token_auth.unwrap_or(match p.preset {
            Preset::Apple => TokenAuth::ClientSecretPost,
            _ => TokenAuth::ClientSecretBasic,
        }),
        form_post: p.preset == Preset::Apple,
        microsoft_multi_tenant: p.preset == Preset::Microsoft
            && MICROSOFT_MULTI.contains(&p.tenant.as_deref().unwrap_or("common")),
        cache: Mutex::new(None),
    })
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The S256 PKCE challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Algorithms an ID token may be signed with: asymmetric only (a provider's shared
/// secret is also the client's, so an HMAC-signed token proves nothing).
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn key_for<'k>(keys: &'k [Jwk], token: &str) -> Option<&'k Jwk> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    match &header.kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    iss: String,
    aud: serde_json::Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// A boolean, or (Apple) the string "true" / "false".
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
    /// Microsoft's tenant id (multi-tenant issuers name it).
    #[serde(default)]
    tid: Option<String>,
}

/// Validates an ID token against the provider's keys and this sign-in's nonce.
fn validate_id_token(
    p: &Provider,
    keys: &[Jwk],
    token: &str,
    nonce: &str,
) -> Result<Identity, String> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| format!("the ID token is malformed: {e}"))?;
    if !ASYMMETRIC.contains(&header.alg) {
        return Err(format!(
            "the ID token's algorithm {:?} is not accepted",
            header.alg
        ));
    }
    let jwk = key_for(keys, token)
        .ok_or("the ID token is signed by a key the provider does not publish")?;
    let key =
        DecodingKey::from_jwk(jwk).map_err(|e| format!("the provider's key is unusable: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS;
    validation.set_audience(&[&p.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    if !p.microsoft_multi_tenant {
        validation.set_issuer(&[&p.issuer]);
    }
    let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
        .map_err(|e| format!("the ID token is invalid: {e}"))?
        .claims;
    if p.microsoft_multi_tenant {
        let expected = claims
            .tid
            .as_deref()
            .map(|tid| format!("https://login.microsoftonline.com/{tid}/v2.0"));
        if expected.as_deref() != Some(claims.iss.as_str()) {
            return Err(format!(
                "the ID token's issuer {:?} is not its tenant's",
                claims.iss
            ));
        }
    }
    let audiences = match &claims.aud {
        serde_json::Value::Array(a) => a.len(),
        _ => 1,
    };
    if audiences > 1 && claims.azp.as_deref() != Some(p.client_id.as_str()) {
        return Err("the ID token has several audiences and was not issued to this client".into());
    }
    let sent = claims.nonce.as_deref().unwrap_or("");
    if !crate::auth::secret::same(sent.as_bytes(), nonce.as_bytes()) {
        return Err("the ID token's nonce is not this sign-in's (a replayed token?)".into());
    }
    let email_verified = match &claims.email_verified {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Identity {
        subject: claims.sub,
        email: claims.email.map(|e| e.trim().to_lowercase()),
        email_verified,
        name: claims.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn provider() -> Provider {
        resolve(
            "test",
            &ProviderConfig {
                preset: Preset::Generic,
                issuer: Some("https://id.example.com/".into()),
                client_id: "roi".into(),
                client_secret: Some("s3cret".into()),
                scopes: None,
                token_auth: None,
                tenant: None,
                apple_team_id: None,
                apple_key_id: None,
                apple_private_key_file: None,
                display_name: None,
            },
        )
        .expect("resolves")
    }

    struct Signer {
        pkcs8: Vec<u8>,
        jwk: Jwk,
    }

    fn signer(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("key")
            .as_ref()
            .to_vec();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("pair");
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }))
        .expect("jwk");
        Signer { pkcs8, jwk }
    }

    fn id_token(s: &Signer, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&s.pkcs8)).expect("sign")
    }

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": "https://id.example.com", "aud": "roi", "sub": "u-1", "iat": now,
            "exp": now + 300, "nonce": "n-1", "email": "Ann@Example.com",
            "email_verified": "true", "name": "Ann",
        })
    }

    #[test]
    fn a_good_id_token_gives_the_identity() {
        let p = provider();
        let s = signer("k1");
        let now = crate::unix_now();
        let token = id_token(&s, "k1", claims(now));
        let id = validate_id_token(&p, std::slice::from_ref(&s.jwk), &token, "n-1").expect("valid");
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.email.as_deref(), Some("ann@example.com"));
        assert!(id.email_verified, "Apple's string form counts");
    }

    #[test]
    fn forged_replayed_and_misdirected_id_tokens_are_refused() {
        let p = provider();
        let s = signer("k1");
        let other = signer("k1");
        let now = crate::unix_now();
        let keys = [s.jwk.clone()];
        let check = |token: &str, nonce: &str| validate_id_token(&p, &keys, token, nonce);
        let good = id_token(&s, "k1", claims(now));
        assert!(check(&good, "n-2").expect_err("nonce").contains("nonce"));
        let forged = id_token(&other, "k1", claims(now));
        assert!(
            check(&forged, "n-1")
                .expect_err("signature")
                .contains("invalid")
        );
        let unknown = id_token(&s, "k9", claims(now));
        assert!(
            check(&unknown, "n-1")
                .expect_err("kid")
                .contains("does not publish")
        );
        for (field, value) in [
            ("aud", serde_json::json!("someone-else")),
            ("iss", serde_json::json!("https://evil.example.com")),
            ("exp", serde_json::json!(now - 3600)),
        ] {
            let mut c = claims(now);
            c[field] = value;
            let e = check(&id_token(&s, "k1", c), "n-1").expect_err(field);
            assert!(e.contains("invalid"), "{field}: {e}");
        }
        let mut c = claims(now);
        c["aud"] = serde_json::json!(["roi", "other"]);
        let e = check(&id_token(&s, "k1", c), "n-1").expect_err("azp");
        assert!(e.contains("several audiences"), "{e}");
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(now),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("hs256");
        assert!(
            check(&hs, "n-1")
                .expect_err("hmac")
                .contains("not accepted")
        );
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn presets_fill_in_issuers_and_bad_settings_are_named() {
        let base = ProviderConfig {
            preset: Preset::Google,
            issuer: None,
            client_id: "id".into(),
            client_secret: Some("s".into()),
            scopes: None,
            token_auth: None,
            tenant: None,
            apple_team_id: None,
            apple_key_id: None,
            apple_private_key_file: None,
            display_name: None,
        };
        let g = resolve("google", &base).expect("google");
        assert_eq!(g.issuer, "https://accounts.google.com");
        assert_eq!(g.scopes, ["openid", "email", "profile"]);
        let ms = resolve(
            "ms",
            &ProviderConfig {
                preset: Preset::Microsoft,
                ..base.clone()
            },
        )
        .expect("microsoft");
        assert_eq!(ms.issuer, "https://login.microsoftonline.com/common/v2.0");
        assert!(ms.microsoft_multi_tenant);
        let config = |p: ProviderConfig| OidcConfig {
            providers: [("x".to_owned(), p)].into_iter().collect(),
        };
        let e = config(ProviderConfig {
            preset: Preset::Generic,
            ..base.clone()
        })
        .validate()
        .expect_err("generic needs an issuer");
        assert!(e.contains("serve.oidc.providers.x.issuer"), "{e}");
        let e = config(ProviderConfig {
            preset: Preset::Generic,
            issuer: Some("http://id.example.com".into()),
            ..base.clone()
        })
        .validate()
        .expect_err("http");
        assert!(e.contains("must be https"), "{e}");
        let e = config(ProviderConfig {
            preset: Preset::Apple,
            client_secret: None,
            ..base.clone()
        })
        .validate()
        .expect_err("apple keys");
        assert!(e.contains("apple_team_id"), "{e}");
        let masked = config(base).masked();
        assert_eq!(masked.providers["x"].client_secret.as_deref(), Some("****"));
    }
}
