//! Prices an order: net, tax and gross per line and in total, in integer minor units.
//!
//! Tax is computed once per tax-rate group, not per line: the bases of all lines that share a
//! rate are summed, the group's tax is computed in decimal and rounded half away from zero to
//! whole minor units. The group's tax is then spread over its lines by largest remainder, so
//! the lines of an invoice always add up to its totals and net + tax = gross holds on every line,
//! every group and the whole order. Nothing here is ever a float.
//!
//! Discounts are lines with a negative unit price. They lower their rate group's base before
//! its tax is computed, so the group is taxed on what is really charged; the group's tax on the
//! products alone is spread over the product lines and the difference (negative) over the
//! discount lines. A group whose discounts exceed its products is refused.
//!
//! Amounts are already in minor units (cents, yen, fils), so "round to minor units" is "round
//! to an integer" whatever the currency's number of decimals.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Whether the unit prices handed in are net (tax is added) or gross (tax is contained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceBasis {
    Net,
    Gross,
}

/// One line to price: `quantity` × `unit_price` (minor units) taxed at `rate` (0.19 = 19 %).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceableLine {
    pub quantity: u32,
    pub unit_price: i64,
    pub rate: Decimal,
}

/// Net, tax and gross of a line, a group or the whole order, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub net: i64,
    pub tax: i64,
    pub gross: i64,
}

/// The lines that share one tax rate, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct RateGroup {
    pub rate: Decimal,
    pub amounts: Amounts,
}

/// A priced order: one [`Amounts`] per input line (same order), the rate groups in ascending
/// rate, and the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub lines: Vec<Amounts>,
    pub groups: Vec<RateGroup>,
    pub total: Amounts,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("the discounts at tax rate {rate} exceed the products they discount")]
    DiscountExceedsProducts { rate: Decimal },
    #[error("line {line}: tax rate {rate} is outside 0..=1")]
    RateOutOfRange { line: usize, rate: Decimal },
    #[error("the order's amounts do not fit in 64-bit minor units")]
    Overflow,
}

/// Rounds to whole minor units, half away from zero (0.5 → 1, 2.5 → 3).
pub fn round_minor(value: Decimal) -> Result<i64, PricingError> {
    value
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or(PricingError::Overflow)
}

/// Prices `lines`; see the module documentation for the rules.
pub fn price(lines: &[PriceableLine], basis: PriceBasis) -> Result<Priced, PricingError> {
    let mut bases = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.rate < Decimal::ZERO || line.rate > Decimal::ONE {
            return Err(PricingError::RateOutOfRange {
                line: i + 1,
                rate: line.rate,
            });
        }
        let base = line
            .unit_price
            .checked_mul(i64::from(line.quantity))
            .ok_or(PricingError::Overflow)?;
        bases.push(base);
    }

    let mut rates: Vec<Decimal> = lines.iter().map(|l| l.rate.normalize()).collect();
    rates.sort();
    rates.dedup();

    let mut priced_lines = vec![Amounts::default(); lines.len()];
    let mut groups = Vec::with_capacity(rates.len());
    let mut total = Amounts::default();
    for rate in rates {
        let members: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].rate.normalize() == rate)
            .collect();
        let (charges, discounts): (Vec<usize>, Vec<usize>) =
            members.iter().partition(|&&i| bases[i] >= 0);
        let sum = |of: &[usize]| {
            of.iter()
                .try_fold(0_i64, |acc, &i| acc.checked_add(bases[i]))
                .ok_or(PricingError::Overflow)
        };
        let charged = sum(&charges)?;
        let base = charged
            .checked_add(sum(&discounts)?)
            .ok_or(PricingError::Overflow)?;
        if base < 0 {
            return Err(PricingError::DiscountExceedsProducts { rate });
        }
        let tax_of = |base: i64| match basis {
            PriceBasis::Net => round_minor(Decimal::from(base) * rate),
            PriceBasis::Gross => round_minor(Decimal::from(base) * rate / (Decimal::ONE + rate)),
        };
        let tax = tax_of(base)?;
        let charged_tax = tax_of(charged)?;
        let weights = |of: &[usize]| of.iter().map(|&i| bases[i].abs()).collect::<Vec<_>>();
        let mut shares: Vec<(usize, i64)> = charges
            .iter()
            .copied()
            .zip(allocate(charged_tax, &weights(&charges))?)
            .collect();
        // The discounts take back the tax their products would have carried: a negative share.
        let taken_back = allocate(charged_tax - tax, &weights(&discounts))?;
        shares.extend(
            discounts
                .iter()
                .copied()
                .zip(taken_back.into_iter().map(|t| -t)),
        );
        for (i, share) in shares {
            priced_lines[i] = match basis {
                PriceBasis::Net => Amounts {
                    net: bases[i],
                    tax: share,
                    gross: bases[i] + share,
                },
                PriceBasis::Gross => Amounts {
                    net: bases[i] - share,
                    tax: share,
                    gross: bases[i],
                },
            };
        }
        let amounts = match basis {
            PriceBasis::Net => Amounts {
                net: base,
                tax,
                gross: base.checked_add(tax).ok_or(PricingError::Overflow)?,
            },
            PriceBasis::Gross => Amounts {
                net: base - tax,
                tax,
                gross: base,
            },
        };
        total = Amounts {
            net: total
                .net
                .checked_add(amounts.net)
                .ok_or(PricingError::Overflow)?,
            tax: total
                .tax
                .checked_add(amounts.tax)
                .ok_or(PricingError::Overflow)?,
            gross: total
                .gross
                .checked_add(amounts.gross)
                .ok_or(PricingError::Overflow)?,
        };
        groups.push(RateGroup { rate, amounts });
    }
    Ok(Priced {
        lines: priced_lines,
        groups,
        total,
    })
}

/// Splits `total` (≥ 0) over `weights` (≥ 0) in proportion, in whole units, by largest
/// remainder: every part is the floor of its exact share, and the units left over go to the
/// parts with the largest remainders (the earlier line on a tie). The parts add up to `total`.
pub(crate) fn allocate(total: i64, weights: &[i64]) -> Result<Vec<i64>, PricingError> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 {
        // No base, hence no tax: round(0 × rate) is 0.
        return Ok(vec![0; weights.len()]);
    }
    let total = i128::from(total);
    let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total * i128::from(*w);
        parts.push(exact / sum);
        remainders.push((exact % sum, i));
    }
    let mut left = total - parts.iter().sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|p| i64::try_from(p).map_err(|_| PricingError::Overflow))
        .collect()
}

#[cfg(test)]
mod tests;
