//! Invoices and credit notes: an invoice is issued once per order when it is delivered; a
//! credit note gives back (part of) an invoice (cancellation after payment, partial refund).
//! Each kind is numbered without gaps in its own series per year (`INV-2026-000001`,
//! `CN-2026-000001`), and neither is ever changed afterwards (the tables refuse updates).
//!
//! The number comes from a counter row, incremented with `INSERT … ON CONFLICT DO UPDATE …
//! RETURNING` in the transaction that writes the invoice: the row stays locked until that
//! transaction ends, so concurrent issuers queue behind each other, and a transaction that rolls
//! back gives its number back with it. Hence no gaps and no duplicates, across replicas too.

use anyhow::Context;
use chrono::{DateTime, Utc};
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
    Ok(sqlx::query_scalar(
        "SELECT invoice_number FROM invoices WHERE order_id = $1 AND kind = 'invoice'",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// `INV-2026-000042`.
pub fn format_number(series: &str, year: i32, number: i64) -> String {
    format!("{series}-{year}-{number:06}")
}

/// What kind of document, and what only that kind carries.
#[derive(Debug, Clone)]
pub enum Kind {
    Invoice {
        /// Set for invoices paid by transfer: the payment term in days.
        due_in_days: Option<u32>,
    },
    CreditNote {
        corrects: String,
        reason: String,
    },
}

/// A document to issue: whose, in which series, with which lines and notes.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    pub kind: Kind,
    pub order: &'a BillingOrder,
    pub series: &'a str,
    pub lines: &'a [DraftLine],
    pub total: Amounts,
    pub notes: Vec<String>,
}

/// Issues the invoice of `order` with the draft's `lines`, numbered in `series`.
pub async fn issue(
    conn: &mut PgConnection,
    order: &BillingOrder,
    lines: &[DraftLine],
    series: &str,
    due_in_days: Option<u32>,
) -> anyhow::Result<Issued> {
    let notes = order.coupon_refused.iter().cloned().collect();
    write(
        conn,
        Document {
            kind: Kind::Invoice { due_in_days },
            order,
            series,
            lines,
            total: order.total,
            notes,
        },
    )
    .await
}

/// Numbers `doc` in its series and stores it, in the caller's transaction.
pub async fn write(conn: &mut PgConnection, doc: Document<'_>) -> anyhow::Result<Issued> {
    // The clock is read after the counter row is ours, so issue dates follow number order.
    let (year, number, issued_at): (i32, i64, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO invoice_counters (series, year, last_number) \
         VALUES ($1, EXTRACT(YEAR FROM clock_timestamp() AT TIME ZONE 'UTC')::int, 1) \
         ON CONFLICT (series, year) DO UPDATE \
         SET last_number = invoice_counters.last_number + 1, updated_at = now() \
         RETURNING year, last_number, clock_timestamp()",
    )
    .bind(doc.series)
    .fetch_one(&mut *conn)
    .await
    .context("allocating the document number")?;
    let invoice_number = format_number(doc.series, year, number);
    let (kind, corrects, reason, due_at) = match &doc.kind {
        Kind::Invoice { due_in_days } => (
            "invoice",
            None,
            None,
            due_in_days.map(|days| issued_at + chrono::Duration::days(i64::from(days))),
        ),
        Kind::CreditNote { corrects, reason } => (
            "credit_note",
            Some(corrects.as_str()),
            Some(reason.as_str()),
            None,
        ),
    };
    sqlx::query(
        "INSERT INTO invoices (invoice_number, series, year, number, order_id, currency, \
         customer_email, customer_name, billing_address, net, tax, gross, issued_at, kind, \
         corrects, reason, payment_method, due_at, notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19)",
    )
    .bind(&invoice_number)
    .bind(doc.series)
    .bind(year)
    .bind(number)
    .bind(doc.order.order_id)
    .bind(doc.order.currency.as_str())
    .bind(&doc.order.customer_email)
    .bind(&doc.order.customer_name)
    .bind(&doc.order.billing_address)
    .bind(doc.total.net)
    .bind(doc.total.tax)
    .bind(doc.total.gross)
    .bind(issued_at)
    .bind(kind)
    .bind(corrects)
    .bind(reason)
    .bind(doc.order.payment_method.as_str())
    .bind(due_at)
    .bind(&doc.notes)
    .execute(&mut *conn)
    .await
    .context("storing the document")?;
    for line in doc.lines {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_number, position, kind, sku, description, \
             quantity, unit_price, tax_class, tax_rate, net, tax, gross, corrects_position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10, $11, $12, $13)",
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
        .bind(line.corrects)
        .execute(&mut *conn)
        .await
        .context("storing the document's lines")?;
    }
    Ok(Issued {
        number: invoice_number,
        total: doc.total,
    })
}

/// The lines of document `number`, in position order.
pub async fn lines(conn: &mut PgConnection, number: &str) -> anyhow::Result<Vec<DraftLine>> {
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT position, kind, sku, description, quantity, unit_price, tax_class, \
         tax_rate::text AS tax_rate, net, tax, gross, corrects_position FROM invoice_lines \
         WHERE invoice_number = $1 ORDER BY position",
    )
    .bind(number)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(DraftLine::try_from).collect()
}
