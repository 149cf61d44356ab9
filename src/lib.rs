//! The pipelines release-promotion service.
//!
//! Layers, from the inside out: [`domain`] (pure rules), [`store`] (entities and queries),
//! [`views`] (what reads return), [`lifecycle`] (every state change of a promotion),
//! [`service`] (the use cases), [`engine`] (runs promotions), [`grpc`] and [`rest`] (the
//! adapters), [`auth`] (tokens), and [`startup`], which assembles them into a server.

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod deploy;
pub mod domain;
pub mod engine;
pub mod error;
pub mod fanout;
pub mod grpc;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline_events;
pub mod progress;
pub mod proto;
pub mod rate_limits;
pub mod read_model;
pub mod rest;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod views;
