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
//! - [`NoProvider`]: methods that need no provider (`invoice`, `bank_transfer`, `cash_on_delivery`).

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
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::Capture => "capture",
            Operation::Void => "void",
        }
    }
}

/// `{order_id}:{operation}`: the same order and operation always send the same key.
pub fn idempotency_key(order_id: Uuid, operation: Operation) -> String {
    format!("{order_id}:{}", operation.as_str())
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

/// Capture (part of) an authorisation, or void it (then `amount` is what was held).
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
}

/// The connector of each payment method.
#[derive(Clone)]
pub struct Connectors(HashMap<PaymentMethod, Arc<dyn PaymentConnector>>);

impl Connectors {
    /// `card` → the simulated provider; every other method → [`NoProvider`].
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
            idempotency_key(id, Operation::Capture),
            "00000000-0000-0000-0000-000000000000:capture"
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
