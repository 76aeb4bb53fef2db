//! The `[verification]` settings section (also `ORDERFLOW_VERIFICATION__<KEY>`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// What to do when an order's unit price differs from the catalogue's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PricePolicy {
    /// Reject the order with a `price_mismatch` reason per differing line.
    #[default]
    Reject,
    /// Accept it at the catalogue's price, which `order.verified` then carries.
    Reprice,
}

/// Service settings; every key has a default. The section's `host` and `port` are read by the
/// runtime, so unknown keys are ignored here.
///
/// Map keys (countries, currencies) are matched case-insensitively: environment variables reach
/// us lower-cased.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VerificationSettings {
    /// `reject` (default) or `reprice`.
    pub price_policy: PricePolicy,
    /// Largest quantity one order line may ask for (default 1000).
    pub max_line_quantity: u32,
    /// Countries (ISO 3166-1 alpha-2) we deliver to; empty (default): every country. A list or
    /// a comma-separated string (`DE,AT,FR`).
    #[serde(deserialize_with = "words")]
    pub delivered_countries: Vec<String>,
    /// Largest order subtotal per currency in minor units, e.g. `{EUR = 1000000}`; a currency
    /// without an entry has no limit (default: none).
    pub max_order_total: BTreeMap<String, i64>,
    /// Largest subtotal per payment method and currency, e.g.
    /// `{cash_on_delivery = {EUR = 100000}}` (default: cash on delivery up to 1,000.00 EUR).
    pub payment_limits: BTreeMap<String, BTreeMap<String, i64>>,
    /// The only payment methods accepted for deliveries to a country, e.g.
    /// `{CH = "card,invoice"}`; countries without an entry accept every method (default).
    pub payment_methods_by_country: BTreeMap<String, Words>,
    /// A backorder waiting longer than this goes `on_hold` for a person (default 7 days).
    pub backorder_hold_after_seconds: u64,
    /// How often waiting backorders are looked at again, besides right after a receipt or an
    /// adjustment (default 30 s).
    pub backorder_recheck_seconds: u64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        VerificationSettings {
            price_policy: PricePolicy::Reject,
            max_line_quantity: 1000,
            delivered_countries: Vec::new(),
            max_order_total: BTreeMap::new(),
            payment_limits: BTreeMap::from([(
                "cash_on_delivery".to_owned(),
                BTreeMap::from([("EUR".to_owned(), 100_000)]),
            )]),
            payment_methods_by_country: BTreeMap::new(),
            backorder_hold_after_seconds: 7 * 24 * 3600,
            backorder_recheck_seconds: 30,
        }
    }
}

impl VerificationSettings {
    pub fn delivers_to(&self, country: &str) -> bool {
        self.delivered_countries.is_empty()
            || self
                .delivered_countries
                .iter()
                .any(|c| c.eq_ignore_ascii_case(country))
    }

    /// The order total limit of `currency`, if any.
    pub fn order_total_limit(&self, currency: &str) -> Option<i64> {
        lookup(&self.max_order_total, currency).copied()
    }

    /// The limit of `method` in `currency`, if any.
    pub fn payment_limit(&self, method: &str, currency: &str) -> Option<i64> {
        lookup(&self.payment_limits, method).and_then(|by| lookup(by, currency).copied())
    }

    /// The methods accepted for `country`; `None`: every method.
    pub fn payment_methods_for(&self, country: &str) -> Option<&[String]> {
        lookup(&self.payment_methods_by_country, country).map(|w| w.0.as_slice())
    }
}

fn lookup<'a, V>(map: &'a BTreeMap<String, V>, key: &str) -> Option<&'a V> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A list of words, given as a list or as one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let words = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_owned).collect(),
            Raw::Many(v) => v,
        };
        Ok(Words(
            words
                .into_iter()
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect(),
        ))
    }
}

fn words<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Words::deserialize(d).map(|w| w.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_may_be_comma_separated_and_keys_any_case() {
        let s: VerificationSettings = serde_json::from_value(serde_json::json!({
            "delivered_countries": "DE, at",
            "max_order_total": {"eur": 5000},
            "payment_methods_by_country": {"ch": "card,invoice"}
        }))
        .expect("settings");
        assert!(s.delivers_to("AT") && !s.delivers_to("FR"));
        assert_eq!(s.order_total_limit("EUR"), Some(5000));
        assert_eq!(
            s.payment_methods_for("CH"),
            Some(["card".to_owned(), "invoice".to_owned()].as_slice())
        );
        assert_eq!(s.payment_limit("cash_on_delivery", "EUR"), Some(100_000));
    }
}
