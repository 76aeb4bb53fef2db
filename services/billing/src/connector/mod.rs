//! Payment connectors: the one interface billing talks to payment providers through.
//!
//! Every call carries an idempotency key derived from (order, operation), e.g.
//! `0190…:authorize`. Providers are called inside the handler's database transaction: if that
//! transaction rolls back after the provider answered (a neighbour in the batch failed, the
//! commit failed), the message is handled again and the repeated call with the same key gets the
//! same answer instead of a second charge. An answer of unknown outcome ([`Outcome::Pending`]) is
//! stored and asked again later with the same key.
//!
//! - [`sim_card`]: the built-in simulated card provider (`card`).
//! - [`NoProvider`]: methods that need no provider (`invoice`, `bank_transfer`, `cash_on_delivery`):
//!   an invoice is paid by transfer (`POST /v1/payments`), cash is collected by the carrier.
//! - [`Prepaid`]: paid in the shop beforehand; authorised only with the shop's reference.

pub mod sim_card;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use orderflow_messages::types::{Money, PaymentMethod};
use uuid::Uuid;

/// What a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; `reference` is the provider's id for it.
    Approved { reference: String },
    /// Refused for good; `code` is stable (`declined`, `insufficient_funds`, `invalid_token`, …).
    Declined { code: String, message: String },
    /// The provider took the request but the outcome is not known yet: ask again later.
    Pending,
}

/// The provider could not be reached or failed: nothing happened, try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment provider unavailable: {0}")]
pub struct TransientError(pub String);

/// An operation on a payment, the second half of its idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::Capture => "capture",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }
}

/// `{order_id}:{operation}` for the order's first payment, `{order_id}:{operation}:{attempt}`
/// for the payment made after the `attempt`-th change of method: the same order, attempt and
/// operation always send the same key, and a new method never reuses a declined one's.
pub fn idempotency_key(order_id: Uuid, attempt: i32, operation: Operation) -> String {
    match attempt {
        0 => format!("{order_id}:{}", operation.as_str()),
        n => format!("{order_id}:{}:{n}", operation.as_str()),
    }
}

/// A payment provider's token for a card (never a card number). `Debug` prints `***`: the
/// token never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderToken(String);

impl ProviderToken {
    pub fn new(token: impl Into<String>) -> Self {
        ProviderToken(token.into())
    }

    /// The token itself, for the provider call only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An authorisation request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub idempotency_key: String,
    pub order_id: Uuid,
    pub amount: Money,
    pub token: Option<ProviderToken>,
}

/// Capture (part of) an authorisation, void it (then `amount` is what was held), or refund
/// (part of) a capture.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    pub idempotency_key: String,
    pub order_id: Uuid,
    pub authorization_reference: String,
    pub amount: Money,
}

/// What a connector call returns.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Outcome, TransientError>> + Send + 'a>>;

/// A payment provider. Object-safe, so connectors are chosen per payment method at run time.
pub trait PaymentConnector: Send + Sync {
    /// Short name for logs and the payments table, e.g. `sim_card`.
    fn name(&self) -> &'static str;
    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> Answer<'a>;
    fn capture<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a>;
    fn void<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a>;
    /// Gives back `amount` of a capture; the key names the credit note, so each refund is once.
    fn refund<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a>;
}

/// Methods settled outside any provider: the goods are paid against the invoice, by transfer or
/// in cash to the carrier, so there is nothing to hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProvider;

/// The reference of an authorisation that needed no provider.
pub const NO_AUTHORIZATION_NEEDED: &str = "no-authorization-needed";

impl PaymentConnector for NoProvider {
    fn name(&self) -> &'static str {
        "none"
    }

    fn authorize<'a>(&'a self, _: &'a AuthorizeRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: NO_AUTHORIZATION_NEEDED.to_owned(),
            })
        })
    }

    fn capture<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "settled-outside-a-provider".to_owned(),
            })
        })
    }

    fn void<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "nothing-held".to_owned(),
            })
        })
    }

    fn refund<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        // Paid back by bank transfer from the credit note, outside any provider.
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "to-be-transferred".to_owned(),
            })
        })
    }
}

/// Paid in the shop beforehand: the order's `payment.token` carries the shop's payment
/// reference, which becomes the authorisation (and settlement) reference for reconciliation
/// (`GET /v1/payments?reference=`). Without one there is nothing to reconcile: declined.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepaid;

impl PaymentConnector for Prepaid {
    fn name(&self) -> &'static str {
        "prepaid"
    }

    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> Answer<'a> {
        Box::pin(async move {
            Ok(match request.token.as_ref().map(|t| t.expose().trim()) {
                Some(reference) if !reference.is_empty() => Outcome::Approved {
                    reference: reference.to_owned(),
                },
                _ => Outcome::Declined {
                    code: "missing_reference".to_owned(),
                    message: "a prepaid order needs the shop's payment reference".to_owned(),
                },
            })
        })
    }

    fn capture<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async move {
            Ok(Outcome::Approved {
                reference: request.authorization_reference.clone(),
            })
        })
    }

    fn void<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async move {
            Ok(Outcome::Approved {
                reference: request.authorization_reference.clone(),
            })
        })
    }

    fn refund<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        // The shop pays the customer back at its till.
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "refunded-by-the-shop".to_owned(),
            })
        })
    }
}

/// The connector of each payment method.
#[derive(Clone)]
pub struct Connectors(HashMap<PaymentMethod, Arc<dyn PaymentConnector>>);

impl Connectors {
    /// `card` → the simulated provider, `prepaid` → [`Prepaid`]; every other method →
    /// [`NoProvider`].
    pub fn builtin() -> Connectors {
        let none: Arc<dyn PaymentConnector> = Arc::new(NoProvider);
        Connectors(HashMap::from([
            (
                PaymentMethod::Card,
                Arc::new(sim_card::SimCard) as Arc<dyn PaymentConnector>,
            ),
            (PaymentMethod::Invoice, none.clone()),
            (PaymentMethod::BankTransfer, none.clone()),
            (PaymentMethod::CashOnDelivery, none),
            (
                PaymentMethod::Prepaid,
                Arc::new(Prepaid) as Arc<dyn PaymentConnector>,
            ),
        ]))
    }

    /// The same, with `method` handled by `connector`.
    pub fn with(mut self, method: PaymentMethod, connector: Arc<dyn PaymentConnector>) -> Self {
        self.0.insert(method, connector);
        self
    }

    pub fn for_method(&self, method: PaymentMethod) -> &dyn PaymentConnector {
        match self.0.get(&method) {
            Some(connector) => connector.as_ref(),
            None => &NoProvider,
        }
    }
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .0
            .iter()
            .map(|(m, c)| format!("{}={}", m.as_str(), c.name()))
            .collect();
        names.sort();
        write!(f, "Connectors({})", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_name_the_order_and_the_operation() {
        let id = Uuid::nil();
        assert_eq!(
            idempotency_key(id, 0, Operation::Capture),
            "00000000-0000-0000-0000-000000000000:capture"
        );
        assert_eq!(
            idempotency_key(id, 2, Operation::Authorize),
            "00000000-0000-0000-0000-000000000000:authorize:2"
        );
    }

    #[test]
    fn a_request_never_prints_its_token() {
        let request = AuthorizeRequest {
            idempotency_key: "k".into(),
            order_id: Uuid::nil(),
            amount: Money::zero(orderflow_messages::types::Currency::parse("EUR").expect("EUR")),
            token: Some(ProviderToken::new("tok_secret_value")),
        };
        assert!(!format!("{request:?}").contains("tok_secret_value"));
    }
}
