//! Fulfilment against the real broker and database.

use std::time::Duration;

use orderflow_messages::order::{self, Customer, Delivery, Reservation, VerifiedLine};
use orderflow_messages::types::*;
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::testing::TestEnv;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn verified(payment: PaymentMethod) -> order::Verified {
    let eur = Currency::parse("EUR").expect("EUR");
    let line = |line_no: u32, sku: &str, quantity: u32| VerifiedLine {
        line_no,
        sku: Sku::parse(sku).expect("sku"),
        name: sku.to_lowercase(),
        quantity,
        unit_price: 1000,
        tax_class: "standard".into(),
        weight_grams: 700,
        dimensions: None,
        customisations: vec![],
    };
    let reservation = |warehouse: &str, line_no: u32, sku: &str, quantity: u32| Reservation {
        warehouse: warehouse.into(),
        line_no,
        sku: Sku::parse(sku).expect("sku"),
        quantity,
    };
    order::Verified {
        customer: Customer {
            customer_id: None,
            email: EmailAddress::parse("ann@example.com").expect("email"),
            name: "Ann".into(),
        },
        currency: eur.clone(),
        lines: vec![line(1, "MUG", 2), line(2, "TEA", 1)],
        subtotal: Money::new(3000, eur),
        reservations: vec![
            reservation("berlin", 1, "MUG", 2),
            reservation("hamburg", 2, "TEA", 1),
        ],
        shipping_address: Address {
            name: "Ann".into(),
            line1: "Hauptstr. 1".into(),
            line2: None,
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: CountryCode::parse("DE").expect("DE"),
            phone: None,
        },
        billing_address: None,
        delivery: Delivery {
            shipping_method: "standard".into(),
            ..Default::default()
        },
        payment: Payment {
            method: payment,
            token: None,
        },
        coupon_code: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_order_becomes_one_parcel_group_per_warehouse_once() {
    let env = TestEnv::new();
    let bound = fulfilment::build(&env.settings)
        .await
        .expect("fulfilment starts");
    let addr = bound.local_addr();
    let stop = CancellationToken::new();
    let running = tokio::spawn(bound.run_until_stopped(stop.clone()));
    let mut packed_probe = env.probe(&[(Exchange::Events, "order.packed")]).await;
    let (_conn, publisher) = env.publisher().await;

    let input = Envelope::new(
        "verification",
        Uuid::now_v7(),
        verified(PaymentMethod::CashOnDelivery),
    );
    publisher.publish(&input, None).await.expect("published");
    // The same message again (a redelivery) and a second verification of the same order.
    publisher.publish(&input, None).await.expect("published");
    let again = Envelope::new(
        "verification",
        input.order_id,
        verified(PaymentMethod::CashOnDelivery),
    );
    publisher.publish(&again, None).await.expect("published");

    let packed = packed_probe.next_of::<order::Packed>(WAIT).await;
    assert_eq!(packed.order_id, input.order_id);
    assert_eq!(packed.causation_id, Some(input.message_id));
    let groups: Vec<_> = packed
        .payload
        .groups
        .iter()
        .map(|g| {
            (
                g.warehouse.as_str(),
                g.parcels.iter().map(|p| p.weight_grams).sum::<u32>(),
            )
        })
        .collect();
    assert_eq!(groups, vec![("berlin", 1400), ("hamburg", 700)]);
    assert_eq!(
        packed.payload.cash_on_delivery.map(|m| m.amount),
        Some(3000)
    );

    // Nothing else is packed for the same order.
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/v1/fulfilments/{}", input.order_id))
        .bearer_auth("dev-staff-key")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "packed");
    assert_eq!(body["pick_lists"].as_array().map(Vec::len), Some(2));
    let pool = env.pool("fulfilment").await;
    orderflow_runtime::testing::eventually("the outbox is drained", WAIT, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    pool.close().await;
    let extra = tokio::time::timeout(
        Duration::from_millis(500),
        packed_probe.next(Duration::from_secs(1)),
    )
    .await;
    assert!(extra.is_err(), "a second order.packed was published");

    stop.cancel();
    running.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fulfilment_api_needs_a_staff_key() {
    let env = TestEnv::new();
    let bound = fulfilment::build(&env.settings)
        .await
        .expect("fulfilment starts");
    let addr = bound.local_addr();
    let stop = CancellationToken::new();
    let running = tokio::spawn(bound.run_until_stopped(stop.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/fulfilments/{}", Uuid::now_v7());
    let anonymous = client.get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );
    let shop = client
        .get(&url)
        .bearer_auth("dev-shop-key")
        .send()
        .await
        .expect("GET");
    assert_eq!(shop.status(), 403);
    let staff = client
        .get(&url)
        .bearer_auth("dev-staff-key")
        .send()
        .await
        .expect("GET");
    assert_eq!(staff.status(), 404);
    let health = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
    stop.cancel();
    running.await.expect("joined").expect("clean stop");
}
