//! The sync protocol's core, free of HTTP: the hybrid logical clock (`clock`), field-level
//! last-writer-wins merge rules (`merge`), the device-writable collections (`records`), stamp nodes by number (`nodes`), the log of
//! pushed mutations (`mutation_log`), the one
//! writer of synced records (`writer`), applying a pushed batch (`push`), signed cursors
//! (`cursor`), pages of changes (`pull`) and WatermelonDB's protocol translated onto them
//! (`watermelon`).

pub mod clock;
pub mod cursor;
pub mod merge;
pub mod mutation_log;
pub mod nodes;
pub mod pull;
pub mod push;
pub mod records;
pub mod retention;
pub mod review;
pub mod watermelon;
pub mod writer;
