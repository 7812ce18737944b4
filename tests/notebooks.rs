//! The notebooks in `notebooks/` are tested without Jupyter: each notebook's code cells, in order,
//! are the body of `main` of an example program of lantern-experiments
//! (`crates/lantern-experiments/examples/notebook_<name>.rs`), generated here from the notebook.
//!
//! - `notebook_examples_are_up_to_date`: the committed example equals the extraction, byte for
//!   byte. `LANTERN_UPDATE_NOTEBOOK_EXAMPLES=1` rewrites it instead.
//! - `notebooks_run`: builds and runs every example on the real model and checks its output.
//!   `LANTERN_UPDATE_NOTEBOOK_OUTPUTS=1` also stores the run's output in the notebook (text as
//!   stream outputs, figures as embedded PNGs), so that a reader sees the results without running
//!   anything.
//!
//! Extraction: lines that start with `:` (evcxr commands: `:dep`, `:opt`) are dropped; everything
//! else is kept verbatim (not re-indented, so multi-line string literals are safe). Rust allows
//! `use`, `fn` and `struct` items inside a function body, so items and statements can mix in a
//! cell. Conventions: notebooks/README.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

struct Notebook {
    /// `notebooks/<name>.ipynb`, example `notebook_<name>`.
    name: &'static str,
    /// Each must occur in the program's output.
    expect: &'static [&'static str],
}

const NOTEBOOKS: &[Notebook] = &[
    Notebook {
        name: "p1_factual_recall",
        expect: &[
            " 1. \" London\"",
            "logit(London) - logit(Warsaw) =",
            "heads pushing London:\n  L23H0: +",
            "360 patched runs",
            "2 heads x 5 alphas x 8 prompts",
            "figure: ",
        ],
    },
    Notebook {
        name: "p2_shapley",
        expect: &[
            "5 players:",
            "32 coalitions scored",
            "polite",
            "permutation   ",
            "kernel   ",
            "figure: ",
        ],
    },
    Notebook {
        name: "p3_causal_graphs",
        expect: &[
            "held-out accuracy (balanced, state vs rest; threshold 0.7):",
            "4 sessions recorded, 8 steps each",
            "  step 2: +0.00\n  step 3: ",
            "strongly connected components: [[\"A\", \"B\", \"C\"]]",
            "cycle A -> B -> C -> A",
            "figure: ",
        ],
    },
];

const UPDATE_EXAMPLES: &str = "LANTERN_UPDATE_NOTEBOOK_EXAMPLES";
const UPDATE_OUTPUTS: &str = "LANTERN_UPDATE_NOTEBOOK_OUTPUTS";
/// Makes the generated programs print a marker line at the start of every cell.
const CELL_MARKERS: &str = "LANTERN_NOTEBOOK_CELL_MARKERS";
const MARKER: &str = "\u{1e}notebook cell ";

/// Serialises the checks and rewrites of the examples between the tests.
static EXAMPLES: Mutex<()> = Mutex::new(());

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn notebook_path(name: &str) -> PathBuf {
    common::repo_root()
        .join("notebooks")
        .join(format!("{name}.ipynb"))
}

fn example_name(name: &str) -> String {
    format!("notebook_{name}")
}

fn example_path(name: &str) -> PathBuf {
    common::repo_root()
        .join("crates/lantern-experiments/examples")
        .join(format!("{}.rs", example_name(name)))
}

fn read_notebook(name: &str) -> Value {
    let path = notebook_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let nb: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(nb["nbformat"], 4, "{}: nbformat 4 expected", path.display());
    assert_eq!(
        nb["metadata"]["kernelspec"]["name"],
        "rust",
        "{}: the kernel must be evcxr's (`rust`)",
        path.display()
    );
    nb
}

fn cells(nb: &Value) -> &Vec<Value> {
    nb["cells"]
        .as_array()
        .expect("a notebook has a `cells` array")
}

/// A cell's source: a string or a list of lines.
fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines
            .iter()
            .map(|l| l.as_str().expect("source lines are strings"))
            .collect(),
        other => panic!("unexpected cell source {other}"),
    }
}

/// Code of each code cell without its evcxr command lines, with the cell's index; cells with no
/// code left are skipped.
fn code_cells(nb: &Value) -> Vec<(usize, String)> {
    cells(nb)
        .iter()
        .enumerate()
        .filter(|(_, c)| c["cell_type"] == "code")
        .filter_map(|(i, c)| {
            let src = source(c);
            let code: Vec<&str> = src
                .lines()
                .filter(|l| !l.trim_start().starts_with(':'))
                .collect();
            let code = code.join("\n");
            (!code.trim().is_empty()).then(|| (i, code.trim_end().to_string()))
        })
        .collect()
}

/// The example program of a notebook.
fn extract(name: &str, nb: &Value) -> String {
    let mut out = format!(
        "// Generated from notebooks/{name}.ipynb by tests/notebooks.rs: edit the notebook, not this file.\n\
         // Regenerate with\n\
         //     {UPDATE_EXAMPLES}=1 cargo test -p lantern-experiments --test notebooks\n\
         // The notebook's code cells run in order inside `main`, without their evcxr commands (`:dep`,\n\
         // `:opt`). `notebook_cell(i)` starts cell i (its index in the notebook).\n\
         \n\
         #[rustfmt::skip]\n\
         fn main() {{\n"
    );
    for (k, (index, code)) in code_cells(nb).iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(&format!("notebook_cell({index});\n{code}\n"));
    }
    out.push_str(&format!(
        "}}\n\
         \n\
         /// With {CELL_MARKERS} set, prints a line that marks the start of cell `index` in the output\n\
         /// (tests/notebooks.rs stores each cell's output back into the notebook).\n\
         fn notebook_cell(index: usize) {{\n    \
             if std::env::var_os(\"{CELL_MARKERS}\").is_some() {{\n        \
                 println!(\"\\u{{1e}}notebook cell {{index}}\");\n    \
             }}\n\
         }}\n"
    ));
    out
}

/// Checks (or, with the update flag, rewrites) one example; `Err` says what is wrong.
fn sync_example(name: &str) -> Result<(), String> {
    let _guard = EXAMPLES.lock().unwrap_or_else(|e| e.into_inner());
    let want = extract(name, &read_notebook(name));
    let path = example_path(name);
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return Ok(());
    }
    if flag(UPDATE_EXAMPLES) {
        std::fs::create_dir_all(path.parent().expect("a folder"))
            .expect("creating the examples folder");
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("rewrote {}", path.display());
        return Ok(());
    }
    Err(format!(
        "{} is not the extraction of notebooks/{name}.ipynb; regenerate it with\n    {UPDATE_EXAMPLES}=1 cargo test -p lantern-experiments --test notebooks",
        path.display()
    ))
}

#[test]
fn notebook_examples_are_up_to_date() {
    let errors: Vec<String> = NOTEBOOKS
        .iter()
        .filter_map(|nb| sync_example(nb.name).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// `<target>/<profile>` of this test binary (`<target>/<profile>/deps/notebooks-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the examples (a no-op when `cargo test` already built them) with this test's profile
/// and target folder.
fn build_examples() {
    let dir = profile_dir();
    let target = dir.parent().expect("<target>").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(common::repo_root())
        .args(["build", "--quiet", "-p", "lantern-experiments"])
        .arg("--target-dir")
        .arg(&target);
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
        None => panic!("unexpected test location {}", dir.display()),
    }
    for nb in NOTEBOOKS {
        cmd.args(["--example", &example_name(nb.name)]);
    }
    let status = cmd.status().expect("running cargo");
    assert!(
        status.success(),
        "building the notebook examples failed ({status})"
    );
}

/// Stores the program's output, split at the cell markers, as the notebook's outputs.
fn store_outputs(name: &str, stdout: &str) {
    let mut by_cell: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    let mut current = None;
    for line in stdout.split_inclusive('\n') {
        if let Some(index) = line.strip_prefix(MARKER) {
            current = Some(index.trim().parse::<usize>().expect("a cell index"));
        } else if let Some(i) = current {
            by_cell.entry(i).or_default().push_str(line);
        }
    }
    let path = notebook_path(name);
    let mut nb = read_notebook(name);
    let mut count = 0;
    for (i, cell) in nb["cells"]
        .as_array_mut()
        .expect("cells")
        .iter_mut()
        .enumerate()
    {
        if cell["cell_type"] != "code" {
            continue;
        }
        count += 1;
        cell["execution_count"] = json!(count);
        let mut outputs = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, outputs: &mut Vec<Value>| {
            if !text.is_empty() {
                outputs
                    .push(json!({"name": "stdout", "output_type": "stream", "text": lines(text)}));
                text.clear();
            }
        };
        for line in by_cell
            .get(&i)
            .map(String::as_str)
            .unwrap_or("")
            .split_inclusive('\n')
        {
            match line.strip_prefix("figure: ") {
                Some(png) => {
                    flush(&mut text, &mut outputs);
                    let bytes = std::fs::read(png.trim_end())
                        .unwrap_or_else(|e| panic!("{}: {e}", png.trim_end()));
                    outputs.push(json!({"data": {"image/png": base64(&bytes)}, "metadata": {}, "output_type": "display_data"}));
                }
                None => text.push_str(line),
            }
        }
        flush(&mut text, &mut outputs);
        cell["outputs"] = Value::Array(outputs);
    }
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b" "),
    );
    serde::Serialize::serialize(&nb, &mut ser).expect("serialising the notebook");
    buf.push(b'\n');
    std::fs::write(&path, buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    eprintln!("stored the outputs in {}", path.display());
}

/// Text as notebook source lines (each keeps its `\n`).
fn lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn base64_matches_rfc_4648() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn notebooks_run() {
    let errors: Vec<String> = NOTEBOOKS
        .iter()
        .filter_map(|nb| sync_example(nb.name).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    common::smollm2_path();
    build_examples();
    let update = flag(UPDATE_OUTPUTS);
    for nb in NOTEBOOKS {
        let exe = profile_dir().join("examples").join(format!(
            "{}{}",
            example_name(nb.name),
            std::env::consts::EXE_SUFFIX
        ));
        assert!(
            exe.is_file(),
            "{} is missing: build it with `cargo build -p lantern-experiments --examples`",
            exe.display()
        );
        let start = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.current_dir(common::repo_root().join("notebooks"))
            // The notebooks call `default_model_path()`: point it at the tests' model folder.
            .env("LANTERN_MODEL_DIR", common::model_dir());
        if update {
            cmd.env(CELL_MARKERS, "1");
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "notebooks/{}.ipynb ran in {:.1} s",
            nb.name,
            start.elapsed().as_secs_f64()
        );
        assert!(
            out.status.success(),
            "{} failed ({}):\n{stdout}\n{}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for want in nb.expect {
            assert!(
                stdout.contains(want),
                "notebooks/{}.ipynb: the output lacks {want:?}:\n{stdout}",
                nb.name
            );
        }
        if update {
            store_outputs(nb.name, &stdout);
        }
    }
}
