//! The broker's background work: relayed messages and webhook pushes, the bounce
//! listener, the retention sweeper. Each runs use cases of `service/` on a timer, when
//! woken, or when a peer connects. Beside them, `memory` gives the allocator's free
//! memory back to the system after a burst.

pub mod bounces;
pub mod memory;
pub mod relay;
pub mod sweeper;
