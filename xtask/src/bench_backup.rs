//! `cargo xtask bench backup --megabytes N`: the pre-write backup against its baselines,
//! in one run, on a generated mutation surface of about N MB (run in release mode):
//!
//! ```text
//! cargo run --release -p xtask -- bench backup --megabytes 300
//! ```
//!
//! Rows: `pg_dump -Fc -Z0 > /dev/null` (the dump alone: the physical limit of the phase),
//! the cutter backup (default settings), `pg_dump -Fc -Z0 | gpg --encrypt
//! --compress-algo none`, the seed pipeline `pg_dump | gpg --encrypt` (plain SQL, GnuPG
//! defaults, as seed 002 describes it), plain `pg_dump > /dev/null`, and the cutter
//! backup with pg_dump compression as separate rows. Throughput is the size of the
//! `-Fc -Z0` dump divided by wall time, so every ratio is a ratio of times. Outputs of the
//! encrypting rows are fsynced inside the timing, as the cutter's artifact is. Then the
//! restore proof against a plain `pg_restore` of the same, unencrypted dump into an
//! identically prepared throwaway database. The default cutter backup runs in a child
//! process of its own (this binary with `--child-backup`), so its peak RSS (VmHWM) and
//! CPU time are its own. CPU seconds are read from /proc: the server's exited backends
//! (the postmaster's reaped children), pg_dump, gpg or the cutter process.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutter_backup::{
    generate_keys, load_recipient, pg_restore_args, pre_write_backup, prepare_restore_database,
    restore_proof, start_restore_cluster, BackupConfig, DumpCompression, Passphrase,
    PassphraseSource, PgProgram, RestoreConfig,
};
use cutter_core::{mutation_surface, RunId, TableName};
use cutter_pg::config::ConnConfig;
use cutter_pg::{Cluster, Password};

const DB: &str = "bench";
const VERIFY_ROLE: &str = "cutter_verify";
const PASSPHRASE: &str = "bench passphrase, not a secret";
/// Bytes of `-Fc -Z0` dump per generated unit (unit + version of ~1.4 KB + extras).
const BYTES_PER_UNIT: u64 = 1_640;
const BATCH: u64 = 50_000;

/// `bench backup`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the generated mutation surface, in MB.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = crate::count)]
    megabytes: u64,
    /// Only the dump alone and the cutter backup, this many times each, alternating (for
    /// profiling; not the benchmark).
    #[arg(long, value_name = "COUNT")]
    only_backup: Option<u32>,
    /// Internal: the child half of a measured cutter backup (this binary runs itself).
    #[arg(
        long,
        hide = true,
        num_args = 5,
        value_names = ["DIR", "NAME", "PUBLIC_KEY", "FINGERPRINT", "CONNINFO"],
        conflicts_with_all = ["megabytes", "only_backup"]
    )]
    child_backup: Option<Vec<String>>,
}

fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn pg(e: cutter_pg::Error) -> String {
    e.to_string()
}

fn sql(c: &mut postgres::Client, what: &str, q: &str) -> Result<(), String> {
    c.batch_execute(q).map_err(|e| format!("{what}: {e}"))
}

/// The sentences whose words make up the generated bodies (2013 Constitution of Viet
/// Nam, articles 14–20).
const SENTENCES: [&str; 16] = [
    "Ở nước Cộng hòa xã hội chủ nghĩa Việt Nam, các quyền con người, quyền công dân về chính trị, dân sự, kinh tế, văn hóa, xã hội được công nhận.",
    "Quyền con người, quyền công dân chỉ có thể bị hạn chế theo quy định của luật trong trường hợp cần thiết vì lý do quốc phòng, an ninh quốc gia.",
    "Quyền công dân không tách rời nghĩa vụ công dân.",
    "Mọi người có nghĩa vụ tôn trọng quyền của người khác.",
    "Công dân có trách nhiệm thực hiện nghĩa vụ đối với Nhà nước và xã hội.",
    "Việc thực hiện quyền con người, quyền công dân không được xâm phạm lợi ích quốc gia, dân tộc, quyền và lợi ích hợp pháp của người khác.",
    "Mọi người đều bình đẳng trước pháp luật.",
    "Không ai bị phân biệt đối xử trong đời sống chính trị, dân sự, kinh tế, văn hóa, xã hội.",
    "Công dân nước Cộng hòa xã hội chủ nghĩa Việt Nam là người có quốc tịch Việt Nam.",
    "Công dân Việt Nam không thể bị trục xuất, giao nộp cho nhà nước khác.",
    "Công dân Việt Nam ở nước ngoài được Nhà nước Cộng hòa xã hội chủ nghĩa Việt Nam bảo hộ.",
    "Người Việt Nam định cư ở nước ngoài là bộ phận không tách rời của cộng đồng dân tộc Việt Nam.",
    "Mọi người có quyền sống. Tính mạng con người được pháp luật bảo hộ. Không ai bị tước đoạt tính mạng trái luật.",
    "Mọi người có quyền bất khả xâm phạm về thân thể, được pháp luật bảo hộ về sức khoẻ, danh dự và nhân phẩm.",
    "Không ai bị bắt nếu không có quyết định hoặc phê chuẩn của Viện kiểm sát nhân dân, trừ trường hợp phạm tội quả tang.",
    "Nhà nước bảo đảm và phát huy quyền làm chủ của Nhân dân; công nhận, tôn trọng, bảo vệ và bảo đảm quyền con người, quyền công dân.",
];

/// Body of generated unit `id`: about 1.3 KB of words drawn pseudo-randomly from
/// [`SENTENCES`], so it compresses like prose (about 3:1 with zlib), not like repeated
/// sentences. Deterministic.
fn body(words: &[&str], id: u64) -> String {
    let mut b = format!("Điều {id}.");
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while b.len() < 1_300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.push(' ');
        b.push_str(words[(x % words.len() as u64) as usize]);
    }
    b
}

/// Adds units `from..=to` (and their first versions) with COPY.
fn generate(c: &mut postgres::Client, words: &[&str], from: u64, to: u64) -> Result<(), String> {
    use std::io::Write as _;
    let e = |x: std::io::Error| x.to_string();
    let mut tx = c.transaction().map_err(|x| x.to_string())?;
    {
        let mut w = tx
            .copy_in(
                "COPY public.information_unit (id, canonical_address, title, unit_kind_ref, \
                 identity_profile, publication_type, document_id, source_version_id, \
                 lifecycle_status, change_set_id, created_by, created_at, updated_at) FROM STDIN",
            )
            .map_err(|x| x.to_string())?;
        for g in from..=to {
            writeln!(
                w,
                "{id}\tbench-doc/dieu-{g}\tĐiều {g}\tvocab.unit_kind.law_unit\t\
                 {{\"primary_section_type_ref\": \"vocab.section_type.article\"}}\tlaw\t\
                 bench-doc\tv1\tdraft\tcs-bench\tbench\t2026-05-20 00:00:00+00\t2026-05-20 00:00:00+00",
                id = 1000 + g
            )
            .map_err(e)?;
        }
        w.finish().map_err(|x| x.to_string())?;
    }
    {
        let mut w = tx
            .copy_in(
                "COPY public.unit_version (id, information_unit_id, version_no, body, body_sha256, \
                 lifecycle_status, created_by, created_at) FROM STDIN",
            )
            .map_err(|x| x.to_string())?;
        for g in from..=to {
            let b = body(words, g);
            let sha = cutter_core::Sha256Digest::of(b.as_bytes());
            writeln!(
                w,
                "{id}\t{id}\t1\t{b}\t{sha}\tdraft\tbench\t2026-05-20 00:00:00+00",
                id = 1000 + g
            )
            .map_err(e)?;
        }
        w.finish().map_err(|x| x.to_string())?;
    }
    tx.commit().map_err(|x| x.to_string())
}

/// Starts the source cluster and generates the surface; returns the cluster, the
/// read-only role's connection, and the size of the nine tables.
fn source(megabytes: u64) -> Result<(Cluster, ConnConfig, u64, Password), String> {
    let cluster = Cluster::start().map_err(pg)?;
    cluster.create_database(DB, Some("template0")).map_err(pg)?;
    let mut c = cluster.connect(DB).map_err(pg)?;
    cutter_pg::schema::install_reference(&mut c).map_err(pg)?;
    cutter_pg::schema::install_baseline(&mut c).map_err(pg)?;
    let verify_password = Password::new(random_hex()?);
    cutter_pg::schema::set_login_password(&mut c, VERIFY_ROLE, &verify_password).map_err(pg)?;
    let units = megabytes * 1_000_000 / BYTES_PER_UNIT;
    let words: Vec<&str> = SENTENCES.iter().flat_map(|s| s.split(' ')).collect();
    let t = Instant::now();
    let mut from = 1u64;
    while from <= units {
        let to = (from + BATCH - 1).min(units);
        generate(&mut c, &words, from, to)
            .map_err(|e| format!("generating units {from}–{to}: {e}"))?;
        eprintln!(
            "bench: generated {to}/{units} units ({:.0} s)",
            t.elapsed().as_secs_f64()
        );
        from = to + 1;
    }
    let every = |n: u64| (units / n).max(1) as i64;
    c.execute(
        "INSERT INTO public.iu_lifecycle_log (information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason) \
         SELECT 1000 + g, NULL, 'draft', 'bench', 'bench-run', 'cs-bench', 'created' FROM generate_series(1, $1::int8) g",
        &[&every(10)],
    )
    .map_err(|e| format!("lifecycle log rows: {e}"))?;
    c.execute(
        "INSERT INTO cutter_governance.review_decision (run_id, change_set_id, decision, payload, actor) \
         SELECT 'bench-run', 'cs-bench', 'approve', jsonb_build_object('unit', g, 'note', md5(g::text)), 'bench' \
         FROM generate_series(1, $1::int8) g",
        &[&every(50)],
    )
    .map_err(|e| format!("review decisions: {e}"))?;
    sql(&mut c, "vacuum", "VACUUM (FREEZE, ANALYZE)")?;
    sql(&mut c, "checkpoint", "CHECKPOINT")?;
    let names: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    let size: i64 = c
        .query_one(
            "SELECT sum(pg_table_size(to_regclass(t)))::int8 FROM unnest($1::text[]) t",
            &[&names],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    let ro = cluster
        .config(DB, VERIFY_ROLE, Some(verify_password.clone()))
        .map_err(pg)?;
    Ok((cluster, ro, size as u64, verify_password))
}

fn table_args() -> Vec<String> {
    mutation_surface()
        .iter()
        .map(|t| format!("--table={}", t.quoted()))
        .collect()
}

/// A pg_dump command connected as `ro` (password in a private passfile).
fn pg_dump_cmd(
    pg_dump: &Path,
    ro: &ConnConfig,
    format_args: &[&str],
) -> Result<(Command, cutter_pg::config::ChildEnv), String> {
    let env = ro.child_env().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(pg_dump);
    env.apply(&mut cmd);
    cmd.args(format_args)
        .args(table_args())
        .arg("--no-password");
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    Ok((cmd, env))
}

fn wait_ok(child: std::process::Child, what: &str) -> Result<(), String> {
    wait_cpu(child, what).map(|_| ())
}

/// `/proc/<pid>/stat` fields after the command name, as text.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field `n` (1-based, as in proc(5)) of a stat line split after the command name.
fn stat_secs(f: &[String], n: usize) -> f64 {
    f.get(n - 3)
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 100.0
}

/// Waits for `child`, returning the CPU seconds it used (read from its zombie).
fn wait_cpu(mut child: std::process::Child, what: &str) -> Result<f64, String> {
    let pid = child.id();
    let mut cpu = 0.0;
    loop {
        match stat_fields(pid) {
            Some(f) if f.first().map(String::as_str) == Some("Z") => {
                cpu = stat_secs(&f, 14) + stat_secs(&f, 15);
                break;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(1)),
            None => break,
        }
    }
    let st = child.wait().map_err(|e| format!("{what}: {e}"))?;
    if st.success() {
        Ok(cpu)
    } else {
        Err(format!("{what} failed: {st}"))
    }
}

/// CPU seconds of the server's exited backends (the postmaster's reaped children).
fn server_cpu(postmaster: u32) -> f64 {
    std::thread::sleep(Duration::from_millis(50));
    stat_fields(postmaster).map_or(0.0, |f| stat_secs(&f, 16) + stat_secs(&f, 17))
}

/// Wall time and CPU seconds of one run.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    server: f64,
    dump: f64,
    encrypt: f64,
}

/// `pg_dump <args> > /dev/null`.
fn dump_to_null(
    pg_dump: &Path,
    ro: &ConnConfig,
    args: &[&str],
    postmaster: u32,
) -> Result<Sample, String> {
    let (mut cmd, _env) = pg_dump_cmd(pg_dump, ro, args)?;
    cmd.stdout(File::create("/dev/null").map_err(|e| e.to_string())?);
    let s0 = server_cpu(postmaster);
    let t = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("pg_dump: {e}"))?;
    let dump = wait_cpu(child, "pg_dump")?;
    let wall = t.elapsed();
    Ok(Sample {
        wall,
        server: server_cpu(postmaster) - s0,
        dump,
        encrypt: 0.0,
    })
}

/// A GnuPG home and the recipient to encrypt to.
struct GpgTo<'a> {
    home: &'a Path,
    fpr: &'a str,
}

/// `pg_dump <args> | gpg --encrypt -r <fpr> [extra] --output <out>`, then fsync(out).
fn dump_through_gpg(
    pg_dump: &Path,
    ro: &ConnConfig,
    args: &[&str],
    gpg: &GpgTo<'_>,
    extra: &[&str],
    out: &Path,
    postmaster: u32,
) -> Result<(Sample, u64), String> {
    let (gnupg_home, fpr) = (gpg.home, gpg.fpr);
    let (mut cmd, _env) = pg_dump_cmd(pg_dump, ro, args)?;
    cmd.stdout(Stdio::piped());
    let s0 = server_cpu(postmaster);
    let t = Instant::now();
    let mut dump = cmd.spawn().map_err(|e| format!("pg_dump: {e}"))?;
    let stdin = dump.stdout.take().ok_or("pg_dump stdout")?;
    let gpg = Command::new("gpg")
        .env("GNUPGHOME", gnupg_home)
        .args([
            "--batch",
            "--yes",
            "--quiet",
            "--trust-model",
            "always",
            "--encrypt",
            "--recipient",
            fpr,
        ])
        .args(extra)
        .arg("--output")
        .arg(out)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("gpg: {e}"))?;
    let dump_cpu = wait_cpu(dump, "pg_dump")?;
    let gpg_cpu = wait_cpu(gpg, "gpg")?;
    File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("fsync {}: {e}", out.display()))?;
    let wall = t.elapsed();
    let size = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let _ = fs::remove_file(out);
    Ok((
        Sample {
            wall,
            server: server_cpu(postmaster) - s0,
            dump: dump_cpu,
            encrypt: gpg_cpu,
        },
        size,
    ))
}

/// (CPU seconds of this process, CPU seconds of its reaped children).
fn self_cpu() -> (f64, f64) {
    let s = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest: Vec<f64> = s
        .rsplit_once(')')
        .map(|(_, r)| {
            r.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // After the comm: state(0) is not numeric, so utime..cstime are at 10..13 here.
    let get = |i: usize| rest.get(i).copied().unwrap_or(0.0) / 100.0;
    (get(10) + get(11), get(12) + get(13))
}

/// The child half of a measured cutter backup: `--child-backup <backups dir> <name>
/// <public key> <fingerprint> <conninfo without password>`; prints `<wall s> <VmHWM KiB>`.
fn child_backup(args: &[String]) -> Result<(), String> {
    let [dir, name, key, fpr, conninfo] = args else {
        return Err("--child-backup <dir> <name> <public key> <fingerprint> <conninfo>".into());
    };
    let pin = cutter_core::Fingerprint::new(fpr).map_err(|e| e.to_string())?;
    let recipient = load_recipient(Path::new(key), &pin).map_err(|e| e.to_string())?;
    let pg = ConnConfig::parse(conninfo).map_err(|e| e.to_string())?;
    let cfg = BackupConfig::new(
        dir,
        RunId::new(name.as_str()).map_err(|e| e.to_string())?,
        recipient,
        pg,
    );
    let t = Instant::now();
    let _artifact = pre_write_backup(&cfg, &mut |_| {}).map_err(|e| e.to_string())?;
    let wall = t.elapsed().as_secs_f64();
    println!(
        "{wall} {}",
        cutter_testkit::peak_rss_bytes().map_or(0, |b| b / 1024)
    );
    Ok(())
}

/// Waits until `child` has exited (without reaping it) and returns the CPU seconds it
/// used and the CPU seconds of its own reaped children, read from its zombie.
fn wait_cpu_keep(child: std::process::Child) -> Result<(f64, f64, std::process::Child), String> {
    let pid = child.id();
    loop {
        match stat_fields(pid) {
            Some(f) if f.first().map(String::as_str) == Some("Z") => {
                return Ok((
                    stat_secs(&f, 14) + stat_secs(&f, 15),
                    stat_secs(&f, 16) + stat_secs(&f, 17),
                    child,
                ));
            }
            Some(_) => std::thread::sleep(Duration::from_millis(1)),
            None => return Ok((0.0, 0.0, child)),
        }
    }
}

struct Row {
    name: &'static str,
    command: String,
    /// Median wall time.
    secs: f64,
    /// Every run's wall time.
    runs: String,
    /// CPU seconds of the median run.
    cpu: Option<Sample>,
    output: Option<u64>,
}

/// Rounds of the fast rows.
const ROUNDS: usize = 3;

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// Runs the benchmark. See the module docs.
pub fn main(o: &Args) -> Result<(), String> {
    if let Some(args) = &o.child_backup {
        return child_backup(args);
    }
    let work = tempfile::Builder::new()
        .prefix("cutter-bench-backup-")
        .tempdir_in("/tmp")
        .map_err(|e| e.to_string())?;
    let backups = work.path().join("backups");
    fs::create_dir(&backups).map_err(|e| e.to_string())?;

    eprintln!(
        "bench: starting the source cluster and generating ~{} MB",
        o.megabytes
    );
    let (cluster, ro, table_bytes, verify_password) = source(o.megabytes)?;
    // The cutter backup runs in a child process of its own (`--child-backup`), so its
    // peak RSS is its own; it reads the password from a private passfile.
    let passfile_pg = work.path().join("pgpass");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&passfile_pg)
            .and_then(|mut f| writeln!(f, "*:*:*:*:{}", verify_password.expose_secret()))
            .map_err(|e| format!("writing the bench passfile: {e}"))?;
    }
    let child_conninfo = format!(
        "host={} port={} dbname={DB} user={VERIFY_ROLE} sslmode=disable passfile={}",
        cluster.host(),
        cluster.port(),
        passfile_pg.display()
    );
    let pg_dump = PgProgram::locate("pg_dump").map_err(|e| e.to_string())?;
    let server_version: String = cluster
        .connect(DB)
        .map_err(pg)?
        .query_one("SHOW server_version", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    let gpg_version = Command::new("gpg")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();

    // Keys: ours, and the same public key in a private GnuPG home for the pipelines.
    let keydir = work.path().join("keys");
    fs::create_dir(&keydir).map_err(|e| e.to_string())?;
    let keys = generate_keys(
        &keydir,
        "bench",
        "Bench <bench@example.org>",
        Some(&Passphrase::new(PASSPHRASE.into())),
    )
    .map_err(|e| e.to_string())?;
    let passfile = keydir.join("passphrase");
    fs::write(&passfile, PASSPHRASE).map_err(|e| e.to_string())?;
    let recipient =
        load_recipient(&keys.public_key, &keys.fingerprint).map_err(|e| e.to_string())?;
    let gnupg = work.path().join("gnupg");
    fs::create_dir(&gnupg).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&gnupg, fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
    }
    let imp = Command::new("gpg")
        .env("GNUPGHOME", &gnupg)
        .args(["--batch", "--quiet", "--import"])
        .arg(&keys.public_key)
        .status()
        .map_err(|e| e.to_string())?;
    if !imp.success() {
        return Err("gpg --import of the bench key failed".into());
    }
    let fpr = keys.fingerprint.to_string();
    let gpg_to = GpgTo {
        home: &gnupg,
        fpr: &fpr,
    };

    // The reference size: the -Fc -Z0 dump. Also warms the caches.
    let plain_dump = work.path().join("plain.dump");
    {
        let (mut cmd, _env) =
            pg_dump_cmd(&pg_dump.path, &ro, &["--format=custom", "--compress=0"])?;
        cmd.arg("--file").arg(&plain_dump).stdout(Stdio::null());
        wait_ok(
            cmd.spawn().map_err(|e| e.to_string())?,
            "pg_dump (reference)",
        )?;
    }
    let dump_bytes = fs::metadata(&plain_dump).map_err(|e| e.to_string())?.len();
    let pm = cluster.pid().ok_or("the source server is not running")?;
    let fc = ["--format=custom", "--compress=0"];
    let _ = dump_to_null(&pg_dump.path, &ro, &fc, pm)?;

    // One cutter backup, in a child process, measured like the other rows.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let cutter_run = |name: &str| -> Result<(Sample, u64, cutter_backup::BackupArtifact), String> {
        let s0 = server_cpu(pm);
        let child = Command::new(&exe)
            .args(["bench", "backup", "--child-backup"])
            .arg(&backups)
            .arg(name)
            .arg(&keys.public_key)
            .arg(keys.fingerprint.as_str())
            .arg(&child_conninfo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the backup child: {e}"))?;
        let mut out = String::new();
        let (cpu, children_cpu, mut child) = wait_cpu_keep(child)?;
        if let Some(mut so) = child.stdout.take() {
            so.read_to_string(&mut out).map_err(|e| e.to_string())?;
        }
        let st = child.wait().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("the backup child failed: {st}"));
        }
        let f: Vec<&str> = out.split_whitespace().collect();
        let wall: f64 = f
            .first()
            .and_then(|x| x.parse().ok())
            .ok_or("child output")?;
        let hwm: u64 = f
            .get(1)
            .and_then(|x| x.parse().ok())
            .ok_or("child output")?;
        let path = backups.join(cutter_backup::artifact_file_name(
            &RunId::new(name).unwrap(),
        ));
        let manifest_path = cutter_backup::manifest_path_for(&path).map_err(|e| e.to_string())?;
        let manifest = cutter_backup::Manifest::read(&manifest_path).map_err(|e| e.to_string())?;
        Ok((
            Sample {
                wall: Duration::from_secs_f64(wall),
                server: server_cpu(pm) - s0,
                dump: children_cpu,
                encrypt: cpu,
            },
            hwm,
            cutter_backup::BackupArtifact {
                path,
                manifest_path,
                manifest,
            },
        ))
    };

    if let Some(n) = o.only_backup {
        for i in 0..n {
            let d = dump_to_null(&pg_dump.path, &ro, &fc, pm)?;
            let (c, hwm, a) = cutter_run(&format!("only-{i}"))?;
            println!(
                "dump alone {:.2} s ({:.1} MB/s; CPU server {:.2} pg_dump {:.2}), cutter backup {:.2} s \
                 ({:.1} MB/s; CPU server {:.2} pg_dump {:.2} cutter {:.2}), ratio {:.2}",
                d.wall.as_secs_f64(),
                mb(dump_bytes) / d.wall.as_secs_f64(),
                d.server,
                d.dump,
                c.wall.as_secs_f64(),
                mb(dump_bytes) / c.wall.as_secs_f64(),
                c.server,
                c.dump,
                c.encrypt,
                d.wall.as_secs_f64() / c.wall.as_secs_f64()
            );
            println!("cutter peak RSS {:.1} MiB", hwm as f64 / 1024.0);
            let _ = fs::remove_file(&a.path);
            let _ = fs::remove_file(&a.manifest_path);
        }
        return Ok(());
    }

    // The fast rows, ROUNDS times each, interleaved; the median counts (the machine
    // may be shared with other work).
    let mut dump_s = Vec::new();
    let mut cutter_s = Vec::new();
    let mut gpg_none_s = Vec::new();
    let mut plain_s = Vec::new();
    let mut gpg_none_size = 0;
    let mut art: Option<cutter_backup::BackupArtifact> = None;
    let mut peaks: Vec<u64> = Vec::new();
    for round in 0..ROUNDS {
        eprintln!("bench: round {}/{ROUNDS}: dump alone", round + 1);
        dump_s.push(dump_to_null(&pg_dump.path, &ro, &fc, pm)?);

        eprintln!(
            "bench: round {}/{ROUNDS}: cutter backup (default)",
            round + 1
        );
        if let Some(a) = art.take() {
            let _ = fs::remove_file(&a.path);
            let _ = fs::remove_file(&a.manifest_path);
        }
        let (c, hwm, a) = cutter_run("bench")?;
        cutter_s.push(c);
        peaks.push(hwm);
        art = Some(a);

        eprintln!(
            "bench: round {}/{ROUNDS}: pg_dump -Fc -Z0 | gpg --compress-algo none",
            round + 1
        );
        let (g, size) = dump_through_gpg(
            &pg_dump.path,
            &ro,
            &fc,
            &gpg_to,
            &["--compress-algo", "none"],
            &work.path().join("gpg-none.pgp"),
            pm,
        )?;
        gpg_none_s.push(g);
        gpg_none_size = size;

        eprintln!(
            "bench: round {}/{ROUNDS}: plain pg_dump > /dev/null",
            round + 1
        );
        plain_s.push(dump_to_null(
            &pg_dump.path,
            &ro,
            &["--no-owner", "--no-privileges"],
            pm,
        )?);
    }
    let art = art.expect("at least one round");
    let median = |v: &[Sample]| -> Sample {
        let mut s = v.to_vec();
        s.sort_by_key(|x| x.wall);
        s[s.len() / 2]
    };
    let spread = |v: &[Sample]| -> String {
        let s: Vec<String> = v
            .iter()
            .map(|d| format!("{:.2}", d.wall.as_secs_f64()))
            .collect();
        s.join("/")
    };
    let row = |name: &'static str, command: &str, v: &[Sample], output: Option<u64>| Row {
        name,
        command: command.into(),
        secs: median(v).wall.as_secs_f64(),
        runs: spread(v),
        cpu: Some(median(v)),
        output,
    };
    let mut rows: Vec<Row> = vec![
        row(
            "dump alone (the limit of this phase)",
            "pg_dump -Fc -Z0 > /dev/null",
            &dump_s,
            None,
        ),
        row(
            "cutter backup (default: -Fc -Z0, OpenPGP uncompressed)",
            "pre_write_backup",
            &cutter_s,
            Some(art.manifest.size_bytes),
        ),
        row(
            "gpg pipeline, uncompressed",
            "pg_dump -Fc -Z0 | gpg --encrypt --compress-algo none",
            &gpg_none_s,
            Some(gpg_none_size),
        ),
    ];
    let backup_secs = rows[1].secs;
    let stream_digested = art
        .manifest
        .digest_sources
        .values()
        .filter(|s| *s == "dump stream")
        .count();

    eprintln!("bench: seed pipeline pg_dump | gpg --encrypt");
    let (g, size) = dump_through_gpg(
        &pg_dump.path,
        &ro,
        &["--no-owner", "--no-privileges"],
        &gpg_to,
        &[],
        &work.path().join("gpg-seed.pgp"),
        pm,
    )?;
    rows.push(row(
        "seed pipeline (plain SQL, GnuPG defaults)",
        "pg_dump --no-owner --no-privileges | gpg --encrypt",
        &[g],
        Some(size),
    ));
    rows.push(row(
        "plain SQL dump alone",
        "pg_dump > /dev/null",
        &plain_s,
        None,
    ));

    for (level, name) in [
        (1u8, "cutter backup, pg_dump -Z1 (optional compression)"),
        (6u8, "cutter backup, pg_dump -Z6 (-Fc's default level)"),
    ] {
        eprintln!("bench: cutter backup with -Z{level}");
        let cfg = BackupConfig::new(
            &backups,
            RunId::new(format!("bench-z{level}")).unwrap(),
            recipient.clone(),
            ro.clone(),
        )
        .compression(DumpCompression::Gzip(level));
        let s0 = server_cpu(pm);
        let c0 = self_cpu();
        let t = Instant::now();
        let a = pre_write_backup(&cfg, &mut |_| {}).map_err(|e| e.to_string())?;
        let wall = t.elapsed();
        let c1 = self_cpu();
        let sample = Sample {
            wall,
            server: server_cpu(pm) - s0,
            dump: c1.1 - c0.1,
            encrypt: c1.0 - c0.0,
        };
        rows.push(Row {
            name,
            command: format!("pre_write_backup, DumpCompression::Gzip({level})"),
            secs: wall.as_secs_f64(),
            runs: format!("{:.2}", wall.as_secs_f64()),
            cpu: Some(sample),
            output: Some(a.manifest.size_bytes),
        });
        let _ = fs::remove_file(&a.path);
        let _ = fs::remove_file(&a.manifest_path);
    }
    drop(cluster);

    // Restore: plain pg_restore of the unencrypted dump into an identically prepared
    // throwaway database, then the restore proof of the cutter artifact.
    eprintln!("bench: plain pg_restore");
    let plain_restore = {
        let rc = start_restore_cluster().map_err(|e| e.to_string())?;
        rc.create_database("plain_restore", Some("template0"))
            .map_err(pg)?;
        let conf = rc.superuser_config("plain_restore").map_err(pg)?;
        let mut c = conf.connect().map_err(|e| e.to_string())?;
        prepare_restore_database(&mut c).map_err(|e| e.to_string())?;
        drop(c);
        let pg_restore = PgProgram::locate("pg_restore").map_err(|e| e.to_string())?;
        let env = conf.child_env().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&pg_restore.path);
        env.apply(&mut cmd);
        cmd.args(pg_restore_args("plain_restore"))
            .arg(&plain_dump)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let t = Instant::now();
        wait_ok(cmd.spawn().map_err(|e| e.to_string())?, "pg_restore")?;
        let secs = t.elapsed().as_secs_f64();
        rc.stop().map_err(pg)?;
        secs
    };
    let _ = fs::remove_file(&plain_dump);
    eprintln!("bench: restore proof");
    let proof = restore_proof(
        &RestoreConfig::new(&art.path, &keys.secret_key)
            .passphrase(PassphraseSource::File(passfile.clone())),
    )
    .map_err(|e| e.to_string())?;

    // Report.
    let dump_secs = rows[0].secs;
    println!();
    println!("cutter backup benchmark: --megabytes {}", o.megabytes);
    println!(
        "machine: {} CPUs; PostgreSQL {server_version}; pg_dump {}; {gpg_version}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        pg_dump.version
    );
    println!(
        "surface: nine tables {:.1} MB (pg_table_size); pg_dump -Fc -Z0 archive {:.1} MB \
         (MB/s below = this size / wall time)",
        mb(table_bytes),
        mb(dump_bytes)
    );
    println!();
    println!(
        "{:<54} {:>7} {:>16} {:>7} {:>9} {:>8} {:>22}  command",
        "run", "wall s", "runs", "MB/s", "output MB", "vs dump", "CPU s srv/dump/enc"
    );
    for r in &rows {
        let cpu = r.cpu.map_or("-".to_string(), |c| {
            format!(
                "{:.2}/{:.2}/{} = {:.2}",
                c.server,
                c.dump,
                if c.encrypt > 0.0 {
                    format!("{:.2}", c.encrypt)
                } else {
                    "-".into()
                },
                c.server + c.dump + c.encrypt
            )
        });
        println!(
            "{:<54} {:>7.2} {:>16} {:>7.1} {:>9} {:>7.2}x {:>22}  {}",
            r.name,
            r.secs,
            r.runs,
            mb(dump_bytes) / r.secs,
            r.output
                .map_or("-".to_string(), |b| format!("{:.1}", mb(b))),
            dump_secs / r.secs,
            cpu,
            r.command
        );
    }
    println!(
        "(wall s: median of {ROUNDS} interleaved rounds where several runs are listed; CPU s of \
         that run: server backends / pg_dump / encryptor (gpg, or the cutter process: \
         encryption, artifact sha256, row digests))"
    );
    let gpg_none = rows[2].secs;
    let seed = rows[3].secs;

    println!();
    println!(
        "targets (default settings): backup / dump alone = {:.2}x (target >= 0.95); \
         backup / uncompressed gpg pipeline = {:.2}x (target >= 1.0); backup / seed pipeline = {:.1}x",
        dump_secs / backup_secs,
        gpg_none / backup_secs,
        seed / backup_secs
    );
    println!(
        "manifest digests taken from the dump stream for {stream_digested} of 9 tables \
         (the rest on the server, same snapshot)"
    );

    let peaks_mib: Vec<String> = peaks
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect();
    println!(
        "peak RSS of the cutter backup process (VmHWM, a process of its own): {} MiB (target < 64 MiB)",
        peaks_mib.join("/")
    );
    let tm = &proof.timings;
    let restore_secs = tm.restore_ms as f64 / 1000.0;
    println!();
    println!(
        "restore: plain pg_restore of the unencrypted dump {plain_restore:.2} s ({:.1} MB/s)",
        mb(dump_bytes) / plain_restore
    );
    println!(
        "restore proof: verify sha256 {:.2} s, cluster + reference schema {:.2} s, \
         decrypt -> pg_restore {restore_secs:.2} s ({:.1} MB/s), digests + triggers {:.2} s, \
         teardown {:.2} s, total {:.2} s; passed: {}",
        tm.verify_ms as f64 / 1000.0,
        tm.prepare_ms as f64 / 1000.0,
        mb(dump_bytes) / restore_secs,
        tm.check_ms as f64 / 1000.0,
        tm.teardown_ms as f64 / 1000.0,
        tm.total_ms as f64 / 1000.0,
        proof.passed
    );
    println!(
        "restore target: decrypt -> pg_restore / plain pg_restore = {:.2}x (target >= 0.8); \
         whole proof (sha256 check + restore + digests) / plain pg_restore = {:.2}x",
        plain_restore / restore_secs,
        plain_restore / ((tm.verify_ms + tm.restore_ms + tm.check_ms) as f64 / 1000.0)
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "all"])
        .status();
    Ok(())
}
