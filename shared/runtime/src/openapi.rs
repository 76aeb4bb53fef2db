//! What every service's OpenAPI document shares, for documents generated from the code with
//! utoipa: the [`Problem`](crate::problem::Problem) error body, the API key scheme exactly as
//! [`auth`](crate::auth) reads it (`Authorization: Bearer <key>`), and the answers every `/v1`
//! operation can give whatever its handler does (401, 403, 500).
//!
//! A service collects its operations with `utoipa_axum`'s `OpenApiRouter` (so every routed
//! operation is documented and nothing else is) and passes the result through [`complete`].
//! With the `openapi-checks` feature, `checks` holds what the services' tests assert about
//! their documents.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{PartialSchema, ToSchema};

/// The security scheme's name in `components.securitySchemes`.
pub const API_KEY_SCHEME: &str = "api_key";

/// One failing field and the rule it broke; mirrors [`FieldError`](crate::problem::FieldError)
/// (a test holds the two together).
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorSchema {
    /// JSON path of the field, e.g. `lines[1].quantity`.
    pub field: String,
    /// Stable rule name, e.g. `required`, `range`, `format`, `one_of`.
    pub rule: String,
    /// What the rule asks for, for a person.
    pub message: String,
}

/// An `application/problem+json` error (RFC 9457); mirrors
/// [`Problem`](crate::problem::Problem) (a test holds the two together). Extra members may
/// follow, e.g. the `order_id` of the existing order on a duplicate's 409.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemSchema {
    /// A URI naming the kind of problem, e.g. `https://orderflow.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every failing field, on a 422.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorSchema>,
}

/// The outer size of a parcel or an item in millimetres; mirrors
/// [`Dimensions`](orderflow_messages::types::Dimensions) (a test holds the two together), which
/// knows nothing of utoipa.
#[derive(Serialize, ToSchema)]
#[schema(as = Dimensions)]
pub struct DimensionsSchema {
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
}

/// Finishes a service's generated document: the API key scheme, required by every operation;
/// the `Problem` and `FieldError` schemas; every error answer (4xx, 5xx) typed as an
/// `application/problem+json` `Problem`; the 401, 403 and 500 that the key check, the role
/// check and a failure can answer on any operation; and, where an operation takes a body, the
/// 400, 413 and 415 that reading it can answer (unless the operation says them itself).
pub fn complete(document: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(document).unwrap_or_else(|_| json!({}));
    let schemas = &mut document["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = json!({});
    }
    schemas["Problem"] = schema_json::<ProblemSchema>();
    schemas["FieldError"] = schema_json::<FieldErrorSchema>();
    document["components"]["securitySchemes"][API_KEY_SCHEME] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, sent as `Authorization: Bearer <key>`. Keys carry a role \
                        (admin, staff, shop, carrier); each operation names the roles it admits.",
    });
    document["security"] = json!([{ API_KEY_SCHEME: [] }]);
    let problem = json!({"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}});
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let has_body = operation.get("requestBody").is_some();
                let Some(responses) = operation["responses"].as_object_mut() else {
                    continue;
                };
                let mut shared = vec![
                    ("401", "no API key, or an unknown one"),
                    ("403", "the key's role may not do this"),
                    ("500", "an internal error; it has been logged"),
                ];
                if has_body {
                    shared.extend([
                        (
                            "400",
                            "the body is malformed or has an unknown field (named)",
                        ),
                        ("413", "the body is too large"),
                        (
                            "415",
                            "the body's content type is not one the operation takes",
                        ),
                    ]);
                }
                for (code, description) in shared {
                    responses
                        .entry(code)
                        .or_insert_with(|| json!({ "description": description }));
                }
                for (code, answer) in responses.iter_mut() {
                    if code.starts_with('4') || code.starts_with('5') {
                        answer["content"] = problem.clone();
                    }
                }
            }
        }
    }
    document
}

/// `GET /openapi.json`, answering the [`complete`]d `document`; it needs no key.
///
/// The document is serialised once and shared: the router (and so this handler) is cloned for
/// every connection, and a document held by value would be copied each time (about a megabyte,
/// which 64 connections made 50 MB of intake's memory).
pub fn route(document: utoipa::openapi::OpenApi) -> axum::Router {
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&complete(document)).expect("an OpenAPI document serialises"),
    );
    axum::Router::new().route(
        "/openapi.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    )
}

fn schema_json<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or_else(|_| json!({}))
}

#[cfg(feature = "openapi-checks")]
pub mod checks {
    //! What a service's tests assert about its document: every schema is valid JSON Schema in
    //! the dialect of OpenAPI 3.1 (2020-12), every operation is guarded and answers errors as
    //! `Problem`s, and real bodies conform to the schemas the document gives them.

    use serde_json::{Value, json};

    const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

    /// Every `(method, path)` the document describes, sorted.
    pub fn operations(document: &Value) -> Vec<(String, String)> {
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                operations.push((method.clone(), path.clone()));
            }
        }
        operations.sort();
        operations
    }

    /// Fails the test unless the document describes exactly the `(method, path)` operations
    /// `expected`, in any order.
    #[track_caller]
    pub fn assert_operations(document: &Value, expected: &[(&str, &str)]) {
        let mut expected: Vec<(String, String)> = expected
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        expected.sort();
        assert_eq!(operations(document), expected);
    }

    /// What is wrong with the document as a whole: its version, its key scheme, an operation
    /// without its roles or without a `Problem` for an error, an invalid schema. Empty if
    /// nothing.
    pub fn faults(document: &Value) -> Vec<String> {
        let mut faults = Vec::new();
        if document["openapi"] != "3.1.0" {
            faults.push(format!("openapi is {}, not 3.1.0", document["openapi"]));
        }
        faults.extend(parser_faults(document));
        let scheme = &document["components"]["securitySchemes"][super::API_KEY_SCHEME];
        if (scheme["type"].as_str(), scheme["scheme"].as_str()) != (Some("http"), Some("bearer")) {
            faults.push(format!("the API key scheme is {scheme}"));
        }
        if document["security"] != json!([{ super::API_KEY_SCHEME: [] }]) {
            faults.push("the API key is not required by default".to_owned());
        }
        for (method, path) in operations(document) {
            let operation = &document["paths"][&path][&method];
            let what = format!("{method} {path}");
            if !operation["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Role: "))
            {
                faults.push(format!(
                    "{what}: the description does not start with its roles"
                ));
            }
            let responses = operation["responses"].as_object();
            for (code, answer) in responses.into_iter().flatten() {
                let problem = &answer["content"]["application/problem+json"]["schema"]["$ref"];
                if (code.starts_with('4') || code.starts_with('5'))
                    && problem != "#/components/schemas/Problem"
                {
                    faults.push(format!("{what} {code} is not a Problem"));
                }
                if code.starts_with('2') && code != "204" && !answer["content"].is_object() {
                    faults.push(format!("{what} {code} has no body"));
                }
            }
            for code in ["401", "403", "500"] {
                if !responses.is_some_and(|r| r.contains_key(code)) {
                    faults.push(format!("{what} does not answer {code}"));
                }
            }
        }
        for (name, schema) in document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let mut schema = schema.clone();
            schema["$schema"] = json!(DIALECT);
            if let Err(e) = jsonschema::meta::validate(&schema) {
                faults.push(format!("{name} is not a valid JSON Schema: {e}"));
            }
            if let Err(e) = jsonschema::validator_for(&standalone(document, &schema)) {
                faults.push(format!("{name} does not compile: {e}"));
            }
        }
        faults
    }

    /// What an independent OpenAPI 3.1 implementation (`oas3`) finds wrong: a document it
    /// cannot read, an unsupported version, a request body or parameter whose reference does
    /// not resolve.
    fn parser_faults(document: &Value) -> Vec<String> {
        let spec = match oas3::from_json(document.to_string()) {
            Ok(spec) => spec,
            Err(e) => return vec![format!("not an OpenAPI 3.1 document: {e}")],
        };
        let mut faults = Vec::new();
        if let Err(e) = spec.validate_version() {
            faults.push(format!("version: {e}"));
        }
        for (path, method, operation) in spec.operations() {
            if let Err(e) = operation.request_body(&spec) {
                faults.push(format!("{method} {path}: request body: {e}"));
            }
            if let Err(e) = operation.parameters(&spec) {
                faults.push(format!("{method} {path}: parameters: {e}"));
            }
        }
        faults
    }

    /// `schema` as a JSON Schema of its own whose `#/components/...` references resolve.
    pub fn standalone(document: &Value, schema: &Value) -> Value {
        let mut standalone = schema.clone();
        standalone["$schema"] = json!(DIALECT);
        standalone["components"] = document["components"].clone();
        standalone
    }

    /// The schema of the JSON body `method path` takes.
    pub fn request_schema(document: &Value, method: &str, path: &str) -> Value {
        let media = &document["paths"][path][method]["requestBody"]["content"]["application/json"];
        standalone(document, &media["schema"])
    }

    /// The schema of what `method path` answers with `status`.
    pub fn answer_schema(document: &Value, method: &str, path: &str, status: u16) -> Value {
        let content = &document["paths"][path][method]["responses"][status.to_string()]["content"];
        let media = content
            .as_object()
            .and_then(|c| c.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        standalone(document, &media["schema"])
    }

    /// Where `instance` breaks `schema`; empty if it conforms.
    pub fn violations(schema: &Value, instance: &Value) -> Vec<String> {
        match jsonschema::validator_for(schema) {
            Err(e) => vec![format!("the schema does not compile: {e}")],
            Ok(validator) => validator
                .iter_errors(instance)
                .map(|e| format!("{e} at `{}`", e.instance_path()))
                .collect(),
        }
    }

    /// Fails the test naming every point where the body `method path` answered with `status`
    /// breaks the document.
    #[track_caller]
    pub fn assert_answer(document: &Value, method: &str, path: &str, status: u16, body: &Value) {
        let schema = answer_schema(document, method, path, status);
        let violations = violations(&schema, body);
        assert!(
            violations.is_empty(),
            "{method} {path} {status}: {violations:?}\n{body}"
        );
    }

    /// Likewise for a body sent to `method path`.
    #[track_caller]
    pub fn assert_request(document: &Value, method: &str, path: &str, body: &Value) {
        let violations = violations(&request_schema(document, method, path), body);
        assert!(
            violations.is_empty(),
            "{method} {path}: {violations:?}\n{body}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{FieldError, Problem};

    #[test]
    fn the_dimensions_schema_has_the_members_dimensions_have() {
        let real = serde_json::to_value(orderflow_messages::types::Dimensions {
            length_mm: 1,
            width_mm: 2,
            height_mm: 3,
        })
        .expect("json");
        let schema = schema_json::<DimensionsSchema>();
        let documented: Vec<&String> = schema["properties"]
            .as_object()
            .expect("props")
            .keys()
            .collect();
        let served: Vec<&String> = real.as_object().expect("object").keys().collect();
        assert_eq!(documented, served);
    }

    #[cfg(feature = "openapi-checks")]
    #[test]
    fn a_broken_document_is_found_out() {
        let document = complete(utoipa::openapi::OpenApi::default());
        assert_eq!(super::checks::faults(&document), Vec::<String>::new());
        let mut broken = document.clone();
        broken["paths"] = json!({"/v1/x": {"post": {
            "description": "Role: `admin`.",
            "requestBody": {"$ref": "#/components/requestBodies/Missing"},
            "responses": {"200": {"description": "ok", "content": {"application/json": {}}}}}}});
        let faults = super::checks::faults(&broken);
        assert!(
            faults.iter().any(|f| f.contains("request body")),
            "{faults:?}"
        );
        assert!(
            faults.iter().any(|f| f.contains("does not answer 401")),
            "{faults:?}"
        );
        let mut broken = document;
        broken["components"]["schemas"]["Bad"] = json!({"type": "no-such-type"});
        let faults = super::checks::faults(&broken);
        assert!(
            faults.iter().any(|f| f.starts_with("not an OpenAPI")),
            "{faults:?}"
        );
        assert!(faults.iter().any(|f| f.starts_with("Bad ")), "{faults:?}");
    }

    /// The mirrors have exactly the members the real types serialise.
    #[test]
    fn the_problem_schema_has_the_members_a_problem_has() {
        let real = serde_json::to_value(
            Problem::validation(vec![FieldError::new("url", "https", "must be https")])
                .with("order_id", "x"),
        )
        .expect("json");
        let schema = schema_json::<ProblemSchema>();
        let mut documented: Vec<&String> = schema["properties"]
            .as_object()
            .expect("props")
            .keys()
            .collect();
        let mut served: Vec<&String> = real
            .as_object()
            .expect("object")
            .keys()
            .filter(|k| *k != "order_id")
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
        let field = schema_json::<FieldErrorSchema>();
        let mut documented: Vec<&String> = field["properties"]
            .as_object()
            .expect("props")
            .keys()
            .collect();
        documented.sort();
        let mut served: Vec<&String> = real["errors"][0]
            .as_object()
            .expect("error")
            .keys()
            .collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
