//! diemdanh: an offline-first sync backend for field training attendance.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
