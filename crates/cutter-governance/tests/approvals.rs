//! SG_1 / SG_2: OpenPGP detached signatures over the canonical approval statement,
//! checked against the configured approvers; GnuPG interoperability.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use cutter_core::{
    authorize, ApprovalGate, GateRequest, KillSwitch, Refusal, SignedApproval, UnixTime,
};
use cutter_governance::{
    load_approvers, read_signed_approval, reverify_recorded_approvals, verify_approvals, Error,
};

struct Case {
    db: cutter_pg::testing::TestDb,
    run: cutter_core::RunId,
    plan: cutter_core::ValidPlan,
    alice: Approver,
    bob: Approver,
}

fn case() -> Case {
    Case {
        db: cutter_pg::testing::TestDb::new(),
        run: run("r-approve"),
        plan: plan("law-approve", 3),
        alice: approver("alice"),
        bob: approver("bob"),
    }
}

fn later() -> UnixTime {
    UnixTime(now().0 + 600)
}

impl Case {
    fn check(
        &self,
        approvals: &[SignedApproval],
        keys: &[&Approver],
    ) -> cutter_governance::Result<Vec<cutter_core::VerifiedApproval>> {
        let (set, verifier) = approvers(keys);
        self.verify_with(approvals, &set, &verifier, now())
    }
    fn verify_with(
        &self,
        approvals: &[SignedApproval],
        set: &cutter_core::ApproverSet,
        verifier: &cutter_governance::OpenPgpVerifier,
        now: UnixTime,
    ) -> cutter_governance::Result<Vec<cutter_core::VerifiedApproval>> {
        verify_approvals(
            &cutter_core::ApprovalScope {
                purpose: cutter_core::Purpose::LiveRun,
                run_id: &self.run,
                plan_digest: self.plan.digest(),
                target: &self.db.target().database().clone(),
                change_set: None,
                findings_digest: None,
                diff_digest: None,
            },
            approvals,
            set,
            verifier,
            now,
            cutter_core::ApprovalPolicy::default(),
        )
    }
    /// The core gate at `now`, with the kill-switch disarmed for this run and no HOLD.
    fn authorize(
        &self,
        approvals: &[SignedApproval],
        set: &cutter_core::ApproverSet,
        verifier: &cutter_governance::OpenPgpVerifier,
        now: UnixTime,
    ) -> Result<cutter_core::LiveAuthorization, cutter_core::GateRefusal> {
        let ks = KillSwitch::Disarmed {
            run_id: self.run.clone(),
        };
        authorize(
            &GateRequest {
                run_id: &self.run,
                plan_digest: self.plan.digest(),
                findings_digest: None,
                diff_digest: None,
                target: &self.db.target().database().clone(),
                kill_switch: &ks,
                hold: None,
                approvals,
                approvers: set,
                policy: cutter_core::ApprovalPolicy::default(),
                now,
            },
            verifier,
        )
    }
    fn sg(&self, who: &Approver, gate: ApprovalGate) -> SignedApproval {
        sign(
            who,
            &statement(&self.run, &self.plan, &self.db, gate, later()),
        )
    }
}

fn reasons(r: cutter_governance::Result<Vec<cutter_core::VerifiedApproval>>) -> Vec<Refusal> {
    match r {
        Err(Error::ApprovalsRefused { reasons, .. }) => reasons,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn two_distinct_approvers_are_accepted() {
    let c = case();
    let ok = c
        .check(
            &[
                c.sg(&c.alice, ApprovalGate::Sg1),
                c.sg(&c.bob, ApprovalGate::Sg2),
            ],
            &[&c.alice, &c.bob],
        )
        .expect("accepted");
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].gate, ApprovalGate::Sg1);
    assert_eq!(ok[0].signer, c.alice.secret.fingerprint());
    assert_eq!(ok[1].signer, c.bob.secret.fingerprint());
    assert!(ok[0].signature.starts_with("-----BEGIN PGP SIGNATURE-----"));
}

#[test]
fn a_signature_by_an_unknown_key_is_refused() {
    let c = case();
    let carol = approver("carol");
    // Carol's key is not configured at all.
    let r = reasons(c.check(
        &[
            c.sg(&c.alice, ApprovalGate::Sg1),
            c.sg(&carol, ApprovalGate::Sg2),
        ],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(
            |x| matches!(x, Refusal::BadSignature { detail, .. } if detail.contains("unknown key"))
        ),
        "{r:?}"
    );
    assert!(
        r.contains(&Refusal::MissingApproval {
            gate: ApprovalGate::Sg2
        }),
        "{r:?}"
    );
    // Carol's key is known to the verifier but she is not an approver.
    let (mut set, verifier) = approvers(&[&c.alice, &c.bob, &carol]);
    set.0.remove(&carol.secret.fingerprint());
    let err = c
        .verify_with(
            &[
                c.sg(&c.alice, ApprovalGate::Sg1),
                c.sg(&carol, ApprovalGate::Sg2),
            ],
            &set,
            &verifier,
            now(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a registered, unrevoked approver"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(carol.secret.fingerprint().as_str()),
        "{err}"
    );
}

#[test]
fn the_same_key_twice_is_refused() {
    let c = case();
    let r = reasons(c.check(
        &[
            c.sg(&c.alice, ApprovalGate::Sg1),
            c.sg(&c.alice, ApprovalGate::Sg2),
        ],
        &[&c.alice, &c.bob],
    ));
    assert_eq!(
        r,
        vec![Refusal::SameSigner {
            signer: c.alice.secret.fingerprint()
        }]
    );
}

#[test]
fn a_statement_for_another_run_plan_or_target_is_refused() {
    let c = case();
    let other_run = statement(&run("r-other"), &c.plan, &c.db, ApprovalGate::Sg2, later());
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), sign(&c.bob, &other_run)],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter()
            .any(|x| matches!(x, Refusal::WrongRun { named, .. } if named.as_str() == "r-other")),
        "{r:?}"
    );

    let other_plan = plan("law-approve", 4);
    let s = statement(&c.run, &other_plan, &c.db, ApprovalGate::Sg2, later());
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), sign(&c.bob, &s)],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(
            |x| matches!(x, Refusal::WrongPlan { named, .. } if *named == other_plan.digest())
        ),
        "{r:?}"
    );

    let mut s = statement(&c.run, &c.plan, &c.db, ApprovalGate::Sg2, later());
    s.target.system_identifier = cutter_core::SystemIdentifier::new(42);
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), sign(&c.bob, &s)],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(|x| matches!(x, Refusal::WrongTarget { .. })),
        "{r:?}"
    );
}

#[test]
fn an_expired_approval_is_refused() {
    let c = case();
    let s = statement(
        &c.run,
        &c.plan,
        &c.db,
        ApprovalGate::Sg2,
        UnixTime(now().0 - 1),
    );
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), sign(&c.bob, &s)],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(|x| matches!(x, Refusal::Expired { .. })),
        "{r:?}"
    );
}

#[test]
fn malformed_armor_and_a_changed_statement_are_refused() {
    let c = case();
    let mut bad = c.sg(&c.bob, ApprovalGate::Sg2);
    let text = String::from_utf8(bad.signature.clone()).unwrap();
    // Damage the base64 body of the armor.
    let lines: Vec<&str> = text.lines().collect();
    let body = lines.iter().position(|l| l.is_empty()).unwrap() + 1;
    let mut damaged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    damaged[body] = "!!!! not base64 !!!!".into();
    bad.signature = damaged.join("\n").into_bytes();
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), bad],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(
            |x| matches!(x, Refusal::BadSignature { detail, .. } if detail.contains("well-formed"))
        ),
        "{r:?}"
    );

    let mut changed = c.sg(&c.bob, ApprovalGate::Sg2);
    let s = statement(
        &c.run,
        &c.plan,
        &c.db,
        ApprovalGate::Sg2,
        UnixTime(later().0 + 86_400 * 365),
    );
    changed.statement = s.canonical_text().into_bytes();
    let r = reasons(c.check(
        &[c.sg(&c.alice, ApprovalGate::Sg1), changed],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(|x| matches!(x, Refusal::BadSignature { .. })),
        "{r:?}"
    );
}

#[test]
fn a_refused_approval_authorizes_nothing_and_nothing_is_written() {
    let c = case();
    cutter_governance::install(&mut c.db.admin()).unwrap();
    let (set, verifier) = approvers(&[&c.alice, &c.bob]);
    let approvals = [
        c.sg(&c.alice, ApprovalGate::Sg1),
        c.sg(&c.alice, ApprovalGate::Sg2),
    ];
    let refused = c.authorize(&approvals, &set, &verifier, now());
    assert!(refused.is_err());
    assert_eq!(ledger_counts(&c.db), vec![0; 6]);
    assert_eq!(c.db.count("public.information_unit"), 158);
}

// ---------------------------------------------------------------------------------
// Files and GnuPG.
// ---------------------------------------------------------------------------------

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn approver_files_are_loaded_and_bad_ones_named() {
    let c = case();
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "alice.asc", c.alice.public_armored.as_bytes());
    let b = write(dir.path(), "bob.asc", c.bob.public_armored.as_bytes());
    let (set, verifier) = load_approvers(&[&a, &b]).unwrap();
    assert_eq!(set.0.len(), 2);
    assert_eq!(verifier.fingerprints().len(), 2);

    let again = write(
        dir.path(),
        "alice-again.asc",
        c.alice.public_armored.as_bytes(),
    );
    let err = load_approvers(&[&a, &again]).unwrap_err();
    assert!(matches!(err, Error::DuplicateApprover { .. }), "{err:?}");
    assert!(err.to_string().contains("alice-again.asc"), "{err}");

    let junk = write(dir.path(), "junk.asc", b"not a key");
    let err = load_approvers(&[&a, &junk]).unwrap_err();
    assert!(err.to_string().contains("junk.asc"), "{err}");

    let err = load_approvers(&[dir.path().join("missing.asc")]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(matches!(
        load_approvers::<PathBuf>(&[]),
        Err(Error::NoApprovers)
    ));

    // An approval read back from files verifies.
    let sg1 = c.sg(&c.alice, ApprovalGate::Sg1);
    let st = write(dir.path(), "sg1.txt", &sg1.statement);
    let sig = write(dir.path(), "sg1.txt.asc", &sg1.signature);
    let read = read_signed_approval(&st, &sig).unwrap();
    c.verify_with(
        &[read, c.sg(&c.bob, ApprovalGate::Sg2)],
        &set,
        &verifier,
        now(),
    )
    .unwrap();
}

/// A throwaway GnuPG home (0700) with one unprotected Ed25519 signing key.
struct Gpg {
    home: tempfile::TempDir,
    fingerprint: String,
}

impl Gpg {
    fn new(name: &str) -> Gpg {
        Gpg::new_at(name, None)
    }

    /// With `at`, the key is made with gpg's clock set to that unix time.
    fn new_at(name: &str, at: Option<UnixTime>) -> Gpg {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let g = Gpg {
            home,
            fingerprint: String::new(),
        };
        // An empty passphrase: the key is unprotected, nothing secret is on the command line.
        let mut args = Vec::new();
        let faked = at.map(|t| format!("{}!", t.0));
        if let Some(t) = &faked {
            args.extend(["--faked-system-time", t.as_str()]);
        }
        let uid = format!("{name} <{name}@example.invalid>");
        args.extend([
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        g.run(&args);
        let out = g.run(&["--with-colons", "--list-keys"]);
        let fingerprint = String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("a fingerprint");
        Gpg { fingerprint, ..g }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Revokes the whole key now (reason: retired), as `gpg --edit-key … revkey` does.
    fn revoke(&self) {
        use std::io::Write;
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(["--command-fd", "0", "--edit-key", &self.fingerprint])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gpg runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"revkey\ny\n3\nretired\n\ny\nsave\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "gpg revkey failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn public_key(&self) -> Vec<u8> {
        self.run(&["--armor", "--export", &self.fingerprint])
    }

    fn detach_sign(&self, file: &Path, armor: bool) -> PathBuf {
        self.detach_sign_at(file, armor, None)
    }

    /// With `at`, the signature is made with gpg's clock set to that unix time.
    fn detach_sign_at(&self, file: &Path, armor: bool, at: Option<UnixTime>) -> PathBuf {
        let out = file.with_extension(if armor { "asc" } else { "sig" });
        let faked = at.map(|t| format!("{}!", t.0));
        let mut args = Vec::new();
        if let Some(t) = &faked {
            args.extend(["--faked-system-time", t.as_str()]);
        }
        args.extend(["--passphrase", "", "--local-user", &self.fingerprint]);
        if armor {
            args.push("--armor");
        }
        let (o, f) = (out.to_str().unwrap(), file.to_str().unwrap());
        args.extend(["--output", o, "--detach-sign", f]);
        self.run(&args);
        out
    }
}

#[test]
fn gpg_detach_sign_over_the_statement_file_is_accepted() {
    let c = case();
    let gpg1 = Gpg::new("gpg-one");
    let gpg2 = Gpg::new("gpg-two");
    let dir = tempfile::tempdir().unwrap();
    let k1 = write(dir.path(), "one.asc", &gpg1.public_key());
    let k2 = write(dir.path(), "two.asc", &gpg2.public_key());
    let (set, verifier) = load_approvers(&[&k1, &k2]).unwrap();

    let s1 = statement(&c.run, &c.plan, &c.db, ApprovalGate::Sg1, later());
    let s2 = statement(&c.run, &c.plan, &c.db, ApprovalGate::Sg2, later());
    let f1 = write(dir.path(), "sg1.statement", s1.canonical_text().as_bytes());
    let f2 = write(dir.path(), "sg2.statement", s2.canonical_text().as_bytes());
    let sig1 = gpg1.detach_sign(&f1, true); // armored
    let sig2 = gpg2.detach_sign(&f2, false); // binary
    let approvals = [
        read_signed_approval(&f1, &sig1).unwrap(),
        read_signed_approval(&f2, &sig2).unwrap(),
    ];
    let ok = c
        .verify_with(&approvals, &set, &verifier, now())
        .expect("gpg signatures are accepted");
    assert_eq!(ok[0].signer.as_str(), gpg1.fingerprint);
    assert_eq!(ok[1].signer.as_str(), gpg2.fingerprint);
    assert!(
        ok[1].signature.starts_with("hex:"),
        "a binary signature is kept as hex"
    );

    // The gate takes them; registered (the owner's bootstrap) and recorded before the
    // run writes, they can be re-verified against the registry.
    let auth = c
        .authorize(&approvals, &set, &verifier, now())
        .expect("authorized");
    let (p1, p2) = (gpg1.public_key(), gpg2.public_key());
    let (p1, p2) = (String::from_utf8_lossy(&p1), String::from_utf8_lossy(&p2));
    cutter_governance::bootstrap_approvers(&mut c.db.admin(), &[(&p1, "one"), (&p2, "two")], "t")
        .unwrap();
    cutter_governance::record_run_approvals(&mut exec(&c.db), &auth).unwrap();
    cut(&c.db, &auth, &c.plan);
    leg_b(&c.db, &auth, &c.plan).unwrap();
    let mut v = c.db.verify_config().connect().unwrap();
    let registry = cutter_governance::load_registry(&mut v).unwrap();
    let reverifier = cutter_governance::Reverifier::new(&registry, None).unwrap();
    let recorded = reverify_recorded_approvals(&mut v, &c.run, &reverifier).unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1].signer.as_str(), gpg2.fingerprint);

    // A recorded statement changed afterwards no longer verifies.
    c.db.admin()
        .batch_execute(
            "UPDATE cutter_governance.dot_pair_signature SET statement = replace(statement, 'SG_1', 'SG_2') WHERE gate = 'SG_1'",
        )
        .unwrap();
    let err = reverify_recorded_approvals(&mut v, &c.run, &reverifier).unwrap_err();
    assert!(names_a_pair_signature_row(&err), "{err:?}");
}

/// Whether `err` is the refusal of a recorded `dot_pair_signature` row.
fn names_a_pair_signature_row(err: &Error) -> bool {
    matches!(
        err,
        Error::Corrupt {
            table: cutter_governance::LedgerTable::DotPairSignature,
            ..
        }
    )
}

/// A key revoked (cryptographically) before the gate's time signs nothing new, even
/// with a signature dated before its revocation.
#[test]
fn a_revoked_key_cannot_approve_by_backdating() {
    let c = case();
    let made = UnixTime(now().0 - 3600);
    let gpg1 = Gpg::new_at("revoked", Some(made));
    let gpg2 = Gpg::new_at("still-valid", Some(made));
    let dir = tempfile::tempdir().unwrap();
    let mut approvals = Vec::new();
    for (gpg, gate) in [(&gpg1, ApprovalGate::Sg1), (&gpg2, ApprovalGate::Sg2)] {
        let s = statement(&c.run, &c.plan, &c.db, gate, later());
        let f = write(
            dir.path(),
            &format!("{gate}.statement"),
            s.canonical_text().as_bytes(),
        );
        let sig = gpg.detach_sign_at(&f, true, Some(UnixTime(now().0 - 120)));
        approvals.push(read_signed_approval(&f, &sig).unwrap());
    }
    gpg1.revoke();
    let k1 = write(dir.path(), "one.asc", &gpg1.public_key());
    let k2 = write(dir.path(), "two.asc", &gpg2.public_key());
    let (set, verifier) = load_approvers(&[&k1, &k2]).unwrap();
    let r = reasons(c.verify_with(&approvals, &set, &verifier, now()));
    assert!(
        r.iter().any(
            |x| matches!(x, Refusal::BadSignature { detail, .. } if detail.contains("revoked"))
        ),
        "{r:?}"
    );
}

#[test]
fn a_statement_file_signed_with_gpg_by_a_non_approver_is_refused() {
    let c = case();
    let stranger = Gpg::new("stranger");
    let dir = tempfile::tempdir().unwrap();
    let s2 = statement(&c.run, &c.plan, &c.db, ApprovalGate::Sg2, later());
    let f2 = write(dir.path(), "sg2.statement", s2.canonical_text().as_bytes());
    let sig = stranger.detach_sign(&f2, true);
    let r = reasons(c.check(
        &[
            c.sg(&c.alice, ApprovalGate::Sg1),
            read_signed_approval(&f2, &sig).unwrap(),
        ],
        &[&c.alice, &c.bob],
    ));
    assert!(
        r.iter().any(
            |x| matches!(x, Refusal::BadSignature { detail, .. } if detail.contains("unknown key"))
        ),
        "{r:?}"
    );
}
