//! Packing rules: which picked lines go into which parcel.
//!
//! One warehouse per parcel; a parcel is closed when the next unit would take it over the
//! weight limit. A single unit heavier than the limit travels alone.

use std::collections::BTreeMap;

use orderflow_messages::order::{Parcel, ParcelGroup, ParcelLine, Verified};
use orderflow_messages::types::Dimensions;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct PackingRules {
    pub max_parcel_weight_grams: u32,
}

/// A box big enough for the simulated warehouse's parcels.
const STANDARD_BOX: Dimensions = Dimensions {
    length_mm: 400,
    width_mm: 300,
    height_mm: 200,
};

impl PackingRules {
    /// Packs the reserved lines of `order`, grouped by warehouse (in warehouse order).
    pub fn pack(&self, order: &Verified) -> Result<Vec<ParcelGroup>, String> {
        let mut by_warehouse: BTreeMap<&str, Vec<Parcel>> = BTreeMap::new();
        for reservation in &order.reservations {
            let line = order
                .lines
                .iter()
                .find(|l| l.line_no == reservation.line_no)
                .ok_or_else(|| {
                    format!(
                        "reservation names line {} which the order lacks",
                        reservation.line_no
                    )
                })?;
            let parcels = by_warehouse
                .entry(reservation.warehouse.as_str())
                .or_default();
            for _ in 0..reservation.quantity {
                let fits = parcels.last().is_some_and(|p| {
                    p.weight_grams + line.weight_grams <= self.max_parcel_weight_grams
                });
                if !fits {
                    parcels.push(Parcel {
                        parcel_id: Uuid::now_v7(),
                        weight_grams: 0,
                        dimensions: STANDARD_BOX,
                        lines: Vec::new(),
                    });
                }
                let Some(parcel) = parcels.last_mut() else {
                    continue;
                };
                parcel.weight_grams += line.weight_grams;
                match parcel.lines.iter_mut().find(|l| l.line_no == line.line_no) {
                    Some(existing) => existing.quantity += 1,
                    None => parcel.lines.push(ParcelLine {
                        line_no: line.line_no,
                        sku: line.sku.clone(),
                        quantity: 1,
                    }),
                }
            }
        }
        Ok(by_warehouse
            .into_iter()
            .map(|(warehouse, parcels)| ParcelGroup {
                warehouse: warehouse.to_owned(),
                parcels,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_messages::order::{Customer, Delivery, Reservation, VerifiedLine};
    use orderflow_messages::types::*;

    fn order(lines: &[(u32, u32, u32)], reservations: &[(&str, u32, u32)]) -> Verified {
        let eur = Currency::parse("EUR").expect("EUR");
        let sku = Sku::parse("SKU-1").expect("sku");
        Verified {
            customer: Customer {
                customer_id: None,
                email: EmailAddress::parse("a@example.com").expect("email"),
                name: "A".into(),
            },
            currency: eur.clone(),
            lines: lines
                .iter()
                .map(|&(line_no, quantity, weight_grams)| VerifiedLine {
                    line_no,
                    sku: sku.clone(),
                    name: "thing".into(),
                    quantity,
                    unit_price: 100,
                    tax_class: "standard".into(),
                    weight_grams,
                    dimensions: None,
                    customisations: vec![],
                })
                .collect(),
            subtotal: Money::new(100, eur),
            reservations: reservations
                .iter()
                .map(|&(w, line_no, quantity)| Reservation {
                    warehouse: w.into(),
                    line_no,
                    sku: sku.clone(),
                    quantity,
                })
                .collect(),
            shipping_address: Address {
                name: "A".into(),
                line1: "x".into(),
                line2: None,
                postal_code: "1".into(),
                city: "c".into(),
                country: CountryCode::parse("DE").expect("DE"),
                phone: None,
            },
            billing_address: None,
            delivery: Delivery {
                shipping_method: "standard".into(),
                ..Default::default()
            },
            payment: Payment {
                method: PaymentMethod::Invoice,
                token: None,
            },
            coupon_code: None,
        }
    }

    #[test]
    fn each_warehouse_gets_its_own_parcels() {
        let rules = PackingRules {
            max_parcel_weight_grams: 10_000,
        };
        let groups = rules
            .pack(&order(
                &[(1, 3, 500)],
                &[("berlin", 1, 2), ("hamburg", 1, 1)],
            ))
            .expect("packed");
        let summary: Vec<_> = groups
            .iter()
            .map(|g| {
                (
                    g.warehouse.as_str(),
                    g.parcels.len(),
                    g.parcels[0].weight_grams,
                )
            })
            .collect();
        assert_eq!(summary, vec![("berlin", 1, 1000), ("hamburg", 1, 500)]);
    }

    #[test]
    fn a_parcel_is_closed_before_it_exceeds_the_weight_limit() {
        let rules = PackingRules {
            max_parcel_weight_grams: 1_000,
        };
        let groups = rules
            .pack(&order(&[(1, 5, 400)], &[("berlin", 1, 5)]))
            .expect("packed");
        let weights: Vec<_> = groups[0].parcels.iter().map(|p| p.weight_grams).collect();
        assert_eq!(weights, vec![800, 800, 400]);
        let units: u32 = groups[0]
            .parcels
            .iter()
            .flat_map(|p| &p.lines)
            .map(|l| l.quantity)
            .sum();
        assert_eq!(units, 5);
    }
}
