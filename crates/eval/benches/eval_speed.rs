//! `cargo bench -p pareto-eval --bench eval_speed`: perplexity throughput of stories260K (the full
//! PROVENANCE protocol, dense F32 and candle-quantized q8_0 / q4_0), prefill/decode speed, and
//! all-MiniLM-L6-v2 sentences/s on the STS-B dev sentences. One warm-up, then repeats; prints the
//! median and spread of each figure. Results go in BENCHMARKS-eval.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::GgmlDType;
use pareto_core::job::JobContext;
use pareto_eval::bert::BertEncoder;
use pareto_eval::llama::LlamaModel;
use pareto_eval::metrics::Summary;
use pareto_eval::perplexity::{PerplexityProtocol, load_tokenizer, perplexity, tokenize};
use pareto_eval::samples::{SampleLimits, SampleOptions, SampleSet, bundled, load_samples, read_text};
use pareto_eval::speed::{SpeedOptions, measure_decoder, measure_encoder, peak_rss_bytes};

const REPEATS: usize = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn show(name: &str, unit: &str, v: &[f64]) {
    if let Some(s) = Summary::of(v) {
        println!(
            "{name:<44} median {:>10.1} {unit}  (min {:.1}, max {:.1}, sd {:.1}, n {})",
            s.median, s.min, s.max, s.stddev, s.n
        );
    }
}

fn main() -> pareto_eval::Result<()> {
    let ctx = JobContext::silent();
    let dev = Device::Cpu;
    println!("host: {} logical CPUs, candle CPU backend", std::thread::available_parallelism().map_or(1, usize::from));

    let stories = root().join("models/stories260K");
    let text = read_text(&root().join(bundled::TINYSTORIES), &SampleLimits::default(), Some(65_536))?;
    let tokens = tokenize(&load_tokenizer(&stories.join("tokenizer.json"))?, &text)?;
    for (label, quant) in [("f32", None), ("q8_0", Some(GgmlDType::Q8_0)), ("q4_0", Some(GgmlDType::Q4_0))] {
        let model = match quant {
            None => LlamaModel::load(&stories, &dev)?,
            Some(q) => LlamaModel::load_quantized(&stories, &dev, q)?,
        };
        let batches: &[usize] = if quant.is_none() { &[1, 8] } else { &[8] };
        for &batch in batches {
            let protocol = PerplexityProtocol { batch, ..PerplexityProtocol::default() };
            let mut tps = Vec::new();
            let mut nll = 0.0;
            for i in 0..=REPEATS {
                let r = perplexity(&model, &tokens, &protocol, &ctx)?;
                nll = r.mean_nll;
                if i > 0 {
                    tps.push(r.tokens_per_s);
                }
            }
            show(&format!("stories260K {label} perplexity batch {batch} (NLL {nll:.6})"), "tok/s", &tps);
        }
    }
    let opts = SpeedOptions { repeats: REPEATS, ..SpeedOptions::default() };
    for (label, quant) in [("f32", None), ("q8_0", Some(GgmlDType::Q8_0)), ("q4_0", Some(GgmlDType::Q4_0))] {
        let how = quant.map_or(pareto_eval::llama::LoadAs::Dense, pareto_eval::llama::LoadAs::Requantize);
        let s = measure_decoder(&stories, &dev, &how, &opts, &ctx)?;
        println!(
            "stories260K {label:<5} load {:.2} ms | prefill {} tok: {:.0} tok/s (sd {:.0}) | decode {} tok: {:.0} tok/s (sd {:.0})",
            s.load_ms.median,
            s.prefill_tokens,
            s.prefill_tokens_per_s.median,
            s.prefill_tokens_per_s.stddev,
            s.decode_tokens,
            s.decode_tokens_per_s.median,
            s.decode_tokens_per_s.stddev
        );
    }

    let minilm = root().join("models/all-MiniLM-L6-v2");
    let SampleSet::Pairs(pairs) = load_samples(&root().join(bundled::STSB_DEV), &SampleOptions::default())? else {
        return Err(pareto_eval::EvalError::InvalidArgument("STS-B dev is not pairs".into()));
    };
    let mut sentences: Vec<&str> = pairs.iter().flat_map(|p| [p.sentence1.as_str(), p.sentence2.as_str()]).collect();
    sentences.sort_unstable();
    sentences.dedup();
    let enc = BertEncoder::load(&minilm, &dev)?;
    for batch in [1usize, 32] {
        let subset: Vec<&str> =
            sentences.iter().copied().take(if batch == 1 { 300 } else { sentences.len() }).collect();
        let mut sps = Vec::new();
        for i in 0..=3 {
            let t = Instant::now();
            enc.embed(&subset, batch, &ctx)?;
            if i > 0 {
                sps.push(subset.len() as f64 / t.elapsed().as_secs_f64());
            }
        }
        show(&format!("MiniLM {} STS-B sentences, batch {batch}", subset.len()), "sent/s", &sps);
    }
    let s = measure_encoder(&minilm, &dev, &sentences[..256], &SpeedOptions { repeats: 3, ..opts }, &ctx)?;
    println!("MiniLM load {:.1} ms (median of {})", s.load_ms.median, s.load_ms.n);
    if let Some(rss) = peak_rss_bytes() {
        println!("peak RSS of this bench process (VmHWM, process-wide): {:.1} MiB", rss as f64 / 1048576.0);
    }
    Ok(())
}
