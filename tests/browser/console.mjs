// Drives the review console like a reviewer: log in with a token, find the
// item in the queue, try a forged form (no CSRF token), decide, and see the
// item leave the queue. Prints what it saw as one JSON line; the Rust test
// (tests/it/console.rs) asserts on it. Environment: BASE_URL, TOKEN,
// CANDIDATE, APPLICATION, CHROMIUM, SHOTS (a directory for screenshots).
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("BASE_URL"), token = env("TOKEN"), cand = env("CANDIDATE"), app = env("APPLICATION");
const out = {};
const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);

  await page.goto(`${base}/console/reviews`);
  out.redirectedToLogin = page.url().endsWith("/console/login");

  await page.fill("#token", "not-a-token");
  await page.click("#login button[type=submit]");
  out.badLoginError = (await page.textContent("#error"))?.trim() ?? null;

  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForURL(`${base}/console/reviews`);
  const cookie = (await context.cookies()).find((c) => c.name === "vbridge_session");
  out.cookie = cookie ? { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path } : null;
  out.whoami = (await page.textContent("#whoami"))?.trim() ?? null;

  const row = page.locator(`tr[data-candidate="${cand}"][data-application="${app}"]`);
  out.rowBefore = (await row.count()) ? (await row.innerText()).replace(/\s+/g, " ").trim() : null;
  out.countdown = (await row.locator("time.countdown").count()) ? (await row.locator("time.countdown").innerText()).trim() : null;
  await page.screenshot({ path: `${env("SHOTS")}/console-queue.png`, fullPage: true });

  await row.locator("a").first().click();
  await page.waitForURL(`${base}/console/reviews/${cand}/${app}`);
  out.itemState = (await page.textContent("#state"))?.trim() ?? null;
  out.decideForm = (await page.locator("#decide").count()) === 1;

  // A forged form (the session's cookie, the wrong CSRF token) is refused.
  const forged = await page.request.post(`${base}/console/reviews/${cand}/${app}/decide`, {
    form: { decision: "failed", reason_code: "doc-anomaly", csrf: "forged", key: "forged-1" },
    maxRedirects: 0,
  });
  out.forgedStatus = forged.status();

  await page.check('input[name=decision][value=verified]');
  await page.selectOption("#reason_code", "liveness-low");
  await page.fill("#note", "matched the live video to the document");
  await page.screenshot({ path: `${env("SHOTS")}/console-item.png`, fullPage: true });
  await page.click("#decide button[type=submit]");
  await page.waitForURL((u) => u.pathname === "/console/reviews" && u.searchParams.has("decided"));
  out.notice = (await page.textContent("#notice"))?.trim() ?? null;
  out.rowAfter = await page.locator(`tr[data-candidate="${cand}"][data-application="${app}"]`).count();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
