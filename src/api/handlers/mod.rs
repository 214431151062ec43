//! Handlers, one module per area. Each extracts, calls the domain on the blocking pool and
//! responds; no SQL lives here.

pub mod auth;
pub mod health;
pub mod imports;
pub mod materials;
pub mod reorganisation;
pub mod reports;
pub mod resources;
pub mod sync;
pub mod users;
pub mod watermelon;
