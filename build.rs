//! Compiles the protobuf contract in `proto/` with protox (no system `protoc`), generating
//! the tonic servers and clients and the encoded file descriptor set served by reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_FILES: &[&str] = &[
    "pipelines/v1/resources.proto",
    "pipelines/v1/pipeline_service.proto",
    "pipelines/v1/coupling_service.proto",
    "pipelines/v1/app_service.proto",
    "pipelines/v1/release_service.proto",
    "pipelines/v1/promotion_service.proto",
    "pipelines/v1/audit_service.proto",
    "pipelines/v1/account_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTO_FILES, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("pipelines_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::grpc::codec::ProtobufCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
