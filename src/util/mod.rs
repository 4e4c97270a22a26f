//! Small helpers with no better home: clocks, coverage counters and the
//! counter-set macro every component declares its counters with.

pub mod counters;
pub mod coverage;
pub mod time;
