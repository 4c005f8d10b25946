#![no_main]
//! A shard index of arbitrary bytes next to one small valid shard.
mod common;
const SHARD: &[u8] = b"\x38\x00\x00\x00\x00\x00\x00\x00{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  \x00\x00\x80\x3f";
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::scratch("model-00001-of-00001.safetensors", SHARD);
    let index = common::scratch("model.safetensors.index.json", data);
    let _ = pareto_core::Model::open(&index);
});
