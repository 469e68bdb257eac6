// Opens the Temporal UI's workflow list filtered by a visibility query, as
// an engineer would, and reports which workflow ids it lists. Prints one
// JSON line; the Rust test (tests/it/temporal_ui.rs) asserts on it.
// Environment: UI_URL, QUERY, EXPECT (a workflow id that must be listed),
// CHROMIUM, SHOT (the screenshot's path).
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const ui = env("UI_URL"), query = env("QUERY"), expect = env("EXPECT");
const out = { url: `${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}` };
const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(30000);
  // Visibility is eventually consistent: reload until the workflow shows.
  const deadline = Date.now() + 45000;
  for (;;) {
    await page.goto(out.url, { waitUntil: "networkidle" });
    try {
      await page.getByText(expect, { exact: true }).first().waitFor({ timeout: 5000 });
      out.listed = true;
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        out.listed = false;
        break;
      }
    }
  }
  const text = await page.locator("body").innerText();
  out.workflowIds = [...new Set(text.match(/verification:[A-Za-z0-9._~-]+:[A-Za-z0-9._~-]+/g) ?? [])];
  await page.screenshot({ path: env("SHOT"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
