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
mod hot_path;
mod hygiene;
mod keys;
mod lifecycle;
mod limits;
mod migrate;
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
mod users;
