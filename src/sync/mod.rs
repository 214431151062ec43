//! The sync protocol's core, free of HTTP and storage: the hybrid logical clock (`clock`) and
//! the field-level last-writer-wins merge rules (`merge`). Push and pull build on these.

pub mod clock;
pub mod merge;
