//! The consumer of `billing.orders`: turns each message into what it means for billing.

use std::sync::Arc;

use orderflow_messages::order::{
    Cancelled, Delivered, DeliveryFailed, PaymentMethodChanged, Shipped, Verified,
};
use orderflow_runtime::{HandleError, Handler, Incoming};
use sqlx::PgConnection;

use crate::orders::{Milestone, Reached};
use crate::settlement::{Billing, Cause};

pub struct OrdersHandler {
    pub billing: Arc<Billing>,
}

impl Handler for OrdersHandler {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let cause = Cause::of(&msg.envelope);
        let reached = |detail: Option<String>| Reached {
            message_id: msg.envelope.message_id,
            occurred_at: msg.envelope.occurred_at,
            detail,
        };
        if msg.is::<Verified>() {
            let order = msg.decode::<Verified>()?;
            self.billing.verified(conn, cause, &order).await
        } else if msg.is::<Delivered>() {
            let delivered = msg.decode::<Delivered>()?;
            let reached = Reached {
                occurred_at: delivered.delivered_at,
                ..reached(None)
            };
            self.billing
                .reached(conn, cause, Milestone::Delivered, reached)
                .await
        } else if msg.is::<Cancelled>() {
            let cancelled = msg.decode::<Cancelled>()?;
            self.billing
                .reached(
                    conn,
                    cause,
                    Milestone::Cancelled,
                    reached(Some(cancelled.reason)),
                )
                .await
        } else if msg.is::<PaymentMethodChanged>() {
            let changed = msg.decode::<PaymentMethodChanged>()?;
            self.billing
                .payment_method_changed(conn, cause, &changed.payment)
                .await
        } else if msg.is::<DeliveryFailed>() {
            let failed = msg.decode::<DeliveryFailed>()?;
            let detail = format!("{}: {}", failed.status, failed.reason);
            self.billing
                .reached(
                    conn,
                    cause,
                    Milestone::DeliveryFailed,
                    reached(Some(detail)),
                )
                .await
        } else if msg.is::<Shipped>() {
            msg.decode::<Shipped>()?;
            self.billing
                .reached(conn, cause, Milestone::Shipped, reached(None))
                .await
        } else {
            Ok(())
        }
    }
}
