//! Integration tests: the real server over HTTP, every suite on SQLite and on PostgreSQL.

mod support;

mod audit;
mod auth;
mod authz;
mod backup;
mod cli;
mod console;
mod contract;
mod convergence;
mod deploy;
mod faults;
mod field_app;
mod imports;
mod limits;
mod materials;
mod metrics;
mod multi_instance;
mod organisers;
mod plans;
mod reports;
mod resources;
mod schema;
mod schemathesis;
mod scope;
mod sync;
mod upgrade;
mod watermelon;
