//! Small helpers with no better home: clocks, coverage counters, the
//! counter-set macro every component declares its counters with, and the
//! process-wide actor meters and statistics sources (`metrics`).

pub mod bounded;
pub mod counters;
pub mod coverage;
pub mod crc;
pub mod gauge;
pub mod inherit;
pub mod metrics;
pub mod time;
