//! Shipping rules: which carrier and service level carry a parcel group. Rules are tried in
//! order and the first that matches wins; no match puts the order on hold for a person.

/// A rule as stored, with what matching needs to know about its carrier.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Rule {
    pub position: i32,
    pub shipping_method: String,
    /// `None`: every country.
    pub countries: Option<Vec<String>>,
    /// `None`: any weight; otherwise the heaviest parcel may weigh at most this.
    pub max_weight_grams: Option<i32>,
    pub carrier: String,
    pub service_level: String,
    /// Whether the rule's carrier can collect cash on delivery.
    pub carrier_cash_on_delivery: bool,
}

/// What a rule is matched against: one parcel group of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consignment<'a> {
    pub shipping_method: &'a str,
    pub country: &'a str,
    /// Weight of the group's heaviest parcel: carriers limit the weight per parcel.
    pub heaviest_parcel_grams: u32,
    /// The carrier must collect cash from the customer.
    pub cash_on_delivery: bool,
}

impl Rule {
    pub fn matches(&self, c: &Consignment<'_>) -> bool {
        self.shipping_method == c.shipping_method
            && self
                .countries
                .as_ref()
                .is_none_or(|list| list.iter().any(|country| country == c.country))
            && self
                .max_weight_grams
                .is_none_or(|max| i64::from(c.heaviest_parcel_grams) <= i64::from(max))
            && (!c.cash_on_delivery || self.carrier_cash_on_delivery)
    }
}

/// The first rule (by position) that matches `consignment`.
pub fn choose<'r>(rules: &'r [Rule], consignment: &Consignment<'_>) -> Option<&'r Rule> {
    let mut ordered: Vec<&Rule> = rules.iter().collect();
    ordered.sort_by_key(|r| r.position);
    ordered.into_iter().find(|r| r.matches(consignment))
}

impl Consignment<'_> {
    /// Words for the person who resolves the hold.
    pub fn unmatched_message(&self, warehouse: &str) -> String {
        let cod = if self.cash_on_delivery {
            " with cash on delivery"
        } else {
            ""
        };
        format!(
            "no shipping rule carries shipping method `{}` to {} for a parcel of {} g from warehouse {}{cod}; add a rule to [shipping] rules",
            self.shipping_method, self.country, self.heaviest_parcel_grams, warehouse
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(position: i32, method: &str, carrier: &str) -> Rule {
        Rule {
            position,
            shipping_method: method.into(),
            countries: None,
            max_weight_grams: None,
            carrier: carrier.into(),
            service_level: method.into(),
            carrier_cash_on_delivery: true,
        }
    }

    fn parcel_to(country: &str, grams: u32) -> Consignment<'_> {
        Consignment {
            shipping_method: "standard",
            country,
            heaviest_parcel_grams: grams,
            cash_on_delivery: false,
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut light = rule(0, "standard", "letters");
        light.max_weight_grams = Some(2_000);
        let mut nordic = rule(1, "standard", "nordic");
        nordic.countries = Some(vec!["SE".into(), "NO".into()]);
        let rules = vec![rule(2, "standard", "sim"), nordic, light];

        let pick = |c: &Consignment<'_>| choose(&rules, c).map(|r| r.carrier.clone());
        assert_eq!(pick(&parcel_to("SE", 1_000)).as_deref(), Some("letters"));
        assert_eq!(pick(&parcel_to("SE", 5_000)).as_deref(), Some("nordic"));
        assert_eq!(pick(&parcel_to("DE", 5_000)).as_deref(), Some("sim"));
        assert_eq!(pick(&parcel_to("DE", 2_000)).as_deref(), Some("letters"));
    }

    #[test]
    fn no_rule_matches_an_unknown_method_or_a_carrier_that_cannot_collect_cash() {
        let mut no_cash = rule(0, "standard", "nocash");
        no_cash.carrier_cash_on_delivery = false;
        let rules = vec![no_cash, rule(1, "express", "sim")];

        let mut cod = parcel_to("DE", 100);
        cod.cash_on_delivery = true;
        assert_eq!(choose(&rules, &cod), None);
        assert!(cod.unmatched_message("WH-1").contains("cash on delivery"));

        let mut drone = parcel_to("DE", 100);
        drone.shipping_method = "drone";
        assert_eq!(choose(&rules, &drone), None);
        assert_eq!(
            choose(&rules, &parcel_to("DE", 100)).map(|r| r.carrier.as_str()),
            Some("nocash")
        );
    }
}
