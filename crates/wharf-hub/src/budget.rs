//! Memory the server lends to requests that must hold what they read (commit operations,
//! uploaded shards): each reserves what it may hold before it reads, from one server-wide
//! budget, so that many large requests at once wait their turn (or are told to come back)
//! instead of growing the process without bound. A reservation grows with what the request
//! has actually read (never with what it merely announced, so a client that trickles a large
//! body holds only what it sent); a request that cannot grow within a while is refused as
//! busy rather than waiting for memory another request holds.

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
    permit: OwnedSemaphorePermit,
    budget: Arc<Semaphore>,
}

/// How much a reservation grows at a time.
const STEP_MIB: u32 = 8;

impl MemoryReservation {
    /// Bytes this reservation covers.
    pub fn bytes(&self) -> u64 {
        u64::from(self.permit.num_permits() as u32) << 20
    }

    /// Makes the reservation cover at least `bytes` (growing by steps); `Busy` when the budget
    /// has no room within a while.
    pub async fn cover(&mut self, bytes: u64) -> Result<()> {
        while self.bytes() < bytes {
            let held = self.permit.num_permits() as u32;
            if held >= BUDGET_MIB {
                return Err(busy());
            }
            let step = STEP_MIB.min(BUDGET_MIB - held);
            let more = acquire(&self.budget, step).await?;
            self.permit.merge(more);
        }
        Ok(())
    }
}

fn busy() -> Error {
    Error::new(
        ErrorKind::Busy,
        "The server is busy with other large requests; try again in a moment",
    )
}

async fn acquire(budget: &Arc<Semaphore>, mib: u32) -> Result<OwnedSemaphorePermit> {
    match tokio::time::timeout(WAIT, budget.clone().acquire_many_owned(mib)).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(Error::internal("memory budget closed")),
        Err(_) => Err(busy()),
    }
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

impl MemoryBudget {
    /// Reserves `bytes` (rounded up to MiB, at most the whole budget).
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<MemoryReservation> {
        let mib = bytes.div_ceil(1 << 20).clamp(1, u64::from(BUDGET_MIB)) as u32;
        let permit = acquire(&self.mib, mib).await?;
        Ok(MemoryReservation {
            permit,
            budget: self.mib.clone(),
        })
    }
}

impl Hub {
    /// Reserves `bytes` (rounded up to MiB, at most the whole budget) for a request body;
    /// grow it with [`MemoryReservation::cover`] as more is read.
    pub async fn reserve_memory(&self, bytes: u64) -> Result<MemoryReservation> {
        self.memory.reserve(bytes).await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn reservations_grow_with_what_is_read_and_give_it_back() {
        let (_dir, hub) = crate::web::test_support::hub().await;
        let mut r = hub.reserve_memory(1).await.expect("reserve");
        assert_eq!(r.bytes(), 1 << 20);
        r.cover(20 << 20).await.expect("grow");
        assert!(r.bytes() >= 20 << 20 && r.bytes() < 30 << 20);
        let left = hub.memory.mib.available_permits();
        drop(r);
        assert_eq!(hub.memory.mib.available_permits(), left + 25);
    }
}
