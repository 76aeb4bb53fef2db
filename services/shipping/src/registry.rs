//! The carrier registry and the stored shipping rules.
//!
//! At start the configured carriers are upserted by code (a carrier that is no longer
//! configured stays, because shipments refer to it) and the configured rules replace the stored
//! ones, position by position, so the table always holds exactly the configured order.
//! Carriers registered through the API (`PUT /v1/carriers/{code}`) live in the same table.
//! Nothing is cached: rule matching reads the registry in the handler's transaction, so a
//! carrier registered on one replica is used by every replica from the next order on.

use anyhow::Context;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::rules::Rule;
use crate::settings::{CarrierSettings, ShippingSettings};

/// A registered carrier, as `GET /v1/carriers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Carrier {
    pub code: String,
    pub name: String,
    pub service_levels: Vec<String>,
    pub tracking_url_template: String,
    pub cash_on_delivery: bool,
}

/// Writes the configured carriers and rules; several replicas may do this at once.
pub async fn seed(pool: &PgPool, settings: &ShippingSettings) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // Replicas starting together would otherwise interleave their rule rewrites.
    sqlx::query("LOCK TABLE shipping_rules IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    for carrier in &settings.carriers {
        register(&mut tx, carrier)
            .await
            .with_context(|| format!("registering carrier {}", carrier.code))?;
    }
    for (position, rule) in settings.rules.iter().enumerate() {
        let countries: Option<Vec<String>> = rule
            .countries
            .as_ref()
            .map(|list| list.iter().map(|c| c.as_str().to_owned()).collect());
        let max_weight = rule
            .max_weight_grams
            .map(i32::try_from)
            .transpose()
            .with_context(|| format!("shipping.rules[{position}].max_weight_grams is too large"))?;
        sqlx::query(
            "INSERT INTO shipping_rules (position, shipping_method, countries, max_weight_grams, carrier, service_level) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (position) DO UPDATE SET shipping_method = EXCLUDED.shipping_method, \
               countries = EXCLUDED.countries, max_weight_grams = EXCLUDED.max_weight_grams, \
               carrier = EXCLUDED.carrier, service_level = EXCLUDED.service_level, updated_at = now() \
             WHERE (shipping_rules.shipping_method, shipping_rules.countries, shipping_rules.max_weight_grams, \
                    shipping_rules.carrier, shipping_rules.service_level) \
               IS DISTINCT FROM (EXCLUDED.shipping_method, EXCLUDED.countries, EXCLUDED.max_weight_grams, \
                    EXCLUDED.carrier, EXCLUDED.service_level)",
        )
        .bind(i32::try_from(position).context("too many shipping rules")?)
        .bind(&rule.shipping_method)
        .bind(countries)
        .bind(max_weight)
        .bind(&rule.carrier)
        .bind(&rule.service_level)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("storing shipping.rules[{position}]"))?;
    }
    sqlx::query("DELETE FROM shipping_rules WHERE position >= $1")
        .bind(i32::try_from(settings.rules.len()).context("too many shipping rules")?)
        .execute(&mut *tx)
        .await?;
    let unregistered: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.carrier FROM shipping_rules r \
         WHERE NOT EXISTS (SELECT 1 FROM carriers c WHERE c.code = r.carrier) ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for code in unregistered {
        tracing::warn!(carrier = %code,
            "a shipping rule names carrier `{code}`, which is not registered: the rule matches nothing until `PUT /v1/carriers/{code}`");
    }
    Ok(())
}

/// Inserts or updates `carrier`; `true` if it was new.
pub async fn register(conn: &mut PgConnection, carrier: &CarrierSettings) -> sqlx::Result<bool> {
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO carriers (code, name, service_levels, tracking_url_template, cash_on_delivery) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, \
           service_levels = EXCLUDED.service_levels, \
           tracking_url_template = EXCLUDED.tracking_url_template, \
           cash_on_delivery = EXCLUDED.cash_on_delivery, updated_at = now() \
         WHERE (carriers.name, carriers.service_levels, carriers.tracking_url_template, carriers.cash_on_delivery) \
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.service_levels, EXCLUDED.tracking_url_template, EXCLUDED.cash_on_delivery) \
         RETURNING (xmax = 0)",
    )
    .bind(&carrier.code)
    .bind(&carrier.name)
    .bind(&carrier.service_levels)
    .bind(&carrier.tracking_url_template)
    .bind(carrier.cash_on_delivery)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.unwrap_or(false))
}

/// Every rule whose carrier is registered and offers the rule's service level, in order, with
/// the carrier's cash-on-delivery ability. Read afresh for every order.
pub async fn rules(conn: &mut PgConnection) -> sqlx::Result<Vec<Rule>> {
    sqlx::query_as(
        "SELECT r.position, r.shipping_method, r.countries, r.max_weight_grams, r.carrier, \
                r.service_level, c.cash_on_delivery AS carrier_cash_on_delivery \
         FROM shipping_rules r \
         JOIN carriers c ON c.code = r.carrier AND r.service_level = ANY (c.service_levels) \
         ORDER BY r.position",
    )
    .fetch_all(conn)
    .await
}

/// The carrier `code`, if registered.
pub async fn carrier(pool: &PgPool, code: &str) -> sqlx::Result<Option<Carrier>> {
    sqlx::query_as(
        "SELECT code, name, service_levels, tracking_url_template, cash_on_delivery \
         FROM carriers WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(pool)
    .await
}

/// Every registered carrier, by code.
pub async fn carriers(pool: &PgPool) -> sqlx::Result<Vec<Carrier>> {
    sqlx::query_as(
        "SELECT code, name, service_levels, tracking_url_template, cash_on_delivery \
         FROM carriers ORDER BY code",
    )
    .fetch_all(pool)
    .await
}

/// The customer's link for `tracking_number`, from the carrier's template.
pub fn tracking_url(template: &str, tracking_number: &str) -> String {
    template.replace("{tracking_number}", &encode_path_segment(tracking_number))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a carrier's odd tracking
/// number cannot change the link's shape.
fn encode_path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracking_link_fills_the_template_with_the_encoded_number() {
        let template = "https://track.example/sim/{tracking_number}";
        assert_eq!(
            tracking_url(template, "SIM000000000042"),
            "https://track.example/sim/SIM000000000042"
        );
        assert_eq!(
            tracking_url(template, "a/b c"),
            "https://track.example/sim/a%2Fb%20c"
        );
    }
}
