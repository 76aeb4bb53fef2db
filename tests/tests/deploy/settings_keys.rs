//! The settings each binary understands, read from the code: the field names of the settings
//! structs, as serde itself describes them, so a key renamed or removed in a service shows up
//! here without a list to keep by hand.

use std::collections::BTreeSet;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;

/// A deserializer that answers only one question: which fields does this struct accept?
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct with named fields"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names read"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The keys `T` accepts (its serde field names).
pub fn fields_of<T: DeserializeOwned>() -> BTreeSet<String> {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
        .unwrap_or_else(|| panic!("{} is not a struct of settings", std::any::type_name::<T>()))
        .iter()
        .map(|f| (*f).to_owned())
        .collect()
}

/// The settings section a binary reads besides the common ones, and the keys it understands.
/// A binary's section is its name with `-` as `_` (what `service::main` and `healthcheck` use).
pub fn own_section(binary: &str) -> Option<(String, BTreeSet<String>)> {
    use orderflow_runtime::config::HttpSettings;
    let http = fields_of::<HttpSettings>();
    let with_http = |mut own: BTreeSet<String>| {
        own.extend(http.iter().cloned());
        own
    };
    let keys = match binary {
        "order-intake" => with_http(fields_of::<order_intake::OrderIntakeSettings>()),
        "verification" => with_http(fields_of::<verification::settings::VerificationSettings>()),
        "fulfilment" => with_http(fields_of::<fulfilment::FulfilmentSettings>()),
        "shipping" => with_http(fields_of::<shipping::ShippingSettings>()),
        "billing" => with_http(fields_of::<billing::settings::BillingSettings>()),
        // No HTTP server: its section holds only the simulator's own settings.
        "carrier-sim" => fields_of::<shipping::carrier_sim::SimSettings>(),
        _ => return None,
    };
    Some((binary.replace('-', "_"), keys))
}

/// Sections a binary reads besides its own and the common ones: intake's ops console and the
/// stalled limits it shares with `orderflow stalled`.
pub fn extra_sections(binary: &str) -> Vec<(String, BTreeSet<String>)> {
    use order_intake::console::{ConsoleSettings, stalled::StalledSettings};
    match binary {
        "order-intake" => vec![
            ("console".to_owned(), fields_of::<ConsoleSettings>()),
            ("stalled".to_owned(), fields_of::<StalledSettings>()),
        ],
        _ => Vec::new(),
    }
}

/// The sections every binary shares, with their keys.
pub fn common_sections() -> Vec<(&'static str, BTreeSet<String>)> {
    use orderflow_runtime::config::{AmqpSettings, DatabaseSettings, LogSettings};
    vec![
        ("amqp", fields_of::<AmqpSettings>()),
        ("database", fields_of::<DatabaseSettings>()),
        ("log", fields_of::<LogSettings>()),
    ]
}

/// Top-level keys (`ORDERFLOW_<KEY>`): the run mode and the API keys.
pub const TOP_LEVEL: [&str; 2] = ["env", "api_keys"];
