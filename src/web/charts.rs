//! Charts drawn on the server as SVG: horizontal bars for shares and counts, stacked
//! columns for a series over days. The geometry is computed here and the template
//! only places it, so labels are escaped like every other value on a page; colours
//! come from the stylesheet (`.s0`…`.s7`), since the CSP allows no inline style.

use askama::Template;

/// One bar: what, how much, and the value as written beside it.
pub struct Bar {
    /// The label on the left.
    pub label: String,
    /// The length.
    pub value: f64,
    /// The value as text.
    pub text: String,
}

/// One series of a column chart: a value per day.
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// One value per column.
    pub values: Vec<i64>,
}

const WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 150.0;
const BAR_AREA: f64 = 360.0;
const ROW: f64 = 26.0;
const TOP: f64 = 28.0;

/// A bar placed.
pub struct PlacedBar {
    label: String,
    text: String,
    y: f64,
    width: f64,
    text_x: f64,
}

#[derive(Template)]
#[template(path = "charts/bars.html")]
struct BarsChart<'a> {
    title: &'a str,
    height: f64,
    bars: Vec<PlacedBar>,
    label_width: f64,
}

/// Horizontal bars, scaled to `max` (or the largest value).
pub fn bars(title: &str, bars: &[Bar], max: Option<f64>) -> String {
    let max = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(f64::EPSILON);
    let placed = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let width = (b.value / max * BAR_AREA).clamp(0.0, BAR_AREA);
            PlacedBar {
                label: b.label.clone(),
                text: b.text.clone(),
                y: TOP + i as f64 * ROW,
                width: (width * 10.0).round() / 10.0,
                text_x: LABEL_WIDTH + width + 6.0,
            }
        })
        .collect::<Vec<_>>();
    let chart = BarsChart {
        title,
        height: TOP + placed.len().max(1) as f64 * ROW + 8.0,
        bars: placed,
        label_width: LABEL_WIDTH,
    };
    chart.render().unwrap_or_default()
}

/// One segment of a stacked column.
pub struct Segment {
    class: String,
    name: String,
    value: i64,
    y: f64,
    height: f64,
}

/// A column placed.
pub struct Column {
    x: f64,
    width: f64,
    label: String,
    show_label: bool,
    label_x: f64,
    total: i64,
    segments: Vec<Segment>,
}

/// A legend entry.
pub struct Legend {
    class: String,
    name: String,
    x: f64,
}

#[derive(Template)]
#[template(path = "charts/columns.html")]
struct ColumnsChart<'a> {
    title: &'a str,
    columns: Vec<Column>,
    legend: Vec<Legend>,
    max: i64,
    baseline: f64,
    plot_top: f64,
}

/// Stacked columns, one per label, one colour per series.
pub fn columns(title: &str, labels: &[String], series: &[Series]) -> String {
    let plot_left = 56.0;
    let plot_top = 30.0;
    let baseline = 220.0;
    let plot_height = baseline - plot_top;
    let n = labels.len().max(1);
    let slot = (WIDTH - plot_left - 10.0) / n as f64;
    let totals: Vec<i64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let every = n.div_ceil(8);
    let columns = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            // At most 48 wide, centred in its slot, so a few days do not make slabs.
            let width = (slot * 0.7).min(48.0);
            let x = plot_left + i as f64 * slot + (slot - width) / 2.0;
            let mut top = baseline;
            let segments = series
                .iter()
                .enumerate()
                .filter_map(|(k, s)| {
                    let value = s.values.get(i).copied().unwrap_or(0);
                    (value > 0).then(|| {
                        let height = value as f64 / max as f64 * plot_height;
                        top -= height;
                        Segment {
                            class: format!("s{}", k % 8),
                            name: s.name.clone(),
                            value,
                            y: top,
                            height,
                        }
                    })
                })
                .collect();
            Column {
                x,
                width,
                label: label.clone(),
                show_label: i % every == 0,
                label_x: x + width / 2.0,
                total: totals[i],
                segments,
            }
        })
        .collect();
    let legend = series
        .iter()
        .enumerate()
        .map(|(k, s)| Legend {
            class: format!("s{}", k % 8),
            name: s.name.clone(),
            x: plot_left + k as f64 * 120.0,
        })
        .collect();
    ColumnsChart {
        title,
        columns,
        legend,
        max,
        baseline,
        plot_top,
    }
    .render()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_labels_are_escaped_and_scaled() {
        let svg = bars(
            "Refusals",
            &[
                Bar {
                    label: "<script>".into(),
                    value: 2.0,
                    text: "2".into(),
                },
                Bar {
                    label: "no_consent".into(),
                    value: 4.0,
                    text: "4".into(),
                },
            ],
            None,
        );
        assert!(svg.contains("&#60;script&#62;") || svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        assert!(
            svg.contains(r#"width="360""#),
            "the largest bar fills the area: {svg}"
        );
        assert!(svg.contains(r#"width="180""#));
    }

    #[test]
    fn columns_stack_their_series() {
        let svg = columns(
            "Releases",
            &["2026-11-01".into(), "2026-11-02".into()],
            &[
                Series {
                    name: "cancellation".into(),
                    values: vec![3, 0],
                },
                Series {
                    name: "delay".into(),
                    values: vec![1, 2],
                },
            ],
        );
        assert_eq!(
            svg.matches("<rect class=\"s").count(),
            3 + 2,
            "three segments and two legend keys"
        );
        assert!(svg.contains("cancellation"));
    }
}
