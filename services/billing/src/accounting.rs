//! The export for the accounting system: `GET /v1/invoices?from=YYYY-MM-DD&to=YYYY-MM-DD` as
//! CSV (RFC 4180: a header row, CRLF line ends, fields quoted when they hold a comma, a quote
//! or a line break, quotes doubled).
//!
//! One row per document issued in `from..=to` (UTC dates), invoices and credit notes in the
//! order they were issued. Credit notes carry negative amounts, so a column's sum is the
//! period's revenue. Amounts are decimals in the currency's major unit (`12.34` EUR, `1234`
//! JPY). Columns:
//!
//! `document_type` (`invoice`/`credit_note`), `number`, `issued_at` (RFC 3339), `order_id`,
//! `corrects` (the invoice a credit note corrects), `customer_name`, `customer_email`,
//! `payment_method`, `currency`, `net`, `tax`, `gross`, `due_date` (invoices paid by transfer).
//!
//! Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-` or `@`) is
//! prefixed with `'`.

use chrono::{DateTime, NaiveDate, Utc};
use orderflow_messages::types::Currency;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::invoice_print::decimal;

pub const HEADER: [&str; 13] = [
    "document_type",
    "number",
    "issued_at",
    "order_id",
    "corrects",
    "customer_name",
    "customer_email",
    "payment_method",
    "currency",
    "net",
    "tax",
    "gross",
    "due_date",
];

#[derive(sqlx::FromRow)]
struct Row {
    kind: String,
    invoice_number: String,
    issued_at: DateTime<Utc>,
    order_id: Uuid,
    corrects: Option<String>,
    customer_name: String,
    customer_email: String,
    payment_method: Option<String>,
    currency: String,
    net: i64,
    tax: i64,
    gross: i64,
    due_at: Option<DateTime<Utc>>,
}

/// The CSV of every document issued from `from` to `to`, both days included.
pub async fn export(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<String> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT kind, invoice_number, issued_at, order_id, corrects, customer_name, \
         customer_email, payment_method, currency, net, tax, gross, due_at FROM invoices \
         WHERE (issued_at AT TIME ZONE 'UTC')::date BETWEEN $1 AND $2 \
         ORDER BY issued_at, series, number",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut csv = String::new();
    push_record(&mut csv, HEADER.iter().map(|h| (*h).to_owned()));
    for r in rows {
        let places = Currency::parse(&r.currency)
            .map_err(anyhow::Error::msg)?
            .minor_units();
        let sign = if r.kind == "credit_note" { -1 } else { 1 };
        let amount = |v: i64| decimal(sign * v, places);
        push_record(
            &mut csv,
            [
                r.kind,
                text(&r.invoice_number),
                r.issued_at.to_rfc3339(),
                r.order_id.to_string(),
                text(r.corrects.as_deref().unwrap_or_default()),
                text(&r.customer_name),
                text(&r.customer_email),
                r.payment_method.unwrap_or_default(),
                r.currency,
                amount(r.net),
                amount(r.tax),
                amount(r.gross),
                r.due_at
                    .map(|d| d.date_naive().to_string())
                    .unwrap_or_default(),
            ],
        );
    }
    Ok(csv)
}

/// A text field, defused if a spreadsheet would read it as a formula.
fn text(raw: &str) -> String {
    if raw.starts_with(['=', '+', '-', '@']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    }
}

fn push_record(csv: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            csv.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            csv.push('"');
            csv.push_str(&field.replace('"', "\"\""));
            csv.push('"');
        } else {
            csv.push_str(&field);
        }
    }
    csv.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        let mut csv = String::new();
        push_record(
            &mut csv,
            [
                "plain".to_owned(),
                "a, b".to_owned(),
                "say \"hi\"".to_owned(),
                text("=SUM(A1)"),
            ],
        );
        assert_eq!(csv, "plain,\"a, b\",\"say \"\"hi\"\"\",'=SUM(A1)\r\n");
    }
}
