//! Signed evidence: a node signs what it decided with the private key of the certificate it
//! presents (its service's), and anyone holding the federation's root verifies it later, apart
//! from any connection: the chain to the root through the authority allowed to grant the
//! signer's identity (as a TLS peer is checked), then the signature. X-Road keeps such
//! evidence of every exchange between members; the registry keeps it of every decision that
//! crosses provinces, so that two provinces who disagree about who moved a child can show it.

use rustls::{
    SignatureScheme,
    pki_types::{CertificateDer, UnixTime},
};
use xueji_pki::SpiffeId;

use crate::{TlsError, TlsSource, verify::verify_member};

/// A signature over some bytes, with the signer's certificate chain (leaf first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The TLS signature scheme (IANA `SignatureScheme` code).
    pub scheme: u16,
    pub signature: Vec<u8>,
    /// DER certificates, the signer's first.
    pub certificates: Vec<Vec<u8>>,
}

/// Why evidence does not hold, in words a reviewer of a dispute reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the evidence carries no certificate")]
    NoCertificate,
    #[error("the signer's certificate is refused: {0}")]
    Certificate(String),
    #[error("the signature uses scheme {0:#06x}, which this node does not verify")]
    Scheme(u16),
    #[error("the signature does not verify against {0}'s certificate")]
    Signature(SpiffeId),
}

/// Schemes a node signs with, in its order of preference.
const SCHEMES: [SignatureScheme; 4] = [
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
];

impl TlsSource {
    /// Signs `payload` with the key of the certificate this material presents as a client.
    pub fn sign_evidence(&self, payload: &[u8]) -> Result<Evidence, TlsError> {
        let material = self.current().client;
        let key = material
            .trust
            .provider()
            .key_provider
            .load_private_key(material.key.clone_key())
            .map_err(|e| TlsError::Material {
                what: "the signing key",
                detail: e.to_string(),
            })?;
        let signer = key
            .choose_scheme(&SCHEMES)
            .ok_or_else(|| TlsError::Material {
                what: "the signing key",
                detail: "signs with no scheme this node knows".into(),
            })?;
        let signature = signer.sign(payload).map_err(|e| TlsError::Material {
            what: "signing evidence",
            detail: e.to_string(),
        })?;
        Ok(Evidence {
            scheme: u16::from(signer.scheme()),
            signature,
            certificates: material.chain.iter().map(|c| c.to_vec()).collect(),
        })
    }

    /// Checks that `evidence` is a signature over `payload` by a certificate that chains to the
    /// federation's root through an authority allowed to grant its identity, valid at `at`
    /// (the time it was signed; a certificate since expired still proves what it signed then).
    /// Answers the signer's identity: what it may sign for is the caller's to decide.
    pub fn verify_evidence(
        &self,
        payload: &[u8],
        evidence: &Evidence,
        at: std::time::SystemTime,
    ) -> Result<SpiffeId, EvidenceError> {
        let trust = self.current().client.trust.clone();
        let (leaf, rest) = evidence
            .certificates
            .split_first()
            .ok_or(EvidenceError::NoCertificate)?;
        let leaf = CertificateDer::from(leaf.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let signer = verify_member(
            trust.roots(),
            trust.provider(),
            &leaf,
            &intermediates,
            UnixTime::since_unix_epoch(
                at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
            ),
            webpki::KeyUsage::client_auth(),
        )
        .map_err(|e| EvidenceError::Certificate(e.to_string()))?;
        let scheme = SignatureScheme::from(evidence.scheme);
        let algorithms = trust
            .provider()
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(known, _)| *known == scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(EvidenceError::Scheme(evidence.scheme))?;
        let certificate = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| EvidenceError::Certificate(e.to_string()))?;
        let verified = algorithms.iter().any(|algorithm| {
            certificate
                .verify_signature(*algorithm, payload, &evidence.signature)
                .is_ok()
        });
        if verified {
            Ok(signer)
        } else {
            Err(EvidenceError::Signature(signer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_verifies_names_its_signer_and_refuses_any_change() {
        let dir = tempfile::tempdir().unwrap();
        xueji_pki::init_federation(dir.path(), &["35", "34"]).unwrap();
        let fujian = TlsSource::from_dir(&dir.path().join("35"), "transfers").unwrap();
        let anhui = TlsSource::from_dir(&dir.path().join("34"), "transfers").unwrap();
        let now = std::time::SystemTime::now();
        let evidence = fujian.sign_evidence(b"step 2 approved").unwrap();
        // Anyone holding the root verifies it, and learns who signed.
        let signer = anhui
            .verify_evidence(b"step 2 approved", &evidence, now)
            .unwrap();
        assert_eq!(signer.to_string(), "spiffe://xueji/province/35/transfers");
        // Another payload, a flipped bit, or no certificate: refused.
        assert!(matches!(
            anhui.verify_evidence(b"step 2 rejected", &evidence, now),
            Err(EvidenceError::Signature(_))
        ));
        let mut flipped = evidence.clone();
        flipped.signature[10] ^= 1;
        assert!(
            anhui
                .verify_evidence(b"step 2 approved", &flipped, now)
                .is_err()
        );
        let mut bare = evidence.clone();
        bare.certificates.clear();
        assert_eq!(
            anhui.verify_evidence(b"step 2 approved", &bare, now),
            Err(EvidenceError::NoCertificate)
        );
        // A chain that does not reach the root is refused as a certificate.
        let other = tempfile::tempdir().unwrap();
        xueji_pki::init_federation(other.path(), &["35"]).unwrap();
        let stranger = TlsSource::from_dir(&other.path().join("35"), "transfers").unwrap();
        let forged = stranger.sign_evidence(b"step 2 approved").unwrap();
        assert!(matches!(
            anhui.verify_evidence(b"step 2 approved", &forged, now),
            Err(EvidenceError::Certificate(_))
        ));
    }
}
