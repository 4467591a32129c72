//! The measuring side of every case: what the `cutter` processes and their children showed
//! in `/proc` while they ran, what they printed, what is on disk afterwards (plaintext dump
//! bytes, secrets), and which rows that existed before the case changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cutter_core::{TableName, TableStat};
use cutter_pg::surface::{self, SurfaceMark};
use cutter_testkit::{files_under, memfind};
use postgres::IsolationLevel;

// -----------------------------------------------------------------------------------
// /proc sampling
// -----------------------------------------------------------------------------------

/// What was seen of one process.
#[derive(Clone, Debug)]
pub struct Sample {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
}

struct Root {
    pid: u32,
    seen: HashSet<(u32, u64, String)>,
    samples: Vec<Sample>,
}

#[derive(Default)]
struct WatchState {
    next: u64,
    roots: HashMap<u64, Root>,
}

/// One thread that polls `/proc` every few milliseconds while any watched process runs
/// and records the arguments and environment of the process and of every descendant
/// (each process again after it execs).
#[derive(Clone)]
pub struct Watcher {
    state: Arc<Mutex<WatchState>>,
}

/// `(ppid, comm, starttime)` of a process.
fn stat_of(pid: u32) -> Option<(u32, String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    Some((
        rest.get(1)?.parse().ok()?,
        comm,
        rest.get(19)?.parse().ok()?,
    ))
}

/// Every process: pid → (ppid, comm, starttime).
pub fn processes() -> HashMap<u32, (u32, String, u64)> {
    let mut out = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(s) = stat_of(pid) {
                    out.insert(pid, s);
                }
            }
        }
    }
    out
}

/// The descendants of `root` in `procs`: (pid, comm).
pub fn descendants_in(procs: &HashMap<u32, (u32, String, u64)>, root: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, (ppid, comm, _)) in procs {
            if *ppid == p && *pid != p {
                out.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    out
}

/// The descendants of `root` now.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    descendants_in(&processes(), root)
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 2..].chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

impl Watcher {
    pub fn start() -> Watcher {
        let state = Arc::new(Mutex::new(WatchState::default()));
        let s2 = Arc::clone(&state);
        std::thread::Builder::new()
            .name("faults-proc-watcher".into())
            .spawn(move || loop {
                let busy = s2.lock().map(|g| !g.roots.is_empty()).unwrap_or(false);
                if busy {
                    Self::pass(&s2);
                    std::thread::sleep(Duration::from_millis(3));
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .expect("spawning the /proc watcher");
        Watcher { state }
    }

    fn pass(state: &Mutex<WatchState>) {
        let procs = processes();
        let Ok(mut g) = state.lock() else { return };
        for root in g.roots.values_mut() {
            let mut pids = vec![(root.pid, String::new())];
            pids.extend(descendants_in(&procs, root.pid));
            for (pid, _) in pids {
                let Some((_, comm, start)) = procs.get(&pid) else {
                    continue;
                };
                let key = (pid, *start, comm.clone());
                if root.seen.contains(&key) {
                    continue;
                }
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                if cmdline.is_empty() {
                    continue;
                }
                root.seen.insert(key);
                root.samples.push(Sample {
                    pid,
                    comm: comm.clone(),
                    cmdline,
                    environ,
                });
            }
        }
    }

    /// Starts watching `pid` (and samples it at once).
    pub fn watch(&self, pid: u32) -> u64 {
        let id = {
            let mut g = self.state.lock().expect("watcher lock");
            g.next += 1;
            let id = g.next;
            g.roots.insert(
                id,
                Root {
                    pid,
                    seen: HashSet::new(),
                    samples: Vec::new(),
                },
            );
            id
        };
        Self::pass(&self.state);
        id
    }

    /// Samples once more and returns everything seen under `id`.
    pub fn finish(&self, id: u64) -> Vec<Sample> {
        Self::pass(&self.state);
        self.state
            .lock()
            .ok()
            .and_then(|mut g| g.roots.remove(&id))
            .map(|r| r.samples)
            .unwrap_or_default()
    }
}

// -----------------------------------------------------------------------------------
// The per-case audit
// -----------------------------------------------------------------------------------

/// Everything a case's `cutter` invocations showed, and the directories it used.
pub struct Audit {
    secrets: Mutex<Vec<(String, String)>>,
    texts: Mutex<Vec<(String, Vec<u8>)>>,
    samples: Mutex<Vec<(String, Sample)>>,
    dirs: Mutex<Vec<PathBuf>>,
    excluded: Mutex<Vec<PathBuf>>,
    markers: Mutex<Vec<String>>,
    findings: Mutex<Vec<(PathBuf, u64)>>,
    excluded_tmp: PathBuf,
    pub started: SystemTime,
}

/// The audit's result.
#[derive(Debug, Default, Clone)]
pub struct AuditResult {
    /// Where a secret was found.
    pub secrets: Vec<String>,
    /// Files holding plaintext dump bytes, with their sizes.
    pub plaintext: Vec<(PathBuf, u64)>,
    /// How much was looked at.
    pub streams: usize,
    pub processes: usize,
    pub files: usize,
}

impl AuditResult {
    pub fn plaintext_bytes(&self) -> u64 {
        self.plaintext.iter().map(|(_, n)| *n).sum()
    }
}

impl Audit {
    pub fn new(secrets: Vec<(String, String)>, excluded_tmp: PathBuf) -> Audit {
        Audit {
            secrets: Mutex::new(secrets),
            texts: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
            dirs: Mutex::new(Vec::new()),
            excluded: Mutex::new(Vec::new()),
            markers: Mutex::new(Vec::new()),
            findings: Mutex::new(Vec::new()),
            excluded_tmp,
            started: SystemTime::now() - Duration::from_secs(1),
        }
    }

    /// One more secret to look for (e.g. a wrong passphrase a case types in).
    pub fn secret(&self, label: &str, value: &str) {
        self.secrets
            .lock()
            .expect("audit lock")
            .push((label.into(), value.into()));
    }
    /// Output of a command.
    pub fn text(&self, label: String, bytes: &[u8]) {
        self.texts
            .lock()
            .expect("audit lock")
            .push((label, bytes.to_vec()));
    }
    /// What the watcher saw of a command.
    pub fn samples(&self, label: &str, s: Vec<Sample>) {
        let mut g = self.samples.lock().expect("audit lock");
        g.extend(s.into_iter().map(|s| (label.to_string(), s)));
    }
    /// A directory to scan at the end (state directory, work directory).
    pub fn dir(&self, p: &Path) {
        self.dirs.lock().expect("audit lock").push(p.to_path_buf());
    }
    /// A file where a secret belongs by design (a world's .pgpass): not searched for
    /// secrets. Excluded by this exact path, never by a name anywhere in a path.
    pub fn exclude(&self, file: &Path) {
        self.excluded
            .lock()
            .expect("audit lock")
            .push(file.to_path_buf());
    }
    /// A string planted in the database that must never be found in plaintext on disk.
    pub fn marker(&self, m: &str) {
        self.markers.lock().expect("audit lock").push(m.to_string());
    }

    fn secret_list(&self) -> Vec<(String, String)> {
        self.secrets.lock().expect("audit lock").clone()
    }

    fn plaintext_needles(&self) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![b"PGDMP".to_vec()];
        v.extend(
            self.markers
                .lock()
                .expect("audit lock")
                .iter()
                .map(|m| m.as_bytes().to_vec()),
        );
        v
    }

    /// Scans `dir` now for plaintext (for a directory that will not exist at the end,
    /// like a tmpfs mount); findings count in the result.
    pub fn scan_now(&self, dir: &Path) -> Vec<(PathBuf, u64)> {
        let needles = self.plaintext_needles();
        let mut hits = Vec::new();
        for f in files_under(dir) {
            if let Ok(bytes) = fs::read(&f) {
                if needles.iter().any(|n| memfind(&bytes, n).is_some()) {
                    hits.push((f, bytes.len() as u64));
                }
            }
        }
        self.findings
            .lock()
            .expect("audit lock")
            .extend(hits.iter().cloned());
        hits
    }

    /// Searches everything recorded and every file of the recorded directories for the
    /// secrets, and the directories and the system temp directory (entries changed since
    /// the case started) for plaintext dump bytes.
    pub fn finish(&self) -> AuditResult {
        let secrets = self.secret_list();
        let mut r = AuditResult::default();
        let find =
            |hay: &[u8], r: &mut AuditResult, what: &str| find_secrets(&secrets, hay, what, r);
        for (label, bytes) in self.texts.lock().expect("audit lock").iter() {
            r.streams += 1;
            find(bytes, &mut r, label);
        }
        for (label, s) in self.samples.lock().expect("audit lock").iter() {
            r.processes += 1;
            find(
                &s.cmdline,
                &mut r,
                &format!("/proc/{}/cmdline of {} ({label})", s.pid, s.comm),
            );
            find(
                &s.environ,
                &mut r,
                &format!("/proc/{}/environ of {} ({label})", s.pid, s.comm),
            );
        }
        self.scan_dirs(&secrets, &mut r);
        let markers: Vec<Vec<u8>> = self.plaintext_needles()[1..].to_vec();
        // The system temp directory: entries created or changed during the case (not
        // the suite's own root, which the directories above cover); a dump file starts
        // with PGDMP, and the planted markers are table data.
        let tmp = std::env::temp_dir();
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let p = e.path();
                if p == self.excluded_tmp {
                    continue;
                }
                let recent = fs::symlink_metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= self.started);
                if !recent {
                    continue;
                }
                for f in files_under(&p) {
                    let Ok(m) = fs::symlink_metadata(&f) else {
                        continue;
                    };
                    if m.len() > (512 << 20) || m.modified().is_ok_and(|t| t < self.started) {
                        continue;
                    }
                    let Ok(bytes) = fs::read(&f) else { continue };
                    r.files += 1;
                    let dump = bytes.starts_with(b"PGDMP");
                    if dump || markers.iter().any(|n| memfind(&bytes, n).is_some()) {
                        r.plaintext.push((f.clone(), bytes.len() as u64));
                    }
                }
            }
        }
        r.plaintext
            .extend(self.findings.lock().expect("audit lock").iter().cloned());
        r
    }
}

impl Audit {
    /// Every file of the recorded directories: secrets (but in the excluded files) and
    /// plaintext dump bytes.
    fn scan_dirs(&self, secrets: &[(String, String)], r: &mut AuditResult) {
        let needles = self.plaintext_needles();
        let excluded = self.excluded.lock().expect("audit lock").clone();
        let dirs = self.dirs.lock().expect("audit lock").clone();
        for d in &dirs {
            for f in files_under(d) {
                let Ok(bytes) = fs::read(&f) else { continue };
                r.files += 1;
                if !excluded.contains(&f) {
                    find_secrets(secrets, &bytes, &f.display().to_string(), r);
                }
                if needles.iter().any(|n| memfind(&bytes, n).is_some()) {
                    r.plaintext.push((f.clone(), bytes.len() as u64));
                }
            }
        }
    }
}

/// Records in `r` each of `secrets` (label, value) found in `hay`, found in `what`.
fn find_secrets(secrets: &[(String, String)], hay: &[u8], what: &str, r: &mut AuditResult) {
    for (label, value) in secrets {
        if !value.is_empty() && memfind(hay, value.as_bytes()).is_some() {
            r.secrets.push(format!("{label} in {what}"));
        }
    }
}

// -----------------------------------------------------------------------------------
// Rows that existed before the case
// -----------------------------------------------------------------------------------

/// The pre snapshot of a case: the surface mark, the per-table stats of the rows up to
/// it (cutter-pg's canonical digest), and one digest per row.
pub struct Pre {
    pub mark: SurfaceMark,
    pub stats: BTreeMap<TableName, TableStat>,
    pub rows: BTreeMap<TableName, HashMap<i64, Vec<u8>>>,
    pub full: cutter_core::Snapshot,
}

fn row_digests(
    tx: &mut postgres::Transaction<'_>,
    mark: &SurfaceMark,
) -> Result<BTreeMap<TableName, HashMap<i64, Vec<u8>>>, String> {
    surface::set_canonical_output(tx).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for t in cutter_core::mutation_surface() {
        let upto = mark.max_ids.get(&t).copied().unwrap_or(0);
        let rows = tx
            .query(
                &format!(
                    "SELECT r.id, sha256(convert_to(r::text, 'UTF8')) FROM {} AS r WHERE r.id <= $1",
                    cutter_pg::quote_table(&t)
                ),
                &[&upto],
            )
            .map_err(|e| format!("row digests of {t}: {e}"))?;
        out.insert(
            t,
            rows.iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1)))
                .collect(),
        );
    }
    Ok(out)
}

/// Takes the pre snapshot (as the superuser, at one instant).
pub fn pre_snapshot(admin: &mut postgres::Client) -> Result<Pre, String> {
    let mut tx = admin
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| e.to_string())?;
    let full = surface::snapshot_in(&mut tx).map_err(|e| e.to_string())?;
    let mark = surface::surface_mark(&mut tx).map_err(|e| e.to_string())?;
    let stats = surface::surface_stats(&mut tx, Some(&mark)).map_err(|e| e.to_string())?;
    let rows = row_digests(&mut tx, &mark)?;
    tx.rollback().map_err(|e| e.to_string())?;
    Ok(Pre {
        mark,
        stats,
        rows,
        full,
    })
}

/// Rows that existed before (ids up to the mark) whose content changed or that are gone,
/// and a description; a table whose canonical digest differs without a changed row is
/// reported too.
pub fn rows_lost(admin: &mut postgres::Client, pre: &Pre) -> Result<(u64, Vec<String>), String> {
    let mut tx = admin
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| e.to_string())?;
    let stats = surface::surface_stats(&mut tx, Some(&pre.mark)).map_err(|e| e.to_string())?;
    let rows = row_digests(&mut tx, &pre.mark)?;
    tx.rollback().map_err(|e| e.to_string())?;
    let mut lost = 0u64;
    let mut notes = Vec::new();
    for (t, before) in &pre.rows {
        let after = rows.get(t).cloned().unwrap_or_default();
        let mut changed = Vec::new();
        for (id, d) in before {
            if after.get(id) != Some(d) {
                changed.push(*id);
            }
        }
        // A row that appeared below the mark changes "the rows that existed" too.
        changed.extend(after.keys().filter(|id| !before.contains_key(id)));
        if !changed.is_empty() {
            changed.sort_unstable();
            lost += changed.len() as u64;
            notes.push(format!(
                "{t}: {} pre-existing row(s) changed or gone (ids {:?}…)",
                changed.len(),
                &changed[..changed.len().min(5)]
            ));
        }
        if stats.get(t) != pre.stats.get(t) && changed.is_empty() {
            notes.push(format!(
                "{t}: the content digest of the rows up to the mark differs (rows inserted below the mark?)"
            ));
        }
    }
    Ok((lost, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_everywhere_but_in_the_excluded_file() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = root.path().join("w1").join("secrets");
        fs::create_dir_all(&store).expect("mkdir");
        let pgpass = store.join("pgpass");
        let leaked = store.join("leaked.log");
        let elsewhere = root.path().join("w1").join("state.json");
        for f in [&pgpass, &leaked, &elsewhere] {
            fs::write(f, "host:5432:db:user:hunter2-not-real\n").expect("write");
        }
        let a = Audit::new(Vec::new(), root.path().to_path_buf());
        a.dir(root.path());
        a.exclude(&pgpass);
        let mut r = AuditResult::default();
        let secrets = [("the password".to_string(), "hunter2-not-real".to_string())];
        a.scan_dirs(&secrets, &mut r);
        let mut found = r.secrets.clone();
        found.sort();
        assert_eq!(
            found,
            [
                format!("the password in {}", leaked.display()),
                format!("the password in {}", elsewhere.display()),
            ]
        );
        assert_eq!(r.files, 3);
    }
}
