//! Deciding which warehouse serves which line, from the stock available: pure, so every rule is
//! tested without a database.
//!
//! One warehouse that can fill the whole order is preferred (one parcel group, one shipment); of
//! those, the one with most of the order's SKUs available, ties broken by code. Otherwise lines
//! are spread: a line goes whole to a warehouse already serving the order if one can fill it, and
//! is otherwise filled from the warehouses with most stock first, split if need be.

use std::collections::{BTreeMap, BTreeSet};

use orderflow_messages::order::{Reservation, ShortLine};
use orderflow_messages::types::Sku;

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub line_no: u32,
    pub sku: Sku,
    pub quantity: u32,
}

/// Units free to reserve, by (warehouse, SKU).
pub type Availability = BTreeMap<(String, String), i64>;

/// The outcome of allocating an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// Every line is covered; reservations in line order.
    Filled(Vec<Reservation>),
    /// These lines cannot be covered by the stock there is.
    Short(Vec<ShortLine>),
}

pub fn allocate(demands: &[Demand], available: &Availability) -> Allocation {
    let warehouses: BTreeSet<&str> = available.keys().map(|(w, _)| w.as_str()).collect();
    let free = |w: &str, sku: &Sku| {
        available
            .get(&(w.to_owned(), sku.as_str().to_owned()))
            .copied()
            .unwrap_or(0)
            .max(0)
    };

    let mut needed: BTreeMap<&Sku, i64> = BTreeMap::new();
    for d in demands {
        *needed.entry(&d.sku).or_default() += i64::from(d.quantity);
    }
    let whole_order = warehouses
        .iter()
        .filter(|w| needed.iter().all(|(sku, n)| free(w, sku) >= *n))
        .map(|w| (needed.keys().map(|sku| free(w, sku)).sum::<i64>(), *w))
        // Most available wins; on a tie the smaller code compares as greater and wins.
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    if let Some((_, warehouse)) = whole_order {
        let reservations = demands
            .iter()
            .filter(|d| d.quantity > 0)
            .map(|d| Reservation {
                warehouse: warehouse.to_owned(),
                line_no: d.line_no,
                sku: d.sku.clone(),
                quantity: d.quantity,
            })
            .collect();
        return Allocation::Filled(reservations);
    }

    let mut left: BTreeMap<(&str, &Sku), i64> = BTreeMap::new();
    for w in &warehouses {
        for sku in needed.keys() {
            left.insert((w, sku), free(w, sku));
        }
    }
    let mut serving: BTreeSet<&str> = BTreeSet::new();
    let mut reservations = Vec::new();
    let mut short = Vec::new();
    for d in demands {
        let wanted = i64::from(d.quantity);
        // Warehouses by most stock of this SKU left, then code.
        let mut by_stock: Vec<(&str, i64)> = warehouses
            .iter()
            .map(|w| (*w, left.get(&(*w, &d.sku)).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        by_stock.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let whole_from_serving = by_stock
            .iter()
            .find(|(w, n)| serving.contains(w) && *n >= wanted)
            .copied();
        let sources = match whole_from_serving {
            Some(one) => vec![one],
            None => by_stock,
        };
        let mut missing = wanted;
        let mut taken = Vec::new();
        for (w, n) in sources {
            if missing == 0 {
                break;
            }
            let take = n.min(missing);
            missing -= take;
            taken.push((w, take));
        }
        if missing > 0 {
            short.push(ShortLine {
                line_no: d.line_no,
                sku: d.sku.clone(),
                missing: u32::try_from(missing).unwrap_or(u32::MAX),
            });
            continue;
        }
        for (w, take) in taken {
            if let Some(n) = left.get_mut(&(w, &d.sku)) {
                *n -= take;
            }
            serving.insert(w);
            reservations.push(Reservation {
                warehouse: w.to_owned(),
                line_no: d.line_no,
                sku: d.sku.clone(),
                quantity: u32::try_from(take).unwrap_or(u32::MAX),
            });
        }
    }
    if short.is_empty() {
        Allocation::Filled(reservations)
    } else {
        Allocation::Short(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).expect("sku")
    }

    fn demand(line_no: u32, s: &str, quantity: u32) -> Demand {
        Demand {
            line_no,
            sku: sku(s),
            quantity,
        }
    }

    fn stock(rows: &[(&str, &str, i64)]) -> Availability {
        rows.iter()
            .map(|(w, s, n)| ((w.to_string(), s.to_string()), *n))
            .collect()
    }

    fn served(allocation: Allocation) -> Vec<(String, u32, u32)> {
        match allocation {
            Allocation::Filled(r) => r
                .into_iter()
                .map(|r| (r.warehouse, r.line_no, r.quantity))
                .collect(),
            Allocation::Short(s) => panic!("short: {s:?}"),
        }
    }

    #[test]
    fn one_warehouse_with_most_stock_serves_the_whole_order() {
        let available = stock(&[
            ("A", "MUG", 5),
            ("A", "HAT", 1),
            ("B", "MUG", 9),
            ("B", "HAT", 1),
            ("C", "MUG", 50),
        ]);
        let plan = allocate(&[demand(1, "MUG", 2), demand(2, "HAT", 1)], &available);
        assert_eq!(served(plan), vec![("B".into(), 1, 2), ("B".into(), 2, 1)]);
    }

    #[test]
    fn equal_warehouses_are_chosen_by_code() {
        let available = stock(&[("B", "MUG", 5), ("A", "MUG", 5)]);
        assert_eq!(
            served(allocate(&[demand(1, "MUG", 2)], &available)),
            vec![("A".into(), 1, 2)]
        );
    }

    #[test]
    fn a_line_larger_than_any_warehouse_is_split() {
        let available = stock(&[("A", "MUG", 3), ("B", "MUG", 4)]);
        assert_eq!(
            served(allocate(&[demand(1, "MUG", 6)], &available)),
            vec![("B".into(), 1, 4), ("A".into(), 1, 2)]
        );
    }

    #[test]
    fn lines_go_whole_to_a_warehouse_already_serving_the_order() {
        let available = stock(&[
            ("A", "HAT", 5),
            ("A", "CAP", 2),
            ("B", "MUG", 5),
            ("C", "CAP", 9),
        ]);
        // No warehouse has everything; A already sends the hat, so it sends the caps too
        // although C has more of them.
        let plan = allocate(
            &[
                demand(1, "HAT", 2),
                demand(2, "MUG", 1),
                demand(3, "CAP", 2),
            ],
            &available,
        );
        assert_eq!(
            served(plan),
            vec![("A".into(), 1, 2), ("B".into(), 2, 1), ("A".into(), 3, 2)]
        );
    }

    #[test]
    fn lines_of_the_same_sku_share_the_stock() {
        let available = stock(&[("A", "MUG", 3)]);
        let plan = allocate(&[demand(1, "MUG", 2), demand(2, "MUG", 2)], &available);
        assert_eq!(
            plan,
            Allocation::Short(vec![ShortLine {
                line_no: 2,
                sku: sku("MUG"),
                missing: 1
            }])
        );
    }

    #[test]
    fn missing_stock_names_the_line_and_how_much_is_missing() {
        let plan = allocate(&[demand(1, "MUG", 2), demand(2, "HAT", 1)], &stock(&[]));
        assert_eq!(
            plan,
            Allocation::Short(vec![
                ShortLine {
                    line_no: 1,
                    sku: sku("MUG"),
                    missing: 2
                },
                ShortLine {
                    line_no: 2,
                    sku: sku("HAT"),
                    missing: 1
                }
            ])
        );
    }
}
