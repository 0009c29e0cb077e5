//! `--plot FILE.svg`: delay over time (RTT and, with synchronized clocks,
//! the one-way delays) with lost packets marked, and the latency CDF.
//!
//! Memory stays bounded: each target keeps at most [`PLOT_POINTS`] delay
//! points and [`PLOT_LOST`] loss marks. When a list is full, every second
//! entry is dropped and from then on only every second new one is kept
//! (the stride doubles), so the plot always spans the whole run, evenly
//! thinned. The CDF comes from the delay histograms, which are bounded
//! already.

use std::path::Path;

use plotters::prelude::*;
use stamp_core::stats::DelayStats;

/// Delay points kept per target.
pub const PLOT_POINTS: usize = 20_000;
/// Loss marks kept per target.
pub const PLOT_LOST: usize = 5_000;
/// Points of each CDF curve.
const CDF_POINTS: usize = 200;

#[derive(Debug, Clone, Copy)]
struct Point {
    t: f64,
    rtt: f64,
    fwd: Option<f64>,
    bwd: Option<f64>,
}

/// A list thinned by doubling its stride whenever it reaches its cap.
#[derive(Debug, Clone)]
struct Decimated<T> {
    cap: usize,
    stride: u64,
    seen: u64,
    items: Vec<T>,
}

impl<T> Decimated<T> {
    fn new(cap: usize) -> Self {
        Decimated {
            cap: cap.max(2),
            stride: 1,
            seen: 0,
            items: Vec::new(),
        }
    }

    fn push(&mut self, x: T) {
        let keep = self.seen % self.stride == 0;
        self.seen += 1;
        if !keep {
            return;
        }
        if self.items.len() == self.cap {
            let mut i = 0;
            self.items.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
            // This item is at an odd multiple of the old stride: skip it
            // unless it is on the new grid.
            if (self.seen - 1) % self.stride != 0 {
                return;
            }
        }
        self.items.push(x);
    }
}

/// What one target contributes to the plot.
#[derive(Debug, Clone)]
pub struct PlotData {
    points: Decimated<Point>,
    lost: Decimated<f64>,
}

impl Default for PlotData {
    fn default() -> Self {
        PlotData::with_caps(PLOT_POINTS, PLOT_LOST)
    }
}

impl PlotData {
    /// Caps other than the defaults (tests).
    pub fn with_caps(points: usize, lost: usize) -> Self {
        PlotData {
            points: Decimated::new(points),
            lost: Decimated::new(lost),
        }
    }

    /// An answered packet sent `t` seconds into the run.
    pub fn add(&mut self, t: f64, rtt_ms: f64, fwd_ms: Option<f64>, bwd_ms: Option<f64>) {
        self.points.push(Point {
            t,
            rtt: rtt_ms,
            fwd: fwd_ms,
            bwd: bwd_ms,
        });
    }

    /// A lost packet sent `t` seconds into the run.
    pub fn add_lost(&mut self, t: f64) {
        self.lost.push(t);
    }

    /// Points kept.
    #[cfg(test)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.points.items.len()
    }

    /// Loss marks kept.
    #[cfg(test)]
    pub fn lost_len(&self) -> usize {
        self.lost.items.len()
    }
}

/// One target's series.
pub struct Series<'a> {
    /// Suffix of the legend labels ("" for a single target).
    pub label: String,
    /// Delay over time.
    pub data: &'a PlotData,
    /// RTT distribution (CDF).
    pub rtt: &'a DelayStats,
    /// Forward one-way delay distribution.
    pub forward: &'a DelayStats,
    /// Backward one-way delay distribution.
    pub backward: &'a DelayStats,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

fn range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if hi > lo {
        lo..hi + (hi - lo) * 0.05
    } else {
        lo - 1.0..hi + 1.0
    }
}

/// Draw the SVG.
pub fn render(path: &Path, series: &[Series<'_>]) -> Result<(), String> {
    draw(path, series).map_err(|e| format!("cannot write the plot {}: {e}", path.display()))
}

fn draw(path: &Path, series: &[Series<'_>]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(500);

    // ---- Delay over time ----
    let mut t_max = 0f64;
    let (mut y_lo, mut y_hi) = (f64::MAX, f64::MIN);
    for s in series {
        for p in &s.data.points.items {
            t_max = t_max.max(p.t);
            for v in [Some(p.rtt), p.fwd, p.bwd].into_iter().flatten() {
                y_lo = y_lo.min(v);
                y_hi = y_hi.max(v);
            }
        }
        for &t in &s.data.lost.items {
            t_max = t_max.max(t);
        }
    }
    if y_lo > y_hi {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    let y_lo = y_lo.min(0.0);
    let mut chart = ChartBuilder::on(&top)
        .caption("Delay over time", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(range(0.0, t_max), range(y_lo, y_hi))?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("delay (ms)")
        .draw()?;
    let mut color = 0usize;
    let mut next = || {
        let c = PALETTE[color % PALETTE.len()];
        color += 1;
        c
    };
    let lost_y = y_hi;
    for s in series {
        let pts = &s.data.points.items;
        type Pick = fn(&Point) -> Option<f64>;
        let picks: [(&str, Pick); 3] = [
            ("RTT", |p| Some(p.rtt)),
            ("forward one-way", |p| p.fwd),
            ("backward one-way", |p| p.bwd),
        ];
        for (name, pick) in picks {
            let line: Vec<(f64, f64)> = pts
                .iter()
                .filter_map(|p| pick(p).map(|v| (p.t, v)))
                .collect();
            if line.is_empty() {
                continue;
            }
            let c = next();
            chart
                .draw_series(LineSeries::new(line, c.stroke_width(1)))?
                .label(format!("{name}{}", s.label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        if !s.data.lost.items.is_empty() {
            chart
                .draw_series(
                    s.data
                        .lost
                        .items
                        .iter()
                        .map(|&t| Cross::new((t, lost_y), 4, RED.stroke_width(1))),
                )?
                .label(format!("lost{}", s.label))
                .legend(|(x, y)| Cross::new((x + 10, y), 4, RED.stroke_width(1)));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;

    // ---- Latency CDF ----
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in series {
        for (name, d) in [
            ("RTT", s.rtt),
            ("forward one-way", s.forward),
            ("backward one-way", s.backward),
        ] {
            let c: Vec<(f64, f64)> = d
                .cdf(CDF_POINTS)
                .into_iter()
                .map(|(ns, q)| (ns as f64 / 1e6, q))
                .collect();
            if !c.is_empty() {
                curves.push((format!("{name}{}", s.label), c));
            }
        }
    }
    let (mut x_lo, mut x_hi) = (f64::MAX, f64::MIN);
    for (_, c) in &curves {
        for &(x, _) in c {
            x_lo = x_lo.min(x);
            x_hi = x_hi.max(x);
        }
    }
    if x_lo > x_hi {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    let mut cdf = ChartBuilder::on(&bottom)
        .caption("Latency CDF", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(range(x_lo.min(0.0), x_hi), 0f64..1.0)?;
    cdf.configure_mesh()
        .x_desc("delay (ms)")
        .y_desc("fraction of packets")
        .draw()?;
    for (color, (label, c)) in curves.into_iter().enumerate() {
        let col = PALETTE[color % PALETTE.len()];
        cdf.draw_series(LineSeries::new(c, col.stroke_width(2)))?
            .label(format!("CDF {label}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
    }
    cdf.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_the_cap_and_spans_the_run() {
        let mut d = PlotData::with_caps(100, 10);
        for i in 0..10_000 {
            d.add(i as f64, 1.0, None, None);
            if i % 10 == 0 {
                d.add_lost(i as f64);
            }
        }
        assert!(d.len() <= 100 && d.len() >= 50, "{}", d.len());
        assert!(d.lost_len() <= 10 && d.lost_len() >= 5);
        let first = d.points.items.first().unwrap().t;
        let last = d.points.items.last().unwrap().t;
        assert_eq!(first, 0.0);
        assert!(last > 9_000.0, "{last}");
        // Evenly spaced.
        let gaps: Vec<f64> = d.points.items.windows(2).map(|w| w[1].t - w[0].t).collect();
        assert!(gaps.iter().all(|g| *g == gaps[0]), "{gaps:?}");
    }
}
