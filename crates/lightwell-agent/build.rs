//! Generates the SPIFFE Workload API's gRPC server from its protocol
//! definition (`proto/workload.proto`). `protox` compiles the file in Rust,
//! so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/workload.proto");
    let files = protox::compile(["proto/workload.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(false).build_server(true).compile_fds(files)?;
    Ok(())
}
