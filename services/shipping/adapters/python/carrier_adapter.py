#!/usr/bin/env python3
"""A minimal orderflow carrier adapter in Python, written from shared/messages/CARRIERS.md alone.

It labels every shipment it is asked to carry and reports it in transit, out for delivery and
delivered at once; a real adapter would call the carrier's API in between. Needs `pika`
(pip install pika). Settings from the environment:

  AMQP_URL          the broker (default amqp://guest:guest@127.0.0.1:5672/%2f)
  CARRIER_CODE      the carrier's code (default acme)
  ORDERFLOW_PREFIX  the deployment's name prefix, if any (default none)
"""

import datetime
import json
import os
import uuid

import pika

CODE = os.environ.get("CARRIER_CODE", "acme")
PREFIX = os.environ.get("ORDERFLOW_PREFIX", "")
URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")

# Tracking numbers of the shipments labelled so far, for cancellations.
labels = {}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def reply(request, kind, payload):
    """An envelope answering `request`: same order and journey, caused by the request."""
    return {
        "message_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "occurred_at": now(),
        "order_id": request["order_id"],
        "correlation_id": request["correlation_id"],
        "causation_id": request["message_id"],
        "producer": f"{CODE}-adapter",
        "payload": payload,
    }


connection = pika.BlockingConnection(pika.URLParameters(URL))
consuming = connection.channel()
consuming.basic_qos(prefetch_count=10)
publishing = connection.channel()
# With confirms on, basic_publish waits for the broker and raises if it refuses the message,
# and with mandatory=True if no queue is bound to the routing key.
publishing.confirm_delivery()


def send(message):
    publishing.basic_publish(
        exchange=PREFIX + "orderflow.carrier-events",
        routing_key=f"{CODE}.{message['type']}",
        body=json.dumps(message).encode(),
        properties=pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            message_id=message["message_id"],
            type=message["type"],
        ),
        mandatory=True,
    )


def carry(request):
    shipment = request["payload"]
    # Derived from the idempotency key: a repeated request gets the same label.
    key = uuid.uuid5(uuid.NAMESPACE_URL, shipment["idempotency_key"])
    number = "ACME" + key.hex[:12].upper()
    labels[shipment["shipment_id"]] = number
    common = {
        "shipment_id": shipment["shipment_id"],
        "carrier": CODE,
        "tracking_number": number,
    }
    send(reply(request, "shipment.label_created",
               {**common, "label_url": f"https://acme.example/labels/{number}.pdf"}))
    for status, where in [("in_transit", shipment["ship_from_warehouse"]),
                          ("out_for_delivery", shipment["ship_to"]["city"]),
                          ("delivered", shipment["ship_to"]["city"])]:
        send(reply(request, "shipment.tracking_updated",
                   {**common, "status": status, "status_at": now(), "location": where}))


def cancel(request):
    shipment_id = request["payload"]["shipment_id"]
    number = labels.get(shipment_id)
    if number is not None:
        send(reply(request, "shipment.tracking_updated", {
            "shipment_id": shipment_id, "carrier": CODE, "tracking_number": number,
            "status": "cancelled", "status_at": now(),
            "description": request["payload"]["reason"]}))


def on_message(channel, method, properties, body):
    try:
        request = json.loads(body)
        if request.get("type") == "shipment.requested":
            carry(request)
        elif request.get("type") == "shipment.cancel_requested":
            cancel(request)
        # Any other type: acknowledged and ignored.
    except (ValueError, KeyError) as error:
        print(f"cannot read a request, dead-lettering it: {error!r}", flush=True)
        channel.basic_reject(method.delivery_tag, requeue=False)
        return
    # Only after every reply was confirmed.
    channel.basic_ack(method.delivery_tag)


consuming.basic_consume(queue=f"{PREFIX}carrier.{CODE}", on_message_callback=on_message)
print(f"carrier {CODE}: consuming {PREFIX}carrier.{CODE}", flush=True)
try:
    consuming.start_consuming()
except KeyboardInterrupt:
    connection.close()
