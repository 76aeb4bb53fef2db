//! A shop placing orders over the public HTTP API, as the chaos suite needs it: stock that
//! suffices, card payments (an invoice paid by transfer waits for money, a person's step), one
//! order in 50 for an unknown SKU (rejected on purpose), and retries while a replica restarts;
//! then waiting until every order is final and asserting each ended as intended.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

const PRODUCTS: &[(&str, i64, &str, u32)] = &[
    ("MUG-BLUE", 1250, "standard", 350),
    ("TEA-SENCHA", 890, "reduced", 120),
    ("BOOK-RUST", 3990, "reduced", 900),
    ("LAMP-DESK", 4900, "standard", 1800),
];
const WAREHOUSES: &[&str] = &["berlin", "leipzig"];
const ADMIN: &str = "dev-admin-key";
const SHOP: &str = "dev-shop-key";

/// Sends until the service answers below 500 (it may be restarting), for up to two minutes.
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut request = client
            .request(method.clone(), url)
            .bearer_auth(key)
            .json(body);
        if let Some(k) = idempotency_key {
            request = request.header("Idempotency-Key", k);
        }
        if let Ok(response) = request.send().await
            && response.status().as_u16() < 500
        {
            let status = response.status().as_u16();
            return (status, response.json().await.unwrap_or(Value::Null));
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer for two minutes"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Warehouses, products and `units` of each product in each warehouse.
pub async fn stock_up(client: &reqwest::Client, verification: &str, units: i64) {
    for code in WAREHOUSES {
        let url = format!("{verification}/v1/warehouses/{code}");
        let (status, body) = send(
            client,
            reqwest::Method::PUT,
            &url,
            ADMIN,
            &json!({"name": code}),
            None,
        )
        .await;
        assert!(status < 300, "PUT {url}: {status} {body}");
    }
    for (sku, price, tax_class, weight) in PRODUCTS {
        let url = format!("{verification}/v1/products/{sku}");
        let product = json!({"name": sku, "unit_price": price, "currency": "EUR",
            "tax_class": tax_class, "weight_grams": weight, "active": true});
        let (status, body) = send(client, reqwest::Method::PUT, &url, ADMIN, &product, None).await;
        assert!(status < 300, "PUT {url}: {status} {body}");
    }
    for code in WAREHOUSES {
        let lines: Vec<Value> = PRODUCTS
            .iter()
            .map(|(sku, ..)| json!({"sku": sku, "quantity": units}))
            .collect();
        let url = format!("{verification}/v1/warehouses/{code}/receipts");
        let body = json!({"lines": lines, "reason": "chaos stock"});
        let (status, answer) = send(client, reqwest::Method::POST, &url, ADMIN, &body, None).await;
        assert!(status < 300, "POST {url}: {status} {answer}");
    }
}

/// The `i`th order of a run, and whether it is meant to be rejected.
pub fn order(run: &str, i: usize) -> (Value, bool) {
    let mut lines: Vec<Value> = (0..1 + i % 3)
        .map(|k| {
            let (sku, price, ..) = PRODUCTS[(i + k) % PRODUCTS.len()];
            json!({"sku": sku, "quantity": 1 + (i + k) % 3, "unit_price": price})
        })
        .collect();
    let rejected = i % 50 == 49;
    if rejected {
        lines.push(json!({"sku": "NO-SUCH-SKU", "quantity": 1, "unit_price": 100}));
    }
    let method = ["standard", "express", "pickup", "standard"][i % 4];
    let order = json!({
        "channel": "web",
        "external_reference": format!("chaos-{run}-{i}"),
        "customer": {"email": "ann@example.com", "name": "Ann Example"},
        "currency": "EUR",
        "lines": lines,
        "shipping_address": {"name": "Ann Example", "line1": "Hauptstr. 1", "postal_code": "10115",
            "city": "Berlin", "country": "DE"},
        "delivery": {"shipping_method": method},
        "payment": {"method": "card", "token": "tok_visa"},
    });
    (order, rejected)
}

/// Places `order` (idempotently, so a retry after a lost answer places it once).
pub async fn place(client: &reqwest::Client, intake: &str, order: &Value, key: &str) -> Uuid {
    let url = format!("{intake}/v1/orders");
    let (status, body) = send(client, reqwest::Method::POST, &url, SHOP, order, Some(key)).await;
    assert!(
        status == 201 || status == 200,
        "POST {url}: {status} {body}"
    );
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an order id in {body}"))
}

/// Places orders `0..orders` of `run`, `concurrency` at a time: each order's id and whether it
/// is meant to be rejected.
pub async fn place_all(
    client: &reqwest::Client,
    intake: &str,
    run: &str,
    orders: std::ops::Range<usize>,
    concurrency: usize,
) -> Vec<(Uuid, bool)> {
    use futures::StreamExt;
    futures::stream::iter(orders)
        .map(|i| async move {
            let (order, rejected) = order(run, i);
            let key = format!("{run}-{i}");
            (place(client, intake, &order, &key).await, rejected)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// The final status each order is meant to reach.
fn intended(placed: &[(Uuid, bool)]) -> BTreeMap<Uuid, &'static str> {
    placed
        .iter()
        .map(|(id, rejected)| (*id, if *rejected { "rejected" } else { "completed" }))
        .collect()
}

/// Where a run's orders ended.
pub struct Outcome {
    /// Each stored order's status.
    pub statuses: Vec<(Uuid, String)>,
    /// The orders that did not end as intended (or were not stored), each described.
    pub unintended: Vec<String>,
    /// Those of them that were stored.
    stuck: Vec<Uuid>,
    placed: usize,
    waited: Duration,
}

impl Outcome {
    /// How many orders are in each status.
    pub fn by_status(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, status) in &self.statuses {
            *counts.entry(status.clone()).or_default() += 1;
        }
        counts
    }

    /// The orders in `status`.
    pub fn with_status(&self, status: &str) -> Vec<Uuid> {
        self.statuses
            .iter()
            .filter(|(_, s)| s == status)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Up to `n` stored orders that did not end as intended, to find out where they stopped.
    pub fn stuck(&self, n: usize) -> &[Uuid] {
        &self.stuck[..self.stuck.len().min(n)]
    }

    /// Fails the test unless every order ended as intended, saying how many did not, the
    /// first ten, the statuses, where the replicas' logs are and `more`.
    pub fn assert_as_intended(&self, logs: &Path, more: &str) {
        assert!(
            self.unintended.is_empty(),
            "{} of {} orders did not end as intended within {:.0} s ({:?}; logs in {}): {:?}\n{more}",
            self.unintended.len(),
            self.placed,
            self.waited.as_secs_f64(),
            self.by_status(),
            logs.display(),
            &self.unintended[..self.unintended.len().min(10)]
        );
    }
}

/// Waits until every order of `placed` (id, meant to be rejected) is final — completed,
/// rejected, cancelled — or `deadline` has passed, and says where each ended.
pub async fn outcome(db: &sqlx::PgPool, placed: &[(Uuid, bool)], deadline: Instant) -> Outcome {
    let started = Instant::now();
    let intended = intended(placed);
    let ids: Vec<Uuid> = intended.keys().copied().collect();
    let statuses = loop {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, status FROM orders WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(db)
                .await
                .expect("order statuses");
        let done = rows
            .iter()
            .filter(|(_, s)| ["completed", "rejected", "cancelled"].contains(&s.as_str()))
            .count();
        if done == ids.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let stuck: Vec<Uuid> = statuses
        .iter()
        .filter(|(id, s)| intended.get(id) != Some(&s.as_str()))
        .map(|(id, _)| *id)
        .collect();
    let mut unintended: Vec<String> = statuses
        .iter()
        .filter(|(id, s)| intended.get(id) != Some(&s.as_str()))
        .map(|(id, s)| format!("{id}: {s} (meant {})", intended.get(id).unwrap_or(&"?")))
        .collect();
    let stored: HashSet<Uuid> = statuses.iter().map(|(id, _)| *id).collect();
    unintended.extend(
        intended
            .keys()
            .filter(|id| !stored.contains(id))
            .map(|id| format!("{id}: not stored")),
    );
    Outcome {
        statuses,
        unintended,
        stuck,
        placed: placed.len(),
        waited: started.elapsed(),
    }
}

/// [`outcome`] within `within` from now, failing the test unless every order ended as
/// intended.
pub async fn assert_final_as_intended(
    db: &sqlx::PgPool,
    placed: &[(Uuid, bool)],
    within: Duration,
    logs: &Path,
) -> Outcome {
    let outcome = outcome(db, placed, Instant::now() + within).await;
    outcome.assert_as_intended(logs, "");
    outcome
}
