use std::path::{Path, PathBuf};

use super::*;
use crate::export::gguf::metadata::{ValueType, encode_kv, encode_str};
use crate::job::CancelToken;
use crate::store::Model;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A minimal llama GGUF: `tokens` byte-level BPE tokens, an F32 embedding of `rows` rows of 8,
/// one layer whose attn_q is of ggml type `q_type`; `pre` is the pre-tokenizer name.
fn mini_gguf(dir: &Path, tokens: usize, rows: u64, q_type: u32, pre: &str) -> PathBuf {
    let mut kv = Vec::new();
    let s = |v: &str| MetaValue::String(v.into());
    let pairs: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", s("llama")),
        ("llama.block_count", MetaValue::U32(1)),
        ("llama.embedding_length", MetaValue::U32(8)),
        ("llama.feed_forward_length", MetaValue::U32(16)),
        ("llama.attention.head_count", MetaValue::U32(2)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s(pre)),
        (
            "tokenizer.ggml.tokens",
            MetaValue::Array(ValueType::String, (0..tokens).map(|i| s(&format!("t{i}"))).collect()),
        ),
        ("tokenizer.ggml.merges", MetaValue::Array(ValueType::String, vec![s("t 0")])),
    ];
    for (k, v) in &pairs {
        encode_kv(k, v, &mut kv);
    }
    // (name, dims, type)
    let (qb, qt) = types::block(q_type).unwrap();
    let tensors: Vec<(&str, Vec<u64>, u32)> =
        vec![("token_embd.weight", vec![8, rows], types::F32), ("blk.0.attn_q.weight", vec![qb.max(8), 8], q_type)];
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((pairs.len() as u64).to_le_bytes());
    out.extend(kv);
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for (name, dims, ty) in &tensors {
        encode_str(name, &mut out);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
        let n = if *ty == types::F32 { dims.iter().product::<u64>() * 4 } else { dims[1] * (dims[0] / qb) * qt };
        sizes.push(n);
        offset += n.div_ceil(32) * 32;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for n in sizes {
        let start = out.len();
        out.extend((0..n).map(|i| if i % 4 == 3 { 0x3c } else { 0 })); // small finite f32s
        while !(out.len() - start).is_multiple_of(32) {
            out.push(0);
        }
    }
    let path = dir.join(format!("mini-{tokens}-{rows}-{q_type}-{pre}.gguf"));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn stories260k_gguf_converts_to_the_committed_hf_folder_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hf");
    let gguf = repo().join("models/gguf/stories260K.gguf");
    let report = convert(&gguf, &out, TensorDtype::Exact, false, &JobContext::silent()).unwrap();
    assert!(!report.quantized_source && report.notes.is_empty());
    let ours = Model::open(&out).unwrap();
    let reference = Model::open(repo().join("models/stories260K")).unwrap();
    assert_eq!(ours.tensors().len(), reference.tensors().len());
    for t in reference.tensors() {
        let mine = ours.tensor(&t.name).unwrap();
        assert_eq!((mine.dtype, &mine.shape), (t.dtype, &t.shape), "{}", t.name);
        // Q/K rows un-permuted back to HF order: every value bit-identical.
        assert!(
            ours.read_f32(mine)
                .unwrap()
                .iter()
                .zip(reference.read_f32(t).unwrap())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{}",
            t.name
        );
    }
    let (a, b) = (ours.require_config().unwrap(), reference.require_config().unwrap());
    assert_eq!(
        (a.num_layers, a.hidden_size, a.num_heads, a.num_kv_heads, a.intermediate_size, a.vocab_size),
        (b.num_layers, b.hidden_size, b.num_heads, b.num_kv_heads, b.intermediate_size, b.vocab_size)
    );
    assert!(ours.quantized_source().is_none());
    // The GGUF opens wherever a folder does (through the cache).
    let cache = tempfile::tempdir().unwrap();
    // SAFETY (test-only): no other thread of this test binary reads PARETO_CACHE_DIR concurrently
    // with a different expectation; every test that converts through the cache sets the same kind of path.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PARETO_CACHE_DIR", cache.path());
    }
    let via_gguf = Model::open(&gguf).unwrap();
    assert_eq!(via_gguf.tensors().len(), reference.tensors().len());
    assert!(via_gguf.root().starts_with(cache.path()));
    let again = open_cached(&gguf, &JobContext::silent()).unwrap();
    assert_eq!(again, via_gguf.root(), "the cached conversion is reused");
    // A newer version of the same file gets its own conversion and the old one goes.
    let copy = cache.path().join("copy.gguf");
    std::fs::copy(&gguf, &copy).unwrap();
    let first = open_cached(&copy, &JobContext::silent()).unwrap();
    let f = std::fs::File::options().write(true).open(&copy).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    drop(f);
    let second = open_cached(&copy, &JobContext::silent()).unwrap();
    assert_ne!(first, second);
    assert!(!first.exists() && second.exists() && again.exists(), "only the stale conversion of that file is removed");
}

#[test]
fn smollm2_dequantizes_like_gguf_py() {
    let path = repo().join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let file = GgufFile::open(&path).expect("models/smollm2 is installed by scripts/fetch-models.sh");
    let want: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smollm2_dequant.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(want.len(), file.tensors.len());
    use sha2::{Digest, Sha256};
    for t in &file.tensors {
        let v = file.dequantize(t).unwrap();
        let mut h = Sha256::new();
        for x in &v {
            h.update(x.to_le_bytes());
        }
        assert_eq!(hex::encode(h.finalize()), want[&t.name], "{} ({})", t.name, types::name(t.ggml_type).unwrap());
    }
    let s = describe(&path).unwrap();
    assert!(s.quantized && s.undecodable.is_empty());
    assert_eq!((s.tokenizer.pre.as_deref(), s.tokenizer.tokens, s.tokenizer.merges), (Some("smollm"), 49152, 48900));
    assert_eq!(
        s.by_type.iter().map(|r| (r.ggml_type.as_str(), r.tensors)).collect::<Vec<_>>(),
        [("F32", 61), ("Q4_1", 210), ("Q8_0", 1)]
    );
}

#[test]
fn bad_ggufs_are_named_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ctx = JobContext::silent();
    let err = |p: &Path| convert(p, &out, TensorDtype::Exact, false, &ctx).unwrap_err().to_string();

    let good = mini_gguf(dir.path(), 12, 12, types::F32, "smollm");
    convert(&good, &out, TensorDtype::Exact, false, &ctx).unwrap();
    std::fs::remove_dir_all(&out).unwrap();

    let p = mini_gguf(dir.path(), 10, 12, types::F32, "smollm");
    assert!(err(&p).contains("the vocabulary has 10 tokens but the embedding has 12 rows"), "{}", err(&p));
    let p = mini_gguf(dir.path(), 12, 12, types::F32, "falcon");
    assert!(err(&p).contains("pre-tokenizer \"falcon\" is not one Pareto rebuilds"), "{}", err(&p));
    // IQ2_XXS: listed by inspect, refused by name on conversion.
    let p = mini_gguf(dir.path(), 12, 12, 16, "smollm");
    assert_eq!(describe(&p).unwrap().undecodable, ["IQ2_XXS"]);
    assert!(err(&p).contains("type IQ2_XXS cannot be decoded"), "{}", err(&p));
    // Every truncation of a valid file before its last tensor's end: an error, never a panic.
    let bytes = std::fs::read(&good).unwrap();
    let file = GgufFile::open(&good).unwrap();
    let data_end = file.tensors.iter().map(|t| file.data_start + t.offset + t.nbytes).max().unwrap() as usize;
    for cut in (0..data_end).step_by(7) {
        let p = dir.path().join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(convert(&p, &out, TensorDtype::Exact, false, &ctx).is_err(), "cut at {cut}");
    }
    assert!(!out.exists());
    // A cancelled job leaves nothing.
    let cancelled = JobContext::new(std::sync::Arc::new(crate::job::NullProgress), CancelToken::new());
    cancelled.cancel.cancel();
    let r = convert(&good, &out, TensorDtype::Exact, false, &cancelled);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // An F16 target refuses values beyond its range by name (none here), and writes F16.
    convert(&good, &out, TensorDtype::All(DType::F16), false, &ctx).unwrap();
    assert!(Model::open(&out).unwrap().tensors().iter().all(|t| t.dtype == DType::F16));
}
