//! Tokens minted from a node's signing key, as an operator tool holds them.

use xueji_auth::{Authority, Grant, Level, Role, TokenSigner, default_audience};

/// A token valid for 12 hours, meant for the signer's own node and the node of the
/// jurisdiction's province (see [`default_audience`]).
pub fn mint(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
) -> anyhow::Result<String> {
    let audience = default_audience(signer.issuer(), level, jurisdiction);
    mint_for(signer, user, level, jurisdiction, role, audience)
}

/// Like [`mint`], for the nodes of `audience`.
pub fn mint_for(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
    audience: Vec<Authority>,
) -> anyhow::Result<String> {
    mint_at(
        signer,
        user,
        level,
        jurisdiction,
        role,
        audience,
        chrono::Utc::now(),
    )
}

/// As [`mint_for`], issued at `now` (a node whose clock was moved forward, in the demo).
pub fn mint_at(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
    audience: Vec<Authority>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    Ok(signer.mint(
        &Grant {
            user: user.into(),
            level,
            jurisdiction: jurisdiction.into(),
            role,
            audience,
        },
        now,
        chrono::Duration::hours(12),
    )?)
}
