//! The `[billing]` settings section and the rules resolved from it at start-up.
//!
//! ```toml
//! [billing]
//! prices_include_tax = false        # catalogue prices are net
//! invoice_series = "INV"
//! credit_note_series = "CN"
//! pending_recheck_secs = 30         # how often payments of unknown outcome are asked again
//! invoice_due_days = 14             # payment term of invoices paid by transfer
//! reminder_interval_days = 7        # a reminder when overdue, then one per interval …
//! max_reminders = 3                 # … up to this many
//! hold_timeout_secs = 259200        # a payment hold unresolved this long cancels the order
//! deadline_check_secs = 60          # how often overdue invoices and old holds are looked for
//!
//! [billing.tax_rates.default]       # by tax class
//! standard = "0.20"
//! [billing.tax_rates.countries.DE]  # per destination country; missing classes fall back
//! reduced = "0.07"
//!
//! [billing.shipping_tariff]         # by shipping method, in the order currency's minor units
//! express = 990
//! ```
//!
//! Whatever is given is laid over the built-in table (see [`DEFAULT_RATES`], [`COUNTRY_RATES`],
//! [`SHIPPING_TARIFF`]), so changing one rate does not drop the others. In the environment:
//! `ORDERFLOW_BILLING__TAX_RATES__COUNTRIES__AT__STANDARD=0.20`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use orderflow_messages::types::CountryCode;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::pricing::PriceBasis;

/// Built-in rates by tax class, where no country override applies.
pub const DEFAULT_RATES: &[(&str, &str)] =
    &[("standard", "0.20"), ("reduced", "0.10"), ("zero", "0")];

/// Built-in per-country overrides.
pub const COUNTRY_RATES: &[(&str, &[(&str, &str)])] = &[
    ("DE", &[("standard", "0.19"), ("reduced", "0.07")]),
    ("FR", &[("standard", "0.20"), ("reduced", "0.055")]),
    ("GB", &[("standard", "0.20"), ("reduced", "0.05")]),
];

/// Built-in shipping tariff by shipping method, in minor units of the order's currency.
pub const SHIPPING_TARIFF: &[(&str, i64)] = &[("standard", 490), ("express", 990), ("pickup", 0)];

/// The tax class shipping is taxed at (the destination's rate for it).
pub const SHIPPING_TAX_CLASS: &str = "standard";

/// The section as written; see the module documentation.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BillingSettings {
    pub prices_include_tax: bool,
    pub invoice_series: String,
    pub tax_rates: TaxRateSettings,
    pub shipping_tariff: HashMap<String, i64>,
    pub pending_recheck_secs: u64,
    pub credit_note_series: String,
    pub invoice_due_days: u32,
    pub reminder_interval_days: u32,
    pub max_reminders: u32,
    pub hold_timeout_secs: u64,
    pub deadline_check_secs: u64,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            prices_include_tax: false,
            invoice_series: "INV".to_owned(),
            tax_rates: TaxRateSettings::default(),
            shipping_tariff: HashMap::new(),
            pending_recheck_secs: 30,
            credit_note_series: "CN".to_owned(),
            invoice_due_days: 14,
            reminder_interval_days: 7,
            max_reminders: 3,
            hold_timeout_secs: 3 * 24 * 3600,
            deadline_check_secs: 60,
        }
    }
}

/// Rate overrides: `default` by tax class, `countries` by country and tax class.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaxRateSettings {
    pub default: HashMap<String, Decimal>,
    pub countries: HashMap<String, HashMap<String, Decimal>>,
}

/// Tax rates by destination country and tax class.
#[derive(Debug, Clone)]
pub struct TaxTable {
    default: HashMap<String, Decimal>,
    countries: HashMap<String, HashMap<String, Decimal>>,
}

impl TaxTable {
    /// The rate of `class` in `country`: the country's own if it has one, else the default.
    pub fn rate(&self, country: &CountryCode, class: &str) -> Option<Decimal> {
        let class = class.to_ascii_lowercase();
        self.countries
            .get(country.as_str())
            .and_then(|rates| rates.get(&class))
            .or_else(|| self.default.get(&class))
            .copied()
    }
}

/// What billing prices and numbers with, checked once at start-up.
#[derive(Debug, Clone)]
pub struct BillingRules {
    pub basis: PriceBasis,
    pub tax: TaxTable,
    shipping_tariff: HashMap<String, i64>,
    pub invoice_series: String,
    pub credit_note_series: String,
    pub pending_recheck: Duration,
    /// Payment term of invoices paid by transfer, in days (0: due on issue).
    pub invoice_due_days: u32,
    pub reminder_interval_days: u32,
    pub max_reminders: u32,
    pub hold_timeout: Duration,
    pub deadline_check: Duration,
}

impl BillingRules {
    /// The built-in tables with `settings` laid over them. Errors name the setting to fix.
    pub fn resolve(settings: &BillingSettings) -> anyhow::Result<BillingRules> {
        let builtin = |pairs: &[(&str, &str)]| -> anyhow::Result<HashMap<String, Decimal>> {
            pairs
                .iter()
                .map(|(class, rate)| {
                    Ok((
                        (*class).to_owned(),
                        Decimal::from_str(rate).context("built-in rate")?,
                    ))
                })
                .collect()
        };
        let mut default = builtin(DEFAULT_RATES)?;
        for (class, rate) in &settings.tax_rates.default {
            check_rate(&format!("billing.tax_rates.default.{class}"), *rate)?;
            default.insert(class.to_ascii_lowercase(), *rate);
        }
        if !default.contains_key(SHIPPING_TAX_CLASS) {
            bail!("billing.tax_rates.default.{SHIPPING_TAX_CLASS} is needed to tax shipping");
        }
        let mut countries = HashMap::new();
        for (country, rates) in COUNTRY_RATES {
            countries.insert((*country).to_owned(), builtin(rates)?);
        }
        for (country, rates) in &settings.tax_rates.countries {
            let code = country.to_ascii_uppercase();
            CountryCode::parse(&code)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("billing.tax_rates.countries.{country}"))?;
            let entry = countries.entry(code).or_insert_with(HashMap::new);
            for (class, rate) in rates {
                check_rate(
                    &format!("billing.tax_rates.countries.{country}.{class}"),
                    *rate,
                )?;
                entry.insert(class.to_ascii_lowercase(), *rate);
            }
        }

        let mut shipping_tariff: HashMap<String, i64> = SHIPPING_TARIFF
            .iter()
            .map(|(method, price)| ((*method).to_owned(), *price))
            .collect();
        for (method, price) in &settings.shipping_tariff {
            if *price < 0 {
                bail!("billing.shipping_tariff.{method} = {price}: a tariff cannot be negative");
            }
            shipping_tariff.insert(method.to_ascii_lowercase(), *price);
        }

        let series = check_series("billing.invoice_series", &settings.invoice_series)?;
        let credit_series =
            check_series("billing.credit_note_series", &settings.credit_note_series)?;
        if series == credit_series {
            bail!(
                "billing.credit_note_series `{credit_series}` must differ from billing.invoice_series: credit notes are numbered in their own series"
            );
        }
        Ok(BillingRules {
            basis: if settings.prices_include_tax {
                PriceBasis::Gross
            } else {
                PriceBasis::Net
            },
            tax: TaxTable { default, countries },
            shipping_tariff,
            invoice_series: series,
            credit_note_series: credit_series,
            pending_recheck: Duration::from_secs(settings.pending_recheck_secs.max(1)),
            invoice_due_days: settings.invoice_due_days,
            reminder_interval_days: settings.reminder_interval_days.max(1),
            max_reminders: settings.max_reminders,
            hold_timeout: Duration::from_secs(settings.hold_timeout_secs),
            deadline_check: Duration::from_secs(settings.deadline_check_secs.max(1)),
        })
    }

    /// The shipping price of `method`, if the tariff knows it.
    pub fn shipping_price(&self, method: &str) -> Option<i64> {
        self.shipping_tariff
            .get(&method.to_ascii_lowercase())
            .copied()
    }
}

/// A series prefix: 1-16 of A-Z, a-z, 0-9, '_' (it is followed by `-<year>-<number>`).
fn check_series(setting: &str, raw: &str) -> anyhow::Result<String> {
    let series = raw.trim();
    let valid = !series.is_empty()
        && series.len() <= 16
        && series
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        bail!(
            "{setting} `{raw}` must be 1-16 of A-Z, a-z, 0-9, '_' (it is followed by -<year>-<number>)"
        );
    }
    Ok(series.to_owned())
}

fn check_rate(setting: &str, rate: Decimal) -> anyhow::Result<()> {
    if rate < Decimal::ZERO || rate > Decimal::ONE {
        bail!("{setting} = {rate}: a tax rate is a fraction between 0 and 1 (0.19 for 19 %)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_runtime::Settings;

    fn rules(env: &[(&str, &str)]) -> anyhow::Result<BillingRules> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let settings = Settings::load_with(None, env).expect("settings");
        BillingRules::resolve(&settings.section::<BillingSettings>("billing")?)
    }

    fn country(code: &str) -> CountryCode {
        CountryCode::parse(code).expect("country")
    }

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).expect("decimal")
    }

    #[test]
    fn defaults_follow_the_destination_country_and_fall_back_to_the_default_rates() {
        let rules = rules(&[]).expect("rules");
        assert_eq!(rules.basis, PriceBasis::Net);
        assert_eq!(rules.invoice_series, "INV");
        assert_eq!(
            rules.tax.rate(&country("DE"), "standard"),
            Some(dec("0.19"))
        );
        assert_eq!(rules.tax.rate(&country("DE"), "reduced"), Some(dec("0.07")));
        assert_eq!(rules.tax.rate(&country("DE"), "zero"), Some(Decimal::ZERO));
        assert_eq!(
            rules.tax.rate(&country("FR"), "reduced"),
            Some(dec("0.055"))
        );
        assert_eq!(rules.tax.rate(&country("GB"), "reduced"), Some(dec("0.05")));
        assert_eq!(
            rules.tax.rate(&country("JP"), "standard"),
            Some(dec("0.20"))
        );
        assert_eq!(rules.tax.rate(&country("JP"), "luxury"), None);
        assert_eq!(rules.shipping_price("standard"), Some(490));
        assert_eq!(rules.shipping_price("express"), Some(990));
        assert_eq!(rules.shipping_price("pickup"), Some(0));
        assert_eq!(rules.shipping_price("drone"), None);
    }

    #[test]
    fn overrides_from_the_environment_are_laid_over_the_built_in_table() {
        let rules = rules(&[
            ("ORDERFLOW_BILLING__PRICES_INCLUDE_TAX", "true"),
            (
                "ORDERFLOW_BILLING__TAX_RATES__COUNTRIES__AT__REDUCED",
                "0.10",
            ),
            (
                "ORDERFLOW_BILLING__TAX_RATES__COUNTRIES__DE__STANDARD",
                "0.16",
            ),
            ("ORDERFLOW_BILLING__SHIPPING_TARIFF__DRONE", "1500"),
            ("ORDERFLOW_BILLING__INVOICE_SERIES", "RE"),
        ])
        .expect("rules");
        assert_eq!(rules.basis, PriceBasis::Gross);
        assert_eq!(rules.invoice_series, "RE");
        assert_eq!(rules.tax.rate(&country("AT"), "reduced"), Some(dec("0.10")));
        assert_eq!(
            rules.tax.rate(&country("DE"), "standard"),
            Some(dec("0.16"))
        );
        assert_eq!(rules.tax.rate(&country("DE"), "reduced"), Some(dec("0.07")));
        assert_eq!(rules.shipping_price("drone"), Some(1500));
        assert_eq!(rules.shipping_price("standard"), Some(490));
    }

    #[test]
    fn a_rate_given_as_a_percentage_is_refused_naming_the_setting() {
        let err = rules(&[("ORDERFLOW_BILLING__TAX_RATES__DEFAULT__STANDARD", "19")])
            .expect_err("19 is not a fraction");
        assert!(
            format!("{err:#}").contains("billing.tax_rates.default.standard"),
            "{err:#}"
        );
        let err = rules(&[("ORDERFLOW_BILLING__INVOICE_SERIES", "IN V")]).expect_err("space");
        assert!(format!("{err:#}").contains("billing.invoice_series"));
    }
}
