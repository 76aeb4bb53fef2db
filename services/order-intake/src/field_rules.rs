//! The rules a request field is checked against (required, type, length, range, format,
//! one_of, count), each recording a [`FieldError`] with the field's path instead of stopping,
//! so one answer can name every failing field.

use std::ops::RangeInclusive;

use orderflow_runtime::problem::FieldError;
use serde_json::Value;

/// The failures found so far.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn fail(&mut self, path: &str, rule: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, rule, message));
    }

    pub fn missing(&mut self, path: &str) {
        self.fail(path, "required", format!("`{path}` is required"));
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// A string of at most `max` characters; absent, null or blank is `required`.
    pub fn text(&mut self, value: &Value, path: &str, max: usize) -> Option<String> {
        match self.optional_text(value, path, max) {
            Some(text) => Some(text),
            None if self.failed_at(path) => None,
            None => {
                self.missing(path);
                None
            }
        }
    }

    /// Like [`Fields::text`], but absent, null or blank means "not given".
    pub fn optional_text(&mut self, value: &Value, path: &str, max: usize) -> Option<String> {
        let raw = match value {
            Value::Null => return None,
            Value::String(s) => s.trim(),
            _ => {
                self.fail(path, "type", "must be a string");
                return None;
            }
        };
        if raw.is_empty() {
            return None;
        }
        if raw.chars().count() > max {
            self.fail(path, "length", format!("at most {max} characters"));
            return None;
        }
        Some(raw.to_owned())
    }

    /// A whole number within `range`.
    pub fn integer(
        &mut self,
        value: &Value,
        path: &str,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let out_of_range = format!("must be from {} to {}", range.start(), range.end());
        match value {
            Value::Null => {
                self.missing(path);
                None
            }
            Value::Number(n) => match n.as_i64() {
                Some(i) if range.contains(&i) => Some(i),
                Some(_) => {
                    self.fail(path, "range", out_of_range);
                    None
                }
                // Beyond i64 either way.
                None if n.is_u64() => {
                    self.fail(path, "range", out_of_range);
                    None
                }
                None => {
                    self.fail(path, "type", "must be a whole number");
                    None
                }
            },
            _ => {
                self.fail(path, "type", "must be a whole number");
                None
            }
        }
    }

    /// A required string read by a domain type's `parse`; its error message is kept.
    pub fn parsed<T>(
        &mut self,
        value: &Value,
        path: &str,
        rule: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if value.is_null() {
            self.missing(path);
            return None;
        }
        self.parsed_optional(value, path, rule, parse)
    }

    /// Like [`Fields::parsed`], but null or absent is `None` without complaint.
    pub fn parsed_optional<T>(
        &mut self,
        value: &Value,
        path: &str,
        rule: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Value::Null => None,
            Value::String(raw) => match parse(raw) {
                Ok(parsed) => Some(parsed),
                Err(message) => {
                    self.fail(path, rule, message);
                    None
                }
            },
            _ => {
                self.fail(path, "type", "must be a string");
                None
            }
        }
    }

    /// One of the named `options`.
    pub fn one_of<T: Copy>(
        &mut self,
        value: &Value,
        path: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        self.parsed(value, path, "one_of", |raw| {
            options
                .iter()
                .find(|(name, _)| *name == raw)
                .map(|(_, option)| *option)
                .ok_or_else(|| {
                    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                    format!("`{raw}` is not one of: {}", names.join(", "))
                })
        })
    }

    /// A list of at most `max_items` non-blank strings of at most `max_len` characters each;
    /// absent or null is an empty list.
    pub fn text_list(
        &mut self,
        value: &Value,
        path: &str,
        max_items: usize,
        max_len: usize,
    ) -> Option<Vec<String>> {
        let items = match value {
            Value::Null => return Some(Vec::new()),
            Value::Array(items) => items,
            _ => {
                self.fail(path, "type", "must be a list of strings");
                return None;
            }
        };
        if items.len() > max_items {
            self.fail(path, "count", format!("at most {max_items} entries"));
            return None;
        }
        let texts: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.text(item, &format!("{path}[{i}]"), max_len))
            .collect();
        texts.into_iter().collect()
    }

    fn failed_at(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.field == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_rule_names_the_field_and_keeps_going() {
        let mut f = Fields::default();
        assert_eq!(f.text(&json!("  Ann  "), "a", 10), Some("Ann".into()));
        assert_eq!(f.text(&json!(""), "b", 10), None);
        assert_eq!(f.text(&json!(7), "c", 10), None);
        assert_eq!(f.text(&json!("x".repeat(11)), "d", 10), None);
        assert_eq!(f.integer(&json!(2.5), "e", 1..=3), None);
        assert_eq!(f.integer(&json!(u64::MAX), "f", 1..=3), None);
        assert_eq!(f.integer(&json!(3), "g", 1..=3), Some(3));
        assert_eq!(f.text_list(&json!(["ok", ""]), "h", 5, 10), None);
        let rules: Vec<(String, String)> = f
            .into_errors()
            .into_iter()
            .map(|e| (e.field, e.rule))
            .collect();
        let expected = [
            ("b", "required"),
            ("c", "type"),
            ("d", "length"),
            ("e", "type"),
            ("f", "range"),
            ("h[1]", "required"),
        ];
        assert_eq!(
            rules,
            expected.map(|(f, r)| (f.to_owned(), r.to_owned())).to_vec()
        );
    }
}
