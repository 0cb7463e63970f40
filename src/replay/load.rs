//! Loading the scenarios a replay server plays: a fixture file, or a folder of fixtures
//! and `.sequence` files (`fixtures/README.md`, "Replay server"). `smtprobe serve`
//! (`app::serve`) is one user; errors are typed ([`LoadError`]) and name the file and
//! line at fault, never a command-line flag.

use super::{read_fixture_file, Behaviour, LoadError, Scenarios};
use crate::fixture::Expect;
use crate::TlsMode;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads `path`: one fixture, or a folder (every `*.fixture` and `*.sequence` in it).
pub fn load(path: &Path, default: Option<&str>) -> Result<Scenarios, LoadError> {
    if !path.is_dir() {
        let f = read_fixture_file(path)?;
        if let Some(d) = default {
            if d != f.header.name {
                return Err(LoadError::ScenarioNotInFile {
                    asked: d.to_owned(),
                    path: path.to_owned(),
                    plays: f.header.name,
                });
            }
        }
        return Scenarios::single(f).map_err(LoadError::fixture(path));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(LoadError::io(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut fixtures: Vec<(String, Arc<Behaviour>)> = Vec::new();
    for p in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "fixture"))
    {
        let f = read_fixture_file(p)?;
        let b = Behaviour::from_fixture(&f).map_err(LoadError::fixture(p))?;
        if fixtures.iter().any(|(n, _)| *n == b.name) {
            return Err(LoadError::DuplicateName {
                file: p.clone(),
                name: b.name,
                sequence: false,
            });
        }
        fixtures.push((b.name.clone(), Arc::new(b)));
    }
    if fixtures.is_empty() {
        return Err(LoadError::NoFixtures(path.to_owned()));
    }
    let mut entries: Vec<(String, Vec<Arc<Behaviour>>)> = fixtures
        .iter()
        .map(|(n, b)| (n.clone(), vec![b.clone()]))
        .collect();
    for p in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sequence"))
    {
        entries.push(read_sequence(p, &fixtures)?);
    }
    let default = match default {
        Some(d) => d.to_string(),
        None => default_scenario(&fixtures),
    };
    Scenarios::set(entries, &default)
}

/// A `.sequence` file: one scenario name per line (`#` comments), played on successive
/// connections; the last one repeats.
fn read_sequence(
    p: &Path,
    fixtures: &[(String, Arc<Behaviour>)],
) -> Result<(String, Vec<Arc<Behaviour>>), LoadError> {
    let meta = std::fs::metadata(p).map_err(LoadError::io(p))?;
    if meta.len() > 64 * 1024 {
        return Err(LoadError::SequenceTooLarge(p.to_owned()));
    }
    let text = std::fs::read_to_string(p).map_err(LoadError::io(p))?;
    let name = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut items: Vec<Arc<Behaviour>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let b = fixtures
            .iter()
            .find(|(n, _)| n == line)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| LoadError::UnknownInSequence {
                path: p.to_owned(),
                line: i + 1,
                name: line.to_owned(),
            })?;
        if let Some(first) = items.first() {
            if first.mode != b.mode {
                return Err(LoadError::MixedModes {
                    path: p.to_owned(),
                    line: i + 1,
                    name: line.to_owned(),
                    mode: b.mode,
                    first: first.mode,
                });
            }
        }
        items.push(b);
    }
    if items.is_empty() {
        return Err(LoadError::NoNamesInSequence(p.to_owned()));
    }
    if fixtures.iter().any(|(n, _)| *n == name) {
        return Err(LoadError::DuplicateName {
            file: p.to_owned(),
            name,
            sequence: true,
        });
    }
    Ok((name, items))
}

/// Folder mode with no starting scenario asked for: a scenario named `default` if there is one, else
/// the first `expect: ok` STARTTLS fixture by name, else the first fixture.
fn default_scenario(fixtures: &[(String, Arc<Behaviour>)]) -> String {
    if fixtures.iter().any(|(n, _)| n == "default") {
        return "default".into();
    }
    fixtures
        .iter()
        .find(|(_, b)| b.expect == Expect::Ok && b.mode == TlsMode::Starttls)
        .or(fixtures.first())
        .map(|(n, _)| n.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder holding one fixture and `seq.sequence` with `sequence` in it.
    fn folder(tag: &str, sequence: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("smtprobe-load-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        std::fs::copy(
            format!("{fixtures}/gmail-587-bad-credentials.fixture"),
            dir.join("a.fixture"),
        )
        .unwrap();
        std::fs::write(dir.join("seq.sequence"), sequence).unwrap();
        dir
    }

    #[test]
    fn load_errors_name_the_file_and_line() {
        let dir = folder("unknown", "# comment\nno-such-scenario\n");
        let e = load(&dir, None).err().unwrap();
        match &e {
            LoadError::UnknownInSequence { path, line, name } => {
                assert_eq!(
                    (path.file_name().unwrap(), *line),
                    ("seq.sequence".as_ref(), 2)
                );
                assert_eq!(name, "no-such-scenario");
            }
            other => panic!("{other}"),
        }
        assert!(
            e.to_string()
                .ends_with("seq.sequence:2: no fixture named `no-such-scenario` in this folder"),
            "{e}"
        );

        let _ = std::fs::remove_dir_all(&dir);
        let dir = folder("empty", "# nothing\n");
        assert!(matches!(
            load(&dir, None),
            Err(LoadError::NoNamesInSequence(_))
        ));
        let missing = dir.join("missing.fixture");
        let e = load(&missing, None).err().unwrap();
        assert!(
            matches!(&e, LoadError::Io { path, .. } if *path == missing),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
