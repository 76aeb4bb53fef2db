//! `orderflow demo`: a catalogue, stock in two warehouses, and N varied orders from every channel,
//! submitted over the public HTTP API; then it waits until every order is final and prints a
//! table. Every 50th order names a SKU that does not exist, so it is rejected on purpose.
//!
//! Each order carries an `Idempotency-Key`, and every request is retried while the system is
//! unreachable, so the demo survives `orderflow up` being stopped and started under it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_runtime::Settings;
use orderflow_runtime::auth::Role;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How many orders to place.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Place orders at this steady rate per second, a flow to run an upgrade or a failure
    /// under (default: as fast as `--concurrency` allows).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// order-intake's base URL (default: from the settings).
    #[arg(long)]
    intake_url: Option<String>,
    /// verification's base URL (default: from the settings).
    #[arg(long)]
    verification_url: Option<String>,
    /// billing's base URL (default: from the settings); the demo pays invoices there, as the
    /// customer's bank would.
    #[arg(long)]
    billing_url: Option<String>,
    /// Also run all services in this process for the demo's duration (as `orderflow up`).
    #[arg(long)]
    serve: bool,
}

const PRODUCTS: &[(&str, &str, i64, &str, u32)] = &[
    ("MUG-BLUE", "Blue mug", 1250, "standard", 350),
    ("MUG-RED", "Red mug", 1250, "standard", 350),
    ("TEA-EARLGREY", "Earl Grey tea, 250 g", 690, "reduced", 260),
    ("TEA-SENCHA", "Sencha tea, 100 g", 890, "reduced", 120),
    ("BOOK-RUST", "A book about Rust", 3990, "reduced", 900),
    ("LAMP-DESK", "Desk lamp", 4900, "standard", 1800),
    ("CHAIR-OAK", "Oak chair", 15900, "standard", 7500),
];
const WAREHOUSES: &[(&str, &str)] = &[("berlin", "Berlin central"), ("leipzig", "Leipzig east")];
const FINAL: &[&str] = &["completed", "rejected", "cancelled"];

pub(crate) struct Api {
    client: reqwest::Client,
    intake: String,
    verification: String,
    billing: String,
    admin_key: String,
    shop_key: String,
}

impl Api {
    /// Sends a request until the service answers (it may be restarting); returns status and body.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        key: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut request = self.client.request(method.clone(), url).bearer_auth(key);
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(k) = idempotency_key {
                request = request.header("Idempotency-Key", k);
            }
            match request.send().await {
                Ok(response) if response.status().as_u16() < 500 => {
                    let status = response.status().as_u16();
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    return Ok((status, body));
                }
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(response) => bail!("{url}: {}", response.status()),
                Err(e) => return Err(e).with_context(|| format!("{url} is unreachable")),
            }
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate: orders per second, a number above 0"
        )),
    }
}

fn base_url(settings: &Settings, section: &str, given: Option<String>) -> anyhow::Result<String> {
    if let Some(url) = given {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let http = settings.http(section)?;
    let host = if http.host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        http.host.as_str()
    };
    Ok(format!("http://{host}:{}", http.port))
}

pub async fn run(settings: &Settings, args: DemoArgs) -> anyhow::Result<()> {
    if !args.serve {
        return demo(settings, args).await;
    }
    let stop = orderflow_runtime::service::shutdown_token();
    let services = tokio::spawn(crate::up::run(settings.clone(), stop.clone()));
    let outcome = demo(settings, args).await;
    stop.cancel();
    services.await.context("services task")??;
    outcome
}

impl Api {
    pub(crate) fn new(
        settings: &Settings,
        intake: String,
        verification: String,
        billing: String,
    ) -> anyhow::Result<Api> {
        Ok(Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            intake,
            verification,
            billing,
            admin_key: settings
                .api_keys
                .key_for(Role::Admin)
                .context("an admin API key is needed")?
                .to_owned(),
            shop_key: settings
                .api_keys
                .key_for(Role::Shop)
                .context("a shop API key is needed")?
                .to_owned(),
        })
    }

    pub(crate) fn shop_key(&self) -> &str {
        &self.shop_key
    }

    /// Plays the customer's bank: an order paid by invoice waits at `invoiced` until the transfer
    /// arrives, so the demo records one for the invoice's gross amount. The reference makes a
    /// repeat harmless.
    async fn pay_invoice_by_transfer(&self, order: &Value) {
        let is_invoice = order["payment"]["method"] == "invoice" && order["status"] == "invoiced";
        let Some(number) = order["invoice_number"].as_str().filter(|_| is_invoice) else {
            return;
        };
        let url = format!("{}/v1/invoices/{number}", self.billing);
        let Ok((200, invoice)) = self
            .send(reqwest::Method::GET, &url, &self.admin_key, None, None)
            .await
        else {
            return;
        };
        let transfer = json!({"invoice_number": number, "amount": invoice["totals"]["gross"],
            "reference": format!("demo-transfer-{number}")});
        let url = format!("{}/v1/payments", self.billing);
        let _ = self
            .send(
                reqwest::Method::POST,
                &url,
                &self.admin_key,
                Some(&transfer),
                None,
            )
            .await;
    }
}

async fn demo(settings: &Settings, args: DemoArgs) -> anyhow::Result<()> {
    let api = Api::new(
        settings,
        base_url(settings, "order_intake", args.intake_url)?,
        base_url(settings, "verification", args.verification_url)?,
        base_url(settings, "billing", args.billing_url)?,
    )?;
    wait_until_ready(&api).await?;
    load_catalogue(&api, args.orders).await?;

    let started = Instant::now();
    let bar = ProgressBar::new(args.orders as u64 * 2);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("placing orders");
    let run_id = Uuid::now_v7().simple().to_string();
    let placed: Vec<anyhow::Result<(Uuid, bool)>> = futures::stream::iter(0..args.orders)
        .map(|i| {
            let api = &api;
            let run_id = &run_id;
            let bar = &bar;
            let due = args
                .rate
                .map(|rate| started + Duration::from_secs_f64(i as f64 / rate));
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                let (order, meant_to_fail) = demo_order(run_id, i, true, true);
                let key = format!("demo-{run_id}-{i}");
                let (status, body) = api
                    .send(
                        reqwest::Method::POST,
                        &format!("{}/v1/orders", api.intake),
                        &api.shop_key,
                        Some(&order),
                        Some(&key),
                    )
                    .await?;
                if status != 201 && status != 200 {
                    bail!("order {i} was refused ({status}): {body}");
                }
                bar.inc(1);
                let id = body["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .context("an order id")?;
                Ok((id, meant_to_fail))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let placed: Vec<(Uuid, bool)> = placed.into_iter().collect::<anyhow::Result<_>>()?;
    let intended_rejections = placed.iter().filter(|(_, fail)| *fail).count();

    bar.set_message("waiting for final statuses");
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut statuses: BTreeMap<Uuid, String> = BTreeMap::new();
    loop {
        let pending: Vec<Uuid> = placed
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| {
                statuses
                    .get(id)
                    .is_none_or(|s| !FINAL.contains(&s.as_str()))
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bar.abandon_with_message("timed out");
            print_table(&statuses, &placed, started.elapsed(), intended_rejections);
            bail!(
                "{} orders were not final after {} s",
                pending.len(),
                args.timeout_secs
            );
        }
        let fetched: Vec<(Uuid, Option<String>)> = futures::stream::iter(pending)
            .map(|id| {
                let api = &api;
                async move {
                    let url = format!("{}/v1/orders/{id}", api.intake);
                    let order = api
                        .send(reqwest::Method::GET, &url, &api.shop_key, None, None)
                        .await
                        .ok()
                        .map(|(_, body)| body);
                    if let Some(order) = &order {
                        api.pay_invoice_by_transfer(order).await;
                    }
                    let status = order.and_then(|body| body["status"].as_str().map(str::to_owned));
                    (id, status)
                }
            })
            .buffer_unordered(args.concurrency.max(1) * 2)
            .collect()
            .await;
        for (id, status) in fetched {
            if let Some(status) = status {
                statuses.insert(id, status);
            }
        }
        let done = statuses
            .values()
            .filter(|s| FINAL.contains(&s.as_str()))
            .count();
        bar.set_position((args.orders + done) as u64);
        if done < placed.len() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    bar.finish_with_message("done");
    let unexpected = print_table(&statuses, &placed, started.elapsed(), intended_rejections);
    if unexpected > 0 {
        bail!("{unexpected} orders did not end as the demo intended");
    }
    Ok(())
}

/// Prints the summary; returns how many orders ended other than intended.
fn print_table(
    statuses: &BTreeMap<Uuid, String>,
    placed: &[(Uuid, bool)],
    elapsed: Duration,
    intended_rejections: usize,
) -> usize {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexpected = 0;
    for (id, meant_to_fail) in placed {
        let status = statuses.get(id).map_or("unknown", String::as_str);
        *counts.entry(status).or_default() += 1;
        let intended = if *meant_to_fail {
            "rejected"
        } else {
            "completed"
        };
        if status != intended {
            unexpected += 1;
        }
    }
    println!();
    println!("{:<14} {:>8}", "status", "orders");
    println!("{:<14} {:>8}", "------", "------");
    for (status, n) in &counts {
        println!("{status:<14} {n:>8}");
    }
    println!("{:<14} {:>8}", "total", placed.len());
    println!();
    println!("rejected on purpose (unknown SKU): {intended_rejections}");
    println!("ended otherwise than intended:     {unexpected}");
    let secs = elapsed.as_secs_f64().max(0.001);
    println!(
        "throughput: {:.1} orders/s ({} orders in {:.1} s, placed to final)",
        placed.len() as f64 / secs,
        placed.len(),
        secs
    );
    unexpected
}

/// Waits for order-intake and verification to answer `/readyz`.
async fn wait_until_ready(api: &Api) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for base in [&api.intake, &api.verification] {
        loop {
            let ready = api.client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{base} is not ready; is `orderflow up` running? (or use --serve)");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

pub(crate) async fn load_catalogue(api: &Api, orders: usize) -> anyhow::Result<()> {
    for (code, name) in WAREHOUSES {
        let url = format!("{}/v1/warehouses/{code}", api.verification);
        let (status, body) = api
            .send(
                reqwest::Method::PUT,
                &url,
                &api.admin_key,
                Some(&json!({"name": name})),
                None,
            )
            .await?;
        if status >= 300 {
            bail!("PUT warehouse {code}: {status} {body}");
        }
    }
    for (sku, name, price, tax_class, weight) in PRODUCTS {
        let url = format!("{}/v1/products/{sku}", api.verification);
        let product = json!({"name": name, "unit_price": price, "currency": "EUR",
            "tax_class": tax_class, "weight_grams": weight, "active": true});
        let (status, body) = api
            .send(
                reqwest::Method::PUT,
                &url,
                &api.admin_key,
                Some(&product),
                None,
            )
            .await?;
        if status >= 300 {
            bail!("PUT product {sku}: {status} {body}");
        }
    }
    // Enough stock for every order of this run, spread over both warehouses.
    let per_warehouse = (orders as i64 * 4).max(100);
    for (code, _) in WAREHOUSES {
        let lines: Vec<_> = PRODUCTS
            .iter()
            .map(|(sku, ..)| json!({"sku": sku, "quantity": per_warehouse}))
            .collect();
        let url = format!("{}/v1/warehouses/{code}/receipts", api.verification);
        let body = json!({"lines": lines, "reason": "demo stock"});
        let (status, answer) = api
            .send(
                reqwest::Method::POST,
                &url,
                &api.admin_key,
                Some(&body),
                None,
            )
            .await?;
        if status >= 300 {
            bail!("stock receipt for {code}: {status} {answer}");
        }
    }
    Ok(())
}

/// The i-th demo order; the bool says whether it is meant to be rejected (every 50th, when
/// `with_rejects`). Without `invoices`, no order is paid by invoice (nobody would pay it).
pub(crate) fn demo_order(
    run_id: &str,
    i: usize,
    with_rejects: bool,
    invoices: bool,
) -> (Value, bool) {
    let mut rng = rand::rng();
    const CHANNELS: &[&str] = &["web", "api", "phone", "email", "in_person", "marketplace"];
    const METHODS: &[&str] = &["standard", "standard", "express", "pickup"];
    const CUSTOMERS: &[(&str, &str, &str, &str, &str)] = &[
        (
            "Ann Example",
            "ann@example.com",
            "Hauptstr. 1",
            "10115",
            "Berlin",
        ),
        (
            "Ben Muster",
            "ben@example.org",
            "Ringstr. 22",
            "04109",
            "Leipzig",
        ),
        (
            "Chloé Martin",
            "chloe@example.fr",
            "Königsallee 5",
            "40212",
            "Düsseldorf",
        ),
    ];
    let (name, email, street, postal_code, city) =
        *CUSTOMERS.choose(&mut rng).unwrap_or(&CUSTOMERS[0]);
    // Distinct products per order (verification refuses a SKU on two lines), and a total that
    // stays within every payment method's limit (cash on delivery: 1,000.00 EUR).
    let line_count = rng.random_range(1..=3);
    let products: Vec<_> = PRODUCTS.choose_multiple(&mut rng, line_count).collect();
    let mut lines: Vec<Value> = products
        .iter()
        .map(|(sku, _, price, _, _)| {
            json!({"sku": sku, "quantity": rng.random_range(1..=2), "unit_price": price})
        })
        .collect();
    let meant_to_fail = with_rejects && i % 50 == 49;
    if meant_to_fail {
        lines.push(json!({"sku": "NO-SUCH-SKU", "quantity": 1, "unit_price": 100}));
    }
    let payment = match rng.random_range(0..20) {
        0..12 => json!({"method": "card", "token": "tok_visa"}),
        12..15 if invoices => json!({"method": "invoice"}),
        12..15 => json!({"method": "card", "token": "tok_mastercard"}),
        15..18 => json!({"method": "cash_on_delivery"}),
        _ => json!({"method": "bank_transfer"}),
    };
    let order = json!({
        "channel": CHANNELS[i % CHANNELS.len()],
        "external_reference": format!("demo-{run_id}-{i}"),
        "customer": {"email": email, "name": name},
        "currency": "EUR",
        "lines": lines,
        "shipping_address": {"name": name, "line1": street, "postal_code": postal_code, "city": city, "country": "DE"},
        "delivery": {"shipping_method": METHODS.choose(&mut rng).copied().unwrap_or("standard")},
        "payment": payment,
    });
    (order, meant_to_fail)
}
