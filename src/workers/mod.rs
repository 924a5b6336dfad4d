//! The broker's background work: relayed messages and webhook pushes, the retention
//! sweeper. Each runs use cases of `service/` on a timer or when woken.

pub mod relay;
pub mod sweeper;
