//! The SVG chart both transports draw: notifications/s against the number
//! of connections, one line per setting that varies besides it.

use plotters::prelude::*;

use super::table::grouped;

/// The first lines' colours; more lines take plotters' palette.
const COLORS: [RGBColor; 5] = [BLUE, RED, GREEN, MAGENTA, CYAN];

/// One line of the chart: its legend and its (connections, notifications/s) points.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) points: Vec<(usize, f64)>,
}

/// The chart as SVG: `shards` are the x axis' categories, in order; `against`
/// names the gateway in the caption.
pub(super) fn svg(lines: &[Line], shards: &[usize], against: &str) -> anyhow::Result<String> {
    let top = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("--chart: drawing failed: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("apnsblast tune against {against}"), ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d((0..shards.len() as i32 - 1).into_segmented(), 0.0..top)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("shards (connections in parallel)")
            .y_desc("notifications/s")
            .x_labels(shards.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => shards.get(*i as usize).map_or(String::new(), ToString::to_string),
                _ => String::new(),
            })
            .y_label_formatter(&|y| grouped(*y))
            .draw()
            .map_err(draw)?;
        for (k, line) in lines.iter().enumerate() {
            let color = COLORS.get(k).map_or_else(|| Palette99::pick(k).to_rgba(), |c| c.to_rgba());
            let points: Vec<(SegmentValue<i32>, f64)> = line
                .points
                .iter()
                .filter_map(|&(s, rate)| {
                    let i = shards.iter().position(|&x| x == s)?;
                    Some((SegmentValue::CenterOf(i as i32), rate))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(draw)?
                .label(line.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled()))).map_err(draw)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}
