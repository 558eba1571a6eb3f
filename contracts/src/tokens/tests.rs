//! Tokens signed with a P-256 key (the test kit's), verified as gateways do.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tessera_testkit::jwt::Signer;

use super::*;
use crate::bundle::ClaimMapping;

const ISSUER: &str = "https://idp.example.com";

fn issuer() -> BundleIssuer {
    BundleIssuer {
        issuer: ISSUER.into(),
        audiences: vec!["tessera".into()],
        algorithms: vec!["ES256".into(), "RS256".into()],
        clock_skew_secs: 5,
        claims: ClaimMapping {
            principal: "preferred_username".into(),
            groups: Some("groups".into()),
            regions: Some("regions".into()),
            purposes: None,
        },
        jwks_uri: format!("{ISSUER}/jwks"),
        jwks: json!({}),
        jwks_seen_at: None,
    }
}

fn claims(overrides: &Value) -> Value {
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": ISSUER, "aud": "tessera", "sub": "u-123", "client_id": "portal",
        "iat": now, "exp": now + 300,
        "preferred_username": "ana", "groups": ["analysts"], "regions": "EU",
        "email": "ana@example.com",
    });
    for (k, v) in overrides.as_object().expect("an object") {
        if v.is_null() {
            claims.as_object_mut().expect("an object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn check(token: &str, keys: &KeySet) -> Result<TokenIdentity, TokenError> {
    let issuers = [issuer()];
    let seen = Unverified::parse(token)?;
    issuer_of(&issuers, &seen)?.verify(token, &seen, keys)
}

fn keys_of(signers: &[&Signer]) -> KeySet {
    KeySet::from_json(&tessera_testkit::jwt::key_set(signers))
}

#[test]
fn a_valid_token_maps_to_its_principal() {
    let signer = Signer::new("k1");
    let keys = keys_of(&[&signer]);
    let identity = check(&signer.sign(&claims(&json!({}))), &keys).expect("verifies");
    assert_eq!(identity.name, "ana");
    assert!(!identity.service);
    assert_eq!(identity.groups, Some(vec!["analysts".to_string()]));
    assert_eq!(identity.regions, Some(vec!["EU".to_string()]));
    assert_eq!(identity.purposes, None);
    assert_eq!(identity.email.as_deref(), Some("ana@example.com"));
    let stored = Attributes {
        groups: vec!["old".into()],
        regions: vec!["US".into()],
        purposes: vec!["fraud".into()],
    };
    let session = identity.attributes_over(Some(&stored));
    assert_eq!(session.groups, vec!["analysts"]);
    assert_eq!(session.regions, vec!["EU"]);
    assert_eq!(
        session.purposes,
        vec!["fraud"],
        "an unmapped attribute stays the stored one"
    );
    // A client-credentials token: its subject is the client.
    let service = check(&signer.sign(&claims(&json!({"sub": "etl", "client_id": "etl"}))), &keys).expect("verifies");
    assert!(service.service);
}

#[test]
fn tokens_the_issuer_did_not_mean_for_us_are_refused() {
    let signer = Signer::new("k1");
    let keys = keys_of(&[&signer]);
    let now = Utc::now().timestamp();
    let refused = |overrides: Value| check(&signer.sign(&claims(&overrides)), &keys).expect_err("refused");
    assert_eq!(refused(json!({"exp": now - 60})), TokenError::Expired);
    assert_eq!(refused(json!({"nbf": now + 600})), TokenError::NotYetValid);
    assert_eq!(refused(json!({"iat": now + 600})), TokenError::NotYetValid);
    assert_eq!(refused(json!({"aud": "other"})), TokenError::Audience);
    assert_eq!(
        refused(json!({"aud": null})),
        TokenError::Invalid("no \"aud\" claim".into())
    );
    assert_eq!(
        refused(json!({"exp": null})),
        TokenError::Invalid("no \"exp\" claim".into())
    );
    assert!(matches!(
        refused(json!({"iss": "https://evil.example.com"})),
        TokenError::UnknownIssuer(_)
    ));
    assert!(matches!(
        refused(json!({"preferred_username": "Ana Smith"})),
        TokenError::Principal { .. }
    ));
    assert!(matches!(
        refused(json!({"preferred_username": null})),
        TokenError::Principal { .. }
    ));
    // Within the clock skew, an expired token still holds.
    check(&signer.sign(&claims(&json!({"exp": now - 2}))), &keys).expect("within the skew");
}

#[test]
fn forged_tokens_are_refused() {
    let signer = Signer::new("k1");
    let keys = keys_of(&[&signer]);
    let token = signer.sign(&claims(&json!({})));
    let parts: Vec<&str> = token.split('.').collect();

    // A payload changed after signing.
    let admin = URL_SAFE_NO_PAD.encode(claims(&json!({"preferred_username": "admin"})).to_string());
    let tampered = format!("{}.{admin}.{}", parts[0], parts[2]);
    assert_eq!(check(&tampered, &keys).expect_err("tampered"), TokenError::Signature);

    // `alg: none`, unsigned.
    let none = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "k1"}).to_string());
    let unsigned = format!("{none}.{}.", parts[1]);
    assert_eq!(
        check(&unsigned, &keys).expect_err("alg none"),
        TokenError::Algorithm("none".into())
    );

    // HS256 keyed with the public key (the classic confusion): not an accepted algorithm.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let public = signer.jwk().to_string();
    let hs = jsonwebtoken::encode(
        &header,
        &claims(&json!({})),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .expect("signs");
    assert_eq!(
        check(&hs, &keys).expect_err("HS256"),
        TokenError::Algorithm("HS256".into())
    );

    // Signed by a key the set does not have (rotated out, or never the issuer's).
    let other = Signer::new("k2");
    assert_eq!(
        check(&other.sign(&claims(&json!({}))), &keys).expect_err("unknown kid"),
        TokenError::UnknownKey {
            issuer: ISSUER.into(),
            kid: "k2".into()
        }
    );
    // The same kid with another key: the signature fails.
    let impostor = Signer::new("k1");
    assert_eq!(
        check(&impostor.sign(&claims(&json!({}))), &keys).expect_err("impostor"),
        TokenError::Signature
    );
    // Rotation: with both keys published, both verify; the new set alone refuses the old.
    let rotated = keys_of(&[&other, &signer]);
    check(&token, &rotated).expect("old key still published");
    check(&other.sign(&claims(&json!({}))), &rotated).expect("new key");
    assert!(matches!(
        check(&token, &keys_of(&[&other])),
        Err(TokenError::UnknownKey { .. })
    ));
    // An algorithm the issuer does not allow, though Tessera would.
    let mut restricted = issuer();
    restricted.algorithms = vec!["RS256".into()];
    let seen = Unverified::parse(&token).expect("parses");
    assert_eq!(
        restricted.verify(&token, &seen, &keys).expect_err("ES256 not allowed"),
        TokenError::Algorithm("ES256".into())
    );
}

#[test]
fn only_jwts_look_like_jwts() {
    let signer = Signer::new("k1");
    assert!(looks_like_jwt(&signer.sign(&claims(&json!({})))));
    assert!(!looks_like_jwt("tsk_abcdef_0123456789"));
    assert!(!looks_like_jwt("eyJ.only-two"));
    assert_eq!(Unverified::parse("eyJ.e30.x"), Err(TokenError::Malformed));
}
