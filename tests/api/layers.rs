//! The one import rule, read off the source: edges → `service` → `store` → core.
//!
//! Every `crate::…` path in `src/**/*.rs` (comments aside) is an edge from the
//! top-level module that holds the file to the one it names. The core (`domain`,
//! `policy`, `crypto`, `audit`) imports only the core; `store` the core; `service`
//! the store and the core; the edges (`router`, `cli`, `workers`, `http`, `web`,
//! `wire`) the services and the core, never the store (the command line only opens
//! it), and of each other only what the composition needs: the router and the command
//! line compose the rest; the API (`http`) and the pages (`web`) never name each
//! other, and share only `wire` (problem answers, extractors, the client's address),
//! which names neither. `clock`, `metrics`, `outbound` and `allocator` are leaves
//! that import nothing of the crate.

use std::collections::BTreeSet;
use std::path::Path;

const CORE: &[&str] = &["domain", "policy", "crypto", "audit"];
const LEAVES: &[&str] = &["clock", "metrics", "outbound", "allocator"];
const EDGES: &[&str] = &["router", "cli", "workers", "http", "web", "wire"];

/// Whether a file of module `from` may name `to` (`to_path` is the path after
/// `crate::`, for the command line, which may take only the store's handle).
fn allowed(from: &str, to: &str, to_path: &str) -> bool {
    let below_store = CORE.contains(&to) || LEAVES.contains(&to);
    let for_edges = below_store || to == "service";
    match from {
        _ if from == to => true,
        f if LEAVES.contains(&f) => false,
        f if CORE.contains(&f) => CORE.contains(&to),
        "store" => CORE.contains(&to),
        "service" => below_store || to == "store",
        "router" => for_edges || ["http", "web", "wire"].contains(&to),
        // The command line opens the database it hands to the services.
        "cli" => for_edges || ["router", "workers"].contains(&to) || to_path == "store::Store",
        "http" | "web" => for_edges || to == "wire",
        "wire" | "workers" => for_edges,
        other => panic!("`{other}` is a top-level module the rule does not place"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/http/batch/read.rs` → `http`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::a::b…` path named outside comments, as (`a`, `a::b…`).
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len());
            let path = after[..end].trim_end_matches(':').to_string();
            let top = path.split("::").next().unwrap_or("").to_string();
            if !top.is_empty() {
                found.push((top, path));
            } else if after.starts_with('{') {
                // `use crate::{a, b}` hides what it takes: the rule refuses it.
                found.push(("{".to_string(), "{…}".to_string()));
            }
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_import_in_src_goes_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut against = BTreeSet::new();
    let mut placed = BTreeSet::new();
    for file in &files {
        let from = module_of(&src, file);
        if ["lib", "main"].contains(&from.as_str()) {
            continue;
        }
        placed.insert(from.clone());
        for (to, path) in crate_paths(&std::fs::read_to_string(file).unwrap()) {
            if !allowed(&from, &to, &path) {
                let file = file.strip_prefix(&src).unwrap().display().to_string();
                against.insert(format!("src/{file}: {from} → crate::{path}"));
            }
        }
    }
    assert!(
        against.is_empty(),
        "imports against the rule:\n{}",
        against.into_iter().collect::<Vec<_>>().join("\n")
    );
    let rule: BTreeSet<String> = CORE
        .iter()
        .chain(LEAVES)
        .chain(EDGES)
        .chain(&["service", "store"])
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        placed, rule,
        "every top-level module has its place in the rule"
    );
}

#[test]
fn the_rule_reads_paths_as_the_compiler_does() {
    let text = "use crate::store::{self, Tx};\n// crate::http is only named in a comment\nlet x = crate::domain::time::format_time(at); // crate::web\n";
    assert_eq!(
        crate_paths(text),
        vec![
            ("store".to_string(), "store".to_string()),
            (
                "domain".to_string(),
                "domain::time::format_time".to_string()
            ),
        ]
    );
    assert!(allowed("web", "wire", "wire::problem::Problem"));
    assert!(!allowed("web", "http", "http::consents::list"));
    assert!(!allowed("http", "web", "web::form"));
    assert!(!allowed("wire", "http", "http::middleware"));
    assert!(!allowed("domain", "store", "store"));
    assert!(!allowed("store", "service", "service::Error"));
    assert!(!allowed("workers", "http", "http::AppState"));
    assert!(!allowed("http", "store", "store::consents"));
    assert!(!allowed("cli", "store", "store::parties"));
    assert!(allowed("cli", "store", "store::Store"));
    assert_eq!(crate_paths("use crate::{http, store};")[0].0, "{");
    assert!(!allowed("cli", "{", "{…}"));
}
