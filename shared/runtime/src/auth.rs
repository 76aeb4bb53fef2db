//! API keys: `Authorization: Bearer <key>` on every `/v1` endpoint; each key carries a role.

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

/// The configured keys. `Debug` never prints a key.
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<(Role, String)>>);

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<_> = self.0.iter().map(|(r, _)| r.as_str()).collect();
        write!(f, "ApiKeys({} keys: {roles:?})", self.0.len())
    }
}

impl ApiKeys {
    /// Parses `role:key,role:key`.
    pub fn parse(raw: &str) -> anyhow::Result<ApiKeys> {
        let mut keys = Vec::new();
        for (i, pair) in raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let Some((role, key)) = pair.split_once(':') else {
                bail!("entry {} is not `role:key`", i + 1);
            };
            let Some(role) = Role::parse(role.trim()) else {
                bail!(
                    "entry {}: unknown role `{role}` (admin, staff, shop, carrier)",
                    i + 1
                );
            };
            if key.trim().is_empty() {
                bail!("entry {}: the key is empty", i + 1);
            }
            keys.push((role, key.trim().to_owned()));
        }
        Ok(ApiKeys(Arc::new(keys)))
    }

    /// The role of `key`, comparing in time independent of where the keys differ.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        self.0
            .iter()
            .filter(|(_, k)| constant_time_eq(k.as_bytes(), key.as_bytes()))
            .map(|(role, _)| *role)
            .max()
    }

    /// Any key of `other` (a `role:key` list) is configured here.
    pub fn contains_any(&self, other: &str) -> bool {
        ApiKeys::parse(other)
            .map(|o| o.0.iter().any(|(_, k)| self.role_of(k).is_some()))
            .unwrap_or(false)
    }

    pub fn has_short_keys(&self, min_len: usize) -> bool {
        self.0.iter().any(|(_, k)| k.len() < min_len)
    }

    /// A key of at least `role`, for tools that call the API (demo, tests).
    pub fn key_for(&self, role: Role) -> Option<&str> {
        self.0
            .iter()
            .filter(|(r, _)| *r >= role)
            .min_by_key(|(r, _)| *r)
            .map(|(_, k)| k.as_str())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is calling; put into the request's extensions by [`require_key`].
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub role: Role,
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
            .copied()
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
    match keys.role_of(key) {
        Some(role) => {
            req.extensions_mut().insert(Caller { role });
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
    fn a_staff_caller_is_refused_an_admin_operation() {
        let caller = Caller { role: Role::Staff };
        assert!(caller.require(Role::Shop).is_ok());
        assert!(caller.require(Role::Admin).is_err());
    }
}
