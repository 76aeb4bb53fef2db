//! The built-in simulated card provider, for demos and tests. The token decides the answer:
//!
//! | token | authorisation |
//! |---|---|
//! | `tok_visa`, `tok_mastercard` | approved |
//! | `tok_decline` | declined, `declined` |
//! | `tok_insufficient_funds` | declined, `insufficient_funds` |
//! | `tok_transient` | provider unavailable (the message is retried) |
//! | anything else, or none | declined, `invalid_token` |
//!
//! Like a real provider it is idempotent: references are derived from the idempotency key, so
//! repeating a call gives the same answer. Captures and voids of its own authorisations succeed.

use super::{
    Answer, AuthorizeRequest, Outcome, PaymentConnector, ProviderToken, SettleRequest,
    TransientError,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct SimCard;

/// The answer to an authorisation with `token`.
fn authorize(request: &AuthorizeRequest) -> Result<Outcome, TransientError> {
    let declined = |code: &str, message: &str| {
        Ok(Outcome::Declined {
            code: code.to_owned(),
            message: message.to_owned(),
        })
    };
    match request.token.as_ref().map(ProviderToken::expose) {
        Some("tok_visa" | "tok_mastercard") => Ok(Outcome::Approved {
            reference: format!("sim_auth_{}", request.order_id.simple()),
        }),
        Some("tok_decline") => declined("declined", "the card was declined"),
        Some("tok_insufficient_funds") => {
            declined("insufficient_funds", "the card has insufficient funds")
        }
        Some("tok_transient") => Err(TransientError(
            "the simulated card provider timed out".to_owned(),
        )),
        _ => declined("invalid_token", "the card token is not valid"),
    }
}

fn settle(request: &SettleRequest, prefix: &str) -> Result<Outcome, TransientError> {
    if request.authorization_reference.starts_with("sim_auth_") {
        Ok(Outcome::Approved {
            reference: format!("{prefix}_{}", request.order_id.simple()),
        })
    } else {
        Ok(Outcome::Declined {
            code: "unknown_authorization".to_owned(),
            message: "the simulated provider has no such authorisation".to_owned(),
        })
    }
}

impl PaymentConnector for SimCard {
    fn name(&self) -> &'static str {
        "sim_card"
    }

    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> Answer<'a> {
        Box::pin(async move { authorize(request) })
    }

    fn capture<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async move { settle(request, "sim_cap") })
    }

    fn void<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async move { settle(request, "sim_void") })
    }

    fn refund<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        // One reference per refund: the key names the credit note.
        Box::pin(async move {
            settle(request, "sim_refund").map(|outcome| match outcome {
                Outcome::Approved { .. } => Outcome::Approved {
                    reference: format!("sim_refund:{}", request.idempotency_key),
                },
                other => other,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_messages::types::{Currency, Money};
    use uuid::Uuid;

    fn with_token(token: Option<&str>) -> Result<Outcome, TransientError> {
        authorize(&AuthorizeRequest {
            idempotency_key: "k".into(),
            order_id: Uuid::nil(),
            amount: Money::new(100, Currency::parse("EUR").expect("EUR")),
            token: token.map(ProviderToken::new),
        })
    }

    fn code(outcome: Result<Outcome, TransientError>) -> String {
        match outcome {
            Ok(Outcome::Declined { code, .. }) => code,
            other => panic!("expected a decline, got {other:?}"),
        }
    }

    #[test]
    fn each_test_token_gets_its_documented_answer() {
        assert!(matches!(
            with_token(Some("tok_visa")),
            Ok(Outcome::Approved { .. })
        ));
        assert!(matches!(
            with_token(Some("tok_mastercard")),
            Ok(Outcome::Approved { .. })
        ));
        assert_eq!(code(with_token(Some("tok_decline"))), "declined");
        assert_eq!(
            code(with_token(Some("tok_insufficient_funds"))),
            "insufficient_funds"
        );
        assert!(with_token(Some("tok_transient")).is_err());
        assert_eq!(code(with_token(Some("4111111111111111"))), "invalid_token");
        assert_eq!(code(with_token(None)), "invalid_token");
    }

    #[test]
    fn repeating_an_authorisation_gives_the_same_reference() {
        assert_eq!(with_token(Some("tok_visa")), with_token(Some("tok_visa")));
    }
}
