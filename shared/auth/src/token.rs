//! Signed tokens: who acts, at which level and jurisdiction, issued by whom, for which nodes.
//!
//! Each authority signs with its own Ed25519 key: the national node ([`Authority::National`])
//! for the ministry (and, being above every province, for anyone), each province
//! ([`Authority::Province`]) for its own jurisdictions only. A token names its issuer (`iss`),
//! the nodes it is meant for (`aud`), the key that signed it (`kid`, so keys can be rotated),
//! and when it was issued, becomes valid and expires (`iat`, `nbf`, `exp`). Verifiers hold
//! public keys only, and refuse a token whose issuer may not grant what it says even when its
//! signature is valid.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Caller, Jurisdiction, Level, Role};

const PREFIX: &str = "xj2";

/// How far apart the clocks of the minting and the verifying node may be.
pub const CLOCK_SKEW: Duration = Duration::seconds(60);

/// The longest a token may live: a stolen token is worth a day at most.
pub const MAX_LIFETIME: Duration = Duration::hours(24);

/// A party that issues tokens and that tokens are meant for: the national node, or a province's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Authority {
    National,
    /// A province, by its 2-digit code.
    Province(String),
}

impl Authority {
    /// May a token this authority signs grant `level` over `jurisdiction`? The national node
    /// may grant anything; a province only jurisdictions inside itself, never the nation.
    pub fn may_grant(&self, jurisdiction: &Jurisdiction) -> Result<(), String> {
        match (self, jurisdiction.province_digits()) {
            (Self::National, _) => Ok(()),
            (Self::Province(own), Some(province)) if own == province => Ok(()),
            (Self::Province(own), Some(province)) => Err(format!(
                "province {own} may not grant a jurisdiction in province {province}"
            )),
            (Self::Province(own), None) => Err(format!(
                "province {own} may not grant the whole nation (only the national node may)"
            )),
        }
    }
}

impl std::fmt::Display for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::National => f.write_str("national"),
            Self::Province(code) => write!(f, "province/{code}"),
        }
    }
}

impl std::str::FromStr for Authority {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.strip_prefix("province/") {
            None if text == "national" => Ok(Self::National),
            Some(code) if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Self::Province(code.to_owned()))
            }
            _ => Err(format!(
                "{text:?} is not an authority (national, or province/ and 2 digits)"
            )),
        }
    }
}

impl TryFrom<String> for Authority {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Authority> for String {
    fn from(authority: Authority) -> Self {
        authority.to_string()
    }
}

/// The nodes an operator's token is for unless told otherwise: the issuer's own node, and the
/// node of the province its jurisdiction lies in.
pub fn default_audience(issuer: &Authority, level: Level, jurisdiction: &str) -> Vec<Authority> {
    let mut audience = vec![issuer.clone()];
    let province = Jurisdiction::for_level(level, jurisdiction)
        .ok()
        .and_then(|jurisdiction| jurisdiction.province_digits().map(str::to_owned));
    if let Some(province) = province.map(Authority::Province)
        && !audience.contains(&province)
    {
        audience.push(province);
    }
    audience
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who signed it.
    pub iss: Authority,
    /// The nodes it is meant for; a node refuses tokens not meant for it.
    pub aud: Vec<Authority>,
    /// The signing key's id.
    pub kid: String,
    /// The operator's user name (or `service:<name>` for a service acting on its own behalf).
    pub sub: String,
    pub level: Level,
    /// A division code, a school code, or `000000` for the ministry.
    pub jurisdiction: String,
    pub role: Role,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// What a token grants, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub level: Level,
    /// A division code, a school code, or `000000` (or empty) for the ministry.
    pub jurisdiction: String,
    pub role: Role,
    pub audience: Vec<Authority>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send metadata `authorization: Bearer <token>`")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token was signed with key {0:?}, which this node does not know")]
    UnknownKey(String),
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("the token lives longer than {} hours, the most allowed", MAX_LIFETIME.num_hours())]
    TooLong,
    #[error("the token is meant for {0}, not for this node ({1})")]
    WrongAudience(String, String),
    #[error("the token's issuer may not grant its scope: {0}")]
    IssuerMayNot(String),
    #[error("the token names an invalid scope: {0}")]
    BadScope(String),
    #[error("the key file is not valid: {0}")]
    BadKey(String),
}

/// A verifying key with the authority it belongs to and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub issuer: Authority,
    pub kid: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads the text written by [`PublicKey::to_text`].
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let fields = key_fields(text)?;
        let bytes = decode_key(field(&fields, "public")?)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| AuthError::BadKey(e.to_string()))?;
        let issuer: Authority = field(&fields, "issuer")?
            .parse()
            .map_err(AuthError::BadKey)?;
        let kid = field(&fields, "key_id")?.to_owned();
        if kid != key_id(&issuer, &key) {
            return Err(AuthError::BadKey(format!(
                "key_id {kid} does not belong to this key"
            )));
        }
        Ok(Self { issuer, kid, key })
    }

    /// Whether `signature` (base64url) is this key's over `statement`.
    pub fn verifies_statement(&self, statement: &[u8], signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .is_some_and(|bytes| {
                self.key
                    .verify(statement, &Signature::from_bytes(&bytes))
                    .is_ok()
            })
    }

    pub fn to_text(&self) -> String {
        format!(
            "# Xueji token verifying key (public)\nissuer = {}\nkey_id = {}\npublic = {}\n",
            self.issuer,
            self.kid,
            URL_SAFE_NO_PAD.encode(self.key.to_bytes())
        )
    }
}

/// A key id: the issuer and the first bytes of the public key, so that a rotated key gets a new
/// id without any counter to keep.
fn key_id(issuer: &Authority, key: &VerifyingKey) -> String {
    format!("{issuer}#{}", URL_SAFE_NO_PAD.encode(&key.to_bytes()[..9]))
}

/// Mints tokens with an authority's private key.
#[derive(Debug)]
pub struct TokenSigner {
    issuer: Authority,
    key: SigningKey,
}

impl TokenSigner {
    pub fn generate(issuer: Authority) -> Self {
        Self {
            issuer,
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Reads the text written by [`TokenSigner::to_text`].
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let fields = key_fields(text)?;
        Ok(Self {
            issuer: field(&fields, "issuer")?
                .parse()
                .map_err(AuthError::BadKey)?,
            key: SigningKey::from_bytes(&decode_key(field(&fields, "secret")?)?),
        })
    }

    pub fn to_text(&self) -> String {
        format!(
            "# Xueji token signing key: secret, readable by its node only\nissuer = {}\n\
             key_id = {}\nsecret = {}\n",
            self.issuer,
            self.kid(),
            URL_SAFE_NO_PAD.encode(self.key.to_bytes())
        )
    }

    pub fn issuer(&self) -> &Authority {
        &self.issuer
    }

    pub fn kid(&self) -> String {
        key_id(&self.issuer, &self.key.verifying_key())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            issuer: self.issuer.clone(),
            kid: self.kid(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `grant` for `lifetime` from `now`, after checking that it names a valid scope
    /// this issuer may grant.
    pub fn mint(
        &self,
        grant: &Grant,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> Result<String, AuthError> {
        let jurisdiction = Jurisdiction::for_level(grant.level, &grant.jurisdiction)
            .map_err(AuthError::BadScope)?;
        self.issuer
            .may_grant(&jurisdiction)
            .map_err(AuthError::IssuerMayNot)?;
        if lifetime > MAX_LIFETIME {
            return Err(AuthError::TooLong);
        }
        if grant.audience.is_empty() {
            return Err(AuthError::Malformed("a token needs an audience".into()));
        }
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: grant.audience.clone(),
            kid: self.kid(),
            sub: grant.user.clone(),
            level: grant.level,
            jurisdiction: jurisdiction.as_string(),
            role: grant.role,
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + lifetime).timestamp(),
        })
    }

    /// Signs a statement other than a token (a node's audit chain head, say): the signature,
    /// base64url.
    pub fn sign_statement(&self, statement: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(statement).to_bytes())
    }

    /// Signs claims exactly as given: for tests that need tokens a node must refuse.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).map_err(|e| AuthError::Malformed(e.to_string()))?);
        let signed = format!("{PREFIX}.{payload}");
        let signature = self.key.sign(signed.as_bytes());
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// Checks tokens meant for one node with the public keys of the authorities it trusts.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, PublicKey>,
    audiences: Vec<Authority>,
}

impl TokenVerifier {
    /// A verifier for a node that is every one of `audiences` (a standalone node is the
    /// national node and a province), trusting no key yet.
    pub fn new(audiences: Vec<Authority>) -> Self {
        Self {
            keys: HashMap::new(),
            audiences,
        }
    }

    /// The trusted key with id `kid`.
    pub fn key(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.get(kid)
    }

    /// Trusts `key` for tokens its authority issues.
    pub fn trust(&mut self, key: PublicKey) -> &mut Self {
        self.keys.insert(key.kid.clone(), key);
        self
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Caller, AuthError> {
        self.verify_until(token, now).map(|(caller, _)| caller)
    }

    /// Like [`verify`](Self::verify), also answering when the token expires.
    pub fn verify_until(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(Caller, DateTime<Utc>), AuthError> {
        let (signed, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| AuthError::Malformed("expected three dot-separated parts".into()))?;
        let (prefix, payload) = signed
            .split_once('.')
            .ok_or_else(|| AuthError::Malformed("expected three dot-separated parts".into()))?;
        if prefix != PREFIX {
            return Err(AuthError::Malformed(format!(
                "unknown token version {prefix:?} (expected {PREFIX})"
            )));
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| AuthError::Malformed("signature is not 64 base64url bytes".into()))?;
        // The claims are read before the signature is checked only to learn which key to check
        // it with; nothing else of them is believed until it is.
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| AuthError::Malformed("claims are not valid JSON".into()))?;
        let key = self
            .keys
            .get(&claims.kid)
            .ok_or_else(|| AuthError::UnknownKey(claims.kid.clone()))?;
        key.key
            .verify(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| AuthError::BadSignature)?;
        if key.issuer != claims.iss {
            return Err(AuthError::IssuerMayNot(format!(
                "the key of {} signed a token naming {} as its issuer",
                key.issuer, claims.iss
            )));
        }
        if !claims.aud.iter().any(|aud| self.audiences.contains(aud)) {
            let names = |list: &[Authority]| {
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(AuthError::WrongAudience(
                names(&claims.aud),
                names(&self.audiences),
            ));
        }
        let time = |seconds: i64, what: &str| {
            DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| AuthError::Malformed(format!("{what} out of range")))
        };
        let issued = time(claims.iat, "iat")?;
        let not_before = time(claims.nbf, "nbf")?;
        let expiry = time(claims.exp, "exp")?;
        if expiry - issued > MAX_LIFETIME || expiry < issued {
            return Err(AuthError::TooLong);
        }
        if not_before.max(issued) > now + CLOCK_SKEW {
            return Err(AuthError::NotYetValid(not_before.max(issued)));
        }
        if expiry + CLOCK_SKEW <= now {
            return Err(AuthError::Expired(expiry));
        }
        let jurisdiction = Jurisdiction::for_level(claims.level, &claims.jurisdiction)
            .map_err(AuthError::BadScope)?;
        claims
            .iss
            .may_grant(&jurisdiction)
            .map_err(AuthError::IssuerMayNot)?;
        let caller = Caller {
            user: claims.sub,
            level: claims.level,
            jurisdiction,
            role: claims.role,
        };
        Ok((caller, expiry + CLOCK_SKEW))
    }
}

fn key_fields(text: &str) -> Result<HashMap<&str, &str>, AuthError> {
    let mut fields = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| AuthError::BadKey(format!("line {line:?} is not `name = value`")))?;
        fields.insert(name.trim(), value.trim());
    }
    Ok(fields)
}

fn field<'a>(fields: &HashMap<&str, &'a str>, name: &str) -> Result<&'a str, AuthError> {
    fields
        .get(name)
        .copied()
        .ok_or_else(|| AuthError::BadKey(format!("no `{name} = ...` line")))
}

fn decode_key(text: &str) -> Result<[u8; 32], AuthError> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| AuthError::BadKey("expected 32 bytes in base64url".into()))
}

#[cfg(test)]
mod tests;
