//! The checks of an order as a whole: who orders, where it goes, how it is paid and how much it
//! is worth. Pure, like [`crate::pricing`]: every failure becomes a [`Reason`] and all are kept.

use orderflow_messages::order::{Placed, Reason};
use orderflow_messages::types::{Address, Money};

use crate::customer::Customer;
use crate::pricing::reason;
use crate::settings::VerificationSettings;

/// What [`check`] looks at besides the order.
pub struct Context<'a> {
    /// The record of the order's customer id; `None` for a guest or an unknown id.
    pub customer: Option<&'a Customer>,
    /// The order's value in minor units of its currency (see [`crate::pricing::order_value`]).
    pub value: i64,
    pub settings: &'a VerificationSettings,
}

pub fn check(placed: &Placed, ctx: &Context<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let method = placed.payment.method.as_str();
    if let Some(id) = &placed.customer.customer_id {
        match ctx.customer {
            None => reasons.push(reason(
                "unknown_customer",
                None,
                Some("customer.customer_id".into()),
                format!("no customer with id `{id}`; order as a guest or register the customer"),
            )),
            Some(customer) => {
                if customer.blocked {
                    reasons.push(reason(
                        "customer_blocked",
                        None,
                        Some("customer.customer_id".into()),
                        format!(
                            "customer `{id}` may not order: {}",
                            customer.blocked_reason.as_deref().unwrap_or("blocked")
                        ),
                    ));
                }
                if !customer.may_pay_with(placed.payment.method) {
                    reasons.push(reason(
                        "payment_method_not_allowed",
                        None,
                        Some("payment.method".into()),
                        format!("customer `{id}` may not pay by {method}"),
                    ));
                }
            }
        }
    }
    complete(&placed.shipping_address, "shipping_address", &mut reasons);
    if let Some(billing) = &placed.billing_address {
        complete(billing, "billing_address", &mut reasons);
    }
    let country = placed.shipping_address.country.as_str();
    if !ctx.settings.delivers_to(country) {
        reasons.push(reason(
            "country_not_delivered",
            None,
            Some("shipping_address.country".into()),
            format!("we do not deliver to {country}"),
        ));
    }
    if let Some(accepted) = ctx.settings.payment_methods_for(country)
        && !accepted.iter().any(|m| m == method)
    {
        reasons.push(reason(
            "payment_method_not_allowed",
            None,
            Some("payment.method".into()),
            format!(
                "{method} is not accepted for deliveries to {country} (accepted: {})",
                accepted.join(", ")
            ),
        ));
    }
    let currency = placed.currency.as_str();
    let money = |amount| Money::new(amount, placed.currency.clone());
    if let Some(limit) = ctx.settings.payment_limit(method, currency)
        && ctx.value > limit
    {
        reasons.push(reason(
            "payment_method_not_allowed",
            None,
            Some("payment.method".into()),
            format!(
                "{method} is accepted up to {}; the order is worth {}",
                money(limit),
                money(ctx.value)
            ),
        ));
    }
    if let Some(limit) = ctx.settings.order_total_limit(currency)
        && ctx.value > limit
    {
        reasons.push(reason(
            "order_total_limit",
            None,
            Some("lines".into()),
            format!(
                "the order is worth {}, over the limit of {}",
                money(ctx.value),
                money(limit)
            ),
        ));
    }
    reasons
}

/// An `address_incomplete` reason per blank field of `address`.
fn complete(address: &Address, at: &str, reasons: &mut Vec<Reason>) {
    let fields = [
        ("name", &address.name),
        ("line1", &address.line1),
        ("postal_code", &address.postal_code),
        ("city", &address.city),
    ];
    for (name, value) in fields {
        if value.trim().is_empty() {
            reasons.push(reason(
                "address_incomplete",
                None,
                Some(format!("{at}.{name}")),
                format!(
                    "the {} has no {}",
                    at.replace('_', " "),
                    name.replace('_', " ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn order(method: &str, country: &str, customer_id: Option<&str>) -> Placed {
        serde_json::from_value(serde_json::json!({
            "channel": "web",
            "customer": {"email": "ann@example.com", "name": "Ann", "customer_id": customer_id},
            "currency": "EUR",
            "lines": [{"line_no": 1, "sku": "MUG", "quantity": 1, "unit_price": 100}],
            "shipping_address": {"name": "Ann", "line1": " ", "postal_code": "10115",
                "city": "Berlin", "country": country},
            "delivery": {"shipping_method": "standard"},
            "payment": {"method": method}
        }))
        .expect("an order")
    }

    fn codes(reasons: &[Reason]) -> Vec<(&str, Option<&str>)> {
        reasons
            .iter()
            .map(|r| (r.code.as_str(), r.field.as_deref()))
            .collect()
    }

    #[test]
    fn every_order_level_failure_is_reported() {
        let settings = VerificationSettings {
            delivered_countries: vec!["DE".into()],
            max_order_total: BTreeMap::from([("EUR".into(), 50_000)]),
            ..Default::default()
        };
        let ctx = Context {
            customer: None,
            value: 150_000,
            settings: &settings,
        };
        let reasons = check(&order("cash_on_delivery", "FR", Some("c-1")), &ctx);
        assert_eq!(
            codes(&reasons),
            vec![
                ("unknown_customer", Some("customer.customer_id")),
                ("address_incomplete", Some("shipping_address.line1")),
                ("country_not_delivered", Some("shipping_address.country")),
                ("payment_method_not_allowed", Some("payment.method")),
                ("order_total_limit", Some("lines")),
            ]
        );
    }

    #[test]
    fn a_guest_within_the_limits_passes() {
        let settings = VerificationSettings::default();
        let ctx = Context {
            customer: None,
            value: 100,
            settings: &settings,
        };
        let mut placed = order("card", "DE", None);
        placed.shipping_address.line1 = "Main St 1".into();
        assert!(check(&placed, &ctx).is_empty());
    }
}
