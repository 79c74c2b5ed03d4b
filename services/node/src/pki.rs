//! `xueji pki init`: the development PKI of a node or of a whole federation, with token keys.
//!
//! The national node's folder also holds `index-key.secret` (0600), the key the national index
//! digests ID numbers and names with; no province's folder has it.
//!
//! Token keys, per node folder:
//! - `token-signing.key`: the node's own authority's signing key (the national node's, or its
//!   province's), 0600;
//! - `token-issuers/*.pub`: the public keys of the authorities whose tokens the node accepts:
//!   the national node's and its own province's on a provincial node; the national node's and
//!   every province's on the national node.

use std::path::Path;

use anyhow::Context;
use xueji_auth::{Authority, PublicKey, TokenSigner, TokenVerifier};

pub const TOKEN_SIGNING_KEY: &str = "token-signing.key";
pub const TOKEN_ISSUERS: &str = "token-issuers";

/// Writes the CA, the node and operator certificates and a token key into `dir`, for a single
/// node that plays the national node and a province at once. Refuses to overwrite an existing
/// PKI.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    refuse_existing(dir, "ca.pem")?;
    xueji_pki::init_single(dir)?;
    let signer = TokenSigner::generate(Authority::National);
    write_token_keys(dir, &signer, &[signer.public_key()])?;
    write_index_key(dir)
}

/// The national index key (`index-key.secret`, 0600): only the national node's folder holds it.
fn write_index_key(dir: &Path) -> anyhow::Result<()> {
    let key = xueji_national::index_key::IndexKey::generate();
    xueji_pki::write_secret(
        &dir.join(xueji_national::index_key::FILE),
        key.to_text().as_bytes(),
    )?;
    Ok(())
}

/// Writes a federation's PKI under `dir`: `authorities/` (the CA keys, which no node reads),
/// `national/` and one folder per province, each node folder ready to be a node's `pki_dir`,
/// each with a token key of its own authority.
pub fn init_federation(dir: &Path, provinces: &[&str]) -> anyhow::Result<()> {
    refuse_existing(dir, "national/ca.pem")?;
    xueji_pki::init_federation(dir, provinces)?;
    let national = TokenSigner::generate(Authority::National);
    let provincial: Vec<TokenSigner> = provinces
        .iter()
        .map(|province| TokenSigner::generate(Authority::Province((*province).to_owned())))
        .collect();
    let mut trusted_nationally = vec![national.public_key()];
    trusted_nationally.extend(provincial.iter().map(TokenSigner::public_key));
    write_token_keys(&dir.join("national"), &national, &trusted_nationally)?;
    write_index_key(&dir.join("national"))?;
    for (province, signer) in provinces.iter().zip(&provincial) {
        write_token_keys(
            &dir.join(province),
            signer,
            &[national.public_key(), signer.public_key()],
        )?;
    }
    Ok(())
}

fn refuse_existing(dir: &Path, marker: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dir.join(marker).exists(),
        "{} already holds a PKI ({marker}); remove it or choose another folder",
        dir.display()
    );
    Ok(())
}

fn write_token_keys(dir: &Path, signer: &TokenSigner, trusted: &[PublicKey]) -> anyhow::Result<()> {
    xueji_pki::write_secret(&dir.join(TOKEN_SIGNING_KEY), signer.to_text().as_bytes())?;
    let issuers = dir.join(TOKEN_ISSUERS);
    std::fs::create_dir_all(&issuers)?;
    for key in trusted {
        let name = key.issuer.to_string().replace('/', "-");
        xueji_pki::write_public(
            &issuers.join(format!("{name}.pub")),
            key.to_text().as_bytes(),
        )?;
    }
    Ok(())
}

/// The node's token signing key.
pub fn signer(dir: &Path) -> anyhow::Result<TokenSigner> {
    let path = dir.join(TOKEN_SIGNING_KEY);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    TokenSigner::from_text(&text).with_context(|| format!("{}", path.display()))
}

/// A verifier of tokens meant for `audiences`, trusting every key in `dir/token-issuers/`.
pub fn verifier(dir: &Path, audiences: Vec<Authority>) -> anyhow::Result<TokenVerifier> {
    let folder = dir.join(TOKEN_ISSUERS);
    let mut verifier = TokenVerifier::new(audiences);
    let mut trusted = 0;
    let entries = std::fs::read_dir(&folder)
        .with_context(|| format!("cannot read the trusted token keys in {}", folder.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "pub") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            verifier
                .trust(PublicKey::from_text(&text).with_context(|| format!("{}", path.display()))?);
            trusted += 1;
        }
    }
    anyhow::ensure!(
        trusted > 0,
        "{} holds no token key (*.pub): the node could accept no caller",
        folder.display()
    );
    Ok(verifier)
}
