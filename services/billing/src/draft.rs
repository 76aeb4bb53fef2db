//! The priced draft of a verified order: its product lines and a shipping line, each with the
//! tax rate of the destination country, priced by [`crate::pricing`]. The draft is computed once,
//! when the order is verified; the authorised amount is its gross and the invoice copies its
//! lines, so what is charged is always what was authorised even if rates change in between.

use orderflow_messages::order::Verified;
use orderflow_messages::types::CountryCode;
use rust_decimal::Decimal;

use crate::pricing::{self, Amounts, PriceableLine};
use crate::settings::{BillingRules, SHIPPING_TAX_CLASS};

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Product,
    Shipping,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Product => "product",
            LineKind::Shipping => "shipping",
        }
    }
}

/// One priced line of a draft or an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftLine {
    /// The order's `line_no` for products; the shipping line comes after the last product.
    pub position: i32,
    pub kind: LineKind,
    pub sku: Option<String>,
    pub description: String,
    pub quantity: u32,
    /// As the catalogue gives it: net, or gross when `prices_include_tax`.
    pub unit_price: i64,
    pub tax_class: String,
    pub tax_rate: Decimal,
    pub amounts: Amounts,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub lines: Vec<DraftLine>,
    pub total: Amounts,
}

/// Why an order cannot be priced; each names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DraftError {
    #[error(
        "line {line_no}: tax class `{class}` has no rate for {country} (add billing.tax_rates.default.{class} or billing.tax_rates.countries.{country}.{class})"
    )]
    UnknownTaxClass {
        line_no: u32,
        class: String,
        country: String,
    },
    #[error("shipping method `{0}` has no price (add billing.shipping_tariff.{0})")]
    UnknownShippingMethod(String),
    #[error("the order has no lines")]
    NoLines,
    #[error("line {0}: the quantity must be at least 1")]
    ZeroQuantity(u32),
    #[error(transparent)]
    Pricing(#[from] pricing::PricingError),
}

/// The country whose rates apply: where the goods go.
pub fn tax_country(order: &Verified) -> &CountryCode {
    &order.shipping_address.country
}

/// Prices `order` under `rules`.
pub fn draft(rules: &BillingRules, order: &Verified) -> Result<Draft, DraftError> {
    if order.lines.is_empty() {
        return Err(DraftError::NoLines);
    }
    let country = tax_country(order);
    let rate_of = |line_no: u32, class: &str| {
        rules
            .tax
            .rate(country, class)
            .ok_or_else(|| DraftError::UnknownTaxClass {
                line_no,
                class: class.to_owned(),
                country: country.to_string(),
            })
    };
    let mut lines = Vec::with_capacity(order.lines.len() + 1);
    for line in &order.lines {
        if line.quantity == 0 {
            return Err(DraftError::ZeroQuantity(line.line_no));
        }
        lines.push(DraftLine {
            position: i32::try_from(line.line_no).map_err(|_| pricing::PricingError::Overflow)?,
            kind: LineKind::Product,
            sku: Some(line.sku.to_string()),
            description: line.name.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            tax_class: line.tax_class.to_ascii_lowercase(),
            tax_rate: rate_of(line.line_no, &line.tax_class)?,
            amounts: Amounts::default(),
        });
    }
    lines.sort_by_key(|l| l.position);

    let method = &order.delivery.shipping_method;
    let shipping = rules
        .shipping_price(method)
        .ok_or_else(|| DraftError::UnknownShippingMethod(method.clone()))?;
    let last = lines.last().map_or(0, |l| l.position);
    lines.push(DraftLine {
        position: last.checked_add(1).ok_or(pricing::PricingError::Overflow)?,
        kind: LineKind::Shipping,
        sku: None,
        description: format!("Shipping ({method})"),
        quantity: 1,
        unit_price: shipping,
        tax_class: SHIPPING_TAX_CLASS.to_owned(),
        tax_rate: rate_of(last as u32 + 1, SHIPPING_TAX_CLASS)?,
        amounts: Amounts::default(),
    });

    let priceable: Vec<PriceableLine> = lines
        .iter()
        .map(|l| PriceableLine {
            quantity: l.quantity,
            unit_price: l.unit_price,
            rate: l.tax_rate,
        })
        .collect();
    let priced = pricing::price(&priceable, rules.basis)?;
    for (line, amounts) in lines.iter_mut().zip(priced.lines) {
        line.amounts = amounts;
    }
    Ok(Draft {
        lines,
        total: priced.total,
    })
}
