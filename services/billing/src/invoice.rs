//! Invoices: issued once per order when it is delivered, numbered without gaps per series and
//! year (`INV-2026-000001`), and never changed afterwards (the tables refuse updates).
//!
//! The number comes from a counter row, incremented with `INSERT … ON CONFLICT DO UPDATE …
//! RETURNING` in the transaction that writes the invoice: the row stays locked until that
//! transaction ends, so concurrent issuers queue behind each other, and a transaction that rolls
//! back gives its number back with it. Hence no gaps and no duplicates, across replicas too.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_messages::types::{Currency, Money};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::draft::DraftLine;
use crate::orders::{BillingOrder, LineRow};
use crate::pricing::Amounts;

/// A freshly issued invoice.
#[derive(Debug, Clone)]
pub struct Issued {
    pub number: String,
    pub total: Amounts,
}

/// The number of the invoice of `order_id`, if it has one.
pub async fn number_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT invoice_number FROM invoices WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// `INV-2026-000042`.
pub fn format_number(series: &str, year: i32, number: i64) -> String {
    format!("{series}-{year}-{number:06}")
}

/// Issues the invoice of `order` with the draft's `lines`, numbered in `series`.
pub async fn issue(
    conn: &mut PgConnection,
    order: &BillingOrder,
    lines: &[DraftLine],
    series: &str,
) -> anyhow::Result<Issued> {
    // The clock is read after the counter row is ours, so issue dates follow number order.
    let (year, number, issued_at): (i32, i64, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO invoice_counters (series, year, last_number) \
         VALUES ($1, EXTRACT(YEAR FROM clock_timestamp() AT TIME ZONE 'UTC')::int, 1) \
         ON CONFLICT (series, year) DO UPDATE \
         SET last_number = invoice_counters.last_number + 1, updated_at = now() \
         RETURNING year, last_number, clock_timestamp()",
    )
    .bind(series)
    .fetch_one(&mut *conn)
    .await
    .context("allocating the invoice number")?;
    let invoice_number = format_number(series, year, number);
    sqlx::query(
        "INSERT INTO invoices (invoice_number, series, year, number, order_id, currency, \
         customer_email, customer_name, billing_address, net, tax, gross, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&invoice_number)
    .bind(series)
    .bind(year)
    .bind(number)
    .bind(order.order_id)
    .bind(order.currency.as_str())
    .bind(&order.customer_email)
    .bind(&order.customer_name)
    .bind(&order.billing_address)
    .bind(order.total.net)
    .bind(order.total.tax)
    .bind(order.total.gross)
    .bind(issued_at)
    .execute(&mut *conn)
    .await
    .context("storing the invoice")?;
    for line in lines {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_number, position, kind, sku, description, \
             quantity, unit_price, tax_class, tax_rate, net, tax, gross) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10, $11, $12)",
        )
        .bind(&invoice_number)
        .bind(line.position)
        .bind(line.kind.as_str())
        .bind(&line.sku)
        .bind(&line.description)
        .bind(i64::from(line.quantity))
        .bind(line.unit_price)
        .bind(&line.tax_class)
        .bind(line.tax_rate.to_string())
        .bind(line.amounts.net)
        .bind(line.amounts.tax)
        .bind(line.amounts.gross)
        .execute(&mut *conn)
        .await
        .context("storing the invoice lines")?;
    }
    Ok(Issued {
        number: invoice_number,
        total: order.total,
    })
}

/// An invoice as the API shows it. Amounts are integer minor units with their currency.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    pub invoice_number: String,
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub currency: Currency,
    pub customer: CustomerView,
    pub billing_address: serde_json::Value,
    pub lines: Vec<LineView>,
    /// One entry per tax rate: the lines of that rate summed.
    pub tax_breakdown: Vec<TaxGroupView>,
    pub totals: TotalsView,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub position: i32,
    /// `product` or `shipping`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub tax_class: String,
    /// A decimal fraction as a string, e.g. `"0.19"`.
    pub tax_rate: String,
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaxGroupView {
    pub tax_rate: String,
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct TotalsView {
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    invoice_number: String,
    order_id: Uuid,
    issued_at: DateTime<Utc>,
    currency: String,
    customer_email: String,
    customer_name: String,
    billing_address: serde_json::Value,
    net: i64,
    tax: i64,
    gross: i64,
}

/// The invoice numbered `number`, with its lines, if there is one.
pub async fn view(conn: &mut PgConnection, number: &str) -> anyhow::Result<Option<InvoiceView>> {
    let row: Option<InvoiceRow> = sqlx::query_as(
        "SELECT invoice_number, order_id, issued_at, currency, customer_email, customer_name, \
         billing_address, net, tax, gross FROM invoices WHERE invoice_number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let currency = Currency::parse(&row.currency).map_err(anyhow::Error::msg)?;
    let money = |amount: i64| Money::new(amount, currency.clone());
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT position, kind, sku, description, quantity, unit_price, tax_class, \
         tax_rate::text AS tax_rate, net, tax, gross FROM invoice_lines \
         WHERE invoice_number = $1 ORDER BY position",
    )
    .bind(number)
    .fetch_all(&mut *conn)
    .await?;
    let lines = rows
        .into_iter()
        .map(DraftLine::try_from)
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut groups: BTreeMap<Decimal, Amounts> = BTreeMap::new();
    for line in &lines {
        let group = groups.entry(line.tax_rate.normalize()).or_default();
        group.net += line.amounts.net;
        group.tax += line.amounts.tax;
        group.gross += line.amounts.gross;
    }
    Ok(Some(InvoiceView {
        invoice_number: row.invoice_number,
        order_id: row.order_id,
        issued_at: row.issued_at,
        customer: CustomerView {
            name: row.customer_name,
            email: row.customer_email,
        },
        billing_address: row.billing_address,
        lines: lines
            .iter()
            .map(|l| LineView {
                position: l.position,
                kind: l.kind.as_str().to_owned(),
                sku: l.sku.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit_price: money(l.unit_price),
                tax_class: l.tax_class.clone(),
                tax_rate: l.tax_rate.normalize().to_string(),
                net: money(l.amounts.net),
                tax: money(l.amounts.tax),
                gross: money(l.amounts.gross),
            })
            .collect(),
        tax_breakdown: groups
            .into_iter()
            .map(|(rate, a)| TaxGroupView {
                tax_rate: rate.to_string(),
                net: money(a.net),
                tax: money(a.tax),
                gross: money(a.gross),
            })
            .collect(),
        totals: TotalsView {
            net: money(row.net),
            tax: money(row.tax),
            gross: money(row.gross),
        },
        currency,
    }))
}
