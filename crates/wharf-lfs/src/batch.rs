//! Wire types of `POST …/info/lfs/objects/batch` (git-lfs batch API, plus the Hub's usage).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    pub operation: String,
    #[serde(default)]
    pub transfers: Vec<String>,
    pub objects: Vec<BatchObjectRequest>,
    #[serde(default)]
    pub hash_algo: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<BatchRef>,
}

#[derive(Debug, Deserialize)]
pub struct BatchRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct BatchObjectRequest {
    pub oid: String,
    pub size: i64,
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub transfer: &'static str,
    pub objects: Vec<BatchObject>,
    pub hash_algo: &'static str,
}

#[derive(Debug, Serialize)]
pub struct BatchObject {
    pub oid: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub actions: BTreeMap<&'static str, Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

#[derive(Debug, Serialize)]
pub struct Action {
    pub href: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, String>,
    pub expires_in: u64,
}

#[derive(Debug, Serialize)]
pub struct ObjectError {
    pub code: u16,
    pub message: String,
}

/// Body of the verify call.
#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    pub oid: String,
    pub size: i64,
}

impl BatchObject {
    pub fn with_error(
        oid: String,
        size: i64,
        code: u16,
        message: impl Into<String>,
    ) -> BatchObject {
        BatchObject {
            oid,
            size,
            authenticated: None,
            actions: BTreeMap::new(),
            error: Some(ObjectError {
                code,
                message: message.into(),
            }),
        }
    }
}
