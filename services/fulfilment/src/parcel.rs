//! Parcels: closing them (by staff, or by the packing rules in the simulated warehouse), and
//! announcing the order as `order.packed` once every pick list of it is packed — its parcels
//! grouped by warehouse, so shipping sends one shipment per group.

use std::collections::BTreeMap;

use orderflow_messages::order::{Packed, Parcel, ParcelGroup, ParcelLine};
use orderflow_messages::types::{Dimensions, PaymentMethod};
use orderflow_runtime::outbox;
use orderflow_runtime::problem::FieldError;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::pick_list::{Floor, OrderRow, PickList, WorkError};

/// A parcel as staff close it: units per line, and optionally what the scale and the tape
/// measure said (otherwise estimated from the catalogue).
#[derive(Debug, Clone)]
pub struct ParcelRequest {
    pub lines: Vec<(u32, u32)>,
    pub weight_grams: Option<u32>,
    pub dimensions: Option<Dimensions>,
}

impl Floor {
    /// Units per line already in closed parcels of the pick list.
    async fn packed_units(
        &self,
        conn: &mut PgConnection,
        pick_list: Uuid,
    ) -> sqlx::Result<BTreeMap<u32, u32>> {
        let parcels: Vec<Json<Vec<ParcelLine>>> = sqlx::query_scalar(
            "SELECT lines FROM parcels WHERE pick_list_id = $1 AND status = 'closed'",
        )
        .bind(pick_list)
        .fetch_all(&mut *conn)
        .await?;
        let mut packed = BTreeMap::new();
        for line in parcels.iter().flat_map(|p| p.0.iter()) {
            *packed.entry(line.line_no).or_insert(0) += line.quantity;
        }
        Ok(packed)
    }

    async fn ready_to_pack(
        &self,
        conn: &mut PgConnection,
        list: &PickList,
    ) -> Result<(), WorkError> {
        match list.status.as_str() {
            "picked" => {}
            "open" => {
                return Err(WorkError::Conflict(format!(
                    "pick list {} is not picked yet: confirm the pick first",
                    list.id
                )));
            }
            other => {
                return Err(WorkError::Conflict(format!(
                    "pick list {} is {other}",
                    list.id
                )));
            }
        }
        let open = self.open_tasks(conn, list.id).await?;
        if open > 0 {
            return Err(WorkError::Conflict(format!(
                "pick list {} has {open} customisation task(s) still open; complete them before packing",
                list.id
            )));
        }
        Ok(())
    }

    pub(crate) async fn insert_parcel(
        &self,
        conn: &mut PgConnection,
        pick_list: Uuid,
        parcel: &Parcel,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO parcels (id, pick_list_id, weight_grams, dimensions, lines, status) \
             VALUES ($1, $2, $3, $4, $5, 'closed')",
        )
        .bind(parcel.parcel_id)
        .bind(pick_list)
        .bind(i32::try_from(parcel.weight_grams).unwrap_or(i32::MAX))
        .bind(Json(&parcel.dimensions))
        .bind(Json(&parcel.lines))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Closes one parcel of a picked pick list, within the packing rules.
    pub async fn close_parcel(
        &self,
        conn: &mut PgConnection,
        order: &OrderRow,
        list: &PickList,
        request: ParcelRequest,
    ) -> Result<Parcel, WorkError> {
        self.ready_to_pack(conn, list).await?;
        let packed = self.packed_units(conn, list.id).await?;
        let mut errors = Vec::new();
        let mut contents = Vec::new();
        if request.lines.is_empty() {
            errors.push(FieldError::new(
                "lines",
                "required",
                "a parcel holds at least one unit",
            ));
        }
        for (i, &(line_no, quantity)) in request.lines.iter().enumerate() {
            let Some(line) = list.lines.0.iter().find(|l| l.line_no == line_no) else {
                errors.push(FieldError::new(
                    format!("lines[{i}].line_no"),
                    "unknown",
                    format!("line {line_no} is not on this pick list"),
                ));
                continue;
            };
            let left = line
                .picked
                .unwrap_or(0)
                .saturating_sub(packed.get(&line_no).copied().unwrap_or(0));
            let asked: u32 = request
                .lines
                .iter()
                .filter(|(n, _)| *n == line_no)
                .map(|(_, q)| *q)
                .sum();
            if quantity == 0 || asked > left {
                errors.push(FieldError::new(
                    format!("lines[{i}].quantity"),
                    "range",
                    format!("line {line_no} has {left} picked unit(s) not yet packed"),
                ));
                continue;
            }
            contents.push((line.goods(quantity), quantity));
        }
        if !errors.is_empty() {
            return Err(WorkError::Invalid(errors));
        }
        let (estimated_weight, estimated_size) = self.rules.measure(&contents);
        let weight_grams = request.weight_grams.unwrap_or(estimated_weight);
        let dimensions = request.dimensions.unwrap_or(estimated_size);
        let units: u32 = contents.iter().map(|(_, q)| q).sum();
        if !self
            .rules
            .admits(u64::from(weight_grams), &dimensions, units)
        {
            return Err(WorkError::Invalid(vec![FieldError::new(
                "lines",
                "parcel_limits",
                format!(
                    "{weight_grams} g, {}x{}x{} mm is over the limit of {} g, {}x{}x{} mm; \
                     split the units over more parcels",
                    dimensions.length_mm,
                    dimensions.width_mm,
                    dimensions.height_mm,
                    self.rules.max_weight_grams,
                    self.rules.max_dimensions.length_mm,
                    self.rules.max_dimensions.width_mm,
                    self.rules.max_dimensions.height_mm
                ),
            )]));
        }
        let mut lines: Vec<ParcelLine> = Vec::new();
        for (goods, quantity) in &contents {
            match lines.iter_mut().find(|l| l.line_no == goods.line_no) {
                Some(line) => line.quantity += quantity,
                None => lines.push(ParcelLine {
                    line_no: goods.line_no,
                    sku: goods.sku.clone(),
                    quantity: *quantity,
                }),
            }
        }
        let parcel = Parcel {
            parcel_id: Uuid::now_v7(),
            weight_grams,
            dimensions,
            lines,
        };
        self.insert_parcel(conn, list.id, &parcel).await?;
        self.finish_pick_list(conn, order, list).await?;
        Ok(parcel)
    }

    /// Packs every picked unit not yet in a parcel by the packing rules (the simulated warehouse).
    pub async fn pack_rest(
        &self,
        conn: &mut PgConnection,
        order: &OrderRow,
        list: &PickList,
    ) -> Result<(), WorkError> {
        self.ready_to_pack(conn, list).await?;
        let packed = self.packed_units(conn, list.id).await?;
        let goods: Vec<_> = list
            .lines
            .0
            .iter()
            .map(|l| {
                let left = l
                    .picked
                    .unwrap_or(0)
                    .saturating_sub(packed.get(&l.line_no).copied().unwrap_or(0));
                l.goods(left)
            })
            .filter(|g| g.quantity > 0)
            .collect();
        for parcel in self.rules.pack(&goods) {
            self.insert_parcel(conn, list.id, &parcel).await?;
        }
        self.finish_pick_list(conn, order, list).await
    }

    /// Marks the pick list packed once every picked unit is in a parcel, then maybe the order.
    async fn finish_pick_list(
        &self,
        conn: &mut PgConnection,
        order: &OrderRow,
        list: &PickList,
    ) -> Result<(), WorkError> {
        let packed = self.packed_units(conn, list.id).await?;
        let done = list
            .lines
            .0
            .iter()
            .all(|l| packed.get(&l.line_no).copied().unwrap_or(0) >= l.picked.unwrap_or(0));
        if done {
            sqlx::query(
                "UPDATE pick_lists SET status = 'packed', due_at = NULL, updated_at = now() \
                 WHERE id = $1 AND status = 'picked'",
            )
            .bind(list.id)
            .execute(&mut *conn)
            .await?;
            self.finish_order_if_packed(conn, order).await?;
        }
        Ok(())
    }

    /// Publishes `order.packed` once no pick list of the order is unfinished and the order is
    /// not waiting for a reallocation. The order's lock makes this happen once.
    pub async fn finish_order_if_packed(
        &self,
        conn: &mut PgConnection,
        order: &OrderRow,
    ) -> Result<(), WorkError> {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pick_lists WHERE order_id = $1 AND status IN ('open', 'picked')",
        )
        .bind(order.order_id)
        .fetch_one(&mut *conn)
        .await?;
        if unfinished > 0 {
            return Ok(());
        }
        let groups = packed_groups(conn, order.order_id).await?;
        let Some(verified) = order.verified.as_ref() else {
            return Ok(());
        };
        if groups.is_empty() {
            return Ok(());
        }
        let updated = sqlx::query(
            "UPDATE orders SET status = 'packed', packed_groups = $2, updated_at = now() \
             WHERE order_id = $1 AND status = 'picking'",
        )
        .bind(order.order_id)
        .bind(Json(&groups))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(());
        }
        let cash_on_delivery = (verified.payment.method == PaymentMethod::CashOnDelivery)
            .then(|| verified.subtotal.clone());
        let packed = Packed {
            groups,
            ship_to: verified.shipping_address.clone(),
            delivery: verified.delivery.clone(),
            declared_value: verified.subtotal.clone(),
            cash_on_delivery,
        };
        outbox::enqueue(conn, &order.envelope(packed), None).await?;
        Ok(())
    }
}

/// The order's closed parcels, grouped by warehouse (in warehouse order).
pub async fn packed_groups(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<ParcelGroup>> {
    type Row = (String, Uuid, i32, Json<Dimensions>, Json<Vec<ParcelLine>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.warehouse, c.id, c.weight_grams, c.dimensions, c.lines \
         FROM parcels c JOIN pick_lists p ON p.id = c.pick_list_id \
         WHERE p.order_id = $1 AND c.status = 'closed' ORDER BY p.warehouse, c.id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups: Vec<ParcelGroup> = Vec::new();
    for (warehouse, parcel_id, weight, dimensions, lines) in rows {
        let parcel = Parcel {
            parcel_id,
            weight_grams: u32::try_from(weight).unwrap_or(0),
            dimensions: dimensions.0,
            lines: lines.0,
        };
        match groups.last_mut() {
            Some(group) if group.warehouse == warehouse => group.parcels.push(parcel),
            _ => groups.push(ParcelGroup {
                warehouse,
                parcels: vec![parcel],
            }),
        }
    }
    Ok(groups)
}
