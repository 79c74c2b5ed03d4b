//! Certificate checks of both ends of a federation link.
//!
//! A certificate is a member of the federation when its chain verifies to the root **and** its
//! one SPIFFE identity is one its issuer may grant:
//! - `spiffe://xueji/national/...` only when the root signed it directly;
//! - `spiffe://xueji/province/NN/...` only when its chain runs through an intermediate that the
//!   root issued for province NN (the intermediate names itself `spiffe://xueji/province/NN` in
//!   its URI SAN).
//!
//! So a province's CA key, which the province holds to issue its own certificates, cannot make a
//! national identity or another province's. (X.509 URI name constraints would say the same, but
//! rustls-webpki refuses every URI SAN under a URI constraint, so the binding is checked here;
//! the intermediates carry DNS name constraints, which webpki does enforce.)
//!
//! Servers accept any member as a client (the Authenticator then decides per request what it may
//! do); clients accept only the server identities they set out to reach ([`ExpectedServer`]),
//! never a DNS name any certificate could carry.

use std::sync::Arc;

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use xueji_pki::{SpiffeId, Tier};

/// Which server a client accepts at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedServer {
    /// Any node or service of the federation, not an operator's certificate: for operator tools
    /// that ask whichever node they were pointed at (the answer then says who answered).
    AnyNode,
    /// Exactly one of these identities.
    OneOf(Vec<SpiffeId>),
}

impl ExpectedServer {
    /// The national node's `service`, or the national node as a whole (which serves every
    /// national service under `national/node`).
    pub fn national(service: &str) -> Self {
        Self::OneOf(vec![
            SpiffeId::national(service),
            SpiffeId::national(xueji_pki::files::NODE),
        ])
    }

    /// Province `province`'s `service`, or that province's node as a whole.
    pub fn province(province: &str, service: &str) -> Self {
        Self::OneOf(vec![
            SpiffeId::in_province(province, service),
            SpiffeId::in_province(province, xueji_pki::files::NODE),
        ])
    }

    /// This expectation, also satisfied by `other` (a standalone node serves a province's
    /// services under its national certificate).
    pub fn or(self, other: SpiffeId) -> Self {
        match self {
            Self::AnyNode => Self::AnyNode,
            Self::OneOf(mut ids) => {
                ids.push(other);
                Self::OneOf(ids)
            }
        }
    }

    fn accepts(&self, id: &SpiffeId) -> bool {
        match self {
            Self::AnyNode => !id.is_operator(),
            Self::OneOf(ids) => ids.contains(id),
        }
    }
}

impl std::fmt::Display for ExpectedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AnyNode => f.write_str("any node of the federation"),
            Self::OneOf(ids) => {
                let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(" or "))
            }
        }
    }
}

fn refused(detail: String) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        IdentityRefused(detail),
    ))))
}

/// A certificate whose identity its issuer may not grant, or not the peer that was expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct IdentityRefused(String);

fn from_webpki(error: webpki::Error) -> Error {
    use webpki::Error as W;
    Error::InvalidCertificate(match error {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    })
}

/// Verifies the chain of `end_entity` to one of `roots` for `usage`, through an issuer allowed
/// to grant its identity, and answers that identity.
pub(crate) fn verify_member(
    roots: &RootCertStore,
    provider: &CryptoProvider,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: webpki::KeyUsage,
) -> Result<SpiffeId, Error> {
    let id = xueji_pki::spiffe_id_of(end_entity)
        .map_err(|e| refused(format!("certificate refused: {e}")))?;
    let certificate = webpki::EndEntityCert::try_from(end_entity).map_err(from_webpki)?;
    let issuer_uri = id.province().map(SpiffeId::province_ca_uri);
    let issued_by_its_authority = |path: &webpki::VerifiedPath<'_>| {
        let mut cas = path.intermediate_certificates();
        let bound = match (&issuer_uri, cas.next(), cas.next()) {
            // A national identity: signed by the root itself.
            (None, None, _) => true,
            // A province's: signed by that province's intermediate, which the root signed.
            (Some(uri), Some(ca), None) => ca.valid_uri_names().any(|name| name == uri),
            _ => false,
        };
        if bound {
            Ok(())
        } else {
            // Any error lets webpki try another path; none left means refused.
            Err(webpki::Error::NameConstraintViolation)
        }
    };
    certificate
        .verify_for_usage(
            provider.signature_verification_algorithms.all,
            &roots.roots,
            intermediates,
            now,
            usage,
            None,
            Some(&issued_by_its_authority),
        )
        .map_err(|error| match error {
            webpki::Error::NameConstraintViolation => refused(format!(
                "{id} is not issued by an authority that may grant it ({})",
                match id.tier {
                    Tier::National => "national identities come from the root alone".to_owned(),
                    Tier::Province(ref p) => format!("only province {p}'s CA may"),
                }
            )),
            other => from_webpki(other),
        })?;
    Ok(id)
}

/// What both ends of a link check against: the federation's root and the crypto provider's
/// signature algorithms. Built once per loaded TLS material and shared by both verifiers.
#[derive(Debug)]
pub(crate) struct FederationTrust {
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    /// The trusted roots' names, each a DER SEQUENCE as a certificate request carries them:
    /// clients on other TLS stacks (BoringSSL in grpcio) refuse a malformed list outright.
    hints: Vec<DistinguishedName>,
}

impl FederationTrust {
    pub(crate) fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Self {
        let hints = roots.subjects();
        Self {
            roots,
            provider,
            hints,
        }
    }

    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    pub(crate) fn roots(&self) -> &RootCertStore {
        &self.roots
    }

    fn member(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<SpiffeId, Error> {
        verify_member(
            &self.roots,
            &self.provider,
            end_entity,
            intermediates,
            now,
            usage,
        )
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server side: any federation member may connect; what it may do is decided per request.
#[derive(Debug)]
pub(crate) struct MemberClientVerifier(pub(crate) Arc<FederationTrust>);

impl ClientCertVerifier for MemberClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.0.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.0.member(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

/// The client side: the server must be a federation member *and* the one expected. The DNS
/// name the connection was opened with plays no part.
#[derive(Debug)]
pub(crate) struct ExpectedServerVerifier {
    pub(crate) trust: Arc<FederationTrust>,
    pub(crate) expected: ExpectedServer,
}

impl ServerCertVerifier for ExpectedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let id = self.trust.member(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
        )?;
        if !self.expected.accepts(&id) {
            return Err(refused(format!(
                "the server is {id}, not {} as expected",
                self.expected
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.trust.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.trust.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.schemes()
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use x509_parser::prelude::FromDer;

    use super::*;

    /// The names a server sends in its certificate request are DER `Name`s: BoringSSL clients
    /// (Python grpcio, grpcurl's Go stack is lenient) refuse the handshake otherwise.
    #[test]
    fn client_certificate_hints_are_der_names() {
        let root =
            xueji_pki::CertificateAuthority::new_root("hint root", xueji_pki::Validity::days(1))
                .unwrap();
        let mut roots = RootCertStore::empty();
        for cert in
            rustls::pki_types::CertificateDer::pem_slice_iter(root.certified.cert_pem.as_bytes())
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = MemberClientVerifier(Arc::new(FederationTrust::new(roots, provider)));
        let hints = verifier.root_hint_subjects();
        assert_eq!(hints.len(), 1);
        let (rest, name) =
            x509_parser::x509::X509Name::from_der(hints[0].as_ref()).expect("a DER Name");
        assert!(rest.is_empty());
        assert!(name.to_string().contains("hint root"), "{name}");
    }
}
