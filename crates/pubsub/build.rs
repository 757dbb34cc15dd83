//! Compiles the pubsub protobufs with prost-build, parsed by protox (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["proto/rpc.proto"], ["proto"])?;
    prost_build::Config::new()
        // Binary fields as `Bytes`: decoding from a `Bytes` buffer then slices it, no copy.
        .bytes(["."])
        .compile_fds(files)?;
    Ok(())
}
