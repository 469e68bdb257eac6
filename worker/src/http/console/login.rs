//! Logging in and out of the console.
//!
//! - **A token pasted** (`POST /console/login`): checked like a bearer token,
//!   once; the session keeps its hash, never the token. The form carries a
//!   CSRF token: the login page sets a random `vbridge_login_csrf` cookie
//!   (`SameSite=Strict`) and the form holds its MAC under the session key,
//!   so another site cannot log a browser in as someone else.
//! - **Sign in with the issuer** (`GET /console/login/oidc`, and its
//!   callback): see [`super::sso`]; `state` protects it.
//! - Every attempt spends one of its source's attempts ([`super::throttle`]):
//!   past them, 429.
//! - **Logging out** revokes the session id in the store until the
//!   session's own end: the cookie, replayed, no longer opens anything, on
//!   any replica.

use super::session::{self, Session};
use super::sso::{FLOW_COOKIE, Sso, SsoError};
use super::{CsrfForm, error_page, now, render, session_of};
use crate::http::HttpState;
use crate::http::auth::Principal;
use crate::http::roles::Action;
use askama::Template;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const CSRF_COOKIE: &str = "vbridge_login_csrf";
const CSRF_PATH: &str = "/console/login";

/// The peer address of the request's connection.
pub struct Source(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Source, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(Source(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    who: Option<super::Who>,
    error: Option<String>,
    hours: i64,
    csrf: String,
    /// The issuer to sign in with, when configured.
    sso: Option<String>,
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(cookie).expect("a cookie is ASCII"));
    resp
}

/// The login page, answering `status`, with a CSRF token for its form (and
/// the cookie it is bound to, when the browser has none yet).
fn login_page(s: &HttpState, headers: &HeaderMap, status: StatusCode, error: Option<String>) -> Response {
    let key = &s.console.key;
    let held = session::named_cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 32);
    let value = held.clone().unwrap_or_else(session::random_hex);
    let page = LoginPage {
        who: None,
        error,
        hours: session::LIFETIME_SECS / 3600,
        csrf: session::mac_hex(key, &format!("login-csrf:{value}")),
        sso: s.console.sso.as_ref().map(|sso| sso.issuer().to_owned()),
    };
    let resp = render(status, page);
    if held.is_some() {
        return resp;
    }
    with_cookie(resp, &session::cookie(CSRF_COOKIE, &value, CSRF_PATH, "Strict", 3600, s.console.secure))
}

pub async fn page(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    login_page(&s, &headers, StatusCode::OK, None)
}

fn throttled(s: &HttpState, headers: &HeaderMap) -> Response {
    let mut resp = login_page(
        s,
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        Some("Too many login attempts from your address (rate_limited); wait a minute.".into()),
    );
    let wait = super::throttle::REFILL.as_secs();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    resp
}

/// A new session for `p` (until `until` at the latest), and the redirect
/// into the console.
fn open_session(
    s: &HttpState,
    p: &Principal,
    token_hash: Option<String>,
    until: Option<i64>,
    to: Response,
) -> Response {
    let now = now();
    let sess = Session::new(p, token_hash, now, until);
    tracing::info!(subject = %p.subject, until = sess.exp, "console login");
    let value = sess.encode(&s.console.key);
    with_cookie(to, &session::set_cookie(Some((&value, sess.exp - now)), s.console.secure))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// A token login.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(s): State<HttpState>,
    source: Source,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !s.console.throttle.attempt(source.0) {
        s.console.auth.denied(&headers, "unauthenticated", "", "POST /console/login (throttled)".into());
        return throttled(&s, &headers);
    }
    let bound = session::named_cookie(&headers, CSRF_COOKIE)
        .map(|v| session::mac_hex(&s.console.key, &format!("login-csrf:{v}")));
    if !bound.is_some_and(|b| session::same(&b, &f.csrf)) {
        s.console.auth.denied(&headers, "forbidden", "", "POST /console/login (CSRF)".into());
        let error = Some("The login form has expired or did not come from this console; try again.".into());
        return login_page(&s, &headers, StatusCode::FORBIDDEN, error);
    }
    let token = f.token.trim();
    let bearer = format!("Bearer {token}");
    let (p, until) = match s.console.auth.authenticate_until((!token.is_empty()).then_some(bearer.as_str())).await {
        Ok((p, _)) if !Action::ReadQueue.allows(&p) => {
            s.console.auth.denied(&headers, "forbidden", &p.subject, "POST /console/login".into());
            let error = Some("This credential has no console role (reviewer or auditor).".into());
            return login_page(&s, &headers, StatusCode::FORBIDDEN, error);
        }
        Ok((p, Some(until))) if until <= now() => {
            // Within the verifier's minute of leeway, but a session of it
            // would be over before it began.
            s.console.auth.denied(&headers, "unauthenticated", &p.subject, "POST /console/login (expired)".into());
            return login_page(&s, &headers, StatusCode::UNAUTHORIZED, Some("That token has expired.".into()));
        }
        Ok(x) => x,
        Err(crate::http::error::ApiError::Unavailable(m)) => {
            return login_page(&s, &headers, StatusCode::SERVICE_UNAVAILABLE, Some(m));
        }
        Err(_) => {
            s.console.auth.denied(&headers, "unauthenticated", "", "POST /console/login".into());
            let error = Some("That token is not valid.".into());
            return login_page(&s, &headers, StatusCode::UNAUTHORIZED, error);
        }
    };
    let hash = crate::http::auth::token_hash(token);
    let configured = s.console.auth.grants.by_hash(&hash).is_some();
    open_session(&s, &p, configured.then(|| hex::encode(hash)), until, Redirect::to("/console/reviews").into_response())
}

/// End the session: revoke its id in the store (every replica refuses the
/// cookie from now on), then clear the cookie.
pub async fn logout(State(s): State<HttpState>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    match session_of(&s, &headers).await {
        Ok(Some((sess, _))) => {
            if !sess.csrf_ok(&f.csrf) {
                return error_page(StatusCode::FORBIDDEN, None, "The form's CSRF token does not match your session.");
            }
            if let Err(e) = s.console.revocations.revoke(&sess.sid, sess.exp, now()).await {
                tracing::error!(error = %e, "console: a logout could not be recorded");
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "The logout could not be recorded now; try again (your session is still open).",
                );
            }
            tracing::info!(subject = %sess.sub, "console logout");
        }
        Ok(None) => {}
        Err(r) => return *r,
    }
    with_cookie(Redirect::to("/console/login").into_response(), &session::set_cookie(None, s.console.secure))
}

/// "Sign in with the issuer": to the issuer's authorization endpoint.
pub async fn sso_start(State(s): State<HttpState>, source: Source, headers: HeaderMap) -> Response {
    let Some(sso) = s.console.sso.as_ref() else {
        return error_page(StatusCode::NOT_FOUND, None, "Sign-in with an identity provider is not configured.");
    };
    if !s.console.throttle.attempt(source.0) {
        return throttled(&s, &headers);
    }
    match sso.start(&s.console.key, s.console.secure, now()).await {
        Ok(st) => with_cookie(Redirect::to(&st.authorize_url).into_response(), &st.set_cookie),
        Err(e) => sso_refused(&s, &headers, e),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/signed_in.html")]
struct SignedIn {
    who: Option<super::Who>,
}

/// The issuer's redirect back: the session, or why not. The flow cookie is
/// cleared whatever happens.
#[tracing::instrument(skip_all)]
pub async fn sso_callback(
    State(s): State<HttpState>,
    source: Source,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let clear = Sso::clear_cookie(s.console.secure);
    let Some(sso) = s.console.sso.as_ref() else {
        return error_page(StatusCode::NOT_FOUND, None, "Sign-in with an identity provider is not configured.");
    };
    if !s.console.throttle.attempt(source.0) {
        return with_cookie(throttled(&s, &headers), &clear);
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        let why = q.error.unwrap_or_else(|| "no code".into());
        let e = SsoError::Refused(format!("the identity provider answered: {why}"));
        return with_cookie(sso_refused(&s, &headers, e), &clear);
    };
    let flow = session::named_cookie(&headers, FLOW_COOKIE);
    let (p, exp) = match sso.finish(flow.as_deref(), &s.console.key, &code, &state, now()).await {
        Ok(x) => x,
        Err(e) => return with_cookie(sso_refused(&s, &headers, e), &clear),
    };
    if !Action::ReadQueue.allows(&p) {
        s.console.auth.denied(&headers, "forbidden", &p.subject, "GET /console/login/oidc/callback".into());
        let error = Some("Your account has no console role (reviewer or auditor).".into());
        return with_cookie(login_page(&s, &headers, StatusCode::FORBIDDEN, error), &clear);
    }
    // A page, not a redirect: browsers do not send a `SameSite=Strict`
    // cookie along a redirect chain that began at another site (the
    // issuer); the page's own navigation to the queue is same-site.
    let resp = open_session(&s, &p, None, Some(exp), render(StatusCode::OK, SignedIn { who: None }));
    with_cookie(resp, &clear)
}

fn sso_refused(s: &HttpState, headers: &HeaderMap, e: SsoError) -> Response {
    let status = match &e {
        SsoError::Issuer(_) => StatusCode::SERVICE_UNAVAILABLE,
        SsoError::Flow(_) => StatusCode::BAD_REQUEST,
        SsoError::Refused(_) => StatusCode::UNAUTHORIZED,
    };
    tracing::warn!(error = %e, "console: OIDC sign-in refused");
    if status != StatusCode::SERVICE_UNAVAILABLE {
        s.console.auth.denied(headers, "unauthenticated", "", "GET /console/login/oidc/callback".into());
    }
    login_page(s, headers, status, Some(e.to_string()))
}
