//! keyward: a self-hosted API key server.
//!
//! `domain` holds the model and rules, `store` the SQL, `http` the native API, `dialects`
//! the three seed APIs, `ui` the web console; [`Application`] wires them to an HTTP server.

pub mod api;
pub mod cli;
pub mod config;
pub mod dialects;
pub mod domain;
pub mod files;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod web;

pub use startup::{Application, StartError};
