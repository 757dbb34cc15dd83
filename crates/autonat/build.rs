//! Compiles the AutoNAT v1 and v2 protobufs with prost-build, parsed by protox (pure Rust, so
//! no system `protoc` is needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(
        ["proto/autonat_v2.proto", "proto/autonat_v1.proto"],
        ["proto"],
    )?;
    prost_build::Config::new().compile_fds(files)?;
    Ok(())
}
