//! `xueji pki init`: the development PKI of a node or of a whole federation, with token keys.

use std::path::Path;

use xueji_auth::TokenSigner;

pub const TOKEN_SIGNING_KEY: &str = "token-signing.key";
pub const TOKEN_VERIFYING_KEY: &str = "token-verifying.pub";

/// Writes the CA, the node and operator certificates and a token key pair into `dir`, for a
/// single node that plays the national node and a province at once. Refuses to overwrite an
/// existing PKI.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    refuse_existing(dir, "ca.pem")?;
    xueji_pki::init_single(dir)?;
    write_token_keys(dir, &TokenSigner::generate())
}

/// Writes a federation's PKI under `dir`: `root/`, `national/` and one folder per province,
/// each node folder ready to be a node's `pki_dir`.
///
/// The development federation shares one token key: which province a token may act for is
/// bound by the certificate it arrives with (a province's certificate acts only for that
/// province, and only national certificates act for the whole nation).
pub fn init_federation(dir: &Path, provinces: &[&str]) -> anyhow::Result<()> {
    refuse_existing(dir, "root/ca.pem")?;
    xueji_pki::init_federation(dir, provinces)?;
    let signer = TokenSigner::generate();
    write_token_keys(&dir.join("national"), &signer)?;
    for province in provinces {
        write_token_keys(&dir.join(province), &signer)?;
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

fn write_token_keys(dir: &Path, signer: &TokenSigner) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(TOKEN_SIGNING_KEY);
    std::fs::write(&path, signer.to_text())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(dir.join(TOKEN_VERIFYING_KEY), signer.verifier().to_text())?;
    Ok(())
}

pub fn signer(dir: &Path) -> anyhow::Result<TokenSigner> {
    let path = dir.join(TOKEN_SIGNING_KEY);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(TokenSigner::from_text(&text)?)
}

/// The certificate stem a service presents as a client: its own certificate when the PKI has
/// one, otherwise the node's.
pub fn client_stem(dir: &Path, service: &str) -> String {
    if dir.join(format!("{service}.pem")).exists() {
        service.to_owned()
    } else {
        xueji_pki::files::NODE.to_owned()
    }
}
