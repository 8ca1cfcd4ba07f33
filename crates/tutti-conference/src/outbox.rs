//! The webhook outbox: deliveries kept in the store from before their first attempt until
//! they are delivered, rejected or given up, so that a restart resumes them.

use uuid::Uuid;

pub use tutti_store::OutboxRecord;

use crate::service::{ConferenceService, ServiceError};

impl ConferenceService {
    /// Keeps a delivery in the outbox.
    pub fn outbox_add(&self, delivery: &OutboxRecord) -> Result<(), ServiceError> {
        Ok(self.store().outbox_add(delivery)?)
    }

    /// Records how many attempts a kept delivery has had.
    pub fn outbox_attempted(&self, id: Uuid, attempts: u32) -> Result<(), ServiceError> {
        Ok(self.store().outbox_attempted(id, attempts)?)
    }

    /// Forgets a delivery that is finished.
    pub fn outbox_remove(&self, id: Uuid) -> Result<(), ServiceError> {
        Ok(self.store().outbox_remove(id)?)
    }

    /// The deliveries kept, oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<OutboxRecord>, ServiceError> {
        Ok(self.store().outbox_pending()?)
    }

    /// Takes over the deliveries a node that is gone left in the shared outbox; returns
    /// them, oldest first, for sending.
    pub fn outbox_adopt(&self, node: &str) -> Result<Vec<OutboxRecord>, ServiceError> {
        Ok(self.store().adopt_outbox(node)?)
    }
}
