// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
use base64_free::pem_to_der;
use xueji_pki::{CertificateAuthority, Validity, spiffe_id_of};

mod base64_free {
    /// The DER bytes of the first PEM block, via x509-parser's PEM reader.
    pub(crate) fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        block.contents
    }
}

#[test]
fn leaves_carry_exactly_one_spiffe_id() {
    let ca = CertificateAuthority::new_root("test root", Validity::days(1)).unwrap();
    let leaf = ca
        .issue(
            "spiffe://xueji/province/35/identity",
            &["localhost"],
            Validity::days(1),
        )
        .unwrap();
    assert_eq!(
        spiffe_id_of(&pem_to_der(&leaf.cert_pem))
            .unwrap()
            .to_string(),
        "spiffe://xueji/province/35/identity"
    );

    let two = ca
        .issue_with_uris(
            &[
                "spiffe://xueji/province/35/a",
                "spiffe://xueji/province/35/b",
            ],
            &[],
            Validity::days(1),
        )
        .unwrap();
    assert!(spiffe_id_of(&pem_to_der(&two.cert_pem)).is_err());
    let none = ca
        .issue_with_uris(&[], &["localhost"], Validity::days(1))
        .unwrap();
    assert!(spiffe_id_of(&pem_to_der(&none.cert_pem)).is_err());
    let foreign = ca
        .issue(
            "spiffe://elsewhere/province/35/identity",
            &[],
            Validity::days(1),
        )
        .unwrap();
    assert!(spiffe_id_of(&pem_to_der(&foreign.cert_pem)).is_err());
}

#[test]
fn a_ca_survives_reloading() {
    let ca = CertificateAuthority::new_root("test root", Validity::days(1)).unwrap();
    let again = CertificateAuthority::load(&ca.certified.cert_pem, &ca.certified.key_pem).unwrap();
    let leaf = again
        .issue("spiffe://xueji/province/35/node", &[], Validity::days(1))
        .unwrap();
    assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
}
