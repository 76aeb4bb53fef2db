//! The OpenAPI 3.1 document served at `/openapi.json`, built from one table of the warehouse
//! API's operations ([`OPERATIONS`]) and the request schemas. A test calls every documented
//! operation on the real router and fails if one is not routed; a new route needs its line here
//! (the router in [`api`](crate::api) lists them in the same order).

use serde_json::{Map, Value, json};

/// One operation: method, path, the least role, what it does, its body, its answers.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub role: &'static str,
    pub summary: &'static str,
    /// Schema name in `components` of its JSON body, if it takes one.
    pub body: Option<&'static str>,
    /// Status and what it means; every error is a `Problem`.
    pub responses: &'static [(u16, &'static str)],
}

const LIST: &[(u16, &str)] = &[
    (200, "oldest first"),
    (403, "needs staff"),
    (422, "status or limit invalid"),
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/v1/fulfilments/{order_id}",
        role: "staff",
        summary: "The order's fulfilment status and its pick lists, tasks and parcels",
        body: None,
        responses: &[(200, "ok"), (404, "fulfilment does not know the order")],
    },
    Operation {
        method: "get",
        path: "/v1/warehouses",
        role: "staff",
        summary: "Each known warehouse's mode, where it was set, and its open work",
        body: None,
        responses: &[(200, "ok")],
    },
    Operation {
        method: "put",
        path: "/v1/warehouses/{code}/mode",
        role: "admin",
        summary: "Switch a warehouse to automatic or manual; its unfinished pick lists follow",
        body: Some("ModeRequest"),
        responses: &[
            (200, "switched"),
            (403, "needs admin"),
            (422, "unknown mode"),
        ],
    },
    Operation {
        method: "get",
        path: "/v1/warehouses/{code}/pick-lists",
        role: "staff",
        summary: "Unfinished pick lists (open, picked), or those of one status",
        body: None,
        responses: LIST,
    },
    Operation {
        method: "get",
        path: "/v1/warehouses/{code}/tasks",
        role: "staff",
        summary: "Open customisation tasks, or those of one status",
        body: None,
        responses: LIST,
    },
    Operation {
        method: "get",
        path: "/v1/pick-lists/{id}",
        role: "staff",
        summary: "One pick list with its lines, tasks and parcels",
        body: None,
        responses: &[(200, "ok"), (404, "no such pick list")],
    },
    Operation {
        method: "post",
        path: "/v1/pick-lists/{id}/pick",
        role: "staff",
        summary: "Confirm the pick with the units found; less than reserved publishes order.fulfilment_failed",
        body: Some("PickRequest"),
        responses: &[
            (200, "the pick list, picked (or short: nothing found)"),
            (404, "no such pick list"),
            (409, "not open"),
            (
                422,
                "a line missing, unknown, twice, or more found than reserved",
            ),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/pick-lists/{id}/parcels",
        role: "staff",
        summary: "Close a parcel; the last one packs the pick list (and maybe the order)",
        body: Some("ParcelRequest"),
        responses: &[
            (201, "the parcel and the pick list's status"),
            (404, "no such pick list"),
            (409, "not picked yet, tasks open, or finished"),
            (
                422,
                "more units than picked and unpacked, or over the parcel limits",
            ),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/tasks/{id}/complete",
        role: "staff",
        summary: "Mark a customisation task done (after the pick); twice is harmless",
        body: None,
        responses: &[
            (200, "the task"),
            (404, "no such task"),
            (409, "cancelled, or not picked yet"),
        ],
    },
];

fn schemas() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "Problem": {"type": "object", "description": "application/problem+json (RFC 9457)",
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}}}},
        "FieldError": {"type": "object", "properties": {"field": {"type": "string"},
            "rule": {"type": "string"}, "message": {"type": "string"}}},
        "ModeRequest": {"type": "object", "additionalProperties": false, "required": ["mode"],
            "properties": {"mode": {"enum": ["automatic", "manual"]}}},
        "PickRequest": {"type": "object", "additionalProperties": false, "required": ["lines"],
            "properties": {"lines": {"type": "array", "description": "every line of the pick list once",
                "items": {"type": "object", "additionalProperties": false, "required": ["line_no", "found"],
                    "properties": {"line_no": count, "found": count}}}}},
        "ParcelRequest": {"type": "object", "additionalProperties": false, "required": ["lines"],
            "properties": {
                "lines": {"type": "array", "minItems": 1, "items": {"type": "object",
                    "additionalProperties": false, "required": ["line_no", "quantity"],
                    "properties": {"line_no": count, "quantity": {"type": "integer", "minimum": 1}}}},
                "weight_grams": {"type": "integer", "minimum": 0, "description": "measured; else estimated"},
                "dimensions": {"type": "object", "required": ["length_mm", "width_mm", "height_mm"],
                    "description": "measured; else estimated",
                    "properties": {"length_mm": count, "width_mm": count, "height_mm": count}}}},
    })
}

fn parameters(path: &str) -> Vec<Value> {
    let mut parameters = Vec::new();
    for (name, schema) in [
        ("order_id", json!({"type": "string", "format": "uuid"})),
        ("id", json!({"type": "string", "format": "uuid"})),
        ("code", json!({"type": "string"})),
    ] {
        if path.contains(&format!("{{{name}}}")) {
            parameters
                .push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    if path.ends_with("/pick-lists") || path.ends_with("/tasks") {
        parameters.push(json!({"name": "status", "in": "query", "schema": {"type": "string"}}));
        parameters.push(json!({"name": "limit", "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}));
    }
    parameters
}

/// The document.
pub fn document() -> Value {
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut responses = Map::new();
        for (status, what) in op.responses {
            let content = if *status >= 400 {
                problem.clone()
            } else {
                json!({"application/json": {"schema": {}}})
            };
            responses.insert(
                status.to_string(),
                json!({"description": what, "content": content}),
            );
        }
        responses.insert(
            "401".to_owned(),
            json!({"description": "no or unknown API key", "content": problem}),
        );
        let mut operation = json!({
            "summary": op.summary,
            "description": format!("Needs at least the `{}` role.", op.role),
            "parameters": parameters(op.path),
            "responses": responses,
            "security": [{"bearer": []}],
        });
        if let Some(schema) = op.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json":
                {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "orderflow fulfilment", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
