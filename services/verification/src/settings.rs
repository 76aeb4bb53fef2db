//! The `[verification]` settings section (also `ORDERFLOW_VERIFICATION__<KEY>`).

use serde::Deserialize;

/// What to do when an order's unit price differs from the catalogue's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PricePolicy {
    /// Reject the order with a `price_mismatch` reason per differing line.
    #[default]
    Reject,
    /// Accept it at the catalogue's price, which `order.verified` then carries.
    Reprice,
}

/// Service settings; every key has a default. The section's `host` and `port` are read by the
/// runtime, so unknown keys are ignored here.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VerificationSettings {
    /// `reject` (default) or `reprice`.
    pub price_policy: PricePolicy,
    /// Largest quantity one order line may ask for (default 1000).
    pub max_line_quantity: u32,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        VerificationSettings {
            price_policy: PricePolicy::Reject,
            max_line_quantity: 1000,
        }
    }
}
