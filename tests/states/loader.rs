use std::path::PathBuf;

use lantern_states::{encode_labels, read_labelled_text, StatesError};

/// A file in the temp dir, removed when dropped.
struct TmpFile(PathBuf);

impl std::ops::Deref for TmpFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TmpFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp(name: &str, content: &str) -> TmpFile {
    let p = std::env::temp_dir().join(format!("lantern-states-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    TmpFile(p)
}

fn parse_line(e: StatesError) -> usize {
    match e {
        StatesError::Parse { line, .. } => line,
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn real_states_csv() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/data/states.csv");
    let rows = read_labelled_text(&p).unwrap();
    assert_eq!(rows.len(), 480);
    let labels: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let (idx, names) = encode_labels(&labels);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "calm",
            "elation",
            "irritability",
            "low_mood",
            "neutral",
            "worry"
        ]
    );
    for (c, name) in names.iter().enumerate() {
        assert_eq!(idx.iter().filter(|&&i| i == c).count(), 80, "{name}");
    }
    assert!(rows
        .iter()
        .all(|r| !r.0.trim().is_empty() && !r.0.starts_with('"')));
}

#[test]
fn csv_quoting_and_errors() {
    let p = tmp(
        "ok.csv",
        "id,label,text\n1,worry,\"a, quoted \"\"text\"\"\"\n2,calm,plain\n",
    );
    let rows = read_labelled_text(&p).unwrap();
    assert_eq!(
        rows,
        vec![
            ("a, quoted \"text\"".to_string(), "worry".to_string()),
            ("plain".into(), "calm".into())
        ]
    );

    let p = tmp("ragged.csv", "text,label\nhello,calm\nbad,row,extra\n");
    assert_eq!(parse_line(read_labelled_text(&p).unwrap_err()), 3);

    let p = tmp("nolabel.csv", "text,mood\nhello,calm\n");
    let e = read_labelled_text(&p).unwrap_err();
    assert!(e.to_string().contains("'label'"), "{e}");
    assert_eq!(parse_line(e), 1);

    let p = tmp("emptylabel.csv", "text,label\nhello,calm\nhi,\n");
    assert_eq!(parse_line(read_labelled_text(&p).unwrap_err()), 3);

    let p = tmp("empty.csv", "text,label\n");
    assert!(matches!(
        read_labelled_text(&p),
        Err(StatesError::EmptyData(_))
    ));
}

#[test]
fn jsonl_and_errors() {
    let p = tmp("ok.jsonl", "{\"text\": \"I feel great\", \"label\": \"elation\"}\n\n{\"label\":\"calm\",\"text\":\"ok\",\"x\":1}\n");
    let rows = read_labelled_text(&p).unwrap();
    assert_eq!(
        rows,
        vec![
            ("I feel great".to_string(), "elation".to_string()),
            ("ok".into(), "calm".into())
        ]
    );

    let p = tmp(
        "bad.jsonl",
        "{\"text\":\"a\",\"label\":\"b\"}\n{\"text\": oops}\n",
    );
    assert_eq!(parse_line(read_labelled_text(&p).unwrap_err()), 2);

    let p = tmp(
        "missing.jsonl",
        "{\"text\":\"a\",\"label\":\"b\"}\n{\"text\":\"a\",\"label\":\"b\"}\n{\"text\":\"a\"}\n",
    );
    let e = read_labelled_text(&p).unwrap_err();
    assert!(e.to_string().contains("missing 'label'"), "{e}");
    assert_eq!(parse_line(e), 3);

    let p = tmp("num.jsonl", "{\"text\":\"a\",\"label\":3}\n");
    assert_eq!(parse_line(read_labelled_text(&p).unwrap_err()), 1);

    let p = tmp("x.txt", "text,label\n");
    assert!(read_labelled_text(&p)
        .unwrap_err()
        .to_string()
        .contains("unsupported extension"));
    let missing = std::env::temp_dir().join("lantern-states-definitely-missing.csv");
    assert!(matches!(
        read_labelled_text(&missing),
        Err(StatesError::Io { .. })
    ));
}
