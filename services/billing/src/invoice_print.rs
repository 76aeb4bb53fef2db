//! Invoices and credit notes as printable HTML documents (`GET /v1/invoices/{number}` with
//! `Accept: text/html`, or `GET /v1/invoices/{number}.html`). One self-contained page with
//! print styles; every text from the order is escaped.

use std::fmt::Write;

use orderflow_messages::types::Money;

use crate::invoice_view::InvoiceView;

/// `1234` EUR → `12.34 EUR`; `1234` JPY → `1234 JPY`.
pub fn format_money(money: &Money) -> String {
    format!(
        "{} {}",
        decimal(money.amount, money.currency.minor_units()),
        money.currency
    )
}

/// Minor units as a decimal number with `places` decimals (`-1234`, 2 → `-12.34`).
pub fn decimal(amount: i64, places: u32) -> String {
    if places == 0 {
        return amount.to_string();
    }
    let scale = 10_i64.pow(places);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = places as usize
    )
}

fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The document as one HTML page.
pub fn render(doc: &InvoiceView) -> String {
    let title = if doc.kind == "credit_note" {
        "Credit note"
    } else {
        "Invoice"
    };
    let m = format_money;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} {number}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#111}}\
         table{{border-collapse:collapse;width:100%}}\
         th,td{{border-bottom:1px solid #ccc;padding:.3em .5em;text-align:left}}\
         td.n,th.n{{text-align:right}}\
         @media print{{body{{margin:0}}}}</style></head><body>\n\
         <h1>{title} {number}</h1>\n<p>Issued {issued} · Order {order}</p>\n",
        number = escape(&doc.invoice_number),
        issued = doc.issued_at.format("%Y-%m-%d"),
        order = doc.order_id,
    );
    if let Some(corrects) = &doc.corrects {
        let _ = writeln!(html, "<p>Corrects invoice {}</p>", escape(corrects));
    }
    if let Some(reason) = &doc.reason {
        let _ = writeln!(html, "<p>Reason: {}</p>", escape(reason));
    }
    let address = |key: &str| {
        doc.billing_address
            .get(key)
            .and_then(|v| v.as_str())
            .map(escape)
            .unwrap_or_default()
    };
    let _ = writeln!(
        html,
        "<address>{}<br>{}<br>{} {} {}<br>{}</address>\n<p>{}</p>",
        address("name"),
        address("line1"),
        address("postal_code"),
        address("city"),
        address("country"),
        escape(&doc.customer.email),
        escape(&doc.customer.name),
    );
    html.push_str(
        "<table><thead><tr><th>#</th><th>Description</th><th class=\"n\">Qty</th>\
         <th class=\"n\">Unit price</th><th class=\"n\">Tax rate</th><th class=\"n\">Net</th>\
         <th class=\"n\">Tax</th><th class=\"n\">Gross</th></tr></thead><tbody>\n",
    );
    for l in &doc.lines {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{} %</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            l.position,
            escape(&l.description),
            l.sku
                .as_deref()
                .map(|s| format!(" ({})", escape(s)))
                .unwrap_or_default(),
            l.quantity,
            m(&l.unit_price),
            percent(&l.tax_rate),
            m(&l.net),
            m(&l.tax),
            m(&l.gross),
        );
    }
    html.push_str("</tbody></table>\n<h2>Tax</h2><table><tbody>\n");
    for g in &doc.tax_breakdown {
        let _ = writeln!(
            html,
            "<tr><td>{} %</td><td class=\"n\">net {}</td><td class=\"n\">tax {}</td>\
             <td class=\"n\">gross {}</td></tr>",
            percent(&g.tax_rate),
            m(&g.net),
            m(&g.tax),
            m(&g.gross)
        );
    }
    let _ = writeln!(
        html,
        "</tbody></table>\n<p>Net {}<br>Tax {}<br><strong>Total {}</strong></p>",
        m(&doc.totals.net),
        m(&doc.totals.tax),
        m(&doc.totals.gross)
    );
    if let Some(due) = doc.due_at {
        let _ = writeln!(
            html,
            "<p>Please transfer the total by {}, quoting {}.</p>",
            due.format("%Y-%m-%d"),
            escape(&doc.invoice_number)
        );
    }
    for note in &doc.notes {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    html.push_str("</body></html>\n");
    html
}

fn percent(rate: &str) -> String {
    rate.parse::<rust_decimal::Decimal>()
        .map(|r| {
            (r * rust_decimal::Decimal::ONE_HUNDRED)
                .normalize()
                .to_string()
        })
        .unwrap_or_else(|_| escape(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_print_with_the_currency_s_decimals() {
        assert_eq!(decimal(1234, 2), "12.34");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(1234, 0), "1234");
        assert_eq!(decimal(1234, 3), "1.234");
    }

    #[test]
    fn text_from_the_order_is_escaped() {
        assert_eq!(
            escape("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }
}
