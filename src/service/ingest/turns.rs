//! Turns of the bulk uploads: at most `parallel` handled at once by the broker, and at
//! most half of them (at least one) by one agency, so that an agency cannot take every
//! turn with slow uploads while others wait. A turn is held from before the body is
//! read until the records are stored, and bounds the memory uploads take together.

use crate::service::{Error, ErrorKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a bulk request waits for its turn before it is answered `503`.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The turns of one broker.
#[derive(Debug)]
pub struct UploadTurns {
    parallel: usize,
    all: Arc<Semaphore>,
    by_agency: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A turn: held until dropped.
#[derive(Debug)]
pub struct Turn {
    _agency: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl UploadTurns {
    /// `parallel` turns in all.
    pub fn new(parallel: usize) -> Self {
        let parallel = parallel.max(1);
        Self {
            parallel,
            all: Arc::new(Semaphore::new(parallel)),
            by_agency: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a turn for `agency_id`: its own first, then one of the broker's; after
    /// [`QUEUE_WAIT`], `503` with `Retry-After`.
    pub async fn take(&self, agency_id: &str) -> Result<Turn, Error> {
        self.take_within(agency_id, QUEUE_WAIT).await
    }

    async fn take_within(&self, agency_id: &str, wait: Duration) -> Result<Turn, Error> {
        let mine = {
            let mut by_agency = self.by_agency.lock().unwrap_or_else(|p| p.into_inner());
            by_agency
                .entry(agency_id.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new((self.parallel / 2).max(1))))
                .clone()
        };
        let taken = tokio::time::timeout(wait, async {
            let agency = mine.acquire_owned().await.ok()?;
            let all = self.all.clone().acquire_owned().await.ok()?;
            Some(Turn {
                _agency: agency,
                _all: all,
            })
        })
        .await;
        taken.ok().flatten().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "The broker is handling {} bulk uploads at once, yours included if you sent \
                     another; retry in a few seconds.",
                    self.parallel
                ),
            )
            .with_retry_after(5)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn an_agency_takes_at_most_half_the_turns_and_others_still_get_theirs() {
        let turns = UploadTurns::new(2);
        let first = turns.take_within("agy_a", SHORT).await.unwrap();
        let refused = turns.take_within("agy_a", SHORT).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        let _other = turns.take_within("agy_b", SHORT).await.unwrap();
        assert!(
            turns.take_within("agy_c", SHORT).await.is_err(),
            "both turns are taken"
        );
        drop(first);
        assert!(turns.take_within("agy_a", SHORT).await.is_ok());
    }
}
