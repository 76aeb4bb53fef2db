//! Coupons: billing owns them (`PUT /v1/coupons/{code}`) and applies the order's coupon when
//! the order is verified.
//!
//! A coupon takes a percentage or a fixed amount (in its currency) off the products of the
//! whole order, or only off the lines of the SKUs it names; shipping is never discounted. It
//! applies if it is known, active, within `valid_from..valid_until`, in the order's currency
//! (for fixed amounts and minimums) and the products' subtotal reaches its minimum.
//!
//! An order whose coupon does not apply is not stopped: it proceeds at full price, and the
//! reason is kept with the order and printed on its invoice (see [`Refusal`]). Refusing the
//! order, or holding it for a coupon, would punish the customer for the shop's promotion.
//!
//! The discount is computed per tax-rate group (a percentage of the group's discounted base,
//! rounded half away from zero; a fixed amount spread over the groups by largest remainder)
//! and becomes one discount line per group, so tax is charged on what is really paid.

use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_messages::types::Currency;
use orderflow_runtime::problem::FieldError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::pricing::{self, PricingError, round_minor};

/// What a coupon takes off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reduction {
    /// `percent` % of the discounted products (0 < percent ≤ 100).
    Percent {
        #[schema(value_type = String)]
        percent: Decimal,
    },
    /// `amount` minor units of `currency`, at most the discounted products' price.
    Fixed { amount: i64 },
}

/// A coupon as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Coupon {
    pub code: String,
    #[serde(flatten)]
    pub reduction: Reduction,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Currency>,
    /// Empty: every product of the order.
    pub skus: Vec<String>,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_amount: Option<i64>,
}

/// Why an order's coupon was not applied; the text goes on the invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("coupon {code} not applied: {why}")]
pub struct Refusal {
    pub code: String,
    pub why: String,
}

/// A product line as the coupon sees it: its SKU, its base (quantity × unit price) and rate.
#[derive(Debug, Clone)]
pub struct Discountable<'a> {
    pub sku: &'a str,
    pub base: i64,
    pub rate: Decimal,
}

/// The discount of one tax-rate group: `amount` (positive) off the lines at `rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDiscount {
    pub rate: Decimal,
    pub amount: i64,
}

impl Coupon {
    /// Checks the coupon against the order at `now`, and computes its discount per rate group.
    pub fn apply(
        &self,
        lines: &[Discountable<'_>],
        currency: &Currency,
        now: DateTime<Utc>,
    ) -> Result<Vec<GroupDiscount>, Refusal> {
        let refuse = |why: String| Refusal {
            code: self.code.clone(),
            why,
        };
        if !self.active {
            return Err(refuse("the coupon is not active".into()));
        }
        if let Some(from) = self.valid_from
            && now < from
        {
            return Err(refuse(format!("valid only from {}", from.to_rfc3339())));
        }
        if let Some(until) = self.valid_until
            && now >= until
        {
            return Err(refuse(format!("expired at {}", until.to_rfc3339())));
        }
        if let Some(coupon_currency) = &self.currency
            && coupon_currency != currency
        {
            return Err(refuse(format!(
                "the coupon is in {coupon_currency}, the order in {currency}"
            )));
        }
        let subtotal: i64 = lines.iter().map(|l| l.base).sum();
        if let Some(minimum) = self.minimum_amount
            && subtotal < minimum
        {
            return Err(refuse(format!(
                "the products' subtotal {subtotal} is below the minimum of {minimum} (minor units of {currency})"
            )));
        }
        let eligible: Vec<&Discountable<'_>> = lines
            .iter()
            .filter(|l| {
                self.skus.is_empty() || self.skus.iter().any(|s| s.eq_ignore_ascii_case(l.sku))
            })
            .collect();
        if eligible.is_empty() {
            return Err(refuse("it applies to none of the order's products".into()));
        }
        let mut groups: Vec<GroupDiscount> = Vec::new();
        for line in &eligible {
            match groups.iter_mut().find(|g| g.rate == line.rate.normalize()) {
                Some(group) => group.amount += line.base,
                None => groups.push(GroupDiscount {
                    rate: line.rate.normalize(),
                    amount: line.base,
                }),
            }
        }
        groups.sort_by_key(|g| g.rate);
        let overflow = |_: PricingError| refuse("the discount does not fit in minor units".into());
        match &self.reduction {
            Reduction::Percent { percent } => {
                for group in &mut groups {
                    let off = Decimal::from(group.amount) * *percent / Decimal::ONE_HUNDRED;
                    group.amount = round_minor(off).map_err(overflow)?;
                }
            }
            Reduction::Fixed { amount } => {
                let eligible_total: i64 = groups.iter().map(|g| g.amount).sum();
                let off = (*amount).min(eligible_total);
                let weights: Vec<i64> = groups.iter().map(|g| g.amount).collect();
                let shares = pricing::allocate(off, &weights).map_err(overflow)?;
                for (group, share) in groups.iter_mut().zip(shares) {
                    group.amount = share;
                }
            }
        }
        groups.retain(|g| g.amount > 0);
        Ok(groups)
    }
}

/// The body of `PUT /v1/coupons/{code}`: `kind` `percent` with `percent` (a decimal string,
/// `"10"` for 10 %), or `fixed` with `amount` (minor units) and `currency`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponRequest {
    /// `percent` or `fixed`.
    pub kind: String,
    /// A decimal string, `"10"` for 10 %.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub percent: Option<Decimal>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub skus: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub minimum_amount: Option<i64>,
}

fn yes() -> bool {
    true
}

/// Normalises a code as shoppers type it: trimmed, upper case.
pub fn normalise_code(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

impl CouponRequest {
    /// The request as the coupon `code`, or every rule it breaks.
    pub fn parse(self, code: &str) -> Result<Coupon, Vec<FieldError>> {
        let r = self;
        let code = normalise_code(code);
        let mut errors = Vec::new();
        if code.is_empty()
            || code.len() > 64
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errors.push(FieldError::new(
                "code",
                "format",
                "1-64 of A-Z, 0-9, '-', '_'",
            ));
        }
        let reduction = match (r.kind.as_str(), r.percent, r.amount) {
            ("percent", Some(percent), None) => {
                if percent <= Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
                    errors.push(FieldError::new(
                        "percent",
                        "range",
                        "a percentage above 0, at most 100",
                    ));
                }
                Some(Reduction::Percent { percent })
            }
            ("fixed", None, Some(amount)) => {
                if amount <= 0 {
                    errors.push(FieldError::new("amount", "range", "minor units above 0"));
                }
                Some(Reduction::Fixed { amount })
            }
            ("percent", ..) => {
                errors.push(FieldError::new(
                    "percent",
                    "required",
                    "a percent coupon gives `percent` (and no `amount`)",
                ));
                None
            }
            ("fixed", ..) => {
                errors.push(FieldError::new(
                    "amount",
                    "required",
                    "a fixed coupon gives `amount` in minor units (and no `percent`)",
                ));
                None
            }
            _ => {
                errors.push(FieldError::new("kind", "one_of", "`percent` or `fixed`"));
                None
            }
        };
        let currency = match r.currency.as_deref().map(Currency::parse) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(FieldError::new("currency", "format", e));
                None
            }
            None => None,
        };
        let needs_currency = r.kind == "fixed" || r.minimum_amount.is_some();
        if needs_currency && r.currency.is_none() {
            errors.push(FieldError::new(
                "currency",
                "required",
                "a fixed amount or a minimum amount is in a currency: give it",
            ));
        }
        if r.minimum_amount.is_some_and(|m| m < 0) {
            errors.push(FieldError::new(
                "minimum_amount",
                "range",
                "minor units, 0 or more",
            ));
        }
        if let (Some(from), Some(until)) = (r.valid_from, r.valid_until)
            && until <= from
        {
            errors.push(FieldError::new(
                "valid_until",
                "range",
                "must be after valid_from",
            ));
        }
        let Some(reduction) = reduction.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        Ok(Coupon {
            code,
            reduction,
            currency,
            skus: r
                .skus
                .iter()
                .map(|s| s.trim().to_ascii_uppercase())
                .collect(),
            active: r.active,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
            minimum_amount: r.minimum_amount,
        })
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    code: String,
    kind: String,
    percent: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    skus: Vec<String>,
    active: bool,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    minimum_amount: Option<i64>,
}

impl TryFrom<Row> for Coupon {
    type Error = anyhow::Error;

    fn try_from(r: Row) -> anyhow::Result<Coupon> {
        let reduction = match (r.kind.as_str(), r.percent, r.amount) {
            ("percent", Some(p), _) => Reduction::Percent {
                percent: p.parse().context("coupon percent")?,
            },
            ("fixed", _, Some(amount)) => Reduction::Fixed { amount },
            (kind, ..) => anyhow::bail!("coupon {}: inconsistent kind `{kind}`", r.code),
        };
        Ok(Coupon {
            code: r.code,
            reduction,
            currency: r
                .currency
                .map(|c| Currency::parse(&c).map_err(anyhow::Error::msg))
                .transpose()?,
            skus: r.skus,
            active: r.active,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
            minimum_amount: r.minimum_amount,
        })
    }
}

pub async fn load(conn: &mut PgConnection, code: &str) -> anyhow::Result<Option<Coupon>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT code, kind, percent::text AS percent, amount, currency, skus, active, \
         valid_from, valid_until, minimum_amount FROM coupons WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Coupon::try_from).transpose()
}

/// Creates or replaces the coupon. Returns true if it was new.
pub async fn save(conn: &mut PgConnection, c: &Coupon) -> anyhow::Result<bool> {
    let (kind, percent, amount) = match &c.reduction {
        Reduction::Percent { percent } => ("percent", Some(percent.to_string()), None),
        Reduction::Fixed { amount } => ("fixed", None, Some(*amount)),
    };
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO coupons (code, kind, percent, amount, currency, skus, active, valid_from, \
         valid_until, minimum_amount) \
         VALUES ($1, $2, $3::numeric, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (code) DO UPDATE SET kind = $2, percent = $3::numeric, amount = $4, \
         currency = $5, skus = $6, active = $7, valid_from = $8, valid_until = $9, \
         minimum_amount = $10, updated_at = now() \
         RETURNING (xmax = 0)",
    )
    .bind(&c.code)
    .bind(kind)
    .bind(percent)
    .bind(amount)
    .bind(c.currency.as_ref().map(|c| c.as_str().to_owned()))
    .bind(&c.skus)
    .bind(c.active)
    .bind(c.valid_from)
    .bind(c.valid_until)
    .bind(c.minimum_amount)
    .fetch_one(&mut *conn)
    .await
    .context("storing the coupon")?;
    Ok(inserted)
}

#[cfg(test)]
mod tests;
