//! Events about stock (`stock.*`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::event;
use crate::order::Reservation;
use crate::types::Sku;

/// `stock.low` — available stock of a SKU in a warehouse fell to its reorder point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Low {
    pub warehouse: String,
    pub sku: Sku,
    pub available: i64,
    pub reorder_point: i64,
    /// Suggested order quantity.
    pub reorder_quantity: i64,
}
event!(Low, "stock.low");

/// `stock.released` — an order's reservations went back to available stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Released {
    pub reason: String,
    pub reservations: Vec<Reservation>,
}
event!(Released, "stock.released");
