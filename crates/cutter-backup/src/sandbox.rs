//! Restoring without privilege, shared by the restore proof and the dry-run's clone.
//!
//! * **The role.** `pg_restore` never runs as a superuser: it logs in as a fresh role
//!   ([`RestoreRole`]) that is not a superuser, cannot create roles or databases,
//!   bypasses no row security, inherits nothing and is a member of no role (in
//!   particular of none of `pg_execute_server_program`, `pg_read_server_files`,
//!   `pg_write_server_files`), and owns the throwaway database. A dump that tries
//!   `COPY … TO PROGRAM` (or reads or writes server files) is refused by the server.
//! * **The selection.** The archive's table of contents is read from the decrypted
//!   stream before `pg_restore` starts ([`Gate`]); only the entries of the surface tables of
//!   the mutation surface (the tables, their sequences, constraints, indexes, triggers
//!   and data) go into the `pg_restore --use-list` it is started with. Every `TABLE DATA`
//!   entry restored must be a plain `COPY <table> (<columns>) FROM stdin;`.
//!
//! The plaintext held back while the table of contents is read (a few kilobytes for the
//! surface tables, never more than the scanner's bound) is wiped once handed on.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ChildStdin;

use cutter_core::{mutation_surface, TableName};
use cutter_pg::{quote_ident, Password};
use postgres::GenericClient;

use crate::archive::{read_toc, Toc, MAX_TOC};
use crate::error::{Error, Result};

/// What the restore puts back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The surface tables with everything that belongs to them (the proof).
    Full,
    /// [`Selection::Full`] without foreign keys: the chain proof adds them once, after
    /// the last increment, which checks every row once.
    FullWithoutForeignKeys,
    /// Only their rows and sequence positions (the clone, whose schema exists).
    DataOnly,
}

/// Entry kinds that may belong to a table (besides `TABLE` itself).
const TABLE_PARTS: [&str; 11] = [
    "SEQUENCE",
    "SEQUENCE OWNED BY",
    "DEFAULT",
    "CONSTRAINT",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "INDEX",
    "TRIGGER",
    "TABLE DATA",
    "SEQUENCE SET",
    "COMMENT",
];

/// Whether `stmt` is exactly `COPY <ns>.<tag> (<column list>) FROM stdin;` with plain
/// column names (no parentheses, no semicolons: nothing but a column list).
fn plain_copy(stmt: &str, t: &TableName) -> bool {
    let prefix = format!("COPY {}.{} (", t.schema(), t.name());
    let Some(cols) = stmt
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(") FROM stdin;\n"))
    else {
        return false;
    };
    !cols.is_empty()
        && cols
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ' ' | '"'))
}

/// The dump ids to restore, in archive order, or why the archive is refused.
pub(crate) fn select(toc: &Toc, mode: Selection) -> std::result::Result<Vec<i32>, String> {
    let surface: BTreeSet<(String, String)> = mutation_surface()
        .iter()
        .map(|t| (t.schema().to_string(), t.name().to_string()))
        .collect();
    let schemas: BTreeSet<&str> = surface.iter().map(|(s, _)| s.as_str()).collect();
    let mut allowed: BTreeSet<i32> = toc
        .entries
        .iter()
        .filter(|e| e.desc == "TABLE" && surface.contains(&(e.namespace.clone(), e.tag.clone())))
        .map(|e| e.dump_id)
        .collect();
    // Everything hanging off those tables only: its kind may belong to a table, it lives
    // in one of their schemas, and every entry it depends on is already allowed.
    loop {
        let before = allowed.len();
        for e in &toc.entries {
            if allowed.contains(&e.dump_id)
                || !TABLE_PARTS.contains(&e.desc.as_str())
                || !schemas.contains(e.namespace.as_str())
                || e.deps.is_empty()
                || !e.deps.iter().all(|d| allowed.contains(d))
            {
                continue;
            }
            if e.desc == "TABLE DATA" && !surface.contains(&(e.namespace.clone(), e.tag.clone())) {
                continue;
            }
            allowed.insert(e.dump_id);
        }
        if allowed.len() == before {
            break;
        }
    }
    let mut out = Vec::new();
    for e in &toc.entries {
        if !allowed.contains(&e.dump_id) {
            continue;
        }
        if e.desc == "TABLE DATA" {
            let t = TableName::new(&e.namespace, &e.tag).map_err(|e| e.to_string())?;
            if !plain_copy(&e.copy_stmt, &t) {
                return Err(format!(
                    "the data of {t} is loaded by {:?}, not by a plain `COPY {t} (…) FROM stdin;`",
                    e.copy_stmt.trim_end()
                ));
            }
        }
        let keep = match mode {
            Selection::Full => true,
            Selection::FullWithoutForeignKeys => e.desc != "FK CONSTRAINT",
            Selection::DataOnly => matches!(e.desc.as_str(), "TABLE DATA" | "SEQUENCE SET"),
        };
        if keep {
            out.push(e.dump_id);
        }
    }
    if !out.iter().any(|id| {
        toc.entries
            .iter()
            .any(|e| e.dump_id == *id && e.desc == "TABLE DATA")
    }) {
        return Err("it holds the data of none of the surface tables".into());
    }
    Ok(out)
}

/// The `pg_restore --use-list` file: one dump id per line, in archive order (a
/// non-seekable input is restored in archive order).
pub(crate) fn list_file(dir: &Path, ids: &[i32]) -> Result<PathBuf> {
    let path = dir.join("restore.list");
    let mut text = String::from("; cutter: the entries of the tables of the mutation surface\n");
    for id in ids {
        text.push_str(&format!("{id};\n"));
    }
    std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
    Ok(path)
}

/// Marks the gate's own refusal inside an I/O error.
#[derive(Debug)]
pub(crate) struct GateRefused;
impl std::fmt::Display for GateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the archive was refused before pg_restore started")
    }
}
impl std::error::Error for GateRefused {}

enum GateState {
    /// Holding the stream back until the table of contents is read.
    Head(Vec<u8>),
    /// pg_restore runs; the stream goes to its stdin.
    Open(ChildStdin),
    /// Refused or failed; nothing more is accepted.
    Closed,
}

/// The decrypted stream's destination: holds it back until the archive's table of
/// contents is read, selects the entries to restore, then calls `start` with them (which
/// starts pg_restore and returns its stdin) and passes the stream on. The reason for a
/// refusal is kept in [`Gate::failure`]; the writer then fails with [`GateRefused`].
pub(crate) struct Gate<'a> {
    state: GateState,
    mode: Selection,
    artifact: &'a Path,
    start: &'a mut dyn FnMut(&[i32]) -> Result<ChildStdin>,
    /// Why the gate refused or failed.
    pub(crate) failure: Option<Error>,
}

impl std::fmt::Debug for Gate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("mode", &self.mode)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl<'a> Gate<'a> {
    pub(crate) fn new(
        mode: Selection,
        artifact: &'a Path,
        start: &'a mut dyn FnMut(&[i32]) -> Result<ChildStdin>,
    ) -> Self {
        Self {
            state: GateState::Head(Vec::new()),
            mode,
            artifact,
            start,
            failure: None,
        }
    }

    fn refuse(&mut self, e: Error) -> io::Error {
        if let GateState::Head(mut h) = std::mem::replace(&mut self.state, GateState::Closed) {
            h.fill(0);
        }
        self.failure = Some(e);
        io::Error::other(GateRefused)
    }

    /// pg_restore's stdin, if it was started; the gate accepts nothing more. Plaintext
    /// still held back (an archive that ended inside its table of contents) is wiped.
    pub(crate) fn take_stdin(&mut self) -> Option<ChildStdin> {
        match std::mem::replace(&mut self.state, GateState::Closed) {
            GateState::Open(stdin) => Some(stdin),
            GateState::Head(mut h) => {
                h.fill(0);
                None
            }
            GateState::Closed => None,
        }
    }
}

impl Write for Gate<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            GateState::Open(stdin) => stdin.write(data),
            GateState::Closed => Err(io::Error::other(GateRefused)),
            GateState::Head(head) => {
                head.extend_from_slice(data);
                let parsed = read_toc(head);
                let too_big = head.len() > MAX_TOC;
                let toc = match parsed {
                    Ok(Some((toc, _))) => toc,
                    Ok(None) if !too_big => return Ok(data.len()),
                    Ok(None) => {
                        let e = Error::ArchiveRefused {
                            path: self.artifact.to_path_buf(),
                            problem: format!(
                                "its table of contents is larger than {MAX_TOC} bytes"
                            ),
                        };
                        return Err(self.refuse(e));
                    }
                    Err(why) => {
                        let e = Error::ArchiveRefused {
                            path: self.artifact.to_path_buf(),
                            problem: format!("it is not an archive the restore reads: {why}"),
                        };
                        return Err(self.refuse(e));
                    }
                };
                let ids = match select(&toc, self.mode) {
                    Ok(ids) => ids,
                    Err(problem) => {
                        let e = Error::ArchiveRefused {
                            path: self.artifact.to_path_buf(),
                            problem,
                        };
                        return Err(self.refuse(e));
                    }
                };
                let mut stdin = match (self.start)(&ids) {
                    Ok(s) => s,
                    Err(e) => return Err(self.refuse(e)),
                };
                let GateState::Head(mut head) =
                    std::mem::replace(&mut self.state, GateState::Closed)
                else {
                    unreachable!("in the Head state")
                };
                let res = stdin.write_all(&head);
                head.fill(0);
                res?;
                self.state = GateState::Open(stdin);
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            GateState::Open(stdin) => stdin.flush(),
            _ => Ok(()),
        }
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        if let GateState::Head(h) = &mut self.state {
            h.fill(0);
        }
    }
}

/// Whether an OpenPGP output error came from the gate's refusal.
pub(crate) fn is_gate_refusal(e: &cutter_openpgp::Error) -> bool {
    match e {
        cutter_openpgp::Error::DecryptOutput { source } => source
            .get_ref()
            .is_some_and(|inner| inner.is::<GateRefused>()),
        _ => false,
    }
}

/// The unprivileged role pg_restore logs in as.
pub(crate) struct RestoreRole {
    /// `cutter_restore_<random>`.
    pub(crate) name: String,
    /// Its generated password.
    pub(crate) password: Password,
    /// Who owned the restore database before the role did.
    pub(crate) previous_db_owner: String,
}

impl std::fmt::Debug for RestoreRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreRole")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut b = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("reading random bytes from", "/dev/urandom", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The privileged roles a restore role must never hold.
pub(crate) const SERVER_ACCESS_ROLES: [&str; 3] = [
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
];

/// Creates the restore role (as the superuser `admin`), makes it the owner of database
/// `dbname`, and checks that it holds no privilege beyond that.
pub(crate) fn create_role(admin: &mut postgres::Client, dbname: &str) -> Result<RestoreRole> {
    let previous_db_owner: String = admin
        .query_one(
            "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text FROM pg_catalog.pg_database d \
             WHERE d.datname = $1",
            &[&dbname],
        )
        .map_err(|e| Error::sql("reading the restore database's owner", e))?
        .get(0);
    let role = RestoreRole {
        name: format!("cutter_restore_{}", random_hex(6)?),
        password: Password::new(random_hex(16)?),
        previous_db_owner,
    };
    let q = quote_ident(&role.name);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {q} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS NOINHERIT"
        ))
        .map_err(|e| Error::sql("creating the restore role", e))?;
    cutter_pg::schema::set_login_password(admin, &role.name, &role.password).map_err(|source| {
        Error::Pg {
            what: "setting the restore role's password",
            source,
        }
    })?;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} OWNER TO {q}",
            quote_ident(dbname)
        ))
        .map_err(|e| Error::sql("making the restore role own the restore database", e))?;
    let problems = role_problems(admin, &role.name)?;
    if !problems.is_empty() {
        return Err(Error::Throwaway {
            what: "checking the restore role",
            detail: problems.join("; "),
        });
    }
    Ok(role)
}

/// What `role` may do beyond an ordinary login: empty when it is unprivileged.
pub(crate) fn role_problems(c: &mut impl GenericClient, role: &str) -> Result<Vec<String>> {
    let row = c
        .query_one(
            "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, \
                    ARRAY(SELECT s FROM unnest($2::text[]) s WHERE pg_catalog.pg_has_role(r.oid, s, 'MEMBER')), \
                    ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m \
                          JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) \
             FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
            &[&role, &SERVER_ACCESS_ROLES.to_vec()],
        )
        .map_err(|e| Error::sql("reading the restore role's attributes", e))?;
    let mut out = Vec::new();
    for (i, what) in [
        (0, "is a superuser"),
        (1, "can create roles"),
        (2, "can create databases"),
        (3, "can replicate"),
        (4, "bypasses row security"),
    ] {
        if row.get::<_, bool>(i) {
            out.push(format!("role {role} {what}"));
        }
    }
    let server: Vec<String> = row.get(5);
    if !server.is_empty() {
        out.push(format!("role {role} holds {}", server.join(", ")));
    }
    let member: Vec<String> = row.get(6);
    if !member.is_empty() {
        out.push(format!("role {role} is a member of {}", member.join(", ")));
    }
    Ok(out)
}

/// For a full restore: lets `role` create the surface tables as they are defined in the
/// reference schema installed in the connected database: USAGE on its schemas, CREATE
/// on the surface tables' schemas, REFERENCES on the tables their foreign keys point to and
/// EXECUTE on the functions their triggers, constraints, defaults and indexes call.
/// Runs as the superuser, before the surface tables are dropped.
pub(crate) fn grant_for_full_restore(c: &mut postgres::Client, role: &str) -> Result<()> {
    let q = quote_ident(role);
    let names: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    let mut tx = c
        .transaction()
        .map_err(|e| Error::sql("starting the restore role's grants", e))?;
    tx.batch_execute("SET LOCAL search_path TO pg_catalog")
        .map_err(|e| Error::sql("setting the search path", e))?;
    let functions: Vec<String> = tx
        .query(
            "WITH t AS (SELECT unnest($1::text[])::regclass AS oid) \
             SELECT DISTINCT d.refobjid::regprocedure::text FROM pg_depend d \
             JOIN pg_proc p ON p.oid = d.refobjid \
             WHERE d.refclassid = 'pg_proc'::regclass \
               AND p.pronamespace <> 'pg_catalog'::regnamespace AND ( \
                (d.classid = 'pg_trigger'::regclass AND d.objid IN \
                    (SELECT oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM t))) \
             OR (d.classid = 'pg_constraint'::regclass AND d.objid IN \
                    (SELECT oid FROM pg_constraint WHERE conrelid IN (SELECT oid FROM t))) \
             OR (d.classid = 'pg_attrdef'::regclass AND d.objid IN \
                    (SELECT oid FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM t))) \
             OR (d.classid = 'pg_class'::regclass AND (d.objid IN (SELECT oid FROM t) \
                    OR d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM t))))) \
             ORDER BY 1",
            &[&names],
        )
        .map_err(|e| Error::sql("finding the functions the surface tables use", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let referenced: Vec<String> = tx
        .query(
            "WITH t AS (SELECT unnest($1::text[])::regclass AS oid) \
             SELECT DISTINCT c.confrelid::regclass::text FROM pg_constraint c \
             WHERE c.contype = 'f' AND c.conrelid IN (SELECT oid FROM t) \
               AND c.confrelid NOT IN (SELECT oid FROM t) ORDER BY 1",
            &[&names],
        )
        .map_err(|e| Error::sql("finding the tables the surface tables reference", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let schemas: Vec<String> = tx
        .query(
            "SELECT n.nspname::text FROM pg_namespace n \
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1",
            &[],
        )
        .map_err(|e| Error::sql("listing the schemas", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let own: BTreeSet<String> = mutation_surface()
        .iter()
        .map(|t| t.schema().to_string())
        .collect();
    let mut sql = String::new();
    for s in &schemas {
        let privs = if own.contains(s) {
            "USAGE, CREATE"
        } else {
            "USAGE"
        };
        sql.push_str(&format!(
            "GRANT {privs} ON SCHEMA {} TO {q};\n",
            quote_ident(s)
        ));
    }
    for t in &referenced {
        sql.push_str(&format!("GRANT REFERENCES ON TABLE {t} TO {q};\n"));
    }
    for f in &functions {
        sql.push_str(&format!("GRANT EXECUTE ON FUNCTION {f} TO {q};\n"));
    }
    tx.batch_execute(&sql)
        .map_err(|e| Error::sql("granting the restore role what the surface tables need", e))?;
    tx.commit()
        .map_err(|e| Error::sql("committing the restore role's grants", e))
}

/// For a data-only restore into the clone: the surface tables (and the sequences they own)
/// are handed to `role` with every trigger disabled, so that it can load their rows; the
/// superuser takes them back afterwards ([`DataOnlyLoan::give_back`]).
pub(crate) struct DataOnlyLoan {
    owners: Vec<(String, String)>,
    db_owner: String,
    role: String,
}

impl DataOnlyLoan {
    /// Lends the surface tables to `role` (as the superuser `c`, in one transaction).
    pub(crate) fn lend(c: &mut postgres::Client, role: &RestoreRole) -> Result<Self> {
        let q = quote_ident(&role.name);
        let mut tx = c
            .transaction()
            .map_err(|e| Error::sql("starting to lend the tables to the restore role", e))?;
        let mut owners = Vec::new();
        let mut sql = String::new();
        let mut schemas = BTreeSet::new();
        for t in mutation_surface() {
            let owner: String = tx
                .query_one(
                    "SELECT pg_catalog.pg_get_userbyid(c.relowner)::text FROM pg_catalog.pg_class c \
                     WHERE c.oid = $1::text::regclass",
                    &[&t.quoted()],
                )
                .map_err(|e| Error::sql(format!("reading the owner of {t}"), e))?
                .get(0);
            sql.push_str(&format!(
                "ALTER TABLE {0} DISABLE TRIGGER ALL; ALTER TABLE {0} OWNER TO {q};\n",
                t.quoted()
            ));
            schemas.insert(t.schema().to_string());
            owners.push((t.quoted(), owner));
        }
        for s in &schemas {
            sql.push_str(&format!(
                "GRANT USAGE ON SCHEMA {} TO {q};\n",
                quote_ident(s)
            ));
        }
        tx.batch_execute(&sql)
            .map_err(|e| Error::sql("lending the surface tables to the restore role", e))?;
        tx.commit()
            .map_err(|e| Error::sql("lending the surface tables to the restore role", e))?;
        Ok(Self {
            owners,
            db_owner: role.previous_db_owner.clone(),
            role: role.name.clone(),
        })
    }

    /// Gives the tables back to their owners with every trigger enabled, and removes the
    /// role with whatever it owns or was granted (as the superuser `c`, in one
    /// transaction; `DROP ROLE` after it).
    pub(crate) fn give_back(self, c: &mut postgres::Client, dbname: &str) -> Result<()> {
        let q = quote_ident(&self.role);
        let mut sql = String::from("BEGIN;\n");
        for (t, owner) in &self.owners {
            sql.push_str(&format!(
                "ALTER TABLE {t} OWNER TO {}; ALTER TABLE {t} ENABLE TRIGGER ALL;\n",
                quote_ident(owner)
            ));
        }
        sql.push_str(&format!(
            "ALTER DATABASE {} OWNER TO {};\nDROP OWNED BY {q};\nCOMMIT;\nDROP ROLE {q};\n",
            quote_ident(dbname),
            quote_ident(&self.db_owner)
        ));
        c.batch_execute(&sql)
            .map_err(|e| Error::sql("taking the surface tables back from the restore role", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::TocEntry;
    use std::collections::BTreeMap;

    fn entry(id: i32, desc: &str, ns: &str, tag: &str, deps: &[i32]) -> TocEntry {
        TocEntry {
            dump_id: id,
            desc: desc.into(),
            namespace: ns.into(),
            tag: tag.into(),
            copy_stmt: if desc == "TABLE DATA" {
                format!("COPY {ns}.{tag} (id, body, \"Odd Name\") FROM stdin;\n")
            } else {
                String::new()
            },
            deps: deps.to_vec(),
        }
    }

    /// The shape of a real `pg_dump -Fc --table …` TOC for two of the surface tables, plus
    /// what a crafted archive could add.
    fn toc(extra: Vec<TocEntry>) -> Toc {
        let mut entries = vec![
            entry(1, "ENCODING", "", "ENCODING", &[]),
            entry(10, "TABLE", "public", "information_unit", &[]),
            entry(11, "ACL", "public", "TABLE information_unit", &[10]),
            entry(12, "SEQUENCE", "public", "information_unit_id_seq", &[10]),
            entry(20, "TABLE", "public", "unit_version", &[]),
            entry(30, "TABLE DATA", "public", "information_unit", &[10]),
            entry(31, "TABLE DATA", "public", "unit_version", &[20]),
            entry(
                32,
                "SEQUENCE SET",
                "public",
                "information_unit_id_seq",
                &[12],
            ),
            entry(
                40,
                "CONSTRAINT",
                "public",
                "information_unit information_unit_pkey",
                &[10],
            ),
            entry(
                41,
                "FK CONSTRAINT",
                "public",
                "unit_version fk",
                &[40, 20, 10],
            ),
            entry(
                42,
                "TRIGGER",
                "public",
                "information_unit trg_iu_enacted_immut",
                &[10],
            ),
        ];
        entries.extend(extra);
        Toc {
            version: (1, 14, 0),
            compressed: false,
            encoding: Some("UTF8".into()),
            tables: BTreeMap::new(),
            entries,
        }
    }

    #[test]
    fn only_the_nine_tables_and_what_hangs_off_them_are_restored() {
        let crafted = vec![
            entry(50, "FUNCTION", "public", "evil()", &[]),
            entry(
                51,
                "TRIGGER",
                "public",
                "information_unit trg_evil",
                &[10, 50],
            ),
            entry(52, "TABLE", "public", "not_ours", &[]),
            entry(53, "TABLE DATA", "public", "not_ours", &[52]),
            entry(54, "INDEX", "public", "not_ours_idx", &[52]),
            entry(55, "RULE", "public", "information_unit r", &[10]),
            entry(56, "EXTENSION", "", "plpython3u", &[]),
            entry(57, "INDEX", "other_schema", "x", &[10]),
        ];
        let t = toc(crafted);
        assert_eq!(
            select(&t, Selection::Full).unwrap(),
            vec![10, 12, 20, 30, 31, 32, 40, 41, 42]
        );
        assert_eq!(select(&t, Selection::DataOnly).unwrap(), vec![30, 31, 32]);
    }

    #[test]
    fn a_copy_that_is_not_a_plain_copy_from_stdin_is_refused() {
        for stmt in [
            "COPY public.information_unit (id) FROM PROGRAM 'id > /tmp/x';\n",
            "COPY public.information_unit (id) TO PROGRAM 'id';\n",
            "COPY public.information_unit (id) FROM stdin; COPY x TO PROGRAM 'id';\n",
            "COPY public.information_unit (id) FROM '/etc/passwd';\n",
            "COPY public.unit_version (id) FROM stdin;\n",
        ] {
            let mut t = toc(vec![]);
            t.entries
                .iter_mut()
                .find(|e| e.dump_id == 30)
                .unwrap()
                .copy_stmt = stmt.into();
            let err = select(&t, Selection::Full).unwrap_err();
            assert!(err.contains("public.information_unit"), "{stmt}: {err}");
            assert!(select(&t, Selection::DataOnly).is_err(), "{stmt}");
        }
    }

    #[test]
    fn an_archive_without_the_nine_tables_data_is_refused() {
        let mut t = toc(vec![]);
        t.entries.retain(|e| e.desc != "TABLE DATA");
        assert!(select(&t, Selection::Full)
            .unwrap_err()
            .contains("none of the surface tables"));
    }
}
