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
        assert!(matches!(
            price(
                &[line(1, 100, "0.2"), line(1, -101, "0.2")],
                PriceBasis::Net
            ),
            Err(PricingError::DiscountExceedsProducts { .. })
        ));
        assert!(matches!(
            price(&[line(1, 100, "1.5")], PriceBasis::Net),
            Err(PricingError::RateOutOfRange { line: 1, .. })
        ));
        assert_eq!(
            price(&[line(u32::MAX, i64::MAX / 2, "0.2")], PriceBasis::Net),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn a_discount_lowers_its_rate_group_before_the_group_is_taxed() {
        // 24.00 at 7 % less 2.40: taxed on 21.60 → 1.51 (1.512), not 1.68 − 0.17 = 1.51 by luck.
        let priced = price(
            &[
                line(1, 950, "0.07"),
                line(1, 1450, "0.07"),
                line(1, -240, "0.07"),
                line(1, 490, "0.19"),
            ],
            PriceBasis::Net,
        )
        .expect("priced");
        assert_eq!(priced.groups[0].amounts.tax, 151);
        assert_eq!(priced.lines[2].net, -240);
        assert_eq!(priced.lines[2].tax, 151 - 168);
        assert_eq!(priced.total.gross, 2160 + 151 + 490 + 93);
    }

    /// A small deterministic generator (splitmix64), so the random orders below are the same
    /// on every run and a failure names the case that broke.
    struct Cases(u64);

    impl Cases {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// For 20,000 random orders — 1 to 8 lines, prices from 0 to 1,000,000 minor units,
    /// quantities 1 to 50, rates drawn from real tables, discounts up to their group's whole
    /// price, both bases: every line, group and total satisfies net + tax = gross, the lines
    /// add up to the groups and the groups to the total, each group's tax is its base's tax
    /// rounded half away from zero, and no product line's tax strays 2 minor units from its
    /// own exact tax.
    #[test]
    fn lines_always_add_up_to_the_total_and_net_plus_tax_is_gross() {
        let rates = ["0", "0.05", "0.055", "0.07", "0.1", "0.19", "0.2", "0.25"];
        let mut cases = Cases(0x0BD1_11E5);
        for case in 0..20_000 {
            let basis = if cases.below(2) == 0 {
                PriceBasis::Net
            } else {
                PriceBasis::Gross
            };
            let mut lines: Vec<PriceableLine> = (0..=cases.below(8))
                .map(|_| {
                    let price = match cases.below(4) {
                        0 => cases.below(100) as i64,
                        _ => cases.below(1_000_001) as i64,
                    };
                    line(
                        1 + cases.below(50) as u32,
                        price,
                        rates[cases.below(rates.len() as u64) as usize],
                    )
                })
                .collect();
            // Discounts: up to the whole price of a rate group already present.
            for _ in 0..cases.below(3) {
                let rate = lines[cases.below(lines.len() as u64) as usize].rate;
                let group: i64 = lines
                    .iter()
                    .filter(|l| l.rate == rate)
                    .map(|l| l.unit_price * i64::from(l.quantity))
                    .sum();
                if group > 0 {
                    let off = 1 + cases.below(group as u64) as i64;
                    lines.push(PriceableLine {
                        quantity: 1,
                        unit_price: -off,
                        rate,
                    });
                }
            }
            check_invariants(&lines, basis, case);
        }
    }

    fn check_invariants(lines: &[PriceableLine], basis: PriceBasis, case: usize) {
        let priced = price(lines, basis).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let sum = |f: fn(&Amounts) -> i64| priced.lines.iter().map(f).sum::<i64>();
        assert_eq!(sum(|a| a.net), priced.total.net, "{lines:?}");
        assert_eq!(sum(|a| a.tax), priced.total.tax, "{lines:?}");
        assert_eq!(sum(|a| a.gross), priced.total.gross, "{lines:?}");
        assert_eq!(priced.total.net + priced.total.tax, priced.total.gross);
        for (l, a) in lines.iter().zip(&priced.lines) {
            assert_eq!(a.net + a.tax, a.gross, "case {case}: {l:?}");
            if l.unit_price < 0 {
                continue;
            }
            let base = Decimal::from(l.unit_price * i64::from(l.quantity));
            let exact = match basis {
                PriceBasis::Net => base * l.rate,
                PriceBasis::Gross => base * l.rate / (Decimal::ONE + l.rate),
            };
            assert!(
                (Decimal::from(a.tax) - exact).abs() < Decimal::from(2),
                "case {case}: {l:?}: {a:?}"
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
            assert_eq!(Ok(g.amounts.tax), expected, "case {case}: {g:?}");
        }
        assert_eq!(
            priced.groups.iter().map(|g| g.amounts.gross).sum::<i64>(),
            priced.total.gross
        );
    }
}
