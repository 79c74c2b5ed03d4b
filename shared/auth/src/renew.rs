use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};

use crate::{AuthError, Clock, Grant, TokenSigner};

/// The token a service presents when it calls a peer on its own behalf: minted again once half
/// its lifetime has passed, so that a federation runs for months on short-lived tokens.
#[derive(Debug)]
pub struct RenewingToken {
    signer: Arc<TokenSigner>,
    grant: Grant,
    clock: Clock,
    lifetime: Duration,
    current: RwLock<Minted>,
}

#[derive(Debug, Clone)]
struct Minted {
    token: Arc<str>,
    renew_at: DateTime<Utc>,
}

impl RenewingToken {
    /// Mints the first token now, so that a grant the signer may not make fails at start.
    pub fn new(
        signer: Arc<TokenSigner>,
        grant: Grant,
        clock: Clock,
        lifetime: Duration,
    ) -> Result<Self, AuthError> {
        let first = Self::mint(&signer, &grant, &clock, lifetime)?;
        Ok(Self {
            signer,
            grant,
            clock,
            lifetime,
            current: RwLock::new(first),
        })
    }

    fn mint(
        signer: &TokenSigner,
        grant: &Grant,
        clock: &Clock,
        lifetime: Duration,
    ) -> Result<Minted, AuthError> {
        let now = clock.now();
        Ok(Minted {
            token: signer.mint(grant, now, lifetime)?.into(),
            renew_at: now + lifetime / 2,
        })
    }

    /// The token to send now.
    pub fn current(&self) -> Arc<str> {
        let now = self.clock.now();
        {
            let current = self.current.read().expect("not poisoned");
            if now < current.renew_at {
                return current.token.clone();
            }
        }
        let mut current = self.current.write().expect("not poisoned");
        if now >= current.renew_at {
            // The grant was minted once already, so it cannot fail now; if it somehow did, the
            // old token serves until it expires and the peer says why.
            if let Ok(renewed) = Self::mint(&self.signer, &self.grant, &self.clock, self.lifetime) {
                *current = renewed;
            }
        }
        current.token.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authority, Level, Role, TokenVerifier};

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let signer = Arc::new(TokenSigner::generate(Authority::Province("35".into())));
        let mut verifier = TokenVerifier::new(vec![Authority::National]);
        verifier.trust(signer.public_key());
        let clock = Clock::system();
        let renewing = RenewingToken::new(
            signer,
            Grant {
                user: "service:identity-35".into(),
                level: Level::Province,
                jurisdiction: "350000".into(),
                role: Role::Operator,
                audience: vec![Authority::National],
            },
            clock.clone(),
            Duration::hours(12),
        )
        .unwrap();
        let first = renewing.current();
        assert_eq!(renewing.current(), first, "not renewed while young");
        // 30 days in steps of five hours: each step lands past the last renewal point.
        for _ in 0..144 {
            clock.advance(Duration::hours(5));
            let token = renewing.current();
            verifier
                .verify(&token, clock.now())
                .expect("the current token is always valid");
        }
        assert_ne!(renewing.current(), first);
        assert!(verifier.verify(&first, clock.now()).is_err());
    }
}
