//! Pruning backup chains (`cutter backup prune --keep-chains N`): the newest N chains are
//! kept whole; of older chains, every link is removed except the artifacts the caller
//! protects (a held or unresolved run's) and every link such an artifact needs (its
//! predecessors up to its full backup). Only links whose manifest the pinned key signed
//! are ever removed; any other file in the directory is left alone.
//!
//! A link's files go manifest first (a manifest under its final name always has its
//! artifact and signature beside it), then the signature, the artifact, and its proof
//! records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cutter_core::{Fingerprint, RunId};
use serde::Serialize;

use crate::chain::{chain_links, Link};
use crate::error::{Error, Result};
use crate::manifest::backup_file_names;

/// Why a link stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// Its chain is one of the newest N.
    KeptChain,
    /// It is the backup of a held or unresolved run.
    Protected,
    /// A protected link of its chain needs it.
    NeededBy(RunId),
}

/// One link in a prune plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneLink {
    /// The link's name.
    pub name: RunId,
    /// Its chain (the full backup's name).
    pub chain: RunId,
    /// Its position in the chain.
    pub seq: u32,
    /// Bytes its files take.
    pub bytes: u64,
    /// Why it stays (absent: it goes).
    pub keep: Option<KeepReason>,
    /// Its files, as removed (or to be removed), in order.
    pub files: Vec<String>,
}

/// What a prune keeps and removes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    /// The chains kept whole, newest first.
    pub kept_chains: Vec<RunId>,
    /// Every chain link, oldest chain first, in chain order.
    pub links: Vec<PruneLink>,
}

impl PrunePlan {
    /// The links that go.
    pub fn removed(&self) -> impl Iterator<Item = &PruneLink> {
        self.links.iter().filter(|l| l.keep.is_none())
    }
}

/// The files of link `name` in `dir`, in the order they are removed, that exist.
fn link_files(dir: &Path, name: &RunId) -> Vec<String> {
    backup_file_names(name)
        .into_iter()
        .filter(|f| std::fs::symlink_metadata(dir.join(f)).is_ok())
        .collect()
}

/// Plans the prune of `dir`: keep the newest `keep_chains` chains (by their newest
/// link), and every link in `protected` (artifact file names) with its predecessors.
pub fn plan_prune(
    dir: &Path,
    signing_pin: &Fingerprint,
    keep_chains: usize,
    protected: &BTreeSet<String>,
) -> Result<PrunePlan> {
    let links = chain_links(dir, signing_pin)?;
    let by_name: BTreeMap<String, &Link> = links
        .iter()
        .map(|l| (l.manifest.run_id.to_string(), l))
        .collect();
    // Chains, newest first by their newest link.
    let mut newest: BTreeMap<RunId, u64> = BTreeMap::new();
    for l in &links {
        let c = l.chain();
        let t = newest.entry(c.chain.clone()).or_default();
        *t = (*t).max(c.taken_at_ms);
    }
    let mut chains: Vec<(RunId, u64)> = newest.into_iter().collect();
    chains.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let kept_chains: Vec<RunId> = chains
        .iter()
        .take(keep_chains)
        .map(|(c, _)| c.clone())
        .collect();
    let mut keep: BTreeMap<String, KeepReason> = BTreeMap::new();
    for l in &links {
        if kept_chains.contains(&l.chain().chain) {
            keep.insert(l.manifest.run_id.to_string(), KeepReason::KeptChain);
        }
    }
    for l in &links {
        if !protected.contains(&l.manifest.artifact) {
            continue;
        }
        let name = l.manifest.run_id.clone();
        keep.entry(name.to_string())
            .or_insert(KeepReason::Protected);
        // Every predecessor up to the full backup.
        let mut cur = l.chain().predecessor.clone();
        while let Some(p) = cur {
            keep.entry(p.run_id.to_string())
                .or_insert_with(|| KeepReason::NeededBy(name.clone()));
            cur = by_name
                .get(p.run_id.as_str())
                .and_then(|x| x.chain().predecessor.clone());
        }
    }
    let mut out: Vec<PruneLink> = links
        .iter()
        .map(|l| {
            let name = l.manifest.run_id.clone();
            let files = link_files(dir, &name);
            let bytes = files
                .iter()
                .filter_map(|f| std::fs::symlink_metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            PruneLink {
                keep: keep.get(name.as_str()).cloned(),
                chain: l.chain().chain.clone(),
                seq: l.chain().seq,
                name,
                bytes,
                files,
            }
        })
        .collect();
    let order: BTreeMap<RunId, usize> = chains
        .iter()
        .rev()
        .enumerate()
        .map(|(i, (c, _))| (c.clone(), i))
        .collect();
    out.sort_by_key(|l| (order.get(&l.chain).copied(), l.seq));
    Ok(PrunePlan {
        kept_chains,
        links: out,
    })
}

/// Removes the files of every link `plan` does not keep, each link's manifest first,
/// then fsyncs the directory.
pub fn execute_prune(dir: &Path, plan: &PrunePlan) -> Result<()> {
    for l in plan.removed() {
        for f in &l.files {
            let p = dir.join(f);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing", &p, e)),
            }
        }
        tracing::info!(link = %l.name, chain = %l.chain, "pruned");
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing", dir, e))
}

/// Discards backup `name`'s files in `dir` (compensation "discard the artifact"), the
/// manifest first, unless a later link of a chain (a manifest the pinned key signed)
/// names it as its predecessor, by name or by its artifact's SHA-256: that link would
/// then restore nothing. Returns the files removed.
pub fn discard_backup(dir: &Path, name: &RunId, signing_pin: &Fingerprint) -> Result<Vec<String>> {
    let sha = crate::manifest::Manifest::read(&dir.join(crate::manifest::manifest_file_name(name)))
        .ok()
        .map(|m| m.sha256);
    let links = chain_links(dir, signing_pin)?;
    if let Some((later, p)) = links.iter().find_map(|l| {
        l.chain()
            .predecessor
            .as_ref()
            .filter(|p| p.run_id == *name || Some(p.artifact_sha256) == sha)
            .map(|p| (l, p))
    }) {
        return Err(Error::StillNeeded {
            name: name.to_string(),
            later: later.manifest.run_id.to_string(),
            detail: format!(
                "link {} of chain {} names it as its predecessor (artifact sha256 {})",
                later.chain().seq,
                later.chain().chain,
                p.artifact_sha256
            ),
        });
    }
    let files = link_files(dir, name);
    for f in &files {
        let p = dir.join(f);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &p, e)),
        }
    }
    cutter_fs::sync_dir(dir)?;
    tracing::info!(backup = %name, files = files.len(), "backup discarded");
    Ok(files)
}
