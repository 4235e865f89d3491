//! `/{ns}/{name}/settings`: visibility, gating, rename or transfer, and deletion (typed
//! confirmation). The hub checks the caller's rights again on every change.

use crate::WebState;
use crate::error::WebResult;
use crate::format::{redirect, repo_url};
use crate::routes::{Target, WebForm, page};
use crate::session::{Chrome, Ctx};
use crate::views::RepoHead;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use wharf_core::Error;
use wharf_hub::{GatedSetting, Need, Repo, RepoAddress, SettingsUpdate};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    repo: RepoHead,
    gated: String,
    owners: Vec<String>,
    action: String,
}

/// The repository, for its administrators only (the hub decides; visitors log in first).
async fn admin_repo(s: &WebState, ctx: &Ctx, t: &Target) -> WebResult<(Repo, RepoHead)> {
    ctx.require_user()?;
    let handle = s.hub.repo(&ctx.caller, &t.addr, Need::Admin).await?;
    let head = RepoHead::new(&handle.repo, &ctx.caller, "settings");
    Ok((handle.repo, head))
}

/// `GET /{ns}/{name}/settings`.
pub async fn show(State(s): State<WebState>, ctx: Ctx, t: Target) -> WebResult<Response> {
    let (repo, head) = admin_repo(&s, &ctx, &t).await?;
    // Where it may move: the namespaces the hub lets the caller write to, and where it is.
    let mut owners = s.hub.writable_namespaces(&ctx.caller);
    if !owners.contains(&head.namespace) {
        owners.push(head.namespace.clone());
    }
    page(&SettingsPage {
        chrome: ctx.chrome(),
        gated: repo.gated.clone().unwrap_or_else(|| "off".into()),
        owners,
        action: format!("{}/settings", head.url),
        repo: head,
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    gated: String,
    #[serde(default)]
    new_owner: String,
    #[serde(default)]
    new_name: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /{ns}/{name}/settings` with `action` = `visibility`, `gated`, `move` or `delete`.
pub async fn update(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    WebForm(f): WebForm<SettingsForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let (_, head) = admin_repo(&s, &ctx, &t).await?;
    let addr = head.address();
    let settings_url = format!("{}/settings", head.url);
    match f.action.as_str() {
        "visibility" => {
            let private = match f.visibility.as_str() {
                "private" => true,
                "public" => false,
                _ => return Err(Error::bad_request("Visibility is public or private.").into()),
            };
            let update = SettingsUpdate {
                private: Some(private),
                gated: None,
            };
            s.hub.update_settings(&ctx.caller, &addr, update).await?;
            Ok(redirect(&settings_url))
        }
        "gated" => {
            let gated = match f.gated.as_str() {
                "off" => GatedSetting::Off,
                "auto" => GatedSetting::Auto,
                "manual" => GatedSetting::Manual,
                _ => return Err(Error::bad_request("Gating is off, auto or manual.").into()),
            };
            let update = SettingsUpdate {
                private: None,
                gated: Some(gated),
            };
            s.hub.update_settings(&ctx.caller, &addr, update).await?;
            Ok(redirect(&settings_url))
        }
        "move" => {
            let owner = match f.new_owner.trim() {
                "" => head.namespace.clone(),
                o => o.to_string(),
            };
            let name = f.new_name.trim();
            s.hub.move_repo(&ctx.caller, &addr, &owner, name).await?;
            let moved = RepoAddress::new(addr.repo_type, &owner, name);
            let handle = s.hub.repo(&ctx.caller, &moved, Need::Read).await?;
            let r = &handle.repo;
            Ok(redirect(&repo_url(r.repo_type, &r.namespace, &r.name)))
        }
        "delete" => {
            if f.confirm.trim() != head.id {
                let message = format!("Type {} to confirm the deletion.", head.id);
                return Err(Error::unprocessable(message).into());
            }
            s.hub.delete_repo(&ctx.caller, &addr).await?;
            Ok(redirect(&format!(
                "/{}",
                crate::format::segment(&head.namespace)
            )))
        }
        _ => Err(Error::bad_request("Unknown settings action.").into()),
    }
}
