//! Packing rules: which picked units go into which parcel, and what a parcel weighs and measures.
//!
//! A parcel holds the goods of one warehouse (the caller packs one pick list at a time). It may
//! weigh at most `max_weight_grams` and must fit the largest box, `max_dimensions`. A parcel's
//! size is estimated from its contents: as long as the longest unit, as wide as the widest, and
//! as high as the units' total volume needs on that footprint (never lower than the highest
//! unit). A single unit over the limits travels alone; the carrier decides what to do with it.

use orderflow_messages::order::{Parcel, ParcelLine};
use orderflow_messages::types::{Dimensions, Sku};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct PackingRules {
    pub max_weight_grams: u32,
    pub max_dimensions: Dimensions,
}

/// Units of one line waiting to be packed.
#[derive(Debug, Clone)]
pub struct Goods {
    pub line_no: u32,
    pub sku: Sku,
    pub weight_grams: u32,
    /// `None` when the catalogue does not know it: counted as [`UNKNOWN_UNIT`].
    pub dimensions: Option<Dimensions>,
    pub quantity: u32,
}

/// The size assumed for a unit whose catalogue entry has no dimensions.
pub const UNKNOWN_UNIT: Dimensions = Dimensions {
    length_mm: 100,
    width_mm: 100,
    height_mm: 100,
};

/// Sides, longest first.
fn sides(d: &Dimensions) -> [u64; 3] {
    let mut s = [
        u64::from(d.length_mm),
        u64::from(d.width_mm),
        u64::from(d.height_mm),
    ];
    s.sort_unstable_by(|a, b| b.cmp(a));
    s
}

/// What is in a parcel so far, kept as running totals so adding a unit is checked in O(1).
#[derive(Debug, Clone, Default)]
struct Load {
    weight_grams: u64,
    longest: u64,
    widest: u64,
    highest: u64,
    volume: u64,
    units: u32,
}

impl Load {
    fn with(&self, goods: &Goods, quantity: u32) -> Load {
        let [a, b, c] = sides(goods.dimensions.as_ref().unwrap_or(&UNKNOWN_UNIT));
        let q = u64::from(quantity);
        Load {
            weight_grams: self.weight_grams + u64::from(goods.weight_grams) * q,
            longest: self.longest.max(a),
            widest: self.widest.max(b),
            highest: self.highest.max(c),
            volume: self.volume + a * b * c * q,
            units: self.units + quantity,
        }
    }

    fn dimensions(&self) -> Dimensions {
        let footprint = (self.longest * self.widest).max(1);
        let height = self.highest.max(self.volume.div_ceil(footprint));
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Dimensions {
            length_mm: clamp(self.longest),
            width_mm: clamp(self.widest),
            height_mm: clamp(height),
        }
    }
}

impl PackingRules {
    /// Whether a parcel of this weight and size may be closed (a single unit always may).
    pub fn admits(&self, weight_grams: u64, dimensions: &Dimensions, units: u32) -> bool {
        if units <= 1 {
            return true;
        }
        let [a, b, c] = sides(dimensions);
        let [ma, mb, mc] = sides(&self.max_dimensions);
        weight_grams <= u64::from(self.max_weight_grams) && a <= ma && b <= mb && c <= mc
    }

    /// Weight and estimated size of a parcel holding `contents`.
    pub fn measure(&self, contents: &[(Goods, u32)]) -> (u32, Dimensions) {
        let load = contents
            .iter()
            .fold(Load::default(), |load, (goods, q)| load.with(goods, *q));
        (
            u32::try_from(load.weight_grams).unwrap_or(u32::MAX),
            load.dimensions(),
        )
    }

    /// Packs `goods` into as few parcels as first-fit finds, in the order given.
    pub fn pack(&self, goods: &[Goods]) -> Vec<Parcel> {
        let mut parcels: Vec<(Load, Parcel)> = Vec::new();
        for item in goods {
            for _ in 0..item.quantity {
                let fits = parcels.iter().position(|(load, _)| {
                    let next = load.with(item, 1);
                    self.admits(next.weight_grams, &next.dimensions(), next.units)
                });
                let index = match fits {
                    Some(i) => i,
                    None => {
                        parcels.push((
                            Load::default(),
                            Parcel {
                                parcel_id: Uuid::now_v7(),
                                weight_grams: 0,
                                dimensions: UNKNOWN_UNIT,
                                lines: Vec::new(),
                            },
                        ));
                        parcels.len() - 1
                    }
                };
                let (load, parcel) = &mut parcels[index];
                *load = load.with(item, 1);
                match parcel.lines.iter_mut().find(|l| l.line_no == item.line_no) {
                    Some(line) => line.quantity += 1,
                    None => parcel.lines.push(ParcelLine {
                        line_no: item.line_no,
                        sku: item.sku.clone(),
                        quantity: 1,
                    }),
                }
            }
        }
        parcels
            .into_iter()
            .map(|(load, mut parcel)| {
                parcel.weight_grams = u32::try_from(load.weight_grams).unwrap_or(u32::MAX);
                parcel.dimensions = load.dimensions();
                parcel
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(max_weight_grams: u32) -> PackingRules {
        PackingRules {
            max_weight_grams,
            max_dimensions: Dimensions {
                length_mm: 600,
                width_mm: 400,
                height_mm: 400,
            },
        }
    }

    fn goods(quantity: u32, weight_grams: u32, dimensions: Option<(u32, u32, u32)>) -> Goods {
        Goods {
            line_no: 1,
            sku: Sku::parse("SKU-1").expect("sku"),
            weight_grams,
            dimensions: dimensions.map(|(l, w, h)| Dimensions {
                length_mm: l,
                width_mm: w,
                height_mm: h,
            }),
            quantity,
        }
    }

    #[test]
    fn a_parcel_is_closed_before_it_exceeds_the_weight_limit() {
        let parcels = rules(1_000).pack(&[goods(5, 400, None)]);
        let weights: Vec<_> = parcels.iter().map(|p| p.weight_grams).collect();
        assert_eq!(weights, vec![800, 800, 400]);
        let units: u32 = parcels
            .iter()
            .flat_map(|p| &p.lines)
            .map(|l| l.quantity)
            .sum();
        assert_eq!(units, 5);
    }

    #[test]
    fn a_parcel_is_closed_before_it_outgrows_the_largest_box() {
        // Each unit is 600 x 400 x 150: two stack to 300 mm, a third would need 450 mm.
        let parcels = rules(50_000).pack(&[goods(3, 1_000, Some((400, 600, 150)))]);
        let sizes: Vec<_> = parcels
            .iter()
            .map(|p| (p.dimensions.height_mm, p.lines[0].quantity))
            .collect();
        assert_eq!(sizes, vec![(300, 2), (150, 1)]);
        assert_eq!(parcels[0].dimensions.length_mm, 600);
    }

    #[test]
    fn a_unit_over_the_limits_travels_alone() {
        let parcels = rules(1_000).pack(&[goods(2, 5_000, Some((900, 900, 900)))]);
        assert_eq!(parcels.len(), 2);
        assert_eq!(parcels[0].weight_grams, 5_000);
    }

    #[test]
    fn a_measured_parcel_weighs_its_contents() {
        let (weight, size) = rules(20_000).measure(&[(goods(2, 700, None), 2)]);
        assert_eq!(weight, 1_400);
        assert_eq!(
            (size.length_mm, size.width_mm, size.height_mm),
            (100, 100, 200)
        );
    }
}
