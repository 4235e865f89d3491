//! Repository lifecycle and info.

use super::RepoPath;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, BaseUrl, QueryPairs};
use crate::routes::commit::JsonBody;
use crate::{AppState, json};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json as j};
use wharf_core::{Error, ErrorKind, RepoId, RepoType};
use wharf_hub::{GatedSetting, Need, RepoAddress, SettingsUpdate};

fn parse_type(t: Option<&str>) -> ApiResult<RepoType> {
    match t {
        None => Ok(RepoType::Model),
        Some(s) => RepoType::from_singular(s)
            .ok_or_else(|| Error::bad_request(format!("Invalid repo type '{s}'")).into()),
    }
}

/// `private: bool` (older clients) or `visibility` (newer ones); `protected` counts as private.
fn visibility(private: Option<bool>, visibility: Option<&str>) -> ApiResult<Option<bool>> {
    match visibility {
        Some("public") => Ok(Some(false)),
        Some("private") | Some("protected") => Ok(Some(true)),
        Some(other) => Err(Error::bad_request(format!("Invalid visibility '{other}'")).into()),
        None => Ok(private),
    }
}

#[derive(Deserialize)]
pub struct CreateRepo {
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default, rename = "type")]
    repo_type: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
}

fn repo_url(base: &str, t: RepoType, id: &str) -> String {
    format!("{base}/{}{id}", t.url_prefix())
}

pub async fn create_repo(
    State(s): State<AppState>,
    Auth(caller): Auth,
    BaseUrl(base): BaseUrl,
    JsonBody(req): JsonBody<CreateRepo>,
) -> ApiResult<Response> {
    let t = parse_type(req.repo_type.as_deref())?;
    let private = visibility(req.private, req.visibility.as_deref())?.unwrap_or(false);
    // Some clients send the full id in `name`.
    let (ns, name) = match (req.organization.as_deref(), req.name.split_once('/')) {
        (None, Some((ns, name))) => (Some(ns.to_string()), name.to_string()),
        (org, _) => (org.map(str::to_string), req.name.clone()),
    };
    match s
        .hub
        .create_repo(&caller, t, ns.as_deref(), &name, private)
        .await
    {
        Ok(repo) => {
            let id = format!("{}/{}", repo.namespace, repo.name);
            Ok(Json(j!({ "url": repo_url(&base, t, &id), "name": id, "id": format!("{:024x}", repo.id) })).into_response())
        }
        Err(e) if e.kind == ErrorKind::Conflict => {
            // The client's exist_ok path reads `url` from the 409 body.
            let id = format!(
                "{}/{}",
                ns.as_deref().or(caller.name()).unwrap_or_default(),
                name
            );
            let mut response = ApiError::from(e.clone()).into_response();
            *response.body_mut() = axum::body::Body::from(
                j!({ "error": e.message, "url": repo_url(&base, t, &id) }).to_string(),
            );
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteRepo {
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default, rename = "type")]
    repo_type: Option<String>,
}

pub async fn delete_repo(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(req): JsonBody<DeleteRepo>,
) -> ApiResult<Json<Value>> {
    let t = parse_type(req.repo_type.as_deref())?;
    let (ns, name) = match (req.organization.as_deref(), req.name.split_once('/')) {
        (None, Some((ns, name))) => (ns.to_string(), name.to_string()),
        (Some(org), _) => (org.to_string(), req.name.clone()),
        (None, None) => (
            caller.name().unwrap_or_default().to_string(),
            req.name.clone(),
        ),
    };
    s.hub
        .delete_repo(&caller, &RepoAddress::new(t, &ns, &name))
        .await?;
    Ok(Json(j!({})))
}

#[derive(Deserialize)]
pub struct MoveRepo {
    #[serde(rename = "fromRepo")]
    from_repo: String,
    #[serde(rename = "toRepo")]
    to_repo: String,
    #[serde(default, rename = "type")]
    repo_type: Option<String>,
}

pub async fn move_repo(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(req): JsonBody<MoveRepo>,
) -> ApiResult<Json<Value>> {
    let t = parse_type(req.repo_type.as_deref())?;
    let from = RepoId::parse(&req.from_repo)?;
    let to = RepoId::parse(&req.to_repo)?;
    s.hub
        .move_repo(
            &caller,
            &RepoAddress::new(t, &from.namespace, &from.name),
            &to.namespace,
            &to.name,
        )
        .await?;
    Ok(Json(j!({})))
}

#[derive(Deserialize)]
pub struct Settings {
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    gated: Option<Value>,
}

fn gated_setting(v: Option<&Value>) -> ApiResult<Option<GatedSetting>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(false)) => Ok(Some(GatedSetting::Off)),
        Some(Value::String(s)) if s == "auto" => Ok(Some(GatedSetting::Auto)),
        Some(Value::String(s)) if s == "manual" => Ok(Some(GatedSetting::Manual)),
        Some(Value::String(s)) if s == "false" => Ok(Some(GatedSetting::Off)),
        Some(other) => {
            Err(Error::bad_request(format!("Invalid value for 'gated': {other}")).into())
        }
    }
}

pub async fn update_settings(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(p): Path<RepoPath>,
    JsonBody(req): JsonBody<Settings>,
) -> ApiResult<Json<Value>> {
    let update = SettingsUpdate {
        private: visibility(req.private, req.visibility.as_deref())?,
        gated: gated_setting(req.gated.as_ref())?,
    };
    s.hub
        .update_settings(&caller, &p.address()?, update)
        .await?;
    Ok(Json(j!({})))
}

pub async fn repo_info(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    info(&s, &caller, p.address()?, None, &q).await
}

pub async fn repo_info_at(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let addr = p.address()?;
    info(&s, &caller, addr, Some(p.rev()), &q).await
}

async fn info(
    s: &AppState,
    caller: &wharf_hub::Caller,
    addr: RepoAddress,
    rev: Option<&str>,
    q: &QueryPairs,
) -> ApiResult<Json<Value>> {
    let info = s.hub.repo_info(caller, &addr, rev).await?;
    let expand = q.all("expand");
    Ok(Json(json::repo_info(
        &info,
        q.flag("blobs", false),
        &expand,
    )))
}

/// `auth-check`: 200 when the caller may download the repo's files (`GatedRepo` for a gated
/// repository the caller has no access to, as the client expects).
pub async fn auth_check(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(p): Path<RepoPath>,
) -> ApiResult<Json<Value>> {
    s.hub.repo(&caller, &p.address()?, Need::Download).await?;
    Ok(Json(j!({})))
}
