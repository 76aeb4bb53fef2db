//! API keys: `Authorization: Bearer <key>` on every `/v1` endpoint; each key carries a role and,
//! optionally, a name (`shop:acme:KEY`) that services use to tell one shop's data from another's.

use std::fmt;
use std::sync::Arc;

use anyhow::bail;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// What a key may do. Admin may do everything staff may; staff everything a shop may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Carrier,
    Shop,
    Staff,
    Admin,
}

impl Role {
    fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            "shop" => Some(Role::Shop),
            "carrier" => Some(Role::Carrier),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Shop => "shop",
            Role::Carrier => "carrier",
        }
    }
}

/// One configured key: its role, its optional name, and the secret itself.
#[derive(Clone)]
struct ApiKey {
    role: Role,
    name: Option<String>,
    key: String,
}

/// The configured keys. `Debug` never prints a key.
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<ApiKey>>);

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<_> = self.0.iter().map(|k| k.role.as_str()).collect();
        write!(f, "ApiKeys({} keys: {roles:?})", self.0.len())
    }
}

impl ApiKeys {
    /// Parses `role:key,role:name:key`: with three parts the middle one names the key (a shop's
    /// name, say); the key itself is everything after the name.
    pub fn parse(raw: &str) -> anyhow::Result<ApiKeys> {
        let mut keys = Vec::new();
        for (i, pair) in raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let Some((role, rest)) = pair.split_once(':') else {
                bail!("entry {} is not `role:key` or `role:name:key`", i + 1);
            };
            let (name, key) = match rest.split_once(':') {
                Some((name, key)) => (Some(name.trim()), key),
                None => (None, rest),
            };
            if name.is_some_and(str::is_empty) {
                bail!("entry {}: the key's name is empty", i + 1);
            }
            let Some(role) = Role::parse(role.trim()) else {
                bail!(
                    "entry {}: unknown role `{role}` (admin, staff, shop, carrier)",
                    i + 1
                );
            };
            if key.trim().is_empty() {
                bail!("entry {}: the key is empty", i + 1);
            }
            keys.push(ApiKey {
                role,
                name: name.map(str::to_owned),
                key: key.trim().to_owned(),
            });
        }
        Ok(ApiKeys(Arc::new(keys)))
    }

    /// The role of `key`, comparing in time independent of where the keys differ.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        self.caller_of(key).map(|c| c.role)
    }

    /// Who presents `key`: its role and name. Every configured key is compared, each in time
    /// independent of where they differ; the highest role wins if a key is listed twice.
    pub fn caller_of(&self, key: &str) -> Option<Caller> {
        self.0
            .iter()
            .filter(|k| constant_time_eq(k.key.as_bytes(), key.as_bytes()))
            .max_by_key(|k| k.role)
            .map(|k| Caller {
                role: k.role,
                key_name: k.name.clone(),
            })
    }

    /// Any key of `other` (a `role:key` list) is configured here.
    pub fn contains_any(&self, other: &str) -> bool {
        ApiKeys::parse(other)
            .map(|o| o.0.iter().any(|k| self.role_of(&k.key).is_some()))
            .unwrap_or(false)
    }

    pub fn has_short_keys(&self, min_len: usize) -> bool {
        self.0.iter().any(|k| k.key.len() < min_len)
    }

    /// A key of at least `role`, for tools that call the API (demo, tests).
    pub fn key_for(&self, role: Role) -> Option<&str> {
        self.0
            .iter()
            .filter(|k| k.role >= role)
            .min_by_key(|k| k.role)
            .map(|k| k.key.as_str())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is calling; put into the request's extensions by [`require_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The key's name (`shop:acme:KEY` → `acme`), if it has one.
    pub key_name: Option<String>,
}

impl Caller {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this operation needs the `{}` role; your key has `{}`",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Problem::unauthorized("missing API key"))
    }
}

/// Middleware: 401 without a valid bearer key; otherwise records the [`Caller`].
pub async fn require_key(State(keys): State<ApiKeys>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(key) = presented else {
        return Problem::unauthorized("send `Authorization: Bearer <API key>`").into_response();
    };
    match keys.caller_of(key) {
        Some(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None => Problem::unauthorized("the API key is not valid").into_response(),
    }
}

/// Puts every route of `api` behind [`require_key`].
pub fn protect<S: Clone + Send + Sync + 'static>(
    api: axum::Router<S>,
    keys: ApiKeys,
) -> axum::Router<S> {
    api.layer(axum::middleware::from_fn_with_state(keys, require_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_roles_and_unknown_roles_are_named() {
        let keys = ApiKeys::parse("admin:a1, shop:s1").expect("keys");
        assert_eq!(keys.role_of("a1"), Some(Role::Admin));
        assert_eq!(keys.role_of("s1"), Some(Role::Shop));
        assert_eq!(keys.role_of("nope"), None);
        let err = ApiKeys::parse("root:x").expect_err("bad role");
        assert!(err.to_string().contains("root"));
        assert_eq!(keys.key_for(Role::Staff), Some("a1"));
    }

    #[test]
    fn a_key_may_carry_a_name_and_unnamed_keys_keep_working() {
        let keys =
            ApiKeys::parse("shop:acme:k-acme, shop:k-anon, staff:ops:k:with:colons").expect("keys");
        let acme = keys.caller_of("k-acme").expect("acme");
        assert_eq!(
            (acme.role, acme.key_name.as_deref()),
            (Role::Shop, Some("acme"))
        );
        assert_eq!(keys.caller_of("k-anon").and_then(|c| c.key_name), None);
        let ops = keys.caller_of("k:with:colons").expect("ops");
        assert_eq!(
            (ops.role, ops.key_name.as_deref()),
            (Role::Staff, Some("ops"))
        );
        assert!(ApiKeys::parse("shop::k").is_err(), "an empty name");
        assert!(!format!("{keys:?}").contains("k-acme"));
    }

    #[test]
    fn a_staff_caller_is_refused_an_admin_operation() {
        let caller = Caller {
            role: Role::Staff,
            key_name: None,
        };
        assert!(caller.require(Role::Shop).is_ok());
        assert!(caller.require(Role::Admin).is_err());
    }
}
