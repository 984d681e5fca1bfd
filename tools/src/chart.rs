//! The comparison chart: bars with error bars per entry, or a line per entry over a sweep.

use mnnn_zoo::compare::Comparison;
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Writes the chart of `c` to `path` as SVG.
pub fn write_svg(c: &Comparison, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (820, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let metric = c.metric.name();
    let title = format!("{} — {metric} (mean ± sd over {} seeds)", c.task, c.seeds);
    let values = c
        .rows
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.mean + p.sd));
    let lows = c
        .rows
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.mean - p.sd));
    let top = values.fold(f64::MIN, f64::max).max(1.0);
    let bottom = lows.fold(f64::MAX, f64::min).clamp(-1.0, 0.0);
    let sweep_x: Vec<f64> = c
        .rows
        .first()
        .map(|r| r.points.iter().filter_map(|p| p.x).collect())
        .unwrap_or_default();
    if let (Some(name), true) = (&c.sweep, sweep_x.len() > 1) {
        let (lo, hi) = (
            sweep_x.iter().cloned().fold(f64::MAX, f64::min),
            sweep_x.iter().cloned().fold(f64::MIN, f64::max),
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), bottom..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(name.as_str())
            .y_desc(metric)
            .draw()
            .map_err(err)?;
        for (k, row) in c.rows.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let pts: Vec<(f64, f64)> = row
                .points
                .iter()
                .filter_map(|p| p.x.map(|x| (x, p.mean)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(row.entry.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    } else {
        let n = c.rows.len();
        let names: Vec<String> = c.rows.iter().map(|r| r.entry.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, bottom..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(metric)
            .draw()
            .map_err(err)?;
        for (k, row) in c.rows.iter().enumerate() {
            let p = &row.points[0];
            let color = COLORS[k % COLORS.len()];
            let x = k as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, 0.0f64.max(bottom)), (x + 0.3, p.mean)],
                    color.filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, p.mean - p.sd), (x, p.mean + p.sd)],
                    BLACK.stroke_width(2),
                )))
                .map_err(err)?;
        }
    }
    root.present().map_err(err)
}
