//! Compiles `proto/payload.proto` with prost, parsed by protox (pure Rust: no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/payload.proto");
    let descriptors = protox::compile(["proto/payload.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
