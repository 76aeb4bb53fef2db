//! The coupon rules, without a database.

use super::*;
use std::str::FromStr;

fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

fn coupon(reduction: Reduction) -> Coupon {
    Coupon {
        code: "SPRING".into(),
        reduction,
        currency: Some(eur()),
        skus: vec![],
        active: true,
        valid_from: None,
        valid_until: None,
        minimum_amount: None,
    }
}

fn lines() -> Vec<Discountable<'static>> {
    let rate = |r: &str| Decimal::from_str(r).expect("rate");
    vec![
        Discountable {
            sku: "BOOK-1",
            base: 950,
            rate: rate("0.07"),
        },
        Discountable {
            sku: "MUG-1",
            base: 2460,
            rate: rate("0.19"),
        },
    ]
}

#[test]
fn a_percentage_is_taken_per_rate_group_and_rounded_half_away_from_zero() {
    let off = coupon(Reduction::Percent {
        percent: Decimal::from(10),
    })
    .apply(&lines(), &eur(), Utc::now())
    .expect("applies");
    assert_eq!(off.iter().map(|g| g.amount).collect::<Vec<_>>(), [95, 246]);
}

#[test]
fn a_fixed_amount_is_spread_over_the_groups_and_never_exceeds_the_products() {
    let off = coupon(Reduction::Fixed { amount: 1000 })
        .apply(&lines(), &eur(), Utc::now())
        .expect("applies");
    assert_eq!(off.iter().map(|g| g.amount).sum::<i64>(), 1000);
    let all = coupon(Reduction::Fixed { amount: 99_999 })
        .apply(&lines(), &eur(), Utc::now())
        .expect("applies");
    assert_eq!(all.iter().map(|g| g.amount).sum::<i64>(), 950 + 2460);
}

#[test]
fn inactive_expired_foreign_too_small_or_unrelated_coupons_say_why() {
    let now = Utc::now();
    let base = coupon(Reduction::Fixed { amount: 100 });
    let why = |c: Coupon| c.apply(&lines(), &eur(), now).expect_err("refused").why;
    assert!(
        why(Coupon {
            active: false,
            ..base.clone()
        })
        .contains("not active")
    );
    let expired = Coupon {
        valid_until: Some(now - chrono::Duration::days(1)),
        ..base.clone()
    };
    assert!(why(expired).contains("expired"));
    let minimum = Coupon {
        minimum_amount: Some(5000),
        ..base.clone()
    };
    assert!(why(minimum).contains("below the minimum"));
    let other = Coupon {
        skus: vec!["LAMP-1".into()],
        ..base.clone()
    };
    assert!(why(other).contains("none of the order's products"));
    let usd = Coupon {
        currency: Some(Currency::parse("USD").expect("USD")),
        ..base
    };
    assert!(why(usd).contains("USD"));
}
