//! `openapi.yaml` is the contract: it must list exactly the routes the router serves,
//! and every problem type the broker can return.

use passerelle::router::routes;
use passerelle::wire::problem::ProblemKind;
use std::collections::BTreeSet;

fn document() -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml exists");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML")
}

#[test]
fn the_contract_and_the_router_list_the_same_routes() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().unwrap(), "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_mapping()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let path = path.as_str().unwrap().to_string();
            item.as_mapping().unwrap().keys().filter_map(move |method| {
                let method = method.as_str().unwrap();
                ["get", "post", "put", "patch", "delete"]
                    .contains(&method)
                    .then(|| (method.to_uppercase(), path.clone()))
            })
        })
        .collect();
    let served: BTreeSet<(String, String)> = routes()
        .table()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, served,
        "openapi.yaml paths differ from the router"
    );
}

#[test]
fn every_problem_type_is_documented() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let doc = document();
    let listed: BTreeSet<String> = doc["components"]["schemas"]["Problem"]["properties"]["type"]
        ["enum"]
        .as_sequence()
        .expect("Problem.type lists its values")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let known: BTreeSet<String> = ProblemKind::ALL.iter().map(|k| k.type_uri()).collect();
    assert_eq!(
        listed, known,
        "Problem.type in openapi.yaml differs from ProblemKind"
    );
    for kind in ProblemKind::ALL {
        assert!(
            text.contains(&format!("'{}'", kind.status())),
            "status {} is documented somewhere",
            kind.status()
        );
    }
}
