//! Checking an order's lines against the catalogue: every line is looked at and every failure
//! kept, so a rejected order lists all that is wrong with it at once. Lines that pass come out
//! priced from the catalogue, ready for `order.verified`.

use std::collections::{HashMap, HashSet};

use orderflow_messages::order::{Placed, Reason, VerifiedLine};
use orderflow_messages::types::Money;

use crate::catalogue::Product;
use crate::settings::{PricePolicy, VerificationSettings};

/// The outcome of checking the lines: the lines that passed, priced, and the reasons of those
/// that did not (and of the order as a whole).
#[derive(Debug, Default)]
pub struct Priced {
    pub lines: Vec<VerifiedLine>,
    pub reasons: Vec<Reason>,
}

pub fn reason(code: &str, line_no: Option<u32>, field: Option<String>, message: String) -> Reason {
    Reason {
        code: code.to_owned(),
        line_no,
        field,
        message,
    }
}

/// Checks every line of `placed` against `products` (the catalogue entries of its SKUs).
pub fn price(
    placed: &Placed,
    products: &HashMap<String, Product>,
    settings: &VerificationSettings,
) -> Priced {
    let mut priced = Priced::default();
    if placed.lines.is_empty() {
        priced.reasons.push(reason(
            "empty_order",
            None,
            Some("lines".into()),
            "the order has no lines".into(),
        ));
    }
    let mut seen = HashSet::new();
    for (index, line) in placed.lines.iter().enumerate() {
        // Fields are JSON paths into the order.placed payload.
        let field = |name: &str| Some(format!("lines[{index}].{name}"));
        let no = Some(line.line_no);
        let before = priced.reasons.len();
        if !seen.insert(line.line_no) {
            priced.reasons.push(reason(
                "duplicate_line",
                no,
                field("line_no"),
                format!("line number {} appears more than once", line.line_no),
            ));
        }
        if line.quantity == 0 || line.quantity > settings.max_line_quantity {
            priced.reasons.push(reason(
                "quantity_limit",
                no,
                field("quantity"),
                format!(
                    "quantity {} is outside 1..={} per line",
                    line.quantity, settings.max_line_quantity
                ),
            ));
        }
        let Some(product) = products.get(line.sku.as_str()) else {
            priced.reasons.push(reason(
                "unknown_sku",
                no,
                field("sku"),
                format!("SKU {} is not in the catalogue", line.sku),
            ));
            continue;
        };
        if !product.active {
            priced.reasons.push(reason(
                "inactive_sku",
                no,
                field("sku"),
                format!("SKU {} is no longer sold", line.sku),
            ));
        }
        let mut unit_price = product.unit_price;
        if product.currency != placed.currency {
            // Prices in different currencies cannot be compared, so no price check here.
            priced.reasons.push(reason(
                "currency_mismatch",
                no,
                Some("currency".into()),
                format!(
                    "the order is in {} but SKU {} is sold in {}",
                    placed.currency, line.sku, product.currency
                ),
            ));
        } else if line.unit_price != product.unit_price {
            match settings.price_policy {
                PricePolicy::Reject => priced.reasons.push(reason(
                    "price_mismatch",
                    no,
                    field("unit_price"),
                    format!(
                        "ordered at {} but the catalogue price of SKU {} is {}",
                        Money::new(line.unit_price, placed.currency.clone()),
                        line.sku,
                        Money::new(product.unit_price, product.currency.clone()),
                    ),
                )),
                PricePolicy::Reprice => unit_price = product.unit_price,
            }
        }
        for (j, wish) in line.customisations.iter().enumerate() {
            let option = customisation_option(wish);
            let offered = product
                .customisation_options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(option));
            if !offered {
                let offers = if product.customisation_options.is_empty() {
                    "none".to_owned()
                } else {
                    product.customisation_options.join(", ")
                };
                priced.reasons.push(reason(
                    "customisation_not_offered",
                    no,
                    field(&format!("customisations[{j}]")),
                    format!(
                        "SKU {} does not offer the customisation `{option}` (offers: {offers})",
                        line.sku
                    ),
                ));
            }
        }
        if priced.reasons.len() == before {
            priced.lines.push(VerifiedLine {
                line_no: line.line_no,
                sku: line.sku.clone(),
                name: product.name.clone(),
                quantity: line.quantity,
                unit_price,
                tax_class: product.tax_class.as_str().to_owned(),
                weight_grams: product.weight_grams,
                dimensions: product.dimensions,
                customisations: line.customisations.clone(),
            });
        }
    }
    priced
}

/// The option a customisation asks for: `engraving: Happy birthday` asks for `engraving`.
pub fn customisation_option(wish: &str) -> &str {
    wish.split_once(':')
        .map_or(wish, |(option, _)| option)
        .trim()
}

/// What the order is worth for the order-level limits: each line at the price it will be
/// charged (the catalogue's when repriced, else as ordered), saturating instead of overflowing.
pub fn order_value(placed: &Placed, priced: &Priced) -> i64 {
    placed.lines.iter().fold(0_i64, |sum, line| {
        let unit_price = priced
            .lines
            .iter()
            .find(|p| p.line_no == line.line_no)
            .map_or(line.unit_price, |p| p.unit_price);
        sum.saturating_add(unit_price.saturating_mul(i64::from(line.quantity)))
    })
}

/// Sum of quantity × unit price, or `None` if it does not fit in minor units.
pub fn subtotal(lines: &[VerifiedLine]) -> Option<i64> {
    lines.iter().try_fold(0_i64, |sum, line| {
        line.unit_price
            .checked_mul(i64::from(line.quantity))
            .and_then(|amount| sum.checked_add(amount))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::TaxClass;
    use orderflow_messages::types::{Currency, Sku};

    fn product(sku: &str, price: i64, currency: &str, active: bool) -> Product {
        Product {
            sku: Sku::parse(sku).expect("sku"),
            name: format!("Product {sku}"),
            unit_price: price,
            currency: Currency::parse(currency).expect("currency"),
            tax_class: TaxClass::Standard,
            weight_grams: 100,
            dimensions: None,
            active,
            allow_backorder: false,
            reorder_point: 0,
            reorder_quantity: 0,
            customisation_options: vec!["engraving".into()],
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn order(lines: &[(&str, u32, i64)]) -> Placed {
        serde_json::from_value(serde_json::json!({
            "channel": "web",
            "customer": {"email": "ann@example.com", "name": "Ann"},
            "currency": "EUR",
            "lines": lines.iter().enumerate().map(|(i, (sku, q, p))| serde_json::json!({
                "line_no": i + 1, "sku": sku, "quantity": q, "unit_price": p
            })).collect::<Vec<_>>(),
            "shipping_address": {"name": "Ann", "line1": "Main St 1", "postal_code": "10115",
                "city": "Berlin", "country": "DE"},
            "delivery": {"shipping_method": "standard"},
            "payment": {"method": "invoice"}
        }))
        .expect("an order")
    }

    fn catalogue(products: Vec<Product>) -> HashMap<String, Product> {
        products
            .into_iter()
            .map(|p| (p.sku.as_str().to_owned(), p))
            .collect()
    }

    #[test]
    fn every_failing_line_is_reported_with_its_field() {
        let products = catalogue(vec![
            product("MUG", 1200, "EUR", true),
            product("HAT", 900, "USD", true),
            product("OLD", 100, "EUR", false),
        ]);
        let placed = order(&[
            ("NOPE", 1, 100),
            ("MUG", 1, 999),
            ("HAT", 1, 900),
            ("OLD", 1, 100),
        ]);
        let priced = price(&placed, &products, &VerificationSettings::default());
        let codes: Vec<_> = priced
            .reasons
            .iter()
            .map(|r| (r.code.as_str(), r.line_no, r.field.as_deref()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("unknown_sku", Some(1), Some("lines[0].sku")),
                ("price_mismatch", Some(2), Some("lines[1].unit_price")),
                ("currency_mismatch", Some(3), Some("currency")),
                ("inactive_sku", Some(4), Some("lines[3].sku")),
            ]
        );
        assert!(priced.lines.is_empty());
    }

    #[test]
    fn repricing_takes_the_catalogue_price_instead_of_rejecting() {
        let products = catalogue(vec![product("MUG", 1200, "EUR", true)]);
        let settings = VerificationSettings {
            price_policy: PricePolicy::Reprice,
            ..Default::default()
        };
        let priced = price(&order(&[("MUG", 3, 999)]), &products, &settings);
        assert!(priced.reasons.is_empty());
        assert_eq!(priced.lines[0].unit_price, 1200);
        assert_eq!(subtotal(&priced.lines), Some(3600));
    }

    #[test]
    fn only_the_customisations_a_product_offers_may_be_asked_for() {
        let products = catalogue(vec![product("MUG", 1200, "EUR", true)]);
        let mut placed = order(&[("MUG", 1, 1200)]);
        placed.lines[0].customisations = vec!["Engraving: Ann".into(), "gift_wrap".into()];
        let priced = price(&placed, &products, &VerificationSettings::default());
        let codes: Vec<_> = priced
            .reasons
            .iter()
            .map(|r| (r.code.as_str(), r.field.as_deref()))
            .collect();
        assert_eq!(
            codes,
            vec![(
                "customisation_not_offered",
                Some("lines[0].customisations[1]")
            )]
        );
    }

    #[test]
    fn a_line_above_the_quantity_limit_is_refused() {
        let products = catalogue(vec![product("MUG", 1200, "EUR", true)]);
        let settings = VerificationSettings {
            max_line_quantity: 5,
            ..Default::default()
        };
        let priced = price(&order(&[("MUG", 6, 1200)]), &products, &settings);
        assert_eq!(priced.reasons[0].code, "quantity_limit");
    }
}
