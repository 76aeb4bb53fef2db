//! Prices an order: net, tax and gross per line and in total, in integer minor units.
//!
//! Tax is computed once per tax-rate group, not per line: the bases of all lines that share a
//! rate are summed, the group's tax is computed in decimal and rounded half away from zero to
//! whole minor units. The group's tax is then spread over its lines by largest remainder, so
//! the lines of an invoice always add up to its totals and net + tax = gross holds on every line,
//! every group and the whole order. Nothing here is ever a float.
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
    #[error("line {line}: a unit price cannot be negative ({price})")]
    NegativePrice { line: usize, price: i64 },
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
        if line.unit_price < 0 {
            return Err(PricingError::NegativePrice {
                line: i + 1,
                price: line.unit_price,
            });
        }
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
        let weights: Vec<i64> = members.iter().map(|&i| bases[i]).collect();
        let base = weights
            .iter()
            .try_fold(0_i64, |acc, w| acc.checked_add(*w))
            .ok_or(PricingError::Overflow)?;
        let tax = match basis {
            PriceBasis::Net => round_minor(Decimal::from(base) * rate)?,
            PriceBasis::Gross => round_minor(Decimal::from(base) * rate / (Decimal::ONE + rate))?,
        };
        let shares = allocate(tax, &weights)?;
        for (&i, share) in members.iter().zip(shares) {
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
fn allocate(total: i64, weights: &[i64]) -> Result<Vec<i64>, PricingError> {
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
mod tests {
    use super::*;
    use std::str::FromStr;

    fn rate(raw: &str) -> Decimal {
        Decimal::from_str(raw).expect("rate")
    }

    fn line(quantity: u32, unit_price: i64, r: &str) -> PriceableLine {
        PriceableLine {
            quantity,
            unit_price,
            rate: rate(r),
        }
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_minor(rate("0.5")), Ok(1));
        assert_eq!(round_minor(rate("2.5")), Ok(3));
        assert_eq!(round_minor(rate("2.4999")), Ok(2));
        assert_eq!(round_minor(rate("-2.5")), Ok(-3));
    }

    #[test]
    fn tax_is_computed_once_per_rate_group_not_per_line() {
        // 9.50 and 14.50 at 7 %: per line 0.665 + 1.015 would round to 0.67 + 1.02 = 1.69;
        // per group 24.00 × 7 % = 1.68.
        let priced = price(
            &[line(1, 950, "0.07"), line(1, 1450, "0.07")],
            PriceBasis::Net,
        )
        .expect("priced");
        assert_eq!(priced.total.tax, 168);
        assert_eq!(priced.lines[0].tax + priced.lines[1].tax, 168);
        assert_eq!(priced.total.gross, 2400 + 168);
    }

    #[test]
    fn a_group_whose_tax_ends_in_half_a_cent_rounds_up() {
        // 29.50 × 19 % = 5.605 → 5.61 (banker's rounding would give 5.60).
        let priced = price(
            &[line(2, 1230, "0.19"), line(1, 490, "0.19")],
            PriceBasis::Net,
        )
        .expect("priced");
        assert_eq!(priced.total.tax, 561);
        assert_eq!(priced.lines[0].tax, 468);
        assert_eq!(priced.lines[1].tax, 93);
    }

    #[test]
    fn gross_prices_contain_their_tax() {
        // 11.90 gross at 19 % holds 1.90 tax.
        let priced = price(&[line(1, 1190, "0.19")], PriceBasis::Gross).expect("priced");
        assert_eq!(
            priced.total,
            Amounts {
                net: 1000,
                tax: 190,
                gross: 1190
            }
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_line_it_concerns() {
        assert_eq!(
            price(&[line(1, 100, "0.2"), line(1, -1, "0.2")], PriceBasis::Net),
            Err(PricingError::NegativePrice { line: 2, price: -1 })
        );
        assert!(matches!(
            price(&[line(1, 100, "1.5")], PriceBasis::Net),
            Err(PricingError::RateOutOfRange { line: 1, .. })
        ));
        assert_eq!(
            price(&[line(u32::MAX, i64::MAX / 2, "0.2")], PriceBasis::Net),
            Err(PricingError::Overflow)
        );
    }

    /// Over many combinations of prices, quantities, rates and both bases: every line, every
    /// group and the total satisfy net + tax = gross, the lines add up to the groups and the
    /// groups to the total, each group's tax is its base's tax rounded half away from zero,
    /// and no line's tax strays more than 1.5 minor units from its own exact tax.
    #[test]
    fn lines_always_add_up_to_the_total_and_net_plus_tax_is_gross() {
        let rates = ["0", "0.05", "0.055", "0.07", "0.1", "0.19", "0.2", "0.25"];
        let prices = [0_i64, 1, 5, 49, 99, 333, 490, 995, 1005, 1999, 12_345];
        let quantities = [1_u32, 2, 3, 7];
        let mut checked = 0;
        for basis in [PriceBasis::Net, PriceBasis::Gross] {
            for (a, ra) in prices.iter().zip(rates.iter().cycle()) {
                for b in &prices {
                    for rb in &rates {
                        for q in &quantities {
                            let lines = vec![
                                line(*q, *a, ra),
                                line(1, *b, rb),
                                line(q + 1, b + a, rb),
                                line(2, 490, "0.19"),
                            ];
                            check_invariants(&lines, basis);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 5_000, "checked {checked} orders");
    }

    fn check_invariants(lines: &[PriceableLine], basis: PriceBasis) {
        let priced = price(lines, basis).expect("priced");
        let sum = |f: fn(&Amounts) -> i64| priced.lines.iter().map(f).sum::<i64>();
        assert_eq!(sum(|a| a.net), priced.total.net, "{lines:?}");
        assert_eq!(sum(|a| a.tax), priced.total.tax, "{lines:?}");
        assert_eq!(sum(|a| a.gross), priced.total.gross, "{lines:?}");
        assert_eq!(priced.total.net + priced.total.tax, priced.total.gross);
        for (l, a) in lines.iter().zip(&priced.lines) {
            assert_eq!(a.net + a.tax, a.gross, "{l:?}");
            let base = Decimal::from(l.unit_price * i64::from(l.quantity));
            let exact = match basis {
                PriceBasis::Net => base * l.rate,
                PriceBasis::Gross => base * l.rate / (Decimal::ONE + l.rate),
            };
            assert!(
                (Decimal::from(a.tax) - exact).abs() < Decimal::from(2),
                "{l:?}: {a:?}"
            );
        }
        for g in &priced.groups {
            assert_eq!(g.amounts.net + g.amounts.tax, g.amounts.gross);
            let base = Decimal::from(match basis {
                PriceBasis::Net => g.amounts.net,
                PriceBasis::Gross => g.amounts.gross,
            });
            let expected = match basis {
                PriceBasis::Net => round_minor(base * g.rate),
                PriceBasis::Gross => round_minor(base * g.rate / (Decimal::ONE + g.rate)),
            };
            assert_eq!(Ok(g.amounts.tax), expected, "{g:?}");
        }
        assert_eq!(
            priced.groups.iter().map(|g| g.amounts.gross).sum::<i64>(),
            priced.total.gross
        );
    }
}
