//! pareto-projection: hardware catalog and memory / latency / cost / energy projection.
