//! The serverless inference API, as `InferenceClient(model=f"{endpoint}/models/{ns}/{name}")`
//! calls it: `POST /models/{ns}/{name}` (optionally `?revision=`), and
//! `POST /models/{ns}/{name}/pipeline/{task}` to ask a model for one of its tasks. The same
//! routes answer under `/hf-inference/…`, the path the client builds for the Hub's router.
//! Without the `inference` feature the routes exist and say the server was built without it.

use crate::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

/// Inference bodies are JSON text (prompts, sentences, contexts).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["", "/hf-inference"] {
        router = router
            .route(
                &format!("{prefix}/models/{{ns}}/{{name}}"),
                post(run::infer),
            )
            .route(
                &format!("{prefix}/models/{{ns}}/{{name}}/pipeline/{{task}}"),
                post(run::infer),
            );
    }
    router.layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[cfg(feature = "inference")]
mod run {
    use crate::AppState;
    use crate::error::{ApiResult, loading_response};
    use crate::extract::{Auth, QueryPairs};
    use axum::body::{Body, Bytes};
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, HeaderValue, header};
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;
    use wharf_core::{Error, RepoType};
    use wharf_hub::{
        InferenceEvents, InferenceReply, InferenceRequest, RepoAddress, SUPPORTED_MODELS, Task,
        legacy_zero_shot_answer, wants_stream,
    };

    #[derive(serde::Deserialize)]
    pub struct ModelPath {
        ns: String,
        name: String,
        #[serde(default)]
        task: Option<String>,
    }

    pub async fn infer(
        State(s): State<AppState>,
        Path(p): Path<ModelPath>,
        query: QueryPairs,
        headers: HeaderMap,
        Auth(caller): Auth,
        body: Bytes,
    ) -> ApiResult<Response> {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("The request body is not valid JSON: {e}")))?;
        let req = InferenceRequest {
            addr: RepoAddress::new(RepoType::Model, &p.ns, &p.name),
            revision: query.get("revision").map(str::to_string),
            task: p.task.as_deref().map(task_of).transpose()?,
            wait_for_model: header_flag(&headers, "x-wait-for-model"),
            body,
        };
        let response = if wants_stream(&req.body) {
            match s.hub.infer_stream(&caller, req).await? {
                InferenceReply::Ready(events) => event_stream(events),
                InferenceReply::Loading {
                    message,
                    estimated_time,
                } => loading_response(&message, estimated_time),
            }
        } else {
            let legacy = legacy_zero_shot(&headers, &req.body);
            match s.hub.infer(&caller, req).await? {
                InferenceReply::Ready(answer) => match legacy {
                    Some(sequence) => axum::Json(legacy_zero_shot_answer(&sequence, &answer)),
                    None => axum::Json(answer),
                }
                .into_response(),
                InferenceReply::Loading {
                    message,
                    estimated_time,
                } => loading_response(&message, estimated_time),
            }
        };
        Ok(response)
    }

    fn task_of(tag: &str) -> Result<Task, Error> {
        Task::from_pipeline_tag(tag).ok_or_else(|| {
            Error::bad_request(format!(
                "Unknown or unsupported task '{tag}'. Supported: {SUPPORTED_MODELS}"
            ))
        })
    }

    /// huggingface_hub before 1.0 reads zero-shot answers in the classic shape
    /// (`{"sequence", "labels", "scores"}`), newer clients a list of `{label, score}`: no one
    /// answer fits both, so the client's version decides. A zero-shot body is the one with
    /// `parameters.candidate_labels` and a text input; returns that text.
    fn legacy_zero_shot(headers: &HeaderMap, body: &Value) -> Option<String> {
        let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
        if !agent.starts_with("huggingface_hub/0.") {
            return None;
        }
        body.pointer("/parameters/candidate_labels")?;
        body.get("inputs")?.as_str().map(str::to_string)
    }

    fn header_flag(headers: &HeaderMap, name: &str) -> bool {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
    }

    /// Server-sent events, one `data:{json}` per token, sent as the worker produces them.
    fn event_stream(events: InferenceEvents) -> Response {
        let mut response = Body::from_stream(wharf_hub::sse_frames(events)).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

#[cfg(not(feature = "inference"))]
mod run {
    use crate::error::{ApiError, ApiResult};
    use axum::response::Response;
    use wharf_core::ErrorKind;

    pub async fn infer() -> ApiResult<Response> {
        Err(ApiError::new(
            ErrorKind::BadRequest,
            "Inference is not built into this server (it was compiled without the `inference` feature)",
        ))
    }
}
