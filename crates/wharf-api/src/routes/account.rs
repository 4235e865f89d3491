//! `whoami-v2` and `validate-yaml`.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Auth;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use wharf_core::RepoType;
use wharf_core::time::format_ms;

pub async fn whoami(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Value>> {
    let me = state.hub.whoami(&caller)?;
    let orgs: Vec<Value> = me
        .orgs
        .iter()
        .map(|(org, role)| {
            json!({ "type": "org", "id": format!("{:024x}", org.id), "name": org.name, "fullname": org.fullname,
                    "roleInOrg": role.as_str(), "avatarUrl": "", "isEnterprise": false })
        })
        .collect();
    let u = &me.user;
    Ok(Json(json!({
        "type": "user", "id": format!("{:024x}", u.id), "name": u.name, "fullname": u.fullname,
        "email": u.email, "emailVerified": true, "avatarUrl": "", "isPro": false, "canPay": false,
        "periodEnd": null, "orgs": orgs,
        "auth": { "type": "access_token", "accessToken": {
            "displayName": me.token_label, "role": me.token_role.as_str(), "createdAt": format_ms(u.created_at) } }
    })))
}

#[derive(Deserialize)]
pub struct ValidateYaml {
    content: String,
    #[serde(default, rename = "repoType")]
    repo_type: Option<String>,
}

pub async fn validate_yaml(body: crate::routes::commit::JsonBody<ValidateYaml>) -> Response {
    let req = body.0;
    let repo_type = req
        .repo_type
        .as_deref()
        .and_then(RepoType::from_singular)
        .unwrap_or(RepoType::Model);
    let v = wharf_hub::validate_card(&req.content, repo_type);
    let as_messages = |list: &[String]| {
        list.iter()
            .map(|m| json!({ "message": m }))
            .collect::<Vec<_>>()
    };
    let body = json!({ "errors": as_messages(&v.errors), "warnings": as_messages(&v.warnings) });
    let status = if v.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(first) = v.errors.first() {
        response
            .headers_mut()
            .insert("x-error-message", crate::error::header_safe(first));
    }
    response
}
