//! Small helpers with no better home: clocks.

pub mod time;
