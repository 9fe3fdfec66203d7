//! Charts as inline SVG, drawn on the server: readable without script, allowed by the
//! strict Content-Security-Policy, and testable as markup.

use maud::{html, Markup};

/// One stacked series: its name and colour.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
}

/// What a chart is, in words: its title (the accessible name of the drawing) and the
/// header of the date column and of the data table that is its text alternative.
pub struct Words<'a> {
    /// The chart's title.
    pub title: &'a str,
    /// The header of the labels' column (`日期`…).
    pub label: &'a str,
    /// The data table's summary line (`数据表`…).
    pub data: &'a str,
    /// The word for the sum of all values (`合计`…).
    pub total: &'a str,
}

/// A stacked bar chart: one bar per column (`labels`), each the stack of `values[col]`
/// (one value per series). `id` names the `<svg>`; `data-total` holds the sum of all
/// values, so a test (or a person) can read the chart's figure directly. The drawing is
/// named by its title and the total; its text alternative is the same figures as a table
/// (every non-empty column), folded under the chart: a screen reader, or a person who
/// wants the numbers, reads them there.
pub fn stacked_bars(
    id: &str,
    words: &Words<'_>,
    labels: &[String],
    values: &[Vec<i64>],
    series: &[Series],
) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 36.0;
    const BOTTOM: f64 = 22.0;
    const TOP: f64 = 8.0;
    let total: i64 = values.iter().flatten().sum();
    let max = values
        .iter()
        .map(|col| col.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    // A round axis top: 1, 2 or 5 times a power of ten.
    let mut top = 1i64;
    while top < max {
        top = match top.to_string().as_bytes()[0] {
            b'1' => top * 2,
            b'2' => top / 2 * 5,
            _ => top * 2,
        };
    }
    let plot_h = H - BOTTOM - TOP;
    let slot = (W - LEFT) / labels.len().max(1) as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let y = |v: i64| TOP + plot_h - plot_h * v as f64 / top as f64;
    // Each bar's segments, bottom up: (x, top y, height, colour, tooltip).
    let mut bars = Vec::new();
    for (i, (label, col)) in labels.iter().zip(values).enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut base = 0i64;
        let mut segments = Vec::new();
        for (value, s) in col.iter().zip(series) {
            if *value > 0 {
                let tip = format!("{label} · {}: {value}", s.name);
                segments.push((y(base + value), y(base) - y(base + value), s.color, tip));
            }
            base += value;
        }
        // Every other label when there are many columns.
        let shown =
            (labels.len() <= 16 || i % 2 == 0).then(|| label.get(5..).unwrap_or(label).to_owned());
        bars.push((x, segments, shown));
    }
    html! {
        svg id=(id) .chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby={ (id) "-title" } data-total=(total) {
            title id={ (id) "-title" } { (words.title) " · " (words.total) " " (total) }
            @for tick in [0, top / 2, top] {
                line x1=(LEFT) x2=(W) y1=(y(tick)) y2=(y(tick)) stroke="#e2e5ea" {}
                text x=(LEFT - 4.0) y=(y(tick) + 4.0) text-anchor="end" { (tick) }
            }
            @for (x, segments, shown) in &bars {
                @for (top_y, height, color, tip) in segments {
                    rect x=(x) width=(bar_w) y=(top_y) height=(height) fill=(color) {
                        title { (tip) }
                    }
                }
                @if let Some(text) = shown {
                    text x=(x + bar_w / 2.0) y=(H - 6.0) text-anchor="middle" { (text) }
                }
            }
        }
        (legend(series))
        details .chart-data {
            summary { (words.data) }
            div .table-wrap { table id={ (id) "-data" } {
                thead { tr { th { (words.label) } @for s in series { th .num { (s.name) } } } }
                tbody {
                    @for (label, col) in labels.iter().zip(values).filter(|(_, col)| col.iter().any(|v| *v != 0)) {
                        tr { td { (label) } @for v in col { td .num { (v) } } }
                    }
                }
            } }
        }
    }
}

/// The colour key of a chart (SVG swatches: the policy allows no inline styles).
pub fn legend(series: &[Series]) -> Markup {
    html! {
        div .legend {
            @for s in series {
                span {
                    svg width="10" height="10" { rect width="10" height="10" rx="2" fill=(s.color) {} }
                    " " (s.name)
                }
            }
        }
    }
}
