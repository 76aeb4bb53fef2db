//! `POST /v1/products/import`: many products at once, from CSV or JSON Lines, with a report per
//! row. Every good row is stored even when others fail, so a file can be fixed and sent again
//! (storing a product is an upsert, so sending a row twice does no harm).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, Problem};
use serde::Serialize;
use serde_json::{Map, Value};

use super::AppState;
use super::products::{ProductBody, draft};
use crate::catalogue;

/// The outcome of one row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RowReport {
    /// Line of the file the row starts on (1-based; a CSV's header is line 1).
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// `created`, `updated` or `failed`.
    pub outcome: &'static str,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<orderflow_runtime::openapi::FieldErrorSchema>)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    pub rows: Vec<RowReport>,
}

/// A row read from the file: the line it starts on and the product as a JSON object, or why
/// it could not be read.
type RawRow = (usize, Result<Map<String, Value>, FieldError>);

/// Imports the body (`Content-Type: text/csv` or `application/x-ndjson`/`application/jsonl`).
/// Always 200 with the report when the file could be read; admin only.
#[utoipa::path(post, path = "/v1/products/import", tag = "catalogue",
    description = "Role: `admin`. CSV: a header row of the field names (`sku` and those of \
                   `PUT /v1/products/{sku}`, `length_mm`/`width_mm`/`height_mm`, options \
                   separated by `|`). JSON Lines: one product object with its `sku` per line. \
                   Good rows are stored even when others fail.",
    request_body(content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "a report per row", body = ImportReport),
        (status = 400, description = "not UTF-8, or an unreadable file"),
        (status = 415, description = "neither CSV nor JSON Lines"),
    ))]
pub async fn import(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportReport>), Problem> {
    caller.require(Role::Admin)?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::str::from_utf8(&body)
        .map_err(|e| Problem::bad_request(format!("the file is not UTF-8: {e}")))?;
    let rows = match mime.as_str() {
        "text/csv" => csv_rows(text)?,
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            json_lines(text)
        }
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "unsupported media type",
            )
            .detail("send `Content-Type: text/csv` or `application/x-ndjson` (JSON Lines)"));
        }
    };
    let mut report = ImportReport {
        created: 0,
        updated: 0,
        failed: 0,
        rows: Vec::with_capacity(rows.len()),
    };
    for (line, row) in rows {
        let row_report = store(&state, line, row).await?;
        match row_report.outcome {
            "created" => report.created += 1,
            "updated" => report.updated += 1,
            _ => report.failed += 1,
        }
        report.rows.push(row_report);
    }
    Ok((StatusCode::OK, Json(report)))
}

async fn store(
    state: &AppState,
    line: usize,
    row: Result<Map<String, Value>, FieldError>,
) -> Result<RowReport, Problem> {
    let failed = |sku, errors| RowReport {
        line,
        sku,
        outcome: "failed",
        errors,
    };
    let mut object = match row {
        Ok(object) => object,
        Err(error) => return Ok(failed(None, vec![error])),
    };
    let sku = match object.remove("sku") {
        Some(Value::String(sku)) => sku,
        _ => {
            let error = FieldError::new("sku", "required", "`sku` is required");
            return Ok(failed(None, vec![error]));
        }
    };
    let body: ProductBody = match serde_json::from_value(Value::Object(object)) {
        Ok(body) => body,
        Err(e) => {
            let error = FieldError::new("row", "schema", e.to_string());
            return Ok(failed(Some(sku), vec![error]));
        }
    };
    let product = match draft(&sku, body) {
        Ok(product) => product,
        Err(errors) => return Ok(failed(Some(sku), errors)),
    };
    let (_, created) = catalogue::put(&state.pool, &product).await?;
    Ok(RowReport {
        line,
        sku: Some(sku),
        outcome: if created { "created" } else { "updated" },
        errors: Vec::new(),
    })
}

/// One JSON object per non-blank line.
fn json_lines(text: &str) -> Vec<RawRow> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let row = match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(object)) => Ok(object),
                Ok(_) => Err(FieldError::new(
                    "row",
                    "json",
                    "a line must be a JSON object",
                )),
                Err(e) => Err(FieldError::new("row", "json", e.to_string())),
            };
            (i + 1, row)
        })
        .collect()
}

/// CSV columns that hold numbers, booleans, and the `|`-separated list.
const NUMBERS: [&str; 7] = [
    "unit_price",
    "weight_grams",
    "length_mm",
    "width_mm",
    "height_mm",
    "reorder_point",
    "reorder_quantity",
];
const FLAGS: [&str; 2] = ["active", "allow_backorder"];
const DIMENSIONS: [&str; 3] = ["length_mm", "width_mm", "height_mm"];

/// A CSV file with a header row naming the columns (the JSON field names; `length_mm`,
/// `width_mm`, `height_mm` for the dimensions; `customisation_options` separated by `|`). An
/// empty cell is an absent field.
fn csv_rows(text: &str) -> Result<Vec<RawRow>, Problem> {
    let records = parse_csv(text).map_err(|(line, e)| {
        Problem::bad_request(format!("the CSV cannot be read at line {line}: {e}"))
    })?;
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(Problem::bad_request(
            "the CSV is empty; it needs a header row",
        ));
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    Ok(records
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .map(|(line, cells)| (line, csv_object(&header, &cells)))
        .collect())
}

fn csv_object(header: &[String], cells: &[String]) -> Result<Map<String, Value>, FieldError> {
    if cells.len() != header.len() {
        return Err(FieldError::new(
            "row",
            "columns",
            format!("{} cells, but the header has {}", cells.len(), header.len()),
        ));
    }
    let mut object = Map::new();
    let mut dimensions = Map::new();
    for (column, cell) in header.iter().zip(cells) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = if NUMBERS.contains(&column.as_str()) {
            let n: i64 = cell.parse().map_err(|_| {
                FieldError::new(column, "number", format!("`{cell}` is not a whole number"))
            })?;
            Value::from(n)
        } else if FLAGS.contains(&column.as_str()) {
            match cell.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => {
                    return Err(FieldError::new(
                        column,
                        "boolean",
                        format!("`{cell}` is not true or false"),
                    ));
                }
            }
        } else if column == "customisation_options" {
            Value::from(
                cell.split('|')
                    .map(|o| o.trim().to_owned())
                    .collect::<Vec<_>>(),
            )
        } else {
            Value::from(cell)
        };
        if DIMENSIONS.contains(&column.as_str()) {
            dimensions.insert(column.clone(), value);
        } else {
            object.insert(column.clone(), value);
        }
    }
    if !dimensions.is_empty() {
        object.insert("dimensions".into(), Value::Object(dimensions));
    }
    Ok(object)
}

/// The line a CSV record starts on, and its cells.
type CsvRecord = (usize, Vec<String>);

/// RFC 4180 records with the line each starts on: `,` between cells, `"` around cells that
/// hold commas, quotes (doubled) or line breaks.
fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, (usize, &'static str)> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut starts_on = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                cell.push(c);
            }
            (false, '"') if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (false, '"') => return Err((line, "a quote inside an unquoted cell")),
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push((starts_on, std::mem::take(&mut record)));
                line += 1;
                starts_on = line;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err((line, "a quoted cell is not closed"));
    }
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        records.push((starts_on, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cells_keep_commas_quotes_and_line_breaks() {
        let records =
            parse_csv("sku,name\r\nMUG,\"Mug, \"\"big\"\"\nblue\"\nHAT,Hat").expect("csv");
        assert_eq!(
            records,
            vec![
                (1, vec!["sku".to_owned(), "name".to_owned()]),
                (2, vec!["MUG".to_owned(), "Mug, \"big\"\nblue".to_owned()]),
                (4, vec!["HAT".to_owned(), "Hat".to_owned()]),
            ]
        );
        assert!(parse_csv("a,\"b").is_err());
    }

    #[test]
    fn a_csv_row_becomes_a_product_body() {
        let header: Vec<String> = [
            "sku",
            "unit_price",
            "active",
            "length_mm",
            "customisation_options",
        ]
        .map(String::from)
        .to_vec();
        let cells: Vec<String> = ["MUG", "1200", "no", "10", "engraving|gift_wrap"]
            .map(String::from)
            .to_vec();
        let object = csv_object(&header, &cells).expect("a row");
        assert_eq!(
            Value::Object(object),
            serde_json::json!({"sku": "MUG", "unit_price": 1200, "active": false,
                "dimensions": {"length_mm": 10},
                "customisation_options": ["engraving", "gift_wrap"]})
        );
        let bad = csv_object(&header[..2], &["MUG".into(), "twelve".into()]).expect_err("bad");
        assert_eq!(bad.field, "unit_price");
    }
}
