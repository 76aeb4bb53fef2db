//! `POST /v1/orders/import` (staff): orders keyed in from phone calls, e-mails or the counter,
//! many at once. The body is CSV (`text/csv`, one row per order line, see [`csv_orders`]) or
//! JSON Lines (`application/x-ndjson`, one order per line, each the body of `POST /v1/orders`).
//!
//! Every row is checked with the same rules as a single order, each order is placed in its own
//! transaction (a bad row never blocks the good ones), and the answer reports every row: the
//! order it created, the order it duplicates, or its errors. Orders are recognised by
//! `(channel, external_reference)`, which an import therefore requires: importing the same file
//! twice creates nothing new.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::openapi::FieldErrorSchema;
use orderflow_runtime::problem::{FieldError, Problem};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{Api, who};
use crate::order_request::OrderRequest;
use crate::placement::{self, Placement, PlacementError};

pub mod csv_orders;
pub mod csv_records;

/// Largest import accepted (the other endpoints take 1 MiB).
pub const IMPORT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// One order as read from the file, before its rules are checked.
#[derive(Debug)]
pub struct Candidate {
    /// The rows (CSV) or line (JSON Lines) it came from.
    pub rows: Vec<usize>,
    pub reference: Option<String>,
    pub request: Result<OrderRequest, Vec<RowError>>,
}

#[derive(Debug)]
pub struct RowError {
    pub row: usize,
    pub error: FieldError,
}

/// What became of one row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowReport {
    /// The row's number in the file (CSV: the header is row 1) or the line's (JSON Lines).
    row: usize,
    external_reference: Option<String>,
    /// `created`, `duplicate` (the order exists already: `order_id` is that order) or `invalid`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    /// Why it is invalid: each field with its rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    errors: Vec<FieldError>,
}

/// How many orders an import created, found already there, or refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    created: usize,
    duplicates: usize,
    invalid: usize,
}

/// The answer to an import: the counts and every row's outcome, in file order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    summary: ImportSummary,
    rows: Vec<RowReport>,
}

enum Format {
    Csv,
    JsonLines,
}

/// Many orders at once, from CSV (one row per order line; the rows of one order share its
/// `external_reference`) or JSON Lines (one order per line, each the body of `POST /v1/orders`).
#[utoipa::path(post, path = "/v1/orders/import", tag = "orders",
    description = "Role: `staff`, `admin`. Each order is checked with the rules of \
                   `POST /v1/orders` and placed on its own: a bad row never blocks the others, \
                   and importing a file twice creates nothing new. Up to 8 MiB. The CSV columns \
                   are listed in the README.",
    request_body(content(
        (String = "text/csv"),
        (OrderRequest = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "a report per row", body = ImportReport),
        (status = 400, description = "not UTF-8, unreadable CSV, or unknown columns"),
        (status = 413, description = "the file is over 8 MiB"),
        (status = 415, description = "neither text/csv nor application/x-ndjson"),
    ))]
pub async fn import_orders(
    State(api): State<Api>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_lowercase())
        .unwrap_or_default();
    let format = match mime.as_str() {
        "text/csv" => Format::Csv,
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => Format::JsonLines,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "unsupported media type",
            )
            .detail("send `Content-Type: text/csv` or `Content-Type: application/x-ndjson`"));
        }
    };
    let text = std::str::from_utf8(&body)
        .map_err(|e| Problem::bad_request(format!("the file is not UTF-8: {e}")))?;
    let candidates = match format {
        Format::Csv => csv_records::records(text)
            .and_then(|records| csv_orders::candidates(&records))
            .map_err(Problem::bad_request)?,
        Format::JsonLines => json_lines(text),
    };

    let requested_by = who(&caller);
    let mut report = Vec::new();
    for candidate in candidates {
        let is_csv = matches!(format, Format::Csv);
        report.extend(import_one(&api, candidate, is_csv, &requested_by).await?);
    }
    report.sort_by_key(|r| r.row);
    let count = |outcome| report.iter().filter(|r| r.outcome == outcome).count();
    let summary = ImportSummary {
        created: count("created"),
        duplicates: count("duplicate"),
        invalid: count("invalid"),
    };
    tracing::info!(
        created = summary.created,
        duplicates = summary.duplicates,
        invalid = summary.invalid,
        "orders imported"
    );
    Ok(axum::Json(ImportReport {
        summary,
        rows: report,
    })
    .into_response())
}

/// Checks and places one order; one report per row it came from.
async fn import_one(
    api: &Api,
    candidate: Candidate,
    is_csv: bool,
    requested_by: &str,
) -> Result<Vec<RowReport>, Problem> {
    let Candidate {
        rows,
        reference,
        request,
    } = candidate;
    let outcome = match request {
        Err(errors) => Err(errors),
        Ok(request) => match request.parse() {
            Err(errors) => Err(errors
                .into_iter()
                .map(|error| {
                    if is_csv {
                        csv_orders::locate(&rows, error)
                    } else {
                        RowError {
                            row: rows[0],
                            error,
                        }
                    }
                })
                .collect()),
            Ok(order) if order.external_reference.is_none() => Err(vec![RowError {
                row: rows[0],
                error: FieldError::new(
                    "external_reference",
                    "required",
                    "an imported order needs its channel's reference, so a second import \
                     of the same file creates nothing",
                ),
            }]),
            Ok(order) => {
                let placed = placement::place(
                    &api.pool,
                    order,
                    placement::Request {
                        body: &Value::Null,
                        idempotency_key: None,
                        key_lifetime: api.key_lifetime,
                        shop: None,
                        requested_by,
                    },
                )
                .await;
                match placed {
                    Ok(Placement::Created { order_id, .. }) => Ok(("created", order_id)),
                    Err(PlacementError::Duplicate { existing }) => Ok(("duplicate", existing)),
                    // Without an Idempotency-Key there is nothing to replay or reuse.
                    Ok(Placement::Replayed { .. }) => {
                        return Err(anyhow::anyhow!("an import without a key was replayed").into());
                    }
                    Err(e) => return Err(Problem::internal(&anyhow::Error::new(e))),
                }
            }
        },
    };
    Ok(match outcome {
        Ok((outcome, order_id)) => rows
            .iter()
            .map(|row| RowReport {
                row: *row,
                external_reference: reference.clone(),
                outcome,
                order_id: Some(order_id),
                errors: Vec::new(),
            })
            .collect(),
        Err(errors) => rows
            .iter()
            .map(|row| {
                let mut mine: Vec<FieldError> = errors
                    .iter()
                    .filter(|e| e.row == *row)
                    .map(|e| e.error.clone())
                    .collect();
                if mine.is_empty() {
                    mine.push(FieldError::new(
                        "row",
                        "order",
                        "not imported: another row of the same order is invalid",
                    ));
                }
                RowReport {
                    row: *row,
                    external_reference: reference.clone(),
                    outcome: "invalid",
                    order_id: None,
                    errors: mine,
                }
            })
            .collect(),
    })
}

/// One order per non-blank line, numbered from 1.
fn json_lines(text: &str) -> Vec<Candidate> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let row = i + 1;
            let de = &mut serde_json::Deserializer::from_str(line);
            let request: Result<OrderRequest, _> = serde_path_to_error::deserialize(de);
            let request = request.map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { "body".to_owned() } else { path };
                vec![RowError {
                    row,
                    error: FieldError::new(field, "schema", e.into_inner().to_string()),
                }]
            });
            let reference = request
                .as_ref()
                .ok()
                .and_then(|r| r.external_reference.as_str())
                .map(str::to_owned);
            Candidate {
                rows: vec![row],
                reference,
                request,
            }
        })
        .collect()
}
