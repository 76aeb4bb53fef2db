// orderflow console: plain JavaScript, no framework, no build step. Every piece of data is put
// into the page with textContent (never innerHTML), so nothing an order or a message carries can
// run as code. The API key lives in sessionStorage (this tab only) and goes out only in the
// Authorization header of calls to this origin.
"use strict";

const KEY = "orderflow.console.key";
const POLL_MS = 3000;
const FINAL = ["completed", "rejected", "cancelled"];

const state = { role: null, timer: null, busy: false, view: null, params: null, rendered: null };

// ---------- DOM helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function duration(secs) {
  secs = Math.max(0, Math.round(secs));
  if (secs < 90) return `${secs} s`;
  if (secs < 5400) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${(secs / 3600).toFixed(1)} h`;
  return `${(secs / 86400).toFixed(1)} d`;
}

function money(minor, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
  } catch (_) {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

function badge(status, extra) {
  return h("span", { class: `badge ${status} ${extra || ""}` }, status.replace("_", " "));
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => {
        const num = t.startsWith("#");
        return h("th", { scope: "col", class: num ? "num" : null }, num ? t.slice(1) : t);
      }))),
      h("tbody", {}, rows)));
}

function td(value, cls) {
  return h("td", { class: cls || null }, value);
}

// Announced to screen readers (a polite live region): actions, changes and failures, never
// a poll that changed nothing.
function live(message) {
  $("live").textContent = message;
}

// The footer's "last checked" time, shown but not announced.
function checked() {
  $("checked").textContent = `Checked ${new Date().toLocaleTimeString()}`;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
    super([problem.detail || problem.title || `HTTP ${status}`, fields].filter(Boolean).join(" — "));
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  if (response.status === 401 && path !== "/v1/console/whoami") {
    logout("The key was refused (401). Log in again.");
    throw new ApiError(401, data || {});
  }
  if (!response.ok) throw new ApiError(response.status, data || {});
  return { status: response.status, data };
}

// ---------- log in / out ----------

async function login(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const { data } = await api("GET", "/v1/console/whoami");
    state.role = data.role;
    $("whoami").textContent = data.name ? `${data.name} (${data.role})` : `${data.role} key`;
    $("login").hidden = true;
    $("nav").hidden = false;
    $("session").hidden = false;
    $("view").hidden = false;
    if (!location.hash || location.hash === "#") location.hash = "#/flow";
    else route();
    return true;
  } catch (e) {
    sessionStorage.removeItem(KEY);
    let message = e.message;
    if (e.status === 403) message = "This key belongs to a shop. The console needs a staff or admin key.";
    else if (e.status === 401) message = "This key is not valid.";
    $("login-error").textContent = message;
    return false;
  }
}

function logout(message) {
  sessionStorage.removeItem(KEY);
  stopPolling();
  state.role = null;
  $("view").replaceChildren();
  $("view").hidden = true;
  $("nav").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("key").value = "";
  $("key").focus();
}

// ---------- routing and polling ----------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  return { view: parts[0] || "flow", arg: parts[1] ? decodeURIComponent(parts[1]) : null,
           params: new URLSearchParams(query || "") };
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

function route() {
  if (!state.role) return;
  stopPolling();
  const { view, arg, params } = parseHash();
  state.view = view;
  state.rendered = null;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.view === view || (view === "order" && a.dataset.view === "orders");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const views = { flow: flowView, orders: ordersView, order: orderView, queues: queuesView, stock: stockView };
  const render = views[view] || flowView;
  const target = $("view");
  target.replaceChildren();
  delete target.dataset.signature;
  delete target.dataset.status;
  const refresh = async () => {
    if (state.view !== view) return;
    if (!$("confirm").open && !state.busy) {
      try {
        const changed = await render(target, arg, params);
        checked();
        if (changed && typeof changed === "string") live(changed);
      } catch (e) {
        if (e.status !== 401) live(`Could not update: ${e.message}`);
      }
    }
    if (state.view === view && state.role) state.timer = setTimeout(refresh, POLL_MS);
  };
  refresh();
}

// Renders `content` into the region `name` of `target`, creating it on first use; other
// regions (forms, say) keep their state and focus across polls.
function region(target, name, content) {
  let el = target.querySelector(`[data-region="${name}"]`);
  if (!el) {
    el = h("div", { "data-region": name });
    target.append(el);
  }
  // A poll must not pull the keyboard focus away: find the focused control again by what it is.
  const focused = el.contains(document.activeElement) ? document.activeElement : null;
  const identity = (e) => `${e.tagName}|${e.getAttribute("href") || e.getAttribute("aria-label") || e.textContent}`;
  const same = focused && identity(focused);
  el.replaceChildren(content);
  if (same) {
    for (const candidate of el.querySelectorAll(focused.tagName)) {
      if (identity(candidate) === same) { candidate.focus(); break; }
    }
  }
  return el;
}

// True when `data` is what `target` last showed, so a poll that changed nothing leaves the page
// (and the keyboard focus in it) alone.
function unchanged(target, data) {
  const signature = JSON.stringify(data);
  if (target.dataset.signature === signature) return true;
  target.dataset.signature = signature;
  return false;
}

function once(target, name, build) {
  let el = target.querySelector(`[data-region="${name}"]`);
  if (!el) {
    el = h("div", { "data-region": name }, build());
    target.append(el);
  }
  return el;
}

// ---------- confirmation dialog ----------

function confirmDialog({ title, text, ok, extra, action }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-extra").replaceChildren(...(extra ? [extra] : []));
  $("confirm-error").textContent = "";
  $("confirm-ok").textContent = ok;
  $("confirm-ok").disabled = false;
  const form = $("confirm-form");
  const opener = document.activeElement;
  form.onsubmit = async (event) => {
    event.preventDefault();
    $("confirm-ok").disabled = true;
    try {
      await action();
      dialog.close();
    } catch (e) {
      $("confirm-error").textContent = e.message;
      $("confirm-ok").disabled = false;
    }
  };
  $("confirm-cancel").onclick = () => dialog.close();
  dialog.onclose = () => { if (opener && opener.focus) opener.focus(); };
  dialog.showModal();
  const first = dialog.querySelector("textarea, input") || $("confirm-cancel");
  first.focus();
}

// ---------- Flow board ----------

function sparkline(series, label) {
  const max = Math.max(1, ...series);
  const chart = svg("svg", { viewBox: `0 0 ${series.length * 4} 34`, preserveAspectRatio: "none",
                             role: "img", "aria-label": label });
  series.forEach((n, i) => {
    const height = n === 0 ? 0 : Math.max(2, (n / max) * 32);
    chart.append(svg("rect", { x: i * 4, y: 34 - height, width: 3, height }));
  });
  return chart;
}

async function flowView(target) {
  const { data } = await api("GET", "/v1/console/flow");
  // Waiting times grow every second; only counts and stalled orders coming or going are news.
  const news = { ...data, now: null, stalled: data.stalled.map((o) => o.order_id) };
  if (unchanged(target, news)) {
    // Only the waiting times moved on: update them in place.
    const skew = Date.now() - Date.parse(data.now);
    for (const cell of target.querySelectorAll("[data-since]")) {
      cell.textContent = duration((Date.now() - skew - Date.parse(cell.dataset.since)) / 1000);
    }
    return false;
  }
  const reached = data.last_hour.reached;
  const stalledBy = data.stalled_by_status || {};
  const cards = data.statuses.map((status) => {
    const count = data.by_status[status] || 0;
    const series = reached[status] || [];
    const lastHour = series.reduce((a, b) => a + b, 0);
    const stalled = stalledBy[status] || 0;
    const perMinute = `${lastHour} reached ${status.replace("_", " ")} in the last hour`;
    return h("a", { class: `card ${stalled ? "stalled" : ""}`, href: `#/orders?status=${status}`,
                    "data-status": status,
                    "aria-label": `${status.replace("_", " ")}: ${count} now` +
                      (stalled ? `, ${stalled} stalled` : "") + `; ${perMinute}. Show these orders.` },
      h("div", { class: "name" }, status.replace("_", " ")),
      h("div", { class: "count" }, count),
      h("div", { class: "sub" }, `${lastHour} in the last hour`),
      stalled ? h("div", { class: "flag" }, `${stalled} stalled`) : null,
      sparkline(series, perMinute));
  });
  region(target, "head", h("div", { class: "row" },
    h("h2", { class: "grow" }, `Flow board — ${data.total} orders`),
    h("p", { class: "muted" }, "Bars: orders reaching each status per minute, last 60 minutes.")));
  region(target, "cards", h("div", { class: "cards" }, cards));
  const rows = data.stalled.map((o) => h("tr", { class: "hot" },
    td(h("a", { href: `#/order/${o.order_id}` }, o.external_reference || o.order_id)),
    td(badge(o.status)),
    td(when(o.since)),
    h("td", { class: "num", "data-since": o.since }, duration(o.waited_secs)),
    td(duration(o.limit_secs), "num"),
    td(o.waiting_for)));
  region(target, "stalled", h("section", { class: "panel", "aria-labelledby": "stalled-title" },
    h("h3", { id: "stalled-title" }, "Stalled orders"),
    table("Orders past their status's time limit, oldest first",
      ["Order", "Status", "Since", "#Waited", "#Limit", "Waiting for"], rows,
      "No order is stalled.")));
  const stalled = data.stalled.length;
  return `Flow board: ${data.total} orders, ${stalled} stalled.`;
}

// ---------- Orders: search and lists ----------

function ordersTable(orders, caption) {
  const rows = orders.map((o) => h("tr", {},
    td(h("a", { href: `#/order/${o.id}` }, o.external_reference || o.id)),
    td(badge(o.status)),
    td(o.channel),
    td(o.customer_email),
    td(when(o.created_at))));
  return table(caption, ["Order", "Status", "Channel", "Customer", "Placed"], rows,
    "No orders found.");
}

async function ordersView(target, _arg, params) {
  once(target, "search", () => {
    const input = h("input", { id: "search-q", name: "q", type: "search", required: true,
                               value: params.get("q") || "", autocomplete: "off" });
    return h("section", { class: "panel", "aria-labelledby": "orders-title" },
      h("h2", { id: "orders-title" }, "Orders"),
      h("form", { role: "search", onsubmit: (e) => {
          e.preventDefault();
          const q = input.value.trim();
          if (q) location.hash = `#/orders?q=${encodeURIComponent(q)}`;
        } },
        h("div", { class: "row" },
          h("div", { class: "grow" },
            h("label", { for: "search-q" }, "Order id, external reference or customer e-mail"),
            input),
          h("button", { type: "submit" }, "Search"))));
  });
  const q = params.get("q");
  const status = params.get("status");
  if (q) {
    const { data } = await api("GET", `/v1/console/orders?q=${encodeURIComponent(q)}`);
    if (data.orders.length === 1 && state.rendered === null && data.orders[0].id === q) {
      location.hash = `#/order/${data.orders[0].id}`;
      return;
    }
    state.rendered = "search";
    if (unchanged(target, data)) return false;
    region(target, "results", ordersTable(data.orders, `Orders matching “${q}”`));
  } else if (status) {
    const { data } = await api("GET", `/v1/orders?status=${encodeURIComponent(status)}&limit=100`);
    if (unchanged(target, data)) return false;
    region(target, "results", h("div", {},
      ordersTable(data.orders, `Orders now ${status.replace("_", " ")}, newest first`),
      data.next_cursor ? h("p", { class: "muted" }, "Showing the newest 100.") : null));
  } else {
    const { data } = await api("GET", "/v1/orders?limit=25");
    if (unchanged(target, data)) return false;
    region(target, "results", ordersTable(data.orders, "Newest orders"));
  }
}

// ---------- One order ----------

function safeLink(url, text) {
  try {
    const u = new URL(url);
    if (u.protocol === "https:" || u.protocol === "http:") {
      return h("a", { href: u.href, rel: "noopener noreferrer", target: "_blank" }, text);
    }
  } catch (_) { /* not a URL */ }
  return text;
}

function cancelOrder(order) {
  const reason = h("textarea", { id: "cancel-reason", required: true, maxlength: 500 });
  confirmDialog({
    title: "Cancel this order?",
    text: `Order ${order.external_reference || order.id} (${order.status}). Shipping decides: ` +
          "it cancels unless the parcel is already with the carrier.",
    ok: "Request cancellation",
    extra: h("div", {}, h("label", { for: "cancel-reason" }, "Reason (required)"), reason),
    action: async () => {
      if (!reason.value.trim()) throw new Error("Give a reason: it goes into the order's timeline.");
      await api("POST", `/v1/orders/${order.id}/cancel`, { reason: reason.value.trim() });
      live("Cancellation requested.");
      route();
    },
  });
}

async function orderView(target, id) {
  const { data: o } = await api("GET", `/v1/orders/${encodeURIComponent(id)}`);
  const before = target.dataset.status;
  if (unchanged(target, o)) return false;
  target.dataset.status = o.status;
  const final = FINAL.includes(o.status);
  region(target, "head", h("section", { class: "panel", "aria-labelledby": "order-title" },
    h("div", { class: "row" },
      h("h2", { id: "order-title", class: "grow" }, "Order ", h("span", { class: "mono" }, o.external_reference || o.id), " ",
        h("span", { id: "order-status" }, badge(o.status))),
      h("button", { type: "button", class: "danger", id: "cancel-order", disabled: final,
                    onclick: () => cancelOrder(o) }, "Cancel order…")),
    h("dl", { class: "facts" },
      h("dt", {}, "Id"), h("dd", { class: "mono" }, o.id),
      h("dt", {}, "Channel"), h("dd", {}, o.channel + (o.shop ? ` (shop ${o.shop})` : "")),
      h("dt", {}, "Customer"), h("dd", {}, `${o.customer.name} <${o.customer.email}>`),
      h("dt", {}, "Ship to"), h("dd", {}, [o.shipping_address.name, o.shipping_address.line1,
        `${o.shipping_address.postal_code} ${o.shipping_address.city}`, o.shipping_address.country].join(", ")),
      h("dt", {}, "Delivery"), h("dd", {}, o.delivery.shipping_method || "–"),
      h("dt", {}, "Placed"), h("dd", {}, when(o.created_at)),
      h("dt", {}, "Last change"), h("dd", {}, when(o.updated_at)))));
  const lines = o.lines.map((l) => h("tr", {},
    td(l.line_no, "num"), td(l.sku, "mono"), td(l.quantity, "num"),
    td(money(l.unit_price, o.currency), "num"), td(money(l.unit_price * l.quantity, o.currency), "num")));
  const shipments = o.shipments.map((s) => h("tr", {},
    td(s.carrier), td(s.tracking_url ? safeLink(s.tracking_url, s.tracking_number) : s.tracking_number, "mono")));
  region(target, "parts", h("div", { class: "columns" },
    h("section", { class: "panel", "aria-labelledby": "lines-title" },
      h("h3", { id: "lines-title" }, "Lines"),
      table(`Subtotal ${money(o.subtotal.amount, o.currency)}`, ["#Line", "SKU", "#Qty", "#Unit", "#Total"], lines, "No lines.")),
    h("section", { class: "panel", "aria-labelledby": "money-title" },
      h("h3", { id: "money-title" }, "Invoice and payment"),
      h("dl", { class: "facts" },
        h("dt", {}, "Invoice"), h("dd", { class: "mono" }, o.invoice_number || "not yet"),
        h("dt", {}, "Payment"), h("dd", {}, `${o.payment.method}: ${o.payment.state}`),
        h("dt", {}, "Coupon"), h("dd", {}, o.coupon_code || "–")),
      h("h3", {}, "Shipments"),
      table("Shipments and tracking", ["Carrier", "Tracking"], shipments, "Not shipped yet."))));
  const timeline = o.timeline.map((e) => h("tr", {},
    td(when(e.at)), td(e.type, "mono"), td(badge(e.status)), td(e.producer), td(e.detail)));
  region(target, "timeline", h("section", { class: "panel", "aria-labelledby": "timeline-title" },
    h("h3", { id: "timeline-title" }, "Timeline"),
    table("Every event of this order, oldest first", ["When", "Event", "Status after", "By", "Detail"], timeline, "No events yet.")));
  return before && before !== o.status ? `Order is now ${o.status.replace("_", " ")}.` : true;
}

// ---------- Queues and dead letters ----------

function rate(n) {
  return n ? n.toFixed(1) : "0";
}

function replayLetter(letter) {
  confirmDialog({
    title: "Replay this dead letter?",
    text: `${letter.kind || "message"} ${letter.id} goes back to ${letter.original_queue} ` +
          `(routing key ${letter.routing_key}). It failed because: ${letter.reason}`,
    ok: "Replay",
    action: async () => {
      await api("POST", `/v1/console/dead-letters/${encodeURIComponent(letter.id)}/replay`);
      live(`Dead letter ${letter.id} replayed.`);
      route();
    },
  });
}

function purgeQueue(queue) {
  confirmDialog({
    title: `Purge ${queue.name}?`,
    text: `This deletes all ${queue.messages} dead letter(s) in ${queue.name} for good. ` +
          "Replay what should be processed first.",
    ok: "Delete them",
    action: async () => {
      const { data } = await api("POST", "/v1/console/dead-letters/purge", { queue: queue.name });
      live(`Purged ${data.purged} dead letter(s) from ${data.queue}.`);
      route();
    },
  });
}

async function queuesView(target) {
  const [{ data: q }, { data: d }] = await Promise.all([
    api("GET", "/v1/console/queues"),
    api("GET", "/v1/console/dead-letters"),
  ]);
  if (unchanged(target, [q, d])) return false;
  const admin = state.role === "admin";
  const rows = q.queues.map((queue) => h("tr", { class: queue.dead_letters && queue.messages ? "hot" : null },
    td(queue.name, "mono"),
    td(queue.messages, "num"), td(queue.ready, "num"), td(queue.unacked, "num"),
    td(queue.consumers, "num"),
    td(rate(queue.publish_rate), "num"), td(rate(queue.deliver_rate), "num"), td(rate(queue.ack_rate), "num"),
    td(queue.dead_letters && queue.messages && admin
      ? h("button", { type: "button", class: "small danger", onclick: () => purgeQueue(queue),
                      "aria-label": `Purge ${queue.name}` }, "Purge…")
      : "")));
  region(target, "queues", h("section", { class: "panel", "aria-labelledby": "queues-title" },
    h("h2", { id: "queues-title" }, "Queues"),
    table("Depth, consumers and messages per second (RabbitMQ's management API)",
      ["Queue", "#Messages", "#Ready", "#Unacked", "#Consumers", "#In/s", "#Out/s", "#Ack/s", ""], rows,
      "No queues found."),
    admin ? null : h("p", { class: "muted" }, "Purging needs an admin key.")));
  const letters = d.letters.map((l) => h("tr", { "data-id": l.id },
    td(l.original_queue, "mono"),
    td(h("details", {}, h("summary", {}, l.kind || l.id), h("p", { class: "mono" }, l.id), h("pre", {}, l.body))),
    td(l.reason),
    td(l.deliveries, "num"),
    td(when(l.dead_lettered_at)),
    td(h("button", { type: "button", class: "small", onclick: () => replayLetter(l),
                     "aria-label": `Replay ${l.kind || "message"} ${l.id}` }, "Replay…"))));
  region(target, "letters", h("section", { class: "panel", "aria-labelledby": "letters-title" },
    h("h2", { id: "letters-title" }, `Dead letters (${d.letters.length})`),
    table("Messages a consumer gave up on, with the reason", ["From queue", "Message", "Reason", "#Deliveries", "Dead since", ""],
      letters, "No dead letters.")));
  return `${d.letters.length} dead letter(s).`;
}

// ---------- Stock ----------

function receiptForm() {
  const field = (id, label, attrs) => h("div", { class: "grow" },
    h("label", { for: id }, label), h("input", Object.assign({ id, name: id }, attrs)));
  const result = h("p", { id: "receipt-result", role: "status" });
  const form = h("form", { id: "receipt-form", novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const value = (id) => form.querySelector(`#${id}`).value.trim();
      const body = { warehouse: value("receipt-warehouse"), sku: value("receipt-sku"),
                     quantity: Number(value("receipt-quantity")) };
      if (value("receipt-reason")) body.reason = value("receipt-reason");
      result.className = "";
      state.busy = true;
      try {
        const { data } = await api("POST", "/v1/console/stock/receipts", body);
        const level = (data.stock || []).find((s) => s.sku === body.sku) || {};
        result.className = "notice";
        result.textContent = `Received ${body.quantity} × ${body.sku} in ${data.warehouse}` +
          (level.on_hand !== undefined ? `: ${level.on_hand} on hand now.` : ".");
        if (state.view === "stock") await stockView($("view"));
      } catch (err) {
        result.className = "notice bad";
        result.textContent = err.message;
      } finally {
        state.busy = false;
      }
    } },
    h("div", { class: "row" },
      field("receipt-warehouse", "Warehouse", { required: true, autocomplete: "off" }),
      field("receipt-sku", "SKU", { required: true, autocomplete: "off" }),
      field("receipt-quantity", "Quantity", { type: "number", min: 1, step: 1, required: true, inputmode: "numeric" }),
      field("receipt-reason", "Note (optional)", { autocomplete: "off" })),
    h("p", {}, h("button", { type: "submit" }, "Record receipt")),
    result);
  return h("section", { class: "panel", "aria-labelledby": "receipt-title" },
    h("h2", { id: "receipt-title" }, "Record a stock receipt"),
    h("p", { class: "muted" }, "Goods that arrived at a warehouse. Needs an admin key; waiting backorders are re-checked at once."),
    form);
}

function prefill(item) {
  $("receipt-warehouse").value = item.warehouse;
  $("receipt-sku").value = item.sku;
  $("receipt-quantity").value = item.reorder_quantity || "";
  $("receipt-quantity").focus();
}

async function stockView(target) {
  const { data } = await api("GET", "/v1/console/stock/low");
  if (unchanged(target, data)) return false;
  const rows = data.items.map((s) => h("tr", {},
    td(s.warehouse), td(s.sku, "mono"),
    td(s.on_hand, "num"), td(s.reserved, "num"), td(s.available, "num"),
    td(s.reorder_point, "num"), td(s.reorder_quantity, "num"),
    td(when(s.low_since)),
    td(h("button", { type: "button", class: "small quiet", onclick: () => prefill(s),
                     "aria-label": `Receive ${s.sku} in ${s.warehouse}` }, "Receive…"))));
  region(target, "low", h("section", { class: "panel", "aria-labelledby": "low-title" },
    h("h2", { id: "low-title" }, "Low stock"),
    table("Stock at or below its reorder point, with the suggested reorder quantity",
      ["Warehouse", "SKU", "#On hand", "#Reserved", "#Available", "#Reorder point", "#Reorder", "Low since", ""],
      rows, "Nothing is low on stock.")));
  once(target, "receipt", receiptForm);
  return `${data.items.length} item(s) low on stock.`;
}

// ---------- start ----------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) {
      $("login-error").textContent = "Enter an API key.";
      $("key").focus();
      return;
    }
    $("login-error").textContent = "";
    await login(key);
  });
  $("logout").addEventListener("click", () => logout("Logged out."));
  window.addEventListener("hashchange", route);
  const saved = sessionStorage.getItem(KEY);
  if (saved) login(saved); else $("key").focus();
});
