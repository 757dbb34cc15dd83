//! Compiles `proto/plaintext.proto` with prost-build, parsed by protox (pure Rust, so no
//! system `protoc` is needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/plaintext.proto");
    let descriptors = protox::compile(["proto/plaintext.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
