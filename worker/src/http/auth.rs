//! Authentication of the operator API (docs/contract.md §5), as a layer: a bearer
//! token is looked up by its SHA-256 among the configured grants
//! (`VBRIDGE_API_TOKENS="<role>:<subject>:<sha256-hex>,..."`); the route's
//! layer then demands one of its roles. No credential: 401 `unauthenticated`;
//! the wrong role: 403 `forbidden`. Only hashes of tokens are ever held.
//!
//! In dev mode (`vbridge dev`) a request without a credential passes as the
//! subject `dev` with every role; a credential that is sent is still checked.

use super::error::ApiError;
use crate::audit::refusals::{Claimed, Refusal, Refusals, Source};
use crate::metrics::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Reviewer,
    Admin,
    Ops,
    Auditor,
    Gate,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Reviewer, Role::Admin, Role::Ops, Role::Auditor, Role::Gate];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Auditor => "auditor",
            Role::Gate => "gate",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role \"{s}\" (known: reviewer, admin, ops, auditor, gate)"))
    }
}

/// Who made a request: the actor recorded for what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub roles: BTreeSet<Role>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("entry #{0} is not <role>:<subject>:<sha256-hex>")]
    Shape(usize),
    #[error("entry #{0}: {1}")]
    Role(usize, String),
    #[error("entry #{0}: the hash is not 64 hex characters (the SHA-256 of the token)")]
    Hash(usize),
}

/// The configured credentials, by the SHA-256 of their token.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    by_hash: HashMap<[u8; 32], Principal>,
}

impl Grants {
    /// Parse `VBRIDGE_API_TOKENS`. A subject named twice with one hash gets
    /// every role its entries name.
    pub fn parse(csv: &str) -> Result<Grants, GrantError> {
        let mut g = Grants::default();
        for (i, entry) in csv.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let n = i + 1;
            let mut parts = entry.splitn(3, ':');
            let (Some(role), Some(subject), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(GrantError::Shape(n));
            };
            if subject.is_empty() {
                return Err(GrantError::Shape(n));
            }
            let role: Role = role.parse().map_err(|e| GrantError::Role(n, e))?;
            let bytes: [u8; 32] = hex::decode(hash.to_ascii_lowercase())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(GrantError::Hash(n))?;
            g.by_hash
                .entry(bytes)
                .or_insert_with(|| Principal { subject: subject.to_owned(), roles: BTreeSet::new() })
                .roles
                .insert(role);
        }
        Ok(g)
    }

    /// A plain token given whole (the older `VBRIDGE_API_TOKEN`): it may read
    /// timelines, as it always could.
    pub fn add_plain(&mut self, token: &str, subject: &str, roles: &[Role]) {
        let p = self
            .by_hash
            .entry(token_hash(token))
            .or_insert_with(|| Principal { subject: subject.to_owned(), roles: BTreeSet::new() });
        p.roles.extend(roles.iter().copied());
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Subjects and their roles, without any hash (for `config show`).
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .by_hash
            .values()
            .map(|p| {
                let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
                format!("{}: {}", p.subject, roles.join(", "))
            })
            .collect();
        out.sort();
        out
    }

    fn lookup(&self, token: &str) -> Option<&Principal> {
        self.by_hash(&token_hash(token))
    }

    /// The grant of a token, by its SHA-256.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<&Principal> {
        self.by_hash.get(hash)
    }
}

/// SHA-256 of a bearer token: how configured tokens are held.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What the auth layer needs.
#[derive(Clone)]
pub struct Auth {
    pub grants: Arc<Grants>,
    /// Dev mode: a request without a credential passes with every role.
    pub open: bool,
    pub metrics: Arc<Metrics>,
    /// Where refusals are counted for the audit log's `access` chain
    /// (aggregated, flushed once a window: `crate::audit::refusals`).
    pub refusals: Arc<Refusals>,
    /// The policy's trace header, read from refused requests.
    pub trace_header: String,
    /// OIDC JWTs, when configured (`VBRIDGE_OIDC_*`).
    pub oidc: Option<Arc<super::oidc::Oidc>>,
}

impl Auth {
    /// Who the request's credential names, if any is valid: a configured
    /// token (by its hash), else an OIDC JWT of the configured issuer.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        self.authenticate_until(authorization).await.map(|(p, _)| p)
    }

    /// As [`Auth::authenticate`], with the credential's own end (an OIDC
    /// token's `exp`, Unix seconds; a configured token has none): a console
    /// session made from it must not outlive it.
    pub async fn authenticate_until(&self, authorization: Option<&str>) -> Result<(Principal, Option<i64>), ApiError> {
        let token = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        match token {
            Some(t) => {
                if let Some(p) = self.grants.lookup(t) {
                    return Ok((p.clone(), None));
                }
                match &self.oidc {
                    Some(oidc) if super::oidc::looks_like_jwt(t) => match oidc.verify(t).await {
                        Ok(v) => Ok((v.principal, Some(v.exp))),
                        Err(super::oidc::OidcError::Keys(e)) => {
                            tracing::error!(error = %e, "OIDC keys unavailable");
                            Err(ApiError::Unavailable(
                                "the identity provider's keys cannot be fetched right now".into(),
                            ))
                        }
                        Err(e @ super::oidc::OidcError::Invalid(_)) => {
                            tracing::warn!(error = %e, "OIDC token refused");
                            Err(ApiError::Unauthenticated)
                        }
                    },
                    _ => Err(ApiError::Unauthenticated),
                }
            }
            None if self.open => {
                Ok((Principal { subject: "dev".into(), roles: Role::ALL.into_iter().collect() }, None))
            }
            None => Err(ApiError::Unauthenticated),
        }
    }
}

/// The layer's state: the authenticator and the roles a route accepts.
#[derive(Clone)]
pub struct Require {
    pub auth: Auth,
    pub any_of: &'static [Role],
}

/// Middleware: authenticate, check the role, and hand the [`Principal`] to
/// the handler through the request's extensions. A request with no
/// credential at all is refused before anything else is done for it.
pub async fn require(State(r): State<Require>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if authorization.is_none() && !r.auth.open {
        r.auth.refused(&req, "unauthenticated", "");
        return Err(ApiError::Unauthenticated);
    }
    let principal = match r.auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(e) => {
            r.auth.refused(&req, "unauthenticated", "");
            return Err(e);
        }
    };
    if let Err(e) = r.auth.authorize(&principal, r.any_of) {
        r.auth.refused(&req, "forbidden", &principal.subject);
        return Err(e);
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

impl Auth {
    /// Whether `principal` holds one of `any_of`.
    pub fn authorize(&self, principal: &Principal, any_of: &[Role]) -> Result<(), ApiError> {
        if any_of.iter().any(|role| principal.roles.contains(role)) {
            return Ok(());
        }
        let names: Vec<&str> = any_of.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(names.join(" or ")))
    }

    /// A request the layer refused, keyed by its route template.
    fn refused(&self, req: &Request, status: &str, subject: &str) {
        let template = req.extensions().get::<MatchedPath>().map_or("(unmatched)", |m| m.as_str());
        let route = format!("{} {template}", req.method());
        self.note(req.headers(), status, subject, &route, req.uri().path());
    }

    /// Count, log (throttled) and note a refused request; `what` is the
    /// request as the caller names it ("GET /console/reviews/..."), kept
    /// truncated.
    pub fn denied(&self, headers: &axum::http::HeaderMap, status: &str, subject: &str, what: String) {
        self.note(headers, status, subject, &what, &what);
    }

    fn note(&self, headers: &axum::http::HeaderMap, status: &str, subject: &str, route: &str, path: &str) {
        let code = match status {
            "unauthenticated" => {
                self.metrics.api_unauthenticated.inc();
                "unauthenticated"
            }
            _ => {
                self.metrics.api_forbidden.inc();
                "forbidden"
            }
        };
        let trace_id = super::request_trace_id(headers, &self.trace_header);
        let refusal = Refusal {
            source: Source::OperatorApi,
            code,
            route,
            path,
            subject,
            claimed: Claimed::default(),
            trace_id: trace_id.as_str(),
        };
        if let Some(suppressed) = self.refusals.note(refusal) {
            let path = crate::audit::refusals::truncated(path, crate::audit::refusals::SAMPLE_BYTES);
            tracing::warn!(%subject, %route, %path, status = code, suppressed, trace_id = %trace_id, "operator API: request refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(t: &str) -> String {
        hex::encode(Sha256::digest(t.as_bytes()))
    }

    #[test]
    fn grants_parse_and_merge_roles() {
        let csv = format!("ops:alice:{},auditor:alice:{}, reviewer:bob:{}", hash("a"), hash("a"), hash("b"));
        let g = Grants::parse(&csv).unwrap();
        let a = g.lookup("a").unwrap();
        assert_eq!(a.subject, "alice");
        assert_eq!(a.roles, [Role::Ops, Role::Auditor].into_iter().collect());
        assert!(g.lookup("c").is_none());
        assert_eq!(Grants::parse("ops:x").unwrap_err(), GrantError::Shape(1));
        assert!(matches!(Grants::parse(&format!("root:x:{}", hash("a"))), Err(GrantError::Role(1, _))));
        assert_eq!(Grants::parse("ops:x:abc").unwrap_err(), GrantError::Hash(1));
    }

    #[test]
    fn closed_unless_dev() {
        let auth = |open| Auth {
            grants: Arc::new(Grants::default()),
            open,
            metrics: Default::default(),
            refusals: Default::default(),
            trace_header: "X-Trace-Id".into(),
            oidc: None,
        };
        let (closed, open) = (auth(false), auth(true));
        let now = |f| futures::executor::block_on(f);
        assert!(matches!(now(closed.authenticate(None)), Err(ApiError::Unauthenticated)));
        assert_eq!(now(open.authenticate(None)).unwrap().subject, "dev");
        assert!(matches!(now(open.authenticate(Some("Bearer nope"))), Err(ApiError::Unauthenticated)));
    }
}
