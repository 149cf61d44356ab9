//! The generated protobuf types, tonic servers and clients of package `pipelines.v1`.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("pipelines.v1");

/// The encoded descriptors of every `.proto` file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pipelines_descriptor");
