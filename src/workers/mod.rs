//! The broker's background work: relayed messages and webhook pushes, the bounce
//! listener, the retention sweeper. Each runs use cases of `service/` on a timer, when
//! woken, or when a peer connects.

pub mod bounces;
pub mod relay;
pub mod sweeper;
