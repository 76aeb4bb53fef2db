//! The priced draft of a verified order: its product lines and a shipping line, each with the
//! tax rate of the destination country, priced by [`crate::pricing`]. The draft is computed once,
//! when the order is verified; the authorised amount is its gross and the invoice copies its
//! lines, so what is charged is always what was authorised even if rates change in between.

use chrono::{DateTime, Utc};
use orderflow_messages::order::Verified;
use orderflow_messages::types::CountryCode;
use rust_decimal::Decimal;

use crate::coupon::{self, Coupon, Discountable, Refusal};
use crate::pricing::{self, Amounts, PriceableLine};
use crate::settings::{BillingRules, SHIPPING_TAX_CLASS};

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Product,
    Shipping,
    /// A coupon's discount on the products of one tax rate (negative amounts).
    Discount,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Product => "product",
            LineKind::Shipping => "shipping",
            LineKind::Discount => "discount",
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
    /// On a credit note: the position of the invoice line it gives back.
    pub corrects: Option<i32>,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub lines: Vec<DraftLine>,
    pub total: Amounts,
    /// The order's coupon code as given, if any.
    pub coupon_code: Option<String>,
    /// Why that coupon was not applied, if it was not.
    pub coupon_refused: Option<Refusal>,
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

/// Prices `order` under `rules`, with `coupon` (the one the order names, if billing knows it)
/// checked at `now`.
pub fn draft(
    rules: &BillingRules,
    order: &Verified,
    coupon: Option<&Coupon>,
    now: DateTime<Utc>,
) -> Result<Draft, DraftError> {
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
            corrects: None,
        });
    }
    lines.sort_by_key(|l| l.position);

    let coupon_code = order.coupon_code.as_deref().map(coupon::normalise_code);
    let mut coupon_refused = None;
    if let Some(code) = &coupon_code {
        let discountable: Vec<Discountable<'_>> = lines
            .iter()
            .map(|l| Discountable {
                sku: l.sku.as_deref().unwrap_or_default(),
                base: l.unit_price.saturating_mul(i64::from(l.quantity)),
                rate: l.tax_rate,
            })
            .collect();
        let applied = match coupon {
            Some(c) => c.apply(&discountable, &order.currency, now),
            None => Err(Refusal {
                code: code.clone(),
                why: "no such coupon".into(),
            }),
        };
        match applied {
            Ok(groups) => {
                for group in groups {
                    let class = lines
                        .iter()
                        .find(|l| l.tax_rate.normalize() == group.rate)
                        .map_or_else(String::new, |l| l.tax_class.clone());
                    let last = lines.last().map_or(0, |l| l.position);
                    lines.push(DraftLine {
                        position: last.checked_add(1).ok_or(pricing::PricingError::Overflow)?,
                        kind: LineKind::Discount,
                        sku: None,
                        description: format!(
                            "Coupon {code} ({class}, {} %)",
                            (group.rate * Decimal::ONE_HUNDRED).normalize()
                        ),
                        quantity: 1,
                        unit_price: -group.amount,
                        tax_class: class,
                        tax_rate: group.rate,
                        amounts: Amounts::default(),
                        corrects: None,
                    });
                }
            }
            Err(refusal) => coupon_refused = Some(refusal),
        }
    }

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
        corrects: None,
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
        coupon_code,
        coupon_refused,
    })
}
