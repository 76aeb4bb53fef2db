//! Malformed HTTP requests against every operation of the five services, from a seeded
//! generator: each valid request is mutated — broken or truncated JSON, bad UTF-8, a field of
//! the wrong type, a field missing or unknown, a body that is not an object, nested too deep or
//! over the size limit, a wrong or missing content type, a missing, unknown or malformed key or
//! one of too low a role, a wrong method, bad path parameters and query strings. Every answer
//! must be below 500.
//!
//! Path parameters name things of their own (`hostile-…`), never what the shop's orders use, so
//! a mutation that happens to be valid (a product, a carrier, a warehouse mode) disturbs nothing.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::replicas::Ports;

/// One operation: its service, method, path (with `{}` for the one path parameter, if any), a
/// good value for that parameter, the query parameters it reads, a valid body and the key of a
/// role allowed to call it.
struct Operation {
    service: &'static str,
    method: Method,
    path: &'static str,
    param: String,
    query: &'static [&'static str],
    body: Option<Value>,
    key: &'static str,
}

const ADMIN: &str = "dev-admin-key";
const STAFF: &str = "dev-staff-key";
const SHOP: &str = "dev-shop-key";

fn operations() -> Vec<Operation> {
    let id = || Uuid::now_v7().to_string();
    let address = json!({"name": "Ann", "line1": "Hauptstr. 1", "postal_code": "10115",
        "city": "Berlin", "country": "DE"});
    let order = json!({"channel": "web", "external_reference": "hostile-1",
        "customer": {"email": "ann@example.com", "name": "Ann"}, "currency": "EUR",
        "lines": [{"sku": "HOSTILE-SKU", "quantity": 1, "unit_price": 100}],
        "shipping_address": address, "delivery": {"shipping_method": "standard"},
        "payment": {"method": "card", "token": "tok_visa"}});
    let op = |service, method, path, param: String, query, body, key| Operation {
        service,
        method,
        path,
        param,
        query,
        body,
        key,
    };
    use Method as M;
    vec![
        op(
            "order-intake",
            M::POST,
            "/v1/orders",
            String::new(),
            &[],
            Some(order.clone()),
            SHOP,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/orders",
            String::new(),
            &[
                "status",
                "channel",
                "customer_email",
                "placed_after",
                "placed_before",
                "limit",
                "cursor",
            ],
            None,
            STAFF,
        ),
        op(
            "order-intake",
            M::POST,
            "/v1/orders/import",
            String::new(),
            &[],
            Some(json!([order])),
            STAFF,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/orders/stats",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/orders/{}",
            id(),
            &[],
            None,
            SHOP,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/orders/{}/timeline",
            id(),
            &[],
            None,
            SHOP,
        ),
        op(
            "order-intake",
            M::POST,
            "/v1/orders/{}/cancel",
            id(),
            &[],
            Some(json!({"reason": "no"})),
            SHOP,
        ),
        op(
            "order-intake",
            M::PUT,
            "/v1/orders/{}/payment-method",
            id(),
            &[],
            Some(json!({"method": "card", "token": "tok_visa"})),
            SHOP,
        ),
        op(
            "order-intake",
            M::POST,
            "/v1/orders/{}/feedback",
            id(),
            &[],
            Some(json!({"rating": 5, "comment": "fine"})),
            SHOP,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/orders/{}/notifications",
            id(),
            &[],
            None,
            SHOP,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/feedback/summary",
            String::new(),
            &["from", "to"],
            None,
            STAFF,
        ),
        op(
            "order-intake",
            M::POST,
            "/v1/webhooks",
            String::new(),
            &[],
            Some(json!({"url": "https://hooks.example/h", "secret": "0123456789abcdef0123"})),
            SHOP,
        ),
        op(
            "order-intake",
            M::GET,
            "/v1/webhooks",
            String::new(),
            &[],
            None,
            SHOP,
        ),
        op(
            "order-intake",
            M::DELETE,
            "/v1/webhooks/{}",
            id(),
            &[],
            None,
            SHOP,
        ),
        op(
            "verification",
            M::PUT,
            "/v1/products/{}",
            "HOSTILE-SKU".into(),
            &[],
            Some(
                json!({"name": "Hostile", "unit_price": 100, "currency": "EUR", "tax_class": "standard",
                "weight_grams": 100, "dimensions": {"length_mm": 1, "width_mm": 1, "height_mm": 1},
                "active": true, "allow_backorder": false, "reorder_point": 1, "reorder_quantity": 2,
                "customisation_options": ["engraving"]}),
            ),
            ADMIN,
        ),
        op(
            "verification",
            M::GET,
            "/v1/products/{}",
            "HOSTILE-SKU".into(),
            &[],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::GET,
            "/v1/products",
            String::new(),
            &["limit", "offset"],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::POST,
            "/v1/products/import",
            String::new(),
            &[],
            Some(
                json!([{"sku": "HOSTILE-2", "name": "H", "unit_price": 1, "currency": "EUR",
                "tax_class": "zero", "weight_grams": 1}]),
            ),
            ADMIN,
        ),
        op(
            "verification",
            M::PUT,
            "/v1/customers/{}",
            "hostile-customer".into(),
            &[],
            Some(
                json!({"name": "Ann", "email": "ann@example.com", "addresses": [address],
                "blocked": false, "payment_methods": ["card"]}),
            ),
            ADMIN,
        ),
        op(
            "verification",
            M::GET,
            "/v1/customers/{}",
            "hostile-customer".into(),
            &[],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::GET,
            "/v1/customers",
            String::new(),
            &["limit", "offset"],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::PUT,
            "/v1/warehouses/{}",
            "hostile-wh".into(),
            &[],
            Some(json!({"name": "Hostile"})),
            ADMIN,
        ),
        op(
            "verification",
            M::GET,
            "/v1/warehouses",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::POST,
            "/v1/warehouses/{}/receipts",
            "hostile-wh".into(),
            &[],
            Some(json!({"lines": [{"sku": "HOSTILE-SKU", "quantity": 1}], "reason": "r"})),
            ADMIN,
        ),
        op(
            "verification",
            M::POST,
            "/v1/warehouses/{}/adjustments",
            "hostile-wh".into(),
            &[],
            Some(json!({"sku": "HOSTILE-SKU", "delta": -1, "reason": "r"})),
            ADMIN,
        ),
        op(
            "verification",
            M::GET,
            "/v1/stock",
            String::new(),
            &["sku", "warehouse"],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::GET,
            "/v1/stock/low",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "verification",
            M::GET,
            "/v1/backorders",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::GET,
            "/v1/fulfilments/{}",
            id(),
            &[],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::GET,
            "/v1/warehouses",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::PUT,
            "/v1/warehouses/{}/mode",
            "hostile-wh".into(),
            &[],
            Some(json!({"mode": "automatic"})),
            ADMIN,
        ),
        op(
            "fulfilment",
            M::GET,
            "/v1/warehouses/{}/pick-lists",
            "hostile-wh".into(),
            &["status", "limit"],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::GET,
            "/v1/warehouses/{}/tasks",
            "hostile-wh".into(),
            &["status", "limit"],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::GET,
            "/v1/pick-lists/{}",
            id(),
            &[],
            None,
            STAFF,
        ),
        op(
            "fulfilment",
            M::POST,
            "/v1/pick-lists/{}/pick",
            id(),
            &[],
            Some(json!({"lines": [{"line_no": 1, "found": 1}]})),
            STAFF,
        ),
        op(
            "fulfilment",
            M::POST,
            "/v1/pick-lists/{}/parcels",
            id(),
            &[],
            Some(
                json!({"lines": [{"line_no": 1, "quantity": 1}], "weight_grams": 10,
                "dimensions": {"length_mm": 1, "width_mm": 1, "height_mm": 1}}),
            ),
            STAFF,
        ),
        op(
            "fulfilment",
            M::POST,
            "/v1/tasks/{}/complete",
            id(),
            &[],
            None,
            STAFF,
        ),
        op(
            "shipping",
            M::GET,
            "/v1/shipments",
            String::new(),
            &["order_id"],
            None,
            SHOP,
        ),
        op(
            "shipping",
            M::GET,
            "/v1/shipments/{}",
            id(),
            &[],
            None,
            SHOP,
        ),
        op(
            "shipping",
            M::POST,
            "/v1/shipments/{}/collected",
            id(),
            &[],
            None,
            STAFF,
        ),
        op(
            "shipping",
            M::GET,
            "/v1/carriers",
            String::new(),
            &[],
            None,
            STAFF,
        ),
        op(
            "shipping",
            M::PUT,
            "/v1/carriers/{}",
            "hostile".into(),
            &[],
            Some(json!({"name": "Hostile", "service_levels": ["standard"],
                "tracking_url_template": "https://h.example/{tracking_number}", "cash_on_delivery": false})),
            ADMIN,
        ),
        op(
            "shipping",
            M::GET,
            "/v1/carriers/{}",
            "hostile".into(),
            &[],
            None,
            STAFF,
        ),
        op(
            "shipping",
            M::POST,
            "/v1/carriers/{}/webhook",
            "sim".into(),
            &[],
            Some(json!({"message_id": id(), "type": "shipment.tracking_updated", "payload": {}})),
            "",
        ),
        op(
            "billing",
            M::GET,
            "/v1/invoices",
            String::new(),
            &["from", "to"],
            None,
            STAFF,
        ),
        op(
            "billing",
            M::GET,
            "/v1/invoices/{}",
            "INV-2026-000001".into(),
            &[],
            None,
            STAFF,
        ),
        op(
            "billing",
            M::GET,
            "/v1/payments",
            String::new(),
            &["order_id", "reference"],
            None,
            STAFF,
        ),
        op(
            "billing",
            M::POST,
            "/v1/payments",
            String::new(),
            &[],
            Some(
                json!({"invoice_number": "INV-2026-999999", "amount": {"amount": 3000, "currency": "EUR"},
                "reference": "BANK-H"}),
            ),
            STAFF,
        ),
        op(
            "billing",
            M::POST,
            "/v1/orders/{}/refunds",
            id(),
            &[],
            Some(
                json!({"lines": [{"position": 1, "quantity": 1}], "shipping": true, "reason": "r"}),
            ),
            STAFF,
        ),
        op(
            "billing",
            M::PUT,
            "/v1/coupons/{}",
            "HOSTILE10".into(),
            &[],
            Some(
                json!({"kind": "percent", "percent": "10", "skus": ["HOSTILE-SKU"], "active": true,
                "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z",
                "minimum_amount": 100, "currency": "EUR"}),
            ),
            ADMIN,
        ),
        op(
            "billing",
            M::GET,
            "/v1/coupons/{}",
            "HOSTILE10".into(),
            &[],
            None,
            STAFF,
        ),
    ]
}

/// How a request is made hostile.
const MUTATIONS: [&str; 16] = [
    "truncated json",
    "bad utf-8",
    "wrong type",
    "missing field",
    "unknown field",
    "not an object",
    "nested too deep",
    "over the size limit",
    "wrong content type",
    "no content type",
    "no key",
    "bad key",
    "role too low",
    "wrong method",
    "bad path parameter",
    "bad query",
];

/// Paths to every leaf and object of `v` (object keys and array indices).
fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let mut p = prefix.clone();
                p.push(k.clone());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, key| match v {
        Value::Object(o) => o.get_mut(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// A value of another type than `v` (or an absurd one of the same type).
fn other_type(dice: &mut StdRng, v: &Value) -> Value {
    let candidates = match v {
        Value::String(_) => vec![
            json!(12),
            json!(["a"]),
            json!({}),
            json!(true),
            json!("\u{0}"),
            json!("x".repeat(100_000)),
            json!("💥"),
        ],
        Value::Number(_) => vec![
            json!("12"),
            json!(-1),
            json!(1.5),
            json!(1e308),
            json!(18446744073709551615u64),
            json!(-9223372036854775808i64),
            json!(null),
        ],
        Value::Bool(_) => vec![json!("true"), json!(1), json!(null)],
        Value::Array(_) => vec![json!({}), json!("list"), json!([null, 1, "x"]), json!(null)],
        Value::Object(_) => vec![json!([]), json!("object"), json!(0), json!(null)],
        Value::Null => vec![json!({"x": 1}), json!(0)],
    };
    candidates.choose(dice).cloned().unwrap_or(Value::Null)
}

struct Request {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    authorization: Option<HeaderValue>,
    body: Option<Vec<u8>>,
}

fn mutate(dice: &mut StdRng, op: &Operation, mutation: &str) -> Request {
    let bearer = |k: &str| HeaderValue::from_str(&format!("Bearer {k}")).ok();
    let mut request = Request {
        method: op.method.clone(),
        path: op.path.replace("{}", &op.param),
        content_type: op.body.as_ref().map(|_| "application/json"),
        authorization: bearer(op.key),
        body: op
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap_or_default()),
    };
    // Mutations of the body apply to operations without one as a body they do not expect.
    let mut body = op
        .body
        .clone()
        .unwrap_or_else(|| json!({"unexpected": true}));
    match mutation {
        "truncated json" => {
            let text = serde_json::to_vec(&body).unwrap_or_default();
            let cut = dice.random_range(0..text.len().max(1));
            request.body = Some(text[..cut].to_vec());
            request.content_type = Some("application/json");
        }
        "bad utf-8" => {
            let mut text = serde_json::to_vec(&body).unwrap_or_default();
            let quote = text.iter().position(|b| *b == b'"').unwrap_or(0);
            text.splice(quote + 1..quote + 1, [0xff, 0xc3, 0x28]);
            request.body = Some(text);
            request.content_type = Some("application/json");
        }
        "wrong type" | "missing field" | "unknown field" => {
            let mut all = Vec::new();
            paths(&body, Vec::new(), &mut all);
            if let Some(path) = all.choose(dice).cloned() {
                match mutation {
                    "wrong type" => {
                        if let Some(v) = at(&mut body, &path) {
                            *v = other_type(dice, &v.clone());
                        }
                    }
                    "missing field" => {
                        let (last, parent) = path.split_last().expect("a path");
                        match at(&mut body, parent) {
                            Some(Value::Object(o)) => {
                                o.remove(last);
                            }
                            Some(Value::Array(a)) => {
                                a.clear();
                            }
                            _ => {}
                        }
                    }
                    _ => {
                        if let Some(Value::Object(o)) = at(&mut body, &path[..path.len() - 1]) {
                            o.insert("hostile_unknown_field".into(), json!(1));
                        }
                    }
                }
            }
            request.body = Some(serde_json::to_vec(&body).unwrap_or_default());
            request.content_type = Some("application/json");
        }
        "not an object" => {
            let v = [
                json!([]),
                json!(42),
                json!("body"),
                json!(null),
                json!([body]),
            ]
            .choose(dice)
            .cloned()
            .unwrap_or(Value::Null);
            request.body = Some(serde_json::to_vec(&v).unwrap_or_default());
            request.content_type = Some("application/json");
        }
        "nested too deep" => {
            let depth = dice.random_range(200..50_000);
            let mut text = br#"{"a":"#.to_vec();
            text.extend(std::iter::repeat_n(b'[', depth));
            text.extend(std::iter::repeat_n(b']', depth));
            text.push(b'}');
            request.body = Some(text);
            request.content_type = Some("application/json");
        }
        "over the size limit" => {
            let pad = "x".repeat(5 * 1024 * 1024 + dice.random_range(0..1000));
            if let Value::Object(o) = &mut body {
                o.insert("pad".into(), json!(pad));
            }
            request.body = Some(serde_json::to_vec(&body).unwrap_or_default());
            request.content_type = Some("application/json");
        }
        "wrong content type" => {
            request.content_type = [
                "text/plain",
                "application/xml",
                "multipart/form-data",
                "application/json; charset=latin1",
                "text/csv",
                "application/x-ndjson",
                "*/*",
            ]
            .choose(dice)
            .copied();
            request.body.get_or_insert_with(|| b"{}".to_vec());
        }
        "no content type" => {
            request.content_type = None;
            request.body.get_or_insert_with(|| b"{}".to_vec());
        }
        "no key" => request.authorization = None,
        "bad key" => {
            request.authorization = [
                HeaderValue::from_static("Bearer not-a-key"),
                HeaderValue::from_static("Basic YWRtaW46YWRtaW4="),
                HeaderValue::from_static("Bearer"),
                HeaderValue::from_static("bearer  dev-admin-key "),
                HeaderValue::from_str(&format!("Bearer {}", "k".repeat(6000))).expect("ascii"),
                HeaderValue::from_bytes(b"Bearer \xff\xfe-key").expect("obs-text"),
            ]
            .choose(dice)
            .cloned();
        }
        "role too low" => {
            let lower = match op.key {
                ADMIN => STAFF,
                STAFF => SHOP,
                _ => "dev-carrier-key",
            };
            request.authorization = bearer(lower);
        }
        "wrong method" => {
            let others: Vec<Method> = [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
            ]
            .into_iter()
            .filter(|m| *m != op.method)
            .collect();
            request.method = others.choose(dice).cloned().unwrap_or(Method::PATCH);
        }
        "bad path parameter" => {
            let bad = [
                "not-a-uuid",
                "%ff%fe",
                "%00",
                "..%2F..%2Fetc%2Fpasswd",
                "%C3%BC%E2%82%AC",
                "-1",
                "00000000-0000-0000-0000-000000000000",
                "a%20b",
                "%F0%9F%92%A5",
                "'%20OR%201=1--",
            ]
            .choose(dice)
            .map(|s| s.to_string())
            .unwrap_or_default();
            let bad = if dice.random_bool(0.2) {
                "x".repeat(8000)
            } else {
                bad
            };
            let path = if op.path.contains("{}") {
                op.path.replace("{}", &bad)
            } else {
                format!("{}/{bad}", op.path)
            };
            request.path = path;
        }
        "bad query" => {
            let value = [
                "-1",
                "abc",
                "99999999999999999999",
                "%ff",
                "2026-13-45",
                "",
                "%00",
                "1e9",
                "0",
                "'",
                "2026-11-27T25:61:00Z",
                "🙂",
            ]
            .choose(dice)
            .copied()
            .unwrap_or("");
            let name = op.query.choose(dice).copied().unwrap_or("unknown");
            let extra = if dice.random_bool(0.3) {
                format!("&{name}=1&{name}=2")
            } else {
                String::new()
            };
            request.path = format!("{}?{name}={value}{extra}", request.path);
        }
        _ => unreachable!("unknown mutation {mutation}"),
    }
    request
}

/// Sends every mutation of every operation `rounds` times; returns how many requests were sent
/// and a line for each answer of 500 or more.
pub async fn attack(ports: &Ports, dice: &mut StdRng, rounds: usize) -> (usize, Vec<String>) {
    // A new connection per request: a server may close one after refusing a body it did not
    // read, and a request on a connection closed under it would be a failure of the test.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");
    let mut sent = 0;
    let mut failures = Vec::new();
    for _ in 0..rounds {
        for op in operations() {
            for mutation in MUTATIONS {
                let r = mutate(dice, &op, mutation);
                let url = format!("http://127.0.0.1:{}{}", ports[op.service], r.path);
                let mut builder = client.request(r.method.clone(), &url);
                if let Some(auth) = r.authorization {
                    builder = builder.header(AUTHORIZATION, auth);
                }
                if let Some(ct) = r.content_type {
                    builder = builder.header(CONTENT_TYPE, ct);
                }
                if let Some(body) = r.body {
                    builder = builder.body(body);
                }
                sent += 1;
                let shown: String = url.chars().take(160).collect();
                match builder.send().await {
                    Ok(response) if response.status().is_server_error() => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        let text: String = text.chars().take(300).collect();
                        failures.push(format!(
                            "{} {shown} ({mutation}): {status} {text}",
                            r.method
                        ));
                    }
                    Ok(_) => {}
                    // A server may close the connection on a body over its limit before reading
                    // it all; that is a refusal, not a failure. Anything else is.
                    Err(e) if mutation == "over the size limit" && !e.is_timeout() => {}
                    Err(e) => {
                        // The error repeats the URL, which may be 8000 characters long.
                        let e: String = format!("{e:?}").chars().take(300).collect();
                        failures.push(format!("{} {shown} ({mutation}): {e}", r.method));
                    }
                }
            }
        }
    }
    (sent, failures)
}
