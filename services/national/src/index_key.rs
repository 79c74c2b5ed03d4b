//! The national index key: the secret the index digests resident ID numbers and name digests
//! with, so that its tables never hold the values (PIPL minimisation). Only the national node
//! holds it; a province, a database dump or a stolen backup without it cannot tell which ID
//! number a digest stands for by hashing candidates (18-digit ID numbers are few enough to
//! enumerate; an unkeyed digest would hide nothing).
//!
//! The file (`index-key.secret` in the national node's PKI folder, 0600) holds 64 hex
//! characters. Losing it makes every stored digest unmatchable; replacing it needs the
//! provinces to re-send their index (see ARCHITECTURE, "National index minimisation").

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use xueji_codes::ResidentId;

/// The file of the key, in the national node's PKI folder.
pub const FILE: &str = "index-key.secret";

/// A keyed digest of a resident ID number, as the index stores it (64 hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdDigest(String);

impl IdDigest {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone)]
pub struct IndexKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexKey({})", self.fingerprint())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexKeyError {
    #[error("cannot read the national index key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the national index key {path} must hold 64 hex characters (32 random bytes); \
         `xueji pki init` writes one"
    )]
    Malformed { path: String },
}

impl IndexKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self { secret }
    }

    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// The key as its file holds it.
    pub fn to_text(&self) -> String {
        hex::encode(self.secret)
    }

    pub fn load(path: &Path) -> Result<Self, IndexKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| IndexKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let malformed = || IndexKeyError::Malformed {
            path: path.display().to_string(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
        let secret: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self { secret })
    }

    fn mac(&self, purpose: &[u8], value: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        // The purpose separates the digests of different kinds of value.
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The keyed digest of a resident ID number (normalised: upper-case check character).
    pub fn id_digest(&self, id: &ResidentId) -> IdDigest {
        self.id_digest_of_text(id.as_str())
    }

    /// The keyed digest of an ID number already checked by the caller (the re-keying of stored
    /// values, which were checked when they were stored).
    pub fn id_digest_of_text(&self, id: &str) -> IdDigest {
        IdDigest(hex::encode(
            self.mac(b"resident-id", id.trim().to_uppercase().as_bytes()),
        ))
    }

    /// The keyed form of a province's name digest (SHA-256 of canonical name, gender and birth
    /// date, as 64 hex characters): equal inputs stay equal, so duplicates still meet.
    pub fn name_digest(&self, unkeyed_hex: &str) -> String {
        hex::encode(self.mac(b"name-digest", unkeyed_hex.as_bytes()))
    }

    /// The keyed form of a stored unkeyed name digest (its 32 bytes); empty stays empty.
    pub fn name_digest_of_bytes(&self, unkeyed: &[u8]) -> Vec<u8> {
        if unkeyed.is_empty() {
            return Vec::new();
        }
        self.mac(b"name-digest", hex::encode(unkeyed).as_bytes())
            .to_vec()
    }

    /// What the index remembers of the key it was keyed with: a digest of nothing, which tells
    /// two keys apart and reveals nothing of either.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.mac(b"fingerprint", b"")[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_stable_and_separated() {
        let one = IndexKey::from_secret([1; 32]);
        let two = IndexKey::from_secret([2; 32]);
        let id: ResidentId = "11010519491231002X".parse().unwrap();
        assert_eq!(
            one.id_digest(&id),
            one.id_digest_of_text("11010519491231002x")
        );
        assert_ne!(one.id_digest(&id), two.id_digest(&id));
        assert!(!one.id_digest(&id).as_str().contains("110105"));
        let name = "a".repeat(64);
        assert_eq!(one.name_digest(&name).len(), 64);
        assert_ne!(one.name_digest(&name), two.name_digest(&name));
        assert_eq!(
            hex::decode(one.name_digest(&name)).unwrap(),
            one.name_digest_of_bytes(&hex::decode(&name).unwrap())
        );
        assert!(one.name_digest_of_bytes(&[]).is_empty());
        assert_ne!(one.fingerprint(), two.fingerprint());
    }

    #[test]
    fn a_key_file_round_trips_and_a_bad_one_says_so() {
        let dir = std::env::temp_dir().join(format!("xueji-index-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = IndexKey::generate();
        std::fs::write(dir.join(FILE), key.to_text()).unwrap();
        assert_eq!(
            IndexKey::load(&dir.join(FILE)).unwrap().fingerprint(),
            key.fingerprint()
        );
        std::fs::write(dir.join(FILE), "abc").unwrap();
        let error = IndexKey::load(&dir.join(FILE)).unwrap_err().to_string();
        assert!(error.contains("64 hex characters"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
