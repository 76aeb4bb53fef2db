//! Carries one simulated shipment: waits, publishes each reply with a confirm, and only then
//! acknowledges the request. A reply the broker does not take (no queue bound yet, connection
//! trouble) is retried with a growing pause; on shutdown the request is given back to the queue
//! instead, and a later run repeats the journey (shipping ignores what it already knows).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use orderflow_messages::shipment::{LabelCreated, Requested, TrackingStatus, TrackingUpdated};
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::CancellationToken;
use orderflow_runtime::amqp::Publisher;
use serde_json::Value;
use uuid::Uuid;

use super::journey::{self, CODE, Plan};
use super::{PRODUCER, SimSettings};

/// The request could not be completed before shutdown.
struct Interrupted;

/// What every shipment's task shares.
pub(super) struct Courier {
    pub publisher: Publisher,
    pub settings: SimSettings,
    /// Shipments in flight, with the token a `shipment.cancel_requested` trips. Also keeps a
    /// redelivered request from running twice side by side.
    pub pending: Mutex<HashMap<Uuid, CancellationToken>>,
    pub shutdown: CancellationToken,
}

impl Courier {
    /// Registers `shipment_id` as in flight; `None` if it already is.
    pub fn begin(&self, shipment_id: Uuid) -> Option<CancellationToken> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains_key(&shipment_id) {
            return None;
        }
        let token = CancellationToken::new();
        pending.insert(shipment_id, token.clone());
        Some(token)
    }

    /// Trips the cancellation of `shipment_id`; `false` if it is not in flight.
    pub fn cancel(&self, shipment_id: Uuid) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .get(&shipment_id)
            .map(CancellationToken::cancel)
            .is_some()
    }

    fn finish(&self, shipment_id: Uuid) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.remove(&shipment_id);
    }

    /// Runs the whole journey of `request`, then acks (or, interrupted, requeues) its delivery.
    pub async fn carry(
        self: Arc<Self>,
        delivery: Delivery,
        envelope: Envelope<Value>,
        request: Requested,
        plan: Plan,
        cancel: CancellationToken,
    ) {
        let result = self.journey(&envelope, &request, plan, &cancel).await;
        self.finish(request.shipment_id);
        let shipment_id = request.shipment_id;
        let settled = match result {
            Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await,
            Err(Interrupted) => {
                tracing::info!(%shipment_id, "shutting down mid-journey; the request goes back to the queue");
                let requeue = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                delivery.acker.nack(requeue).await
            }
        };
        if let Err(e) = settled {
            // The broker redelivers it after the channel is back; the journey repeats harmlessly.
            tracing::warn!(%shipment_id, error = %e, "could not settle the request");
        }
    }

    async fn journey(
        &self,
        request_envelope: &Envelope<Value>,
        request: &Requested,
        plan: Plan,
        cancel: &CancellationToken,
    ) -> Result<(), Interrupted> {
        let shipment_id = request.shipment_id;
        let tracking_number = journey::tracking_number(shipment_id);
        let Plan { outcome, delays } = plan;
        let mut last = None;
        let cancelled_event = |last| TrackingUpdated {
            shipment_id,
            carrier: CODE.to_owned(),
            tracking_number: tracking_number.clone(),
            status: TrackingStatus::Cancelled,
            status_at: journey::next_status_at(last, chrono::Utc::now()),
            location: Some(request.ship_from_warehouse.clone()),
            description: Some("cancelled at the shipper's request before pick-up".to_owned()),
        };

        if !wait(delays.label, Some(cancel)).await {
            return self.reply(request_envelope, cancelled_event(last)).await;
        }
        let label = LabelCreated {
            shipment_id,
            carrier: CODE.to_owned(),
            tracking_number: tracking_number.clone(),
            label_url: journey::label_url(&self.settings.label_url_base, shipment_id),
        };
        self.reply(request_envelope, label).await?;

        for (i, leg) in journey::legs(request, outcome, delays)
            .into_iter()
            .enumerate()
        {
            // Once picked up (the first leg), a cancellation comes too late.
            let cancellable = (i == 0).then_some(cancel);
            if !wait(leg.wait, cancellable).await {
                return self.reply(request_envelope, cancelled_event(last)).await;
            }
            let status_at = journey::next_status_at(last, chrono::Utc::now());
            last = Some(status_at);
            let event = TrackingUpdated {
                shipment_id,
                carrier: CODE.to_owned(),
                tracking_number: tracking_number.clone(),
                status: leg.status,
                status_at,
                location: Some(leg.location),
                description: Some(leg.description),
            };
            self.reply(request_envelope, event).await?;
        }
        tracing::info!(%shipment_id, ?outcome, "journey finished");
        Ok(())
    }

    /// Publishes one reply (confirmed), retrying until it is taken or the simulator stops.
    async fn reply<E: Event>(
        &self,
        cause: &Envelope<Value>,
        payload: E,
    ) -> Result<(), Interrupted> {
        let envelope = Envelope::caused_by(PRODUCER, cause, payload);
        let mut pause = Duration::from_millis(100);
        loop {
            match self.publisher.publish(&envelope, Some(CODE)).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(kind = E::TYPE, error = format!("{e:#}"), retry_in = ?pause,
                        "reply not accepted by the broker");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(Interrupted),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// Waits `duration`; `false` if `cancel` was tripped first (or already).
async fn wait(duration: Duration, cancel: Option<&CancellationToken>) -> bool {
    let Some(cancel) = cancel else {
        tokio::time::sleep(duration).await;
        return true;
    };
    if cancel.is_cancelled() {
        return false;
    }
    if duration.is_zero() {
        return true;
    }
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}
