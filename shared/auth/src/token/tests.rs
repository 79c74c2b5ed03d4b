use super::*;

fn fujian() -> Authority {
    Authority::Province("35".into())
}

fn grant(level: Level, jurisdiction: &str, audience: Authority) -> Grant {
    Grant {
        user: "alice".into(),
        level,
        jurisdiction: jurisdiction.into(),
        role: Role::Approver,
        audience: vec![audience],
    }
}

fn verifier_at(node: Authority, keys: &[&TokenSigner]) -> TokenVerifier {
    let mut verifier = TokenVerifier::new(vec![node]);
    for signer in keys {
        verifier.trust(signer.public_key());
    }
    verifier
}

#[test]
fn round_trip() {
    let signer = TokenSigner::generate(fujian());
    let now = Utc::now();
    let token = signer
        .mint(
            &grant(Level::County, "350102", fujian()),
            now,
            Duration::hours(1),
        )
        .unwrap();
    let caller = verifier_at(fujian(), &[&signer])
        .verify(&token, now)
        .unwrap();
    assert_eq!(caller.describe(), "county:350102/approver/alice");
}

#[test]
fn keys_survive_their_text_form() {
    let signer = TokenSigner::generate(fujian());
    let again = TokenSigner::from_text(&signer.to_text()).unwrap();
    assert_eq!(again.kid(), signer.kid());
    let public = PublicKey::from_text(&signer.public_key().to_text()).unwrap();
    assert_eq!(public, signer.public_key());
    let mut verifier = TokenVerifier::new(vec![fujian()]);
    verifier.trust(public);
    let token = again
        .mint(
            &grant(Level::School, "2135000101", fujian()),
            Utc::now(),
            Duration::hours(1),
        )
        .unwrap();
    assert!(verifier.verify(&token, Utc::now()).is_ok());
    // A key id edited to pose as another key is refused.
    let text = signer
        .public_key()
        .to_text()
        .replace("province/35#", "province/35#x");
    assert!(PublicKey::from_text(&text).is_err());
}

#[test]
fn a_province_may_not_grant_the_nation_or_another_province() {
    let fujian_key = TokenSigner::generate(fujian());
    let now = Utc::now();
    let refused = |level, jurisdiction: &str| {
        matches!(
            fujian_key.mint(
                &grant(level, jurisdiction, Authority::National),
                now,
                Duration::hours(1)
            ),
            Err(AuthError::IssuerMayNot(_))
        )
    };
    assert!(refused(Level::Ministry, ""));
    assert!(refused(Level::Province, "340000"));
    assert!(refused(Level::School, "2134000101"));

    // Forged claims with a valid signature: still refused by the verifier.
    let national = TokenSigner::generate(Authority::National);
    let verifier = verifier_at(Authority::National, &[&fujian_key, &national]);
    let mut claims = Claims {
        iss: fujian(),
        aud: vec![Authority::National],
        kid: fujian_key.kid(),
        sub: "mallory".into(),
        level: Level::Ministry,
        jurisdiction: "000000".into(),
        role: Role::Approver,
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: now.timestamp() + 3600,
    };
    let forged = fujian_key.sign(&claims).unwrap();
    assert!(matches!(
        verifier.verify(&forged, now),
        Err(AuthError::IssuerMayNot(_))
    ));
    // Claiming the national node as issuer with a province's key.
    claims.iss = Authority::National;
    let forged = fujian_key.sign(&claims).unwrap();
    assert!(matches!(
        verifier.verify(&forged, now),
        Err(AuthError::IssuerMayNot(_))
    ));
    // The genuine national key may.
    let ministry = national
        .mint(
            &grant(Level::Ministry, "", Authority::National),
            now,
            Duration::hours(1),
        )
        .unwrap();
    assert!(verifier.verify(&ministry, now).is_ok());
}

#[test]
fn time_audience_and_key_refusals() {
    let signer = TokenSigner::generate(fujian());
    let verifier = verifier_at(fujian(), &[&signer]);
    let now = Utc::now();
    let county = grant(Level::County, "350102", fujian());
    let claims = |iat: i64, nbf: i64, exp: i64| Claims {
        iss: fujian(),
        aud: vec![fujian()],
        kid: signer.kid(),
        sub: "alice".into(),
        level: Level::County,
        jurisdiction: "350102".into(),
        role: Role::Operator,
        iat: now.timestamp() + iat,
        nbf: now.timestamp() + nbf,
        exp: now.timestamp() + exp,
    };
    let verify = |claims: Claims| verifier.verify(&signer.sign(&claims).unwrap(), now);

    assert!(matches!(
        verify(claims(-7200, -7200, -120)),
        Err(AuthError::Expired(_))
    ));
    // Within the clock-skew allowance on either side.
    assert!(verify(claims(-7200, -7200, -30)).is_ok());
    assert!(verify(claims(30, 30, 3600)).is_ok());
    assert!(matches!(
        verify(claims(0, 600, 3600)),
        Err(AuthError::NotYetValid(_))
    ));
    assert!(matches!(
        verify(claims(0, 0, 25 * 3600)),
        Err(AuthError::TooLong)
    ));
    assert!(matches!(
        signer.mint(&county, now, Duration::hours(25)),
        Err(AuthError::TooLong)
    ));

    let for_anhui = signer
        .mint(
            &grant(Level::County, "350102", Authority::Province("34".into())),
            now,
            Duration::hours(1),
        )
        .unwrap();
    assert!(matches!(
        verifier.verify(&for_anhui, now),
        Err(AuthError::WrongAudience(..))
    ));

    let stranger = TokenSigner::generate(fujian())
        .mint(&county, now, Duration::hours(1))
        .unwrap();
    assert!(matches!(
        verifier.verify(&stranger, now),
        Err(AuthError::UnknownKey(_))
    ));

    // Changing the claims after signing breaks the signature.
    let token = signer.mint(&county, now, Duration::hours(1)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims(0, 0, 3600);
    forged.level = Level::Province;
    forged.jurisdiction = "350000".into();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert_eq!(verifier.verify(&forged, now), Err(AuthError::BadSignature));

    assert!(matches!(
        verifier.verify("garbage", now),
        Err(AuthError::Malformed(_))
    ));
    let mut bad_scope = county.clone();
    bad_scope.jurisdiction = "350100".into();
    assert!(matches!(
        signer.mint(&bad_scope, now, Duration::hours(1)),
        Err(AuthError::BadScope(_))
    ));
}
