//! The catalogue: what may be sold, at which price, and what the later stages need to know about
//! each SKU (tax class for billing, weight and size for packing and shipping).

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use orderflow_messages::types::{Currency, Dimensions, Sku};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgExecutor, Row};

/// How billing taxes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaxClass {
    Standard,
    Reduced,
    Zero,
}

impl TaxClass {
    pub const ALL: [TaxClass; 3] = [TaxClass::Standard, TaxClass::Reduced, TaxClass::Zero];

    pub fn parse(raw: &str) -> Option<TaxClass> {
        TaxClass::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaxClass::Standard => "standard",
            TaxClass::Reduced => "reduced",
            TaxClass::Zero => "zero",
        }
    }
}

/// A product as an admin describes it; only [`crate::api`] builds one, after checking every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub sku: Sku,
    pub name: String,
    /// Minor units of `currency`, always positive.
    pub unit_price: i64,
    pub currency: Currency,
    pub tax_class: TaxClass,
    pub weight_grams: u32,
    pub dimensions: Option<Dimensions>,
    pub active: bool,
    pub allow_backorder: bool,
    /// `stock.low` is published when a warehouse's available stock falls to this (0: never).
    pub reorder_point: i64,
    /// The quantity `stock.low` suggests ordering.
    pub reorder_quantity: i64,
    /// The customisations an order line may ask for (`engraving`, `gift_wrap`, …).
    pub customisation_options: Vec<String>,
}

/// A product of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Product {
    #[schema(value_type = String)]
    pub sku: Sku,
    pub name: String,
    /// Minor units of `currency`.
    pub unit_price: i64,
    /// ISO 4217.
    #[schema(value_type = String)]
    pub currency: Currency,
    pub tax_class: TaxClass,
    pub weight_grams: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<orderflow_runtime::openapi::DimensionsSchema>)]
    pub dimensions: Option<Dimensions>,
    pub active: bool,
    pub allow_backorder: bool,
    pub reorder_point: i64,
    pub reorder_quantity: i64,
    pub customisation_options: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns a [`Product`] is read from.
macro_rules! product_columns {
    () => {
        "sku, name, unit_price, currency, tax_class, weight_grams, length_mm, width_mm, \
         height_mm, active, allow_backorder, reorder_point, reorder_quantity, customisation_options, \
         created_at, updated_at"
    };
}

#[derive(FromRow)]
struct ProductRow {
    sku: String,
    name: String,
    unit_price: i64,
    currency: String,
    tax_class: String,
    weight_grams: i32,
    length_mm: Option<i32>,
    width_mm: Option<i32>,
    height_mm: Option<i32>,
    active: bool,
    allow_backorder: bool,
    reorder_point: i64,
    reorder_quantity: i64,
    customisation_options: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ProductRow> for Product {
    type Error = anyhow::Error;

    /// The table's constraints make every stored row valid; a failure here means the schema and
    /// the code disagree.
    fn try_from(row: ProductRow) -> anyhow::Result<Product> {
        let size = |v: i32| u32::try_from(v).context("negative size in products");
        let dimensions = match (row.length_mm, row.width_mm, row.height_mm) {
            (Some(l), Some(w), Some(h)) => Some(Dimensions {
                length_mm: size(l)?,
                width_mm: size(w)?,
                height_mm: size(h)?,
            }),
            _ => None,
        };
        Ok(Product {
            sku: Sku::parse(&row.sku).map_err(anyhow::Error::msg)?,
            name: row.name,
            unit_price: row.unit_price,
            currency: Currency::parse(&row.currency).map_err(anyhow::Error::msg)?,
            tax_class: TaxClass::parse(&row.tax_class)
                .with_context(|| format!("unknown tax class `{}` in products", row.tax_class))?,
            weight_grams: size(row.weight_grams)?,
            dimensions,
            active: row.active,
            allow_backorder: row.allow_backorder,
            reorder_point: row.reorder_point,
            reorder_quantity: row.reorder_quantity,
            customisation_options: row.customisation_options,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn product_of(row: &PgRow) -> anyhow::Result<Product> {
    Product::try_from(ProductRow::from_row(row)?)
}

/// Creates or replaces the product; `true` when it was created.
pub async fn put(db: impl PgExecutor<'_>, draft: &ProductDraft) -> anyhow::Result<(Product, bool)> {
    let dim = |f: fn(&Dimensions) -> u32| draft.dimensions.as_ref().map(|d| f(d) as i64);
    let row = sqlx::query(concat!(
        "INSERT INTO products (sku, name, unit_price, currency, tax_class, weight_grams, \
         length_mm, width_mm, height_mm, active, allow_backorder, reorder_point, \
         reorder_quantity, customisation_options) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price, \
         currency = EXCLUDED.currency, tax_class = EXCLUDED.tax_class, \
         weight_grams = EXCLUDED.weight_grams, length_mm = EXCLUDED.length_mm, \
         width_mm = EXCLUDED.width_mm, height_mm = EXCLUDED.height_mm, \
         active = EXCLUDED.active, allow_backorder = EXCLUDED.allow_backorder, \
         reorder_point = EXCLUDED.reorder_point, reorder_quantity = EXCLUDED.reorder_quantity, \
         customisation_options = EXCLUDED.customisation_options, updated_at = now() \
         RETURNING ",
        product_columns!(),
        // xmax is 0 only on a freshly inserted row version.
        ", (xmax = 0) AS created"
    ))
    .bind(draft.sku.as_str())
    .bind(&draft.name)
    .bind(draft.unit_price)
    .bind(draft.currency.as_str())
    .bind(draft.tax_class.as_str())
    .bind(i64::from(draft.weight_grams))
    .bind(dim(|d| d.length_mm))
    .bind(dim(|d| d.width_mm))
    .bind(dim(|d| d.height_mm))
    .bind(draft.active)
    .bind(draft.allow_backorder)
    .bind(draft.reorder_point)
    .bind(draft.reorder_quantity)
    .bind(&draft.customisation_options)
    .fetch_one(db)
    .await
    .context("storing a product")?;
    let created: bool = row.try_get("created")?;
    Ok((product_of(&row)?, created))
}

pub async fn get(db: impl PgExecutor<'_>, sku: &str) -> anyhow::Result<Option<Product>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products WHERE sku = $1"
    ))
    .bind(sku)
    .fetch_optional(db)
    .await
    .context("reading a product")?;
    row.as_ref().map(product_of).transpose()
}

/// A page of the catalogue in SKU order.
pub async fn list(
    db: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Product>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products ORDER BY sku LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
    .context("listing products")?;
    rows.iter().map(product_of).collect()
}

/// The products among `skus` that exist, by SKU.
pub async fn find_many(
    db: impl PgExecutor<'_>,
    skus: &[String],
) -> anyhow::Result<HashMap<String, Product>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products WHERE sku = ANY($1)"
    ))
    .bind(skus)
    .fetch_all(db)
    .await
    .context("reading products")?;
    rows.iter()
        .map(|row| product_of(row).map(|p| (p.sku.as_str().to_owned(), p)))
        .collect()
}
