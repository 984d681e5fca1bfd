//! The comparison chart: bars with error bars per entry, or a line per entry over a sweep,
//! with the legend beside the plot, sized to the longest name.

use mnnn_zoo::compare::Comparison;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One colour per row for up to sixteen rows (the main job draws fourteen): tab10, then six
/// darker ones far from them, so no two lines of a comparison share a colour.
const COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 128, 128),
    RGBColor(204, 153, 0),
    RGBColor(102, 0, 102),
];

/// Lowest value the y axis shows: a score far below zero (an R² of −40) would squash every
/// useful difference, so such values get a mark at the axis with their number instead.
const FLOOR: f64 = -1.0;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Width in pixels of `text` at 13 px sans-serif, generously, so no name overflows.
fn text_width(text: &str) -> u32 {
    text.chars().count() as u32 * 8 + 8
}

/// The title: task, metric, and what the error bars are.
fn title(c: &Comparison) -> String {
    let metric = c.metric.name();
    if c.seeds > 1 {
        format!("{} — {metric}, mean ± sd over {} seeds", c.task, c.seeds)
    } else {
        format!("{} — {metric}, 1 seed", c.task)
    }
}

/// Draws the legend (a swatch and the name per row) into `area`.
fn legend(area: &DrawingArea<SVGBackend, Shift>, names: &[&str]) -> Result<(), String> {
    for (k, name) in names.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let y = 40 + 20 * k as i32;
        area.draw(&Rectangle::new([(4, y - 5), (20, y + 5)], color.filled()))
            .map_err(err)?;
        area.draw(&Text::new(
            name.to_string(),
            (26, y - 7),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A value below the axis: a black triangle on the floor (visible on a bar of any colour)
/// and the value beside it.
fn below_axis<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x: f64,
    bottom: f64,
    value: f64,
) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(
            EmptyElement::at((x, bottom))
                + TriangleMarker::new((0, -2), 6, BLACK.filled())
                + Text::new(
                    format!("{value:.2}"),
                    (6, -16),
                    ("sans-serif", 11).into_font(),
                ),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The y axis: from the lowest mean − sd (clamped to [`FLOOR`], 0) up to 1. Both metrics (R²,
/// accuracy) are at most 1, so a wide sd (a seed that diverged) must not stretch the axis
/// above it and squash every score into a sliver.
fn y_range(c: &Comparison) -> (f64, f64) {
    let sd = |p: &mnnn_zoo::compare::Point| if c.seeds > 1 { p.sd } else { 0.0 };
    let bottom = c
        .rows
        .iter()
        .flat_map(|r| r.points.iter())
        .map(|p| p.mean - sd(p))
        .filter(|v| v.is_finite())
        .fold(f64::MAX, f64::min)
        .clamp(FLOOR, 0.0);
    (bottom, 1.0)
}

/// Writes the chart of `c` to `path` as SVG.
pub fn write_svg(c: &Comparison, path: &Path) -> Result<(), String> {
    let names: Vec<&str> = c.rows.iter().map(|r| r.entry.as_str()).collect();
    let legend_width = names.iter().map(|n| text_width(n)).max().unwrap_or(0) + 40;
    let root = SVGBackend::new(path, (720 + legend_width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (plot, side) = root.split_horizontally(720);
    legend(&side, &names)?;
    let metric = c.metric.name();
    let (bottom, top) = y_range(c);
    let sweep = c
        .rows
        .first()
        .filter(|r| r.points.len() > 1 && c.sweep.is_some());
    let mut chart = ChartBuilder::on(&plot);
    chart
        .caption(title(c), ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56);
    if let Some(first) = sweep {
        // The swept values are evenly spaced by position: the sweeps are geometric (delays
        // 1–32, context lengths 256–256K), so this is their log scale, with a tick and a
        // label at each swept value and at nothing else.
        let labels: Vec<String> = first.points.iter().map(|p| p.label.clone()).collect();
        let n = labels.len();
        let mut chart = chart
            .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), bottom..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(n)
            .x_label_formatter(&|x| at_index(&labels, *x))
            .x_desc(c.sweep.as_deref().unwrap_or("x"))
            .y_desc(metric)
            .draw()
            .map_err(err)?;
        for (k, row) in c.rows.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let pts: Vec<(f64, f64)> = row
                .points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.mean.is_finite())
                .map(|(i, p)| (i as f64, p.mean.max(bottom)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
            for (i, p) in row.points.iter().enumerate() {
                let x = i as f64;
                if c.seeds > 1 && p.sd > 0.0 && p.mean >= bottom {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![
                                (x, (p.mean - p.sd).max(bottom)),
                                (x, (p.mean + p.sd).min(top)),
                            ],
                            color.stroke_width(1),
                        )))
                        .map_err(err)?;
                }
                if p.mean < bottom {
                    below_axis(&mut chart, x, bottom, p.mean)?;
                }
            }
        }
    } else {
        let n = c.rows.len();
        let mut chart = chart
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, bottom..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| at_index(&names, *x))
            .y_desc(metric)
            .draw()
            .map_err(err)?;
        for (k, row) in c.rows.iter().enumerate() {
            let Some(p) = row.points.first().filter(|p| p.mean.is_finite()) else {
                continue;
            };
            let color = COLORS[k % COLORS.len()];
            let x = k as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, 0.0f64.max(bottom)), (x + 0.3, p.mean.max(bottom))],
                    color.filled(),
                )))
                .map_err(err)?;
            if c.seeds > 1 && p.mean >= bottom {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![
                            (x, (p.mean - p.sd).max(bottom)),
                            (x, (p.mean + p.sd).min(top)),
                        ],
                        BLACK.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
            if p.mean < bottom {
                below_axis(&mut chart, x, bottom, p.mean)?;
            }
        }
    }
    root.present().map_err(err)
}

/// The label at integer position `x`, and none between: plotters asks for labels at
/// positions of its own choosing.
fn at_index<S: AsRef<str>>(labels: &[S], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        labels
            .get(i as usize)
            .map(|s| s.as_ref().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnnn_zoo::compare::{Budget, Point, Row};
    use mnnn_zoo::tasks::Metric;

    fn point(mean: f64, sd: f64) -> Point {
        Point {
            x: Some(1.0),
            label: "1".into(),
            mean,
            sd,
            values: vec![],
            rmse: None,
        }
    }

    fn comparison(points: Vec<Point>, seeds: usize) -> Comparison {
        Comparison {
            task: "t".into(),
            metric: Metric::R2,
            sweep: None,
            seeds,
            budget: Budget::Updates(1),
            rows: vec![Row {
                entry: "e".into(),
                family: "member".into(),
                params: 1,
                state_floats: 1,
                learning_rate: 0.01,
                points,
                train_tokens_per_second: 0.0,
                inference_tokens_per_second: 0.0,
                peak_heap_mib: None,
            }],
        }
    }

    #[test]
    fn a_diverged_seed_does_not_stretch_the_axis_above_one() {
        // Three seeds of R² 0.26, −0.38 and −57.7: mean −19.3, sd 33.3.
        let c = comparison(vec![point(0.99, 0.01), point(-19.26, 33.26)], 3);
        assert_eq!(y_range(&c), (FLOOR, 1.0));
        // Scores within [0, 1] keep the axis at [0, 1]; with one seed the sd is not drawn.
        let c = comparison(vec![point(0.5, 0.7)], 1);
        assert_eq!(y_range(&c), (0.0, 1.0));
        let c = comparison(vec![point(0.5, 0.75)], 3);
        assert_eq!(y_range(&c), (-0.25, 1.0));
    }
}
