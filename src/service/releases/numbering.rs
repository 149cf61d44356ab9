//! Release creates on one app wait their turn in memory before they take a database
//! connection. The database serializes numbering per app anyway
//! ([`crate::store::lock_release_numbering`]); without this queue a burst of creates on
//! one app would each hold a pooled connection while waiting for that lock, and every
//! other request of the process would wait behind them for a connection.

use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Queues, each shared by the apps whose ids fall on it: creates on two such apps take
/// turns too, which costs them little and bounds the memory.
const QUEUES: usize = 64;

pub(super) struct NumberingQueues {
    queues: Vec<Mutex<()>>,
}

impl NumberingQueues {
    pub(super) fn new() -> Self {
        Self {
            queues: (0..QUEUES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits until this process's earlier creates on the app have committed.
    pub(super) async fn wait_turn(&self, app_id: Uuid) -> MutexGuard<'_, ()> {
        let index = (app_id.as_u128() % QUEUES as u128) as usize;
        self.queues[index].lock().await
    }
}
