//! `xueji pki init`: the development PKI of a provincial node and its token keys.

use std::path::Path;

use xueji_auth::TokenSigner;

pub const TOKEN_SIGNING_KEY: &str = "token-signing.key";
pub const TOKEN_VERIFYING_KEY: &str = "token-verifying.pub";

/// Writes the CA, the node and operator certificates and a token key pair into `dir`.
/// Refuses to overwrite an existing PKI.
pub fn init(dir: &Path, province: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dir.join("ca.pem").exists(),
        "{} already holds a PKI (ca.pem); remove it or choose another folder",
        dir.display()
    );
    xueji_pki::init_province(dir, province)?;
    let signer = TokenSigner::generate();
    write_private(&dir.join(TOKEN_SIGNING_KEY), &signer.to_text())?;
    std::fs::write(dir.join(TOKEN_VERIFYING_KEY), signer.verifier().to_text())?;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

pub fn signer(dir: &Path) -> anyhow::Result<TokenSigner> {
    let path = dir.join(TOKEN_SIGNING_KEY);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(TokenSigner::from_text(&text)?)
}
