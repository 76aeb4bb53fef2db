//! `/v1/customers`: known customers, whether they may order and how they may pay.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderflow_messages::types::{Address, EmailAddress, PaymentMethod};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, Params, params, required, text};
use crate::customer::{self, Customer, CustomerDraft, CustomerId};

/// A customer as `PUT /v1/customers/{customer_id}` takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true, format = Email)]
    email: Option<String>,
    #[schema(value_type = Option<Vec<crate::openapi::AddressSchema>>)]
    addresses: Option<Vec<Address>>,
    /// A blocked customer's orders are rejected.
    blocked: Option<bool>,
    /// Required when `blocked`.
    blocked_reason: Option<String>,
    /// Absent or null: every method.
    payment_methods: Option<Vec<String>>,
}

fn draft(id: &str, body: CustomerBody) -> Result<CustomerDraft, Vec<FieldError>> {
    let mut errors = Vec::new();
    let customer_id = CustomerId::parse(id)
        .map_err(|e| errors.push(FieldError::new("customer_id", "format", e)))
        .ok();
    let name =
        required(body.name, "name", &mut errors).and_then(|n| text(n, 200, "name", &mut errors));
    let email = required(body.email, "email", &mut errors).and_then(|e| {
        EmailAddress::parse(e.trim())
            .map_err(|e| errors.push(FieldError::new("email", "format", e)))
            .ok()
    });
    let blocked = match (body.blocked.unwrap_or(false), body.blocked_reason) {
        (false, _) => None,
        (true, Some(reason)) => text(reason, 500, "blocked_reason", &mut errors),
        (true, None) => {
            errors.push(FieldError::new(
                "blocked_reason",
                "required",
                "a blocked customer needs a `blocked_reason`",
            ));
            None
        }
    };
    let payment_methods = body.payment_methods.map(|methods| {
        methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                serde_json::from_value::<PaymentMethod>(serde_json::Value::from(m.as_str()))
                    .map_err(|_| {
                        errors.push(FieldError::new(
                            format!("payment_methods[{i}]"),
                            "one_of",
                            format!(
                                "`{m}` is not one of card, invoice, cash_on_delivery, \
                                 bank_transfer, prepaid"
                            ),
                        ))
                    })
                    .ok()
            })
            .collect::<Vec<_>>()
    });
    let addresses = body.addresses.unwrap_or_default();
    for (i, address) in addresses.iter().enumerate() {
        for (field, value) in [
            ("name", &address.name),
            ("line1", &address.line1),
            ("postal_code", &address.postal_code),
            ("city", &address.city),
        ] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("addresses[{i}].{field}"),
                    "required",
                    format!("`{field}` must not be blank"),
                ));
            }
        }
    }
    match (customer_id, name, email) {
        (Some(customer_id), Some(name), Some(email)) if errors.is_empty() => Ok(CustomerDraft {
            customer_id,
            name,
            email,
            addresses,
            blocked: if body.blocked.unwrap_or(false) {
                blocked
            } else {
                None
            },
            payment_methods,
        }),
        _ => Err(errors),
    }
}

/// A page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    items: Vec<Customer>,
    limit: i64,
    offset: i64,
}

/// Creates or replaces a customer.
#[utoipa::path(put, path = "/v1/customers/{customer_id}", tag = "customers",
    description = "Role: `admin`.",
    params(("customer_id" = String, Path, description = "the shop's id of the customer")),
    request_body(content = CustomerBody, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = Customer),
        (status = 200, description = "replaced", body = Customer),
        (status = 422, description = "fields failed their rules (each named in `errors`)"),
    ))]
pub async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CustomerBody>,
) -> Result<(StatusCode, Json<Customer>), Problem> {
    caller.require(Role::Admin)?;
    let draft = draft(&id, body).map_err(Problem::validation)?;
    let (customer, created) = customer::put(&state.pool, &draft).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(customer)))
}

/// One customer.
#[utoipa::path(get, path = "/v1/customers/{customer_id}", tag = "customers",
    description = "Role: `staff`, `admin`.",
    params(("customer_id" = String, Path, description = "the shop's id of the customer")),
    responses(
        (status = 200, description = "the customer", body = Customer),
        (status = 404, description = "no such customer"),
    ))]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Customer>, Problem> {
    caller.require(Role::Staff)?;
    customer::get(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no customer with id `{id}`")))
}

/// A page of customers by id.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    description = "Role: `staff`, `admin`.",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 500, 50 when not given"),
        ("offset" = Option<i64>, Query, description = "0 when not given"),
    ),
    responses(
        (status = 200, description = "a page", body = CustomerPage),
        (status = 400, description = "the query string is malformed"),
        (status = 422, description = "`limit` or `offset` is out of range"),
    ))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Params,
) -> Result<Json<CustomerPage>, Problem> {
    caller.require(Role::Staff)?;
    let page = Page::from_params(&params(query)?)?;
    let items = customer::list(&state.pool, page.limit, page.offset).await?;
    Ok(Json(CustomerPage {
        items,
        limit: page.limit,
        offset: page.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_blocked_customer_needs_a_reason_and_methods_must_exist() {
        let body: CustomerBody = serde_json::from_value(json!({
            "name": "Ann", "email": "ann@example.com", "blocked": true,
            "payment_methods": ["card", "bitcoin"]
        }))
        .expect("a body");
        let errors = draft("c-1", body).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["blocked_reason", "payment_methods[1]"]);
    }
}
