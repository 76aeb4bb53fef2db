//! Money received for invoices paid by bank transfer (`POST /v1/payments`).
//!
//! Each transfer is recorded once per (invoice, bank reference): importing a statement twice
//! adds nothing. Partial payments add up; once they reach the invoice's gross the payment is
//! captured and `order.paid` published. More than the gross is recorded too and flagged as
//! overpaid (the surplus is for a person to pay back; it is never captured).

use chrono::{NaiveDate, Utc};
use orderflow_messages::order::Paid;
use orderflow_messages::types::{Currency, Money, PaymentMethod};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::orders;
use crate::payment::{self, Change, PaymentStatus};
use crate::settlement::Cause;

/// The body of `POST /v1/payments`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivedRequest {
    pub invoice_number: String,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub amount: Money,
    /// The bank's reference of the transfer.
    pub reference: String,
    /// Defaults to today.
    #[serde(default)]
    pub received_on: Option<NaiveDate>,
}

/// Where an invoice stands after a transfer was recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub invoice_number: String,
    /// `open` (nothing yet), `partially_paid`, `paid` or `overpaid`.
    pub status: &'static str,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub gross: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub received: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub outstanding: Money,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub overpaid: Money,
    /// True when this reference had been recorded before (nothing was added).
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("no invoice numbered `{0}`")]
    UnknownInvoice(String),
    #[error("invoice {0} is not paid by transfer (the order's payment method is {1})")]
    NotByTransfer(String, String),
    #[error("the amount is in {got}, the invoice in {expected}")]
    Currency { got: Currency, expected: Currency },
    #[error("the amount must be positive")]
    NotPositive,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The received total and the balance of `invoice_number` (an invoice of `gross`).
pub async fn balance(
    conn: &mut PgConnection,
    invoice_number: &str,
    gross: &Money,
) -> anyhow::Result<Balance> {
    let received: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0)::bigint FROM received_payments WHERE invoice_number = $1",
    )
    .bind(invoice_number)
    .fetch_one(&mut *conn)
    .await?;
    let money = |amount| Money::new(amount, gross.currency.clone());
    let status = match received {
        0 => "open",
        r if r < gross.amount => "partially_paid",
        r if r == gross.amount => "paid",
        _ => "overpaid",
    };
    Ok(Balance {
        invoice_number: invoice_number.to_owned(),
        status,
        gross: gross.clone(),
        received: money(received),
        outstanding: money((gross.amount - received).max(0)),
        overpaid: money((received - gross.amount).max(0)),
        duplicate: false,
    })
}

/// Records a transfer for an invoice, in the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    request: &ReceivedRequest,
) -> Result<Balance, ReceiveError> {
    if request.amount.amount <= 0 {
        return Err(ReceiveError::NotPositive);
    }
    let number = request.invoice_number.trim();
    let found: Option<(Uuid, i64, String)> = sqlx::query_as(
        "SELECT order_id, gross, currency FROM invoices \
         WHERE invoice_number = $1 AND kind = 'invoice'",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await
    .map_err(anyhow::Error::from)?;
    let Some((order_id, gross, currency)) = found else {
        return Err(ReceiveError::UnknownInvoice(number.to_owned()));
    };
    orders::lock(conn, order_id).await?;
    let currency = Currency::parse(&currency).map_err(anyhow::Error::msg)?;
    if request.amount.currency != currency {
        return Err(ReceiveError::Currency {
            got: request.amount.currency.clone(),
            expected: currency,
        });
    }
    let order = orders::load(conn, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("invoice {number} names an unknown order"))?;
    let mut p = payment::of_order(conn, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("invoice {number} has no payment"))?;
    if p.method != PaymentMethod::Invoice {
        return Err(ReceiveError::NotByTransfer(
            number.to_owned(),
            p.method.as_str().to_owned(),
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO received_payments (received_id, invoice_number, amount, currency, \
         reference, received_on) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (invoice_number, reference) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(number)
    .bind(request.amount.amount)
    .bind(currency.as_str())
    .bind(request.reference.trim())
    .bind(
        request
            .received_on
            .unwrap_or_else(|| Utc::now().date_naive()),
    )
    .execute(&mut *conn)
    .await
    .map_err(anyhow::Error::from)?
    .rows_affected()
        == 1;
    let gross = Money::new(gross, currency);
    let mut balance = balance(conn, number, &gross).await?;
    balance.duplicate = !inserted;
    if balance.overpaid.amount > 0 {
        tracing::warn!(invoice = number, overpaid = %balance.overpaid, "invoice overpaid; the surplus needs paying back");
    }
    if balance.outstanding.amount == 0 && p.status == PaymentStatus::Authorized {
        let change = Change {
            settlement_reference: Some(request.reference.trim().to_owned()),
            ..Change::default()
        };
        payment::transition(conn, &mut p, PaymentStatus::Captured, change).await?;
        tracing::info!(%order_id, invoice = number, "invoice paid in full by transfer");
        let cause = Cause {
            order_id,
            correlation_id: order.correlation_id,
            // No message caused it: the id of this recording stands for the HTTP request.
            message_id: Uuid::now_v7(),
        };
        let paid = Paid {
            payment_id: p.payment_id,
            invoice_number: number.to_owned(),
            amount: p.amount.clone(),
        };
        cause.publish(conn, paid).await?;
    }
    Ok(balance)
}
