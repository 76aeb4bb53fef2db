//! Known customers: who they are, where they live, whether they may order and how they may pay.
//! Guests have no record; an order that names a customer id is checked against it.

use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_messages::types::{Address, EmailAddress, PaymentMethod};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};

/// A customer id: 1–100 visible characters, as intake passes it on in `order.placed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(raw: &str) -> Result<CustomerId, String> {
        let valid = !raw.is_empty()
            && raw.chars().count() <= 100
            && raw.chars().all(|c| c.is_ascii_graphic());
        if valid {
            Ok(CustomerId(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not a customer id (1-100 visible ASCII characters)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer as an admin describes it; only [`crate::api`] builds one, after checking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDraft {
    pub customer_id: CustomerId,
    pub name: String,
    pub email: EmailAddress,
    pub addresses: Vec<Address>,
    /// `Some(reason)` when the customer may not order.
    pub blocked: Option<String>,
    /// `None`: every method.
    pub payment_methods: Option<Vec<PaymentMethod>>,
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    #[schema(value_type = Vec<crate::openapi::AddressSchema>)]
    pub addresses: Vec<Address>,
    pub blocked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// Absent: every method is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    pub fn may_pay_with(&self, method: PaymentMethod) -> bool {
        self.payment_methods
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|m| m == method.as_str()))
    }
}

#[derive(FromRow)]
struct CustomerRow {
    customer_id: String,
    name: String,
    email: String,
    addresses: Json<Vec<Address>>,
    blocked: bool,
    blocked_reason: Option<String>,
    payment_methods: Option<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Customer {
        Customer {
            customer_id: row.customer_id,
            name: row.name,
            email: row.email,
            addresses: row.addresses.0,
            blocked: row.blocked,
            blocked_reason: row.blocked_reason,
            payment_methods: row.payment_methods,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The columns a [`Customer`] is read from.
macro_rules! customer_columns {
    () => {
        "customer_id, name, email, addresses, blocked, blocked_reason, payment_methods, \
         created_at, updated_at"
    };
}

/// Creates or replaces the customer; `true` when it was created.
pub async fn put(
    db: impl PgExecutor<'_>,
    draft: &CustomerDraft,
) -> anyhow::Result<(Customer, bool)> {
    let methods: Option<Vec<&str>> = draft
        .payment_methods
        .as_ref()
        .map(|m| m.iter().map(|m| m.as_str()).collect());
    let row = sqlx::query(concat!(
        "INSERT INTO customers AS c (customer_id, name, email, addresses, blocked, \
         blocked_reason, payment_methods) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, \
         addresses = EXCLUDED.addresses, blocked = EXCLUDED.blocked, \
         blocked_reason = EXCLUDED.blocked_reason, payment_methods = EXCLUDED.payment_methods, \
         updated_at = now() RETURNING ",
        customer_columns!(),
        // xmax is 0 only on a freshly inserted row version.
        ", (xmax = 0) AS created"
    ))
    .bind(draft.customer_id.as_str())
    .bind(&draft.name)
    .bind(draft.email.as_str())
    .bind(Json(&draft.addresses))
    .bind(draft.blocked.is_some())
    .bind(draft.blocked.as_deref())
    .bind(methods)
    .fetch_one(db)
    .await
    .context("storing a customer")?;
    let created: bool = sqlx::Row::try_get(&row, "created")?;
    Ok((CustomerRow::from_row(&row)?.into(), created))
}

pub async fn get(db: impl PgExecutor<'_>, customer_id: &str) -> anyhow::Result<Option<Customer>> {
    let row: Option<CustomerRow> = sqlx::query_as(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers WHERE customer_id = $1"
    ))
    .bind(customer_id)
    .fetch_optional(db)
    .await
    .context("reading a customer")?;
    Ok(row.map(Customer::from))
}

/// A page of customers by id.
pub async fn list(
    db: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Customer>> {
    let rows: Vec<CustomerRow> = sqlx::query_as(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers ORDER BY customer_id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
    .context("listing customers")?;
    Ok(rows.into_iter().map(Customer::from).collect())
}
