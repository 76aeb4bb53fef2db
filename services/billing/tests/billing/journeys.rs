//! Messages in an unexpected order, providers that answer late, and who may read what.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use billing::connector::{
    Answer, AuthorizeRequest, Connectors, Outcome, PaymentConnector, SettleRequest,
};
use orderflow_messages::order::{Invoiced, Paid};
use orderflow_messages::payment::Authorized;
use orderflow_messages::types::PaymentMethod;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_heard_before_the_verification_is_invoiced_once_the_order_arrives() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();

    app.publish(&delivered(order_id)).await;
    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;

    let authorized = app.wait_for::<Authorized>(order_id).await;
    let invoiced = app.wait_for::<Invoiced>(order_id).await;
    let paid = app.wait_for::<Paid>(order_id).await;
    assert_eq!(invoiced.gross, authorized.amount);
    assert_eq!(paid.invoice_number, invoiced.invoice_number);
    app.stop().await;
}

/// A card provider whose first answer to every authorisation is "not known yet".
#[derive(Default)]
struct SlowProvider {
    authorisations: AtomicUsize,
}

impl PaymentConnector for SlowProvider {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn authorize<'a>(&'a self, _: &'a AuthorizeRequest) -> Answer<'a> {
        let call = self.authorisations.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            Ok(if call == 0 {
                Outcome::Pending
            } else {
                Outcome::Approved {
                    reference: "slow_auth_1".into(),
                }
            })
        })
    }

    fn capture<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "slow_capture_1".into(),
            })
        })
    }

    fn void<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "slow_void_1".into(),
            })
        })
    }

    fn refund<'a>(&'a self, _: &'a SettleRequest) -> Answer<'a> {
        Box::pin(async {
            Ok(Outcome::Approved {
                reference: "slow_refund_1".into(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorisation_of_unknown_outcome_is_asked_again_and_then_paid() {
    let tune = |s: orderflow_runtime::Settings| {
        s.with("billing.pending_recheck_secs", 1).expect("settings")
    };
    let connectors =
        || Connectors::builtin().with(PaymentMethod::Card, Arc::new(SlowProvider::default()));
    let mut app = spawn_with(1, tune, connectors).await;
    let order_id = Uuid::now_v7();

    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    app.publish(&delivered(order_id)).await;

    let invoiced = app.wait_for::<Invoiced>(order_id).await;
    let authorized = app.wait_for::<Authorized>(order_id).await;
    assert_eq!(authorized.provider_reference, "slow_auth_1");
    let paid = app.wait_for::<Paid>(order_id).await;
    assert_eq!(paid.invoice_number, invoiced.invoice_number);
    assert_eq!(paid.amount.amount, 6079);
    let payments = app
        .get_json(&format!("/v1/payments?order_id={order_id}"))
        .await;
    assert_eq!(payments["payments"][0]["status"], "captured");
    assert_eq!(payments["payments"][0]["provider"], "slow");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_and_payments_are_for_staff_and_errors_say_what_is_wrong() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/v1/invoices/INV-2026-000001", "").await.status(),
        401
    );
    assert_eq!(
        app.get("/v1/invoices/INV-2026-000001", "Bearer dev-shop-key")
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get("/v1/invoices/INV-2026-000001", STAFF_KEY)
            .await
            .status(),
        404
    );
    let missing = app.get("/v1/payments", STAFF_KEY).await;
    assert_eq!(missing.status(), 422);
    let problem: serde_json::Value = missing.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "order_id");
    let malformed = app.get("/v1/payments?order_id=42", STAFF_KEY).await;
    assert_eq!(malformed.status(), 422);
    let none = app
        .get_json(&format!("/v1/payments?order_id={}", Uuid::now_v7()))
        .await;
    assert_eq!(none["payments"], serde_json::json!([]));
    app.stop().await;
}
