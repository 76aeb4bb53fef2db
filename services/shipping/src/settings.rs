//! The `[shipping]` settings section: the carriers shipping knows, the rules that map an
//! order's shipping method to one of them, how long a carrier has to create a label, and the
//! carriers' webhook secrets. Checked at start, so a rule that names a service level its
//! carrier does not offer stops the service with the setting to fix, instead of putting every
//! order on hold later. A rule may name a carrier that is not configured: it matches nothing
//! until that carrier is registered through the API.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use orderflow_messages::types::CountryCode;
use orderflow_runtime::config::Secret;
use serde::Deserialize;

/// The `[shipping]` section. `host` and `port` live there too and are read by the runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ShippingSettings {
    /// Carriers to register (upserted by code at start); each gets its queue `carrier.<code>`.
    pub carriers: Vec<CarrierSettings>,
    /// Ordered; the first rule that matches a parcel group decides its carrier.
    pub rules: Vec<RuleSettings>,
    /// How long a carrier has to answer a request with a label before it is sent again.
    pub label_timeout_ms: u64,
    /// Requests per shipment (the first included) before the order is put on hold.
    pub label_attempts: u32,
    /// How often overdue labels are looked for.
    pub label_check_interval_ms: u64,
    /// Per carrier code, the secret its webhook calls are signed with (HMAC-SHA256). A carrier
    /// without one cannot use `POST /v1/carriers/{code}/webhook`.
    pub webhook_secrets: HashMap<String, Secret>,
}

/// One carrier, as `[[shipping.carriers]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CarrierSettings {
    /// Lower-case letters, digits, `-` and `_`: it is a routing key and part of a queue name.
    pub code: String,
    pub name: String,
    pub service_levels: Vec<String>,
    /// A link customers follow; `{tracking_number}` is replaced by the shipment's number.
    pub tracking_url_template: String,
    /// Whether the carrier can collect cash on delivery.
    #[serde(default)]
    pub cash_on_delivery: bool,
}

/// One shipping rule, as `[[shipping.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuleSettings {
    /// The order's `delivery.shipping_method` this rule applies to.
    pub shipping_method: String,
    /// Destination countries it applies to; absent means every country.
    #[serde(default)]
    pub countries: Option<Vec<CountryCode>>,
    /// Heaviest parcel it accepts; absent means any weight.
    #[serde(default)]
    pub max_weight_grams: Option<u32>,
    pub carrier: String,
    pub service_level: String,
}

/// The code of the built-in in-store collection carrier, handled by shipping itself.
pub const PICKUP: &str = "pickup";

impl CarrierSettings {
    /// The built-in in-store collection (see [`crate::pickup`]).
    pub fn pickup() -> Self {
        CarrierSettings {
            code: PICKUP.into(),
            name: "Collection in store".into(),
            service_levels: vec!["pickup".into()],
            tracking_url_template: "https://shop.example/pickup/{tracking_number}".into(),
            cash_on_delivery: true,
        }
    }

    /// The built-in simulated carrier (see [`crate::carrier_sim`]).
    pub fn sim() -> Self {
        CarrierSettings {
            code: "sim".into(),
            name: "Simulated carrier".into(),
            service_levels: vec!["standard".into(), "express".into(), "pickup".into()],
            tracking_url_template: "https://track.example/sim/{tracking_number}".into(),
            cash_on_delivery: true,
        }
    }
}

impl Default for ShippingSettings {
    fn default() -> Self {
        let to_sim = |method: &str| RuleSettings {
            shipping_method: method.into(),
            countries: None,
            max_weight_grams: None,
            carrier: "sim".into(),
            service_level: method.into(),
        };
        ShippingSettings {
            carriers: vec![CarrierSettings::sim(), CarrierSettings::pickup()],
            // `pickup` goes to the simulator (which reports a collection by itself), so a demo
            // completes without staff; route it to carrier `pickup` for real in-store collection.
            rules: vec![to_sim("standard"), to_sim("express"), to_sim("pickup")],
            label_timeout_ms: 15 * 60 * 1000,
            label_attempts: 3,
            label_check_interval_ms: 5_000,
            webhook_secrets: HashMap::new(),
        }
    }
}

/// The longest carrier code.
pub const MAX_CARRIER_CODE_LEN: usize = 64;

/// Whether `code` can name a carrier: it becomes a routing key and a queue name.
pub fn is_carrier_code(code: &str) -> bool {
    // It names a queue (`<prefix>carrier.<code>.dead`), and AMQP names end at 255 bytes.
    if code.len() > MAX_CARRIER_CODE_LEN {
        return false;
    }
    let mut bytes = code.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl ShippingSettings {
    /// Checks carriers and rules together; the error names the setting and how to fix it.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (i, carrier) in self.carriers.iter().enumerate() {
            let at = format!("shipping.carriers[{i}]");
            if !is_carrier_code(&carrier.code) {
                bail!(
                    "{at}.code `{}`: use up to 64 lower-case letters, digits, `-` or `_` (it is a routing key)",
                    carrier.code
                );
            }
            if self.carriers[..i].iter().any(|c| c.code == carrier.code) {
                bail!("{at}.code `{}` is configured twice", carrier.code);
            }
            if carrier.service_levels.is_empty() {
                bail!("{at}.service_levels: list at least one service level");
            }
            if !carrier.tracking_url_template.contains("{tracking_number}") {
                bail!("{at}.tracking_url_template must contain `{{tracking_number}}`");
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("shipping.rules[{i}]");
            if !is_carrier_code(&rule.carrier) {
                bail!(
                    "{at}.carrier `{}` cannot be a carrier code: use lower-case letters, digits, `-` or `_`",
                    rule.carrier
                );
            }
            let carrier = self.carriers.iter().find(|c| c.code == rule.carrier);
            if let Some(carrier) = carrier
                && !carrier.service_levels.contains(&rule.service_level)
            {
                bail!(
                    "{at}.service_level `{}` is not offered by carrier `{}` (it offers {:?})",
                    rule.service_level,
                    carrier.code,
                    carrier.service_levels
                );
            }
            if rule.max_weight_grams == Some(0) {
                bail!("{at}.max_weight_grams must be positive (or left out for any weight)");
            }
            if rule.countries.as_ref().is_some_and(Vec::is_empty) {
                bail!("{at}.countries is empty: list countries or leave it out for all");
            }
        }
        if self.label_attempts == 0 {
            bail!("shipping.label_attempts must be at least 1 (the first request counts)");
        }
        if self.label_timeout_ms == 0 || self.label_check_interval_ms == 0 {
            bail!("shipping.label_timeout_ms and label_check_interval_ms must be positive");
        }
        for (code, secret) in &self.webhook_secrets {
            if secret.expose().len() < 16 {
                bail!(
                    "shipping.webhook_secrets.{code} is shorter than 16 characters: use a long random secret"
                );
            }
        }
        Ok(())
    }

    /// Carriers named by rules but not configured: they must be registered through the API
    /// before those rules match anything.
    pub fn unconfigured_rule_carriers(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = self
            .rules
            .iter()
            .map(|r| r.carrier.as_str())
            .filter(|code| !self.carriers.iter().any(|c| c.code == *code))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    pub fn label_timeout(&self) -> Duration {
        Duration::from_millis(self.label_timeout_ms)
    }

    pub fn label_check_interval(&self) -> Duration {
        Duration::from_millis(self.label_check_interval_ms)
    }

    /// The webhook secret of carrier `code`, if it has one.
    pub fn webhook_secret(&self, code: &str) -> Option<&Secret> {
        self.webhook_secrets.get(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_send_every_standard_method_to_the_simulated_carrier() {
        let settings = ShippingSettings::default();
        settings.validate().expect("defaults are valid");
        let methods: Vec<_> = settings
            .rules
            .iter()
            .map(|r| {
                (
                    r.shipping_method.as_str(),
                    r.carrier.as_str(),
                    r.service_level.as_str(),
                )
            })
            .collect();
        assert_eq!(
            methods,
            [
                ("standard", "sim", "standard"),
                ("express", "sim", "express"),
                ("pickup", "sim", "pickup")
            ]
        );
    }

    #[test]
    fn a_rule_may_name_a_carrier_registered_later_but_not_a_level_its_carrier_lacks() {
        let mut settings = ShippingSettings::default();
        settings.rules[1].carrier = "acme".into();
        settings.validate().expect("acme may be registered later");
        assert_eq!(settings.unconfigured_rule_carriers(), ["acme"]);

        settings.rules[1].carrier = "Acme!".into();
        let err = settings.validate().expect_err("not a code");
        assert!(
            err.to_string().contains("shipping.rules[1].carrier"),
            "{err}"
        );

        let mut settings = ShippingSettings::default();
        settings.rules[0].service_level = "overnight".into();
        let err = settings.validate().expect_err("unknown level");
        assert!(
            err.to_string().contains("shipping.rules[0].service_level"),
            "{err}"
        );
    }

    #[test]
    fn carrier_codes_must_be_usable_as_routing_keys() {
        assert!(is_carrier_code("sim"));
        assert!(is_carrier_code("dhl-express_2"));
        for bad in ["", "Sim", "a.b", "*", "#", "-x", "with space"] {
            assert!(!is_carrier_code(bad), "{bad:?}");
        }
        // Longer codes would make queue names past AMQP's 255 bytes.
        assert!(is_carrier_code(&"a".repeat(MAX_CARRIER_CODE_LEN)));
        assert!(!is_carrier_code(&"a".repeat(MAX_CARRIER_CODE_LEN + 1)));
        let mut settings = ShippingSettings::default();
        settings.carriers[0].code = "s.im".into();
        assert!(settings.validate().is_err());
    }
}
