//! The console's logins over real HTTP (a client that keeps cookies and
//! follows no redirect by itself): the login form's CSRF token, the login
//! throttle, `Secure` cookies by default, a logout that holds across
//! replicas, and the role matrix shared with the API.

use crate::harness::{AUDITOR_TOKEN, Options, REVIEWER_TOKEN, TestApp, at};
use reqwest::StatusCode;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use vbridge::devtools::client::started;

/// A browser's cookie jar over reqwest, by hand: every cookie is sent to
/// every path (the tests check what is set, not the browser's path rules).
pub struct Browser {
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// Every `Set-Cookie` seen, as sent.
    pub set_cookies: Vec<String>,
}

/// What came back: the status, the `Location`, the body.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the form's hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("a form with a CSRF field");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Default for Browser {
    fn default() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, cookies: HashMap::new(), set_cookies: vec![] }
    }
}

impl Browser {
    /// A browser holding these cookies (a stolen or replayed set).
    pub fn with_cookies(cookies: HashMap<String, String>) -> Browser {
        Browser { cookies, ..Default::default() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn take(&mut self, resp: reqwest::Response) -> Page {
        for sc in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let sc = sc.to_str().unwrap().to_owned();
            let (name, value) = sc.split(';').next().unwrap().split_once('=').unwrap();
            if sc.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(sc);
        }
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        Page { status: resp.status(), location, headers: resp.headers().clone(), body: resp.text().await.unwrap() }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let resp = self.http.get(url).header("cookie", self.cookie_header()).send().await.unwrap();
        self.take(resp).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let resp = self.http.post(url).header("cookie", self.cookie_header()).form(form).send().await.unwrap();
        self.take(resp).await
    }

    /// The last `Set-Cookie` of `name`.
    pub fn set_cookie(&self, name: &str) -> &str {
        self.set_cookies.iter().rev().find(|c| c.starts_with(&format!("{name}="))).expect("the cookie was set")
    }

    /// Log in with a token through the login page's form.
    pub async fn login(&mut self, base: &str, token: &str) -> Page {
        let csrf = self.get(&format!("{base}/console/login")).await.csrf();
        self.post(&format!("{base}/console/login"), &[("token", token), ("csrf", &csrf)]).await
    }
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token_logins_are_throttled_and_cookies_are_secure_by_default() {
    let mut app = TestApp::spawn("console-login").await;
    let base = app.bridge_url.clone();
    let login = format!("{base}/console/login");
    let mut b = Browser::default();
    let page = b.get(&login).await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    assert!(b.cookies.contains_key("vbridge_login_csrf"));

    // Without the form's token, with a wrong one, or without the cookie it is bound to: refused.
    let mut attempts = 0;
    for (what, token, keep_cookie) in [("none", "", true), ("wrong", "0123abcd", true), ("no cookie", &csrf, false)] {
        let mut other = Browser::default();
        if keep_cookie {
            other.cookies = b.cookies.clone();
        }
        let r = other.post(&login, &[("token", REVIEWER_TOKEN), ("csrf", token)]).await;
        attempts += 1;
        assert_eq!(r.status, 403, "{what}");
        assert!(!other.cookies.contains_key("vbridge_session"), "{what}: no session");
    }
    let r = b.post(&login, &[("token", REVIEWER_TOKEN), ("csrf", &csrf)]).await;
    attempts += 1;
    assert_eq!(r.status, 303);
    assert!(b.cookies.contains_key("vbridge_session"));
    assert_eq!(b.get(&format!("{base}/console/reviews")).await.status, 200);

    // Bad logins from one address: refused 401, then 429 once its attempts
    // are spent (10, one back every 6 s: a slow run may get one or two back).
    let mut statuses = vec![];
    while statuses.last() != Some(&429) && statuses.len() < 20 {
        let r = b.post(&login, &[("token", "guess"), ("csrf", &csrf)]).await;
        if r.status == 429 {
            assert!(r.body.contains("rate_limited"), "{}", r.body);
            assert!(r.headers.contains_key("retry-after"));
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let refused_before = statuses.len() - 1 + attempts;
    assert!((10..=12).contains(&refused_before), "429 after {refused_before} attempts: {statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 401), "{statuses:?}");
    // Even the right token waits now.
    assert_eq!(b.post(&login, &[("token", REVIEWER_TOKEN), ("csrf", &csrf)]).await.status, 429);

    // Secure by default: only the harness's explicit plain-http setting
    // (VBRIDGE_CONSOLE_INSECURE_COOKIES) took it off.
    assert!(!b.set_cookie("vbridge_session").contains("Secure"));
    app.kill_bridge();
    app.start_bridge(&[("VBRIDGE_CONSOLE_INSECURE_COOKIES", "false")]).await;
    let mut b = Browser::default();
    let r = b.login(&app.bridge_url, REVIEWER_TOKEN).await;
    assert_eq!(r.status, 303);
    for name in ["vbridge_login_csrf", "vbridge_session"] {
        let c = b.set_cookie(name);
        assert!(c.contains("; Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
    }
}

#[tokio::test]
async fn a_logged_out_session_opens_nothing_on_any_replica_and_reviewers_get_no_timeline() {
    // One session key for both replicas (as a deployment of several has).
    let key = "ab".repeat(32);
    let mut app = TestApp::spawn_with(
        "console-logout",
        Options {
            extra_env: vec![("VBRIDGE_SESSION_KEY".into(), key), ("VBRIDGE_EVIDENCE_KEY".into(), "07".repeat(32))],
            ..Default::default()
        },
    )
    .await;
    let (c, a) = ("cand-rm", "app-rm");
    assert_eq!(app.send(&started(c, a, "evt-rm-1", &at(-5))).await.status, 202);
    app.wait_for("the delivery in the store", Duration::from_secs(30), || async {
        (!app.deliveries(Some(c)).await.is_empty()).then_some(())
    })
    .await;
    let second = app.spawn_second_bridge().await;
    let two = second.client.url.trim_end_matches("/webhooks/verification").to_owned();
    let one = app.bridge_url.clone();

    // The role matrix: the console's item page shows a reviewer no
    // timeline, as the API refuses it; an auditor gets both.
    let item = format!("/console/reviews/{c}/{a}");
    let mut reviewer = Browser::default();
    assert_eq!(reviewer.login(&one, REVIEWER_TOKEN).await.status, 303);
    let page = reviewer.get(&format!("{one}{item}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(r#"id="timeline""#) && page.body.contains(r#"id="no-timeline""#), "{}", page.body);
    assert!(!page.body.contains(r#"id="chain""#));
    assert!(!page.body.contains(r#"id="evidence-pack""#), "no evidence link for a reviewer");
    let pack = format!("{one}/console/candidates/{c}/evidence");
    assert_eq!(reviewer.get(&pack).await.status, 403, "nor the page");
    let api = format!("/v1/candidates/{c}/timeline");
    assert_eq!(app.get_as(&api, Some(REVIEWER_TOKEN)).await.status(), 403, "the API agrees");
    let mut auditor = Browser::default();
    assert_eq!(auditor.login(&one, AUDITOR_TOKEN).await.status, 303);
    let page = auditor.get(&format!("{one}{item}")).await;
    assert!(page.body.contains(r#"id="timeline""#) && page.body.contains("evt-rm-1"), "{}", page.body);
    assert_eq!(app.get_as(&api, Some(AUDITOR_TOKEN)).await.status(), 200);
    // The auditor's item page links the printable evidence pack.
    assert!(page.body.contains(&format!(r#"href="/console/candidates/{c}/evidence""#)), "{}", page.body);
    let printed = auditor.get(&pack).await;
    assert_eq!(printed.status, 200);
    assert!(
        printed.body.contains("Verified offline") && printed.body.contains(&format!("{c}:{a}")),
        "{}",
        printed.body
    );

    // The cookie opens both replicas; after a logout on one, neither.
    let stolen = reviewer.cookies.clone();
    for base in [&one, &two] {
        assert_eq!(reviewer.get(&format!("{base}/console/reviews")).await.status, 200, "{base}");
    }
    let csrf = reviewer.get(&format!("{one}/console/reviews")).await.csrf();
    let out = reviewer.post(&format!("{one}/console/logout"), &[("csrf", &csrf)]).await;
    assert_eq!((out.status.as_u16(), out.location.as_deref()), (303, Some("/console/login")));
    let start = Instant::now();
    for base in [&one, &two] {
        let mut replay = Browser::with_cookies(stolen.clone());
        let r = replay.get(&format!("{base}/console/reviews")).await;
        assert_eq!((r.status.as_u16(), r.location.as_deref()), (303, Some("/console/login")), "{base}");
        let r = replay.post(&format!("{base}/console/reviews/{c}/{a}/decide"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, 401, "{base}: a form with the replayed cookie");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(second);
}
