//! What billing does for an order, decided from everything it knows about it.
//!
//! Every message about an order (and the re-check of a pending payment) first stores what it
//! says, then calls [`Billing::settle`], which looks at the stored order, its milestones, its
//! payment and its invoice and does whatever is due and not yet done:
//!
//! 1. no payment yet, or the last one declined and a new method given since (and not
//!    cancelled or failed): authorise the draft's gross (a new attempt);
//! 2. authorisation of unknown outcome: ask the provider again (same idempotency key);
//! 3. delivery failed or cancelled (`order.cancelled`, decided by shipping): release the
//!    money — void the authorisation, or refund what was captured with a credit note — and
//!    never invoice;
//! 4. delivered: issue the invoice once, then capture (cash on delivery, card, prepaid, bank
//!    transfer); an invoice paid by transfer waits for the money (`POST /v1/payments`).
//!
//! Because each step checks what is already done, settling is idempotent and the order in which
//! messages arrive does not matter: an `order.delivered` that comes before `order.verified` is
//! stored, and the invoice is issued when the order arrives.

use chrono::Utc;
use orderflow_messages::order::{Invoiced, Paid, Verified};
use orderflow_messages::payment::Voided;
use orderflow_messages::types::{Money, PaymentMethod};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::HandleError;
use orderflow_runtime::outbox;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::authorization::on_hold;
use crate::connector::{Connectors, Operation, Outcome, SettleRequest, idempotency_key};
use crate::orders::{self, BillingOrder, Milestone, Reached};
use crate::payment::{self, Change, Payment, PaymentStatus};
use crate::refund::{RefundError, RefundRequest};
use crate::settings::BillingRules;
use crate::{NAME, coupon, draft, invoice};

/// The message being acted on: the order it is about, and the causation of what we publish.
#[derive(Debug, Clone, Copy)]
pub struct Cause {
    pub order_id: Uuid,
    pub correlation_id: Uuid,
    pub message_id: Uuid,
}

impl Cause {
    pub fn of<P>(envelope: &Envelope<P>) -> Cause {
        Cause {
            order_id: envelope.order_id,
            correlation_id: envelope.correlation_id,
            message_id: envelope.message_id,
        }
    }

    fn envelope<E: Event>(&self, payload: E) -> Envelope<E> {
        Envelope {
            message_id: Uuid::now_v7(),
            kind: E::TYPE.to_owned(),
            schema_version: E::SCHEMA_VERSION,
            occurred_at: Utc::now(),
            order_id: self.order_id,
            correlation_id: self.correlation_id,
            causation_id: Some(self.message_id),
            producer: NAME.to_owned(),
            payload,
        }
    }

    pub(crate) async fn publish<E: Event>(
        &self,
        conn: &mut PgConnection,
        payload: E,
    ) -> anyhow::Result<()> {
        outbox::enqueue(conn, &self.envelope(payload), None).await
    }
}

/// Billing's rules and payment connectors; shared by the consumer and the re-check loop.
pub struct Billing {
    rules: BillingRules,
    pub(crate) connectors: Connectors,
}

impl Billing {
    pub fn new(rules: BillingRules, connectors: Connectors) -> Billing {
        Billing { rules, connectors }
    }

    pub fn rules(&self) -> &BillingRules {
        &self.rules
    }

    /// `order.verified`: store the order with its priced draft, then settle.
    pub async fn verified(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &Verified,
    ) -> Result<(), HandleError> {
        orders::lock(conn, cause.order_id).await?;
        if orders::load(conn, cause.order_id).await?.is_some() {
            tracing::info!(order_id = %cause.order_id, "order already known; repeated order.verified ignored");
            return Ok(());
        }
        let coupon = match order.coupon_code.as_deref().map(coupon::normalise_code) {
            Some(code) => coupon::load(conn, &code).await?,
            None => None,
        };
        let draft = draft::draft(&self.rules, order, coupon.as_ref(), Utc::now()).map_err(|e| {
            HandleError::Permanent(format!("order.verified: the order cannot be priced: {e}"))
        })?;
        orders::insert(
            conn,
            cause.message_id,
            cause.correlation_id,
            cause.order_id,
            order,
            &draft,
        )
        .await?;
        self.settle(conn, cause).await
    }

    /// `order.payment_method_changed`: after a decline, the next attempt uses the new method
    /// (authorised at once by [`Billing::settle`]); otherwise it is ignored. The order must be known: a change
    /// of method follows a decline, so a change heard first is retried until it is.
    pub async fn payment_method_changed(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        payment: &orderflow_messages::types::Payment,
    ) -> Result<(), HandleError> {
        orders::lock(conn, cause.order_id).await?;
        // Only a declined payment is replaced: money already held (or taken) stays where it is.
        if let Some(current) = payment::of_order(conn, cause.order_id).await?
            && current.status != PaymentStatus::Failed
        {
            tracing::info!(order_id = %cause.order_id, status = current.status.as_str(), "payment method change ignored: the payment was not declined");
            return Ok(());
        }
        if !orders::change_payment_method(conn, cause.order_id, payment).await? {
            return Err(HandleError::Transient(anyhow::anyhow!(
                "order {} not verified yet; the change of payment method waits for it",
                cause.order_id
            )));
        }
        tracing::info!(order_id = %cause.order_id, method = payment.method.as_str(), "payment method changed");
        self.settle(conn, cause).await
    }

    /// A milestone of the journey: record it, then settle.
    pub async fn reached(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        milestone: Milestone,
        reached: Reached,
    ) -> Result<(), HandleError> {
        orders::lock(conn, cause.order_id).await?;
        orders::record(conn, cause.order_id, milestone, &reached).await?;
        self.settle(conn, cause).await
    }

    /// Asks the provider again about a pending payment of `order_id` (the re-check loop).
    pub async fn recheck(&self, conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<()> {
        orders::lock(conn, order_id).await?;
        let Some(order) = orders::load(conn, order_id).await? else {
            return Ok(());
        };
        let pending_cause = payment::of_order(conn, order_id)
            .await?
            .and_then(|p| p.pending_cause);
        let cause = Cause {
            order_id,
            correlation_id: order.correlation_id,
            message_id: pending_cause.unwrap_or(order.verified_message_id),
        };
        self.settle(conn, cause).await.map_err(|e| match e {
            HandleError::Transient(e) => e,
            HandleError::Permanent(reason) => anyhow::anyhow!(reason),
        })
    }

    /// Does whatever is due for the order and not yet done (see the module documentation).
    pub async fn settle(&self, conn: &mut PgConnection, cause: Cause) -> Result<(), HandleError> {
        let Some(order) = orders::load(conn, cause.order_id).await? else {
            tracing::info!(order_id = %cause.order_id, "order not verified yet; acting once it is");
            return Ok(());
        };
        let milestones = orders::milestones(conn, order.order_id).await?;
        let has = |m: Milestone| milestones.contains_key(&m);
        let mut payment = payment::of_order(conn, order.order_id).await?;

        // A new attempt is due when there is none yet, or the last was declined and the
        // customer has given another method since.
        let attempt_due = match &payment {
            None => true,
            Some(p) => p.status == PaymentStatus::Failed && p.attempt < order.payment_revision,
        };
        if attempt_due && !has(Milestone::Cancelled) && !has(Milestone::DeliveryFailed) {
            payment = Some(self.authorize(conn, cause, &order).await?);
        }
        if let Some(p) = payment.as_mut()
            && p.status == PaymentStatus::AuthorizationPending
        {
            self.authorize_again(conn, cause, &order, p).await?;
        }

        for (milestone, what) in [
            (Milestone::DeliveryFailed, "delivery failed"),
            (Milestone::Cancelled, "order cancelled"),
        ] {
            if let Some(why) = milestones.get(&milestone) {
                if let Some(p) = payment.as_mut() {
                    self.release(conn, cause, &order, p, why, what).await?;
                }
                return Ok(());
            }
        }
        if has(Milestone::Delivered) {
            let number = match invoice::number_of_order(conn, order.order_id).await? {
                Some(number) => number,
                None => self.issue(conn, cause, &order, payment.as_ref()).await?,
            };
            // An invoice paid by transfer is settled by the money received (`POST
            // /v1/payments`); every other method is taken now (cash: the carrier collected it).
            if let Some(p) = payment.as_mut()
                && p.method != PaymentMethod::Invoice
            {
                self.capture(conn, cause, p, &number).await?;
            }
        }
        Ok(())
    }

    /// Issues the invoice. It is announced (`order.invoiced`) unless the payment can no longer
    /// pay it (declined or released): such an order is on hold for a person, and the invoice
    /// waits for them without moving the order on.
    async fn issue(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &BillingOrder,
        payment: Option<&Payment>,
    ) -> Result<String, HandleError> {
        let lines = orders::draft_lines(conn, order.order_id).await?;
        let due_in_days =
            (order.payment_method == PaymentMethod::Invoice).then_some(self.rules.invoice_due_days);
        let issued =
            invoice::issue(conn, order, &lines, &self.rules.invoice_series, due_in_days).await?;
        tracing::info!(order_id = %order.order_id, invoice = %issued.number, "invoice issued");
        if payment.is_some_and(|p| p.status.may_still_be_paid()) {
            let money = |amount| Money::new(amount, order.currency.clone());
            let invoiced = Invoiced {
                invoice_number: issued.number.clone(),
                net: money(issued.total.net),
                tax: money(issued.total.tax),
                gross: money(issued.total.gross),
            };
            cause.publish(conn, invoiced).await?;
        }
        Ok(issued.number)
    }

    /// Captures an authorised payment; `order.paid` once the money is taken.
    async fn capture(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        p: &mut Payment,
        invoice_number: &str,
    ) -> Result<(), HandleError> {
        if !matches!(
            p.status,
            PaymentStatus::Authorized | PaymentStatus::CapturePending
        ) {
            return Ok(());
        }
        let connector = self.connectors.for_method(p.method);
        let request = settle_request(p, Operation::Capture);
        let outcome = connector
            .capture(&request)
            .await
            .map_err(anyhow::Error::new)?;
        match outcome {
            Outcome::Approved { reference } => {
                let change = Change {
                    settlement_reference: Some(reference),
                    ..Change::default()
                };
                payment::transition(conn, p, PaymentStatus::Captured, change).await?;
                tracing::info!(order_id = %p.order_id, amount = %p.amount, "payment captured");
                let paid = Paid {
                    payment_id: p.payment_id,
                    invoice_number: invoice_number.to_owned(),
                    amount: p.amount.clone(),
                };
                cause.publish(conn, paid).await?;
            }
            Outcome::Declined { code, message } => {
                let change = Change {
                    failure: Some((code.clone(), message.clone())),
                    ..Change::default()
                };
                payment::transition(conn, p, PaymentStatus::CaptureFailed, change).await?;
                tracing::warn!(order_id = %p.order_id, %code, "capture declined; order on hold");
                cause
                    .publish(conn, on_hold(format!("capture_{code}"), message))
                    .await?;
            }
            Outcome::Pending if p.status == PaymentStatus::Authorized => {
                let change = Change {
                    pending_cause: Some(cause.message_id),
                    ..Change::default()
                };
                payment::transition(conn, p, PaymentStatus::CapturePending, change).await?;
            }
            Outcome::Pending => {}
        }
        Ok(())
    }

    /// Lets go of the money: voids a held authorisation (`payment.voided`), or gives back
    /// what was captured with a credit note (`payment.refunded`).
    async fn release(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &BillingOrder,
        p: &mut Payment,
        why: &Reached,
        what: &str,
    ) -> Result<(), HandleError> {
        let reason = match &why.detail {
            Some(detail) => format!("{what}: {detail}"),
            None => what.to_owned(),
        };
        match p.status {
            PaymentStatus::Authorized | PaymentStatus::VoidPending => {
                let connector = self.connectors.for_method(p.method);
                let request = settle_request(p, Operation::Void);
                let outcome = connector.void(&request).await.map_err(anyhow::Error::new)?;
                let (next, change) = match outcome {
                    Outcome::Approved { reference } => (
                        PaymentStatus::Voided,
                        Change {
                            settlement_reference: Some(reference),
                            ..Change::default()
                        },
                    ),
                    Outcome::Declined { code, message } => (
                        PaymentStatus::VoidFailed,
                        Change {
                            failure: Some((code, message)),
                            ..Change::default()
                        },
                    ),
                    Outcome::Pending if p.status == PaymentStatus::Authorized => (
                        PaymentStatus::VoidPending,
                        Change {
                            pending_cause: Some(cause.message_id),
                            ..Change::default()
                        },
                    ),
                    Outcome::Pending => return Ok(()),
                };
                payment::transition(conn, p, next, change).await?;
                tracing::info!(order_id = %p.order_id, status = p.status.as_str(), %reason, "authorisation released");
                if p.status == PaymentStatus::Voided {
                    let voided = Voided {
                        payment_id: p.payment_id,
                        amount: p.amount.clone(),
                        reason,
                    };
                    cause.publish(conn, voided).await?;
                }
            }
            PaymentStatus::Captured if p.refunded < p.amount.amount => {
                let everything = RefundRequest::everything(reason);
                match self.refund(conn, cause, order, p, &everything).await {
                    Ok(refunded) => {
                        tracing::info!(order_id = %p.order_id, credit_note = %refunded.credit_note_number, "captured payment refunded");
                    }
                    Err(RefundError::Unexpected(e)) => return Err(e.into()),
                    Err(refused) => {
                        return Err(HandleError::Permanent(format!(
                            "the captured payment cannot be refunded: {refused}"
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub(crate) fn settle_request(p: &Payment, operation: Operation) -> SettleRequest {
    SettleRequest {
        idempotency_key: idempotency_key(p.order_id, p.attempt, operation),
        order_id: p.order_id,
        authorization_reference: p.authorization_reference.clone().unwrap_or_default(),
        amount: p.amount.clone(),
    }
}
