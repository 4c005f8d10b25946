//! The store on real models (the bundled stories260K, the fetched all-MiniLM-L6-v2), on a sharded
//! copy, on every float dtype, and on a sparse multi-GB model that must open from headers alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::test_util::{f32_bytes, serialize, tempdir, write};
use super::*;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn open(path: &Path) -> Model {
    Model::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

fn stories() -> Model {
    open(&models_dir().join("stories260K"))
}

fn minilm() -> Model {
    let dir = models_dir().join("all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "{} missing: run scripts/fetch-models.sh", dir.display());
    open(&dir)
}

fn f32s(model: &Model, t: &TensorInfo) -> Vec<f32> {
    model.read_f32(t).unwrap_or_else(|e| panic!("{e}"))
}

/// Our reader and the reference crate must see the same tensors, dtypes, shapes and bytes.
fn agrees_with_reference(model: &Model) {
    for (i, shard) in model.shards().iter().enumerate() {
        let bytes = std::fs::read(&shard.path).unwrap_or_else(|e| panic!("{e}"));
        let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let ours: Vec<&TensorInfo> = model.tensors().iter().filter(|t| t.shard == i).collect();
        assert_eq!(ours.len(), reference.len());
        assert_eq!(ours.len(), shard.tensor_count);
        for t in ours {
            let view = reference.tensor(&t.name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{:?}", view.dtype()), t.dtype.as_str(), "{}", t.name);
            assert_eq!(view.shape(), t.shape.as_slice(), "{}", t.name);
            assert_eq!(model.raw_bytes(t).ok(), Some(view.data()), "{}", t.name);
        }
    }
}

#[test]
fn stories260k_opens_as_llama() {
    let model = stories();
    let c = model.require_config().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.architecture, Architecture::Llama);
    assert_eq!((c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads), (64, 5, 8, 4));
    assert_eq!((c.head_dim, c.intermediate_size, c.vocab_size), (8, 172, 512));
    assert_eq!(c.rms_norm_eps, Some(1e-5));
    assert!(!c.tie_word_embeddings);
    assert_eq!(model.tensors().len(), 48);
    assert!(model.tensors().iter().all(|t| t.dtype == DType::F32 && t.shard == 0));
    assert_eq!(model.parameter_count(), 292_800);
    assert_eq!(model.shards().len(), 1);
    assert_eq!(model.shards().first().and_then(|s| s.metadata.get("format")).map(String::as_str), Some("pt"));
    assert_eq!(model.root(), models_dir().join("stories260K"));

    let role = |n: &str| model.tensor(n).map(|t| t.role).ok();
    assert_eq!(role("lm_head.weight"), Some(Role::Head));
    assert_eq!(role("model.embed_tokens.weight"), Some(Role::Embedding));
    assert_eq!(role("model.layers.2.self_attn.k_proj.weight"), Some(Role::Attention));
    assert_eq!(role("model.layers.4.mlp.down_proj.weight"), Some(Role::Mlp));
    assert_eq!(role("model.norm.weight"), Some(Role::Norm));
    let count = |r: Role| model.tensors().iter().filter(|t| t.role == r).count();
    assert_eq!(
        [count(Role::Attention), count(Role::Mlp), count(Role::Norm), count(Role::Embedding), count(Role::Head)],
        [20, 15, 11, 1, 1]
    );

    let q = model.tensor("model.layers.0.self_attn.q_proj.weight").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((q.numel(), q.rows_cols()), (4096, (64, 64)));
    let raw = model.raw_bytes(q).unwrap_or_else(|e| panic!("{e}"));
    let by_hand: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(f32s(&model, q), by_hand);
    assert!(by_hand.iter().any(|v| *v != 0.0));

    let names: Vec<String> =
        model.other_files().iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    assert_eq!(names, ["tokenizer.json", "tokenizer_config.json"]);
    agrees_with_reference(&model);
}

#[test]
fn stories260k_summary() {
    let s = stories().summary();
    assert_eq!((s.parameters, s.tensor_count, s.bytes), (292_800, 48, 292_800 * 4));
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    let json = serde_json::to_value(&s).unwrap_or_default();
    assert_eq!(json["by_dtype"][0]["dtype"], "F32");
    let roles: Vec<&str> = s.by_role.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, ["attention", "mlp", "embedding", "norm", "head"]);
    assert_eq!(json["by_role"][0]["role"], "attention");
    assert_eq!(s.shards.len(), 1);
}

#[test]
fn minilm_opens_as_bert() {
    let model = minilm();
    let c = model.require_config().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.architecture, Architecture::Bert);
    assert_eq!((c.hidden_size, c.num_layers, c.num_heads, c.vocab_size), (384, 6, 12, 30522));
    assert!(c.tie_word_embeddings, "BERT configs tie by default");
    let ids = model.tensor("embeddings.position_ids").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ids.dtype, ids.role), (DType::I64, Role::Other));
    assert!(model.tensors().iter().filter(|t| t.name != ids.name).all(|t| t.dtype == DType::F32));
    // 22,713,216 weights; the I64 position_ids buffer is not counted.
    assert_eq!(model.parameter_count(), 22_713_216);

    let role = |n: &str| model.tensor(n).map(|t| t.role).ok();
    assert_eq!(role("embeddings.word_embeddings.weight"), Some(Role::Embedding));
    assert_eq!(role("encoder.layer.0.attention.self.query.weight"), Some(Role::Attention));
    assert_eq!(role("encoder.layer.0.attention.output.dense.weight"), Some(Role::Attention));
    assert_eq!(role("encoder.layer.0.intermediate.dense.weight"), Some(Role::Mlp));
    assert_eq!(role("encoder.layer.0.output.dense.weight"), Some(Role::Mlp));
    assert_eq!(role("encoder.layer.0.output.LayerNorm.weight"), Some(Role::Norm));
    assert_eq!(role("pooler.dense.weight"), Some(Role::Head));

    let names: Vec<String> =
        model.other_files().iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    for expected in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "model.safetensors" || n == "config.json" || n == "1_Pooling"));
    agrees_with_reference(&model);
}

/// Splits stories260K into three shards plus an index; everything must read back the same.
#[test]
fn sharded_copy_reads_back_identically() {
    let original = stories();
    let dir = tempdir();
    let groups: Vec<Vec<&TensorInfo>> = original.tensors().chunks(17).map(|c| c.iter().collect()).collect();
    assert_eq!(groups.len(), 3);
    let mut weight_map = BTreeMap::new();
    for (i, group) in groups.iter().enumerate() {
        let name = format!("model-{:05}-of-00003.safetensors", i + 1);
        // Reverse the order inside each shard: the reader must restore file (offset) order.
        let specs: Vec<(&str, &str, &[usize], Vec<u8>)> = group
            .iter()
            .rev()
            .map(|t| {
                let bytes = original.raw_bytes(t).unwrap_or_else(|e| panic!("{e}")).to_vec();
                (t.name.as_str(), t.dtype.as_str(), t.shape.as_slice(), bytes)
            })
            .collect();
        write(dir.path(), &name, &serialize(&specs, Some(&[("format", "pt")])));
        for t in group {
            weight_map.insert(t.name.clone(), name.clone());
        }
    }
    let index = json!({"metadata": {"total_size": 1_171_200}, "weight_map": weight_map});
    write(dir.path(), "model.safetensors.index.json", index.to_string().as_bytes());
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(models_dir().join("stories260K").join(f), dir.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }

    let sharded = open(dir.path());
    assert_eq!(sharded.shards().len(), 3);
    assert_eq!(sharded.shards().iter().map(|s| s.tensor_count).sum::<usize>(), 48);
    assert_eq!(sharded.parameter_count(), original.parameter_count());
    let in_shards: Vec<usize> = sharded.tensors().iter().map(|t| t.shard).collect();
    assert!(in_shards.is_sorted(), "shards in index order");
    for t in original.tensors() {
        let s = sharded.tensor(&t.name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((&s.dtype, &s.shape, s.role), (&t.dtype, &t.shape, t.role));
        assert_eq!(f32s(&sharded, s), f32s(&original, t), "{}", t.name);
    }
    let names: Vec<String> =
        sharded.other_files().iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    assert_eq!(names, ["tokenizer.json"]);
    agrees_with_reference(&sharded);

    // Opening through the index file itself gives the same model.
    let via_index = open(&dir.path().join("model.safetensors.index.json"));
    assert_eq!(via_index.tensors(), sharded.tensors());
}

#[test]
fn float_dtypes_convert_exactly() {
    let f64s: Vec<u8> = [0.5f64, -1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = serialize(
        &[
            ("bf16", "BF16", &[3], vec![0x80, 0x3F, 0x00, 0xC0, 0x01, 0x00]),
            ("f16", "F16", &[2], vec![0x00, 0x3C, 0x01, 0x00]),
            ("e4m3", "F8_E4M3", &[4], vec![0x7E, 0x38, 0x01, 0xB8]),
            ("e5m2", "F8_E5M2", &[2], vec![0x3C, 0x7C]),
            ("f64", "F64", &[2], f64s),
            ("f32", "F32", &[1], f32_bytes(&[3.25])),
        ],
        None,
    );
    let dir = tempdir();
    let model = open(&write(dir.path(), "x.safetensors", &bytes));
    let read = |n: &str| model.tensor(n).map(|t| f32s(&model, t)).unwrap_or_else(|e| panic!("{e}"));
    // BF16 0x0001 is its smallest positive subnormal, 2^-133 (`powi(-133)` would underflow via 2^133 = inf).
    assert_eq!(read("bf16"), [1.0, -2.0, f32::from_bits(0x0001_0000)]);
    assert_eq!(read("f16"), [1.0, 2f32.powi(-24)]);
    assert_eq!(read("e4m3"), [448.0, 1.0, 2f32.powi(-9), -1.0]);
    assert_eq!(read("e5m2"), [1.0, f32::INFINITY]);
    assert_eq!(read("f64"), [0.5, -1e-3f32]);
    assert_eq!(read("f32"), [3.25]);
    assert_eq!(model.parameter_count(), 14);
}

#[test]
fn reference_written_f16_file_reads_back() {
    let values = [0.0f32, 1.0, -0.5, 65504.0, 6.1e-5];
    let data: Vec<u8> = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![5], &data).unwrap_or_else(|e| panic!("{e}"));
    let bytes = safetensors::serialize([("w", view)], None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempdir();
    let model = open(&write(dir.path(), "model.safetensors", &bytes));
    let t = model.tensor("w").unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<f32> = values.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
    assert_eq!(f32s(&model, t), expected);
}

/// Two shards claiming 3 GiB each, stored sparse: opening must read headers only, so it is instant
/// and allocates nothing near the data size.
#[test]
fn huge_sharded_model_opens_from_headers() {
    let dir = tempdir();
    let elements: usize = 3 << 28; // F32: 3 GiB per shard
    let mut weight_map = BTreeMap::new();
    for (i, name) in ["big.a", "big.b"].into_iter().enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let nbytes = elements as u64 * 4;
        let header = json!({name: {"dtype": "F32", "shape": [elements], "data_offsets": [0, nbytes]}}).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        let path = write(dir.path(), &file, &bytes);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap_or_else(|e| panic!("{e}"));
        f.set_len(bytes.len() as u64 + nbytes).unwrap_or_else(|e| panic!("{e}"));
        weight_map.insert(name.to_string(), file);
    }
    write(dir.path(), "model.safetensors.index.json", json!({"weight_map": weight_map}).to_string().as_bytes());
    let started = std::time::Instant::now();
    let model = open(dir.path());
    assert!(started.elapsed().as_secs() < 5, "open took {:?}", started.elapsed());
    assert_eq!(model.parameter_count(), 2 * elements as u64);
    let b = model.tensor("big.b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((b.shard, b.nbytes), (1, 3 << 30));
    assert_eq!(model.raw_bytes(b).map(<[u8]>::len).ok(), Some(3 << 30));
}

#[test]
fn model_is_shareable_across_threads() {
    // Kernels read tensors from rayon workers through a shared `&Model`.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
}
