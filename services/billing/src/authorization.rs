//! Authorising an order's payment with the connector of its payment method: the draft's gross
//! is held once, under the idempotency key `{order_id}:authorize` (after the n-th change of
//! payment method, `{order_id}:authorize:{n}`, a new attempt). The provider's answer
//! becomes the payment's first state and is announced: `payment.authorized`, or
//! `payment.failed` with `order.on_hold` (a person must sort out the payment). An answer of
//! unknown outcome is stored as pending, announced by nobody, and asked again later.

use orderflow_messages::order::{OnHold, Reason};
use orderflow_messages::payment::{Authorized, Failed};
use orderflow_messages::types::Money;
use orderflow_runtime::HandleError;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::NAME;
use crate::connector::{AuthorizeRequest, Operation, Outcome, idempotency_key};
use crate::orders::BillingOrder;
use crate::payment::{self, Change, Payment, PaymentStatus};
use crate::settlement::{Billing, Cause};

impl Billing {
    pub(crate) async fn authorize(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &BillingOrder,
    ) -> Result<Payment, HandleError> {
        let connector = self.connectors.for_method(order.payment_method);
        let request = authorize_request(order, order.payment_revision);
        let outcome = connector
            .authorize(&request)
            .await
            .map_err(anyhow::Error::new)?;
        let mut payment = Payment {
            payment_id: Uuid::now_v7(),
            order_id: order.order_id,
            method: order.payment_method,
            amount: request.amount,
            status: PaymentStatus::AuthorizationPending,
            provider: connector.name().to_owned(),
            authorization_reference: None,
            settlement_reference: None,
            failure_code: None,
            failure_message: None,
            pending_cause: None,
            attempt: order.payment_revision,
            refunded: 0,
        };
        match &outcome {
            Outcome::Approved { reference } => {
                payment.status = PaymentStatus::Authorized;
                payment.authorization_reference = Some(reference.clone());
            }
            Outcome::Declined { code, message } => {
                payment.status = PaymentStatus::Failed;
                payment.failure_code = Some(code.clone());
                payment.failure_message = Some(message.clone());
            }
            Outcome::Pending => payment.pending_cause = Some(cause.message_id),
        }
        payment::insert(conn, &payment).await?;
        self.announce_authorization(conn, cause, &payment).await?;
        Ok(payment)
    }

    pub(crate) async fn authorize_again(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &BillingOrder,
        p: &mut Payment,
    ) -> Result<(), HandleError> {
        let connector = self.connectors.for_method(order.payment_method);
        let outcome = connector
            .authorize(&authorize_request(order, p.attempt))
            .await
            .map_err(anyhow::Error::new)?;
        let (next, change) = match outcome {
            Outcome::Pending => return Ok(()),
            Outcome::Approved { reference } => (
                PaymentStatus::Authorized,
                Change {
                    authorization_reference: Some(reference),
                    ..Change::default()
                },
            ),
            Outcome::Declined { code, message } => (
                PaymentStatus::Failed,
                Change {
                    failure: Some((code, message)),
                    ..Change::default()
                },
            ),
        };
        payment::transition(conn, p, next, change).await?;
        self.announce_authorization(conn, cause, p).await?;
        Ok(())
    }

    /// `payment.authorized`, or `payment.failed` with `order.on_hold`; nothing while pending.
    async fn announce_authorization(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        p: &Payment,
    ) -> anyhow::Result<()> {
        match p.status {
            PaymentStatus::Authorized => {
                tracing::info!(order_id = %p.order_id, amount = %p.amount, "payment authorised");
                let authorized = Authorized {
                    payment_id: p.payment_id,
                    method: p.method,
                    amount: p.amount.clone(),
                    provider_reference: p.authorization_reference.clone().unwrap_or_default(),
                };
                cause.publish(conn, authorized).await
            }
            PaymentStatus::Failed => {
                let code = p.failure_code.clone().unwrap_or_else(|| "declined".into());
                let message = p.failure_message.clone().unwrap_or_default();
                tracing::info!(order_id = %p.order_id, %code, "payment declined; order on hold");
                let failed = Failed {
                    payment_id: p.payment_id,
                    method: p.method,
                    amount: p.amount.clone(),
                    code: code.clone(),
                    message: message.clone(),
                };
                cause.publish(conn, failed).await?;
                cause.publish(conn, on_hold(code, message)).await
            }
            _ => {
                tracing::info!(order_id = %p.order_id, "authorisation outcome unknown; asking again later");
                Ok(())
            }
        }
    }
}

fn authorize_request(order: &BillingOrder, attempt: i32) -> AuthorizeRequest {
    AuthorizeRequest {
        idempotency_key: idempotency_key(order.order_id, attempt, Operation::Authorize),
        order_id: order.order_id,
        amount: Money::new(order.total.gross, order.currency.clone()),
        token: order.payment_token.clone(),
    }
}

pub(crate) fn on_hold(code: String, message: String) -> OnHold {
    OnHold {
        stage: NAME.to_owned(),
        reason: Reason {
            code,
            line_no: None,
            field: Some("payment".to_owned()),
            message,
        },
    }
}
