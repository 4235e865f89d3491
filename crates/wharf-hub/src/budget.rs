//! Memory the server lends to requests that must hold what they read (commit operations,
//! uploaded shards): each reserves what it may hold before it reads, from one server-wide
//! budget, so that many large requests at once wait their turn (or are told to come back)
//! instead of growing the process without bound. A reservation is all at once, so two
//! requests never each hold part of what the other needs.

use crate::Hub;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wharf_core::{Error, ErrorKind, Result};

/// The budget, in MiB.
const BUDGET_MIB: u32 = 1024;
/// How long a request waits for its share before it is refused as busy.
const WAIT: Duration = Duration::from_secs(30);

/// What a request holds while it runs; dropping it gives the memory back.
#[derive(Debug)]
pub struct MemoryReservation {
    _permit: OwnedSemaphorePermit,
}

pub(crate) struct MemoryBudget {
    mib: Arc<Semaphore>,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            mib: Arc::new(Semaphore::new(BUDGET_MIB as usize)),
        }
    }
}

impl Hub {
    /// Reserves `bytes` (rounded up to MiB, at most the whole budget) for a request body.
    pub async fn reserve_memory(&self, bytes: u64) -> Result<MemoryReservation> {
        let mib = bytes.div_ceil(1 << 20).clamp(1, u64::from(BUDGET_MIB)) as u32;
        let acquire = self.memory.mib.clone().acquire_many_owned(mib);
        match tokio::time::timeout(WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(MemoryReservation { _permit: permit }),
            Ok(Err(_)) => Err(Error::internal("memory budget closed")),
            Err(_) => Err(Error::new(
                ErrorKind::Busy,
                "The server is busy with other large requests; try again in a moment",
            )),
        }
    }
}
