//! The catalog's API tests: one binary, to save link time.
//!
//! `stories` and `seams` (the governance seams of issue #16: storage
//! ownership, the mask key, drift) are the conformance suite: every story runs
//! against SQLite and against PostgreSQL (a fresh database on 127.0.0.1:5432
//! per test). `hygiene` checks the private files, the 503 of a lost
//! database and bundles read under writes (issue #17). `identity`: OpenID
//! Connect tokens and issuers' keys (issue #18). `units` holds the unit tests (the library has no test binary of
//! its own).

mod helpers;
mod hygiene;
mod identity;
mod seams;
mod stories;
mod units;

use helpers::{Backend, TestApp};

macro_rules! conformance {
    ($($module:ident: [$($story:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let mut app = super::TestApp::spawn(super::Backend::Sqlite).await;
                    super::$module::$story(&mut app).await;
                    app.stop().await;
                }
            )*)*
        }
        mod postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let mut app = super::TestApp::spawn(super::Backend::Postgres).await;
                    super::$module::$story(&mut app).await;
                    app.stop().await;
                }
            )*)*
        }
    };
}

conformance!(
    stories: [
        authentication,
        principals_and_keys,
        last_admin_is_protected,
        teams_and_members,
        domains,
        products_and_visibility,
        product_listing_filters_and_pages,
        lineage,
        lifecycle,
        contracts,
        change_log_and_watch,
        concurrent_updates_with_if_match,
        bad_input_is_refused_whole,
        data_survives_restart,
        system_endpoints,
        contract_validation_and_compatibility,
        contracts_are_verified_against_the_table,
        quality_runs,
        governance,
    ],
    seams: [
        storage_roots_are_set_by_admins,
        locations_lie_under_the_domain_roots,
        locations_never_overlap,
        concurrent_registrations_of_one_location,
        locations_show_to_owners_only,
        the_mask_key_is_only_in_bundles,
        drift_reports_mark_products_drifted,
    ],
    hygiene: [
        bundles_hold_exactly_their_version,
    ],
    identity: [
        tokens_stand_for_principals,
    ],
);

/// The catalog's part of the OpenAPI document is the one committed in
/// `docs/openapi.json` (the platform's document adds the gateway's query
/// endpoint; the end-to-end test compares the whole of it).
#[test]
fn openapi_document_has_not_drifted() {
    let generated = serde_json::to_value(tessera_catalog::openapi()).expect("serializes");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or_default();
    let stale = "docs/openapi.json is out of date: run `cargo run -q -- openapi > docs/openapi.json` and commit it";
    for section in ["paths", "components"] {
        let ours = generated[section].as_object().expect("an object");
        for (key, value) in ours {
            if section == "components" {
                for (name, item) in value.as_object().expect("component kinds are objects") {
                    assert_eq!(&committed[section][key][name], item, "{stale} ({section}.{key}.{name})");
                }
            } else {
                assert_eq!(&committed[section][key], value, "{stale} ({section} {key})");
            }
        }
    }
}

/// Every operation of the document declares its problem responses and security.
#[test]
fn openapi_document_is_complete() {
    let doc = serde_json::to_value(tessera_catalog::openapi()).expect("serializes");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.contains_key("400") && responses.contains_key("500"),
                "{method} {path}"
            );
            // The sign-in page lists the issuers before anyone is signed in.
            let public = matches!(path.as_str(), "/health" | "/ready" | "/api/v1/identity/issuers");
            assert_eq!(!public, responses.contains_key("401"), "{method} {path}");
            assert!(op["operationId"].is_string(), "{method} {path}");
        }
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Every link names an operation that exists, with parameters it has.
    let operations: std::collections::BTreeMap<&str, &serde_json::Value> = paths
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|op| Some((op["operationId"].as_str()?, op)))
        .collect();
    let mut links = 0;
    for op in operations.values() {
        for response in op["responses"].as_object().expect("responses").values() {
            for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                let target = operations[link["operationId"].as_str().expect("operationId")];
                let declared: Vec<&str> = target["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for name in link["parameters"].as_object().expect("parameters").keys() {
                    assert!(declared.contains(&name.as_str()), "{name} of {link}");
                }
                links += 1;
            }
        }
    }
    assert!(links >= 20, "{links} links");
}
