//! Refunds: money given back after capture, always with a credit note (its own gapless series)
//! that names the invoice and the invoice lines it gives back.
//!
//! A refund gives back whole units of product lines, and the shipping line, in any mix; a
//! cancellation after capture gives back everything not yet given back. Each line's part is
//! computed cumulatively — what `k` of `n` units are worth is `round(line × k / n)`, and a part
//! is the difference between what is given back after and before it — so refunding every unit,
//! in any number of steps, gives back exactly the line. The coupon's discount lines follow
//! their rate group's products in the same way. So no credit note can add up to more than its
//! invoice, and the payment's `refunded` never passes what it took.

use orderflow_messages::payment::Refunded;
use orderflow_messages::types::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::connector::{Operation, Outcome};
use crate::draft::{DraftLine, LineKind};
use crate::invoice::{self, Document, Kind};
use crate::orders::BillingOrder;
use crate::payment::{self, Payment, PaymentStatus};
use crate::pricing::{Amounts, round_minor};
use crate::settlement::{Billing, Cause, settle_request};

/// What to give back: units of product lines (by invoice position) and/or the shipping.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[serde(default)]
    pub lines: Vec<RefundLine>,
    #[serde(default)]
    pub shipping: bool,
    pub reason: String,
    /// Everything not yet given back (a cancellation).
    #[serde(skip)]
    pub everything: bool,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    /// The invoice line's `position`.
    pub position: i32,
    pub quantity: u32,
}

impl RefundRequest {
    pub fn everything(reason: String) -> RefundRequest {
        RefundRequest {
            lines: vec![],
            shipping: true,
            reason,
            everything: true,
        }
    }
}

/// A refund done.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Done {
    pub credit_note_number: String,
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub amount: Money,
    /// What the payment has given back in all, after this refund.
    #[schema(value_type = crate::openapi::MoneySchema)]
    pub refunded_total: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("the order has no invoice yet: there is nothing to refund")]
    NotInvoiced,
    #[error("the order is not paid ({0}): only money taken can be given back")]
    NotPaid(String),
    #[error("invoice line {0} is not a product line of the invoice")]
    UnknownLine(i32),
    #[error("invoice line {position}: only {left} unit(s) are left to refund")]
    TooMany { position: i32, left: u32 },
    #[error("the shipping was already refunded")]
    ShippingAlreadyRefunded,
    #[error("nothing to refund: name lines or the shipping")]
    Nothing,
    #[error("refunding {asked} would exceed what was paid and not yet refunded ({left})")]
    ExceedsPaid { asked: i64, left: i64 },
    #[error("the payment provider refused the refund: {0}")]
    Provider(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The credit note's lines for `request`, from the invoice's lines and those of the credit
/// notes already issued for it.
pub fn credit_lines(
    invoiced: &[DraftLine],
    credited: &[DraftLine],
    request: &RefundRequest,
) -> Result<Vec<DraftLine>, RefundError> {
    let already = |position: i32| -> (u32, Amounts) {
        credited
            .iter()
            .filter(|c| c.corrects == Some(position))
            .fold((0, Amounts::default()), |(q, a), c| {
                (q + c.quantity, add(a, c.amounts))
            })
    };
    // Units to give back per invoice line, checked.
    let mut units: Vec<(i32, u32)> = Vec::new();
    for line in invoiced {
        let (done, _) = already(line.position);
        let left = line.quantity.saturating_sub(done);
        let asked = match line.kind {
            LineKind::Discount => continue,
            _ if request.everything => left,
            LineKind::Shipping if request.shipping => {
                if left == 0 {
                    return Err(RefundError::ShippingAlreadyRefunded);
                }
                left
            }
            LineKind::Shipping => 0,
            LineKind::Product => request
                .lines
                .iter()
                .filter(|r| r.position == line.position)
                .map(|r| r.quantity)
                .sum(),
        };
        if asked > left {
            return Err(RefundError::TooMany {
                position: line.position,
                left,
            });
        }
        units.push((line.position, asked));
    }
    for r in &request.lines {
        let known = invoiced
            .iter()
            .any(|l| l.position == r.position && l.kind == LineKind::Product);
        if !known {
            return Err(RefundError::UnknownLine(r.position));
        }
    }
    let asked = |position: i32| units.iter().find(|u| u.0 == position).map_or(0, |u| u.1);

    let mut lines = Vec::new();
    let mut position = 0;
    for line in invoiced.iter().filter(|l| l.kind != LineKind::Discount) {
        let k = asked(line.position);
        if k == 0 {
            continue;
        }
        let (done, before) = already(line.position);
        let after = share(line.amounts, i64::from(done + k), i64::from(line.quantity))?;
        position += 1;
        lines.push(DraftLine {
            position,
            quantity: k,
            amounts: sub(after, before),
            corrects: Some(line.position),
            ..line.clone()
        });
    }
    // Each discount line follows the products of its rate group: after this refund it has
    // given back the share of the discount that the group's products have.
    for discount in invoiced.iter().filter(|l| l.kind == LineKind::Discount) {
        let group: Vec<&DraftLine> = invoiced
            .iter()
            .filter(|l| l.kind == LineKind::Product && l.tax_rate == discount.tax_rate)
            .collect();
        let whole: i64 = group
            .iter()
            .map(|l| i64::from(l.quantity) * l.unit_price)
            .sum();
        let given: i64 = group
            .iter()
            .map(|l| {
                let (done, _) = already(l.position);
                i64::from(done + asked(l.position)) * l.unit_price
            })
            .sum();
        let (_, before) = already(discount.position);
        let after = share(discount.amounts, given, whole)?;
        let part = sub(after, before);
        if part != Amounts::default() {
            position += 1;
            lines.push(DraftLine {
                position,
                amounts: part,
                corrects: Some(discount.position),
                ..discount.clone()
            });
        }
    }
    if lines.is_empty() {
        return Err(RefundError::Nothing);
    }
    Ok(lines)
}

/// `amounts × k / n`, gross and tax rounded half away from zero, net the difference.
fn share(amounts: Amounts, k: i64, n: i64) -> Result<Amounts, RefundError> {
    if n == 0 || k >= n {
        return Ok(amounts);
    }
    let part = |v: i64| {
        round_minor(Decimal::from(v) * Decimal::from(k) / Decimal::from(n))
            .map_err(|e| RefundError::Unexpected(e.into()))
    };
    let gross = part(amounts.gross)?;
    let tax = part(amounts.tax)?;
    Ok(Amounts {
        net: gross - tax,
        tax,
        gross,
    })
}

fn add(a: Amounts, b: Amounts) -> Amounts {
    Amounts {
        net: a.net + b.net,
        tax: a.tax + b.tax,
        gross: a.gross + b.gross,
    }
}

fn sub(a: Amounts, b: Amounts) -> Amounts {
    Amounts {
        net: a.net - b.net,
        tax: a.tax - b.tax,
        gross: a.gross - b.gross,
    }
}

impl Billing {
    /// Gives back what `request` names of the order's invoice, through the payment's
    /// connector, with a credit note; publishes `payment.refunded`. All or nothing: the
    /// caller's transaction holds the credit note and its number.
    pub async fn refund(
        &self,
        conn: &mut PgConnection,
        cause: Cause,
        order: &BillingOrder,
        p: &mut Payment,
        request: &RefundRequest,
    ) -> Result<Done, RefundError> {
        if p.status != PaymentStatus::Captured {
            return Err(RefundError::NotPaid(p.status.as_str().to_owned()));
        }
        let invoice_number = invoice::number_of_order(conn, order.order_id)
            .await?
            .ok_or(RefundError::NotInvoiced)?;
        let invoiced = invoice::lines(conn, &invoice_number).await?;
        let credited = credited_lines(conn, &invoice_number).await?;
        let lines = credit_lines(&invoiced, &credited, request)?;
        let total = lines
            .iter()
            .fold(Amounts::default(), |a, l| add(a, l.amounts));
        let left = p.amount.amount - p.refunded;
        if total.gross > left || total.gross <= 0 {
            return Err(RefundError::ExceedsPaid {
                asked: total.gross,
                left,
            });
        }
        let issued = invoice::write(
            conn,
            Document {
                kind: Kind::CreditNote {
                    corrects: invoice_number,
                    reason: request.reason.clone(),
                },
                order,
                series: &self.rules().credit_note_series,
                lines: &lines,
                total,
                notes: vec![],
            },
        )
        .await?;
        let currency = p.amount.currency.clone();
        let money = |amount| Money::new(amount, currency.clone());
        let mut settle = settle_request(p, Operation::Refund);
        settle.idempotency_key = format!("{}:{}", settle.idempotency_key, issued.number);
        settle.amount = money(total.gross);
        let connector = self.connectors.for_method(p.method);
        let outcome = connector
            .refund(&settle)
            .await
            .map_err(anyhow::Error::new)?;
        match outcome {
            Outcome::Approved { .. } => {}
            Outcome::Declined { code, message } => {
                return Err(RefundError::Provider(format!("{code}: {message}")));
            }
            Outcome::Pending => {
                return Err(RefundError::Provider(
                    "the outcome is not known yet; try again".into(),
                ));
            }
        }
        payment::add_refunded(conn, p, total.gross).await?;
        let refunded = Refunded {
            payment_id: p.payment_id,
            amount: money(total.gross),
            reason: request.reason.clone(),
            credit_note_number: Some(issued.number.clone()),
        };
        cause.publish(conn, refunded).await?;
        Ok(Done {
            credit_note_number: issued.number,
            amount: money(total.gross),
            refunded_total: money(p.refunded),
        })
    }
}

/// Every line of the credit notes that correct `invoice_number`.
async fn credited_lines(
    conn: &mut PgConnection,
    invoice_number: &str,
) -> anyhow::Result<Vec<DraftLine>> {
    let numbers: Vec<String> = sqlx::query_scalar(
        "SELECT invoice_number FROM invoices WHERE corrects = $1 ORDER BY number",
    )
    .bind(invoice_number)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::new();
    for number in numbers {
        lines.extend(invoice::lines(conn, &number).await?);
    }
    Ok(lines)
}
