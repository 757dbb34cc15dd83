//! Compiles the Kademlia protobuf with prost-build, parsed by protox (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["proto/dht.proto"], ["proto"])?;
    prost_build::Config::new()
        // Peer ids and addresses as `Bytes`: decoding a message slices its one buffer instead
        // of allocating per peer and per address (answers carry 20 peers each).
        .bytes([".dht.pb.Message.Peer"])
        .compile_fds(files)?;
    Ok(())
}
