//! keyward over real HTTP: each test starts its own server on a port from the OS with its
//! own temporary SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod browser;
mod cli;
mod cluster;
mod console;
mod contention;
mod crash;
mod deploy;
mod dialects;
mod errors;
mod files;
mod fixtures;
mod hot_path;
mod hygiene;
mod imported_keys;
mod keys;
mod lifecycle;
mod limits;
mod migrate;
mod moving_in;
mod nginx;
mod on_postgres;
mod openapi;
mod operations;
mod postgres;
mod ratelimits;
mod readme;
mod revocations;
mod seed000;
mod seed001;
mod seed002;
mod services;
mod shutdown;
mod tls;
mod token_matrix;
mod uniqueness;
mod usage;
mod users;
