//! sea-orm entities, one per table. See the migration crate for the constraints.

pub mod app;
pub mod audit_event;
pub mod auto_promotion_claim;
pub mod auto_promotion_trigger;
pub mod config_var;
pub mod coupling;
pub mod freeze;
pub mod pipeline;
pub mod pipeline_event;
pub mod pipeline_event_outbox;
pub mod promotion;
pub mod promotion_event;
pub mod promotion_target;
pub mod promotion_vote;
pub mod release;
pub mod release_status;
pub mod rollback;
pub mod token;
