//! How each warehouse works: `automatic` (the simulated warehouse picks, does the tasks and packs
//! on its own, after the configured delays) or `manual` (staff work through the API). A mode set
//! through the admin API wins over `[fulfilment] warehouses.<code>`, which wins over
//! `[fulfilment] default_mode`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::packing::PackingRules;
use crate::pick_list::Floor;
use orderflow_messages::types::Dimensions;

/// How a warehouse works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Automatic,
    Manual,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Automatic => "automatic",
            Mode::Manual => "manual",
        }
    }

    pub fn parse(raw: &str) -> Option<Mode> {
        match raw {
            "automatic" => Some(Mode::Automatic),
            "manual" => Some(Mode::Manual),
            _ => None,
        }
    }
}

/// Section `[fulfilment]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FulfilmentSettings {
    /// Mode of a warehouse that has none of its own.
    pub default_mode: Mode,
    /// Per-warehouse modes, e.g. `warehouses.berlin = "manual"`.
    pub warehouses: BTreeMap<String, Mode>,
    /// The simulated warehouse's time to pick a pick list, after it opens.
    pub pick_delay_ms: u64,
    /// Its time to do a pick list's customisation tasks, after the pick.
    pub task_delay_ms: u64,
    /// Its time to pack, after the pick and the tasks.
    pub pack_delay_ms: u64,
    /// Heaviest parcel we close, in grams.
    pub max_parcel_weight_grams: u32,
    /// Largest parcel we close (the biggest box), in millimetres.
    pub max_parcel_length_mm: u32,
    pub max_parcel_width_mm: u32,
    pub max_parcel_height_mm: u32,
}

impl Default for FulfilmentSettings {
    fn default() -> Self {
        FulfilmentSettings {
            default_mode: Mode::Automatic,
            warehouses: BTreeMap::new(),
            pick_delay_ms: 0,
            task_delay_ms: 0,
            pack_delay_ms: 0,
            max_parcel_weight_grams: 20_000,
            max_parcel_length_mm: 600,
            max_parcel_width_mm: 400,
            max_parcel_height_mm: 400,
        }
    }
}

impl FulfilmentSettings {
    pub fn packing_rules(&self) -> PackingRules {
        PackingRules {
            max_weight_grams: self.max_parcel_weight_grams,
            max_dimensions: Dimensions {
                length_mm: self.max_parcel_length_mm,
                width_mm: self.max_parcel_width_mm,
                height_mm: self.max_parcel_height_mm,
            },
        }
    }

    pub fn delays(&self) -> Delays {
        Delays {
            pick: Duration::from_millis(self.pick_delay_ms),
            tasks: Duration::from_millis(self.task_delay_ms),
            pack: Duration::from_millis(self.pack_delay_ms),
        }
    }
}

/// The simulated warehouse's pace.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    pub pick: Duration,
    pub tasks: Duration,
    pub pack: Duration,
}

impl Delays {
    pub fn is_zero(&self) -> bool {
        self.pick.is_zero() && self.tasks.is_zero() && self.pack.is_zero()
    }
}

/// Where a warehouse's mode comes from.
#[derive(Debug, Clone)]
pub struct Modes {
    pub default_mode: Mode,
    pub configured: BTreeMap<String, Mode>,
}

impl Modes {
    /// The mode of `warehouse` now, and where it was set (`api`, `settings` or `default`).
    pub async fn of(
        &self,
        conn: &mut PgConnection,
        warehouse: &str,
    ) -> sqlx::Result<(Mode, &'static str)> {
        let set: Option<String> =
            sqlx::query_scalar("SELECT mode FROM warehouse_modes WHERE warehouse = $1")
                .bind(warehouse)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(match set.as_deref().and_then(Mode::parse) {
            Some(mode) => (mode, "api"),
            None => match self.configured.get(warehouse) {
                Some(mode) => (*mode, "settings"),
                None => (self.default_mode, "default"),
            },
        })
    }
}

impl Floor {
    /// Switches a warehouse's mode, and hands its unfinished pick lists to the new mode: the
    /// simulated warehouse takes them up at once, or leaves them to staff.
    pub async fn set_mode(
        &self,
        conn: &mut PgConnection,
        warehouse: &str,
        mode: Mode,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO warehouse_modes (warehouse, mode) VALUES ($1, $2) \
             ON CONFLICT (warehouse) DO UPDATE SET mode = excluded.mode, updated_at = now()",
        )
        .bind(warehouse)
        .bind(mode.as_str())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE pick_lists SET mode = $2, updated_at = now(), \
             due_at = CASE WHEN $2 = 'automatic' THEN now() END \
             WHERE warehouse = $1 AND status IN ('open', 'picked') AND mode <> $2",
        )
        .bind(warehouse)
        .bind(mode.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_runtime::Settings;

    #[test]
    fn modes_and_delays_come_from_the_environment() {
        let env = [
            ("ORDERFLOW_FULFILMENT__DEFAULT_MODE", "manual"),
            ("ORDERFLOW_FULFILMENT__WAREHOUSES__BERLIN", "automatic"),
            ("ORDERFLOW_FULFILMENT__PICK_DELAY_MS", "1500"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let settings = Settings::load_with(None, env).expect("settings");
        let own: FulfilmentSettings = settings.section("fulfilment").expect("section");
        assert_eq!(own.default_mode, Mode::Manual);
        assert_eq!(own.warehouses.get("berlin"), Some(&Mode::Automatic));
        assert_eq!(own.delays().pick, Duration::from_millis(1500));
        assert_eq!(own.delays().pack, Duration::ZERO);
    }

    #[test]
    fn by_default_every_warehouse_is_simulated_without_delay() {
        let settings = Settings::load_with(None, []).expect("settings");
        let own: FulfilmentSettings = settings.section("fulfilment").expect("section");
        assert_eq!(own.default_mode, Mode::Automatic);
        assert!(own.warehouses.is_empty());
        assert_eq!(own.delays().pick + own.delays().tasks, Duration::ZERO);
        assert_eq!(own.max_parcel_weight_grams, 20_000);
    }
}
