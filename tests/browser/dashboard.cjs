// Drives the dashboard of `clearing serve` in Debian's chromium, headless,
// as an operator and then an approver would, and prints what the page
// showed as one JSON line. Used by crates/cli/tests/browser.rs.
//
//   node dashboard.cjs URL OPERATOR_TOKEN APPROVER_TOKEN SCREENSHOT_DIR DATE PAYOUT_DATE
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

async function main() {
  const [url, operator, approver, shots, date, payout] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "clearing-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CLEARING_TEST_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run"],
    viewport: { width: 1400, height: 1000 },
  });
  const outside = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("request", (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });
    await page.goto(`${url}/#date=${date}&payout=${payout}`);
    // sign in as the operator and read the day's totals
    await page.fill("#token", operator);
    await page.click("#signin");
    // every section is read once "signed in" shows
    await page.waitForFunction(() => document.querySelector("#who").textContent === "signed in");
    const totalNet = await page.textContent("#total-net");
    const totalSales = await page.textContent("#total-sales");
    const flagged = await page.locator("#flags tbody tr").count();
    const exposureBars = await page.locator("#exposure rect").count();
    await page.screenshot({ path: path.join(shots, "dashboard.png"), fullPage: true });
    // resolve the first open break through the page
    const button = page.locator("button[data-break]").first();
    const i = await button.getAttribute("data-break");
    const row = page.locator("#breaks tbody tr").nth(Number(i));
    const cells = await row.locator("td").allTextContents();
    await page.selectOption(`#decision-${i}`, "ledger");
    await page.fill(`#remark-${i}`, "checked on the dashboard");
    await button.click();
    await page.waitForFunction((n) => {
      const r = document.querySelectorAll("#breaks tbody tr")[n];
      return r && r.textContent.includes("ledger by");
    }, Number(i));
    await page.screenshot({ path: path.join(shots, "breaks.png"), fullPage: true });
    // prepare the batch as the operator
    await page.click("#prepare");
    await page.waitForSelector("#payout-total");
    const prepared = await page.textContent("#payout tfoot");
    // sign in as the approver and approve it
    await page.fill("#token", approver);
    await page.click("#signin");
    await page.waitForFunction(() => document.querySelector("#who").textContent === "signed in");
    await page.click("#approve");
    await page.waitForFunction(() => document.querySelector("#payout tfoot")?.textContent.includes("approved by bob"));
    const approved = await page.textContent("#payout tfoot");
    await page.screenshot({ path: path.join(shots, "payout.png"), fullPage: true });
    // a transaction's story
    await page.fill("#txn", "432100000007");
    await page.click("#show");
    await page.waitForFunction(() => document.querySelector("#story").textContent.includes("432100000007"));
    const story = JSON.parse(await page.textContent("#story"));
    await page.screenshot({ path: path.join(shots, "story.png"), fullPage: true });
    const text = await page.innerText("body");
    console.log(JSON.stringify({
      total_net: totalNet, total_sales: totalSales, flagged, exposure_bars: exposureBars,
      resolved: { category: cells[0], terminal_id: cells[1], rrn: cells[2], txn_type: cells[3] },
      prepared, approved, story_txn: story.transactions[0].txn_id, outside,
      shown: text,
    }));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
