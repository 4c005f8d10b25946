//! Inline SVG charts: no scripts, no fonts beyond the system's, so the page works offline.

use std::fmt::Write;

use crate::compare::VariantRow;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Lowest accuracy change drawn to scale, in percent.
const FLOOR_PCT: f64 = -50.0;

/// Accuracy (the chosen metric's change, in percent when relative) against cost; frontier points
/// joined, dominated points grey. Variants without an accuracy measurement are listed, not plotted.
pub fn frontier(rows: &[VariantRow], by_usd: bool, axis: &str) -> String {
    let relative = rows.iter().any(|r| r.metric_change.is_some() && r.change_is_relative);
    let (scale, unit, floor) = if relative { (100.0, "%", FLOOR_PCT) } else { (1.0, "", f64::MIN) };
    let pts: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let c = if by_usd { r.usd_month? } else { r.planned_bytes as f64 };
            Some((i, c, r.metric_change? * scale))
        })
        .collect();
    let (w, h, l, b, t, rgt) = (640.0, 360.0, 90.0, 50.0, 20.0, 30.0);
    let mut s = String::new();
    let _ =
        write!(s, r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="accuracy versus cost frontier">"#);
    if pts.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">No variant has both a measured accuracy and a cost.</text></svg>"#,
            w / 2.0,
            h / 2.0
        );
        return s;
    }
    let (mut cmin, mut cmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, z), p| (a.min(p.1), z.max(p.1)));
    let (mut amin, mut amax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, z), p| (a.min(p.2), z.max(p.2)));
    amax = amax.max(0.0);
    // A variant that collapsed (say −2600%) would flatten every other point onto one line: clip
    // the axis and mark such points as off scale instead.
    amin = amin.max(floor);
    if (cmax - cmin).abs() < 1e-12 {
        cmin *= 0.9;
        cmax = cmax * 1.1 + 1.0;
    }
    if (amax - amin).abs() < 1e-12 {
        amin -= 1.0;
    }
    let pad_c = (cmax - cmin) * 0.08;
    let pad_a = (amax - amin) * 0.12;
    let (cmin, cmax, amin, amax) = (cmin - pad_c, cmax + pad_c, amin - pad_a, amax + pad_a);
    let x = |c: f64| l + (c - cmin) / (cmax - cmin) * (w - l - rgt);
    let y = |a: f64| t + (amax - a) / (amax - amin) * (h - t - b);
    // Axes, ticks and the zero-loss line.
    let _ = write!(s, r##"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#555"/>"##, h - b, w - rgt, h - b);
    let _ = write!(s, r##"<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="#555"/>"##, h - b);
    for k in 0..=4 {
        let c = cmin + (cmax - cmin) * f64::from(k) / 4.0;
        let a = amin + (amax - amin) * f64::from(k) / 4.0;
        let label = if by_usd { format!("${c:.0}") } else { human_bytes(c) };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            x(c),
            h - b + 16.0,
            esc(&label)
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{a:+.2}{unit}</text>"#,
            l - 6.0,
            y(a) + 4.0
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        y(0.0),
        w - rgt
    );
    let xlabel = if by_usd { "projected $/month (estimate)" } else { "stored weight bytes" };
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{xlabel}</text>"#,
        (l + w - rgt) / 2.0,
        h - 10.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(axis)
    );
    let mut front: Vec<&(usize, f64, f64)> = pts.iter().filter(|p| rows[p.0].on_frontier).collect();
    front.sort_by(|a, b| a.1.total_cmp(&b.1));
    if front.len() > 1 {
        let path: Vec<String> = front.iter().map(|p| format!("{:.1},{:.1}", x(p.1), y(p.2))).collect();
        let _ = write!(
            s,
            r##"<polyline class="frontier" points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
            path.join(" ")
        );
    }
    for &(i, c, a_true) in &pts {
        let r = &rows[i];
        let a = a_true.max(amin);
        let label =
            if a_true < amin { format!("{} ↓ off scale ({a_true:+.0}{unit})", r.name) } else { r.name.clone() };
        let (fill, cls) = if r.dominated { ("#bbbbbb", "dominated") } else { ("#1f77b4", "frontier-point") };
        let _ = write!(
            s,
            r#"<g class="{cls}"><circle cx="{:.1}" cy="{:.1}" r="6" fill="{fill}"><title>{}: {a_true:+.3}{unit} at {}</title></circle><text x="{:.1}" y="{:.1}" font-size="11" fill="{}" text-anchor="{}">{}</text></g>"#,
            x(c),
            y(a),
            esc(&r.name),
            if by_usd { format!("${c:.0}/month") } else { human_bytes(c) },
            if x(c) > w * 0.7 { x(c) - 8.0 } else { x(c) + 8.0 },
            y(a) - 8.0,
            if r.dominated { "#888" } else { "#111" },
            if x(c) > w * 0.7 { "end" } else { "start" },
            esc(&label)
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal stacked bars: one bar per variant, one segment per (label, value).
pub fn stacked_bars(label: &str, bars: &[(String, Vec<(String, f64)>)], unit: &dyn Fn(f64) -> String) -> String {
    let palette =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
    let mut keys: Vec<&str> = Vec::new();
    for (_, segs) in bars {
        for (k, _) in segs {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let max = bars.iter().map(|(_, s)| s.iter().map(|x| x.1).sum::<f64>()).fold(0.0, f64::max).max(1e-9);
    let (w, row, l) = (640.0, 26.0, 150.0);
    let mut s = String::new();
    for (bi, (name, segs)) in bars.iter().enumerate() {
        let yy = 10.0 + row * bi as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            l - 6.0,
            yy + 14.0,
            esc(name)
        );
        let mut xx = l;
        for (k, v) in segs {
            let ww = v / max * (w - l - 90.0);
            let ci = keys.iter().position(|x| x == k).unwrap_or(0) % palette.len();
            let _ = write!(
                s,
                r#"<rect x="{xx:.1}" y="{yy:.1}" width="{ww:.1}" height="18" fill="{}"><title>{}: {}</title></rect>"#,
                palette[ci],
                esc(k),
                esc(&unit(*v))
            );
            xx += ww;
        }
        let total: f64 = segs.iter().map(|x| x.1).sum();
        let _ =
            write!(s, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, xx + 4.0, yy + 14.0, esc(&unit(total)));
    }
    // Legend below the bars, wrapping onto as many lines as it needs.
    let mut lx = l;
    let mut ly = row * bars.len() as f64 + 26.0;
    let mut legend = String::new();
    for (i, k) in keys.iter().enumerate() {
        let item = 24.0 + 6.5 * k.chars().count() as f64;
        if lx + item > w && lx > l {
            lx = l;
            ly += 16.0;
        }
        let _ = write!(
            legend,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}" font-size="11">{}</text>"#,
            ly - 9.0,
            palette[i % palette.len()],
            lx + 14.0,
            esc(k)
        );
        lx += item;
    }
    let h = ly + 10.0;
    format!(r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}">{s}{legend}</svg>"#, esc(label))
}

/// A heatmap: one row per `rows` entry, one column per `columns` entry, colour = the value (white →
/// red, scaled to the largest); each cell's hover text says `{row}, {column prefix}{column}: {what} {value}`.
pub struct Heat<'a> {
    pub rows: &'a [String],
    pub columns: &'a [String],
    /// `cells[row][column]`; `None` is drawn grey and said as `missing`.
    pub cells: &'a [&'a [Option<f64>]],
    pub what: &'a str,
    /// Prefix of a column in the hover text ("layer ").
    pub column_prefix: &'a str,
    pub missing: &'a str,
    pub label: &'a str,
    /// Name every column above the grid (tensor kinds); otherwise the footer gives the range (layers).
    pub column_labels: bool,
}

pub fn heatmap(h: &Heat<'_>) -> String {
    let max = h.cells.iter().flat_map(|r| r.iter()).flatten().fold(0.0f64, |a, &b| a.max(b)).max(1e-12);
    // A fixed drawing width so text keeps its size whatever the column count.
    let (w, l, rh) = (640.0, 150.0, 22.0);
    // Slanted column names run past their column: leave them room on the right.
    let right = if h.column_labels { 90.0 } else { 20.0 };
    let cw = (w - l - right) / h.columns.len().max(1) as f64;
    // Column names stand above the grid, slanted so long ones fit.
    let top = if h.column_labels { 96.0 } else { 6.0 };
    let height = top + rh * h.rows.len() as f64 + 34.0;
    let mut s =
        format!(r#"<svg class="chart" viewBox="0 0 {w:.0} {height:.0}" role="img" aria-label="{}">"#, esc(h.label));
    if h.column_labels {
        for (ci, c) in h.columns.iter().enumerate() {
            let (x, y) = (l + cw * (ci as f64 + 0.5), top - 6.0);
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{y:.1}" font-size="10" transform="rotate(-40 {x:.1} {y:.1})">{}</text>"#,
                esc(c)
            );
        }
    }
    for (ri, (name, row)) in h.rows.iter().zip(h.cells).enumerate() {
        let yy = top + rh * ri as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            l - 6.0,
            yy + 14.0,
            esc(name)
        );
        for (ci, v) in row.iter().enumerate() {
            let xx = l + cw * ci as f64;
            let column = h.columns.get(ci).map_or("", String::as_str);
            let (fill, tip) = match v {
                Some(v) => {
                    let k = (v / max).clamp(0.0, 1.0);
                    let g = (255.0 * (1.0 - k)) as u8;
                    (format!("rgb(255,{g},{g})"), format!("{name}, {}{column}: {} {v:.5}", h.column_prefix, h.what))
                }
                None => ("#eeeeee".into(), format!("{name}, {}{column}: {}", h.column_prefix, h.missing)),
            };
            let _ = write!(
                s,
                r##"<rect x="{xx:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="#fff"><title>{}</title></rect>"##,
                cw,
                rh - 2.0,
                esc(&tip)
            );
        }
    }
    let range = match (h.column_labels, h.columns.first(), h.columns.last()) {
        (false, Some(first), Some(last)) => format!("{}{first} → {last} · ", h.column_prefix),
        _ => String::new(),
    };
    let _ = write!(
        s,
        r#"<text x="{l}" y="{:.1}" font-size="11">{}darker = larger {} (max {max:.4})</text>"#,
        height - 12.0,
        esc(&range),
        esc(h.what)
    );
    s.push_str("</svg>");
    s
}

pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v:.0} B") } else { format!("{v:.2} {}", UNITS[u]) }
}
