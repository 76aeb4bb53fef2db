//! A CSV file of orders: one row per order line, the rows of one order grouped by
//! `external_reference`. The order's own columns are read from its first row; a later row of the
//! same order that says otherwise is an error on that row. Column order is free; the header
//! names them. Empty cells are absent values.

use std::collections::BTreeMap;

use orderflow_runtime::problem::FieldError;
use serde_json::{Map, Value};

use super::{Candidate, RowError};
use crate::order_request::OrderRequest;

/// Columns about the order, with the field of the order body each fills.
pub const ORDER_COLUMNS: &[(&str, &str)] = &[
    ("external_reference", "external_reference"),
    ("channel", "channel"),
    ("customer_email", "customer.email"),
    ("customer_name", "customer.name"),
    ("customer_id", "customer.customer_id"),
    ("currency", "currency"),
    ("shipping_name", "shipping_address.name"),
    ("shipping_line1", "shipping_address.line1"),
    ("shipping_line2", "shipping_address.line2"),
    ("shipping_postal_code", "shipping_address.postal_code"),
    ("shipping_city", "shipping_address.city"),
    ("shipping_country", "shipping_address.country"),
    ("shipping_phone", "shipping_address.phone"),
    ("billing_name", "billing_address.name"),
    ("billing_line1", "billing_address.line1"),
    ("billing_line2", "billing_address.line2"),
    ("billing_postal_code", "billing_address.postal_code"),
    ("billing_city", "billing_address.city"),
    ("billing_country", "billing_address.country"),
    ("billing_phone", "billing_address.phone"),
    ("shipping_method", "delivery.shipping_method"),
    ("requested_date", "delivery.requested_date"),
    ("instructions", "delivery.instructions"),
    ("gift_note", "delivery.gift_note"),
    ("payment_method", "payment.method"),
    ("payment_token", "payment.token"),
    ("coupon_code", "coupon_code"),
];
/// Columns about the row's line. `customisations` separates its entries with `|`.
pub const LINE_COLUMNS: &[&str] = &["sku", "quantity", "unit_price", "customisations"];

/// A row's number and its non-empty cells by column.
type Row<'a> = (usize, BTreeMap<&'a str, &'a str>);

/// The orders of a CSV file, or why the file as a whole cannot be read.
pub fn candidates(records: &[(usize, Vec<String>)]) -> Result<Vec<Candidate>, String> {
    let Some(((_, header), rows)) = records.split_first() else {
        return Err("the file is empty; the first row names the columns".to_owned());
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let unknown: Vec<&str> = header
        .iter()
        .map(String::as_str)
        .filter(|h| !ORDER_COLUMNS.iter().any(|(c, _)| c == h) && !LINE_COLUMNS.contains(h))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("unknown column(s): {}", unknown.join(", ")));
    }
    if !header.iter().any(|h| h == "external_reference") {
        return Err(
            "the column `external_reference` is required: it groups rows into orders \
                    and makes a second import of the same file create nothing"
                .to_owned(),
        );
    }

    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut lone = Vec::new();
    for (row, cells) in rows {
        if cells.len() != header.len() {
            lone.push(broken_row(
                *row,
                FieldError::new(
                    "row",
                    "count",
                    format!("{} cell(s), the header has {}", cells.len(), header.len()),
                ),
            ));
            continue;
        }
        let named: BTreeMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(cells.iter().map(|c| c.trim()))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        let Some(reference) = named.get("external_reference").map(|r| (*r).to_owned()) else {
            lone.push(broken_row(
                *row,
                FieldError::new(
                    "external_reference",
                    "required",
                    "every row names its order by `external_reference`",
                ),
            ));
            continue;
        };
        if !groups.contains_key(&reference) {
            order.push(reference.clone());
        }
        groups.entry(reference).or_default().push((*row, named));
    }
    let mut out = lone;
    for reference in order {
        if let Some(rows) = groups.remove(&reference) {
            out.push(group(reference, &rows));
        }
    }
    Ok(out)
}

fn broken_row(row: usize, error: FieldError) -> Candidate {
    Candidate {
        rows: vec![row],
        reference: None,
        request: Err(vec![RowError { row, error }]),
    }
}

/// One order from its rows.
fn group(reference: String, rows: &[Row]) -> Candidate {
    let row_numbers: Vec<usize> = rows.iter().map(|(row, _)| *row).collect();
    let mut errors = Vec::new();
    let (first_row, first) = &rows[0];
    for (row, cells) in &rows[1..] {
        for (column, _) in ORDER_COLUMNS {
            let (mine, theirs) = (cells.get(column), first.get(column));
            if mine.is_some() && mine != theirs {
                errors.push(RowError {
                    row: *row,
                    error: FieldError::new(
                        *column,
                        "consistent",
                        format!("differs from row {first_row} of the same order"),
                    ),
                });
            }
        }
    }
    let mut body = Map::new();
    for (column, path) in ORDER_COLUMNS {
        if let Some(cell) = first.get(column) {
            put(&mut body, path, Value::String((*cell).to_owned()));
        }
    }
    let lines: Vec<Value> = rows.iter().map(|(_, cells)| line(cells)).collect();
    body.insert("lines".to_owned(), Value::Array(lines));
    let request = match serde_json::from_value::<OrderRequest>(Value::Object(body)) {
        Ok(request) if errors.is_empty() => Ok(request),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(RowError {
                row: *first_row,
                error: FieldError::new("row", "schema", e.to_string()),
            });
            Err(errors)
        }
    };
    Candidate {
        rows: row_numbers,
        reference: Some(reference),
        request,
    }
}

fn line(cells: &BTreeMap<&str, &str>) -> Value {
    let mut line = Map::new();
    for column in LINE_COLUMNS {
        let Some(cell) = cells.get(column) else {
            continue;
        };
        let value = match *column {
            "customisations" => Value::Array(
                cell.split('|')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_owned()))
                    .collect(),
            ),
            // Numbers stay text when they are not whole numbers, so the rule names the cell.
            "quantity" | "unit_price" => cell
                .parse::<i64>()
                .map_or_else(|_| Value::String((*cell).to_owned()), Value::from),
            _ => Value::String((*cell).to_owned()),
        };
        line.insert((*column).to_owned(), value);
    }
    Value::Object(line)
}

/// Sets `path` (`a.b`) in `body`, creating the objects on the way.
fn put(body: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            body.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = body
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                put(inner, rest, value);
            }
        }
    }
}

/// The row and column of a field the order's rules refused: a line's field is on that line's
/// row; an order's field is on its first row, named by its column.
pub fn locate(rows: &[usize], error: FieldError) -> RowError {
    let first = rows.first().copied().unwrap_or(0);
    if let Some(rest) = error.field.strip_prefix("lines[")
        && let Some((index, field)) = rest.split_once("].")
        && let Ok(index) = index.parse::<usize>()
    {
        let column = field.split('[').next().unwrap_or(field).to_owned();
        return RowError {
            row: rows.get(index).copied().unwrap_or(first),
            error: FieldError {
                field: column,
                ..error
            },
        };
    }
    let prefix = format!("{}.", error.field);
    let column = ORDER_COLUMNS
        .iter()
        .find(|(_, path)| *path == error.field)
        .or_else(|| {
            ORDER_COLUMNS
                .iter()
                .find(|(_, path)| path.starts_with(&prefix))
        })
        .map(|(column, _)| (*column).to_owned());
    RowError {
        row: first,
        error: FieldError {
            field: column.unwrap_or_else(|| error.field.clone()),
            ..error
        },
    }
}
