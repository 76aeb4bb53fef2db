//! The pricing rules, and their properties over many random orders.

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
