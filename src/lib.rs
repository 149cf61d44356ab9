//! The pipelines release-promotion service.
//!
//! Layers, from the inside out: [`domain`] (pure rules), [`store`] (entities and queries),
//! [`service`] (the use cases), [`grpc`] (the tonic adapters), and [`startup`], which
//! assembles them into a server.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod proto;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
