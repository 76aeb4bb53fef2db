// Drives the ops console in headless Chromium (Debian's package, never a downloaded browser)
// against a running orderflow. tests/tests/console.rs starts the system, prepares the orders and
// the dead letter named below, runs this script and checks what it printed; every step prints
// `ok: <step>`, and any failure exits non-zero with the reason.
//
// Environment: CONSOLE_URL, STAFF_KEY, ADMIN_KEY, SHOP_KEY, DONE_REF (an order that will
// complete), CANCEL_REF (an order waiting for stock, to cancel), STALLED_REF (the order the dead
// letter is about), DEAD_LETTER_ID, SCREENSHOTS (a directory), CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const url = env("CONSOLE_URL");
const keys = { staff: env("STAFF_KEY"), admin: env("ADMIN_KEY"), shop: env("SHOP_KEY") };
const doneRef = env("DONE_REF");
const cancelRef = env("CANCEL_REF");
const stalledRef = env("STALLED_REF");
const deadLetterId = env("DEAD_LETTER_ID");
const shots = env("SCREENSHOTS");
const WAIT = 30_000;

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "orderflow-console-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 860 },
});

const problems = [];
const ok = (step) => console.log(`ok: ${step}`);

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
}

async function login(page, key) {
  await page.goto(url);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Log in" }).click();
}

async function openOrder(page, ref) {
  await page.getByRole("link", { name: "Orders", exact: true }).click();
  await page.getByLabel("Order id, external reference or customer e-mail").fill(ref);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: ref, exact: true }).click();
  await page.locator("#order-title").filter({ hasText: ref }).waitFor();
}

async function statusIs(page, status) {
  await page.locator("#order-status .badge").filter({ hasText: new RegExp(`^${status.replace("_", " ")}$`) })
    .waitFor({ timeout: WAIT });
}

try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(WAIT);
  // Refused calls (the shop key's 403) are logged by Chromium too; what matters here is a
  // policy violation or a script error.
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content Security Policy|Refused to/.test(msg.text())) {
      problems.push(`console: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));

  // A shop key is refused, with a message saying why; nothing of the console shows.
  await login(page, keys.shop);
  await page.getByRole("alert").filter({ hasText: "needs a staff or admin key" }).waitFor();
  if (await page.locator("#nav").isVisible()) throw new Error("the shop key reached the console");
  await shot(page, "login-refused", false);
  ok("a shop key is refused with a message");

  // Staff: the flow board, with the stalled orders highlighted.
  await login(page, keys.staff);
  await page.getByRole("heading", { name: /^Flow board/ }).waitFor();
  // The key survives a reload of the tab; the keyboard reaches the skip link first, then the
  // sections.
  await page.reload();
  await page.getByRole("heading", { name: /^Flow board/ }).waitFor();
  await page.keyboard.press("Tab");
  if (await page.evaluate(() => document.activeElement.textContent) !== "Skip to content") {
    throw new Error("the first Tab does not reach the skip link");
  }
  await page.keyboard.press("Tab");
  if (await page.evaluate(() => document.activeElement.getAttribute("aria-current")) !== "page") {
    throw new Error("the second Tab does not reach the current section's link");
  }
  const stalledCard = page.locator('.card.stalled[data-status="backordered"]');
  await stalledCard.waitFor();
  await page.getByRole("cell", { name: cancelRef, exact: true }).waitFor();
  if (await page.evaluate(() => location.href.includes("Bearer") || document.cookie.length > 0)) {
    throw new Error("the key leaked into the URL or a cookie");
  }
  await shot(page, "flow");
  const waited = await page.locator("[data-since]").first().textContent();
  await page.waitForFunction((before) => document.querySelector("[data-since]").textContent !== before, waited);
  ok("the flow board shows the stalled backordered orders");

  // Click through from the board to the filtered list.
  await stalledCard.click();
  await page.getByRole("table", { name: /Orders now backordered/ }).waitFor();
  await page.getByRole("link", { name: cancelRef, exact: true }).waitFor();
  ok("the board's card leads to the orders in that status");

  // Find the order placed through the API and watch it reach `completed`.
  await openOrder(page, doneRef);
  await statusIs(page, "completed");
  await page.getByRole("table", { name: "Every event of this order, oldest first" })
    .getByRole("cell", { name: "order.completed", exact: true }).waitFor();
  await page.getByRole("table", { name: "Shipments and tracking" }).getByRole("cell").first().waitFor();
  await shot(page, "order");
  ok("the order placed through the API is found and reaches completed");

  // Cancel another one, with a reason.
  await openOrder(page, cancelRef);
  await statusIs(page, "backordered");
  await page.getByRole("button", { name: "Cancel order…" }).click();
  const dialog = page.getByRole("dialog", { name: "Cancel this order?" });
  await dialog.getByRole("button", { name: "Request cancellation" }).click();
  await dialog.getByRole("alert").filter({ hasText: "Give a reason" }).waitFor();
  await dialog.getByLabel("Reason (required)").fill("customer called: no longer needed");
  await dialog.getByRole("button", { name: "Request cancellation" }).click();
  await page.locator("#live").filter({ hasText: /Cancellation requested|Order is now cancelled/ }).waitFor();
  await statusIs(page, "cancelled");
  await page.getByRole("cell", { name: /customer called: no longer needed/ }).first().waitFor();
  ok("an order is cancelled with a reason");

  // Queues, and replaying a dead letter (admin: the purge button shows too).
  await page.getByRole("button", { name: "Log out" }).click();
  await login(page, keys.admin);
  await page.getByRole("link", { name: "Queues", exact: true }).click();
  await page.getByRole("heading", { name: "Queues" }).waitFor();
  await page.getByRole("table", { name: /^Depth, consumers/ })
    .getByRole("cell", { name: "order-intake.events", exact: true }).waitFor();
  const letter = page.locator(`tr[data-id="${deadLetterId}"]`);
  await letter.getByRole("cell", { name: /database unavailable/ }).waitFor();
  await page.getByRole("button", { name: "Purge order-intake.events.dead" }).waitFor();
  await shot(page, "queues");
  await letter.getByRole("button", { name: /^Replay/ }).focus();
  await page.keyboard.press("Enter");
  const replay = page.getByRole("dialog", { name: "Replay this dead letter?" });
  await replay.waitFor();
  await replay.getByRole("button", { name: "Replay", exact: true }).click();
  await letter.waitFor({ state: "detached" });
  await page.getByRole("heading", { name: "Dead letters (0)" }).waitFor();
  ok("a dead letter is replayed after confirming");

  // The replayed event reached intake: the order's timeline shows it.
  await openOrder(page, stalledRef);
  await page.getByRole("cell", { name: "order.stalled", exact: true }).waitFor();
  ok("the replayed event shows in the order's timeline");

  // Stock: the low-stock list with its suggestion, and a receipt recorded from it.
  await page.getByRole("link", { name: "Stock", exact: true }).click();
  await page.getByRole("heading", { name: "Low stock" }).waitFor();
  await page.getByRole("button", { name: "Receive MUG-BLUE in berlin" }).click();
  if (await page.getByLabel("SKU").inputValue() !== "MUG-BLUE") throw new Error("the receipt form was not filled");
  await page.getByLabel("Quantity").fill("25");
  await page.getByLabel("Note (optional)").fill("delivery note 4711");
  const unnamed = await page.evaluate(() => [
    ...[...document.querySelectorAll("input, textarea, select")].filter((e) => !e.labels || !e.labels.length),
    ...[...document.querySelectorAll("button, a[href]")].filter((e) => !(e.getAttribute("aria-label") || e.textContent.trim())),
  ].map((e) => e.outerHTML.slice(0, 80)));
  if (unnamed.length) throw new Error(`controls without a name: ${unnamed.join(", ")}`);
  await shot(page, "stock");
  await page.getByRole("button", { name: "Record receipt" }).click();
  await page.locator("#receipt-result").filter({ hasText: "Received 25 × MUG-BLUE in berlin: 34 on hand now" }).waitFor();
  await page.getByText("Nothing is low on stock.").waitFor();
  ok("a stock receipt is recorded from the low-stock list");
  ok("every control has a name and the keyboard reaches the sections");

  // A tablet: the board still fits.
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.getByRole("link", { name: "Flow", exact: true }).click();
  await page.getByRole("heading", { name: /^Flow board/ }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  if (overflow) throw new Error("the flow board scrolls sideways on a tablet");
  await shot(page, "flow-tablet");
  ok("the flow board fits a tablet");

  if (problems.length) throw new Error(problems.join("\n"));
  ok("no script errors and no CSP violations");
} catch (error) {
  console.error(`failed: ${error.stack || error}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
