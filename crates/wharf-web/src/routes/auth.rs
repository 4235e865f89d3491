//! Accounts in the browser: `/login`, `/join`, `/logout`, and `/settings/tokens` (the tokens
//! `hf auth login` takes).

use crate::WebState;
use crate::error::{WebResult, status_of};
use crate::format::{date_time, redirect};
use crate::routes::{ListParams, WebForm, page, page_with_status, safe_next};
use crate::session::{Chrome, Ctx, clear_session_cookie, session_cookie};
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;
use wharf_core::{Error, ErrorKind, Role};
use wharf_http::Origin;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "join.html")]
struct JoinPage {
    chrome: Chrome,
    username: String,
    email: String,
    error: Option<String>,
}

/// A redirect that also logs the browser in.
fn logged_in(state: &WebState, session: &str, to: &str) -> Response {
    let mut r = redirect(to);
    if let Some(v) = session_cookie(session, state.secure_cookies()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /login`.
pub async fn login_form(ctx: Ctx, q: ListParams) -> WebResult<Response> {
    let next = safe_next(q.get("next"));
    if ctx.caller.user.is_some() {
        return Ok(redirect(&next));
    }
    page(&LoginPage {
        chrome: ctx.chrome(),
        next,
        username: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: by user name or e-mail address.
pub async fn log_in(
    State(s): State<WebState>,
    ctx: Ctx,
    Origin(origin): Origin,
    WebForm(f): WebForm<LoginForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let next = safe_next(f.next.as_deref());
    match s.hub.log_in(f.username.trim(), &f.password, &origin).await {
        Ok(session) => Ok(logged_in(&s, &session, &next)),
        Err(e) if e.kind != wharf_core::ErrorKind::Internal => page_with_status(
            status_of(e.kind),
            &LoginPage {
                chrome: ctx.chrome(),
                next,
                username: f.username,
                error: Some(match e.kind {
                    wharf_core::ErrorKind::Unauthorized => {
                        "Wrong user name, e-mail address or password.".into()
                    }
                    _ => e.message,
                }),
            },
        ),
        Err(e) => Err(e.into()),
    }
}

/// `GET /join`.
pub async fn join_form(ctx: Ctx) -> WebResult<Response> {
    if ctx.caller.user.is_some() {
        return Ok(redirect("/"));
    }
    page(&JoinPage {
        chrome: ctx.chrome(),
        username: String::new(),
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /join`: creates the account and logs it in.
pub async fn sign_up(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<JoinForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    match s
        .hub
        .sign_up(f.username.trim(), f.email.trim(), &f.password)
        .await
    {
        Ok(session) => Ok(logged_in(&s, &session, "/")),
        Err(e) if e.kind != wharf_core::ErrorKind::Internal => page_with_status(
            status_of(e.kind),
            &JoinPage {
                chrome: ctx.chrome(),
                username: f.username,
                email: f.email,
                error: Some(e.message),
            },
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn log_out(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<CsrfOnly>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    if let Some(session) = &ctx.session {
        s.hub.log_out(session).await?;
    }
    let mut r = redirect("/");
    if let Some(v) = clear_session_cookie(s.secure_cookies()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub role: &'static str,
    pub created: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    user: String,
    tokens: Vec<TokenRow>,
    /// The value of a token just created: shown once, never stored in clear.
    new_token: Option<String>,
    new_label: String,
    base_url: String,
}

async fn tokens_page(
    s: &WebState,
    ctx: &Ctx,
    new_token: Option<String>,
    new_label: String,
) -> WebResult<Response> {
    let user = ctx.require_user()?;
    let tokens = s
        .hub
        .list_tokens(&ctx.caller)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            label: t.label,
            role: t.role.as_str(),
            created: date_time(t.created_at),
        })
        .collect();
    page(&TokensPage {
        chrome: ctx.chrome(),
        user,
        tokens,
        new_token,
        new_label,
        base_url: ctx.base_url.clone(),
    })
}

/// `GET /settings/tokens`.
pub async fn tokens(State(s): State<WebState>, ctx: Ctx) -> WebResult<Response> {
    tokens_page(&s, &ctx, None, String::new()).await
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    role: String,
}

/// `POST /settings/tokens`: creates a token and shows its value this once. The hub decides the
/// label (trimmed, at most 100 characters, a default when empty).
pub async fn create_token(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<NewTokenForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    ctx.require_user()?;
    let role = match f.role.as_str() {
        "read" => Role::Read,
        "write" | "" => Role::Write,
        _ => return Err(Error::bad_request("A token's role is read or write.").into()),
    };
    let created = s.hub.create_token_for(&ctx.caller, role, &f.label).await?;
    tokens_page(&s, &ctx, Some(created.value), created.label).await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// `POST /settings/tokens/revoke`.
pub async fn revoke_token(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<RevokeForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    ctx.require_user()?;
    // An id that is no number names no token of the caller's, as the hub says of unknown ones.
    let id: i64 =
        f.id.trim()
            .parse()
            .map_err(|_| Error::new(ErrorKind::NotFound, "Token not found"))?;
    s.hub.revoke_token_id(&ctx.caller, id).await?;
    Ok(redirect("/settings/tokens"))
}
