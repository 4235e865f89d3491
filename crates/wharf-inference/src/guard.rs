//! Every entry point of the crate runs behind [`no_panic`]: a panic in model code (ours,
//! candle's or the tokenizer's) on some unforeseen input becomes an `Internal` error of that
//! request instead of unwinding into the server's worker. The model is immutable while it
//! serves, so nothing is left half-updated by an unwinding request.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{InferenceError, Result};

/// Runs `f`, turning a panic into `InferenceError::Internal` that names `what` was running.
pub(crate) fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panicked(what, &*payload)))
}

/// The error a caught panic becomes; its message is kept for the server's log.
pub(crate) fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> InferenceError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    InferenceError::Internal(format!("panic while {what}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let out: Result<()> = no_panic("testing", || panic!("boom {}", 1));
        assert!(matches!(out, Err(InferenceError::Internal(ref m)) if m.contains("boom 1")));
        assert_eq!(no_panic("testing", || Ok(3)).ok(), Some(3));
    }
}
