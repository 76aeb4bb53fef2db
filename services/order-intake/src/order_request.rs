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
use utoipa::ToSchema;

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

// The OpenAPI schemas are derived from these types: each raw leaf names, in `#[schema]`, the
// type and limits that `OrderRequest::parse` accepts. Their doc comments are the schemas'
// descriptions, for the API's users.
/// An order as a customer places it: the body of `POST /v1/orders`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OrderRequest {
    #[schema(required = true, schema_with = channel_names)]
    pub channel: Value,
    /// The channel's or customer's own reference; unique per channel (a second order with it
    /// is a duplicate, answered 409 with the existing order's id). Required by imports.
    #[schema(value_type = Option<String>, max_length = 100)]
    pub external_reference: Value,
    #[schema(required = true, value_type = CustomerRequest)]
    pub customer: Option<CustomerRequest>,
    /// ISO 4217, e.g. `EUR`.
    #[schema(required = true, value_type = String, pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Value,
    #[schema(required = true, value_type = Vec<LineRequest>, min_items = 1, max_items = 100)]
    pub lines: Option<Vec<LineRequest>>,
    #[schema(required = true, value_type = AddressRequest)]
    pub shipping_address: Option<AddressRequest>,
    /// When it differs from the shipping address.
    #[schema(value_type = Option<AddressRequest>)]
    pub billing_address: Option<AddressRequest>,
    #[schema(required = true, value_type = DeliveryRequest)]
    pub delivery: Option<DeliveryRequest>,
    #[schema(required = true, value_type = PaymentRequest)]
    pub payment: Option<PaymentRequest>,
    #[schema(value_type = Option<String>, max_length = 64)]
    pub coupon_code: Value,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Customer)]
pub struct CustomerRequest {
    #[schema(required = true, value_type = String, format = Email)]
    pub email: Value,
    #[schema(required = true, value_type = String, max_length = 200)]
    pub name: Value,
    /// The shop's own id of the customer.
    #[schema(value_type = Option<String>, max_length = 100)]
    pub customer_id: Value,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Line)]
pub struct LineRequest {
    #[schema(required = true, value_type = String)]
    pub sku: Value,
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 1000)]
    pub quantity: Value,
    /// Minor units of the order's currency (cents for EUR).
    #[schema(required = true, value_type = i64, minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub unit_price: Value,
    /// Requests such as an engraving's text, at most 20.
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    pub customisations: Value,
}

/// A postal address.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Address)]
pub struct AddressRequest {
    #[schema(required = true, value_type = String, max_length = 200)]
    pub name: Value,
    #[schema(required = true, value_type = String, max_length = 200)]
    pub line1: Value,
    #[schema(value_type = Option<String>, max_length = 200)]
    pub line2: Value,
    #[schema(required = true, value_type = String)]
    pub postal_code: Value,
    #[schema(required = true, value_type = String, max_length = 200)]
    pub city: Value,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[schema(required = true, value_type = String, pattern = "^[A-Z]{2}$", example = "DE")]
    pub country: Value,
    #[schema(value_type = Option<String>)]
    pub phone: Value,
}

/// How and when the order should arrive.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Delivery)]
pub struct DeliveryRequest {
    /// `standard`, `express`, `pickup`, …; shipping's rules map it to a carrier.
    #[schema(required = true, value_type = String, max_length = 64)]
    pub shipping_method: Value,
    #[schema(value_type = Option<chrono::NaiveDate>)]
    pub requested_date: Value,
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub instructions: Value,
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub gift_note: Value,
}

/// How the customer pays.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Payment)]
pub struct PaymentRequest {
    #[schema(required = true, schema_with = payment_method_names)]
    pub method: Value,
    /// The payment provider's token (card), or the shop's reference (prepaid).
    #[schema(value_type = Option<String>)]
    pub token: Value,
}

/// The channels, as the OpenAPI document lists them.
fn channel_names() -> utoipa::openapi::Object {
    names(CHANNELS.map(|c| c.as_str()))
}

fn payment_method_names() -> utoipa::openapi::Object {
    names(METHODS.map(|m| m.as_str()))
}

/// A string schema that takes one of `names`.
pub fn names<const N: usize>(names: [&str; N]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(names))
        .build()
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
