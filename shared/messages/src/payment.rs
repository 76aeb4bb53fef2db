//! Events about money (`payment.*`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::event;
use crate::types::{Money, PaymentMethod};

/// `payment.authorized` — the amount is held with the provider (or the method needs no hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Authorized {
    pub payment_id: Uuid,
    pub method: PaymentMethod,
    pub amount: Money,
    /// The provider's reference for the authorisation.
    pub provider_reference: String,
}
event!(Authorized, "payment.authorized");

/// `payment.failed` — the provider declined or the method is not possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failed {
    pub payment_id: Uuid,
    pub method: PaymentMethod,
    pub amount: Money,
    /// Stable code: `declined`, `insufficient_funds`, `invalid_token`, …
    pub code: String,
    pub message: String,
}
event!(Failed, "payment.failed");

/// `payment.voided` — an authorisation was released without charging (cancel, failed delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Voided {
    pub payment_id: Uuid,
    pub amount: Money,
    pub reason: String,
}
event!(Voided, "payment.voided");

/// `payment.refunded` — money went back to the customer (a credit note accompanies it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Refunded {
    pub payment_id: Uuid,
    pub amount: Money,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_note_number: Option<String>,
}
event!(Refunded, "payment.refunded");
