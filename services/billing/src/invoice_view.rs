//! Invoices and credit notes as the API shows them (JSON; [`crate::invoice_print`] prints
//! the same view as HTML). Amounts are integer minor units with their currency; a credit note
//! shows positive amounts (what is given back) and names the invoice it corrects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderflow_messages::types::{Currency, Money};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::invoice;
use crate::pricing::Amounts;

/// An invoice as the API shows it. Amounts are integer minor units with their currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvoiceView {
    pub invoice_number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// For a credit note: the invoice it corrects, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// For invoices paid by transfer: when the money is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// E.g. why the order's coupon was not applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub customer: CustomerView,
    #[schema(value_type = Object)]
    pub billing_address: serde_json::Value,
    pub lines: Vec<LineView>,
    /// One entry per tax rate: the lines of that rate summed.
    pub tax_breakdown: Vec<TaxGroupView>,
    pub totals: TotalsView,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub position: i32,
    /// `product`, `shipping` or `discount` (negative amounts).
    pub kind: String,
    /// On a credit note: the invoice line it gives back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrects_position: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub description: String,
    pub quantity: u32,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub unit_price: Money,
    pub tax_class: String,
    /// A decimal fraction as a string, e.g. `"0.19"`.
    pub tax_rate: String,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub net: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub tax: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub gross: Money,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaxGroupView {
    pub tax_rate: String,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub net: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub tax: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub gross: Money,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotalsView {
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub net: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub tax: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub gross: Money,
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    invoice_number: String,
    kind: String,
    corrects: Option<String>,
    reason: Option<String>,
    payment_method: Option<String>,
    due_at: Option<DateTime<Utc>>,
    notes: Vec<String>,
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

/// The invoice or credit note numbered `number`, with its lines, if there is one.
pub async fn view(conn: &mut PgConnection, number: &str) -> anyhow::Result<Option<InvoiceView>> {
    let row: Option<InvoiceRow> = sqlx::query_as(
        "SELECT invoice_number, kind, corrects, reason, payment_method, due_at, notes, order_id, \
         issued_at, currency, customer_email, customer_name, billing_address, net, tax, gross \
         FROM invoices WHERE invoice_number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let currency = Currency::parse(&row.currency).map_err(anyhow::Error::msg)?;
    let money = |amount: i64| Money::new(amount, currency.clone());
    let lines = invoice::lines(conn, number).await?;

    let mut groups: BTreeMap<Decimal, Amounts> = BTreeMap::new();
    for line in &lines {
        let group = groups.entry(line.tax_rate.normalize()).or_default();
        group.net += line.amounts.net;
        group.tax += line.amounts.tax;
        group.gross += line.amounts.gross;
    }
    Ok(Some(InvoiceView {
        invoice_number: row.invoice_number,
        kind: row.kind,
        corrects: row.corrects,
        reason: row.reason,
        payment_method: row.payment_method,
        due_at: row.due_at,
        notes: row.notes,
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
                corrects_position: l.corrects,
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
