//! The dashboard's charts, drawn as SVG text by `plotters` (its SVG backend
//! alone: text is measured by its built-in estimate, so no font library).
//!
//! Each chart writes its data labels (the figure a bar stands for) in
//! [`LABEL`], a colour no axis uses, so a reader of the SVG (the browser
//! test) can tell the data from the ticks.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The colour of data labels (axis text is black).
pub const LABEL: RGBColor = RGBColor(0x11, 0x22, 0x33);

/// Series colours, in order (a colour-blind-safe palette, Okabe and Ito's).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(100, 100, 100),
];

/// The `i`-th series colour.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A chart could not be drawn (plotters' own error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing a chart failed: {0}")]
pub struct ChartError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self(e.to_string())
    }
}

/// One named series: a value per category.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// One value per category.
    pub values: Vec<f64>,
}

/// Width and height of a chart, pixels.
const SIZE: (u32, u32) = (560, 260);

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

fn draw<F>(size: (u32, u32), paint: F) -> Result<String, ChartError>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError>,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        paint(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Formats a figure for a label: integers as such, others with two digits.
pub fn figure(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Bars per category, the series stacked, each bar's total written above it.
pub fn stacked_bars(
    caption: &str,
    unit: &str,
    categories: &[String],
    series: &[Series],
) -> Result<String, ChartError> {
    let n = categories.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|c| {
            series
                .iter()
                .map(|s| s.values.get(c).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().fold(0.0, f64::max).max(1.0) * 1.2;
    draw(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, font(17))
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let label = |x: &f64| {
            let i = x.floor().max(0.0) as usize;
            // A tick in the middle of a category names it; others stay blank.
            if (x - x.floor() - 0.5).abs() < 1e-9 {
                categories.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(2)
            .x_labels(n.min(12) * 2 + 1)
            .x_label_formatter(&label)
            .y_desc(unit)
            .label_style(font(13))
            .draw()?;
        let mut base = vec![0.0; n];
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let bars: Vec<_> = (0..n)
                .filter_map(|b| {
                    let v = s.values.get(b).copied().unwrap_or(0.0);
                    let from = base[b];
                    base[b] += v;
                    (v > 0.0).then(|| {
                        Rectangle::new(
                            [(b as f64 + 0.15, from), (b as f64 + 0.85, from + v)],
                            c.filled(),
                        )
                    })
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        let style = font(13)
            .color(&LABEL)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(
            totals
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0.0)
                .map(|(b, t)| Text::new(figure(*t), (b as f64 + 0.5, *t), style.clone())),
        )?;
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(font(13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()?;
        }
        Ok(())
    })
}

/// One line per series over the categories, its points marked.
pub fn lines(
    caption: &str,
    unit: &str,
    categories: &[String],
    series: &[Series],
) -> Result<String, ChartError> {
    let n = categories.len().max(1);
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.2;
    draw(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, font(17))
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let label = |x: &f64| {
            if (x - x.floor() - 0.5).abs() < 1e-9 {
                categories
                    .get(x.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(2)
            .x_labels(n.min(12) * 2 + 1)
            .x_label_formatter(&label)
            .y_desc(unit)
            .label_style(font(13))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = s
                .values
                .iter()
                .enumerate()
                .map(|(b, v)| (b as f64 + 0.5, *v))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], c.stroke_width(2)));
            chart.draw_series(
                points
                    .into_iter()
                    .filter(|(_, v)| *v > 0.0)
                    .map(|p| Circle::new(p, 3, c.filled())),
            )?;
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(font(13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()?;
        }
        Ok(())
    })
}

/// One horizontal bar per item, its figure written at its end. Negative
/// values grow left of zero (the router's signals push either way).
pub fn horizontal_bars(
    caption: &str,
    unit: &str,
    items: &[(String, f64)],
) -> Result<String, ChartError> {
    let n = items.len().max(1);
    let hi = items.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let lo = items.iter().map(|(_, v)| *v).fold(0.0, f64::min);
    let pad = (hi - lo).max(1e-6) * 0.25;
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let height = 60 + 26 * n as u32;
    draw((SIZE.0, height.max(120)), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, font(17))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(150)
            .build_cartesian_2d(lo..hi, 0f64..n as f64)?;
        // Item 0 at the top.
        let label = |y: &f64| {
            if (y - y.floor() - 0.5).abs() < 1e-9 {
                let from_top = n - 1 - (y.floor().max(0.0) as usize).min(n - 1);
                items
                    .get(from_top)
                    .map(|(l, _)| l.clone())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .max_light_lines(2)
            .y_labels(n * 2 + 1)
            .y_label_formatter(&label)
            .x_desc(unit)
            .label_style(font(13))
            .draw()?;
        let row = |i: usize| (n - 1 - i) as f64;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let c = if *v < 0.0 { colour(2) } else { colour(0) };
            Rectangle::new([(0.0, row(i) + 0.2), (*v, row(i) + 0.8)], c.filled())
        }))?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let h = if *v < 0.0 { HPos::Right } else { HPos::Left };
            let style = font(13).color(&LABEL).pos(Pos::new(h, VPos::Center));
            Text::new(format!(" {} ", figure(*v)), (*v, row(i) + 0.5), style)
        }))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data labels of an SVG: text in [`LABEL`]'s colour.
    fn labels(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter(|t| t.contains("fill=\"#112233\""))
            .filter_map(|t| {
                t.split_once('>')
                    .and_then(|(_, rest)| rest.split_once("</text>"))
            })
            .map(|(text, _)| text.trim().to_owned())
            .collect()
    }

    #[test]
    fn stacked_bars_label_each_bucket_with_its_total() {
        let categories = vec!["10:00".to_owned(), "10:05".to_owned(), "10:10".to_owned()];
        let series = vec![
            Series {
                name: "small <b>".into(),
                values: vec![2.0, 0.0, 1.0],
            },
            Series {
                name: "large".into(),
                values: vec![3.0, 0.0, 0.0],
            },
        ];
        let svg = stacked_bars("Requests", "requests", &categories, &series).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(labels(&svg), ["5", "1"], "an empty bucket has no label");
        assert!(svg.contains("small &lt;b&gt;"), "legend text is escaped");
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("10:05"), "categories name the ticks");
    }

    #[test]
    fn horizontal_bars_label_signed_values() {
        let items = vec![
            ("code_fences".to_owned(), 1.5),
            ("word:hi".to_owned(), -0.25),
        ];
        let svg = horizontal_bars("Signals", "weight", &items).unwrap();
        assert_eq!(labels(&svg), ["1.50", "-0.25"]);
        assert!(svg.contains("code_fences") && svg.contains("word:hi"));
    }

    #[test]
    fn lines_draw_a_path_per_series() {
        let categories = vec!["a".to_owned(), "b".to_owned()];
        let series = vec![Series {
            name: "tokens".into(),
            values: vec![10.0, 20.0],
        }];
        let svg = lines("Tokens", "tokens", &categories, &series).unwrap();
        // The first series' colour, #0072B2: one line and its two points.
        let line = svg
            .split("<polyline")
            .filter(|p| p.contains("stroke=\"#0072B2\""))
            .count();
        assert_eq!(line, 2, "the line and its legend mark: {svg}");
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
    }
}
