//! `/v1/products`: the catalogue.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderflow_messages::types::{Currency, Dimensions, Sku};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, Params, in_range, params, required, text};
use crate::catalogue::{self, Product, ProductDraft, TaxClass};

/// A product as `PUT /v1/products/{sku}` takes it (its SKU is in the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    #[schema(required = true, max_length = 200)]
    name: Option<String>,
    /// Minor units of `currency`, at least 1.
    #[schema(required = true, minimum = 1)]
    unit_price: Option<i64>,
    /// ISO 4217.
    #[schema(required = true, example = "EUR")]
    currency: Option<String>,
    #[schema(required = true, value_type = Option<TaxClass>)]
    tax_class: Option<String>,
    #[schema(required = true, minimum = 0)]
    weight_grams: Option<i64>,
    dimensions: Option<DimensionsBody>,
    active: Option<bool>,
    allow_backorder: Option<bool>,
    reorder_point: Option<i64>,
    reorder_quantity: Option<i64>,
    customisation_options: Option<Vec<String>>,
}

/// The outer size, in millimetres; all three or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DimensionsBody {
    #[schema(required = true, minimum = 1)]
    length_mm: Option<i64>,
    #[schema(required = true, minimum = 1)]
    width_mm: Option<i64>,
    #[schema(required = true, minimum = 1)]
    height_mm: Option<i64>,
}

/// A page of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    items: Vec<Product>,
    limit: i64,
    offset: i64,
}

/// Largest weight or size we store (the columns are 32-bit).
const MAX_SIZE: i64 = i32::MAX as i64;

/// Checks every field of `body` for the product `sku`; all failures at once.
pub(super) fn draft(sku: &str, body: ProductBody) -> Result<ProductDraft, Vec<FieldError>> {
    let mut errors = Vec::new();
    let sku = Sku::parse(sku)
        .map_err(|e| errors.push(FieldError::new("sku", "format", e)))
        .ok();
    let name =
        required(body.name, "name", &mut errors).and_then(|n| text(n, 200, "name", &mut errors));
    let unit_price = required(body.unit_price, "unit_price", &mut errors)
        .filter(|p| in_range(*p, 1, i64::MAX, "unit_price", &mut errors));
    let currency = required(body.currency, "currency", &mut errors).and_then(|c| {
        Currency::parse(&c)
            .map_err(|e| errors.push(FieldError::new("currency", "format", e)))
            .ok()
    });
    let tax_class = required(body.tax_class, "tax_class", &mut errors).and_then(|t| {
        let parsed = TaxClass::parse(&t);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "tax_class",
                "one_of",
                format!("`{t}` is not one of standard, reduced, zero"),
            ));
        }
        parsed
    });
    let weight_grams = required(body.weight_grams, "weight_grams", &mut errors)
        .filter(|w| in_range(*w, 0, MAX_SIZE, "weight_grams", &mut errors));
    let mut dimensions_ok = true;
    let dimensions = body.dimensions.map(|d| {
        let mut size = |value: Option<i64>, field: &str| {
            let checked = required(value, field, &mut errors)
                .filter(|v| in_range(*v, 1, MAX_SIZE, field, &mut errors))
                .and_then(|v| u32::try_from(v).ok());
            dimensions_ok &= checked.is_some();
            checked.unwrap_or(0)
        };
        Dimensions {
            length_mm: size(d.length_mm, "dimensions.length_mm"),
            width_mm: size(d.width_mm, "dimensions.width_mm"),
            height_mm: size(d.height_mm, "dimensions.height_mm"),
        }
    });
    let reorder_point = body.reorder_point.unwrap_or(0);
    in_range(reorder_point, 0, i64::MAX, "reorder_point", &mut errors);
    let reorder_quantity = body.reorder_quantity.unwrap_or(0);
    in_range(
        reorder_quantity,
        0,
        i64::MAX,
        "reorder_quantity",
        &mut errors,
    );
    let customisation_options = body.customisation_options.unwrap_or_default();
    for (i, option) in customisation_options.iter().enumerate() {
        let valid = !option.is_empty()
            && option.len() <= 40
            && option
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            errors.push(FieldError::new(
                format!("customisation_options[{i}]"),
                "format",
                format!("`{option}` is not an option name (1-40 of A-Z, a-z, 0-9, '_', '-')"),
            ));
        }
    }

    match (sku, name, unit_price, currency, tax_class, weight_grams) {
        (
            Some(sku),
            Some(name),
            Some(unit_price),
            Some(currency),
            Some(tax_class),
            Some(weight),
        ) if errors.is_empty() && dimensions_ok => Ok(ProductDraft {
            sku,
            name,
            unit_price,
            currency,
            tax_class,
            weight_grams: u32::try_from(weight).unwrap_or(0),
            dimensions,
            active: body.active.unwrap_or(true),
            allow_backorder: body.allow_backorder.unwrap_or(false),
            reorder_point,
            reorder_quantity,
            customisation_options,
        }),
        _ => Err(errors),
    }
}

/// Creates or replaces a product.
#[utoipa::path(put, path = "/v1/products/{sku}", tag = "catalogue",
    description = "Role: `admin`.",
    params(("sku" = String, Path, description = "the product's SKU")),
    request_body(content = ProductBody, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = Product),
        (status = 200, description = "replaced", body = Product),
        (status = 422, description = "fields failed their rules (each named in `errors`)"),
    ))]
pub async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path(sku): Path<String>,
    JsonBody(body): JsonBody<ProductBody>,
) -> Result<(StatusCode, Json<Product>), Problem> {
    caller.require(Role::Admin)?;
    let draft = draft(&sku, body).map_err(Problem::validation)?;
    let (product, created) = catalogue::put(&state.pool, &draft).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(product)))
}

/// One product.
#[utoipa::path(get, path = "/v1/products/{sku}", tag = "catalogue",
    description = "Role: `staff`, `admin`.",
    params(("sku" = String, Path, description = "the product's SKU")),
    responses(
        (status = 200, description = "the product", body = Product),
        (status = 404, description = "no such product"),
    ))]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, Problem> {
    caller.require(Role::Staff)?;
    catalogue::get(&state.pool, &sku)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product with SKU `{sku}`")))
}

/// A page of the catalogue in SKU order.
#[utoipa::path(get, path = "/v1/products", tag = "catalogue",
    description = "Role: `staff`, `admin`.",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 500, 50 when not given"),
        ("offset" = Option<i64>, Query, description = "0 when not given"),
    ),
    responses(
        (status = 200, description = "a page", body = ProductPage),
        (status = 400, description = "the query string is malformed"),
        (status = 422, description = "`limit` or `offset` is out of range"),
    ))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Params,
) -> Result<Json<ProductPage>, Problem> {
    caller.require(Role::Staff)?;
    let page = Page::from_params(&params(query)?)?;
    let items = catalogue::list(&state.pool, page.limit, page.offset).await?;
    Ok(Json(ProductPage {
        items,
        limit: page.limit,
        offset: page.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(value: Value) -> ProductBody {
        serde_json::from_value(value).expect("a body")
    }

    #[test]
    fn every_invalid_field_is_listed() {
        let errors = draft(
            "bad sku",
            body(
                json!({"unit_price": 0, "currency": "EURO", "tax_class": "luxury",
                "weight_grams": -1, "dimensions": {"length_mm": 10}, "reorder_point": -1}),
            ),
        )
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "sku",
                "name",
                "unit_price",
                "currency",
                "tax_class",
                "weight_grams",
                "dimensions.width_mm",
                "dimensions.height_mm",
                "reorder_point"
            ]
        );
    }

    #[test]
    fn defaults_fill_the_optional_fields() {
        let draft = draft(
            "MUG-1",
            body(
                json!({"name": " Mug ", "unit_price": 1200, "currency": "EUR",
                "tax_class": "reduced", "weight_grams": 350}),
            ),
        )
        .expect("valid");
        assert_eq!(draft.name, "Mug");
        assert!(draft.active && !draft.allow_backorder);
        assert_eq!((draft.reorder_point, draft.reorder_quantity), (0, 0));
        assert_eq!(draft.dimensions, None);
    }
}
