//! Events about an order's journey (`order.*`).

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::event;
use crate::types::{Address, Channel, Currency, Dimensions, EmailAddress, Money, Payment, Sku};

/// The customer as given with the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Customer {
    /// A known customer's id in verification's records; `None` for a guest order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub email: EmailAddress,
    pub name: String,
}

/// The delivery preferences captured with the order; they travel to the stages that need them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    /// `standard`, `express`, `pickup`, …; shipping's rules map it to a carrier.
    pub shipping_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_note: Option<String>,
}

/// A line as the customer ordered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlacedLine {
    /// 1-based position in the order.
    pub line_no: u32,
    pub sku: Sku,
    pub quantity: u32,
    /// Unit price the customer saw, in minor units of the order's currency.
    pub unit_price: i64,
    /// Customisation asked for on this line (engraving text, gift wrap, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customisations: Vec<String>,
}

/// `order.placed` — intake accepted an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Placed {
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference: Option<String>,
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<PlacedLine>,
    pub shipping_address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    pub delivery: Delivery,
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
}
event!(Placed, "order.placed");

/// One line after verification: priced from the catalogue, with what later stages need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifiedLine {
    pub line_no: u32,
    pub sku: Sku,
    pub name: String,
    pub quantity: u32,
    /// Catalogue unit price in minor units (net or gross as the catalogue is configured).
    pub unit_price: i64,
    /// The catalogue's tax class, e.g. `standard`, `reduced`, `zero`.
    pub tax_class: String,
    pub weight_grams: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Dimensions>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customisations: Vec<String>,
}

/// Stock held for an order in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reservation {
    pub warehouse: String,
    pub line_no: u32,
    pub sku: Sku,
    pub quantity: u32,
}

/// `order.verified` — every check passed and all lines are reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verified {
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<VerifiedLine>,
    /// Sum of the lines, before tax rules, shipping and discounts.
    pub subtotal: Money,
    pub reservations: Vec<Reservation>,
    pub shipping_address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    pub delivery: Delivery,
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
}
event!(Verified, "order.verified");

/// Why something was refused: a stable code, the field or line it concerns, and words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// Stable, machine-readable, e.g. `unknown_sku`, `insufficient_stock`, `price_mismatch`.
    pub code: String,
    /// The line it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_no: Option<u32>,
    /// The field it concerns, if any, e.g. `lines[2].unit_price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// `order.rejected` — verification refused the order; every failing check is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rejected {
    pub reasons: Vec<Reason>,
}
event!(Rejected, "order.rejected");

/// A line that is short of stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShortLine {
    pub line_no: u32,
    pub sku: Sku,
    /// Units that could not be reserved or were not found.
    pub missing: u32,
}

/// `order.backordered` — valid, but waiting for stock of these lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Backordered {
    pub lines: Vec<ShortLine>,
}
event!(Backordered, "order.backordered");

/// Picked lines in one parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ParcelLine {
    pub line_no: u32,
    pub sku: Sku,
    pub quantity: u32,
}

/// A closed parcel, ready for a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Parcel {
    pub parcel_id: Uuid,
    pub weight_grams: u32,
    pub dimensions: Dimensions,
    pub lines: Vec<ParcelLine>,
}

/// The parcels one warehouse sends: shipping makes one shipment per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ParcelGroup {
    pub warehouse: String,
    pub parcels: Vec<Parcel>,
}

/// `order.packed` — every parcel of every warehouse is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Packed {
    pub groups: Vec<ParcelGroup>,
    pub ship_to: Address,
    pub delivery: Delivery,
    /// Value of the goods, for the carrier's insurance and customs.
    pub declared_value: Money,
    /// Amount the carrier collects on delivery, if the customer pays cash on delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_on_delivery: Option<Money>,
}
event!(Packed, "order.packed");

/// `order.fulfilment_failed` — picking found less than was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FulfilmentFailed {
    pub warehouse: String,
    pub missing: Vec<ShortLine>,
}
event!(FulfilmentFailed, "order.fulfilment_failed");

/// `order.reallocated` — verification's answer to [`FulfilmentFailed`] (a short pick): the units
/// `warehouse` could not find are now reserved elsewhere, and fulfilment opens a pick list for
/// each warehouse named in `reservations`.
///
/// - Before it, verification corrected the stock (the missing units did not exist) and shrank
///   that warehouse's reservations by the missing units, so the short warehouse packs only
///   what it found.
/// - `reservations` holds only the new units (line, SKU, quantity, warehouse); a warehouse may
///   appear that already serves the order (fulfilment adds to, or opens a second pick list
///   there). The order's `order.verified` is not repeated; its lines (name, weight) still hold.
/// - When the missing units cannot be reserved anywhere, verification publishes instead
///   `order.backordered` with the missing lines (every short product allows backorder; an
///   `order.reallocated` follows once stock arrives, possibly from the short warehouse itself)
///   or `order.on_hold` (stage `verification`, reason `out_of_stock`) for a person to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reallocated {
    /// The warehouse whose pick came up short.
    pub warehouse: String,
    /// The newly reserved units, by line and warehouse.
    pub reservations: Vec<Reservation>,
}
event!(Reallocated, "order.reallocated");

/// A shipment as the order's customer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShipmentRef {
    pub shipment_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

/// `order.shipped` — every shipment of the order is with its carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Shipped {
    pub shipments: Vec<ShipmentRef>,
    /// The order's shipping method, as placed.
    pub shipping_method: String,
}
event!(Shipped, "order.shipped");

/// `order.delivered` — every shipment is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Delivered {
    pub delivered_at: DateTime<Utc>,
}
event!(Delivered, "order.delivered");

/// `order.delivery_failed` — a shipment came back or was lost; billing does not charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryFailed {
    pub shipment_id: Uuid,
    /// The carrier's final status: `return_to_sender` or `failure`.
    pub status: String,
    pub reason: String,
}
event!(DeliveryFailed, "order.delivery_failed");

/// `order.invoiced` — billing issued the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Invoiced {
    /// Gapless per series and year, e.g. `INV-2026-000001`.
    pub invoice_number: String,
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}
event!(Invoiced, "order.invoiced");

/// `order.paid` — the invoice is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Paid {
    pub payment_id: Uuid,
    pub invoice_number: String,
    pub amount: Money,
}
event!(Paid, "order.paid");

/// `order.completed` — paid and the customer's confirmation is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Completed {
    pub confirmation_sent_to: EmailAddress,
}
event!(Completed, "order.completed");

/// `order.cancel_requested` — a customer, staff or a stage asked to cancel. Shipping decides
/// (it owns the point of no return, the handover to a carrier) and answers with
/// [`Cancelled`] or [`CancelRefused`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CancelRequested {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}
event!(CancelRequested, "order.cancel_requested");

/// `order.cancelled` — the cancellation is decided (by shipping, before any handover); every
/// stage compensates what it did and says so with an event of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Cancelled {
    pub reason: String,
}
event!(Cancelled, "order.cancelled");

/// `order.cancel_refused` — too late: a shipment is already with its carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CancelRefused {
    pub reason: String,
}
event!(CancelRefused, "order.cancel_refused");

/// `order.unpacked` — a cancelled order's parcels were unpacked; the goods are back on the shelf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unpacked {
    pub groups: Vec<ParcelGroup>,
    pub reason: String,
}
event!(Unpacked, "order.unpacked");

/// `order.payment_method_changed` — the customer gave a new payment method (after a decline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentMethodChanged {
    pub payment: Payment,
}
event!(PaymentMethodChanged, "order.payment_method_changed");

/// `order.on_hold` — a stage cannot go on without a person (no carrier rule, payment declined, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OnHold {
    /// The service that holds it.
    pub stage: String,
    pub reason: Reason,
}
event!(OnHold, "order.on_hold");

/// `order.stalled` — an order stayed in one stage longer than that stage's limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Stalled {
    pub status: String,
    pub since: DateTime<Utc>,
    pub limit_seconds: u64,
}
event!(Stalled, "order.stalled");

/// `order.feedback_received` — the customer rated the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackReceived {
    /// 1 to 5.
    pub rating: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
event!(FeedbackReceived, "order.feedback_received");
