//! How the order's declared value and cash-on-delivery amount are shared among its shipments.
//!
//! `order.packed` carries one declared value (and one amount to collect) for the whole order,
//! but each warehouse's parcels travel as their own shipment. Each shipment gets a share in
//! proportion to its weight (the goods it carries), in whole minor units; the rounding
//! remainder goes to the heaviest shipments first, so the shares always add up to the total.

/// Splits `total` minor units over `weights` (grams). All zero weights split evenly.
pub fn split(total: i64, weights: &[u64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let weights: Vec<u128> = if weights.iter().all(|w| *w == 0) {
        vec![1; weights.len()]
    } else {
        weights.iter().map(|w| u128::from(*w)).collect()
    };
    let sum: u128 = weights.iter().sum();
    let negative = total < 0;
    let magnitude = u128::from(total.unsigned_abs());
    let mut shares: Vec<u128> = weights.iter().map(|w| magnitude * w / sum).collect();
    let mut left = magnitude - shares.iter().sum::<u128>();
    // Largest weight first; ties keep their original order.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| weights[*b].cmp(&weights[*a]));
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
        .into_iter()
        .map(|s| {
            let s = i64::try_from(s).unwrap_or(i64::MAX);
            if negative { -s } else { s }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn shares_follow_the_weight_and_add_up_to_the_total() {
        assert_eq!(split(10_000, &[3_000, 1_000]), vec![7_500, 2_500]);
        assert_eq!(split(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(split(101, &[2, 1]), vec![68, 33]);
        for (total, weights) in [
            (1_i64, vec![5_u64, 5, 5]),
            (99_999, vec![1, 2, 3, 4]),
            (7, vec![0, 0]),
        ] {
            assert_eq!(split(total, &weights).iter().sum::<i64>(), total);
        }
    }

    #[test]
    fn one_shipment_takes_everything() {
        assert_eq!(split(4_990, &[1_200]), vec![4_990]);
        assert_eq!(split(0, &[1, 2]), vec![0, 0]);
        assert!(split(5, &[]).is_empty());
    }
}
