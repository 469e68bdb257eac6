fn main() {
    println!("cargo:rerun-if-changed=vbridge/v1/bridge.proto");
    let mut config = prost_build::Config::new();
    // BTreeMap keeps field order stable, which workflow determinism needs.
    config.btree_map(["."]);
    config.type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]");
    // Records are hashed as JSON: a field added later is left out while empty,
    // so records stored before it keep their hashes.
    config.field_attribute(".vbridge.v1.DecisionRecord.detail", "#[serde(skip_serializing_if = \"String::is_empty\")]");
    config
        .compile_protos(&["vbridge/v1/bridge.proto"], &["."])
        .expect("compiling proto/vbridge/v1/bridge.proto needs protoc (Debian: apt-get install protobuf-compiler)");
}
