//! diemdanh: an offline-first sync backend for field training attendance.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod fault;
pub mod metrics;
pub mod reports;
pub mod storage;
pub mod sync;
