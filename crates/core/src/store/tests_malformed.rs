//! Every malformed input gets its own error variant; each test asserts the variant and that the
//! message names the evidence. Where the reference `safetensors` crate reads the same bytes, it
//! must reject them too (we are never more lenient than the reference).

use std::path::Path;

use serde_json::json;

use super::test_util::{f32_bytes, raw_bytes_file, raw_file, serialize, tempdir, write};
use super::*;
use crate::error::Error;

fn open_bytes(bytes: &[u8]) -> (Result<Model>, tempfile::TempDir) {
    let dir = tempdir();
    let path = write(dir.path(), "model.safetensors", bytes);
    (Model::open(&path), dir)
}

/// Opens `bytes` as a model, expects an error and checks the reference reader rejects them too.
fn reject(bytes: &[u8]) -> Error {
    assert!(safetensors::SafeTensors::deserialize(bytes).is_err(), "reference reader accepted it");
    match open_bytes(bytes).0 {
        Ok(_) => panic!("malformed file opened"),
        Err(e) => e,
    }
}

fn header_with(entries: serde_json::Value, data: &[u8]) -> Vec<u8> {
    raw_file(&entries.to_string(), data)
}

fn msg(e: &Error) -> String {
    e.to_string()
}

#[test]
fn file_shorter_than_length_prefix() {
    let e = reject(&[1, 2, 3]);
    assert!(matches!(e, Error::HeaderTruncated { file_len: 3, .. }), "{e:?}");
    assert!(msg(&e).contains("3 bytes"), "{e}");
}

#[test]
fn header_length_over_cap() {
    let mut bytes = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let e = reject(&bytes);
    assert!(matches!(e, Error::HeaderTooLarge { header_len, .. } if header_len == MAX_HEADER_LEN + 1), "{e:?}");
    assert!(msg(&e).contains("cap"), "{e}");
}

#[test]
fn header_length_past_end_of_file() {
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let e = reject(&bytes);
    assert!(matches!(e, Error::HeaderBeyondFile { header_len: 1000, file_len: 10, .. }), "{e:?}");
    assert!(msg(&e).contains("1000") && msg(&e).contains("10-byte"), "{e}");
}

#[test]
fn header_not_utf8() {
    let e = reject(&raw_bytes_file(b"{\"a\xff\": 1}", &[]));
    assert!(matches!(e, Error::HeaderNotUtf8 { valid_up_to: 3, .. }), "{e:?}");
    assert!(msg(&e).contains("UTF-8"), "{e}");
}

#[test]
fn header_not_json() {
    let e = reject(&raw_file("{\"a\": ", &[]));
    assert!(matches!(e, Error::HeaderNotJson { .. }), "{e:?}");
    assert!(msg(&e).contains("not valid JSON"), "{e}");
}

#[test]
fn header_not_an_object() {
    let e = reject(&raw_file("[1, 2]", &[]));
    assert!(matches!(e, Error::HeaderNotObject { .. }), "{e:?}");
    assert!(msg(&e).contains("JSON object"), "{e}");
}

#[test]
fn entry_missing_or_mistyped_fields() {
    let cases = [
        (json!({"w": 5}), "expected an object, found a number"),
        (json!({"w": {"shape": [1], "data_offsets": [0, 4]}}), "missing `dtype`"),
        (json!({"w": {"dtype": "F32", "data_offsets": [0, 4]}}), "missing `shape`"),
        (json!({"w": {"dtype": "F32", "shape": [1]}}), "missing `data_offsets`"),
        (json!({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}}), "`dtype` is not a string"),
        (json!({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}), "`shape` is not"),
        (json!({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}), "has 3 values"),
    ];
    for (header, needle) in cases {
        let e = reject(&header_with(header, &[0; 4]));
        assert!(matches!(&e, Error::HeaderEntryInvalid { tensor, .. } if tensor == "w"), "{e:?}");
        assert!(msg(&e).contains(needle) && msg(&e).contains("`w`"), "{e}");
    }
}

#[test]
fn unknown_dtype() {
    let e = reject(&header_with(json!({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}}), &[0]));
    assert!(matches!(&e, Error::UnknownDType { dtype, tensor, .. } if dtype == "F7" && tensor == "w"), "{e:?}");
    assert!(msg(&e).contains("unknown dtype `F7`"), "{e}");
}

#[test]
fn shape_product_overflows() {
    let big = u64::MAX / 2;
    // The element count fits in u64, the byte count (x4) does not.
    let e = reject(&header_with(json!({"w": {"dtype": "F32", "shape": [big], "data_offsets": [0, 4]}}), &[0; 4]));
    assert!(matches!(e, Error::TensorSizeOverflow { dtype: DType::F32, .. }), "{e:?}");
    let e = reject(&header_with(
        json!({"w": {"dtype": "U8", "shape": [1u64 << 32, 1u64 << 32], "data_offsets": [0, 4]}}),
        &[0; 4],
    ));
    assert!(matches!(e, Error::TensorSizeOverflow { .. }), "{e:?}");
    assert!(msg(&e).contains("overflows"), "{e}");
}

#[test]
fn byte_count_disagrees_with_offsets() {
    let e = reject(&header_with(json!({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}), &[0; 8]));
    assert!(matches!(e, Error::TensorByteCountMismatch { expected: 12, got: 8, .. }), "{e:?}");
    assert!(msg(&e).contains("needs 12 bytes") && msg(&e).contains("span 8"), "{e}");
}

#[test]
fn reversed_offsets() {
    let e = reject(&header_with(json!({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}), &[0; 4]));
    assert!(matches!(e, Error::OffsetsReversed { begin: 4, end: 0, .. }), "{e:?}");
    assert!(msg(&e).contains("[4, 0]"), "{e}");
}

#[test]
fn offsets_outside_data_section() {
    let header = json!({
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [1000, 1004]},
    });
    let e = reject(&header_with(header, &[0; 8]));
    assert!(matches!(&e, Error::OffsetsOutOfBounds { tensor, begin: 1000, data_len: 8, .. } if tensor == "b"), "{e:?}");
    assert!(msg(&e).contains("outside the 8-byte data section"), "{e}");
}

#[test]
fn overlapping_tensors() {
    let header = json!({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    });
    let e = reject(&header_with(header, &[0; 12]));
    assert!(
        matches!(&e, Error::TensorsOverlap { first, second, first_end: 8, second_begin: 4, .. } if first == "a" && second == "b"),
        "{e:?}"
    );
    assert!(msg(&e).contains("overlap"), "{e}");
}

#[test]
fn gap_between_tensors() {
    let header = json!({
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
    });
    let e = reject(&header_with(header, &[0; 12]));
    assert!(matches!(&e, Error::DataGap { tensor, gap_begin: 4, gap_end: 8, .. } if tensor == "b"), "{e:?}");
    assert!(msg(&e).contains("[4, 8)"), "{e}");
}

#[test]
fn gap_before_first_tensor() {
    let header = json!({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}});
    let e = reject(&header_with(header, &[0; 8]));
    assert!(matches!(e, Error::DataGap { gap_begin: 0, gap_end: 4, .. }), "{e:?}");
}

#[test]
fn data_section_truncated() {
    let mut bytes =
        serialize(&[("a", "F32", &[2], f32_bytes(&[1.0, 2.0])), ("b", "F32", &[2], f32_bytes(&[3.0, 4.0]))], None);
    bytes.truncate(bytes.len() - 3);
    let e = reject(&bytes);
    assert!(matches!(&e, Error::DataTruncated { tensor, end: 16, data_len: 13, .. } if tensor == "b"), "{e:?}");
    assert!(msg(&e).contains("truncated") && msg(&e).contains("`b`"), "{e}");
}

#[test]
fn trailing_bytes_after_last_tensor() {
    let mut bytes = serialize(&[("a", "F32", &[1], f32_bytes(&[1.0]))], None);
    bytes.extend_from_slice(&[0; 4]);
    let e = reject(&bytes);
    assert!(matches!(e, Error::TrailingData { tensors_end: 4, data_len: 8, .. }), "{e:?}");
    assert!(msg(&e).contains("trailing"), "{e}");
}

#[test]
fn duplicate_tensor_names() {
    // serde_json's own map would silently keep the last one; the store must not.
    let text = r#"{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                   "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}"#;
    let (result, _dir) = open_bytes(&raw_file(text, &[0; 2]));
    let e = result.err();
    assert!(matches!(&e, Some(Error::DuplicateTensor { tensor, .. }) if tensor == "w"), "{e:?}");
    assert!(e.is_some_and(|e| msg(&e).contains("more than once")));
}

#[test]
fn metadata_must_be_string_map() {
    let e = reject(&header_with(json!({"__metadata__": {"format": 1}}), &[]));
    assert!(matches!(&e, Error::MetadataInvalid { problem, .. } if problem.contains("`format`")), "{e:?}");
    let e = reject(&header_with(json!({"__metadata__": ["x"]}), &[]));
    assert!(matches!(e, Error::MetadataInvalid { .. }), "{e:?}");
    assert!(msg(&e).contains("strings to strings"), "{e}");
}

#[test]
fn lenient_where_the_format_allows() {
    // Entries out of offset order, a zero-sized tensor, padded header, null metadata: all valid.
    let header = json!({
        "__metadata__": null,
        "late": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        "empty": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]},
        "early": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    });
    let text = format!("{header}    ");
    let (model, _dir) = open_bytes(&raw_file(&text, &f32_bytes(&[1.5, 2.5])));
    let model = model.unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = model.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["early", "empty", "late"], "file order is offset order");
    let late = model.tensor("late").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.read_f32(late).ok(), Some(vec![2.5]));
    let empty = model.tensor("empty").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.read_f32(empty).ok(), Some(vec![]));
    assert_eq!(empty.rows_cols(), (0, 3));
}

// ---- folders and shard indexes ------------------------------------------------------------

fn write_index(dir: &Path, weight_map: serde_json::Value) {
    write(
        dir,
        "model.safetensors.index.json",
        json!({"metadata": {}, "weight_map": weight_map}).to_string().as_bytes(),
    );
}

fn shard(tensors: &[(&str, f32)]) -> Vec<u8> {
    let specs: Vec<(&str, &str, &[usize], Vec<u8>)> =
        tensors.iter().map(|(n, v)| (*n, "F32", &[1usize][..], f32_bytes(&[*v]))).collect();
    serialize(&specs, None)
}

fn open_err(dir: &Path) -> Error {
    match Model::open(dir) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn index_not_json() {
    let dir = tempdir();
    write(dir.path(), "model.safetensors.index.json", b"{weight_map");
    let e = open_err(dir.path());
    assert!(matches!(e, Error::IndexNotJson { .. }), "{e:?}");
    assert!(msg(&e).contains("index.json") && msg(&e).contains("not valid JSON"), "{e}");
}

#[test]
fn index_without_weight_map() {
    let dir = tempdir();
    write(dir.path(), "model.safetensors.index.json", br#"{"metadata": {}}"#);
    let e = open_err(dir.path());
    assert!(matches!(e, Error::IndexMissingWeightMap { .. }), "{e:?}");
    assert!(msg(&e).contains("weight_map"), "{e}");
}

#[test]
fn index_shard_outside_folder() {
    let dir = tempdir();
    write_index(dir.path(), json!({"a": "../elsewhere.safetensors"}));
    let e = open_err(dir.path());
    assert!(matches!(&e, Error::IndexInvalid { problem, .. } if problem.contains("../elsewhere")), "{e:?}");
    write_index(dir.path(), json!({"a": 7}));
    assert!(matches!(open_err(dir.path()), Error::IndexInvalid { .. }));
}

#[test]
fn shard_missing_on_disk() {
    let dir = tempdir();
    write(dir.path(), "s1.safetensors", &shard(&[("a", 1.0)]));
    write_index(dir.path(), json!({"a": "s1.safetensors", "b": "s2.safetensors"}));
    let e = open_err(dir.path());
    assert!(matches!(&e, Error::ShardMissing { shard, .. } if shard.ends_with("s2.safetensors")), "{e:?}");
    assert!(msg(&e).contains("s2.safetensors") && msg(&e).contains("does not exist"), "{e}");
}

#[test]
fn tensor_listed_but_absent_from_shard() {
    let dir = tempdir();
    write(dir.path(), "s1.safetensors", &shard(&[("a", 1.0)]));
    write_index(dir.path(), json!({"a": "s1.safetensors", "ghost": "s1.safetensors"}));
    let e = open_err(dir.path());
    assert!(matches!(&e, Error::TensorMissingFromShard { tensor, .. } if tensor == "ghost"), "{e:?}");
    assert!(msg(&e).contains("`ghost`"), "{e}");
}

#[test]
fn tensor_in_shard_but_not_in_index() {
    let dir = tempdir();
    write(dir.path(), "s1.safetensors", &shard(&[("a", 1.0), ("stray", 2.0)]));
    write_index(dir.path(), json!({"a": "s1.safetensors"}));
    let e = open_err(dir.path());
    assert!(matches!(&e, Error::TensorNotInIndex { tensor, .. } if tensor == "stray"), "{e:?}");
    assert!(msg(&e).contains("does not list"), "{e}");
}

#[test]
fn tensor_in_two_shards() {
    let dir = tempdir();
    write(dir.path(), "s1.safetensors", &shard(&[("a", 1.0)]));
    write(dir.path(), "s2.safetensors", &shard(&[("a", 1.0), ("b", 2.0)]));
    write_index(dir.path(), json!({"a": "s1.safetensors", "b": "s2.safetensors"}));
    let e = open_err(dir.path());
    assert!(
        matches!(&e, Error::TensorInMultipleShards { tensor, first, second }
            if tensor == "a" && first.ends_with("s1.safetensors") && second.ends_with("s2.safetensors")),
        "{e:?}"
    );
    assert!(msg(&e).contains("two shards"), "{e}");
}

#[test]
fn folder_without_weights() {
    let dir = tempdir();
    write(dir.path(), "config.json", b"{}");
    let e = open_err(dir.path());
    assert!(matches!(e, Error::NoWeights { .. }), "{e:?}");
    assert!(msg(&e).contains("no weights found"), "{e}");
    // Two candidate files and no canonical name: ambiguous, also "no weights".
    write(dir.path(), "a.safetensors", &shard(&[("a", 1.0)]));
    write(dir.path(), "b.safetensors", &shard(&[("a", 1.0)]));
    assert!(matches!(open_err(dir.path()), Error::NoWeights { .. }));
}

#[test]
fn not_a_safetensors_path() {
    let dir = tempdir();
    let path = write(dir.path(), "model.bin", b"PK\x03\x04....");
    let e = Model::open(&path).err();
    assert!(matches!(e, Some(Error::NotSafetensors { .. })), "{e:?}");
    // A GGUF (by its magic) is read as one: a truncated header is a named GGUF error.
    let path = write(dir.path(), "model.gguf", b"GGUF....");
    let e = Model::open(&path).err();
    assert!(matches!(e, Some(Error::GgufInvalid { .. })), "{e:?}");
    let e = Model::open(dir.path().join("missing")).err();
    assert!(matches!(e, Some(Error::Io { .. })), "{e:?}");
}

// ---- config.json --------------------------------------------------------------------------

fn llama_config(layers: usize, vocab: usize) -> serde_json::Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4,
        "intermediate_size": 6, "num_hidden_layers": layers, "num_attention_heads": 2,
        "num_key_value_heads": 1, "vocab_size": vocab
    })
}

fn tiny_llama(dir: &Path, config: serde_json::Value) {
    let zeros = |n: usize| vec![0u8; n * 4];
    let t = |name: &'static str, shape: &'static [usize]| (name, "F32", shape, zeros(shape.iter().product()));
    let bytes = serialize(
        &[
            t("model.embed_tokens.weight", &[8, 4]),
            t("model.layers.0.self_attn.q_proj.weight", &[4, 4]),
            t("model.layers.0.self_attn.k_proj.weight", &[2, 4]),
            t("model.layers.0.self_attn.v_proj.weight", &[2, 4]),
            t("model.layers.0.self_attn.o_proj.weight", &[4, 4]),
            t("model.layers.0.mlp.gate_proj.weight", &[6, 4]),
            t("model.layers.0.mlp.up_proj.weight", &[6, 4]),
            t("model.layers.0.mlp.down_proj.weight", &[4, 6]),
            t("model.layers.0.input_layernorm.weight", &[4]),
            t("model.norm.weight", &[4]),
        ],
        None,
    );
    write(dir, "model.safetensors", &bytes);
    write(dir, "config.json", config.to_string().as_bytes());
}

#[test]
fn config_that_matches_opens() {
    let dir = tempdir();
    tiny_llama(dir.path(), llama_config(1, 8));
    let model = Model::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let c = model.require_config().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.head_dim, c.num_kv_heads), (2, 1));
    assert!(c.architecture.is_llama_style());
}

#[test]
fn config_lying_about_shapes() {
    let dir = tempdir();
    tiny_llama(dir.path(), llama_config(1, 9));
    let e = open_err(dir.path());
    assert!(
        matches!(&e, Error::ConfigShapeMismatch { tensor, expected, got, .. }
            if tensor == "model.embed_tokens.weight" && expected == &[9, 4] && got == &[8, 4]),
        "{e:?}"
    );
    assert!(msg(&e).contains("[vocab_size, hidden_size]"), "{e}");
}

#[test]
fn config_lying_about_layer_count() {
    let dir = tempdir();
    tiny_llama(dir.path(), llama_config(2, 8));
    let e = open_err(dir.path());
    assert!(matches!(e, Error::ConfigLayerCountMismatch { expected: 2, found: 1, highest: Some(0) }), "{e:?}");
    assert!(msg(&e).contains("2 layers"), "{e}");
}

#[test]
fn config_invalid() {
    let dir = tempdir();
    tiny_llama(dir.path(), json!({"model_type": "llama", "hidden_size": "four"}));
    let e = open_err(dir.path());
    assert!(matches!(&e, Error::ConfigInvalid { problem, .. } if problem.contains("hidden_size")), "{e:?}");
    write(dir.path(), "config.json", b"{not json");
    assert!(matches!(open_err(dir.path()), Error::ConfigInvalid { .. }));
    let mut c = llama_config(1, 8);
    c["num_attention_heads"] = json!(3);
    c["num_key_value_heads"] = json!(2);
    tiny_llama(dir.path(), c);
    assert!(matches!(open_err(dir.path()), Error::ConfigInvalid { .. }));
}

/// Every number the families read, set to values that would parse but make the model compute
/// nonsense: each is refused at open, and the message names the field, the value and the range.
#[test]
fn config_values_out_of_range_are_refused_by_name() {
    let dir = tempdir();
    let llama3 = |low: f64, high: f64| {
        json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": low, "high_freq_factor": high,
               "original_max_position_embeddings": 8192})
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("hidden_size", json!(0), "`hidden_size` = 0"),
        ("num_hidden_layers", json!(0), "`num_hidden_layers` = 0"),
        ("num_attention_heads", json!(0), "`num_attention_heads` = 0"),
        ("num_key_value_heads", json!(0), "`num_key_value_heads` = 0"),
        ("intermediate_size", json!(0), "`intermediate_size` = 0"),
        ("vocab_size", json!(0), "`vocab_size` = 0"),
        ("vocab_size", json!(1u64 << 40), "allowed 1..="),
        ("max_position_embeddings", json!(0), "`max_position_embeddings` = 0"),
        ("head_dim", json!(0), "`head_dim` = 0"),
        ("rms_norm_eps", json!(-1.0), "`rms_norm_eps` = -1"),
        ("rms_norm_eps", json!(0.0), "`rms_norm_eps` = 0"),
        ("rms_norm_eps", json!(2.0), "allowed (0, 1)"),
        ("layer_norm_eps", json!(-1e-12), "`layer_norm_eps` = -0.000000000001"),
        ("rope_theta", json!(0.0), "`rope_theta` = 0"),
        ("rope_theta", json!(-10000.0), "allowed (1, 1e12]"),
        ("rope_theta", json!(1e300), "out of range"),
        ("rope_scaling", json!({"rope_type": "linear", "factor": 0.0}), "`rope_scaling.factor` = 0"),
        ("rope_scaling", json!({"rope_type": "linear", "factor": "big"}), "`rope_scaling.factor`"),
        ("rope_scaling", llama3(4.0, 4.0), "must be greater than"),
        ("rope_scaling", llama3(4.0, 1.0), "must be greater than"),
        ("rope_scaling", json!({"rope_type": "yarn", "factor": 4.0, "beta_fast": -32.0}), "beta_fast"),
        ("rope_scaling", json!(7), "should be an object"),
    ];
    for (field, value, needle) in cases {
        let mut c = llama_config(1, 8);
        c[field] = value.clone();
        tiny_llama(dir.path(), c);
        let e = open_err(dir.path());
        assert!(matches!(&e, Error::ConfigInvalid { .. }), "{field} = {value}: {e:?}");
        assert!(msg(&e).contains(needle) && msg(&e).contains("config.json"), "{field} = {value}: {e}");
    }
    // In range, including a valid Llama 3.1 scaling: opens.
    let mut c = llama_config(1, 8);
    c["rms_norm_eps"] = json!(1e-5);
    c["rope_theta"] = json!(500000.0);
    c["rope_scaling"] = llama3(1.0, 4.0);
    tiny_llama(dir.path(), c);
    Model::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn lookups_and_missing_config() {
    let (model, _dir) =
        open_bytes(&serialize(&[("ids", "I64", &[2], vec![0; 16]), ("w", "F32", &[1], f32_bytes(&[1.0]))], None));
    let model = model.unwrap_or_else(|e| panic!("{e}"));
    let e = model.tensor("nope").err();
    assert!(matches!(&e, Some(Error::TensorNotFound { name }) if name == "nope"), "{e:?}");
    let ids = model.tensor("ids").unwrap_or_else(|e| panic!("{e}"));
    let e = model.read_f32(ids).err();
    assert!(matches!(e, Some(Error::NotAFloatTensor { dtype: DType::I64, .. })), "{e:?}");
    assert!(e.is_some_and(|e| msg(&e).contains("I64")));
    assert_eq!(model.raw_bytes(ids).map(<[u8]>::len).ok(), Some(16));
    let e = model.require_config().err();
    assert!(matches!(e, Some(Error::ConfigMissing { .. })), "{e:?}");
    // A TensorInfo that does not describe this model's tensor is refused, not read blindly.
    let mut forged = ids.clone();
    forged.nbytes = 1 << 40;
    assert!(matches!(model.raw_bytes(&forged), Err(Error::TensorNotFound { .. })));
    assert_eq!(model.parameter_count(), 1, "integer buffers are not parameters");
}

#[test]
fn other_weight_files_in_the_folder_are_named_in_the_notes() {
    let dir = tempdir();
    let bytes = serialize(&[("w", "F32", &[1], f32_bytes(&[1.0]))], None);
    write(dir.path(), "model.safetensors", &bytes);
    let model = Model::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(model.notes().is_empty());
    write(dir.path(), "consolidated.safetensors", &bytes);
    let model = Model::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let notes = model.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("consolidated.safetensors") && notes[0].contains("model.safetensors was opened"),
        "{notes:?}"
    );
    // A single file opened by name: its folder's other files are none of its business.
    assert!(Model::open(dir.path().join("model.safetensors")).unwrap_or_else(|e| panic!("{e}")).notes().is_empty());
}
