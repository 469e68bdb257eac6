//! The review console: server-rendered pages (askama templates, no SPA) for
//! reviewers and auditors. A login (a token pasted, or "Sign in with" the
//! OIDC issuer, [`login`]) starts a signed-cookie session ([`session`]);
//! every form carries its CSRF token. Reviewers decide items through the
//! same Temporal update as the API (`review_decide`), as themselves. The
//! queue is the store's projection, as for the API. What each role sees and
//! may do is the API's role matrix ([`Action`]): the item page shows the
//! audit timeline only to the roles that may read it through the API.

pub mod login;
pub mod session;
pub mod sso;
pub mod throttle;

use crate::http::HttpState;
use crate::http::auth::{Auth, Principal};
use crate::http::roles::Action;
use crate::review::queue::{self, Cursor, Filter, Item};
use crate::temporal::human::{self, MoveError, Verification};
use askama::Template;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session::{Session, SessionKey};
use vbridge_core::domain::{ApplicationId, CandidateId, TraceId};

/// What the console needs besides the HTTP state.
pub struct Console {
    pub auth: Auth,
    pub key: SessionKey,
    /// Mark the cookies `Secure` (unless configured for plain http).
    pub secure: bool,
    /// Logged-out sessions, in the store (every replica sees them).
    pub revocations: std::sync::Arc<dyn crate::store::sessions::Revocations>,
    pub throttle: throttle::LoginThrottle,
    /// "Sign in with the issuer", when `VBRIDGE_OIDC_CLIENT_ID` is set.
    pub sso: Option<sso::Sso>,
}

/// How long a decision waits for the queue to show it before the redirect.
const PROJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn routes() -> crate::http::Routes<HttpState> {
    crate::http::Routes::new()
        .route("/console", get(|| async { Redirect::to("/console/reviews") }))
        .route("/console/login", get(login::page).post(login::login))
        .route("/console/login/oidc", get(login::sso_start))
        .route("/console/login/oidc/callback", get(login::sso_callback))
        .route("/console/logout", post(login::logout))
        .route("/console/reviews", get(reviews))
        .route("/console/reviews/{candidate}/{application}", get(item))
        .route("/console/reviews/{candidate}/{application}/decide", post(decide))
        .route("/console/candidates/{candidate}/evidence", get(evidence))
        .route("/console/static/console.css", get(css))
        .route("/console/static/countdown.js", get(js))
        .map(|r| r.layer(axum::middleware::from_fn(security_headers)))
}

/// Every console answer: no framing, no inline script, no caching.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css"), (header::CACHE_CONTROL, "max-age=300")], include_str!("static/console.css"))
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=300")],
        include_str!("static/countdown.js"),
    )
}

/// Who is logged in, as the header shows it.
struct Who {
    subject: String,
    roles: String,
    csrf: String,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The session of a request and who it is now, when valid and not logged
/// out; the answer to give when the store cannot say (503, failing closed).
async fn session_of(s: &HttpState, headers: &HeaderMap) -> Result<Option<(Session, Principal)>, Box<Response>> {
    let Some(sess) = session::cookie_value(headers).and_then(|v| Session::decode(&v, &s.console.key, now())) else {
        return Ok(None);
    };
    match s.console.revocations.is_revoked(&sess.sid).await {
        Ok(true) => return Ok(None),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "console: session revocations unreadable");
            return Err(Box::new(error_page(StatusCode::SERVICE_UNAVAILABLE, None, "The store cannot be read now.")));
        }
    }
    Ok(sess.principal(&s.console.auth.grants).map(|p| (sess, p)))
}

fn who(sess: &Session, p: &Principal) -> Who {
    Who {
        subject: p.subject.clone(),
        roles: p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        csrf: sess.csrf.clone(),
    }
}

fn render(status: StatusCode, t: impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    who: Option<Who>,
    status: String,
    message: String,
}

fn error_page(status: StatusCode, who: Option<Who>, message: impl Into<String>) -> Response {
    render(status, ErrorPage { who, status: status.to_string(), message: message.into() })
}

/// The session allowed `action`, or the answer to give instead: the login
/// page for no session (GET), 401 for a form, 403 for the wrong role.
async fn require(
    s: &HttpState,
    headers: &HeaderMap,
    action: Action,
    what: String,
) -> Result<(Session, Principal), Box<Response>> {
    let Some((sess, p)) = session_of(s, headers).await? else {
        s.console.auth.denied(headers, "unauthenticated", "", what.clone());
        return Err(Box::new(if what.starts_with("GET ") {
            Redirect::to("/console/login").into_response()
        } else {
            error_page(StatusCode::UNAUTHORIZED, None, "Your session has ended; log in again.")
        }));
    };
    if let Err(e) = s.console.auth.authorize(&p, action.roles()) {
        s.console.auth.denied(headers, "forbidden", &p.subject, what);
        return Err(Box::new(error_page(StatusCode::FORBIDDEN, Some(who(&sess, &p)), e.to_string())));
    }
    Ok((sess, p))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Template)]
#[template(path = "console/reviews.html")]
struct ReviewsPage {
    who: Option<Who>,
    notice: Option<String>,
    items: Vec<Item>,
    next: Option<String>,
    reason_codes: Vec<String>,
    filter_queue: String,
    filter_code: String,
    filter_overdue: bool,
}

#[derive(Deserialize)]
struct ReviewsQuery {
    queue: Option<String>,
    reason_code: Option<String>,
    overdue: Option<bool>,
    cursor: Option<String>,
    decided: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn reviews(State(s): State<HttpState>, headers: HeaderMap, Query(q): Query<ReviewsQuery>) -> Response {
    let (sess, p) = match require(&s, &headers, Action::ReadQueue, "GET /console/reviews".into()).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let after = match q.cursor.as_deref().map(Cursor::parse).transpose() {
        Ok(c) => c,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, Some(who(&sess, &p)), e),
    };
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let filter =
        Filter { queue: nonempty(q.queue), overdue: q.overdue.filter(|o| *o), reason_code: nonempty(q.reason_code) };
    let page = match crate::review::list(s.store.as_ref(), &filter, after.as_ref(), queue::DEFAULT_PAGE).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "console: queue unreadable");
            return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(who(&sess, &p)), "The store cannot be read now.");
        }
    };
    render(
        StatusCode::OK,
        ReviewsPage {
            who: Some(who(&sess, &p)),
            notice: q.decided.map(|d| format!("Decided {d}.")),
            items: page.items,
            next: page.next,
            reason_codes: s.policy.review_reason_codes().to_vec(),
            filter_queue: filter.queue.unwrap_or_default(),
            filter_code: filter.reason_code.unwrap_or_default(),
            filter_overdue: filter.overdue.unwrap_or(false),
        },
    )
}

#[derive(Template)]
#[template(path = "console/item.html")]
struct ItemPage {
    who: Option<Who>,
    candidate_id: String,
    application_id: String,
    state: String,
    /// The chain's status and the timeline: only for the roles that may
    /// read timelines ([`Action::ReadTimeline`]), as through the API.
    chain: Option<String>,
    item: Option<Item>,
    error: Option<String>,
    can_decide: bool,
    /// The evidence pack's link ([`Action::ExportEvidence`]).
    can_export: bool,
    reason_codes: Vec<String>,
    csrf: String,
    /// The decide form's idempotency key: a double submit applies once.
    key: String,
    timeline: Option<Vec<crate::audit::timeline::Item>>,
}

fn verification(c: &str, a: &str) -> Result<Verification, String> {
    Ok(Verification {
        candidate_id: CandidateId::parse(c).map_err(|e| e.to_string())?,
        application_id: ApplicationId::parse(a).map_err(|e| e.to_string())?,
    })
}

/// The item page: the verification's state, the open item (if any), the
/// decide form for those who may decide, the audit timeline for those who
/// may read it.
async fn item_page(
    s: &HttpState,
    sess: &Session,
    p: &Principal,
    v: &Verification,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (c, a) = (v.candidate_id.as_str(), v.application_id.as_str());
    let timeline = match crate::audit::timeline::build(s.store.as_ref(), c, Some(a)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "console: timeline unreadable");
            return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(who(sess, p)), "The store cannot be read now.");
        }
    };
    let open = s.store.review_item(c, a).await.ok().flatten().map(|r| Item::of(r, chrono::Utc::now()));
    let chain = match &timeline.chain.broken {
        None => format!("{} records, every link intact", timeline.chain.records),
        Some(b) => format!("BROKEN at {}: {}", b.record, b.problem),
    };
    let may_read = Action::ReadTimeline.allows(p);
    render(
        status,
        ItemPage {
            who: Some(who(sess, p)),
            candidate_id: c.to_owned(),
            application_id: a.to_owned(),
            state: timeline.current_state.clone(),
            chain: may_read.then_some(chain),
            can_decide: open.is_some() && Action::Decide.allows(p),
            can_export: Action::ExportEvidence.allows(p),
            item: open,
            error,
            reason_codes: s.policy.review_reason_codes().to_vec(),
            csrf: sess.csrf.clone(),
            key: uuid::Uuid::new_v4().to_string(),
            timeline: may_read.then_some(timeline.items),
        },
    )
}

#[tracing::instrument(skip_all, fields(candidate_id = %c, application_id = %a))]
async fn item(State(s): State<HttpState>, headers: HeaderMap, Path((c, a)): Path<(String, String)>) -> Response {
    let (sess, p) = match require(&s, &headers, Action::ReadQueue, format!("GET /console/reviews/{c}/{a}")).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match verification(&c, &a) {
        Ok(v) => item_page(&s, &sess, &p, &v, None, StatusCode::OK).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, Some(who(&sess, &p)), e),
    }
}

/// The candidate's evidence pack, printable (auditors, as through the API);
/// the signed file itself is `GET /v1/candidates/{c}/evidence-pack`.
#[tracing::instrument(skip_all, fields(candidate_id = %c))]
async fn evidence(State(s): State<HttpState>, headers: HeaderMap, Path(c): Path<String>) -> Response {
    use crate::audit::evidence::{self, EvidenceError};
    let (sess, p) =
        match require(&s, &headers, Action::ExportEvidence, format!("GET /console/candidates/{c}/evidence")).await {
            Ok(x) => x,
            Err(r) => return *r,
        };
    if let Err(e) = CandidateId::parse(&c) {
        return error_page(StatusCode::BAD_REQUEST, Some(who(&sess, &p)), e.to_string());
    }
    let key = s.evidence_key.as_deref();
    match evidence::export(s.store.as_ref(), &s.policy, key, &c, &p.subject).await {
        Ok(pack) => axum::response::Html(evidence::to_html(&pack, key.expect("a pack was signed"))).into_response(),
        Err(e @ (EvidenceError::NoKey | EvidenceError::TooLarge(_))) => {
            error_page(StatusCode::CONFLICT, Some(who(&sess, &p)), e.to_string())
        }
        Err(e @ EvidenceError::Unknown(_)) => error_page(StatusCode::NOT_FOUND, Some(who(&sess, &p)), e.to_string()),
        Err(EvidenceError::Store(e)) => {
            tracing::error!(error = %e, "console: evidence pack unreadable");
            error_page(StatusCode::SERVICE_UNAVAILABLE, Some(who(&sess, &p)), "The store cannot be read now.")
        }
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

/// A reviewer decides from the item page: the same update as the API, as
/// the session's subject.
#[tracing::instrument(skip_all, fields(candidate_id = %c, application_id = %a, trace_id))]
async fn decide(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path((c, a)): Path<(String, String)>,
    Form(f): Form<DecideForm>,
) -> Response {
    let (sess, p) = match require(&s, &headers, Action::Decide, format!("POST /console/reviews/{c}/{a}/decide")).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if !sess.csrf_ok(&f.csrf) {
        s.console.auth.denied(
            &headers,
            "forbidden",
            &p.subject,
            format!("POST /console/reviews/{c}/{a}/decide (CSRF)"),
        );
        return error_page(StatusCode::FORBIDDEN, Some(who(&sess, &p)), "The form's CSRF token does not match.");
    }
    let v = match verification(&c, &a) {
        Ok(v) => v,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, Some(who(&sess, &p)), e),
    };
    let Some(fw) = s.temporal.forwarder() else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(who(&sess, &p)), "Temporal is not connected yet.");
    };
    let key = f.key.trim();
    let request_id = if key.is_empty() || key.len() > crate::http::review::MAX_IDEMPOTENCY_KEY {
        uuid::Uuid::new_v4().to_string()
    } else {
        key.to_owned()
    };
    let trace_id = TraceId::new_random();
    tracing::Span::current().record("trace_id", trace_id.as_str());
    let d = vbridge_proto::ReviewDecision {
        decision: f.decision.clone(),
        reason_code: f.reason_code,
        note: f.note,
        actor: p.subject.clone(),
        trace_id: trace_id.as_str().to_owned(),
        request_id,
    };
    match human::decide(s.store.as_ref(), &fw, &v, d).await {
        Ok(view) => {
            s.metrics.review_decisions.inc();
            // Read your own write: the queue is the log's projection, which
            // the decision reaches when its record is stored (within
            // moments); the page that follows should not still list it.
            let deadline = tokio::time::Instant::now() + PROJECTION_WAIT;
            while matches!(s.store.review_item(&c, &a).await, Ok(Some(_))) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let notice = format!("{c}/{a}: {}", view.state);
            let notice = percent_encoding::utf8_percent_encode(&notice, percent_encoding::NON_ALPHANUMERIC);
            Redirect::to(&format!("/console/reviews?decided={notice}")).into_response()
        }
        Err(MoveError::Refused(r)) => {
            let status = if r.code == vbridge_core::review::CONFLICT {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            item_page(&s, &sess, &p, &v, Some(r.message), status).await
        }
        Err(e @ MoveError::Unknown(_)) => item_page(&s, &sess, &p, &v, Some(e.to_string()), StatusCode::CONFLICT).await,
        Err(e) => {
            tracing::error!(error = %e, "console: decision not taken");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(who(&sess, &p)),
                "The decision could not be taken now; try again.",
            )
        }
    }
}
