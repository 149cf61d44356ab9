//! Integration tests: each test starts the real server on 127.0.0.1:0 with a fresh database
//! and talks to it with the generated tonic clients over a real socket.
//!
//! The suite runs on SQLite by default and on PostgreSQL when `TEST_DATABASE_URL` is set;
//! each test then gets its own freshly created database.

mod access;
mod akkeris_cli;
mod akkeris_flow;
mod apps;
mod audit;
mod board;
mod bounded;
mod cli;
mod couplings;
mod faults;
mod freezes;
mod helpers;
mod heroku;
mod metrics;
mod openapi;
mod paging;
mod pipeline_stream;
mod pipelines;
mod policies;
mod policy_processes;
mod processes;
mod promotions;
mod query_parameters;
mod races;
mod read_model;
mod releases;
mod request_ids;
mod rest;
mod rest_promotions;
mod scale;
mod server;
mod tls;
mod verification;
mod webhook;
