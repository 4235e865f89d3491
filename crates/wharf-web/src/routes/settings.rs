//! `/{ns}/{name}/settings`: visibility, gating, rename or transfer, and deletion (typed
//! confirmation). The hub checks the caller's rights again on every change.

use crate::WebState;
use crate::error::{WebError, WebResult};
use crate::format::{redirect, repo_url};
use crate::routes::files::repo_head;
use crate::routes::{Target, WebForm, page};
use crate::session::{Chrome, Ctx};
use crate::views::RepoHead;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wharf_core::Role;
use wharf_hub::{GatedSetting, RepoAddress, SettingsUpdate};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    repo: RepoHead,
    gated: String,
    owners: Vec<String>,
    action: String,
}

async fn admin_head(s: &WebState, ctx: &Ctx, t: &Target) -> WebResult<(RepoHead, RepoAddress)> {
    ctx.require_user()?;
    let (head, addr) = repo_head(s, ctx, t, "settings").await?;
    if !head.can_admin {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            "Only the repository's administrators can change its settings.",
        ));
    }
    Ok((head, addr))
}

/// `GET /{ns}/{name}/settings`.
pub async fn show(State(s): State<WebState>, ctx: Ctx, t: Target) -> WebResult<Response> {
    let (head, _) = admin_head(&s, &ctx, &t).await?;
    let handle = s
        .hub
        .repo(&ctx.caller, &t.addr, wharf_hub::Need::Read)
        .await?;
    let mut owners: Vec<String> = ctx.caller.name().map(str::to_string).into_iter().collect();
    owners.extend(
        ctx.caller
            .orgs
            .iter()
            .filter(|(_, role)| *role >= Role::Write)
            .map(|(org, _)| org.name.clone()),
    );
    if !owners.contains(&head.namespace) {
        owners.push(head.namespace.clone());
    }
    page(&SettingsPage {
        chrome: ctx.chrome(),
        gated: handle.repo.gated.clone().unwrap_or_else(|| "off".into()),
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
    let (head, addr) = admin_head(&s, &ctx, &t).await?;
    let settings_url = format!("{}/settings", head.url);
    match f.action.as_str() {
        "visibility" => {
            let private = match f.visibility.as_str() {
                "private" => true,
                "public" => false,
                _ => return Err(WebError::bad_request("Visibility is public or private.")),
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
                _ => return Err(WebError::bad_request("Gating is off, auto or manual.")),
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
            let handle = s
                .hub
                .repo(&ctx.caller, &moved, wharf_hub::Need::Read)
                .await?;
            let r = &handle.repo;
            Ok(redirect(&repo_url(r.repo_type, &r.namespace, &r.name)))
        }
        "delete" => {
            if f.confirm.trim() != head.id {
                return Err(WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Type {} to confirm the deletion.", head.id),
                ));
            }
            s.hub.delete_repo(&ctx.caller, &addr).await?;
            Ok(redirect(&format!(
                "/{}",
                crate::format::segment(&head.namespace)
            )))
        }
        _ => Err(WebError::bad_request("Unknown settings action.")),
    }
}
