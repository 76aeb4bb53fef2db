//! When an order counts as stalled: it has stayed in one status longer than that status's limit
//! (settings section `[stalled]`, shared with `orderflow stalled`), and who it waits for there.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[stalled]`: seconds an order may stay in a status; `default_secs` for statuses not listed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StalledSettings {
    pub default_secs: u64,
    pub limits: BTreeMap<String, u64>,
}

impl Default for StalledSettings {
    fn default() -> Self {
        let limits = [
            ("placed", 300),
            ("verified", 600),
            ("packed", 1800),
            ("shipped", 7 * 86_400),
            ("delivered", 3600),
            ("invoiced", 3600),
            ("paid", 600),
            // Waiting for a person or for goods: days, not minutes.
            ("on_hold", 3 * 86_400),
            ("backordered", 14 * 86_400),
        ]
        .into_iter()
        .map(|(s, n)| (s.to_owned(), n))
        .collect();
        StalledSettings {
            default_secs: 3600,
            limits,
        }
    }
}

impl StalledSettings {
    pub fn limit(&self, status: &str) -> u64 {
        self.limits
            .get(status)
            .copied()
            .unwrap_or(self.default_secs)
    }
}

/// Who the order waits for in `status`.
pub fn waiting_for(status: &str) -> &'static str {
    match status {
        "placed" => "verification (stock and prices)",
        "verified" => "fulfilment (picking) and billing (authorisation)",
        "packed" => "shipping (carrier handover)",
        "shipped" => "the carrier (delivery)",
        "delivered" => "billing (invoice)",
        "invoiced" => "billing (capture), or the customer's bank transfer",
        "paid" => "intake (completion)",
        "on_hold" => "a person (release or cancel)",
        "backordered" => "goods to arrive",
        _ => "unknown",
    }
}
