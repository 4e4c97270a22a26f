//! Small helpers with no better home: clocks and coverage counters.

pub mod coverage;
pub mod time;
