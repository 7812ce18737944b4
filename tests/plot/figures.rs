//! End-to-end tests: every figure writes a decodable PNG of the right size
//! and an SVG containing its text; bad input errors without leaving files.

use std::fs;
use std::path::{Path, PathBuf};

use lantern_plot::color::{DIVERGING_BLUE, DIVERGING_RED};
use lantern_plot::*;

/// A fresh temporary directory, removed when dropped.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tmp_dir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("lantern-plot-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Width / height from the PNG signature + IHDR chunk.
fn png_ihdr(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "PNG too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "bad PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// Checks both files and returns (svg text, decoded RGB image).
fn check_outputs(stem: &Path, size: (u32, u32), texts: &[&str]) -> (String, image::RgbImage) {
    let svg_path = PathBuf::from(format!("{}.svg", stem.display()));
    let png_path = PathBuf::from(format!("{}.png", stem.display()));
    let svg = fs::read_to_string(&svg_path).expect("svg written");
    assert!(svg.starts_with("<svg"), "not an SVG document");
    assert!(svg.trim_end().ends_with("</svg>"), "SVG not closed");
    assert!(svg.contains(&format!("width=\"{}\" height=\"{}\"", size.0, size.1)));
    for t in texts {
        let escaped = t
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(svg.contains(&escaped), "SVG lacks text {t:?}");
    }
    let png = fs::read(&png_path).expect("png written");
    assert_eq!(png_ihdr(&png), size);
    let img = image::load_from_memory(&png)
        .expect("PNG decodes")
        .to_rgb8();
    assert_eq!(img.dimensions(), size);
    // Text must actually be rasterised: expect plenty of near-black pixels.
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 60)).count();
    assert!(dark > 300, "PNG has almost no dark (text) pixels: {dark}");
    (svg, img)
}

fn count_color(img: &image::RgbImage, c: Rgb) -> usize {
    img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
}

fn dla() -> Vec<Vec<f64>> {
    (0..12)
        .map(|l| {
            (0..12)
                .map(|h| ((l * 12 + h) as f64 * 0.37).sin() * (1.0 + l as f64 * 0.1))
                .collect()
        })
        .collect()
}

#[test]
fn heatmap_diverging_writes_svg_and_png() {
    let dir = tmp_dir("heatmap");
    let stem = dir.join("dla");
    let mut v = dla();
    v[3][4] = 2.5; // max |v| -> exact red end
    v[7][1] = -2.5; // exact blue end
    let opts = HeatmapOptions {
        colorbar_label: "logit difference".into(),
        ..PlotOptions::new("Direct logit attribution")
            .x_label("head")
            .y_label("layer")
            .into()
    };
    let written = heatmap(&v, &[] as &[&str], &[] as &[&str], &opts, &stem).unwrap();
    assert_eq!(written.len(), 2);
    let (svg, img) = check_outputs(
        &stem,
        (900, 650),
        &[
            "Direct logit attribution",
            "head",
            "layer",
            "logit difference",
            "\n11\n",
        ],
    );
    assert!(
        svg.contains("#B2182B") && svg.contains("#2166AC"),
        "extreme colours in SVG"
    );
    assert!(count_color(&img, DIVERGING_RED) > 500, "red cell in PNG");
    assert!(count_color(&img, DIVERGING_BLUE) > 500, "blue cell in PNG");
    assert_eq!(files_in(&dir), vec!["dla.png", "dla.svg"]);
}

#[test]
fn heatmap_token_labels_sequential_custom_size_and_scale() {
    let dir = tmp_dir("patching");
    let stem = dir.join("patch");
    let tokens = ["<|endoftext|>", "When", " Mary", " and", " John", "\n"];
    let v: Vec<Vec<f64>> = (0..30)
        .map(|l| (0..6).map(|p| ((l + p) % 7) as f64 / 6.0).collect())
        .collect();
    let opts = HeatmapOptions {
        color_scale: ColorScale::Sequential {
            min: Some(0.0),
            max: Some(1.0),
        },
        ..PlotOptions::new("Activation patching")
            .x_label("position")
            .y_label("layer")
            .size(640, 480)
            .png_scale(2)
            .into()
    };
    heatmap(&v, &[] as &[&str], &tokens, &opts, &stem).unwrap();
    let svg = fs::read_to_string(dir.join("patch.svg")).unwrap();
    assert!(
        svg.contains("&lt;|endoftext|&gt;"),
        "special token label escaped"
    );
    assert!(svg.contains("\\n"), "newline token made visible");
    let png = fs::read(dir.join("patch.png")).unwrap();
    assert_eq!(png_ihdr(&png), (1280, 960));
}

#[test]
fn line_chart_log_log_with_error_bands() {
    let dir = tmp_dir("line");
    let stem = dir.join("conv");
    let n: Vec<f64> = (1..=6).map(|k| 10f64.powi(k)).collect();
    let mc = Series::new(
        "Monte Carlo",
        n.clone(),
        n.iter().map(|x| x.powf(-0.5)).collect(),
    )
    .with_errors(n.iter().map(|x| 0.2 * x.powf(-0.5)).collect());
    let ks = Series::new(
        "KernelSHAP",
        n.clone(),
        n.iter().map(|x| 2.0 * x.powf(-0.8)).collect(),
    );
    let opts = LineOptions {
        log_x: true,
        log_y: true,
        ..PlotOptions::new("Estimator convergence")
            .x_label("evaluations")
            .y_label("abs. error")
            .into()
    };
    line_chart(&[mc, ks], &opts, &stem).unwrap();
    check_outputs(
        &stem,
        (900, 650),
        &[
            "Estimator convergence",
            "evaluations",
            "abs. error",
            "Monte Carlo",
            "KernelSHAP",
            "10⁶",
        ],
    );
}

#[test]
fn line_chart_error_bars_linear() {
    let dir = tmp_dir("linebars");
    let stem = dir.join("acc");
    let xs: Vec<f64> = (0..10).map(f64::from).collect();
    let s = Series::new(
        "accuracy",
        xs.clone(),
        xs.iter().map(|x| x / 10.0).collect(),
    )
    .with_errors(vec![0.05; 10]);
    let opts = LineOptions {
        error_style: ErrorStyle::Bars,
        ..PlotOptions::new("Accuracy")
            .x_label("layer")
            .y_label("accuracy")
            .into()
    };
    line_chart(&[s], &opts, &stem).unwrap();
    check_outputs(&stem, (900, 650), &["Accuracy", "layer", "accuracy"]);
}

#[test]
fn bar_charts_vertical_horizontal_grouped() {
    let dir = tmp_dir("bars");
    let labels = ["L9H6", "L10H7", "L3H0"];
    let vals = [2.3, -1.7, 0.2];
    let errs = [0.1, 0.2, 0.05];
    let opts: BarOptions = PlotOptions::new("Top heads")
        .x_label("head")
        .y_label("logit diff (±1 SE)")
        .into();
    bar_chart(&labels, &vals, Some(&errs), &opts, dir.join("v")).unwrap();
    let (_, img) = check_outputs(
        &dir.join("v"),
        (900, 650),
        &["Top heads", "L9H6", "L10H7", "logit diff (±1 SE)"],
    );
    assert!(
        count_color(&img, (214, 96, 77)) > 1000,
        "positive bars are red"
    );
    assert!(
        count_color(&img, (67, 147, 195)) > 1000,
        "negative bars are blue"
    );

    let hopts = BarOptions {
        orientation: Orientation::Horizontal,
        ..opts.clone()
    };
    bar_chart(&labels, &vals, None, &hopts, dir.join("h")).unwrap();
    check_outputs(&dir.join("h"), (900, 650), &["L3H0"]);

    let groups = [
        BarGroup::new("in-context", vec![0.7, 0.2]).with_errors(vec![0.03, 0.02]),
        BarGroup::new("memorized", vec![0.2, 0.7]),
        BarGroup::new("other", vec![0.1, 0.1]),
    ];
    let gopts: BarOptions = PlotOptions::new("Answer source")
        .x_label("condition")
        .y_label("rate")
        .into();
    grouped_bar_chart(&["clean", "no context"], &groups, &gopts, dir.join("g")).unwrap();
    check_outputs(
        &dir.join("g"),
        (900, 650),
        &[
            "Answer source",
            "in-context",
            "memorized",
            "other",
            "no context",
        ],
    );
}

#[test]
fn waterfall_figure() {
    let dir = tmp_dir("waterfall");
    let stem = dir.join("wf");
    let steps = [("embed", 0.42), ("L0 attn", -0.18), ("L1 attn", 1.35)];
    let opts: WaterfallOptions = PlotOptions::new("Shapley decomposition")
        .x_label("component")
        .y_label("logit diff")
        .into();
    waterfall("v(none)", 0.35, &steps, "v(all)", &opts, &stem).unwrap();
    check_outputs(
        &stem,
        (900, 650),
        &[
            "Shapley decomposition",
            "v(none)",
            "v(all)",
            "L0 attn",
            "+0.42",
            "\u{2212}0.18",
            "1.94",
        ],
    );
}

#[test]
fn graph_figure_with_loops_reciprocal_and_lags() {
    let dir = tmp_dir("graph");
    let stem = dir.join("g");
    let edges = [
        GraphEdge::new(0, 0, 0.8, 1),
        GraphEdge::new(0, 1, 0.5, 0),
        GraphEdge::new(1, 0, -0.4, 1),
        GraphEdge::new(2, 1, -0.3, 0),
    ];
    let opts: GraphOptions = PlotOptions::new("Causal graph").into();
    graph_figure(&["sentiment", "topic", "negation"], &edges, &opts, &stem).unwrap();
    let (_, img) = check_outputs(
        &stem,
        (900, 650),
        &[
            "Causal graph",
            "sentiment",
            "topic",
            "negation",
            "positive weight",
            "negative weight",
            "lag 0",
            "lag 1",
            "+0.80",
            "\u{2212}0.40",
        ],
    );
    assert!(
        count_color(&img, (192, 32, 40)) > 100,
        "red (positive) edges"
    );
    assert!(
        count_color(&img, (33, 102, 172)) > 100,
        "blue (negative) edges"
    );
}

#[test]
fn time_series_with_window() {
    let dir = tmp_dir("ts");
    let stem = dir.join("ts");
    let values: Vec<Vec<f64>> = (0..50)
        .map(|t| vec![(t as f64 / 5.0).sin(), (t as f64 / 7.0).cos()])
        .collect();
    let opts = TimeSeriesOptions {
        window: Some((20.0, 30.0)),
        ..PlotOptions::new("States over a session")
            .y_label("activation")
            .into()
    };
    time_series(&["sentiment", "topic"], &values, &opts, &stem).unwrap();
    check_outputs(
        &stem,
        (900, 650),
        &[
            "States over a session",
            "sentiment",
            "topic",
            "intervention",
            "step",
            "activation",
        ],
    );
}

#[test]
fn nan_input_errors_and_leaves_no_file() {
    let dir = tmp_dir("nan");
    let mut v = dla();
    v[2][5] = f64::NAN;
    let err = heatmap(
        &v,
        &[] as &[&str],
        &[] as &[&str],
        &HeatmapOptions::default(),
        dir.join("h"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::NonFinite { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("NaN") && msg.contains("row 2") && msg.contains("index 5"),
        "{msg}"
    );

    let s = Series::new("a", vec![1.0, 2.0], vec![1.0, f64::INFINITY]);
    let err = line_chart(&[s], &LineOptions::default(), dir.join("l")).unwrap_err();
    assert!(
        err.to_string().contains("inf") && err.to_string().contains("series \"a\""),
        "{err}"
    );

    let err = bar_chart(
        &["a"],
        &[f64::NAN],
        None,
        &BarOptions::default(),
        dir.join("b"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::NonFinite { .. }));
    let err = waterfall(
        "s",
        0.0,
        &[("x", f64::NAN)],
        "e",
        &WaterfallOptions::default(),
        dir.join("w"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::NonFinite { .. }));
    let err = graph_figure(
        &["a"],
        &[GraphEdge::new(0, 0, f64::NAN, 1)],
        &GraphOptions::default(),
        dir.join("g"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::NonFinite { .. }));
    let err = time_series(
        &["a"],
        &[vec![f64::NAN]],
        &TimeSeriesOptions::default(),
        dir.join("t"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::NonFinite { .. }));

    assert!(
        files_in(&dir).is_empty(),
        "files left behind: {:?}",
        files_in(&dir)
    );
}

#[test]
fn missing_directory_errors_clearly() {
    let dir = tmp_dir("missing");
    let stem = dir.join("does-not-exist").join("fig");
    let err = bar_chart(&["a"], &[1.0], None, &BarOptions::default(), &stem).unwrap_err();
    match &err {
        PlotError::MissingDirectory(p) => assert!(p.ends_with("does-not-exist")),
        other => panic!("expected MissingDirectory, got {other:?}"),
    }
    assert!(err.to_string().contains("does-not-exist"));
    assert!(!dir.join("does-not-exist").exists());
}

#[test]
fn unwritable_target_errors() {
    let dir = tmp_dir("unwritable");
    // A regular file where a directory is expected.
    fs::write(dir.join("file"), b"x").unwrap();
    let err = bar_chart(
        &["a"],
        &[1.0],
        None,
        &BarOptions::default(),
        dir.join("file").join("fig"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    // The target path is an existing directory: rename fails, temp file removed.
    fs::create_dir(dir.join("taken.svg")).unwrap();
    fs::write(dir.join("taken.svg").join("keep"), b"x").unwrap();
    let opts: BarOptions = PlotOptions::default().formats(Formats::SVG).into();
    let err = bar_chart(&["a"], &[1.0], None, &opts, dir.join("taken")).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert_eq!(
        files_in(&dir),
        vec!["file", "taken.svg"],
        "no temp files left"
    );
}

#[test]
fn overwrite_is_atomic_and_leaves_no_temp_files() {
    let dir = tmp_dir("overwrite");
    let stem = dir.join("fig");
    bar_chart(
        &["a", "b"],
        &[1.0, 2.0],
        None,
        &BarOptions::default(),
        &stem,
    )
    .unwrap();
    let opts: BarOptions = PlotOptions::new("Second version").into();
    bar_chart(&["a", "b"], &[1.0, 2.0], None, &opts, &stem).unwrap();
    assert!(fs::read_to_string(dir.join("fig.svg"))
        .unwrap()
        .contains("Second version"));
    assert_eq!(files_in(&dir), vec!["fig.png", "fig.svg"]);
}

#[test]
fn format_selection_and_dotted_stems() {
    let dir = tmp_dir("formats");
    let opts: BarOptions = PlotOptions::default().formats(Formats::SVG).into();
    let written = bar_chart(&["a"], &[1.0], None, &opts, dir.join("fig.v2")).unwrap();
    assert_eq!(written, vec![dir.join("fig.v2.svg")]);
    let opts: BarOptions = PlotOptions::default().formats(Formats::PNG).into();
    bar_chart(&["a"], &[1.0], None, &opts, dir.join("only")).unwrap();
    assert_eq!(files_in(&dir), vec!["fig.v2.svg", "only.png"]);
    let opts: BarOptions = PlotOptions::default()
        .formats(Formats {
            svg: false,
            png: false,
        })
        .into();
    assert!(matches!(
        bar_chart(&["a"], &[1.0], None, &opts, dir.join("none")),
        Err(PlotError::InvalidOptions(_))
    ));
}

#[test]
fn bad_inputs_give_specific_errors() {
    let dir = tmp_dir("bad");
    let d: &Path = &dir;
    // empty
    let empty: Vec<Vec<f64>> = vec![];
    assert!(matches!(
        heatmap(
            &empty,
            &[] as &[&str],
            &[] as &[&str],
            &HeatmapOptions::default(),
            d.join("x")
        ),
        Err(PlotError::Empty(_))
    ));
    assert!(matches!(
        line_chart(&[], &LineOptions::default(), d.join("x")),
        Err(PlotError::Empty(_))
    ));
    assert!(matches!(
        bar_chart(
            &[] as &[&str],
            &[],
            None,
            &BarOptions::default(),
            d.join("x")
        ),
        Err(PlotError::Empty(_))
    ));
    assert!(matches!(
        waterfall::<&str>(
            "a",
            1.0,
            &[],
            "b",
            &WaterfallOptions::default(),
            d.join("x")
        ),
        Err(PlotError::Empty(_))
    ));
    assert!(matches!(
        graph_figure(&[] as &[&str], &[], &GraphOptions::default(), d.join("x")),
        Err(PlotError::Empty(_))
    ));
    // mismatched lengths
    let ragged = vec![vec![1.0, 2.0], vec![3.0]];
    let err = heatmap(
        &ragged,
        &[] as &[&str],
        &[] as &[&str],
        &HeatmapOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PlotError::LengthMismatch {
                expected: 2,
                actual: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let err = heatmap(
        &[vec![1.0]],
        &["a", "b"],
        &[] as &[&str],
        &HeatmapOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("row_labels"), "{err}");
    let err = line_chart(
        &[Series::new("s", vec![1.0, 2.0], vec![1.0])],
        &LineOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::LengthMismatch { .. }));
    let err = bar_chart(
        &["a", "b"],
        &[1.0],
        None,
        &BarOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::LengthMismatch { .. }));
    let err = bar_chart(
        &["a"],
        &[1.0],
        Some(&[0.1, 0.2][..]),
        &BarOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("errors"));
    let err = grouped_bar_chart(
        &["a", "b"],
        &[BarGroup::new("g", vec![1.0])],
        &BarOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::LengthMismatch { .. }));
    let err = time_series(
        &["a", "b"],
        &[vec![1.0, 2.0], vec![1.0]],
        &TimeSeriesOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("values row 1"), "{err}");
    // semantic problems
    let err = line_chart(
        &[Series::new("s", vec![0.0, 1.0], vec![1.0, 2.0])],
        &LineOptions {
            log_x: true,
            ..Default::default()
        },
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("log-scale x"), "{err}");
    let err = bar_chart(
        &["a"],
        &[1.0],
        Some(&[-0.1][..]),
        &BarOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::InvalidInput(_)));
    let err = graph_figure(
        &["a", "b"],
        &[GraphEdge::new(0, 5, 1.0, 0)],
        &GraphOptions::default(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("node 5"), "{err}");
    let err = time_series(
        &["a"],
        &[vec![1.0], vec![2.0]],
        &TimeSeriesOptions {
            window: Some((5.0, 1.0)),
            ..Default::default()
        },
        d.join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("window"), "{err}");
    let err = bar_chart(
        &["a"],
        &[1.0],
        None,
        &PlotOptions::default().size(0, 0).into(),
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::InvalidOptions(_)));
    let err = heatmap(
        &[vec![1.0]],
        &[] as &[&str],
        &[] as &[&str],
        &HeatmapOptions {
            color_scale: ColorScale::Diverging { limit: Some(-1.0) },
            ..Default::default()
        },
        d.join("x"),
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::InvalidOptions(_)));
    assert!(
        files_in(&dir).is_empty(),
        "files left behind: {:?}",
        files_in(&dir)
    );
}

#[test]
fn colour_maps() {
    assert_eq!(diverging_color(0.0, 3.0), (255, 255, 255));
    assert_eq!(diverging_color(3.0, 3.0), DIVERGING_RED);
    assert_eq!(diverging_color(-3.0, 3.0), DIVERGING_BLUE);
    assert_eq!(diverging_color(30.0, 3.0), DIVERGING_RED, "clamped above");
    assert_eq!(diverging_color(-30.0, 3.0), DIVERGING_BLUE, "clamped below");
    assert_eq!(DIVERGING_RED, (178, 24, 43));
    assert_eq!(DIVERGING_BLUE, (33, 102, 172));
    // Positive values are red-dominant, negative blue-dominant, symmetric lightness.
    let (p, n) = (diverging_color(1.0, 3.0), diverging_color(-1.0, 3.0));
    assert!(p.0 > p.2 && n.2 > n.0, "{p:?} {n:?}");
    // Monotone darkening away from 0.
    let lum = |c: Rgb| c.0 as u32 + c.1 as u32 + c.2 as u32;
    assert!(lum(diverging_color(0.5, 1.0)) > lum(diverging_color(0.9, 1.0)));
    assert!(lum(diverging_color(-0.5, 1.0)) > lum(diverging_color(-0.9, 1.0)));
    // Viridis ends and clamping.
    assert_eq!(sequential_color(0.0, 0.0, 1.0), (68, 1, 84));
    assert_eq!(sequential_color(1.0, 0.0, 1.0), (253, 231, 37));
    assert_eq!(sequential_color(-5.0, 0.0, 1.0), (68, 1, 84));
    assert_eq!(sequential_color(7.0, 0.0, 1.0), (253, 231, 37));
}

/// Text comes from the fonts embedded in the binary (no system font lookup): a title is drawn
/// as glyphs, bold differs from regular, and the same figure gives the same PNG bytes every time.
#[test]
fn text_is_drawn_with_the_embedded_fonts_and_renders_identically() {
    let dir = tmp_dir("fonts");
    let png_of = |title: &str, name: &str| {
        let opts: BarOptions = PlotOptions::new(title)
            .x_label("component")
            .y_label("value")
            .into();
        bar_chart(&["a", "b"], &[0.5, -0.25], None, &opts, dir.join(name)).unwrap();
        fs::read(dir.join(format!("{name}.png"))).unwrap()
    };
    let titled = png_of("Embedded DejaVu Sans", "titled");
    let untitled = png_of("", "untitled");
    let top_band_dark = |png: &[u8]| {
        let img = image::load_from_memory(png).unwrap().to_rgb8();
        let band = img.height() / 10;
        img.enumerate_pixels()
            .filter(|(_, y, p)| *y < band && p.0.iter().all(|&c| c < 128))
            .count()
    };
    // The band also holds the top of the axes; the title adds its glyphs' pixels.
    let (with, without) = (top_band_dark(&titled), top_band_dark(&untitled));
    assert!(
        with > without + 300,
        "the title's glyphs are drawn: {with} dark pixels in the top band, {without} without a title"
    );
    assert_eq!(
        png_of("Embedded DejaVu Sans", "again"),
        titled,
        "same bytes twice"
    );
}
