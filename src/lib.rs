//! keyward: a self-hosted API key server.
//!
//! `domain` holds the model and rules, `store` the SQL, `web` the HTTP plumbing that `api`
//! (the native API), `dialects` (the three seed APIs) and `ui` (the web console) stand on;
//! [`Application`] wires them to an HTTP server.

pub mod api;
pub mod cli;
pub mod config;
pub mod dialects;
pub mod domain;
pub mod files;
pub mod fixtures;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod web;

pub use startup::{Application, StartError};
