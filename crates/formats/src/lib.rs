//! pareto-formats: the quant-format registry and reference codecs. No I/O, no candle.
