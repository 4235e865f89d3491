//! Who is looking at a page, and the CSRF token of their forms.
//!
//! A logged-in browser carries the `wharf_session` cookie (HttpOnly, SameSite=Lax, Path=/,
//! Secure behind https). Every browser also gets a random `wharf_visitor` cookie, so that
//! forms shown before logging in (login, sign-up) carry a CSRF token too: the token is bound to
//! the session when there is one, else to the visitor cookie. Every POST handler calls
//! [`Ctx::check_csrf`] before doing anything.

use crate::WebState;
use crate::error::{WebError, WebResult};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use wharf_hub::Caller;

pub const SESSION_COOKIE: &str = "wharf_session";
pub const VISITOR_COOKIE: &str = "wharf_visitor";
/// Sessions are refreshed by logging in again; the hub decides when one really ends.
const SESSION_MAX_AGE_S: u64 = 30 * 24 * 3600;

/// The request's view of the visitor: caller, CSRF token, public origin.
pub struct Ctx {
    pub caller: Caller,
    /// The session value, when the caller is logged in.
    pub session: Option<String>,
    csrf_key: String,
    /// The token every form of the page carries in its `_csrf` field.
    pub csrf: String,
    /// Origin for clone URLs: the configured public URL, else the request's Host.
    pub base_url: String,
    /// The path and query of the request (to come back to after logging in).
    pub here: String,
}

/// What templates need from [`Ctx`]: the header's user menu and the forms' token.
#[derive(Clone)]
pub struct Chrome {
    pub user: Option<String>,
    pub csrf: String,
    pub asset_version: usize,
}

impl Ctx {
    pub fn chrome(&self) -> Chrome {
        Chrome {
            user: self.caller.name().map(str::to_string),
            csrf: self.csrf.clone(),
            asset_version: crate::assets::VERSION,
        }
    }

    /// The logged-in user's name, or a redirect to the login page.
    pub fn require_user(&self) -> WebResult<String> {
        match self.caller.name() {
            Some(n) => Ok(n.to_string()),
            None => Err(WebError::login_required(&self.here)),
        }
    }

    /// Refuses the request (403) unless `given` is this visitor's CSRF token.
    pub fn check_csrf(&self, state: &WebState, given: &str) -> WebResult<()> {
        if !given.is_empty() && state.hub.check_csrf(&self.csrf_key, given) {
            Ok(())
        } else {
            Err(WebError::csrf())
        }
    }
}

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// A `Set-Cookie` value with the attributes every Wharf cookie has.
pub fn set_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .ok()
}

/// The cookie that logs a browser in.
pub fn session_cookie(session: &str, secure: bool) -> Option<HeaderValue> {
    set_cookie(SESSION_COOKIE, session, SESSION_MAX_AGE_S, secure)
}

/// The cookie that logs a browser out.
pub fn clear_session_cookie(secure: bool) -> Option<HeaderValue> {
    set_cookie(SESSION_COOKIE, "", 0, secure)
}

/// A visitor id made for this request (its cookie is set on the response).
#[derive(Clone)]
struct NewVisitor(String);

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    // Without randomness the visitor id would be guessable; a failing source is refused below.
    if getrandom::fill(&mut raw).is_err() {
        return String::new();
    }
    hex::encode(raw)
}

/// Gives every browser a `wharf_visitor` cookie, the CSRF key of its forms until it logs in.
pub async fn ensure_visitor_cookie(
    State(state): State<WebState>,
    mut req: Request,
    next: Next,
) -> Response {
    if cookie(req.headers(), VISITOR_COOKIE).is_some() {
        return next.run(req).await;
    }
    let id = random_hex(16);
    if id.is_empty() {
        return next.run(req).await;
    }
    req.extensions_mut().insert(NewVisitor(id.clone()));
    let mut response = next.run(req).await;
    if let Some(v) = set_cookie(VISITOR_COOKIE, &id, 365 * 24 * 3600, state.secure_cookies()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The origin URLs shown to people are built from.
pub fn base_url(headers: &HeaderMap, state: &WebState) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() < 256
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        });
    format!("http://{}", host.unwrap_or("localhost"))
}

impl FromRequestParts<WebState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> WebResult<Ctx> {
        let session = cookie(&parts.headers, SESSION_COOKIE);
        let caller = match &session {
            Some(s) => state.hub.session_caller(s).await.ok(),
            None => None,
        };
        let (caller, session) = match caller {
            Some(c) => (c, session),
            None => (Caller::anonymous(), None),
        };
        let visitor = cookie(&parts.headers, VISITOR_COOKIE)
            .or_else(|| parts.extensions.get::<NewVisitor>().map(|v| v.0.clone()))
            .unwrap_or_default();
        let csrf_key = match &session {
            Some(s) => s.clone(),
            None => format!("visitor:{visitor}"),
        };
        let csrf = state.hub.csrf_token(&csrf_key);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        Ok(Ctx {
            caller,
            session,
            csrf_key,
            csrf,
            base_url: base_url(&parts.headers, state),
            here,
        })
    }
}
