fn main() {
    println!("cargo:rerun-if-changed=vbridge/v1/bridge.proto");
    let mut config = prost_build::Config::new();
    // BTreeMap keeps field order stable, which workflow determinism needs.
    config.btree_map(["."]);
    config.type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]");
    config
        .compile_protos(&["vbridge/v1/bridge.proto"], &["."])
        .expect("compiling proto/vbridge/v1/bridge.proto needs protoc (Debian: apt-get install protobuf-compiler)");
}
