//! JSON Schema export. `cargo run -p orderflow -- schemas` (or the test below with
//! `UPDATE_SCHEMAS=1`) writes one file per event type into `shared/messages/schemas/`; the test
//! fails when a file is missing or stale, so the published schemas always match the code.

use std::path::Path;

use crate::catalogue;

/// Every schema file: (file name, pretty JSON ending in a newline).
pub fn files() -> Vec<(String, String)> {
    catalogue::all()
        .into_iter()
        .map(|event| {
            let mut schema = (event.schema)();
            schema.insert(
                "$id".into(),
                format!("https://orderflow.dev/schemas/{}.json", event.name).into(),
            );
            schema.insert(
                "title".into(),
                format!("{} (schema_version {})", event.name, event.schema_version).into(),
            );
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
            (format!("{}.json", event.name), text)
        })
        .collect()
}

/// Writes every schema file into `dir`, removing stale ones of ours.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files = files();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".json") && !files.iter().any(|(f, _)| f == name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_schema_files_match_the_message_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            write_all(&dir).expect("write schemas");
        }
        let mut stale = Vec::new();
        for (name, expected) in files() {
            match std::fs::read_to_string(dir.join(&name)) {
                Ok(actual) if actual == expected => {}
                _ => stale.push(name),
            }
        }
        let on_disk = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(
            stale.is_empty() && on_disk == files().len(),
            "schemas in {} are stale ({stale:?}, {on_disk} files on disk); \
             run `UPDATE_SCHEMAS=1 cargo test -p orderflow-messages` and commit the result",
            dir.display()
        );
    }

    #[test]
    fn a_schema_describes_the_envelope_and_its_payload() {
        let (_, text) = files()
            .into_iter()
            .find(|(name, _)| name == "order.placed.json")
            .expect("order.placed schema");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("json");
        let required = schema["required"].as_array().expect("required list");
        for field in ["message_id", "type", "order_id", "payload"] {
            assert!(required.iter().any(|r| r == field), "{field} not required");
        }
    }
}
