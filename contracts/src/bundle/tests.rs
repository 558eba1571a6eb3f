//! The bundle's format, hash and order checks, and what sessions hold.

use super::*;
use crate::keys;
use crate::policy::{Subject, Target};

fn product(name: &str, status: ProductStatus, visibility: Visibility, majors: &[u32]) -> BundleProduct {
    BundleProduct {
        domain: "sales".into(),
        name: name.into(),
        owner_team: "sales_team".into(),
        domain_owner_team: "sales_team".into(),
        visibility,
        status,
        sunset_date: None,
        tags: vec![],
        output_ports: majors
            .iter()
            .map(|m| BundlePort {
                major_version: *m,
                location: format!("/lake/sales/{name}/v{m}"),
                columns: vec![],
                schema: None,
            })
            .collect(),
    }
}

fn principal(name: &str, teams: &[&str]) -> BundlePrincipal {
    BundlePrincipal {
        name: name.into(),
        admin: false,
        roles: vec![],
        attributes: Attributes::default(),
        teams: teams.iter().map(|t| (*t).into()).collect(),
        keys: vec![],
    }
}

fn names(content: &BundleContent, p: &BundlePrincipal, now: DateTime<Utc>) -> Vec<String> {
    content
        .tables_for(&p.asker(None), now)
        .iter()
        .map(|t| format!("{}.{}", t.domain, t.table))
        .collect()
}

#[test]
fn sessions_hold_what_the_principal_may_query() {
    let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let today = now.date_naive();
    let mut deprecated = product("old", ProductStatus::Deprecated, Visibility::Discoverable, &[1]);
    deprecated.sunset_date = Some(today);
    let mut gone = product("gone", ProductStatus::Deprecated, Visibility::Discoverable, &[1]);
    gone.sunset_date = today.pred_opt();
    let mut content = BundleContent {
        products: vec![
            product("orders", ProductStatus::Published, Visibility::Discoverable, &[1, 2]),
            product("secret", ProductStatus::Published, Visibility::Restricted, &[1]),
            product("wip", ProductStatus::Draft, Visibility::Discoverable, &[1]),
            product("dead", ProductStatus::Retired, Visibility::Discoverable, &[1]),
            deprecated,
            gone,
        ],
        principals: vec![],
        grants: vec![GrantSpec {
            name: "everyone-sales".into(),
            subject: Subject::Group { name: "staff".into() },
            target: Target::Domain { domain: "sales".into() },
            purposes: vec![],
            expires_at: None,
        }],
        ..BundleContent::default()
    };
    content.canonicalize();
    let analyst = principal("ana", &["staff"]);
    assert_eq!(
        names(&content, &analyst, now),
        ["sales.old", "sales.orders__v1", "sales.orders", "sales.secret"]
    );
    let stranger = principal("sam", &[]);
    assert!(names(&content, &stranger, now).is_empty(), "no grant, no data");
    let owner = principal("olga", &["sales_team"]);
    assert_eq!(
        names(&content, &owner, now),
        [
            "sales.old",
            "sales.orders__v1",
            "sales.orders",
            "sales.secret",
            "sales.wip"
        ]
    );
}

#[test]
fn hash_covers_content_and_check_finds_tampering() {
    let now = Utc::now();
    let mut content = BundleContent::default();
    content
        .products
        .push(product("b", ProductStatus::Published, Visibility::Discoverable, &[1]));
    content
        .products
        .push(product("a", ProductStatus::Published, Visibility::Discoverable, &[1]));
    content.canonicalize();
    let bundle = Bundle::new(7, content.clone(), now);
    assert_eq!(bundle.check(), Ok(()));
    assert_eq!(
        Bundle::new(8, content, now).hash,
        bundle.hash,
        "the version is not content"
    );

    let mut tampered = bundle.clone();
    tampered.content.products[0].visibility = Visibility::Restricted;
    assert!(matches!(tampered.check(), Err(BundleError::Hash { .. })));

    let mut unordered = bundle.clone();
    unordered.content.products.swap(0, 1);
    unordered.hash = unordered.content.hash();
    assert!(matches!(unordered.check(), Err(BundleError::Order(_))));

    let mut future = bundle;
    future.format = FORMAT + 1;
    assert_eq!(future.check(), Err(BundleError::Format(FORMAT + 1)));
}

#[test]
fn keys_authenticate_until_they_expire() {
    let now = Utc::now();
    let secret = "d".repeat(64);
    let mut p = principal("ana", &[]);
    p.keys.push(BundleKey {
        id: "a".repeat(12),
        secret_hash: keys::hash_secret(&secret),
        expires_at: Some(now + chrono::Duration::hours(1)),
    });
    let content = BundleContent {
        principals: vec![p],
        ..BundleContent::default()
    };
    let key = format!("tsk_{}_{secret}", "a".repeat(12));
    assert_eq!(content.authenticate(&key, now).map(|p| p.name.as_str()), Some("ana"));
    assert!(content.authenticate(&key, now + chrono::Duration::hours(2)).is_none());
    assert!(
        content
            .authenticate(&format!("tsk_{}_{}", "a".repeat(12), "e".repeat(64)), now)
            .is_none()
    );
}

#[test]
fn another_format_is_refused_before_it_is_read() {
    let bundle = Bundle::new(5, BundleContent::default(), Utc::now());
    let json = serde_json::to_vec(&bundle).expect("json");
    assert_eq!(Bundle::from_json(&json), Ok(bundle));
    for format in [2, FORMAT + 1] {
        // A newer format may have any shape: only its format is read.
        let other = serde_json::json!({"format": format, "version": 6, "content": {"products": 7}});
        assert_eq!(
            Bundle::from_json(&serde_json::to_vec(&other).expect("json")),
            Err(BundleError::Format(format))
        );
    }
    assert!(matches!(Bundle::from_json(b"[]"), Err(BundleError::Malformed(_))));
    assert_eq!(format!("{:?}", MaskKey::from_bytes([7; 32])), "MaskKey(***)");
}

#[test]
fn what_is_seen_but_not_queryable_and_why() {
    let now = Utc::now();
    let mut content = BundleContent {
        products: vec![
            product("orders", ProductStatus::Published, Visibility::Discoverable, &[1, 2]),
            product("secret", ProductStatus::Published, Visibility::Restricted, &[1]),
            product("wip", ProductStatus::Draft, Visibility::Discoverable, &[1]),
            product("shared", ProductStatus::Published, Visibility::Discoverable, &[1]),
        ],
        grants: vec![
            GrantSpec {
                name: "fraud-only".into(),
                subject: Subject::Principal { name: "ana".into() },
                target: Target::Product {
                    domain: "sales".into(),
                    product: "secret".into(),
                },
                purposes: vec!["fraud".into()],
                expires_at: None,
            },
            GrantSpec {
                name: "shared".into(),
                subject: Subject::Principal { name: "ana".into() },
                target: Target::Product {
                    domain: "sales".into(),
                    product: "shared".into(),
                },
                purposes: vec![],
                expires_at: None,
            },
        ],
        ..BundleContent::default()
    };
    content.canonicalize();
    let mut ana = principal("ana", &[]);
    ana.attributes.purposes = vec!["fraud".into(), "analytics".into()];
    let why = |purpose: Option<&str>, refused: Option<&str>| -> Vec<(String, Unqueryable)> {
        content
            .unqueryable(&ana.asker(purpose), refused, now)
            .into_iter()
            .map(|(p, why)| (p.name.clone(), why))
            .collect()
    };
    assert_eq!(
        why(None, None),
        vec![
            ("orders".to_string(), Unqueryable::NoGrant),
            ("secret".to_string(), Unqueryable::PurposeRequired(vec!["fraud".into()])),
        ],
        "a draft is nobody's business; a restricted product only with a grant"
    );
    assert_eq!(
        why(Some("analytics"), None)[1].1,
        Unqueryable::OtherPurposes {
            declared: "analytics".into(),
            needed: vec!["fraud".into()]
        }
    );
    assert_eq!(
        why(None, Some("spying"))[1].1,
        Unqueryable::PurposeNotHeld("spying".into())
    );
    assert_eq!(
        why(Some("fraud"), None).len(),
        1,
        "with its purpose, secret is queryable"
    );
    // Without any grant a restricted product does not show at all.
    let stranger = principal("sam", &[]);
    let seen: Vec<String> = content
        .unqueryable(&stranger.asker(None), None, now)
        .into_iter()
        .map(|(p, _)| p.name.clone())
        .collect();
    assert_eq!(seen, ["orders", "shared"]);
}

#[test]
fn a_session_is_good_until_its_key_or_a_grant_expires() {
    let now = Utc::now();
    let soon = now + chrono::Duration::seconds(30);
    let later = now + chrono::Duration::hours(1);
    let mut deprecated = product("old", ProductStatus::Deprecated, Visibility::Discoverable, &[1]);
    deprecated.sunset_date = Some(now.date_naive());
    let content = BundleContent {
        products: vec![deprecated],
        grants: vec![
            GrantSpec {
                name: "mine".into(),
                subject: Subject::Principal { name: "ana".into() },
                target: Target::All,
                purposes: vec![],
                expires_at: Some(soon),
            },
            GrantSpec {
                name: "someone-else".into(),
                subject: Subject::Principal { name: "bob".into() },
                target: Target::All,
                purposes: vec![],
                expires_at: Some(now + chrono::Duration::seconds(1)),
            },
        ],
        ..BundleContent::default()
    };
    let ana = principal("ana", &[]);
    assert_eq!(content.valid_until(&ana.asker(None), Some(later), now), Some(soon));
    let sunset_end = (now.date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let bob_free = principal("carl", &[]);
    assert_eq!(content.valid_until(&bob_free.asker(None), None, now), Some(sunset_end));
    assert_eq!(
        content.valid_until(&ana.asker(None), Some(now + chrono::Duration::seconds(5)), now),
        Some(now + chrono::Duration::seconds(5)),
        "the key first"
    );
}
