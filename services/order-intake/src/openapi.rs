//! The OpenAPI 3.1 document served at `/openapi.json`, built from one table of the API's
//! operations ([`OPERATIONS`]) and the request schemas. A test calls every documented operation
//! on the real router and fails if one is not routed; a new route needs its line here (the
//! router in [`api`](crate::api) lists them in the same order, to make that easy to review).

use serde_json::{Map, Value, json};

/// One operation: method, path, the least role, what it does, its body, its answers.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub role: &'static str,
    pub summary: &'static str,
    /// Content type and schema name in `components`, if it takes a body.
    pub body: Option<(&'static str, &'static str)>,
    /// Status and what it means; every error is a `Problem`.
    pub responses: &'static [(u16, &'static str)],
}

const READ: &[(u16, &str)] = &[
    (200, "ok"),
    (400, "malformed id"),
    (404, "no such order (or another shop's)"),
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "/v1/orders",
        role: "shop",
        summary: "Place an order; honours Idempotency-Key",
        body: Some(("application/json", "OrderRequest")),
        responses: &[
            (201, "placed (or replayed)"),
            (400, "unknown field or malformed JSON"),
            (409, "same channel and external_reference exists"),
            (413, "body too large"),
            (415, "not JSON"),
            (422, "fields failed validation, or Idempotency-Key reused"),
        ],
    },
    Operation {
        method: "get",
        path: "/v1/orders",
        role: "shop",
        summary: "List orders newest first (a shop: its own), filtered, paged by cursor",
        body: None,
        responses: &[
            (200, "a page: orders and next_cursor"),
            (422, "a filter failed validation"),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/orders/import",
        role: "staff",
        summary: "Import orders from CSV (text/csv) or JSON Lines (application/x-ndjson)",
        body: Some(("text/csv", "ImportCsv")),
        responses: &[
            (200, "report per row"),
            (400, "unreadable file or unknown columns"),
            (403, "needs staff"),
            (415, "neither CSV nor JSON Lines"),
        ],
    },
    Operation {
        method: "get",
        path: "/v1/orders/stats",
        role: "staff",
        summary: "Orders per status",
        body: None,
        responses: &[(200, "counts")],
    },
    Operation {
        method: "get",
        path: "/v1/orders/{id}",
        role: "shop",
        summary: "The order: status, shipments, invoice, payment, timeline",
        body: None,
        responses: READ,
    },
    Operation {
        method: "get",
        path: "/v1/orders/{id}/timeline",
        role: "shop",
        summary: "Every event with time, cause and who acted",
        body: None,
        responses: READ,
    },
    Operation {
        method: "post",
        path: "/v1/orders/{id}/cancel",
        role: "shop",
        summary: "Ask to cancel (the owning shop or staff)",
        body: Some(("application/json", "CancelRequest")),
        responses: &[
            (202, "requested"),
            (404, "no such order"),
            (409, "shipped, cancelled, rejected or completed"),
            (422, "reason missing"),
        ],
    },
    Operation {
        method: "put",
        path: "/v1/orders/{id}/payment-method",
        role: "shop",
        summary: "A new payment method before invoicing",
        body: Some(("application/json", "PaymentRequest")),
        responses: &[
            (202, "changed; billing authorises again"),
            (404, "no such order"),
            (409, "invoiced or finished"),
            (422, "method or token invalid"),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/orders/{id}/feedback",
        role: "shop",
        summary: "Rate a delivered order once",
        body: Some(("application/json", "FeedbackRequest")),
        responses: &[
            (201, "recorded"),
            (404, "no such order"),
            (409, "not delivered, or rated already"),
            (422, "rating not 1 to 5"),
        ],
    },
    Operation {
        method: "get",
        path: "/v1/orders/{id}/notifications",
        role: "shop",
        summary: "The order's delivery log",
        body: None,
        responses: READ,
    },
    Operation {
        method: "get",
        path: "/v1/feedback/summary",
        role: "staff",
        summary: "Count, average and distribution of ratings, by period (from, to)",
        body: None,
        responses: &[(200, "summary"), (422, "from or to invalid")],
    },
    Operation {
        method: "post",
        path: "/v1/webhooks",
        role: "shop",
        summary: "Subscribe a URL to the status changes of the shop's orders",
        body: Some(("application/json", "WebhookRequest")),
        responses: &[
            (201, "subscribed; the secret is shown once"),
            (422, "URL or secret invalid"),
        ],
    },
    Operation {
        method: "get",
        path: "/v1/webhooks",
        role: "shop",
        summary: "The shop's subscriptions",
        body: None,
        responses: &[(200, "subscriptions")],
    },
    Operation {
        method: "delete",
        path: "/v1/webhooks/{id}",
        role: "shop",
        summary: "Unsubscribe",
        body: None,
        responses: &[
            (204, "deleted"),
            (404, "no such webhook (or another shop's)"),
        ],
    },
];

fn schemas() -> Value {
    let text = json!({"type": "string"});
    let address = json!({"type": "object", "required": ["name", "line1", "postal_code", "city", "country"],
        "properties": {"name": text, "line1": text, "line2": text, "postal_code": text, "city": text,
            "country": {"type": "string", "description": "ISO 3166-1 alpha-2"}, "phone": text}});
    json!({
        "Problem": {"type": "object", "description": "application/problem+json (RFC 9457)",
            "properties": {"type": text, "title": text, "status": {"type": "integer"}, "detail": text,
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}}}},
        "FieldError": {"type": "object", "properties": {"field": text, "rule": text, "message": text}},
        "Address": address,
        "PaymentRequest": {"type": "object", "required": ["method"], "properties": {
            "method": {"enum": ["card", "invoice", "cash_on_delivery", "bank_transfer", "prepaid"]},
            "token": {"type": "string", "description": "provider token (card) or the shop's reference (prepaid)"}}},
        "OrderRequest": {"type": "object", "additionalProperties": false,
            "required": ["channel", "customer", "currency", "lines", "shipping_address", "delivery", "payment"],
            "properties": {
                "channel": {"enum": ["web", "api", "phone", "email", "in_person", "marketplace"]},
                "external_reference": text,
                "customer": {"type": "object", "required": ["email", "name"], "properties": {"email": text, "name": text, "customer_id": text}},
                "currency": {"type": "string", "description": "ISO 4217"},
                "lines": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "object",
                    "required": ["sku", "quantity", "unit_price"], "properties": {"sku": text,
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "unit_price": {"type": "integer", "minimum": 0, "description": "minor units"},
                        "customisations": {"type": "array", "items": text}}}},
                "shipping_address": {"$ref": "#/components/schemas/Address"},
                "billing_address": {"$ref": "#/components/schemas/Address"},
                "delivery": {"type": "object", "required": ["shipping_method"], "properties": {
                    "shipping_method": text, "requested_date": {"type": "string", "format": "date"},
                    "instructions": text, "gift_note": text}},
                "payment": {"$ref": "#/components/schemas/PaymentRequest"},
                "coupon_code": text}},
        "ImportCsv": {"type": "string", "description": "CSV with a header row; see the README for the columns. JSON Lines (application/x-ndjson) takes one OrderRequest per line."},
        "CancelRequest": {"type": "object", "required": ["reason"], "properties": {"reason": text}},
        "FeedbackRequest": {"type": "object", "required": ["rating"], "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": text}},
        "WebhookRequest": {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "format": "uri"}, "secret": {"type": "string", "minLength": 16}}},
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut responses = Map::new();
        for (status, what) in op.responses {
            let schema = if *status >= 400 {
                json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
            } else {
                json!({"application/json": {"schema": {}}})
            };
            let mut answer = json!({"description": what});
            if *status != 204 {
                answer["content"] = schema;
            }
            responses.insert(status.to_string(), answer);
        }
        responses.insert(
            "401".to_owned(),
            json!({"description": "no or unknown API key", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
        let mut operation = json!({
            "summary": op.summary,
            "description": format!("Needs at least the `{}` role.", op.role),
            "responses": responses,
            "security": [{"bearer": []}],
        });
        if op.path.contains("{id}") {
            operation["parameters"] = json!([{"name": "id", "in": "path", "required": true,
                "schema": {"type": "string", "format": "uuid"}}]);
        }
        if let Some((content_type, schema)) = op.body {
            operation["requestBody"] = json!({"required": true, "content": {
                content_type: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "orderflow order-intake", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
