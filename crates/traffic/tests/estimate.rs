//! The estimator on real sentences (STS-B, embedded by all-MiniLM-L6-v2): its replay checked
//! against a naive one written here from the definitions, HNSW checked against exact search, and
//! bad input named.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pareto_core::job::JobContext;
use pareto_traffic::estimate::{EstimateSpec, SearchChoice, correctness, load_encoder, normalise};
use pareto_traffic::search::dot;
use pareto_traffic::{CacheConfig, Cadence, TrafficError, estimate};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn encoder_dir() -> PathBuf {
    repo("models/all-MiniLM-L6-v2")
}

/// STS-B dev rows: (gold score, sentence1, sentence2).
fn stsb() -> Vec<(f64, String, String)> {
    let text = std::fs::read_to_string(repo("assets/samples/stsb/sts-dev.csv")).expect("STS-B dev");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.get(4)?.parse().ok()?, f.get(5)?.to_string(), f.get(6)?.to_string()))
        })
        .collect()
}

/// A deterministic stream of numbers in [0, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Request {
    time_s: i64,
    text: String,
    tenant: &'static str,
    output_tokens: u64,
}

/// Paraphrase pairs (gold ≥ 4.6) and unrelated pairs (gold ≤ 0.4): each first sentence asked, a
/// third of them asked again with other case and spacing (known exact repeats), the second
/// sentence asked later.
fn generated_log() -> (Vec<Request>, usize) {
    let rows = stsb();
    let para = rows.iter().filter(|r| r.0 >= 4.6).take(90);
    let unrelated = rows.iter().filter(|r| r.0 <= 0.4).take(90);
    let mut rng = Lcg(7);
    let mut texts: Vec<String> = Vec::new();
    let mut later: Vec<String> = Vec::new();
    for (_, a, b) in para.chain(unrelated) {
        texts.push(a.clone());
        if rng.next() < 0.33 {
            texts.push(format!("  {}  ", a.to_uppercase().replace(' ', "   ")));
        }
        later.push(b.clone());
        if later.len() > 3 {
            let i = (rng.next() * later.len() as f64) as usize;
            texts.push(later.swap_remove(i));
        }
    }
    texts.append(&mut later);
    let mut seen = std::collections::HashSet::new();
    let repeats = texts.iter().filter(|t| !seen.insert(normalise(t))).count();
    let tenants = ["search", "ads", "support"];
    let mut t = 1_767_225_600;
    let log = texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            t += 60 + (rng.next() * 1200.0) as i64;
            Request { time_s: t, text, tenant: tenants[i % 3], output_tokens: 10 + (i as u64 * 7) % 90 }
        })
        .collect();
    (log, repeats)
}

fn write_log(dir: &Path, log: &[Request]) -> PathBuf {
    let mut body = String::from("timestamp\ttenant\tquery\toutput_tokens\n");
    for r in log {
        let _ = writeln!(body, "{}\t{}\t{}\t{}", r.time_s, r.tenant, r.text, r.output_tokens);
    }
    let p = dir.join("log.tsv");
    std::fs::write(&p, body).expect("write log");
    p
}

/// The replay written out from the definitions, one linear scan per request.
fn naive_replay(
    cfg: &CacheConfig,
    log: &[Request],
    ids: &[usize],
    emb: &[Vec<f32>],
    wrong: &dyn Fn(f32) -> f64,
) -> (u64, u64, f64, u64) {
    struct E {
        id: usize,
        at: i64,
        used: usize,
    }
    let mut cache: Vec<E> = Vec::new();
    let (mut exact, mut semantic, mut wrong_sum, mut flushes) = (0, 0, 0.0, 0);
    let start = log[0].time_s * 1000;
    let mut next_flush = match &cfg.updates {
        Cadence::Every { seconds, .. } => Some(start + (*seconds * 1000.0) as i64),
        _ => None,
    };
    for (step, (r, &id)) in log.iter().zip(ids).enumerate() {
        let now = r.time_s * 1000;
        if let (Some(due), Cadence::Every { seconds, .. }) = (next_flush, &cfg.updates)
            && now >= due
        {
            cache.clear();
            flushes += 1;
            let period = (*seconds * 1000.0) as i64;
            next_flush = Some(due + ((now - due) / period + 1) * period);
        }
        if let Some(ttl) = cfg.ttl_seconds {
            cache.retain(|e| now - e.at <= (ttl * 1000.0) as i64);
        }
        if let Some(e) = cache.iter_mut().find(|e| e.id == id) {
            exact += 1;
            e.used = step;
            continue;
        }
        let best = cache
            .iter_mut()
            .map(|e| (dot(&emb[id], &emb[e.id]), e))
            .filter(|(s, _)| *s >= cfg.threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((sim, e)) = best {
            semantic += 1;
            wrong_sum += wrong(sim.min(1.0));
            e.used = step;
            continue;
        }
        if cache.len() >= cfg.capacity {
            let lru = cache.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i).unwrap_or(0);
            cache.remove(lru);
        }
        cache.push(E { id, at: now, used: step });
    }
    (exact, semantic, wrong_sum, flushes)
}

#[test]
fn the_replay_matches_a_naive_one_on_a_generated_log_with_known_repeats() -> Result<(), TrafficError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, repeats) = generated_log();
    let path = write_log(dir.path(), &log);
    let pairs_path = dir.path().join("sts-part.csv");
    let pairs: String = stsb().iter().take(300).map(|(g, a, b)| format!("x\tx\tx\t0\t{g}\t{a}\t{b}\n")).collect();
    std::fs::write(&pairs_path, pairs).expect("pairs");

    let spec = EstimateSpec {
        thresholds: vec![0.8, 0.9, 1.0],
        capacities: vec![40, 100_000],
        ttls: vec![None, Some(7200.0)],
        updates: vec![Cadence::Never, Cadence::parse("daily")?],
        pairs: Some(pairs_path.clone()),
        search: SearchChoice::Exact,
        // One step: the naive replay below embeds the same distinct queries in the same batches.
        chunk: 100_000,
        ..EstimateSpec::new(&path, &encoder_dir())
    };
    let ctx = JobContext::silent();
    let est = estimate(&spec, &ctx)?;
    assert_eq!(est.requests, log.len() as u64);
    assert_eq!(est.distinct_queries, (log.len() - repeats) as u64);

    // Reference embeddings: the distinct normalised queries in order of first appearance.
    let encoder = load_encoder(&encoder_dir(), &Default::default())?;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut distinct: Vec<String> = Vec::new();
    let ids: Vec<usize> = log
        .iter()
        .map(|r| {
            let k = normalise(&r.text);
            *index.entry(k.clone()).or_insert_with(|| {
                distinct.push(k);
                distinct.len() - 1
            })
        })
        .collect();
    let refs: Vec<&str> = distinct.iter().map(String::as_str).collect();
    let emb = encoder.embed(&refs, 64, &ctx)?;
    let quality = correctness(&encoder, &pairs_path, 4.0, &ctx)?;

    assert_eq!(est.rows.len(), 24);
    let mut semantic_seen = false;
    for row in &est.rows {
        let cfg = CacheConfig {
            threshold: row.threshold,
            capacity: row.capacity,
            ttl_seconds: row.ttl_seconds,
            updates: Cadence::parse(&row.updates)?,
        };
        let (exact, semantic, wrong, flushes) = naive_replay(&cfg, &log, &ids, &emb, &|s| quality.wrong_probability(s));
        let what = format!("{cfg:?}");
        assert_eq!((row.exact_hits, row.semantic_hits, row.flushes), (exact, semantic, flushes), "{what}");
        let share = row.wrong_answer_share.unwrap_or(f64::NAN);
        let want = if semantic == 0 { 0.0 } else { wrong / semantic as f64 };
        assert!((share - want).abs() < 1e-9, "{what}: wrong share {share} vs {want}");
        assert_eq!(row.truncated_lookups, 0);
        semantic_seen |= semantic > 10;
        if cfg.threshold >= 1.0 && cfg.capacity > log.len() && cfg.ttl_seconds.is_none() && flushes == 0 {
            assert_eq!(exact as usize, repeats, "every known repeat is an exact hit, and nothing else");
        }
    }
    assert!(semantic_seen, "the paraphrases must produce semantic hits at 0.8");
    assert!(est.rows.iter().any(|r| r.flushes > 0), "the log spans days: daily updates flush");

    // Tenants' shares are their output tokens' shares.
    let total: u64 = log.iter().map(|r| r.output_tokens).sum();
    for t in &est.tenants {
        let mine: u64 = log.iter().filter(|r| r.tenant == t.name).map(|r| r.output_tokens).sum();
        assert!((t.share - mine as f64 / total as f64).abs() < 1e-12, "{}", t.name);
    }
    // Precision at a threshold, counted here from the pair cosines.
    let q = est.quality.as_ref().expect("quality");
    let q90 = q.thresholds.iter().find(|t| t.threshold == 0.9).expect("0.9");
    assert_eq!(q90.pairs_above, quality.at(0.9).pairs_above);
    assert!(q90.pairs_above > 5 && q90.precision.is_some_and(|p| p > 0.3 && p <= 1.0));
    Ok(())
}

#[test]
fn hnsw_finds_the_pairs_exact_search_finds() -> Result<(), TrafficError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let body: String = std::iter::once("query".to_string())
        .chain(stsb().into_iter().take(700).flat_map(|(_, a, b)| [a, b]))
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("log.tsv");
    std::fs::write(&path, body).expect("log");
    let spec = EstimateSpec {
        thresholds: vec![0.6, 0.8],
        search: SearchChoice::Auto,
        // Exact search for the first 200 distinct queries, then the index moves onto HNSW.
        exact_up_to: 200,
        check_recall: true,
        // Small steps so most pairs are found through the graph, not within one step.
        chunk: 100,
        ..EstimateSpec::new(&path, &encoder_dir())
    };
    let est = estimate(&spec, &JobContext::silent())?;
    let recall = est.search.pair_recall.expect("recall measured");
    assert!(recall >= 0.99, "HNSW pair recall {recall}");
    let used = &est.search.used;
    assert!(used.starts_with("exact up to ") && used.ends_with(" distinct queries, then HNSW"), "{used}");
    assert!(est.rows[0].semantic_hits > 100, "{:?}", est.rows[0]);
    Ok(())
}

#[test]
fn bad_input_is_named_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let run = |log: &Path, f: &dyn Fn(&mut EstimateSpec)| {
        let mut spec = EstimateSpec::new(log, &encoder_dir());
        f(&mut spec);
        estimate(&spec, &JobContext::silent()).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let empty = write("empty.txt", "\n\n");
    assert!(run(&empty, &|_| {}).contains("holds no queries"));
    let log = write("ok.txt", "hello\nworld\n");
    assert!(run(&log, &|s| s.thresholds = vec![0.9, 1.5]).contains("1.5 is outside [−1, 1]"));
    assert!(run(&log, &|s| s.ttls = vec![Some(60.0)]).contains("has no timestamps"));
    let decoder = repo("models/stories260K");
    let e = run(&log, &|s| s.encoder = decoder.clone());
    assert!(e.contains("not a BERT-style sentence encoder"), "{e}");
    let backwards = write(
        "b.jsonl",
        "{\"query\":\"a\",\"ts\":\"2026-01-02T00:00:00Z\"}\n{\"query\":\"b\",\"ts\":\"2026-01-01T00:00:00Z\"}\n",
    );
    let e = run(&backwards, &|_| {});
    assert!(e.contains("b.jsonl:2: timestamp 2026-01-01T00:00:00Z is earlier"), "{e}");
    let pairs_not_pairs = write("sst.tsv", "sentence\tlabel\nfine\t1\n");
    assert!(run(&log, &|s| s.pairs = Some(pairs_not_pairs.clone())).contains("not scored sentence pairs"));
}
