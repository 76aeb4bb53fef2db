//! The compose files as data: parsed as Compose reads them (YAML merge keys applied), their
//! services, environments and `${VARIABLE}` interpolation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Variables a binary reads from its environment besides its settings: the two URLs the
/// runtime takes as they are, the log filter, and where rustls finds a private CA (amqps).
pub const PROCESS_VARIABLES: [&str; 5] = [
    "AMQP_URL",
    "DATABASE_URL",
    "RUST_LOG",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Every compose file in deploy/, parsed, with YAML merge keys (`<<: *anchor`) applied as
/// Compose applies them.
pub fn compose_files() -> Vec<(String, Value)> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy"))
        .expect("deploy/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("docker-compose") && name.ends_with(".yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "compose files: {files:?}");
    files
        .into_iter()
        .map(|name| {
            let text = read(&format!("deploy/{name}"));
            let mut yaml: serde_norway::Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            yaml.apply_merge().unwrap_or_else(|e| panic!("{name}: {e}"));
            let json = serde_json::to_value(&yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect()
}

pub fn services(file: &Value) -> Vec<(&String, &Value)> {
    file["services"]
        .as_object()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// Services that run the orderflow image (built from the Dockerfile), with their binary.
pub fn orderflow_services(file: &Value) -> Vec<(&String, &Value, String)> {
    services(file)
        .into_iter()
        .filter(|(_, s)| s.get("build").is_some())
        .map(|(name, s)| {
            let binary = s["command"][0].as_str().unwrap_or_default().to_owned();
            (name, s, binary)
        })
        .collect()
}

pub fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// `${NAME:?msg}`, `${NAME:-default}` and `${NAME}` in `text`: (name, default, required).
pub fn variables(text: &str) -> Vec<(String, Option<String>, bool)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        let (name, default, required) = if let Some((n, d)) = inner.split_once(":-") {
            (n, Some(d.to_owned()), false)
        } else if let Some((n, _)) = inner.split_once(":?") {
            (n, None, true)
        } else {
            (inner, None, false)
        };
        found.push((name.to_owned(), default, required));
        rest = &rest[start + len + 1..];
    }
    found
}

/// The values `.env.example` gives; an empty required secret becomes a made-up long one (an
/// admin key for `ORDERFLOW_API_KEYS`).
pub fn example_env() -> BTreeMap<String, String> {
    read("deploy/.env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let k = k.trim();
            let v = match (k, v.is_empty()) {
                ("ORDERFLOW_API_KEYS", true) => "admin:ops:0123456789abcdef0123456789abcdef",
                (_, true) => "0123456789abcdef0123456789abcdef",
                (_, false) => v,
            };
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// `value` with its variables substituted as `docker compose` would with `.env.example`.
pub fn interpolate(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = value.to_owned();
    for (name, default, _) in variables(value) {
        let start = out.find("${").expect("variable");
        let end = start + out[start..].find('}').expect("closing brace");
        let replacement = env.get(&name).cloned().or(default).unwrap_or_default();
        out.replace_range(start..=end, &replacement);
    }
    out
}
