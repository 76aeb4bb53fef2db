//! An order as a customer places it: the request body of `POST /v1/orders`, and its parsing
//! into the `order.placed` payload.
//!
//! The body is read leniently: the leaves are raw JSON values, so a wrong type or value in one
//! field does not stop the others from being checked, and the answer lists every failing field
//! with its path and rule. Only the shape (unknown fields, an object where a list belongs) is
//! enforced by serde and answered with a 400 naming the field.

use chrono::NaiveDate;
use orderflow_messages::order::{Customer, Delivery, Placed, PlacedLine};
use orderflow_messages::types::{
    Address, Channel, CountryCode, Currency, EmailAddress, Payment, PaymentMethod, Sku,
};
use orderflow_runtime::problem::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::field_rules::Fields;

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 1000;
/// Highest unit price in minor units; keeps every total far from overflowing.
pub const MAX_UNIT_PRICE: i64 = 1_000_000_000_000;
/// Longest free text (names, address lines, instructions).
const MAX_TEXT: usize = 200;
const MAX_NOTE: usize = 1000;
const MAX_CUSTOMISATIONS: usize = 20;

pub const CHANNELS: [Channel; 6] = [
    Channel::Web,
    Channel::Api,
    Channel::Phone,
    Channel::Email,
    Channel::InPerson,
    Channel::Marketplace,
];
const METHODS: [PaymentMethod; 5] = [
    PaymentMethod::Card,
    PaymentMethod::Invoice,
    PaymentMethod::CashOnDelivery,
    PaymentMethod::BankTransfer,
    PaymentMethod::Prepaid,
];

/// The body of `POST /v1/orders`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderRequest {
    pub channel: Value,
    pub external_reference: Value,
    pub customer: Option<CustomerRequest>,
    pub currency: Value,
    pub lines: Option<Vec<LineRequest>>,
    pub shipping_address: Option<AddressRequest>,
    pub billing_address: Option<AddressRequest>,
    pub delivery: Option<DeliveryRequest>,
    pub payment: Option<PaymentRequest>,
    pub coupon_code: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerRequest {
    pub email: Value,
    pub name: Value,
    pub customer_id: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineRequest {
    pub sku: Value,
    pub quantity: Value,
    pub unit_price: Value,
    pub customisations: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddressRequest {
    pub name: Value,
    pub line1: Value,
    pub line2: Value,
    pub postal_code: Value,
    pub city: Value,
    pub country: Value,
    pub phone: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryRequest {
    pub shipping_method: Value,
    pub requested_date: Value,
    pub instructions: Value,
    pub gift_note: Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentRequest {
    pub method: Value,
    pub token: Value,
}

impl OrderRequest {
    /// The order as `order.placed` carries it, or every field that failed and why.
    pub fn parse(&self) -> Result<Placed, Vec<FieldError>> {
        let mut f = Fields::default();
        let channel = f.one_of(&self.channel, "channel", &CHANNELS.map(|c| (c.as_str(), c)));
        let external_reference =
            f.optional_text(&self.external_reference, "external_reference", 100);
        let customer = required(&mut f, "customer", self.customer.as_ref())
            .and_then(|c| parse_customer(&mut f, c));
        let currency = f.parsed(&self.currency, "currency", "one_of", Currency::parse);
        let lines = parse_lines(&mut f, self.lines.as_deref());
        let shipping_address = required(&mut f, "shipping_address", self.shipping_address.as_ref())
            .and_then(|a| parse_address(&mut f, "shipping_address", a));
        let billing_address = self
            .billing_address
            .as_ref()
            .and_then(|a| parse_address(&mut f, "billing_address", a));
        let delivery = required(&mut f, "delivery", self.delivery.as_ref())
            .and_then(|d| parse_delivery(&mut f, d));
        let payment = required(&mut f, "payment", self.payment.as_ref())
            .and_then(|p| parse_payment(&mut f, p));
        let coupon_code = f.optional_text(&self.coupon_code, "coupon_code", 64);

        let (
            Some(channel),
            Some(customer),
            Some(currency),
            Some(lines),
            Some(shipping_address),
            Some(delivery),
            Some(payment),
        ) = (
            channel,
            customer,
            currency,
            lines,
            shipping_address,
            delivery,
            payment,
        )
        else {
            return Err(f.into_errors());
        };
        if !f.is_empty() {
            return Err(f.into_errors());
        }
        Ok(Placed {
            channel,
            external_reference,
            customer,
            currency,
            lines,
            shipping_address,
            billing_address,
            delivery,
            payment,
            coupon_code,
        })
    }
}

fn required<'a, T>(f: &mut Fields, path: &str, value: Option<&'a T>) -> Option<&'a T> {
    if value.is_none() {
        f.missing(path);
    }
    value
}

fn parse_customer(f: &mut Fields, c: &CustomerRequest) -> Option<Customer> {
    let email = f.parsed(&c.email, "customer.email", "format", EmailAddress::parse);
    let name = f.text(&c.name, "customer.name", MAX_TEXT);
    let customer_id = f.optional_text(&c.customer_id, "customer.customer_id", 100);
    Some(Customer {
        customer_id,
        email: email?,
        name: name?,
    })
}

fn parse_lines(f: &mut Fields, lines: Option<&[LineRequest]>) -> Option<Vec<PlacedLine>> {
    let Some(lines) = lines else {
        f.missing("lines");
        return None;
    };
    if lines.is_empty() || lines.len() > MAX_LINES {
        f.fail(
            "lines",
            "count",
            format!("an order has 1 to {MAX_LINES} lines, not {}", lines.len()),
        );
    }
    let parsed: Vec<Option<PlacedLine>> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| parse_line(f, i, line))
        .collect();
    parsed.into_iter().collect()
}

fn parse_line(f: &mut Fields, index: usize, line: &LineRequest) -> Option<PlacedLine> {
    let at = |field: &str| format!("lines[{index}].{field}");
    let sku = f.parsed(&line.sku, &at("sku"), "format", Sku::parse);
    let quantity = f.integer(&line.quantity, &at("quantity"), 1..=MAX_QUANTITY);
    let unit_price = f.integer(&line.unit_price, &at("unit_price"), 0..=MAX_UNIT_PRICE);
    let customisations = f.text_list(
        &line.customisations,
        &at("customisations"),
        MAX_CUSTOMISATIONS,
        MAX_TEXT,
    );
    Some(PlacedLine {
        line_no: u32::try_from(index + 1).ok()?,
        sku: sku?,
        quantity: u32::try_from(quantity?).ok()?,
        unit_price: unit_price?,
        customisations: customisations?,
    })
}

fn parse_address(f: &mut Fields, path: &str, a: &AddressRequest) -> Option<Address> {
    let at = |field: &str| format!("{path}.{field}");
    let name = f.text(&a.name, &at("name"), MAX_TEXT);
    let line1 = f.text(&a.line1, &at("line1"), MAX_TEXT);
    let line2 = f.optional_text(&a.line2, &at("line2"), MAX_TEXT);
    let postal_code = f.text(&a.postal_code, &at("postal_code"), 20);
    let city = f.text(&a.city, &at("city"), MAX_TEXT);
    let country = f.parsed(&a.country, &at("country"), "format", CountryCode::parse);
    let phone = f.optional_text(&a.phone, &at("phone"), 40);
    Some(Address {
        name: name?,
        line1: line1?,
        line2,
        postal_code: postal_code?,
        city: city?,
        country: country?,
        phone,
    })
}

fn parse_delivery(f: &mut Fields, d: &DeliveryRequest) -> Option<Delivery> {
    let shipping_method = f.text(&d.shipping_method, "delivery.shipping_method", 64);
    let requested_date = f.parsed_optional(
        &d.requested_date,
        "delivery.requested_date",
        "format",
        |raw| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| format!("`{raw}` is not a date (YYYY-MM-DD)"))
        },
    );
    let instructions = f.optional_text(&d.instructions, "delivery.instructions", MAX_NOTE);
    let gift_note = f.optional_text(&d.gift_note, "delivery.gift_note", MAX_NOTE);
    Some(Delivery {
        shipping_method: shipping_method?,
        requested_date,
        instructions,
        gift_note,
    })
}

/// A payment method and its token, as `PUT /v1/orders/{id}/payment-method` takes it.
pub fn parse_payment_request(p: &PaymentRequest) -> Result<Payment, Vec<FieldError>> {
    let mut f = Fields::default();
    match parse_payment(&mut f, p) {
        Some(payment) if f.is_empty() => Ok(payment),
        _ => Err(f.into_errors()),
    }
}

fn parse_payment(f: &mut Fields, p: &PaymentRequest) -> Option<Payment> {
    let method = f.one_of(
        &p.method,
        "payment.method",
        &METHODS.map(|m| (m.as_str(), m)),
    )?;
    if method == PaymentMethod::Prepaid {
        // The shop's own payment reference: billing records it, there is nothing to charge.
        let reference = f.text(&p.token, "payment.token", 255)?;
        return Some(Payment {
            method,
            token: Some(reference),
        });
    }
    if method != PaymentMethod::Card {
        // A token means nothing for other methods; it is dropped rather than passed on.
        return Some(Payment {
            method,
            token: None,
        });
    }
    let token = f.text(&p.token, "payment.token", 255)?;
    let digits = token.chars().filter(char::is_ascii_digit).count();
    if digits >= 12
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        f.fail(
            "payment.token",
            "format",
            "this looks like a card number; send the payment provider's token instead",
        );
        return None;
    }
    Some(Payment {
        method,
        token: Some(token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "channel": "web", "external_reference": "web-1001",
            "customer": {"email": "ann@example.com", "name": "Ann Example", "customer_id": null},
            "currency": "EUR",
            "lines": [{"sku": "MUG-BLUE", "quantity": 2, "unit_price": 1250, "customisations": []}],
            "shipping_address": {"name": "Ann Example", "line1": "Hauptstr. 1",
                "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "billing_address": null, "delivery": {"shipping_method": "standard"},
            "payment": {"method": "card", "token": "tok_visa"}, "coupon_code": null
        })
    }

    fn parse(body: Value) -> Result<Placed, Vec<FieldError>> {
        serde_json::from_value::<OrderRequest>(body)
            .expect("shape")
            .parse()
    }

    fn failing(body: Value) -> Vec<(String, String)> {
        parse(body)
            .expect_err("invalid")
            .into_iter()
            .map(|e| (e.field, e.rule))
            .collect()
    }

    #[test]
    fn a_valid_order_becomes_the_placed_payload_with_numbered_lines() {
        let placed = parse(valid()).expect("valid");
        assert_eq!(placed.channel, Channel::Web);
        assert_eq!(placed.lines[0].line_no, 1);
        assert_eq!(placed.lines[0].quantity, 2);
        assert_eq!(placed.payment.token.as_deref(), Some("tok_visa"));
        assert_eq!(placed.external_reference.as_deref(), Some("web-1001"));
    }

    #[test]
    fn every_failing_field_is_reported_with_its_rule() {
        let mut body = valid();
        body["channel"] = json!("fax");
        body["customer"]["email"] = json!("not-an-address");
        body["currency"] = json!("EURO");
        body["lines"] = json!([
            {"sku": "MUG-BLUE", "quantity": 0, "unit_price": -1},
            {"sku": "has space", "quantity": 1001, "unit_price": "12"}
        ]);
        body["shipping_address"] = json!({"name": " ", "line1": "x", "country": "de"});
        body["delivery"]["shipping_method"] = json!("");
        body["payment"] = json!({"method": "card"});
        let errors = failing(body);
        for expected in [
            ("channel", "one_of"),
            ("customer.email", "format"),
            ("currency", "one_of"),
            ("lines[0].quantity", "range"),
            ("lines[0].unit_price", "range"),
            ("lines[1].sku", "format"),
            ("lines[1].quantity", "range"),
            ("lines[1].unit_price", "type"),
            ("shipping_address.name", "required"),
            ("shipping_address.postal_code", "required"),
            ("shipping_address.city", "required"),
            ("shipping_address.country", "format"),
            ("delivery.shipping_method", "required"),
            ("payment.token", "required"),
        ] {
            assert!(
                errors.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{expected:?} missing from {errors:?}"
            );
        }
        assert_eq!(errors.len(), 14, "{errors:?}");
    }

    #[test]
    fn an_order_needs_between_one_and_a_hundred_lines() {
        let mut body = valid();
        body["lines"] = json!([]);
        assert_eq!(
            failing(body.clone()),
            vec![("lines".into(), "count".into())]
        );
        let line = json!({"sku": "MUG-BLUE", "quantity": 1, "unit_price": 1});
        body["lines"] = Value::Array(vec![line; MAX_LINES + 1]);
        assert_eq!(failing(body), vec![("lines".into(), "count".into())]);
    }

    #[test]
    fn missing_parts_are_required_and_a_card_number_is_refused_as_token() {
        let errors = failing(json!({"channel": "web"}));
        for field in [
            "customer",
            "currency",
            "lines",
            "shipping_address",
            "delivery",
            "payment",
        ] {
            assert!(
                errors.contains(&(field.to_owned(), "required".to_owned())),
                "{field}: {errors:?}"
            );
        }
        let mut body = valid();
        body["payment"]["token"] = json!("4242 4242 4242 4242");
        assert_eq!(
            failing(body),
            vec![("payment.token".into(), "format".into())]
        );
    }

    #[test]
    fn other_payment_methods_need_no_token() {
        let mut body = valid();
        body["payment"] = json!({"method": "invoice", "token": "ignored"});
        let placed = parse(body).expect("valid");
        assert_eq!(placed.payment.method, PaymentMethod::Invoice);
        assert_eq!(placed.payment.token, None);
    }
}
