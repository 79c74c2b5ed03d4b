use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Caller, Jurisdiction, Level, Role};

const PREFIX: &str = "xj1";

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The operator's user name.
    pub sub: String,
    pub level: Level,
    /// A division code, a school code, or `000000` for the ministry.
    pub jurisdiction: String,
    pub role: Role,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send metadata `authorization: Bearer <token>`")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's signature is not valid for this node")]
    BadSignature,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token names an invalid scope: {0}")]
    BadScope(String),
    #[error("the key file is not valid: {0}")]
    BadKey(String),
}

/// Mints tokens with the node's private key.
#[derive(Debug)]
pub struct TokenSigner {
    key: SigningKey,
}

impl TokenSigner {
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Reads the base64 text written by [`TokenSigner::to_text`].
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let bytes = decode_key(text)?;
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    pub fn to_text(&self) -> String {
        format!("{}\n", URL_SAFE_NO_PAD.encode(self.key.to_bytes()))
    }

    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            key: self.key.verifying_key(),
        }
    }

    /// Signs claims after checking that they name a valid scope.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        Jurisdiction::for_level(claims.level, &claims.jurisdiction).map_err(AuthError::BadScope)?;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims encode"));
        let signed = format!("{PREFIX}.{payload}");
        let signature = self.key.sign(signed.as_bytes());
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// Checks tokens with the node's public key.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    key: VerifyingKey,
}

impl TokenVerifier {
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let bytes = decode_key(text)?;
        VerifyingKey::from_bytes(&bytes)
            .map(|key| Self { key })
            .map_err(|e| AuthError::BadKey(e.to_string()))
    }

    pub fn to_text(&self) -> String {
        format!("{}\n", URL_SAFE_NO_PAD.encode(self.key.to_bytes()))
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
                "unknown token version {prefix:?}"
            )));
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| AuthError::Malformed("signature is not 64 base64url bytes".into()))?;
        self.key
            .verify(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| AuthError::BadSignature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| AuthError::Malformed("claims are not valid JSON".into()))?;
        let expiry = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| AuthError::Malformed("expiry out of range".into()))?;
        if expiry <= now {
            return Err(AuthError::Expired(expiry));
        }
        let jurisdiction = Jurisdiction::for_level(claims.level, &claims.jurisdiction)
            .map_err(AuthError::BadScope)?;
        let caller = Caller {
            user: claims.sub,
            level: claims.level,
            jurisdiction,
            role: claims.role,
        };
        Ok((caller, expiry))
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], AuthError> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| AuthError::BadKey("expected 32 bytes in base64url".into()))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn claims(exp_in: Duration) -> Claims {
        let now = Utc::now();
        Claims {
            sub: "alice".into(),
            level: Level::County,
            jurisdiction: "350102".into(),
            role: Role::Approver,
            iat: now.timestamp(),
            exp: (now + exp_in).timestamp(),
        }
    }

    #[test]
    fn round_trip() {
        let signer = TokenSigner::generate();
        let token = signer.mint(&claims(Duration::hours(1))).unwrap();
        let caller = signer.verifier().verify(&token, Utc::now()).unwrap();
        assert_eq!(caller.user, "alice");
        assert_eq!(caller.role, Role::Approver);
        assert_eq!(caller.describe(), "county:350102/approver/alice");
    }

    #[test]
    fn keys_survive_their_text_form() {
        let signer = TokenSigner::generate();
        let again = TokenSigner::from_text(&signer.to_text()).unwrap();
        let verifier = TokenVerifier::from_text(&signer.verifier().to_text()).unwrap();
        let token = again.mint(&claims(Duration::hours(1))).unwrap();
        assert!(verifier.verify(&token, Utc::now()).is_ok());
    }

    #[test]
    fn refusals() {
        let signer = TokenSigner::generate();
        let verifier = signer.verifier();
        let expired = signer.mint(&claims(Duration::seconds(-1))).unwrap();
        assert!(matches!(
            verifier.verify(&expired, Utc::now()),
            Err(AuthError::Expired(_))
        ));

        let other = TokenSigner::generate()
            .mint(&claims(Duration::hours(1)))
            .unwrap();
        assert_eq!(
            verifier.verify(&other, Utc::now()),
            Err(AuthError::BadSignature)
        );

        // Changing the claims after signing breaks the signature.
        let token = signer.mint(&claims(Duration::hours(1))).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(Duration::hours(1));
        forged.level = Level::Province;
        forged.jurisdiction = "350000".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verifier.verify(&forged, Utc::now()),
            Err(AuthError::BadSignature)
        );

        assert!(matches!(
            verifier.verify("garbage", Utc::now()),
            Err(AuthError::Malformed(_))
        ));
        let mut bad_scope = claims(Duration::hours(1));
        bad_scope.jurisdiction = "350100".into();
        assert!(matches!(
            signer.mint(&bad_scope),
            Err(AuthError::BadScope(_))
        ));
    }
}
