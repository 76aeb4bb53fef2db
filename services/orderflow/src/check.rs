//! `orderflow check`: the promises — nothing lost, nothing doubled — verified on a live system.
//!
//! Each check is one read-only query across the services' schemas in the shared database; a row
//! it returns is a breach. The services' tables evolve, so a check whose table or column does
//! not exist (yet) is reported as "not checked" instead of failing. Dead letters are read from
//! the broker without consuming them (see [`crate::dlq`]).

use std::collections::BTreeMap;

use clap::Args;
use orderflow_runtime::Settings;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Args)]
pub struct CheckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// An order may be between two stages this long before it counts as lost.
    #[arg(long, default_value_t = 600)]
    pub in_flight_secs: u64,
    /// An outbox row older than this counts as stuck.
    #[arg(long, default_value_t = 60)]
    pub outbox_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Breached,
    NotChecked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub outcome: Outcome,
    /// Breaches (first 20), or why it was not checked, or what was seen.
    pub details: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub orders_by_status: BTreeMap<String, i64>,
    pub dead_letters_by_reason: BTreeMap<String, usize>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn breached(&self) -> bool {
        self.findings.iter().any(|f| f.outcome == Outcome::Breached)
    }
}

/// Orders that need nothing more from us, and orders that wait for someone outside (stock to
/// arrive, a person to release a hold; also an order invoiced for payment by bank transfer,
/// which waits for the money); neither is lost.
pub const FINAL: [&str; 3] = ["completed", "rejected", "cancelled"];
pub const WAITING: [&str; 2] = ["on_hold", "backordered"];

/// A small pool on the services' database (schemas are named in each query).
pub async fn database(settings: &Settings) -> anyhow::Result<PgPool> {
    let options = orderflow_runtime::database::connect_options(settings.database.url.expose())?;
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

const SCHEMAS: [&str; 5] = [
    "order_intake",
    "verification",
    "fulfilment",
    "shipping",
    "billing",
];

/// `(name, query)`: each row the query returns is one breach, described by its one column.
fn queries(args: &CheckArgs) -> Vec<(&'static str, String)> {
    let finals = quoted(FINAL.iter().chain(WAITING.iter()));
    let mut checks = vec![
        (
            "every accepted order is final or waiting",
            format!(
                "SELECT id::text || ' is ' || status || ' since ' || updated_at::text \
                 FROM order_intake.orders WHERE status NOT IN ({finals}) \
                 AND NOT (status = 'invoiced' AND payment_method = 'invoice') \
                 AND updated_at < now() - make_interval(secs => {})",
                args.in_flight_secs
            ),
        ),
        (
            "no order has two invoices",
            "SELECT order_id::text || ' has ' || count(*) || ' invoices' FROM billing.invoices i \
             WHERE coalesce(to_jsonb(i) ->> 'kind', 'invoice') = 'invoice' \
             GROUP BY order_id HAVING count(*) > 1"
                .to_owned(),
        ),
        (
            "no order is captured twice",
            "SELECT order_id::text || ' has ' || count(*) || ' captures' FROM billing.payments \
             WHERE status = 'captured' GROUP BY order_id HAVING count(*) > 1"
                .to_owned(),
        ),
        (
            "no parcel group is shipped twice",
            "SELECT order_id::text || ' ships from ' || warehouse || ' ' || count(*) || ' times' \
             FROM shipping.shipments s WHERE coalesce(to_jsonb(s) ->> 'status', '') <> 'cancelled' \
             GROUP BY order_id, warehouse HAVING count(*) > 1"
                .to_owned(),
        ),
        (
            "every completed order has its invoice",
            "SELECT o.id::text || ' is completed without an invoice' FROM order_intake.orders o \
             WHERE o.status = 'completed' \
             AND NOT EXISTS (SELECT 1 FROM billing.invoices i WHERE i.order_id = o.id)"
                .to_owned(),
        ),
        (
            "stock on hand and reserved equal the ledger",
            "SELECT s.warehouse || '/' || s.sku || ': on_hand ' || s.on_hand || ' (ledger ' \
             || coalesce(m.on_hand, 0) || '), reserved ' || s.reserved || ' (ledger ' \
             || coalesce(m.reserved, 0) || ')' \
             FROM verification.stock s LEFT JOIN (SELECT warehouse, sku, sum(delta_on_hand) AS on_hand, \
             sum(delta_reserved) AS reserved FROM verification.stock_movements GROUP BY warehouse, sku) m \
             ON m.warehouse = s.warehouse AND m.sku = s.sku \
             WHERE s.on_hand <> coalesce(m.on_hand, 0) OR s.reserved <> coalesce(m.reserved, 0)"
                .to_owned(),
        ),
        (
            "reserved stock equals the open reservations",
            "SELECT s.warehouse || '/' || s.sku || ': reserved ' || s.reserved \
             || ', open reservations ' || coalesce(r.quantity, 0) \
             FROM verification.stock s LEFT JOIN (SELECT warehouse, sku, sum(quantity) AS quantity \
             FROM verification.reservations WHERE status = 'reserved' GROUP BY warehouse, sku) r \
             ON r.warehouse = s.warehouse AND r.sku = s.sku \
             WHERE s.reserved <> coalesce(r.quantity, 0)"
                .to_owned(),
        ),
        (
            "no stock is negative",
            "SELECT warehouse || '/' || sku || ': on_hand ' || on_hand || ', reserved ' || reserved \
             FROM verification.stock WHERE on_hand < 0 OR reserved < 0"
                .to_owned(),
        ),
        (
            "invoice totals equal their lines",
            "SELECT i.invoice_number || ': ' || i.net || '/' || i.tax || '/' || i.gross \
             || ' but lines ' || coalesce(l.net, 0) || '/' || coalesce(l.tax, 0) || '/' || coalesce(l.gross, 0) \
             FROM billing.invoices i LEFT JOIN (SELECT invoice_number, sum(net) AS net, sum(tax) AS tax, \
             sum(gross) AS gross FROM billing.invoice_lines GROUP BY invoice_number) l \
             ON l.invoice_number = i.invoice_number \
             WHERE i.net <> coalesce(l.net, 0) OR i.tax <> coalesce(l.tax, 0) OR i.gross <> coalesce(l.gross, 0)"
                .to_owned(),
        ),
    ];
    let outbox = SCHEMAS
        .iter()
        .map(|schema| {
            format!(
                "SELECT '{schema}: ' || count(*) || ' unsent, oldest ' || min(created_at)::text \
                 FROM {schema}.outbox WHERE created_at < now() - make_interval(secs => {}) \
                 HAVING count(*) > 0",
                args.outbox_secs
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    checks.push(("no outbox row is stuck", outbox));
    checks
}

fn quoted<'a>(values: impl Iterator<Item = &'a &'a str>) -> String {
    values
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn one(pool: &PgPool, check: &'static str, sql: String) -> Finding {
    let rows: Result<Vec<String>, sqlx::Error> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql} LIMIT 1000")))
            .fetch_all(pool)
            .await;
    match rows {
        Ok(rows) if rows.is_empty() => Finding {
            check,
            outcome: Outcome::Passed,
            details: Vec::new(),
        },
        Ok(rows) => {
            let mut details: Vec<String> = rows.iter().take(20).cloned().collect();
            if rows.len() > 20 {
                details.push(format!("… {} in all", rows.len()));
            }
            Finding {
                check,
                outcome: Outcome::Breached,
                details,
            }
        }
        Err(e) => Finding {
            check,
            outcome: Outcome::NotChecked,
            details: vec![
                e.as_database_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or_else(|| e.to_string()),
            ],
        },
    }
}

/// Runs every check; only an unreachable database or broker is an error.
pub async fn report(settings: &Settings, args: &CheckArgs) -> anyhow::Result<Report> {
    let pool = database(settings).await?;
    let mut findings = Vec::new();
    for (check, sql) in queries(args) {
        findings.push(one(&pool, check, sql).await);
    }
    let orders_by_status: BTreeMap<String, i64> =
        sqlx::query_as("SELECT status, count(*) FROM order_intake.orders GROUP BY status")
            .fetch_all(&pool)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
    pool.close().await;

    let browse = crate::dlq::browse(settings).await?;
    let mut dead_letters_by_reason = BTreeMap::new();
    let mut unexplained = Vec::new();
    for letter in browse.letters() {
        let reason = letter.reason.chars().take(80).collect::<String>();
        *dead_letters_by_reason
            .entry(format!("{}: {reason}", letter.original_queue))
            .or_insert(0) += 1;
        if letter.reason == "unknown" {
            unexplained.push(format!("{} in {}", letter.id, letter.dead_queue));
        }
    }
    browse.finish().await?;
    findings.push(Finding {
        check: "every dead letter has a reason",
        outcome: if unexplained.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Breached
        },
        details: unexplained,
    });
    Ok(Report {
        orders_by_status,
        dead_letters_by_reason,
        findings,
    })
}

pub async fn run(settings: &Settings, args: CheckArgs) -> anyhow::Result<()> {
    let report = report(settings, &args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let orders: Vec<String> = report
            .orders_by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        println!("orders: {}", orders.join(", "));
        for f in &report.findings {
            let mark = match f.outcome {
                Outcome::Passed => "ok         ",
                Outcome::Breached => "BREACHED   ",
                Outcome::NotChecked => "not checked",
            };
            println!("{mark}  {}", f.check);
            for d in &f.details {
                println!("             {d}");
            }
        }
        println!(
            "dead letters: {}",
            report.dead_letters_by_reason.values().sum::<usize>()
        );
        for (reason, n) in &report.dead_letters_by_reason {
            println!("  {n:>5}  {reason}");
        }
    }
    anyhow::ensure!(!report.breached(), "an invariant is breached");
    Ok(())
}
